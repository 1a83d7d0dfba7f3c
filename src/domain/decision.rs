//! CheckEntitlement's decision: a pure function of what the store knows and the time.

use super::access_request::AccessRequestState;
use super::ids::{ContractId, ProductId};
use std::sync::Arc;

use super::model::{AccountStatus, Contract};
use super::role::Role;
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OpenServiceRequest,
    ViewSupportArea,
    ManageUsers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionReason {
    Granted,
    UnknownAccount,
    AccountSuspended,
    NotAMember,
    RequestPending,
    RequestDenied,
    AccessRevoked,
    EmailNotVerified,
    RoleInsufficient,
    NoActiveContract,
    ProductNotCovered,
    SeverityNotCovered,
}

impl DecisionReason {
    pub const ALL: [DecisionReason; 12] = [
        Self::Granted,
        Self::UnknownAccount,
        Self::AccountSuspended,
        Self::NotAMember,
        Self::RequestPending,
        Self::RequestDenied,
        Self::AccessRevoked,
        Self::EmailNotVerified,
        Self::RoleInsufficient,
        Self::NoActiveContract,
        Self::ProductNotCovered,
        Self::SeverityNotCovered,
    ];

    /// The wire name without its `DECISION_REASON_` prefix, as metrics and traces show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "GRANTED",
            Self::UnknownAccount => "UNKNOWN_ACCOUNT",
            Self::AccountSuspended => "ACCOUNT_SUSPENDED",
            Self::NotAMember => "NOT_A_MEMBER",
            Self::RequestPending => "REQUEST_PENDING",
            Self::RequestDenied => "REQUEST_DENIED",
            Self::AccessRevoked => "ACCESS_REVOKED",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::RoleInsufficient => "ROLE_INSUFFICIENT",
            Self::NoActiveContract => "NO_ACTIVE_CONTRACT",
            Self::ProductNotCovered => "PRODUCT_NOT_COVERED",
            Self::SeverityNotCovered => "SEVERITY_NOT_COVERED",
        }
    }
}

/// What a decision needs of a membership row (active, removed or lapsed). The end instant
/// travels with it (into the cache too), so whether it is active is decided against the
/// clock of the check, never against when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    pub role: Role,
    pub removed_at: Option<Millis>,
    /// A time-boxed grant's end (exclusive); None: no end.
    pub expires_at: Option<Millis>,
}

impl MemberStatus {
    /// Active at `now`: neither removed nor past its end.
    pub fn is_active_at(&self, now: Millis) -> bool {
        self.ended_at(now).is_none()
    }

    /// When it ended as of `now`: removed, or lapsed (recorded by the sweeper or not).
    pub fn ended_at(&self, now: Millis) -> Option<Millis> {
        super::model::ended_at(self.removed_at, self.expires_at, now)
    }
}

/// Everything a decision needs about one person and one account. Cheap to clone: the
/// contracts are shared, so the check cache can hand out copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckFacts {
    /// None: no such account.
    pub account_status: Option<AccountStatus>,
    /// The membership row, active or removed.
    pub membership: Option<MemberStatus>,
    /// The person's most recent request for this account.
    pub latest_request: Option<LatestRequest>,
    pub email_verified: bool,
    pub contracts: Arc<[Contract]>,
}

/// What a decision needs of a person's most recent request for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestRequest {
    pub state: AccessRequestState,
    /// When its state last changed (a denial's instant).
    pub changed_at: Millis,
    /// A pending request is expired from this instant, recorded by the sweeper or not.
    pub expires_at: Millis,
}

impl LatestRequest {
    /// The state as of `now`: an overdue pending request is already expired, so the answer
    /// does not depend on when the background sweeper gets to it.
    pub fn state_at(&self, now: Millis) -> AccessRequestState {
        if self.state == AccessRequestState::Pending && now >= self.expires_at {
            AccessRequestState::Expired
        } else {
            self.state
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: DecisionReason,
    /// The person's role on the account; Provisional Caller while a request is pending.
    pub role: Option<Role>,
    /// The contract that made an OPEN_SERVICE_REQUEST allowed.
    pub contract_id: Option<ContractId>,
}

impl Decision {
    fn deny(reason: DecisionReason, role: Option<Role>) -> Self {
        Self {
            allowed: false,
            reason,
            role,
            contract_id: None,
        }
    }
    fn grant(role: Role, contract_id: Option<ContractId>) -> Self {
        Self {
            allowed: true,
            reason: DecisionReason::Granted,
            role: Some(role),
            contract_id,
        }
    }
}

pub struct CheckInput<'a> {
    pub action: Action,
    pub product: Option<&'a ProductId>,
    /// 1-4, or None when not given.
    pub severity: Option<u8>,
}

pub fn decide(facts: &CheckFacts, input: &CheckInput<'_>, now: Millis) -> Decision {
    match facts.account_status {
        None => return Decision::deny(DecisionReason::UnknownAccount, None),
        Some(AccountStatus::Suspended) => {
            return Decision::deny(DecisionReason::AccountSuspended, active_role(facts, now));
        }
        Some(AccountStatus::Active) => {}
    }
    let Some(role) = active_role(facts, now) else {
        return not_a_member(facts, input.action, now);
    };
    match input.action {
        Action::ViewSupportArea => Decision::grant(role, None),
        Action::ManageUsers => {
            if !role.is_administrator() {
                Decision::deny(DecisionReason::RoleInsufficient, Some(role))
            } else if !facts.email_verified {
                Decision::deny(DecisionReason::EmailNotVerified, Some(role))
            } else {
                Decision::grant(role, None)
            }
        }
        Action::OpenServiceRequest => open_service_request(facts, input, role, now),
    }
}

fn active_role(facts: &CheckFacts, now: Millis) -> Option<Role> {
    facts
        .membership
        .as_ref()
        .filter(|m| m.is_active_at(now))
        .map(|m| m.role)
}

/// No active membership: say why, from what happened last. A lapsed time-boxed grant ended
/// at its end instant, as a removal then would have.
fn not_a_member(facts: &CheckFacts, action: Action, now: Millis) -> Decision {
    let removed_at = facts.membership.as_ref().and_then(|m| m.ended_at(now));
    let latest = facts
        .latest_request
        .map(|r| (r.state_at(now), r.changed_at));
    match latest {
        Some((AccessRequestState::Pending, _)) => {
            // A Provisional Caller may look around the support area, nothing more.
            if action == Action::ViewSupportArea {
                Decision::grant(Role::ProvisionalCaller, None)
            } else {
                Decision::deny(
                    DecisionReason::RequestPending,
                    Some(Role::ProvisionalCaller),
                )
            }
        }
        Some((AccessRequestState::Denied, decided_at))
            if removed_at.is_none_or(|removed| decided_at >= removed) =>
        {
            Decision::deny(DecisionReason::RequestDenied, None)
        }
        _ if removed_at.is_some() => Decision::deny(DecisionReason::AccessRevoked, None),
        _ => Decision::deny(DecisionReason::NotAMember, None),
    }
}

fn open_service_request(
    facts: &CheckFacts,
    input: &CheckInput<'_>,
    role: Role,
    now: Millis,
) -> Decision {
    if role < Role::AuthorizedUser {
        return Decision::deny(DecisionReason::RoleInsufficient, Some(role));
    }
    if !facts.email_verified {
        return Decision::deny(DecisionReason::EmailNotVerified, Some(role));
    }
    let in_force = in_force(facts, now);
    if in_force.is_empty() {
        return Decision::deny(DecisionReason::NoActiveContract, Some(role));
    }
    let covering: Vec<&Contract> = in_force
        .into_iter()
        .filter(|c| c.covers(input.product))
        .collect();
    if covering.is_empty() {
        return Decision::deny(DecisionReason::ProductNotCovered, Some(role));
    }
    // Prefer a 24x7 contract when there is one, so the answer names the strongest coverage.
    let best = covering
        .iter()
        .find(|c| c.includes_24x7)
        .or_else(|| covering.iter().find(|c| admits(c, input.severity)));
    match best {
        Some(c) => Decision::grant(role, Some(c.contract_id.clone())),
        None => Decision::deny(DecisionReason::SeverityNotCovered, Some(role)),
    }
}

/// The account's contracts in force at `now`, in the order the facts hold them: the only
/// contracts a service request may be opened under.
pub fn in_force(facts: &CheckFacts, now: Millis) -> Vec<&Contract> {
    facts
        .contracts
        .iter()
        .filter(|c| c.in_force_at(now))
        .collect()
}

/// The most severe service request (1 is the most severe) a contract admits: severity 1
/// needs 24x7 support.
pub fn highest_severity(contract: &Contract) -> u8 {
    if contract.includes_24x7 {
        1
    } else {
        super::next_step::SEVERITY_WITHOUT_24X7
    }
}

/// Whether a contract admits a service request of this severity (None: not given).
fn admits(contract: &Contract, severity: Option<u8>) -> bool {
    severity.is_none_or(|s| s >= highest_severity(contract))
}

/// What a person allowed to open service requests on an account may open there, read with
/// the same rules as [`decide`] (the contracts in force, what each covers and admits), so
/// that it describes exactly the checks that allow. (The most severe request of all is the
/// check's own `next_step::highest_severity`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The contracts in force, by contract id.
    pub contracts: Vec<Contract>,
    /// Some contract covers every product.
    pub all_products: bool,
    /// Every product some contract names, sorted, without repeats; empty with `all_products`.
    pub product_ids: Vec<ProductId>,
    /// When the last of the contracts ends.
    pub ends_at: Millis,
}

/// None when no contract is in force at `now`.
pub fn coverage(facts: &CheckFacts, now: Millis) -> Option<Coverage> {
    let mut contracts: Vec<Contract> = in_force(facts, now).into_iter().cloned().collect();
    contracts.sort_by(|a, b| a.contract_id.cmp(&b.contract_id));
    let ends_at = contracts.iter().map(|c| c.ends_at).max()?;
    let all_products = contracts.iter().any(|c| c.covers_every_product());
    let mut product_ids: Vec<ProductId> = if all_products {
        Vec::new()
    } else {
        contracts
            .iter()
            .flat_map(|c| c.product_ids.iter().cloned())
            .collect()
    };
    product_ids.sort();
    product_ids.dedup();
    Some(Coverage {
        contracts,
        all_products,
        product_ids,
        ends_at,
    })
}

#[cfg(test)]
mod tests;
