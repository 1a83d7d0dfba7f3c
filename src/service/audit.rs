//! Audit events: what changed, written in the same transaction as the change (by the write
//! path, `write.rs`). The JSON snapshots are built here by hand so nothing secret (code
//! hashes, email text) can slip into them.

use serde_json::{Value, json};

use super::{Caller, NewStc};
use crate::clock::Millis;
use crate::domain::{
    AccessRequest, Account, AuditRecord, Contract, DomainRule, Icn, Membership, Person,
};
use crate::mail::QueuedEmail;

pub(crate) fn account(a: &Account) -> Value {
    json!({
        "icn": a.icn.as_str(), "company_name": a.company_name, "country_code": a.country.as_str(),
        "status": a.status.as_str(), "status_reason": a.status_reason,
    })
}

pub(crate) fn request(r: &AccessRequest) -> Value {
    json!({
        "access_request_id": r.id.to_string(), "icn": r.icn.as_str(), "web_id": r.web_id.as_str(),
        "requested_role": r.requested_role.as_str(), "granted_role": r.granted_role.map(|g| g.as_str()),
        "state": r.state.as_str(), "decided_by": r.decided_by.as_ref().map(|d| d.as_str()),
        "decision_reason": r.decision_reason, "expires_at": r.expires_at,
    })
}

pub(crate) fn domain_rule(r: &DomainRule) -> Value {
    json!({
        "icn": r.icn.as_str(), "domain": r.domain.as_str(), "action": r.action.as_str(),
        "role": r.role.map(|g| g.as_str()), "created_by": r.created_by.as_str(),
    })
}

pub(crate) fn membership(m: &Membership) -> Value {
    json!({
        "icn": m.icn.as_str(), "web_id": m.web_id.as_str(), "role": m.role.as_str(),
        "removed_at": m.removed_at, "expires_at": m.expires_at,
    })
}

pub(crate) fn person(p: &Person) -> Value {
    json!({
        "web_id": p.web_id.as_str(), "email": p.email.as_str(), "email_verified": p.email_verified(),
    })
}

/// An operator named an existing person as an STC with other details than theirs: what was
/// kept, what was given, and which fields were therefore not applied.
pub(crate) fn identity_not_applied(kept: &Person, given: &NewStc, fields: &[&str]) -> Value {
    json!({
        "kept": person(kept),
        "given": {
            "email": given.email.as_str(), "given_name": given.given_name,
            "family_name": given.family_name,
        },
        "not_applied": fields,
    })
}

/// An email the worker gave up on: which, to whom (when it could be opened), how often tried.
/// Never its text, which may hold a verification code.
pub(crate) fn undeliverable(m: &QueuedEmail) -> Value {
    json!({
        "outbox_id": m.id, "kind": m.kind, "to": m.content.as_ref().ok().map(|c| c.to.as_str()),
        "attempts": m.attempts, "queued_at": m.created_at,
    })
}

pub(crate) fn contract(c: &Contract) -> Value {
    json!({
        "icn": c.icn.as_str(), "contract_id": c.contract_id.as_str(),
        "product_ids": c.product_ids.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "starts_at": c.starts_at, "ends_at": c.ends_at, "includes_24x7": c.includes_24x7,
    })
}

/// One audit event. `actor` is the caller's Web ID, or "system" for background work.
pub(crate) struct Event<'a> {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub icn: Option<&'a Icn>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<&'a str>,
}

/// The record of `e` by `caller` (None: the service itself), as the write path stores it.
pub(crate) fn record(caller: Option<&Caller>, now: Millis, e: Event<'_>) -> AuditRecord {
    AuditRecord {
        id: 0,
        at: now,
        actor: caller.map_or_else(|| "system".to_owned(), |c| c.web_id.to_string()),
        action: e.action.to_owned(),
        target_type: e.target_type.to_owned(),
        target_id: e.target_id,
        icn: e.icn.cloned(),
        before_json: e.before.map(|v| v.to_string()),
        after_json: e.after.map(|v| v.to_string()),
        reason: e.reason.filter(|r| !r.is_empty()).map(str::to_owned),
        trace_id: caller.and_then(|c| c.trace_id.clone()),
    }
}
