use serde_json::json;

use super::*;
use crate::domain::{Action, Icn};

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn ask() -> Value {
    json!({
        "subject": {"type": "user", "id": "pat"},
        "resource": {"type": "account", "id": "1234567", "properties": {"product_id": "5725-A1", "severity": 2}},
        "action": {"name": "open_service_request"},
    })
}

#[test]
fn an_evaluation_becomes_a_check() {
    let e = evaluation(&map(ask())).unwrap();
    assert_eq!(e.check.web_id.as_str(), "pat");
    assert_eq!(e.check.icn.to_string(), "1234567");
    assert_eq!(e.check.action, Action::OpenServiceRequest);
    assert_eq!(
        e.check.product.as_ref().map(|p| p.as_str()),
        Some("5725-A1")
    );
    assert_eq!(e.check.severity, Some(2));
    assert!(!e.check.fully_consistent);
    assert!(e.token.is_none());
}

#[test]
fn shape_errors_refuse_the_whole_request_and_value_errors_only_their_item() {
    let mut b = json!({
        "subject": {"type": "user", "id": "pat"},
        "action": {"name": "view_support_area"},
        "evaluations": [
            {"resource": {"type": "account", "id": "1"}},
            {"resource": {"type": "account", "id": "x"}},
            {"resource": {"type": "account", "id": "2"}, "action": {"name": "manage_users"}},
        ],
    });
    let Evaluations::Many { semantic, items } = evaluations(&map(b.clone())).unwrap() else {
        panic!("many");
    };
    assert_eq!(semantic, Semantic::ExecuteAll);
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].as_ref().unwrap().check.action,
        Action::ViewSupportArea
    );
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("evaluations[1].resource.id", Kind::Value)
    );
    assert_eq!(items[2].as_ref().unwrap().check.action, Action::ManageUsers);

    b["evaluations"][1]["resource"]["id"] = json!(1);
    let e = evaluations(&map(b.clone())).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("evaluations[1].resource.id", Kind::Shape)
    );
    b["action"] = Value::Null;
    b["evaluations"][1]["resource"]["id"] = json!("1");
    let e = evaluations(&map(b)).unwrap_err();
    assert_eq!(e.field, "evaluations[0].action");
}

#[test]
fn no_evaluations_is_one_evaluation() {
    for list in [None, Some(json!([]))] {
        let mut b = ask();
        if let Some(l) = list {
            b["evaluations"] = l;
        }
        assert!(matches!(
            evaluations(&map(b)).unwrap(),
            Evaluations::Single(_)
        ));
    }
}

#[test]
fn consistency_follows_the_grpc_rules() {
    let with = |ctx: Value| {
        let mut b = ask();
        b["context"] = ctx;
        evaluation(&map(b))
    };
    let token = crate::domain::feed::encode_token("db1", 7);
    let e = with(json!({"consistency": "fully_consistent"})).unwrap();
    assert!(e.check.fully_consistent);
    let e = with(json!({"consistency_token": token})).unwrap();
    assert_eq!(e.token.map(|t| t.revision), Some(7));
    let e = with(json!({"consistency": "at_least_as_fresh"})).unwrap_err();
    assert_eq!(e.field, "context.consistency_token");
    let e =
        with(json!({"consistency": "minimize_latency", "consistency_token": token})).unwrap_err();
    assert_eq!(e.field, "context.consistency");
    let e = with(json!({"consistency_token": "v1.x"})).unwrap_err();
    assert_eq!(e.reason, Reason::InvalidConsistencyToken);
}

#[test]
fn a_page_token_continues_only_its_own_search() {
    let q = json!({
        "subject": {"type": "user", "id": "pat"},
        "action": {"name": "view_support_area"},
        "resource": {"type": "account", "id": "ignored"},
        "page": {"limit": 2},
    });
    let first = resource_search(&map(q.clone())).unwrap();
    assert_eq!(first.search.limit, 2);
    assert!(first.search.after.is_none());
    let last = Icn::parse("1234567").unwrap();
    let token = first.next_token(&last);
    let mut next = q.clone();
    next["page"]["token"] = json!(token);
    let second = resource_search(&map(next.clone())).unwrap();
    assert_eq!(second.search.after, Some(last));
    for (pointer, v) in [
        ("/subject/id", json!("sam")),
        ("/action/name", json!("manage_users")),
        ("/page/limit", json!(3)),
        ("/resource/properties", json!({"severity": 1})),
    ] {
        let mut changed = next.clone();
        match changed.pointer_mut(pointer) {
            Some(slot) => *slot = v,
            None => changed["resource"]["properties"] = v,
        }
        let e = resource_search(&map(changed)).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason),
            ("page.token", Reason::InvalidPageToken)
        );
    }
    let mut limits = q;
    for (limit, want) in [(json!(0), DEFAULT_LIMIT), (json!(100_000), MAX_LIMIT)] {
        limits["page"]["limit"] = limit;
        assert_eq!(
            resource_search(&map(limits.clone())).unwrap().search.limit,
            want
        );
    }
}
