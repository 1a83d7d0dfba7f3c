//! Who may do what to what: every authorization rule of the service, in one place.
//!
//! The use cases gather the facts (who calls, their standing on the account, the target) and
//! ask [`authorize`]; nothing else in the crate decides whether a caller may act. Whether the
//! thing acted on exists (an unknown ICN, request or member) is not a rule of who may act: the
//! use cases answer that themselves.
//!
//! The rules:
//! - An **operator** (scope `entitlements.admin`) runs the accounts: creates them, suspends and
//!   reactivates them, keeps their contracts, designates and removes Site Technical Contacts,
//!   reads the audit trail, and may administer any account's members, suspended or not.
//! - The **ticketing system** (scope `entitlements.check`) may check anyone's entitlement, list
//!   the accounts where anyone is entitled, and watch the change feed; so may an operator. A
//!   person may check and list only themself.
//! - **The person themself** may ask for access (with an email claim, on an active account),
//!   withdraw their own request, verify their email and read their own access.
//! - An **administrator** of an account is an active STC or TC of it with a verified email,
//!   and the account is ACTIVE. Active is as of the write's clock: not removed, and the end
//!   of a time-boxed grant (if any) still ahead: a TC whose grant ended administers nothing. Administrators decide the account's requests, read its requests
//!   and members, and change or remove its members.
//! - Nobody decides their own request; an administrator does not change their own membership;
//!   an STC is changed or removed only by an operator (as an STC).
//! - **A person learns nothing about an account they do not belong to**: checking themself,
//!   an unknown, a suspended and a foreign account all answer as an ordinary account they are
//!   not a member of ([`as_seen_by_self`]); reading or administering an account that does not
//!   exist is refused as for one they do not administer ([`unknown_account`]). The ticketing
//!   system and operators keep the precise reasons.
//! - **A check's next step** ([`shows_next_step_details`]) names who can help (the account's
//!   administrators, STCs or a pending request's deciders) and the account's contracts only
//!   to the ticketing system, operators, active members of the account, and a person with a
//!   pending request there (who is shown who it waits with, as GetMyAccess shows it). Anyone
//!   else learns only their own history: when their request was denied or their access ended.
//! - **Email-domain policies** of an account (which domains' requests are approved
//!   automatically, held or refused) are kept by operators (on any account, suspended or not)
//!   and by the account's Site Technical Contacts, as administrators (active, verified email,
//!   ACTIVE account) and STC only: a TC is refused with SITE_TECHNICAL_CONTACT_REQUIRED, anyone
//!   else with what administering refuses ([`Operation::ManageEmailDomains`]).
//! - **A request for access from an email domain** ([`new_request`]) follows the account's
//!   policy for exactly that domain: approved by the service itself (as Authorized User at
//!   most), held for an administrator (also when the domain has no policy), or refused
//!   (EMAIL_DOMAIN_REFUSED). The refusal comes after the account was found in the caller's
//!   country, as every request does, so it reveals no more than a pending request would.
//! - **A person reading their own request** sees the decision and its reason, but not which
//!   administrator made it ([`shows_decider`]); administrators and operators do.
//! - **Who hears of a pending request** ([`request_audience`]): when it is made and when it is
//!   reminded, the account's administrators with a verified email (all of them if none has
//!   one); when it is escalated, its STCs (verified ones, else all); operators whenever the
//!   account has no administrator with a verified email or is suspended, so that no request
//!   waits for someone who cannot decide it.
//! - **Who is warned that the contracts end** ([`contract_end_audience`]): the STCs of an
//!   ACTIVE account (verified ones, else all); nobody on a suspended account.
//! - **Recertification** ([`Operation::CertifyMember`], [`recertified`]): after a renewal the
//!   account's administrators (or an operator) confirm its members. An administrator does not
//!   confirm themself (another administrator vouches: every account keeps an STC, and STCs are
//!   never asked). STCs are never removed by recertification: only operators remove STCs.

use super::access_request::AccessRequestState;
use super::decision::{Action, CheckFacts, CheckInput, Decision, DecisionReason, decide};
use super::email_domain::DomainAction;
use super::ids::WebId;
use super::model::AccountStatus;
use super::role::Role;
use crate::clock::Millis;

mod audience;
pub use audience::{
    Administrator, Audience, administrators_told, contract_end_audience, request_audience,
};

/// Who is acting, as the transport established it from a verified token.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub web_id: &'a WebId,
    /// Scope `entitlements.admin`.
    pub operator: bool,
    /// Scope `entitlements.check`.
    pub checker: bool,
    /// The token carries an email claim: a person who can be written to.
    pub has_email: bool,
}

/// The actor's standing on the account acted on, read in the same transaction as the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub account: AccountStatus,
    /// The actor's active role on the account, if any.
    pub role: Option<Role>,
    pub email_verified: bool,
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// Create accounts, change their status or contracts, designate or remove STCs, read an
    /// account's record or the audit trail.
    RunAccounts,
    /// Ask CheckEntitlement about `subject`.
    Check { subject: &'a WebId },
    /// List the accounts where `subject` may act (ListEntitlements): every answer of it is a
    /// check's answer, so whoever may check `subject` may list, and nobody else.
    ListEntitlements { subject: &'a WebId },
    /// Follow the change feed (WatchEntitlementChanges).
    WatchChanges,
    /// Ask for access to an account with the given status.
    RequestAccess { account: AccountStatus },
    /// Withdraw a request made by `requester`.
    WithdrawRequest { requester: &'a WebId },
    /// Approve or deny a request made by `requester`.
    DecideRequest {
        requester: &'a WebId,
        standing: Standing,
    },
    /// List an account's requests or members.
    ReadMembers { standing: Standing },
    /// Change the role of, or remove, `member` (whose active role is `role`, if any).
    ChangeMember {
        standing: Standing,
        member: &'a WebId,
        role: Option<Role>,
    },
    /// Set, delete or list an account's email-domain policies.
    ManageEmailDomains { standing: Standing },
    /// Confirm (recertify) `member` of an account after its contract was renewed.
    CertifyMember {
        standing: Standing,
        member: &'a WebId,
    },
    /// Act on one's own person record: verify one's email, ask for a code, read one's access.
    OwnProfile,
}

/// Why an actor may not do what they asked. Each is one published error reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    #[error("this call needs a token with the entitlements.admin scope")]
    AdminScopeRequired,
    #[error("checking another person's entitlement needs the entitlements.check scope")]
    CheckScopeRequired,
    #[error("the token has no email claim; this call is for a person with an email address")]
    EmailClaimRequired,
    #[error("this account is suspended")]
    AccountSuspended,
    #[error("only the requester may withdraw a request")]
    NotYourRequest,
    #[error("nobody may decide their own request")]
    SelfDecision,
    #[error("only a Site Technical Contact or Technical Contact of this account may do this")]
    NotAnAdministrator,
    #[error("verify your email address before administering this account")]
    AdministratorEmailNotVerified,
    #[error("administrators may not change their own membership; ask another administrator")]
    SelfModification,
    #[error("only an operator adds or removes a Site Technical Contact")]
    SiteTechnicalContactProtected,
    #[error("only a Site Technical Contact of this account (or an operator) may do this")]
    SiteTechnicalContactRequired,
    #[error(
        "this account does not take requests for access from your email domain; ask its Site Technical Contact"
    )]
    EmailDomainRefused,
}

impl Refusal {
    /// A refusal about the state of the account rather than the actor's rights.
    pub fn is_precondition(self) -> bool {
        matches!(
            self,
            Refusal::AccountSuspended | Refusal::EmailClaimRequired | Refusal::EmailDomainRefused
        )
    }
}

pub fn authorize(actor: &Actor<'_>, op: &Operation<'_>) -> Result<(), Refusal> {
    match *op {
        Operation::RunAccounts => operator(actor),
        Operation::Check { subject } | Operation::ListEntitlements { subject } => {
            if actor.checker || actor.operator || actor.web_id == subject {
                Ok(())
            } else {
                Err(Refusal::CheckScopeRequired)
            }
        }
        Operation::WatchChanges => {
            if actor.checker || actor.operator {
                Ok(())
            } else {
                Err(Refusal::CheckScopeRequired)
            }
        }
        Operation::RequestAccess { account } => {
            if account == AccountStatus::Suspended {
                Err(Refusal::AccountSuspended)
            } else if !actor.has_email {
                Err(Refusal::EmailClaimRequired)
            } else {
                Ok(())
            }
        }
        Operation::WithdrawRequest { requester } => {
            if actor.web_id == requester {
                Ok(())
            } else {
                Err(Refusal::NotYourRequest)
            }
        }
        Operation::DecideRequest {
            requester,
            standing,
        } => {
            if actor.web_id == requester {
                return Err(Refusal::SelfDecision);
            }
            administrator(&standing)
        }
        Operation::ReadMembers { standing } => {
            if actor.operator {
                return Ok(());
            }
            administrator(&standing)
        }
        Operation::ChangeMember {
            standing,
            member,
            role,
        } => {
            if !actor.operator {
                administrator(&standing)?;
                if actor.web_id == member {
                    return Err(Refusal::SelfModification);
                }
            }
            if role == Some(Role::SiteTechnicalContact) {
                return Err(Refusal::SiteTechnicalContactProtected);
            }
            Ok(())
        }
        Operation::ManageEmailDomains { standing } => {
            if actor.operator {
                return Ok(());
            }
            administrator(&standing)?;
            if standing.role == Some(Role::SiteTechnicalContact) {
                Ok(())
            } else {
                Err(Refusal::SiteTechnicalContactRequired)
            }
        }
        Operation::CertifyMember { standing, member } => {
            if actor.operator {
                return Ok(());
            }
            administrator(&standing)?;
            if actor.web_id == member {
                return Err(Refusal::SelfModification);
            }
            Ok(())
        }
        Operation::OwnProfile => Ok(()),
    }
}

/// What a new request for access becomes under the account's policy for the requester's
/// email domain (None: the domain has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewRequest {
    /// Pending, for an administrator to decide.
    Held,
    /// Approved at once by the service itself.
    AutoApproved,
}

pub fn new_request(policy: Option<DomainAction>) -> Result<NewRequest, Refusal> {
    match policy {
        None | Some(DomainAction::Hold) => Ok(NewRequest::Held),
        Some(DomainAction::AutoApprove) => Ok(NewRequest::AutoApproved),
        Some(DomainAction::Refuse) => Err(Refusal::EmailDomainRefused),
    }
}

/// Whether `reader` is shown that `decider` decided a request made by `requester`. The
/// requester learns the outcome and the reason given, not the administrator's Web ID: a
/// denied person has no need of it, and it would point them at a colleague to pressure.
/// Everyone else who can read a request at all (its account's administrators, operators)
/// sees it, operators even on their own requests; and anyone sees their own name (a
/// requester who withdrew).
pub fn shows_decider(reader: &Actor<'_>, requester: &WebId, decider: &WebId) -> bool {
    reader.operator || reader.web_id != requester || reader.web_id == decider
}

/// What a person checking themself is told. Unless they are an active member of the account,
/// whether it exists or is suspended is not theirs to learn: those answers become what their
/// own relation to it says (a pending or denied request, a removed membership: things they
/// know), else NOT_A_MEMBER, as for any foreign account. Never an allow: a hidden refusal
/// stays a refusal. Service callers and active members get the decision as it is.
pub fn as_seen_by_self(
    actor: &Actor<'_>,
    facts: &CheckFacts,
    decision: Decision,
    now: Millis,
) -> Decision {
    let service = actor.checker || actor.operator;
    let member = facts.membership.is_some_and(|m| m.is_active_at(now));
    let hidden = matches!(
        decision.reason,
        DecisionReason::UnknownAccount | DecisionReason::AccountSuspended
    );
    if service || member || !hidden {
        return decision;
    }
    let ordinary = CheckFacts {
        account_status: Some(AccountStatus::Active),
        contracts: Vec::new().into(),
        ..facts.clone()
    };
    // Opening a service request is refused to every non-member, so this is their reason.
    let input = CheckInput {
        action: Action::OpenServiceRequest,
        product: None,
        severity: None,
    };
    let own = decide(&ordinary, &input, now);
    Decision {
        allowed: false,
        ..own
    }
}

/// Whether the caller of a check is shown, in its next step, who can help (names) and the
/// account's contracts. `facts` are the checked person's: for a person checking themself
/// these are their own standing.
pub fn shows_next_step_details(actor: &Actor<'_>, facts: &CheckFacts, now: Millis) -> bool {
    let member = facts.membership.is_some_and(|m| m.is_active_at(now));
    let waiting = facts
        .latest_request
        .is_some_and(|r| r.state_at(now) == AccessRequestState::Pending);
    actor.checker || actor.operator || member || waiting
}

/// Whether a member with `role` is asked to be recertified when the account's contract is
/// renewed: everyone but the STCs, whom only an operator designates and removes.
pub fn recertified(role: Role) -> bool {
    role != Role::SiteTechnicalContact
}

/// An account that does not exist: an operator is told so (Ok: answer NOT_FOUND); anyone else
/// gets the refusal they would get for an existing account they do not administer.
pub fn unknown_account(actor: &Actor<'_>) -> Result<(), Refusal> {
    if actor.operator {
        Ok(())
    } else {
        Err(Refusal::NotAnAdministrator)
    }
}

fn operator(actor: &Actor<'_>) -> Result<(), Refusal> {
    if actor.operator {
        Ok(())
    } else {
        Err(Refusal::AdminScopeRequired)
    }
}

/// An administrator: an active STC or TC with a verified email, on an ACTIVE account.
fn administrator(standing: &Standing) -> Result<(), Refusal> {
    if !standing.role.is_some_and(Role::is_administrator) {
        Err(Refusal::NotAnAdministrator)
    } else if !standing.email_verified {
        Err(Refusal::AdministratorEmailNotVerified)
    } else if standing.account == AccountStatus::Suspended {
        Err(Refusal::AccountSuspended)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
