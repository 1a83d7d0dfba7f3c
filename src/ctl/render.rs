//! Responses as one ordered tree ([`Node`], one builder per message: proto field names, enums by
//! name, timestamps as RFC 3339 UTC), printed either as JSON or as indented `field: value` text.
//! (serde_json's own map sorts its keys; this keeps the proto's field order.)

use prost_types::Timestamp;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::names::enum_name;
use super::time::format_rfc3339;
use crate::proto::v1::{
    AccessRequest, AccessRequestState, Account, AccountStatus, AuditEvent, DeciderGroup,
    DecisionReason, EmailDomainAction, EmailDomainPolicy, Membership, NextStep, NextStepKind, Role,
    SupportContract, WaitingRequest,
};

/// A JSON value whose objects keep their fields in the order they were built.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Value(Value),
    /// A proto enum value by name.
    Enum(String),
    Object(Vec<(&'static str, Node)>),
    List(Vec<Node>),
}

/// `obj! { "field" => value, ... }`: an object node; each value goes through `Node::from`.
macro_rules! obj {
    ($($key:literal => $value:expr),* $(,)?) => {
        $crate::ctl::render::Node::Object(vec![$(($key, $crate::ctl::render::Node::from($value))),*])
    };
}
pub(crate) use obj;

impl From<Value> for Node {
    fn from(v: Value) -> Self {
        Node::Value(v)
    }
}
impl From<&String> for Node {
    fn from(s: &String) -> Self {
        Node::Value(Value::String(s.clone()))
    }
}
impl From<bool> for Node {
    fn from(b: bool) -> Self {
        Node::Value(Value::Bool(b))
    }
}
impl From<i64> for Node {
    fn from(n: i64) -> Self {
        Node::Value(Value::from(n))
    }
}
impl From<&Vec<String>> for Node {
    fn from(items: &Vec<String>) -> Self {
        Node::List(items.iter().map(Node::from).collect())
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(v) => v.serialize(ser),
            Node::Enum(name) => ser.serialize_str(name),
            Node::Object(fields) => {
                let mut map = ser.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::List(items) => {
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

pub fn timestamp(ts: Option<&Timestamp>) -> Node {
    Node::Value(ts.map_or(Value::Null, |t| Value::String(format_rfc3339(t))))
}

fn name(s: String) -> Node {
    Node::Enum(s)
}

pub fn role(v: i32) -> Node {
    name(enum_name(v, Role::as_str_name))
}

pub fn state(v: i32) -> Node {
    name(enum_name(v, AccessRequestState::as_str_name))
}

pub fn status(v: i32) -> Node {
    name(enum_name(v, AccountStatus::as_str_name))
}

pub fn decision_reason(v: i32) -> Node {
    name(enum_name(v, DecisionReason::as_str_name))
}

/// An optional sub-message: its node, or `null` when unset.
pub fn opt<T>(msg: Option<&T>, to_node: fn(&T) -> Node) -> Node {
    msg.map_or(Node::Value(Value::Null), to_node)
}

/// A repeated sub-message.
pub fn list<T>(msgs: &[T], to_node: fn(&T) -> Node) -> Node {
    Node::List(msgs.iter().map(to_node).collect())
}

pub fn account(a: &Account) -> Node {
    obj! {
        "icn" => &a.icn,
        "company_name" => &a.company_name,
        "country_code" => &a.country_code,
        "status" => status(a.status),
        "status_reason" => &a.status_reason,
        "create_time" => timestamp(a.create_time.as_ref()),
        "update_time" => timestamp(a.update_time.as_ref()),
    }
}

pub fn access_request(r: &AccessRequest) -> Node {
    obj! {
        "access_request_id" => &r.access_request_id,
        "icn" => &r.icn,
        "company_name" => &r.company_name,
        "country_code" => &r.country_code,
        "web_id" => &r.web_id,
        "requester_email" => &r.requester_email,
        "requester_given_name" => &r.requester_given_name,
        "requester_family_name" => &r.requester_family_name,
        "requested_role" => role(r.requested_role),
        "granted_role" => role(r.granted_role),
        "state" => state(r.state),
        "decided_by" => &r.decided_by,
        "decision_reason" => &r.decision_reason,
        "create_time" => timestamp(r.create_time.as_ref()),
        "update_time" => timestamp(r.update_time.as_ref()),
        "expire_time" => timestamp(r.expire_time.as_ref()),
    }
}

pub fn next_step(n: &NextStep) -> Node {
    obj! {
        "kind" => name(enum_name(n.kind, NextStepKind::as_str_name)),
        "decider_group" => name(enum_name(n.decider_group, DeciderGroup::as_str_name)),
        "contact_names" => &n.contact_names,
        "access_request_id" => &n.access_request_id,
        "start_time" => timestamp(n.start_time.as_ref()),
        "end_time" => timestamp(n.end_time.as_ref()),
        "contract_ids" => &n.contract_ids,
        "highest_severity" => i64::from(n.highest_severity),
    }
}

pub fn waiting_request(w: &WaitingRequest) -> Node {
    obj! {
        "access_request_id" => &w.access_request_id,
        "icn" => &w.icn,
        "wait_start_time" => timestamp(w.wait_start_time.as_ref()),
        "decider_group" => name(enum_name(w.decider_group, DeciderGroup::as_str_name)),
        "decider_names" => list(&w.decider_names, |n: &String| Node::from(n)),
        "next_step_time" => timestamp(w.next_step_time.as_ref()),
        "expire_time" => timestamp(w.expire_time.as_ref()),
    }
}

pub fn membership(m: &Membership) -> Node {
    obj! {
        "icn" => &m.icn,
        "company_name" => &m.company_name,
        "web_id" => &m.web_id,
        "role" => role(m.role),
        "email" => &m.email,
        "given_name" => &m.given_name,
        "family_name" => &m.family_name,
        "email_verified" => m.email_verified,
        "create_time" => timestamp(m.create_time.as_ref()),
        "update_time" => timestamp(m.update_time.as_ref()),
        "expire_time" => timestamp(m.expire_time.as_ref()),
        "recertify_time" => timestamp(m.recertify_time.as_ref()),
    }
}

pub fn email_domain_policy(p: &EmailDomainPolicy) -> Node {
    obj! {
        "icn" => &p.icn,
        "domain" => &p.domain,
        "action" => name(enum_name(p.action, EmailDomainAction::as_str_name)),
        "role" => role(p.role),
        "created_by" => &p.created_by,
        "create_time" => timestamp(p.create_time.as_ref()),
        "update_time" => timestamp(p.update_time.as_ref()),
    }
}

pub fn contract(c: &SupportContract) -> Node {
    obj! {
        "icn" => &c.icn,
        "contract_id" => &c.contract_id,
        "product_ids" => &c.product_ids,
        "start_time" => timestamp(c.start_time.as_ref()),
        "end_time" => timestamp(c.end_time.as_ref()),
        "includes_24x7" => c.includes_24x7,
        "update_time" => timestamp(c.update_time.as_ref()),
    }
}

pub fn audit_event(e: &AuditEvent) -> Node {
    obj! {
        "audit_event_id" => e.audit_event_id,
        "event_time" => timestamp(e.event_time.as_ref()),
        "actor" => &e.actor,
        "action" => &e.action,
        "target_type" => &e.target_type,
        "target_id" => &e.target_id,
        "icn" => &e.icn,
        "reason" => &e.reason,
        "before_json" => &e.before_json,
        "after_json" => &e.after_json,
        "trace_id" => &e.trace_id,
    }
}

/// One JSON object on one line.
pub fn json(node: &Node) -> String {
    serde_json::to_string(node).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Readable lines. Unset fields (`null`, empty strings, `*_UNSPECIFIED`) are left out; an empty
/// list reads `(none)`; entries of a list of messages start with `- `.
pub fn text(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Object(fields) => write_object(&mut out, fields, 0),
        other => out.push_str(&format!("{}\n", scalar(other))),
    }
    out
}

fn is_blank(node: &Node) -> bool {
    match node {
        Node::Value(Value::Null) => true,
        Node::Value(Value::String(s)) => s.is_empty(),
        Node::Enum(name) => name.ends_with("_UNSPECIFIED"),
        _ => false,
    }
}

fn scalar(node: &Node) -> String {
    match node {
        Node::Value(Value::String(s)) | Node::Enum(s) => s.clone(),
        other => json(other),
    }
}

fn write_object(out: &mut String, fields: &[(&'static str, Node)], indent: usize) {
    let pad = " ".repeat(indent);
    for (key, value) in fields.iter().filter(|(_, v)| !is_blank(v)) {
        match value {
            Node::Object(inner) => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_object(out, inner, indent + 2);
            }
            Node::List(items) if items.is_empty() => {
                out.push_str(&format!("{pad}{key}: (none)\n"));
            }
            Node::List(items) if items.iter().all(|i| !matches!(i, Node::Object(_))) => {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.push_str(&format!("{pad}{key}: {}\n", joined.join(", ")));
            }
            Node::List(items) => {
                out.push_str(&format!("{pad}{key}:\n"));
                for item in items {
                    let mut entry = String::new();
                    match item {
                        Node::Object(inner) => write_object(&mut entry, inner, indent + 4),
                        other => entry.push_str(&format!("{pad}    {}\n", scalar(other))),
                    }
                    // The first line of each entry carries the list marker.
                    let entry = entry.replacen(&format!("{pad}    "), &format!("{pad}  - "), 1);
                    out.push_str(&entry);
                }
            }
            other => out.push_str(&format!("{pad}{key}: {}\n", scalar(other))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    fn sample() -> Node {
        let req = AccessRequest {
            access_request_id: "ar1".into(),
            state: 1,
            requested_role: 2,
            create_time: Some(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        };
        let tags = vec!["a".to_owned(), "b".to_owned()];
        obj! {
            "access_requests" => list(&[req], access_request),
            "tags" => &tags,
            "none" => Node::List(Vec::new()),
            "next_page_token" => &String::new(),
        }
    }

    #[test]
    fn text_keeps_field_order_and_skips_blanks() {
        let t = text(&sample());
        assert!(
            t.starts_with("access_requests:\n  - access_request_id: ar1\n    requested_role: ROLE_AUTHORIZED_USER\n    state: ACCESS_REQUEST_STATE_PENDING\n    create_time: 1970-01-01T00:00:00Z\n"),
            "{t}"
        );
        assert!(t.ends_with("tags: a, b\nnone: (none)\n"), "{t}");
        assert!(
            !t.contains("next_page_token") && !t.contains("expire_time"),
            "{t}"
        );
    }

    #[test]
    fn json_is_one_ordered_object() {
        let j = json(&sample());
        assert!(
            j.starts_with(r#"{"access_requests":[{"access_request_id":"ar1","icn":"","#),
            "{j}"
        );
        assert!(
            j.contains(r#""state":"ACCESS_REQUEST_STATE_PENDING""#),
            "{j}"
        );
        assert!(j.contains(r#""expire_time":null"#), "{j}");
        assert!(
            j.ends_with(r#""tags":["a","b"],"none":[],"next_page_token":""}"#),
            "{j}"
        );
        let parsed: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(
            parsed["access_requests"][0]["create_time"],
            "1970-01-01T00:00:00Z"
        );
    }
}
