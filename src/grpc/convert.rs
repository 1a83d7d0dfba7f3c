//! proto <-> domain. Every input field is validated here and errors name the field.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;

use super::status::invalid_field;
use crate::clock::Millis;
use crate::domain::Reason;
use crate::domain::{
    AccessRequestState, AccessRequestView, Account, AccountStatus, Action, AuditRecord, Contract,
    DeciderGroup, DecisionReason, DomainAction, DomainRule, MemberView, NextStep, NextStepKind,
    ParseError, Role, Waiting,
};
use crate::proto::v1 as pb;

/// Parses one field with a domain parser, naming the field in the error.
pub fn field<T>(
    name: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<T, Status> {
    parse(value).map_err(|e| invalid_field(name, Reason::InvalidArgument, &e.0))
}

/// One line of text (a name, a company name, a code): see `ids::parse_line`.
pub fn line(name: &str, value: &str, max_chars: usize, required: bool) -> Result<String, Status> {
    field(name, value, |v| {
        crate::domain::ids::parse_line(v, max_chars, required)
    })
}

/// Text that may have several lines (a reason): see `ids::parse_text`.
pub fn text(name: &str, value: &str, max_chars: usize, required: bool) -> Result<String, Status> {
    field(name, value, |v| {
        crate::domain::ids::parse_text(v, max_chars, required)
    })
}

fn unknown_enum(name: &str, v: i32) -> Status {
    invalid_field(name, Reason::InvalidArgument, &format!("unknown value {v}"))
}

/// 0 (unspecified) is None.
pub fn role(name: &str, v: i32) -> Result<Option<Role>, Status> {
    Ok(
        match pb::Role::try_from(v).map_err(|_| unknown_enum(name, v))? {
            pb::Role::Unspecified => None,
            pb::Role::ProvisionalCaller => Some(Role::ProvisionalCaller),
            pb::Role::AuthorizedUser => Some(Role::AuthorizedUser),
            pb::Role::TechnicalContact => Some(Role::TechnicalContact),
            pb::Role::SiteTechnicalContact => Some(Role::SiteTechnicalContact),
        },
    )
}

pub fn required_role(name: &str, v: i32) -> Result<Role, Status> {
    role(name, v)?.ok_or_else(|| invalid_field(name, Reason::InvalidArgument, "is required"))
}

pub fn state(name: &str, v: i32) -> Result<Option<AccessRequestState>, Status> {
    Ok(
        match pb::AccessRequestState::try_from(v).map_err(|_| unknown_enum(name, v))? {
            pb::AccessRequestState::Unspecified => None,
            pb::AccessRequestState::Pending => Some(AccessRequestState::Pending),
            pb::AccessRequestState::Approved => Some(AccessRequestState::Approved),
            pb::AccessRequestState::Denied => Some(AccessRequestState::Denied),
            pb::AccessRequestState::Withdrawn => Some(AccessRequestState::Withdrawn),
            pb::AccessRequestState::Expired => Some(AccessRequestState::Expired),
        },
    )
}

pub fn action(name: &str, v: i32) -> Result<Action, Status> {
    match pb::Action::try_from(v).map_err(|_| unknown_enum(name, v))? {
        pb::Action::Unspecified => Err(invalid_field(name, Reason::InvalidArgument, "is required")),
        pb::Action::OpenServiceRequest => Ok(Action::OpenServiceRequest),
        pb::Action::ViewSupportArea => Ok(Action::ViewSupportArea),
        pb::Action::ManageUsers => Ok(Action::ManageUsers),
    }
}

pub fn account_status(name: &str, v: i32) -> Result<AccountStatus, Status> {
    match pb::AccountStatus::try_from(v).map_err(|_| unknown_enum(name, v))? {
        pb::AccountStatus::Unspecified => {
            Err(invalid_field(name, Reason::InvalidArgument, "is required"))
        }
        pb::AccountStatus::Active => Ok(AccountStatus::Active),
        pb::AccountStatus::Suspended => Ok(AccountStatus::Suspended),
    }
}

pub fn severity(name: &str, v: i32) -> Result<Option<u8>, Status> {
    match v {
        0 => Ok(None),
        1..=4 => Ok(u8::try_from(v).ok()),
        _ => Err(invalid_field(
            name,
            Reason::InvalidArgument,
            "must be 1-4, or 0 when not given",
        )),
    }
}

pub fn timestamp_in(name: &str, ts: Option<&prost_types::Timestamp>) -> Result<Millis, Status> {
    let ts = ts.ok_or_else(|| invalid_field(name, Reason::InvalidArgument, "is required"))?;
    // Years 1-9999, as google.protobuf.Timestamp allows.
    if !(-62_135_596_800..=253_402_300_799).contains(&ts.seconds)
        || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return Err(invalid_field(
            name,
            Reason::InvalidArgument,
            "is out of range",
        ));
    }
    Ok(ts.seconds * 1000 + i64::from(ts.nanos / 1_000_000))
}

/// An optional timestamp (AIP-214 `expire_time`): unset is None, a set one must be in range.
pub fn optional_timestamp_in(
    name: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<Millis>, Status> {
    ts.map(|t| timestamp_in(name, Some(t))).transpose()
}

pub fn timestamp(ms: Millis) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    })
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

pub fn page_size(v: i32) -> Result<u32, Status> {
    page_size_up_to(v, MAX_PAGE_SIZE)
}

/// A page size for a list whose pages cost more than a read each: at most `max`.
pub fn page_size_up_to(v: i32, max: u32) -> Result<u32, Status> {
    match v {
        0 => Ok(DEFAULT_PAGE_SIZE.min(max)),
        v if v < 0 => Err(invalid_field(
            "page_size",
            Reason::InvalidArgument,
            "must not be negative",
        )),
        // Larger asks are served at the cap, as AIP-158 suggests, not refused.
        v => Ok(u32::try_from(v).unwrap_or(max).min(max)),
    }
}

/// Page tokens are opaque to callers: a kind tag (so a token from one list is refused by
/// another) and the keyset position.
pub fn page_token_out(kind: &str, key: Option<String>) -> String {
    key.map(|k| URL_SAFE_NO_PAD.encode(format!("{kind}:{k}")))
        .unwrap_or_default()
}

pub fn page_token_in<T>(
    kind: &str,
    token: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid_field(
            "page_token",
            Reason::InvalidPageToken,
            "is not a token this list gave out",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let key = raw
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(bad)?;
    parse(key).map(Some).ok_or_else(bad)
}

pub fn role_out(r: Option<Role>) -> i32 {
    (match r {
        None => pb::Role::Unspecified,
        Some(Role::ProvisionalCaller) => pb::Role::ProvisionalCaller,
        Some(Role::AuthorizedUser) => pb::Role::AuthorizedUser,
        Some(Role::TechnicalContact) => pb::Role::TechnicalContact,
        Some(Role::SiteTechnicalContact) => pb::Role::SiteTechnicalContact,
    }) as i32
}

fn state_out(s: AccessRequestState) -> i32 {
    (match s {
        AccessRequestState::Pending => pb::AccessRequestState::Pending,
        AccessRequestState::Approved => pb::AccessRequestState::Approved,
        AccessRequestState::Denied => pb::AccessRequestState::Denied,
        AccessRequestState::Withdrawn => pb::AccessRequestState::Withdrawn,
        AccessRequestState::Expired => pb::AccessRequestState::Expired,
    }) as i32
}

pub fn reason_out(r: DecisionReason) -> i32 {
    use pb::DecisionReason as P;
    (match r {
        DecisionReason::Granted => P::Granted,
        DecisionReason::UnknownAccount => P::UnknownAccount,
        DecisionReason::AccountSuspended => P::AccountSuspended,
        DecisionReason::NotAMember => P::NotAMember,
        DecisionReason::RequestPending => P::RequestPending,
        DecisionReason::RequestDenied => P::RequestDenied,
        DecisionReason::AccessRevoked => P::AccessRevoked,
        DecisionReason::EmailNotVerified => P::EmailNotVerified,
        DecisionReason::RoleInsufficient => P::RoleInsufficient,
        DecisionReason::NoActiveContract => P::NoActiveContract,
        DecisionReason::ProductNotCovered => P::ProductNotCovered,
        DecisionReason::SeverityNotCovered => P::SeverityNotCovered,
    }) as i32
}

fn decider_group_out(g: DeciderGroup) -> pb::DeciderGroup {
    match g {
        DeciderGroup::Administrators => pb::DeciderGroup::Administrators,
        DeciderGroup::SiteTechnicalContacts => pb::DeciderGroup::SiteTechnicalContacts,
        DeciderGroup::Operators => pb::DeciderGroup::Operators,
    }
}

impl From<NextStep> for pb::NextStep {
    fn from(s: NextStep) -> Self {
        use pb::NextStepKind as P;
        pb::NextStep {
            kind: match s.kind {
                NextStepKind::VerifyEmail => P::VerifyEmail,
                NextStepKind::WaitForDecision => P::WaitForDecision,
                NextStepKind::RequestAccess => P::RequestAccess,
                NextStepKind::AskForHigherRole => P::AskForHigherRole,
                NextStepKind::ContactSiteTechnicalContact => P::ContactSiteTechnicalContact,
                NextStepKind::OpenAtLowerSeverity => P::OpenAtLowerSeverity,
                NextStepKind::ContactSupport => P::ContactSupport,
                NextStepKind::CheckAccountNumber => P::CheckAccountNumber,
            } as i32,
            decider_group: s
                .group
                .map_or(pb::DeciderGroup::Unspecified, decider_group_out)
                as i32,
            contact_names: s.names,
            access_request_id: s.request.map(|r| r.to_string()).unwrap_or_default(),
            start_time: s.since.and_then(timestamp),
            end_time: s.until.and_then(timestamp),
            contract_ids: s.contract_ids.iter().map(ToString::to_string).collect(),
            highest_severity: s.highest_severity.map_or(0, i32::from),
        }
    }
}

impl From<Waiting> for pb::WaitingRequest {
    fn from(w: Waiting) -> Self {
        pb::WaitingRequest {
            access_request_id: w.request.to_string(),
            icn: w.icn.to_string(),
            wait_start_time: timestamp(w.since),
            decider_group: decider_group_out(w.with) as i32,
            decider_names: w.names,
            next_step_time: w.next_step.and_then(timestamp),
            expire_time: timestamp(w.expires),
        }
    }
}

impl From<AccessRequestView> for pb::AccessRequest {
    fn from(v: AccessRequestView) -> Self {
        let r = v.request;
        let p = v.requester;
        pb::AccessRequest {
            access_request_id: r.id.to_string(),
            icn: r.icn.to_string(),
            web_id: r.web_id.to_string(),
            requested_role: role_out(Some(r.requested_role)),
            granted_role: role_out(r.granted_role),
            state: state_out(r.state),
            country_code: r.country.to_string(),
            requester_email: p.as_ref().map(|p| p.email.to_string()).unwrap_or_default(),
            requester_given_name: p.as_ref().map(|p| p.given_name.clone()).unwrap_or_default(),
            requester_family_name: p.map(|p| p.family_name).unwrap_or_default(),
            decided_by: r.decided_by.map(|d| d.to_string()).unwrap_or_default(),
            decision_reason: r.decision_reason.unwrap_or_default(),
            create_time: timestamp(r.created_at),
            update_time: timestamp(r.updated_at),
            expire_time: timestamp(r.expires_at),
            company_name: v.company_name,
        }
    }
}

impl From<MemberView> for pb::Membership {
    fn from(v: MemberView) -> Self {
        let m = v.membership;
        let p = v.person;
        pb::Membership {
            icn: m.icn.to_string(),
            web_id: m.web_id.to_string(),
            role: role_out(Some(m.role)),
            email: p.as_ref().map(|p| p.email.to_string()).unwrap_or_default(),
            given_name: p.as_ref().map(|p| p.given_name.clone()).unwrap_or_default(),
            family_name: p
                .as_ref()
                .map(|p| p.family_name.clone())
                .unwrap_or_default(),
            email_verified: p.is_some_and(|p| p.email_verified()),
            create_time: timestamp(m.created_at),
            update_time: timestamp(m.updated_at),
            company_name: v.company_name,
            expire_time: m.expires_at.and_then(timestamp),
            recertify_time: v.recertify_by.and_then(timestamp),
        }
    }
}

impl From<Account> for pb::Account {
    fn from(a: Account) -> Self {
        pb::Account {
            icn: a.icn.to_string(),
            company_name: a.company_name,
            country_code: a.country.to_string(),
            status: (match a.status {
                AccountStatus::Active => pb::AccountStatus::Active,
                AccountStatus::Suspended => pb::AccountStatus::Suspended,
            }) as i32,
            create_time: timestamp(a.created_at),
            update_time: timestamp(a.updated_at),
            status_reason: a.status_reason,
        }
    }
}

impl From<Contract> for pb::SupportContract {
    fn from(c: Contract) -> Self {
        pb::SupportContract {
            icn: c.icn.to_string(),
            contract_id: c.contract_id.to_string(),
            product_ids: c.product_ids.into_iter().map(|p| p.to_string()).collect(),
            start_time: timestamp(c.starts_at),
            end_time: timestamp(c.ends_at),
            includes_24x7: c.includes_24x7,
            update_time: timestamp(c.updated_at),
        }
    }
}

impl From<AuditRecord> for pb::AuditEvent {
    fn from(e: AuditRecord) -> Self {
        pb::AuditEvent {
            audit_event_id: e.id,
            event_time: timestamp(e.at),
            actor: e.actor,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            icn: e.icn.map(|i| i.to_string()).unwrap_or_default(),
            before_json: e.before_json.unwrap_or_default(),
            after_json: e.after_json.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            trace_id: e.trace_id.unwrap_or_default(),
        }
    }
}

/// 0 (unspecified) is None.
pub fn domain_action(name: &str, v: i32) -> Result<Option<DomainAction>, Status> {
    Ok(
        match pb::EmailDomainAction::try_from(v).map_err(|_| unknown_enum(name, v))? {
            pb::EmailDomainAction::Unspecified => None,
            pb::EmailDomainAction::AutoApprove => Some(DomainAction::AutoApprove),
            pb::EmailDomainAction::Hold => Some(DomainAction::Hold),
            pb::EmailDomainAction::Refuse => Some(DomainAction::Refuse),
        },
    )
}

fn domain_action_out(a: DomainAction) -> i32 {
    match a {
        DomainAction::AutoApprove => pb::EmailDomainAction::AutoApprove as i32,
        DomainAction::Hold => pb::EmailDomainAction::Hold as i32,
        DomainAction::Refuse => pb::EmailDomainAction::Refuse as i32,
    }
}

impl From<DomainRule> for pb::EmailDomainPolicy {
    fn from(r: DomainRule) -> Self {
        pb::EmailDomainPolicy {
            icn: r.icn.to_string(),
            domain: r.domain.to_string(),
            action: domain_action_out(r.action),
            role: role_out(r.role),
            created_by: r.created_by.to_string(),
            create_time: timestamp(r.created_at),
            update_time: timestamp(r.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_step_names_are_the_wire_names() {
        for kind in NextStepKind::ALL {
            let step = pb::NextStep::from(NextStep {
                group: Some(DeciderGroup::Operators),
                ..crate::domain::next_step::NextStep::of(kind)
            });
            let wire = pb::NextStepKind::try_from(step.kind).map(|k| k.as_str_name());
            assert_eq!(
                wire,
                Ok(format!("NEXT_STEP_KIND_{}", kind.as_str()).as_str())
            );
        }
        for group in [
            DeciderGroup::Administrators,
            DeciderGroup::SiteTechnicalContacts,
            DeciderGroup::Operators,
        ] {
            assert_eq!(
                decider_group_out(group).as_str_name(),
                format!("DECIDER_GROUP_{}", group.as_str())
            );
        }
    }

    #[test]
    fn page_tokens_round_trip_and_are_kind_checked() {
        let t = page_token_out("members", Some("ana".to_owned()));
        assert_eq!(
            page_token_in("members", &t, |s| Some(s.to_owned()))
                .ok()
                .flatten(),
            Some("ana".to_owned())
        );
        assert!(page_token_in("audit", &t, |s| Some(s.to_owned())).is_err());
        assert!(page_token_in("members", "not base64!", |s| Some(s.to_owned())).is_err());
        assert_eq!(page_token_out("members", None), "");
    }

    #[test]
    fn timestamps_round_trip() {
        let ts = timestamp(1_700_000_000_123);
        assert_eq!(timestamp_in("t", ts.as_ref()).ok(), Some(1_700_000_000_123));
        assert_eq!(
            timestamp(-1).map(|t| (t.seconds, t.nanos)),
            Some((-1, 999_000_000))
        );
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(10_000).ok(), Some(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
        assert_eq!(page_size_up_to(0, 200).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size_up_to(201, 200).ok(), Some(200));
        assert_eq!(page_size_up_to(7, 200).ok(), Some(7));
        assert!(page_size_up_to(-1, 200).is_err());
    }
}
