//! What the door refuses and how: tokens and scopes (401, 403), bad input naming the field
//! (400, 413, 415), the deadline and the limit on requests in flight (504, 503), TLS only when
//! the TLS flags are given; `X-Request-ID` echoed throughout.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Door, ask, client, decided, refused, spawn};
use crate::flow::setup_account;
use crate::support::*;
use crate::tls::pki::{Ca, files};

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
    tokens_scopes_and_request_ids,
    bad_input_names_the_field,
    tls_flags_make_the_door_https,
    deadline_and_load_shedding,
);
