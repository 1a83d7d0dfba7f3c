//! Every check of the universe, asked in one batch, and compared with the model's answers.

use entitlements::proto::v1 as pb;
use pb::batch_check_result::Outcome;

use super::ops::{ICNS, PEOPLE, TYPO_ICN};
use super::reference::{Action, Answer, Model, Next, Question, Reason, Role, State};
use crate::support::{TestApp, authed};

/// Each person (the ghost too) x each of `icns` x each kind of question.
pub fn questions(icns: &[usize]) -> Vec<Question> {
    let kinds: [(Action, Option<&'static str>, bool); 6] = [
        (Action::ViewSupportArea, None, false),
        (Action::ManageUsers, None, false),
        (Action::OpenServiceRequest, None, false),
        (Action::OpenServiceRequest, Some("P1"), false),
        (Action::OpenServiceRequest, None, true),
        (Action::OpenServiceRequest, Some("P2"), true),
    ];
    let mut out = Vec::new();
    for person in 0..PEOPLE.len() {
        for &icn in icns {
            for (action, product, severity_1) in kinds {
                out.push(Question {
                    person,
                    icn,
                    action,
                    product,
                    severity_1,
                });
            }
        }
    }
    out
}

pub fn action(a: Action) -> pb::Action {
    match a {
        Action::OpenServiceRequest => pb::Action::OpenServiceRequest,
        Action::ViewSupportArea => pb::Action::ViewSupportArea,
        Action::ManageUsers => pb::Action::ManageUsers,
    }
}

pub fn reason(r: Reason) -> pb::DecisionReason {
    use pb::DecisionReason as D;
    match r {
        Reason::Granted => D::Granted,
        Reason::UnknownAccount => D::UnknownAccount,
        Reason::AccountSuspended => D::AccountSuspended,
        Reason::NotAMember => D::NotAMember,
        Reason::RequestPending => D::RequestPending,
        Reason::RequestDenied => D::RequestDenied,
        Reason::AccessRevoked => D::AccessRevoked,
        Reason::EmailNotVerified => D::EmailNotVerified,
        Reason::RoleInsufficient => D::RoleInsufficient,
        Reason::NoActiveContract => D::NoActiveContract,
        Reason::ProductNotCovered => D::ProductNotCovered,
        Reason::SeverityNotCovered => D::SeverityNotCovered,
    }
}

pub fn next(n: Option<Next>) -> pb::NextStepKind {
    use pb::NextStepKind as K;
    match n {
        None => K::Unspecified,
        Some(Next::VerifyEmail) => K::VerifyEmail,
        Some(Next::WaitForDecision) => K::WaitForDecision,
        Some(Next::RequestAccess) => K::RequestAccess,
        Some(Next::AskForHigherRole) => K::AskForHigherRole,
        Some(Next::ContactSiteTechnicalContact) => K::ContactSiteTechnicalContact,
        Some(Next::OpenAtLowerSeverity) => K::OpenAtLowerSeverity,
        Some(Next::ContactSupport) => K::ContactSupport,
        Some(Next::CheckAccountNumber) => K::CheckAccountNumber,
    }
}

pub fn role(r: Option<Role>) -> pb::Role {
    match r {
        None => pb::Role::Unspecified,
        Some(Role::ProvisionalCaller) => pb::Role::ProvisionalCaller,
        Some(Role::AuthorizedUser) => pb::Role::AuthorizedUser,
        Some(Role::TechnicalContact) => pb::Role::TechnicalContact,
        Some(Role::SiteTechnicalContact) => pb::Role::SiteTechnicalContact,
    }
}

pub fn state(s: State) -> pb::AccessRequestState {
    use pb::AccessRequestState as S;
    match s {
        State::Pending => S::Pending,
        State::Approved => S::Approved,
        State::Denied => S::Denied,
        State::Withdrawn => S::Withdrawn,
        State::Expired => S::Expired,
    }
}

pub fn describe(q: &Question) -> String {
    format!(
        "{} on {} {}{}{}",
        PEOPLE[q.person],
        ICNS[q.icn],
        action(q.action).as_str_name(),
        q.product
            .map(|p| format!(" product={p}"))
            .unwrap_or_default(),
        if q.severity_1 { " severity=1" } else { "" }
    )
}

fn answer_text(allowed: bool, reason: &str, role: &str, next: &str, severity: i32) -> String {
    format!("allowed={allowed} {reason} role={role} next={next} highest_severity={severity}")
}

fn model_text(a: &Answer) -> String {
    answer_text(
        a.allowed,
        reason(a.reason).as_str_name(),
        role(a.role).as_str_name(),
        next(a.reason.next()).as_str_name(),
        i32::from(a.severity),
    )
}

/// One check that answered otherwise than the model.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Short, for tallying: what was asked and the two reasons.
    pub kind: String,
    /// Long, for the failure message.
    pub text: String,
}

/// Asks every question of `server`, no older than `token` (the batch's) and `own` (each
/// check's), and compares. With `unknown_first`, the typo ICN is asked first, in a batch of
/// its own, so that what a check of an unknown account leaves in a cache meets the checks of
/// real accounts after it; else all 90 go in one batch, answered concurrently.
/// Returns the mismatches, how many checks were compared and the token the answers reflect.
pub async fn compare(
    server: &TestApp,
    checker: &str,
    model: &Model,
    (token, own): (&str, &str),
    label: &str,
    unknown_first: bool,
) -> (Vec<Mismatch>, usize, String) {
    let ask = |icns: &'static [usize]| batch(server, checker, model, icns, token, own, label);
    if !unknown_first {
        return ask(&[0, 1, TYPO_ICN]).await;
    }
    let (mut wrong, n, _) = ask(&[TYPO_ICN]).await;
    let (more, m, through) = ask(&[0, 1]).await;
    wrong.extend(more);
    (wrong, n + m, through)
}

/// One batch (at most 100 checks) of the questions about `icns`.
async fn batch(
    server: &TestApp,
    checker: &str,
    model: &Model,
    icns: &[usize],
    token: &str,
    own: &str,
    label: &str,
) -> (Vec<Mismatch>, usize, String) {
    let qs = questions(icns);
    let checks = qs
        .iter()
        .map(|q| pb::CheckEntitlementRequest {
            web_id: PEOPLE[q.person].into(),
            icn: ICNS[q.icn].into(),
            action: action(q.action) as i32,
            product_id: q.product.unwrap_or("").into(),
            severity: if q.severity_1 { 1 } else { 0 },
            consistency_token: own.into(),
            consistency: 0,
        })
        .collect();
    let batch = pb::BatchCheckEntitlementsRequest {
        checks,
        consistency_token: token.into(),
        consistency: 0,
    };
    let r = match server
        .entitlement()
        .batch_check_entitlements(authed(batch, checker))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => {
            let text = format!("{label}: BatchCheckEntitlements failed: {s:?}");
            return (
                vec![Mismatch {
                    kind: format!("{label}: batch failed"),
                    text,
                }],
                0,
                String::new(),
            );
        }
    };
    let mut out = Vec::new();
    for (q, result) in qs.iter().zip(&r.results) {
        let want = model.check(q);
        let (got, kind) = match &result.outcome {
            Some(Outcome::Response(a)) => {
                let reason = pb::DecisionReason::try_from(a.reason).unwrap_or_default();
                let role = pb::Role::try_from(a.role).unwrap_or_default();
                let kind = a.next_step.as_ref().map_or(0, |n| n.kind);
                let got_next = pb::NextStepKind::try_from(kind).unwrap_or_default();
                let same = a.allowed == want.allowed
                    && a.reason == super::checks::reason(want.reason) as i32
                    && a.role == super::checks::role(want.role) as i32
                    && kind == next(want.reason.next()) as i32
                    && a.highest_severity == i32::from(want.severity);
                if same {
                    continue;
                }
                (
                    answer_text(
                        a.allowed,
                        reason.as_str_name(),
                        role.as_str_name(),
                        got_next.as_str_name(),
                        a.highest_severity,
                    ),
                    format!("{} {}", reason.as_str_name(), got_next.as_str_name()),
                )
            }
            Some(Outcome::Error(e)) => (
                format!("error {} {}: {}", e.code, e.reason, e.message),
                e.reason.clone(),
            ),
            None => ("no outcome".to_owned(), "none".to_owned()),
        };
        out.push(Mismatch {
            kind: format!(
                "check: model {} / server {kind}",
                reason(want.reason).as_str_name()
            ),
            text: format!(
                "{label}: check {}: model {}; server {got}",
                describe(q),
                model_text(&want)
            ),
        });
    }
    (out, qs.len(), r.consistency_token)
}
