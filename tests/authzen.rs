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
    assert_eq!(
        step["contact_names"],
        json!(["stc1-given stc1-family"]),
        "{step}"
    );
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
    assert_eq!(
        step["contact_names"],
        json!(["stc1-given stc1-family"]),
        "{step}"
    );
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
                    ..Default::default()
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
                    ..Default::default()
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
                    ..Default::default()
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

/// A search whose resource names a product or a severity lists only the accounts whose check
/// with them allows: the list of accounts narrowed by the check itself.
async fn resource_search_narrows_by_product_and_severity(backend: Backend) {
    use crate::list_entitlements::{DAY, add_stc, contract, create_account, verify};
    let app = spawn(backend).await;
    let now = app.clock.now_ms();
    let icns = ["5000001", "5000002", "5000003"];
    for icn in icns {
        create_account(&app, icn).await;
        add_stc(&app, icn, "sam").await;
    }
    verify(&app, "sam").await;
    let term = (now - DAY, now + 30 * DAY);
    contract(&app, icns[0], "C1", &["P1"], term, false).await;
    contract(&app, icns[1], "C2", &[], term, true).await;
    contract(&app, icns[2], "C3", &["P2"], term, true).await;
    let door = Door::of(&app);
    let checker = app.checker();
    let found = |properties: Value| {
        let (door, checker) = (&door, &checker);
        async move {
            let q = json!({
                "subject": {"type": "user", "id": "sam"},
                "action": {"name": "open_service_request"},
                "resource": {"type": "account", "properties": properties},
            });
            let a = door.search(checker, &q).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            a.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found(json!({})).await, icns);
    assert_eq!(found(json!({"product_id": "P1"})).await, [icns[0], icns[1]]);
    assert_eq!(found(json!({"severity": 1})).await, [icns[1], icns[2]]);
    assert_eq!(
        found(json!({"product_id": "P1", "severity": 1})).await,
        [icns[1]]
    );
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

mod refusals;

crate::both_backends!(
    evaluation_allows_and_denies_with_reasons,
    evaluations_follow_each_semantic,
    resource_search_pages_through_every_result_once,
    resource_search_narrows_by_product_and_severity,
    metadata_names_the_endpoints,
);
