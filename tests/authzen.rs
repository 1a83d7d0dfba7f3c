//! The AuthZEN Authorization API 1.0 door (`--http-listen`), spoken to with an HTTP client
//! that knows nothing of this crate (reqwest), and checked against the spec's shapes:
//! Access Evaluation, Access Evaluations with its three semantics, Resource Search with
//! pages, the metadata document, and the HTTPS binding's errors and request ids.

use std::time::Duration;

use entitlements::proto::v1 as pb;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow::{request, setup_account};
use crate::support::*;
use crate::tls::pki::{Ca, files};

/// An HTTP client of the door.
struct Door {
    base: String,
    client: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Door {
    fn of(app: &TestApp) -> Door {
        Door::with(app, "http", client().build().unwrap())
    }

    fn with(app: &TestApp, scheme: &str, client: reqwest::Client) -> Door {
        let addr = app.http_addr.expect("the app serves HTTP");
        Door {
            base: format!("{scheme}://{addr}"),
            client,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("HTTP answer");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    async fn evaluation(&self, token: &str, body: &Value) -> Answer {
        self.post("/access/v1/evaluation", token, body).await
    }

    async fn evaluations(&self, token: &str, body: &Value) -> Answer {
        self.post("/access/v1/evaluations", token, body).await
    }

    async fn search(&self, token: &str, body: &Value) -> Answer {
        self.post("/access/v1/search/resource", token, body).await
    }
}

/// reqwest without a TLS provider of its own (the crate's `rustls-no-provider`) uses the
/// process default, ring, as the server does.
fn client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        AppOptions {
            http: true,
            ..Default::default()
        },
    )
    .await
}

fn ask(web_id: &str, icn: &str, action: &str) -> Value {
    json!({
        "subject": {"type": "user", "id": web_id},
        "resource": {"type": "account", "id": icn},
        "action": {"name": action},
    })
}

#[track_caller]
fn decided(a: &Answer, decision: bool, reason: &str) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["decision"], json!(decision), "{}", a.body);
    assert_eq!(a.body["context"]["reason"], json!(reason), "{}", a.body);
}

/// A refusal of the whole request, naming the field.
#[track_caller]
fn refused(a: &Answer, status: StatusCode, field: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(
        a.body["error"]["status"],
        json!(status.as_u16()),
        "{}",
        a.body
    );
    assert_eq!(a.body["error"]["field"], json!(field), "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(field), "{}", a.body);
}

/// Allow and deny with the DecisionReason, the role, the contract and a consistency token
/// that the next request may ask for; a deny is HTTP 200.
async fn evaluation_allows_and_denies_with_reasons(backend: Backend) {
    let app = spawn(backend).await;
    setup_account(&app).await;
    let door = Door::of(&app);
    let checker = app.checker();

    let mut body = ask("stc1", ICN, "open_service_request");
    body["resource"]["properties"] = json!({"product_id": "5725-A1", "severity": 1});
    let a = door.evaluation(&checker, &body).await;
    decided(&a, true, "GRANTED");
    assert_eq!(a.body["context"]["role"], json!("SITE_TECHNICAL_CONTACT"));
    assert_eq!(a.body["context"]["contract_id"], json!("C-ALL"));
    assert_eq!(a.body["context"]["highest_severity"], json!(1));
    assert!(a.body["context"].get("next_step").is_none(), "{}", a.body);
    let token = a.body["context"]["consistency_token"].as_str().unwrap();
    assert!(token.starts_with("v2."), "{token}");

    let a = door
        .evaluation(&checker, &ask("stranger", ICN, "view_support_area"))
        .await;
    decided(&a, false, "NOT_A_MEMBER");
    // What next: ask for access, with whom it would be (the ticketing system sees names).
    let step = &a.body["context"]["next_step"];
    assert_eq!(step["kind"], "request_access", "{step}");
    assert_eq!(step["decider_group"], "administrators", "{step}");
    assert_eq!(step["contact_names"], json!(["stc1-given stc1-family"]), "{step}");
    let a = door
        .evaluation(&checker, &ask("stc1", "7654321", "view_support_area"))
        .await;
    decided(&a, false, "UNKNOWN_ACCOUNT");
    assert_eq!(
        a.body["context"]["next_step"]["kind"],
        "check_account_number"
    );

    // A pending request: the person may look around but not open a case, and is told who
    // it waits with, since when and until when.
    let pending = request(&app, "pat", pb::Role::AuthorizedUser).await;
    let a = door
        .evaluation(&checker, &ask("pat", ICN, "open_service_request"))
        .await;
    decided(&a, false, "REQUEST_PENDING");
    assert_eq!(a.body["context"]["role"], json!("PROVISIONAL_CALLER"));
    let step = &a.body["context"]["next_step"];
    assert_eq!(step["kind"], "wait_for_decision", "{step}");
    assert_eq!(step["decider_group"], "administrators", "{step}");
    assert_eq!(step["contact_names"], json!(["stc1-given stc1-family"]), "{step}");
    assert_eq!(step["access_request_id"], json!(pending.access_request_id));
    for time in ["start_time", "end_time"] {
        let t = step[time].as_str().unwrap_or_default();
        assert!(
            t.len() >= 20 && t.ends_with('Z') && t.contains('T'),
            "{time}: {step}"
        );
    }
    assert!(
        step["start_time"].as_str() < step["end_time"].as_str(),
        "{step}"
    );

    // Severity 1 without 24x7: open it at severity 2 under the contract that covers that.
    crate::flow::upsert_contract(
        &app,
        "C-ALL",
        &[],
        0,
        app.clock.now_ms() + 86_400_000,
        false,
    )
    .await;
    let mut sev1 = ask("stc1", ICN, "open_service_request");
    sev1["resource"]["properties"] = json!({"severity": 1});
    let a = door.evaluation(&checker, &sev1).await;
    decided(&a, false, "SEVERITY_NOT_COVERED");
    let step = &a.body["context"]["next_step"];
    assert_eq!(step["kind"], "open_at_lower_severity", "{step}");
    assert_eq!(step["highest_severity"], 2, "{step}");
    assert_eq!(step["contract_ids"], json!(["C-ALL"]), "{step}");
    assert_eq!(a.body["context"]["highest_severity"], 2);

    // The consistency the caller chooses, as on gRPC.
    let mut fresh = ask("stc1", ICN, "manage_users");
    fresh["context"] = json!({"consistency": "at_least_as_fresh", "consistency_token": token});
    decided(&door.evaluation(&checker, &fresh).await, true, "GRANTED");
    fresh["context"] = json!({"consistency": "fully_consistent"});
    decided(&door.evaluation(&checker, &fresh).await, true, "GRANTED");

    // The same answers on the access evaluations endpoint without `evaluations`.
    let a = door
        .evaluations(&checker, &ask("stranger", ICN, "view_support_area"))
        .await;
    decided(&a, false, "NOT_A_MEMBER");
}

/// Defaults at the top level, items in order, each semantic's short circuit, and an item
/// that fails alone.
async fn evaluations_follow_each_semantic(backend: Backend) {
    let app = spawn(backend).await;
    setup_account(&app).await;
    let door = Door::of(&app);
    let checker = app.checker();
    let item = |who: &str| json!({"subject": {"type": "user", "id": who}});
    let batch = |semantic: Option<&str>, who: &[&str]| {
        let mut b = json!({
            "resource": {"type": "account", "id": ICN},
            "action": {"name": "view_support_area"},
            "evaluations": who.iter().map(|w| item(w)).collect::<Vec<_>>(),
        });
        if let Some(s) = semantic {
            b["options"] = json!({"evaluations_semantic": s});
        }
        b
    };
    let decisions = |a: &Answer| -> Vec<bool> {
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.body.get("decision").is_none(), "{}", a.body);
        a.body["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    let allow_deny_allow = ["stc1", "stranger", "stc1"];
    for semantic in [None, Some("execute_all")] {
        let a = door
            .evaluations(&checker, &batch(semantic, &allow_deny_allow))
            .await;
        assert_eq!(decisions(&a), [true, false, true], "{semantic:?}");
        assert_eq!(
            a.body["evaluations"][1]["context"]["reason"],
            "NOT_A_MEMBER"
        );
    }
    let a = door
        .evaluations(
            &checker,
            &batch(Some("deny_on_first_deny"), &allow_deny_allow),
        )
        .await;
    assert_eq!(decisions(&a), [true, false]);
    let a = door
        .evaluations(
            &checker,
            &batch(Some("permit_on_first_permit"), &allow_deny_allow),
        )
        .await;
    assert_eq!(decisions(&a), [true]);
    let a = door
        .evaluations(
            &checker,
            &batch(
                Some("permit_on_first_permit"),
                &["stranger", "nobody", "stc1", "x"],
            ),
        )
        .await;
    assert_eq!(decisions(&a), [false, false, true]);
    let a = door
        .evaluations(
            &checker,
            &batch(Some("deny_on_first_deny"), &["stc1", "stc1"]),
        )
        .await;
    assert_eq!(decisions(&a), [true, true]);

    // An item overrides a default; one whose value cannot be taken fails alone, closed,
    // with the error in its context; under deny_on_first_deny that error is the first deny.
    let mut b = batch(None, &["stc1", "stc1", "stc1"]);
    b["evaluations"][1]["resource"] = json!({"type": "account", "id": "not-an-icn"});
    b["evaluations"][2]["action"] = json!({"name": "manage_users"});
    let a = door.evaluations(&checker, &b).await;
    assert_eq!(decisions(&a), [true, false, true]);
    let error = &a.body["evaluations"][1]["context"]["error"];
    assert_eq!(error["status"], 400, "{error}");
    assert_eq!(error["field"], "evaluations[1].resource.id", "{error}");
    assert_eq!(error["reason"], "INVALID_ARGUMENT", "{error}");
    assert_eq!(a.body["evaluations"][2]["context"]["reason"], "GRANTED");
    b["options"] = json!({"evaluations_semantic": "deny_on_first_deny"});
    let a = door.evaluations(&checker, &b).await;
    assert_eq!(decisions(&a), [true, false]);

    // A person may ask about themself only; about another, that item alone is refused (403).
    let pat = app.person("stc1");
    let a = door
        .evaluations(&pat, &batch(None, &["stc1", "stranger"]))
        .await;
    assert_eq!(decisions(&a), [true, false]);
    assert_eq!(a.body["evaluations"][1]["context"]["error"]["status"], 403);
    assert_eq!(
        a.body["evaluations"][1]["context"]["error"]["reason"],
        "CHECK_SCOPE_REQUIRED"
    );
}

/// Accounts `first..first+n` with `who` as their Site Technical Contact.
async fn accounts_with_member(app: &TestApp, first: u32, n: u32, who: &str) -> Vec<String> {
    let op = app.operator();
    let mut icns = Vec::new();
    for i in first..first + n {
        let icn = i.to_string();
        app.admin()
            .create_account(authed(
                pb::CreateAccountRequest {
                    icn: icn.clone(),
                    company_name: format!("Company {i}"),
                    country_code: COUNTRY.into(),
                },
                &op,
            ))
            .await
            .expect("create account");
        app.admin()
            .add_site_technical_contact(authed(
                pb::AddSiteTechnicalContactRequest {
                    icn: icn.clone(),
                    web_id: who.into(),
                    email: format!("{who}@example.com"),
                    given_name: "Pat".into(),
                    family_name: "Search".into(),
                },
                &op,
            ))
            .await
            .expect("add stc");
        icns.push(icn);
    }
    icns
}

/// Every account the person may use comes back exactly once over the pages, each one the
/// check allows, none it refuses; a token is bound to its search.
async fn resource_search_pages_through_every_result_once(backend: Backend) {
    let app = spawn(backend).await;
    let icns = accounts_with_member(&app, 3_000_001, 7, "pat").await;
    // Two of them suspended: a check refuses those, so the search leaves them out.
    for icn in [&icns[2], &icns[5]] {
        app.admin()
            .set_account_status(authed(
                pb::SetAccountStatusRequest {
                    icn: icn.clone(),
                    status: pb::AccountStatus::Suspended as i32,
                    reason: "test".into(),
                },
                &app.operator(),
            ))
            .await
            .expect("suspend");
    }
    accounts_with_member(&app, 4_000_001, 1, "someone-else").await;
    let door = Door::of(&app);
    let checker = app.checker();
    let query = |token: Option<&str>| {
        let mut q = json!({
            "subject": {"type": "user", "id": "pat"},
            "action": {"name": "view_support_area"},
            "resource": {"type": "account"},
            "page": {"limit": 2},
        });
        if let Some(t) = token {
            q["page"]["token"] = json!(t);
        }
        q
    };
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for pages in 1.. {
        assert!(pages <= 10, "the pages never end");
        let a = door.search(&checker, &query(token.as_deref())).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let page = &a.body["page"];
        let results = a.body["results"].as_array().unwrap();
        assert!(results.len() <= 2, "{}", a.body);
        assert_eq!(page["count"], json!(results.len()), "{}", a.body);
        for r in results {
            assert_eq!(r["type"], "account", "{}", a.body);
            seen.push(r["id"].as_str().unwrap().to_owned());
        }
        let next = page["next_token"]
            .as_str()
            .expect("next_token is always there");
        if next.is_empty() {
            break;
        }
        token = Some(next.to_owned());
    }
    let allowed: Vec<String> = icns
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2 && *i != 5)
        .map(|(_, icn)| icn.clone())
        .collect();
    assert_eq!(seen, allowed, "every result once, in order");
    for icn in &icns {
        let a = door
            .evaluation(&checker, &ask("pat", icn, "view_support_area"))
            .await;
        assert_eq!(
            a.body["decision"].as_bool(),
            Some(allowed.contains(icn)),
            "{icn}: the search and the check agree"
        );
    }

    // A token continues only the search that gave it.
    let first = door.search(&checker, &query(None)).await;
    let t = first.body["page"]["next_token"].as_str().unwrap();
    let mut other = query(Some(t));
    other["action"]["name"] = json!("manage_users");
    let a = door.search(&checker, &other).await;
    refused(&a, StatusCode::BAD_REQUEST, "page.token");
    assert_eq!(a.body["error"]["reason"], "INVALID_PAGE_TOKEN");
    let a = door.search(&checker, &query(Some("bm90LWEtdG9rZW4"))).await;
    refused(&a, StatusCode::BAD_REQUEST, "page.token");

    // The person themself may search their own accounts, not someone else's.
    let a = door.search(&app.person("pat"), &query(None)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mut theirs = query(None);
    theirs["subject"]["id"] = json!("someone-else");
    let a = door.search(&app.person("pat"), &theirs).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["reason"], "CHECK_SCOPE_REQUIRED");
}

/// The metadata document names the endpoints under the identifier the PEP asked; it needs no
/// token.
async fn metadata_names_the_endpoints(backend: Backend) {
    let app = spawn(backend).await;
    let door = Door::of(&app);
    let a = door
        .send(
            door.client
                .get(format!("{}/.well-known/authzen-configuration", door.base)),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    let base = &door.base;
    assert_eq!(
        a.body,
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
            "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
            "search_resource_endpoint": format!("{base}/access/v1/search/resource"),
        })
    );
}

/// 401 without a token or with a bad one (with `WWW-Authenticate`), 403 for a person asking
/// about another person, and `X-Request-ID` echoed on answers and refusals alike.
async fn tokens_scopes_and_request_ids(backend: Backend) {
    let app = spawn(backend).await;
    setup_account(&app).await;
    let door = Door::of(&app);
    let url = format!("{}/access/v1/evaluation", door.base);
    let body = ask("stc1", ICN, "view_support_area");

    let a = door
        .send(
            door.client
                .post(&url)
                .header("x-request-id", "req-401")
                .json(&body),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.body["error"]["reason"], "TOKEN_MISSING");
    assert_eq!(
        a.headers["www-authenticate"],
        "Bearer realm=\"entitlements\""
    );
    assert_eq!(a.headers["x-request-id"], "req-401");

    let a = door.evaluation("not.a.token", &body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""),
        "{:?}",
        a.headers
    );

    // A person without the check scope asks about themself only.
    let stc = app.person("stc1");
    decided(&door.evaluation(&stc, &body).await, true, "GRANTED");
    let a = door
        .evaluation(&stc, &ask("stranger", ICN, "view_support_area"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["reason"], "CHECK_SCOPE_REQUIRED");

    let a = door
        .send(
            door.client
                .post(&url)
                .bearer_auth(app.checker())
                .header("X-Request-ID", "bfe9eb29-ab87-4ca3-be83-a1d5d8305716")
                .json(&body),
        )
        .await;
    decided(&a, true, "GRANTED");
    assert_eq!(
        a.headers["x-request-id"],
        "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
    );
    let a = door
        .send(
            door.client
                .post(&url)
                .bearer_auth(app.checker())
                .header("x-request-id", "req-400")
                .json(&json!({})),
        )
        .await;
    refused(&a, StatusCode::BAD_REQUEST, "subject");
    assert_eq!(a.headers["x-request-id"], "req-400");
}

/// Each bad input is a 400 (415 for a body that is not JSON by its type, 413 for one too
/// large) naming the JSON field.
async fn bad_input_names_the_field(backend: Backend) {
    let app = spawn(backend).await;
    let door = Door::of(&app);
    let checker = app.checker();
    let good = ask("stc1", ICN, "open_service_request");
    let with = |pointer: &str, v: Value| {
        let mut b = good.clone();
        *b.pointer_mut(pointer).unwrap() = v;
        b
    };
    let cases = [
        (with("/subject", json!(null)), "subject"),
        (with("/subject", json!("stc1")), "subject"),
        (with("/subject/type", json!("group")), "subject.type"),
        (with("/subject/id", json!("")), "subject.id"),
        (with("/subject/id", json!(7)), "subject.id"),
        (with("/resource/type", json!("document")), "resource.type"),
        (with("/resource/id", json!("not-an-icn")), "resource.id"),
        (with("/action/name", json!("delete")), "action.name"),
        (
            with(
                "/resource",
                json!({"type": "account", "id": ICN, "properties": {"severity": 7}}),
            ),
            "resource.properties.severity",
        ),
        (
            with(
                "/resource",
                json!({"type": "account", "id": ICN, "properties": {"severity": "1"}}),
            ),
            "resource.properties.severity",
        ),
        (
            with(
                "/resource",
                json!({"type": "account", "id": ICN, "properties": {"product_id": ""}}),
            ),
            "resource.properties.product_id",
        ),
        (
            {
                let mut b = good.clone();
                b["context"] = json!({"consistency_token": "nope"});
                b
            },
            "context.consistency_token",
        ),
        (
            {
                let mut b = good.clone();
                b["context"] = json!({"consistency": "at_least_as_fresh"});
                b
            },
            "context.consistency_token",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in &cases {
        let a = door.evaluation(&checker, body).await;
        refused(&a, StatusCode::BAD_REQUEST, field);
    }
    // Unknown keys are ignored, as the spec requires.
    let mut extra = good.clone();
    extra["subject"]["properties"] = json!({"department": "Sales"});
    extra["unknown"] = json!(true);
    let a = door.evaluation(&checker, &extra).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let evaluations = [
        (
            json!({"subject": {"type": "user", "id": "stc1"}, "evaluations": [
                {"resource": {"type": "account", "id": ICN}, "action": {"name": "view_support_area"}},
                {"resource": {"type": "account", "id": ICN}},
            ]}),
            "evaluations[1].action",
        ),
        (
            json!({"subject": {"type": "user", "id": "stc1"}, "evaluations": [
                {"resource": {"type": "account", "id": ICN}, "action": {}},
            ]}),
            "evaluations[0].action.name",
        ),
        (json!({"evaluations": [good.clone(), 3]}), "evaluations[1]"),
        (json!({"evaluations": {"a": 1}}), "evaluations"),
        (
            json!({"evaluations": [good.clone()], "options": {"evaluations_semantic": "sometimes"}}),
            "options.evaluations_semantic",
        ),
        (
            json!({"subject": {"type": "user", "id": "bad id"}, "evaluations": [good.clone()]}),
            "subject.id",
        ),
        (
            json!({"evaluations": vec![good.clone(); 101]}),
            "evaluations",
        ),
    ];
    for (body, field) in &evaluations {
        let a = door.evaluations(&checker, body).await;
        refused(&a, StatusCode::BAD_REQUEST, field);
    }
    let search = json!({
        "subject": {"type": "user", "id": "stc1"},
        "action": {"name": "view_support_area"},
        "resource": {"type": "account"},
    });
    let mut bad_limit = search.clone();
    bad_limit["page"] = json!({"limit": -1});
    let mut no_resource = search.clone();
    no_resource["resource"] = json!(null);
    for (body, field) in [(bad_limit, "page.limit"), (no_resource, "resource")] {
        refused(
            &door.search(&checker, &body).await,
            StatusCode::BAD_REQUEST,
            field,
        );
    }

    let url = format!("{}/access/v1/evaluation", door.base);
    let a = door
        .send(
            door.client
                .post(&url)
                .bearer_auth(&checker)
                .header("content-type", "text/plain")
                .body(good.to_string()),
        )
        .await;
    refused(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type");
    let a = door
        .send(
            door.client
                .post(&url)
                .bearer_auth(&checker)
                .header("content-type", "application/json")
                .body("{\"subject\": "),
        )
        .await;
    refused(&a, StatusCode::BAD_REQUEST, "body");
    // Above --max-message-bytes (4 MiB here), as gRPC refuses a larger message.
    let a = door
        .send(
            door.client
                .post(&url)
                .bearer_auth(&checker)
                .header("content-type", "application/json")
                .body(vec![b' '; 5 * 1024 * 1024]),
        )
        .await;
    refused(&a, StatusCode::PAYLOAD_TOO_LARGE, "body");
}

/// With the TLS flags the door speaks HTTPS only, HTTP/2 and HTTP/1.1 alike, with the
/// certificate the gRPC port serves.
async fn tls_flags_make_the_door_https(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            tls: Some(files(dir.path(), &ca, ca.client_config())),
            http: true,
            ..Default::default()
        },
    )
    .await;
    setup_account(&app).await;
    let root = reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap();
    for http1 in [false, true] {
        let mut builder = client().tls_certs_only([root.clone()]);
        if http1 {
            builder = builder.http1_only();
        }
        let door = Door::with(&app, "https", builder.build().unwrap());
        let a = door
            .evaluation(&app.checker(), &ask("stc1", ICN, "view_support_area"))
            .await;
        decided(&a, true, "GRANTED");
        let a = door
            .send(
                door.client
                    .get(format!("{}/.well-known/authzen-configuration", door.base)),
            )
            .await;
        let pdp = a.body["policy_decision_point"].as_str().unwrap();
        assert!(pdp.starts_with("https://"), "{pdp}");
    }
    // Plaintext is not served there.
    let plain = client()
        .build()
        .unwrap()
        .get(format!(
            "http://{}/.well-known/authzen-configuration",
            app.http_addr.unwrap()
        ))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plaintext is refused"
    );
}

/// A request whose body never finishes, on a raw connection: it is in flight (the body is
/// read inside the door's limits) until the server answers or the connection goes.
async fn stalled_request(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /access/v1/evaluation HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nX-Request-ID: stalled\r\nContent-Length: 100\r\n\r\n{{\"sub"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// The door's deadline (`--request-timeout-ms`) and its limit on requests in flight
/// (`--concurrency-limit`) answer in JSON, as the gRPC port's do in its statuses.
async fn deadline_and_load_shedding(backend: Backend) {
    use tokio::io::AsyncReadExt as _;
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            http: true,
            request_timeout_ms: 300,
            ..Default::default()
        },
    )
    .await;
    let addr = app.http_addr.unwrap();
    let mut tcp = stalled_request(addr, &app.checker()).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut answer))
        .await
        .expect("the server answers by its deadline")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert!(answer.contains("DEADLINE_EXCEEDED"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: stalled"),
        "{answer}"
    );

    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            http: true,
            concurrency_limit: Some(1),
            ..Default::default()
        },
    )
    .await;
    let door = Door::of(&app);
    let _held = stalled_request(app.http_addr.unwrap(), &app.checker()).await;
    let body = ask("stc1", ICN, "view_support_area");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let shed = loop {
        let a = door.evaluation(&app.checker(), &body).await;
        if a.status == StatusCode::SERVICE_UNAVAILABLE {
            break a;
        }
        // Until the stalled request has reached the door, this one is served.
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(std::time::Instant::now() < deadline, "never shed");
        tokio::task::yield_now().await;
    };
    assert_eq!(shed.body["error"]["reason"], "TOO_MANY_CALLS_IN_FLIGHT");
    assert_eq!(shed.headers["retry-after"], "1");
    drop(_held);
    eventually("served again once the stalled request is gone", || async {
        door.evaluation(&app.checker(), &body).await.status == StatusCode::OK
    })
    .await;
}

crate::both_backends!(
    deadline_and_load_shedding,
    evaluation_allows_and_denies_with_reasons,
    evaluations_follow_each_semantic,
    resource_search_pages_through_every_result_once,
    metadata_names_the_endpoints,
    tokens_scopes_and_request_ids,
    bad_input_names_the_field,
    tls_flags_make_the_door_https,
);
