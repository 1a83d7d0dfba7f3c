//! What a person can do about a refusal: a pure function of the decision (as the caller sees
//! it), the facts it came from, the question and the time. The names of who can help are not
//! facts of a check: [`NextStep::contacts`] says whose names the service reads for a step,
//! and [`super::policy::shows_next_step_details`] whether the caller may see them at all.
//!
//! Plain fields only (no wire types): the gRPC answer and any other door serialise it as
//! they need.

use super::access_request::{AccessRequestState, DeciderGroup};
use super::decision::{Action, CheckFacts, CheckInput, Decision, DecisionReason};
use super::ids::{AccessRequestId, ContractId};
use super::model::Contract;
use crate::clock::Millis;

/// The severity IBM lowers a severity 1 case to when no contract includes 24x7 support.
pub const SEVERITY_WITHOUT_24X7: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextStepKind {
    /// EMAIL_NOT_VERIFIED: verify the email address (SendVerificationEmail, VerifyEmail).
    VerifyEmail,
    /// REQUEST_PENDING: wait; the request is with these deciders since then.
    WaitForDecision,
    /// NOT_A_MEMBER, ACCESS_REVOKED, REQUEST_DENIED: ask for access (again).
    RequestAccess,
    /// ROLE_INSUFFICIENT: ask an administrator of the account for a higher role.
    AskForHigherRole,
    /// NO_ACTIVE_CONTRACT, PRODUCT_NOT_COVERED: the account's STCs deal with its contracts.
    ContactSiteTechnicalContact,
    /// SEVERITY_NOT_COVERED: open the case at a lower severity, which the contract covers.
    OpenAtLowerSeverity,
    /// ACCOUNT_SUSPENDED: only support can reactivate the account.
    ContactSupport,
    /// UNKNOWN_ACCOUNT (service callers only: a person is told NOT_A_MEMBER): the customer
    /// number is likely mistyped.
    CheckAccountNumber,
}

impl NextStepKind {
    pub const ALL: [NextStepKind; 8] = [
        Self::VerifyEmail,
        Self::WaitForDecision,
        Self::RequestAccess,
        Self::AskForHigherRole,
        Self::ContactSiteTechnicalContact,
        Self::OpenAtLowerSeverity,
        Self::ContactSupport,
        Self::CheckAccountNumber,
    ];

    /// The wire name without its `NEXT_STEP_KIND_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "VERIFY_EMAIL",
            Self::WaitForDecision => "WAIT_FOR_DECISION",
            Self::RequestAccess => "REQUEST_ACCESS",
            Self::AskForHigherRole => "ASK_FOR_HIGHER_ROLE",
            Self::ContactSiteTechnicalContact => "CONTACT_SITE_TECHNICAL_CONTACT",
            Self::OpenAtLowerSeverity => "OPEN_AT_LOWER_SEVERITY",
            Self::ContactSupport => "CONTACT_SUPPORT",
            Self::CheckAccountNumber => "CHECK_ACCOUNT_NUMBER",
        }
    }
}

/// Whose names a step shows, read from the store by the service when the caller may see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contacts {
    None,
    /// Who would decide a new request (or a change of role) of the person's: the policy's
    /// audience for a request just made.
    Deciders,
    /// Who the person's pending request waits with now.
    PendingRequest,
    /// The account's STCs (verified ones, else all), who deal with its contracts.
    SiteTechnicalContacts,
}

/// A refusal's next step and the facts a form needs to show it. Empty fields do not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub kind: NextStepKind,
    /// Who `names` are, for the steps that go through deciders (WaitForDecision,
    /// RequestAccess, AskForHigherRole); Operators: nobody on the account can decide.
    pub group: Option<DeciderGroup>,
    /// Display names ("Given Family") of who to ask or wait for: never addresses or Web IDs.
    pub names: Vec<String>,
    /// WaitForDecision: the pending request.
    pub request: Option<AccessRequestId>,
    /// WaitForDecision: since when the request waits. RequestAccess: when the person's
    /// request was denied, or their access ended.
    pub since: Option<Millis>,
    /// WaitForDecision: when the request expires. ContactSiteTechnicalContact for
    /// NO_ACTIVE_CONTRACT: when the contract that ended most recently ended.
    pub until: Option<Millis>,
    /// ContactSiteTechnicalContact: the contract that ended most recently (NO_ACTIVE_CONTRACT)
    /// or the contracts in force that do not cover the product (PRODUCT_NOT_COVERED).
    /// OpenAtLowerSeverity: the contract that covers the case at that severity.
    pub contract_ids: Vec<ContractId>,
    /// OpenAtLowerSeverity: the severity to offer instead.
    pub highest_severity: Option<u8>,
}

impl NextStep {
    /// A step of `kind` with no facts.
    pub fn of(kind: NextStepKind) -> Self {
        Self {
            kind,
            group: None,
            names: Vec::new(),
            request: None,
            since: None,
            until: None,
            contract_ids: Vec::new(),
            highest_severity: None,
        }
    }

    /// Whose names this step shows.
    pub fn contacts(&self) -> Contacts {
        match self.kind {
            NextStepKind::WaitForDecision => Contacts::PendingRequest,
            NextStepKind::RequestAccess | NextStepKind::AskForHigherRole => Contacts::Deciders,
            NextStepKind::ContactSiteTechnicalContact => Contacts::SiteTechnicalContacts,
            NextStepKind::VerifyEmail
            | NextStepKind::OpenAtLowerSeverity
            | NextStepKind::ContactSupport
            | NextStepKind::CheckAccountNumber => Contacts::None,
        }
    }

    /// The step without anything about the account: who runs it and its contracts. What is
    /// left is the person's own history (when their request was denied, their access ended).
    pub fn concealed(self) -> Self {
        Self {
            group: None,
            names: Vec::new(),
            contract_ids: Vec::new(),
            ..self
        }
    }
}

/// What the person can do about `decision` (None when it allows). `decision` is the one the
/// caller is shown, so a refusal hidden from a person leads to the step of what they see.
pub fn next_step(
    decision: &Decision,
    facts: &CheckFacts,
    input: &CheckInput<'_>,
    now: Millis,
) -> Option<NextStep> {
    use DecisionReason as R;
    use NextStepKind as K;
    let step = match decision.reason {
        R::Granted => return None,
        R::UnknownAccount => NextStep::of(K::CheckAccountNumber),
        R::AccountSuspended => NextStep::of(K::ContactSupport),
        R::NotAMember => NextStep::of(K::RequestAccess),
        R::RequestDenied => NextStep {
            since: facts
                .latest_request
                .filter(|r| r.state == AccessRequestState::Denied)
                .map(|r| r.changed_at),
            ..NextStep::of(K::RequestAccess)
        },
        R::AccessRevoked => NextStep {
            since: facts.membership.and_then(|m| m.ended_at(now)),
            ..NextStep::of(K::RequestAccess)
        },
        R::RequestPending => {
            let pending = facts
                .latest_request
                .filter(|r| r.state_at(now) == AccessRequestState::Pending);
            NextStep {
                since: pending.map(|r| r.changed_at),
                until: pending.map(|r| r.expires_at),
                ..NextStep::of(K::WaitForDecision)
            }
        }
        R::EmailNotVerified => NextStep::of(K::VerifyEmail),
        R::RoleInsufficient => NextStep::of(K::AskForHigherRole),
        R::NoActiveContract => {
            let last = facts
                .contracts
                .iter()
                .filter(|c| c.ends_at <= now)
                .max_by_key(|c| c.ends_at);
            NextStep {
                until: last.map(|c| c.ends_at),
                contract_ids: last.map(|c| c.contract_id.clone()).into_iter().collect(),
                ..NextStep::of(K::ContactSiteTechnicalContact)
            }
        }
        R::ProductNotCovered => NextStep {
            contract_ids: in_force(facts, now)
                .map(|c| c.contract_id.clone())
                .collect(),
            ..NextStep::of(K::ContactSiteTechnicalContact)
        },
        R::SeverityNotCovered => NextStep {
            highest_severity: Some(SEVERITY_WITHOUT_24X7),
            contract_ids: covering(facts, input, now)
                .next()
                .map(|c| c.contract_id.clone())
                .into_iter()
                .collect(),
            ..NextStep::of(K::OpenAtLowerSeverity)
        },
    };
    Some(step)
}

/// The highest severity the person may open a service request at: for an
/// OPEN_SERVICE_REQUEST allowed, or refused only for its severity. 1 when a contract in force
/// that covers the product includes 24x7 support, else 2 (IBM lowers a severity 1 case to 2).
pub fn highest_severity(
    decision: &Decision,
    facts: &CheckFacts,
    input: &CheckInput<'_>,
    now: Millis,
) -> Option<u8> {
    let may_open = decision.allowed || decision.reason == DecisionReason::SeverityNotCovered;
    if input.action != Action::OpenServiceRequest || !may_open {
        return None;
    }
    if covering(facts, input, now).any(|c| c.includes_24x7) {
        Some(1)
    } else {
        Some(SEVERITY_WITHOUT_24X7)
    }
}

fn in_force(facts: &CheckFacts, now: Millis) -> impl Iterator<Item = &Contract> {
    facts.contracts.iter().filter(move |c| c.in_force_at(now))
}

fn covering<'a>(
    facts: &'a CheckFacts,
    input: &'a CheckInput<'_>,
    now: Millis,
) -> impl Iterator<Item = &'a Contract> {
    in_force(facts, now).filter(move |c| c.covers(input.product))
}

#[cfg(test)]
mod tests;
