//! Every check of the universe, asked in one batch, and compared with the model's answers;
//! then every person's ListEntitlements, compared with the same answers.

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
    let (mut wrong, n, through) = if unknown_first {
        let (mut wrong, n, _) = ask(&[TYPO_ICN]).await;
        let (more, m, through) = ask(&[0, 1]).await;
        wrong.extend(more);
        (wrong, n + m, through)
    } else {
        ask(&[0, 1, TYPO_ICN]).await
    };
    let fresh = if own.is_empty() { token } else { own };
    // Lists cost a call per person and action: every action in one page on the first replica,
    // opening service requests one entry per page on the others.
    let (actions, page_size): (&[Action], i32) = if unknown_first {
        (&ALL_ACTIONS, 0)
    } else {
        (&[Action::OpenServiceRequest], 1)
    };
    let (more, m) = lists(server, checker, model, (fresh, page_size), actions, label).await;
    wrong.extend(more);
    (wrong, n + m, through)
}

const ALL_ACTIONS: [Action; 3] = [
    Action::OpenServiceRequest,
    Action::ViewSupportArea,
    Action::ManageUsers,
];

/// Each person's ListEntitlements for each of `actions`, against the model's checks: exactly
/// the accounts it allows, with its role, and for opening service requests the products and
/// the severity 1 it allows.
async fn lists(
    server: &TestApp,
    checker: &str,
    model: &Model,
    (token, page_size): (&str, i32),
    actions: &[Action],
    label: &str,
) -> (Vec<Mismatch>, usize) {
    let mut out = Vec::new();
    let mut compared = 0;
    let asked: Vec<(usize, Action)> = (0..PEOPLE.len())
        .flat_map(|person| actions.iter().map(move |&a| (person, a)))
        .collect();
    // Asked all at once, as the checks of a batch are.
    let answers = futures_util::future::join_all(
        asked
            .iter()
            .map(|&pa| list_all(server, checker, pa, token, page_size)),
    )
    .await;
    for (&(person, a), answer) in asked.iter().zip(answers) {
        let what = format!(
            "{label}: ListEntitlements {} {}",
            PEOPLE[person],
            action(a).as_str_name()
        );
        let listed = match answer {
            Ok(listed) => listed,
            Err(s) => {
                out.push(Mismatch {
                    kind: format!("{label}: list failed"),
                    text: format!("{what} failed: {s:?}"),
                });
                continue;
            }
        };
        let q = |icn, product, severity_1| Question {
            person,
            icn,
            action: a,
            product,
            severity_1,
        };
        let want: Vec<usize> = [0, 1]
            .into_iter()
            .filter(|&i| model.check(&q(i, None, false)).allowed)
            .collect();
        let got: Vec<&str> = listed.iter().map(|e| e.icn.as_str()).collect();
        let want_icns: Vec<&str> = want.iter().map(|&i| ICNS[i]).collect();
        compared += 1;
        if got != want_icns {
            out.push(Mismatch {
                kind: format!("list: accounts of {}", action(a).as_str_name()),
                text: format!("{what}: model {want_icns:?}; server {got:?}"),
            });
            continue;
        }
        for (&icn, e) in want.iter().zip(&listed) {
            let mut said = vec![(
                "role",
                role(model.check(&q(icn, None, false)).role) as i32 == e.role,
            )];
            if a == Action::OpenServiceRequest {
                let sev1 = model.check(&q(icn, None, true)).allowed;
                said.push(("highest_severity", sev1 == (e.highest_severity == 1)));
                for p in ["P1", "P2"] {
                    let covered = e.all_products || e.product_ids.iter().any(|x| x == p);
                    said.push((
                        "products",
                        covered == model.check(&q(icn, Some(p), false)).allowed,
                    ));
                    let sev1 = e.contracts.iter().any(|c| {
                        (c.all_products || c.product_ids.iter().any(|x| x == p))
                            && c.highest_severity == 1
                    });
                    said.push((
                        "contracts",
                        sev1 == model.check(&q(icn, Some(p), true)).allowed,
                    ));
                }
            }
            for (field, right) in said {
                if !right {
                    out.push(Mismatch {
                        kind: format!("list: {field}"),
                        text: format!("{what}: {field} of {e:?} disagrees with the model"),
                    });
                }
            }
        }
    }
    (out, compared)
}

/// Every page of one person's list for one action.
async fn list_all(
    server: &TestApp,
    checker: &str,
    (person, a): (usize, Action),
    token: &str,
    page_size: i32,
) -> Result<Vec<pb::Entitlement>, tonic::Status> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let r = server
            .entitlement()
            .list_entitlements(authed(
                pb::ListEntitlementsRequest {
                    web_id: PEOPLE[person].into(),
                    action: action(a) as i32,
                    page_size,
                    page_token,
                    consistency_token: token.into(),
                    consistency: 0,
                },
                checker,
            ))
            .await?
            .into_inner();
        all.extend(r.entitlements);
        if r.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = r.next_page_token;
    }
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
