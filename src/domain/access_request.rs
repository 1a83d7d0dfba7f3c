//! The access request state machine: PENDING -> APPROVED | DENIED | WITHDRAWN | EXPIRED.

use super::ids::{AccessRequestId, CountryCode, Icn, WebId};
use super::role::Role;
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessRequestState {
    Pending,
    Approved,
    Denied,
    Withdrawn,
    Expired,
}

impl AccessRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessRequestState::Pending => "PENDING",
            AccessRequestState::Approved => "APPROVED",
            AccessRequestState::Denied => "DENIED",
            AccessRequestState::Withdrawn => "WITHDRAWN",
            AccessRequestState::Expired => "EXPIRED",
        }
    }
    pub fn from_db(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => AccessRequestState::Pending,
            "APPROVED" => AccessRequestState::Approved,
            "DENIED" => AccessRequestState::Denied,
            "WITHDRAWN" => AccessRequestState::Withdrawn,
            "EXPIRED" => AccessRequestState::Expired,
            _ => return None,
        })
    }
}

/// What a pending request that nobody decides brings about, before it expires: a reminder to
/// the account's administrators, then an escalation past them. Each is sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nudge {
    Remind,
    Escalate,
}

impl Nudge {
    pub const ALL: [Nudge; 2] = [Nudge::Remind, Nudge::Escalate];

    pub fn as_str(self) -> &'static str {
        match self {
            Nudge::Remind => "REMIND",
            Nudge::Escalate => "ESCALATE",
        }
    }
}

/// Who a pending request is with now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeciderGroup {
    Administrators,
    /// Escalated past the administrators to the account's Site Technical Contacts.
    SiteTechnicalContacts,
    /// Nobody on the account can decide it: support's operators.
    Operators,
}

impl DeciderGroup {
    /// The wire name without its `DECIDER_GROUP_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            DeciderGroup::Administrators => "ADMINISTRATORS",
            DeciderGroup::SiteTechnicalContacts => "SITE_TECHNICAL_CONTACTS",
            DeciderGroup::Operators => "OPERATORS",
        }
    }
}

/// Where a person's pending request stands, as "My agreements" shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub request: AccessRequestId,
    pub icn: Icn,
    pub since: Millis,
    pub with: DeciderGroup,
    /// The deciders' names: never their addresses or Web IDs.
    pub names: Vec<String>,
    /// When it is next reminded or escalated, if before it expires.
    pub next_step: Option<Millis>,
    pub expires: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: AccessRequestId,
    pub icn: Icn,
    pub web_id: WebId,
    pub country: CountryCode,
    pub requested_role: Role,
    pub granted_role: Option<Role>,
    pub state: AccessRequestState,
    pub decided_by: Option<WebId>,
    pub decision_reason: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the request is already {0}")]
    NotPending(&'static str),
    #[error("the request expired before it was decided")]
    Expired,
    #[error("{0} may not be granted for this request")]
    RoleNotGrantable(Role),
}

impl AccessRequest {
    pub fn new(
        icn: Icn,
        web_id: WebId,
        country: CountryCode,
        requested_role: Role,
        now: Millis,
        ttl_ms: Millis,
    ) -> Self {
        Self {
            id: AccessRequestId::new_v7(),
            icn,
            web_id,
            country,
            requested_role,
            granted_role: None,
            state: AccessRequestState::Pending,
            decided_by: None,
            decision_reason: None,
            created_at: now,
            updated_at: now,
            expires_at: now.saturating_add(ttl_ms),
        }
    }

    /// A pending request past its deadline is expired even before the sweeper records it.
    pub fn is_overdue(&self, now: Millis) -> bool {
        self.state == AccessRequestState::Pending && now >= self.expires_at
    }

    /// Pending and not past its deadline: still waiting for a decision at `now`.
    pub fn is_waiting(&self, now: Millis) -> bool {
        self.state == AccessRequestState::Pending && now < self.expires_at
    }

    fn ensure_pending(&self, now: Millis) -> Result<(), TransitionError> {
        if self.state == AccessRequestState::Expired {
            return Err(TransitionError::Expired);
        }
        if self.state != AccessRequestState::Pending {
            return Err(TransitionError::NotPending(self.state.as_str()));
        }
        if self.is_overdue(now) {
            return Err(TransitionError::Expired);
        }
        Ok(())
    }

    /// Grants the requested role, or a lower one; never a Site Technical Contact (operators
    /// designate those) and never a Provisional Caller (that is not a membership).
    pub fn approve(
        &mut self,
        granted: Option<Role>,
        by: WebId,
        now: Millis,
    ) -> Result<Role, TransitionError> {
        self.ensure_pending(now)?;
        let role = granted.unwrap_or(self.requested_role);
        if !role.is_self_service() || role > self.requested_role {
            return Err(TransitionError::RoleNotGrantable(role));
        }
        self.state = AccessRequestState::Approved;
        self.granted_role = Some(role);
        self.decided_by = Some(by);
        self.updated_at = now;
        Ok(role)
    }

    pub fn deny(&mut self, reason: String, by: WebId, now: Millis) -> Result<(), TransitionError> {
        self.ensure_pending(now)?;
        self.state = AccessRequestState::Denied;
        self.decided_by = Some(by);
        self.decision_reason = Some(reason);
        self.updated_at = now;
        Ok(())
    }

    pub fn withdraw(&mut self, reason: Option<String>, now: Millis) -> Result<(), TransitionError> {
        if self.state != AccessRequestState::Pending {
            return Err(TransitionError::NotPending(self.state.as_str()));
        }
        // Past its deadline it is expired, recorded or not: nothing is left to withdraw.
        if self.is_overdue(now) {
            return Err(TransitionError::Expired);
        }
        self.state = AccessRequestState::Withdrawn;
        self.decided_by = Some(self.web_id.clone());
        self.decision_reason = reason;
        self.updated_at = now;
        Ok(())
    }

    pub fn expire(&mut self, now: Millis) -> Result<(), TransitionError> {
        if self.state != AccessRequestState::Pending {
            return Err(TransitionError::NotPending(self.state.as_str()));
        }
        self.state = AccessRequestState::Expired;
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(role: Role) -> AccessRequest {
        AccessRequest::new(
            Icn::from_trusted("1234567".into()),
            WebId::from_trusted("ana".into()),
            CountryCode::from_trusted("US".into()),
            role,
            1_000,
            10_000,
        )
    }
    fn admin() -> WebId {
        WebId::from_trusted("boss".into())
    }

    #[test]
    fn approve_defaults_to_requested_role_and_allows_lower() {
        let mut r = req(Role::TechnicalContact);
        assert_eq!(
            r.clone().approve(None, admin(), 2_000),
            Ok(Role::TechnicalContact)
        );
        assert_eq!(
            r.approve(Some(Role::AuthorizedUser), admin(), 2_000),
            Ok(Role::AuthorizedUser)
        );
        assert_eq!(r.state, AccessRequestState::Approved);
        assert_eq!(r.granted_role, Some(Role::AuthorizedUser));
    }

    #[test]
    fn approve_never_grants_higher_stc_or_provisional() {
        let r = req(Role::AuthorizedUser);
        for role in [
            Role::TechnicalContact,
            Role::SiteTechnicalContact,
            Role::ProvisionalCaller,
        ] {
            assert_eq!(
                r.clone().approve(Some(role), admin(), 2_000),
                Err(TransitionError::RoleNotGrantable(role))
            );
        }
    }

    #[test]
    fn only_pending_requests_move() {
        let mut r = req(Role::AuthorizedUser);
        r.deny("no".into(), admin(), 2_000).unwrap();
        assert_eq!(
            r.clone().approve(None, admin(), 2_000),
            Err(TransitionError::NotPending("DENIED"))
        );
        assert_eq!(
            r.clone().withdraw(None, 2_000),
            Err(TransitionError::NotPending("DENIED"))
        );
        assert_eq!(r.expire(2_000), Err(TransitionError::NotPending("DENIED")));
    }

    #[test]
    fn a_request_waits_until_its_deadline_unless_decided() {
        let r = req(Role::AuthorizedUser);
        assert!(r.is_waiting(10_999));
        assert!(!r.is_waiting(11_000), "at its deadline it has expired");
        let mut denied = r.clone();
        denied.deny("no".into(), admin(), 2_000).unwrap();
        assert!(!denied.is_waiting(2_000));
    }

    #[test]
    fn an_overdue_request_cannot_be_withdrawn() {
        let r = req(Role::AuthorizedUser);
        assert_eq!(
            r.clone().withdraw(None, 11_000),
            Err(TransitionError::Expired)
        );
        let mut r = r;
        assert_eq!(r.withdraw(Some("changed my mind".into()), 10_999), Ok(()));
        assert_eq!(r.state, AccessRequestState::Withdrawn);
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        use AccessRequestState::*;
        for s in [Pending, Approved, Denied, Withdrawn, Expired] {
            assert_eq!(AccessRequestState::from_db(s.as_str()), Some(s));
        }
        assert_eq!(AccessRequestState::from_db("pending"), None);
        assert_eq!(AccessRequestState::from_db(""), None);
    }

    #[test]
    fn overdue_requests_cannot_be_decided() {
        let r = req(Role::AuthorizedUser);
        assert_eq!(
            r.clone().approve(None, admin(), 11_000),
            Err(TransitionError::Expired)
        );
        assert!(r.is_overdue(11_000));
        assert!(!r.is_overdue(10_999));
    }
}
