//! Health, reflection, limits, trace ids in the audit trail.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::setup_account;
use crate::support::*;

async fn health_and_reflection_need_no_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    for service in [
        "",
        "entitlement.v1.AccessService",
        "entitlement.v1.EntitlementService",
        "entitlement.v1.AccountAdminService",
    ] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            r.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(app.channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("list services")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in [
        "entitlement.v1.AccessService",
        "entitlement.v1.EntitlementService",
        "entitlement.v1.AccountAdminService",
    ] {
        assert!(names.iter().any(|n| n == s), "{s} in {names:?}");
    }
}

async fn audit_events_carry_the_callers_trace_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = authed(
        pb::SetAccountStatusRequest {
            request_id: String::new(),
            icn: ICN.into(),
            status: pb::AccountStatus::Suspended as i32,
            reason: "audit".into(),
        },
        &app.operator(),
    );
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    app.admin().set_account_status(req).await.unwrap();
    let events = app
        .admin()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                icn: ICN.into(),
                page_size: 1,
                page_token: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(events[0].action, "account.suspend");
    assert_eq!(events[0].trace_id, trace);
    assert_eq!(events[0].reason, "audit");
}

async fn operator_calls_need_the_admin_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let r = app
        .admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: "1".into(),
                company_name: "X".into(),
                country_code: "US".into(),
            },
            &app.person("ana"),
        ))
        .await;
    assert_status(r, Code::PermissionDenied, "ADMIN_SCOPE_REQUIRED");
    let r = crate::flow::check_as(
        &app,
        &app.person("ana"),
        "bob",
        pb::Action::OpenServiceRequest,
        "",
        0,
    )
    .await;
    assert_status(r, Code::PermissionDenied, "CHECK_SCOPE_REQUIRED");
}

/// A call that cannot finish within its deadline (here: the account row is held by another
/// transaction) answers DEADLINE_EXCEEDED with its ErrorInfo, not a bare CANCELLED; once the
/// lock is gone the same call succeeds.
async fn a_deadline_answers_deadline_exceeded(backend: Backend) {
    // The server's own deadline, and none on the client: the answer is the server's alone.
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            request_timeout_ms: 1500,
            ..Default::default()
        },
    )
    .await;
    setup_account(&app).await;
    // Another session holds what the write needs.
    let holder = hold_account_row(&app, backend).await;
    let suspend = || suspend_request(&app);
    let started = std::time::Instant::now();
    let s = assert_status(
        app.admin().set_account_status(suspend()).await,
        Code::DeadlineExceeded,
        "DEADLINE_EXCEEDED",
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{s:?}"
    );
    drop(holder);
    eventually("the write goes through once the lock is gone", || {
        let app = &app;
        async move { app.admin().set_account_status(suspend()).await.is_ok() }
    })
    .await;
}

/// Another session holding the account row a write of [`ICN`] needs, until dropped.
async fn hold_account_row(app: &TestApp, backend: Backend) -> Box<dyn std::any::Any + Send> {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c) as Box<dyn std::any::Any + Send>
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("SELECT icn FROM accounts WHERE icn = $1 FOR UPDATE")
                .bind(ICN)
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c) as Box<dyn std::any::Any + Send>
        }
    }
}

fn suspend_request(app: &TestApp) -> tonic::Request<pb::SetAccountStatusRequest> {
    authed(
        pb::SetAccountStatusRequest {
            request_id: String::new(),
            icn: ICN.into(),
            status: pb::AccountStatus::Suspended as i32,
            reason: "held".into(),
        },
        &app.operator(),
    )
}

/// Above `--concurrency-limit` calls in flight on one connection, a new call is shed at once
/// with RESOURCE_EXHAUSTED, its reason and a RetryInfo (tonic's own shedding sends neither);
/// another connection is not affected, and the slot is given back when the call ends.
async fn calls_beyond_the_connection_limit_are_shed_with_a_reason(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            concurrency_limit: Some(1),
            request_timeout_ms: 3000,
            ..Default::default()
        },
    )
    .await;
    setup_account(&app).await;
    let holder = hold_account_row(&app, backend).await;
    let read = || {
        authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                ..Default::default()
            },
            &app.operator(),
        )
    };
    let hold = || {
        let (mut client, r) = (app.admin(), suspend_request(&app));
        tokio::spawn(async move { client.set_account_status(r).await })
    };
    // The held write and the reads race for the one slot: a read that wins sheds the write,
    // which is then sent again, until the write holds the slot and a read is shed.
    let mut first = hold();
    let shed = loop {
        match app.access().list_members(read()).await {
            Err(s) if s.code() == Code::ResourceExhausted => break s,
            Err(s) => panic!("unexpected refusal {s:?}"),
            Ok(_) if first.is_finished() => {
                let lost = first.await.unwrap();
                assert!(
                    matches!(&lost, Err(s) if s.code() == Code::ResourceExhausted),
                    "the held write ended: {lost:?}"
                );
                first = hold();
            }
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    let shed = assert_status::<()>(
        Err(shed),
        Code::ResourceExhausted,
        "TOO_MANY_CALLS_IN_FLIGHT",
    );
    let retry = tonic_types::StatusExt::get_error_details(&shed)
        .retry_info()
        .cloned();
    assert!(retry.and_then(|r| r.retry_delay).is_some(), "{shed:?}");
    // A second connection has slots of its own while the first one is full.
    let other = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::access_service_client::AccessServiceClient::new(other)
        .list_members(read())
        .await
        .expect("another connection is not shed");
    drop(holder);
    first.await.unwrap().ok();
    app.access()
        .list_members(read())
        .await
        .expect("the slot is free again");
}

crate::both_backends!(
    a_deadline_answers_deadline_exceeded,
    calls_beyond_the_connection_limit_are_shed_with_a_reason,
    oversized_messages_are_refused,
    health_and_reflection_need_no_token,
    audit_events_carry_the_callers_trace_id,
    operator_calls_need_the_admin_scope
);

#[tokio::test]
async fn database_down_means_not_serving_and_unavailable() {
    use entitlements::config::{DbArgs, ServeArgs};
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the server must come up, say NOT_SERVING, and answer UNAVAILABLE.
    let args = ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: DbArgs {
            database_url: Some("postgres://postgres@127.0.0.1:1/none".into()),
            data_dir: dir.path().to_path_buf(),
        },
        auth_jwks: None,
        auth_issuer: None,
        auth_audience: "entitlements".into(),
        mail_dir: Some(dir.path().join("mail")),
        smtp_url: None,
        mail_from: None,
        mail_lease: std::time::Duration::from_secs(120),
        mail_key: None,
        portal_url: "https://portal.example.com".into(),
        dev: true,
        remind_after: std::time::Duration::from_secs(72 * 3600),
        escalate_after: std::time::Duration::from_secs(7 * 24 * 3600),
        expire_after: std::time::Duration::from_secs(30 * 24 * 3600),
        operator_email: None,
        contract_warning: std::time::Duration::from_secs(30 * 24 * 3600),
        recertify_within: std::time::Duration::from_secs(30 * 24 * 3600),
        request_id_ttl: std::time::Duration::from_secs(24 * 3600),
        request_timeout_ms: 5000,
        concurrency_limit: 64,
        max_message_bytes: 1 << 20,
        log_json: false,
        metrics_listen: None,
        metrics_sample_ms: 10_000,
        cache_accounts: 200_000,
        cache_persons: 1_500_000,
        cache_members: 1_500_000,
        access_requests_per_person_per_hour: 1_000_000,
        access_requests_per_account_per_hour: 1_000_000,
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        health_listen: None,
    };
    let config = args.into_config().unwrap();
    let key = entitlements::auth::dev::DevKey::load_or_create(dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(entitlements::run(
        config,
        listener,
        std::sync::Arc::new(entitlements::clock::SystemClock),
        async move {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let mut status = None;
    for _ in 0..200 {
        if let Ok(r) = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            status = Some(r.into_inner().status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        Some(tonic_health::pb::health_check_response::ServingStatus::NotServing as i32)
    );
    let mut req = entitlements::auth::dev::MintRequest::new("ana");
    req.scopes = vec!["entitlements.check".into()];
    let token = key.mint(&req).unwrap();
    let r = pb::entitlement_service_client::EntitlementServiceClient::new(channel)
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: "ana".into(),
                icn: "1".into(),
                action: 1,
                ..Default::default()
            },
            &token,
        ))
        .await;
    assert_status(r, Code::Unavailable, "STARTING");
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn oversized_messages_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            max_message_bytes: 64 * 1024,
            ..Default::default()
        },
    )
    .await;
    let big = pb::CreateAccountRequest {
        request_id: String::new(),
        icn: "1".into(),
        company_name: "x".repeat(100 * 1024),
        country_code: "US".into(),
    };
    let r = app
        .admin()
        .create_account(authed(big, &app.operator()))
        .await;
    let s = r.expect_err("a message over the cap is refused");
    assert!(
        matches!(s.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{s:?}"
    );
    // And the server still serves.
    let ok = pb::CreateAccountRequest {
        request_id: String::new(),
        icn: "1".into(),
        company_name: "Small".into(),
        country_code: "US".into(),
    };
    app.admin()
        .create_account(authed(ok, &app.operator()))
        .await
        .unwrap();
}
