//! AIP-155 request ids: a mutation retried with the same `request_id` by the same caller
//! changes nothing twice (one change, one audit event, one email) and is answered with the
//! first answer, byte for byte; the id with another request is refused; a failed call stores
//! nothing; concurrent duplicates change once; another caller's id is another key; an id
//! past `--request-id-ttl` is a new call.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use sqlx::Connection;
use tonic::Code;

use crate::flow::{request, setup_account, upsert_contract, verified_member};
use crate::support::*;

const ID: &str = "5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93";
const OTHER_ID: &str = "0b6d3c0e-8a51-4f0e-b7a2-6e1f9c4d2a58";
const HOUR: i64 = 3600 * 1000;

async fn execute(app: &TestApp, sql: &str) {
    match app.db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
    ))
    .await
}

async fn outbox(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM outbox").await
}

fn create(icn: &str, company: &str, request_id: &str) -> pb::CreateAccountRequest {
    pb::CreateAccountRequest {
        request_id: request_id.into(),
        icn: icn.into(),
        company_name: company.into(),
        country_code: COUNTRY.into(),
    }
}

async fn create_as(
    app: &TestApp,
    token: &str,
    m: pb::CreateAccountRequest,
) -> Result<pb::CreateAccountResponse, tonic::Status> {
    app.admin()
        .create_account(authed(m, token))
        .await
        .map(tonic::Response::into_inner)
}

fn ask(request_id: &str, role: pb::Role) -> pb::RequestAccessRequest {
    pb::RequestAccessRequest {
        request_id: request_id.into(),
        icn: ICN.into(),
        country_code: COUNTRY.into(),
        requested_role: role as i32,
    }
}

async fn request_access_is_answered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let ana = app.person("ana");
    let mails = outbox(&app).await;
    let first = app
        .access()
        .request_access(authed(ask(ID, pb::Role::AuthorizedUser), &ana))
        .await
        .unwrap()
        .into_inner();
    let queued = outbox(&app).await;
    assert!(queued > mails, "the administrators are emailed");
    // The client did not hear the answer and asks again, after a change by someone else.
    upsert_contract(
        &app,
        "C-2",
        &[],
        0,
        app.clock.now_ms() + 400 * 24 * HOUR,
        true,
    )
    .await;
    let again = app
        .access()
        .request_access(authed(ask(ID, pb::Role::AuthorizedUser), &ana))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "the first answer, consistency token and all");
    assert_eq!(audited(&app, "access_request.create").await, 1);
    assert_eq!(outbox(&app).await, queued, "no second email");
    assert_eq!(app.count("SELECT COUNT(*) FROM access_requests").await, 1);
    // The same id for another request: refused, and nothing changes.
    let s = assert_status(
        app.access()
            .request_access(authed(ask(ID, pb::Role::TechnicalContact), &ana))
            .await,
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
    );
    assert!(s.message().contains(ID), "{}", s.message());
    // The id is the caller's own, per method: another person's call with it runs.
    let ben = app
        .access()
        .request_access(authed(
            ask(ID, pb::Role::AuthorizedUser),
            &app.person("ben"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ben.access_request.unwrap().web_id, "ben");
    assert_eq!(audited(&app, "access_request.create").await, 2);
    // The same id in capitals is the same id.
    let upper = app
        .access()
        .request_access(authed(
            ask(&ID.to_uppercase(), pb::Role::AuthorizedUser),
            &ana,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(upper, first);
}

async fn approve_and_remove_member_are_answered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let approve = || pb::ApproveRequestRequest {
        request_id: ID.into(),
        access_request_id: req.access_request_id.clone(),
        granted_role: 0,
        expire_time: None,
    };
    let first = app
        .access()
        .approve_request(authed(approve(), &stc))
        .await
        .unwrap()
        .into_inner();
    let queued = outbox(&app).await;
    let again = app
        .access()
        .approve_request(authed(approve(), &stc))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(audited(&app, "access_request.approve").await, 1);
    assert_eq!(outbox(&app).await, queued);
    // Without an id a second approval is refused, as it always was.
    assert_status(
        app.access()
            .approve_request(authed(
                pb::ApproveRequestRequest {
                    request_id: String::new(),
                    ..approve()
                },
                &stc,
            ))
            .await,
        Code::FailedPrecondition,
        "REQUEST_NOT_PENDING",
    );

    let remove = || pb::RemoveMemberRequest {
        request_id: OTHER_ID.into(),
        icn: ICN.into(),
        web_id: "ana".into(),
        reason: "left the team".into(),
    };
    let first = app
        .access()
        .remove_member(authed(remove(), &stc))
        .await
        .unwrap()
        .into_inner();
    let queued = outbox(&app).await;
    let again = app
        .access()
        .remove_member(authed(remove(), &stc))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(audited(&app, "membership.remove").await, 1);
    assert_eq!(outbox(&app).await, queued);
    assert_status(
        app.access()
            .remove_member(authed(
                pb::RemoveMemberRequest {
                    request_id: String::new(),
                    ..remove()
                },
                &stc,
            ))
            .await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
    );
}

/// A failed call stores nothing: its retry runs again (a wrong code counts twice), and the
/// id may then carry the right code. A success is answered again as it was.
async fn verify_email_is_answered_once_and_failures_run_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    crate::flow::approve(&app, &stc, &req.access_request_id)
        .await
        .unwrap();
    let code = app.verification_code("ana@example.com", 1).await;
    let ana = app.person("ana");
    let verify = |code: &str| pb::VerifyEmailRequest {
        request_id: ID.into(),
        code: code.into(),
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let tries = |s: tonic::Status| s.message().to_owned();
    let one = tries(assert_status(
        app.access().verify_email(authed(verify(wrong), &ana)).await,
        Code::InvalidArgument,
        "VERIFICATION_CODE_INVALID",
    ));
    let two = tries(assert_status(
        app.access().verify_email(authed(verify(wrong), &ana)).await,
        Code::InvalidArgument,
        "VERIFICATION_CODE_INVALID",
    ));
    assert_ne!(one, two, "the retry ran and counted: {one} / {two}");
    let first = app
        .access()
        .verify_email(authed(verify(&code), &ana))
        .await
        .unwrap()
        .into_inner();
    assert!(first.email_verified);
    let again = app
        .access()
        .verify_email(authed(verify(&code), &ana))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(audited(&app, "person.verify_email").await, 2, "stc1, ana");
    // Without an id the code is spent.
    assert_status(
        app.access()
            .verify_email(authed(
                pb::VerifyEmailRequest {
                    request_id: String::new(),
                    code,
                },
                &ana,
            ))
            .await,
        Code::FailedPrecondition,
        "EMAIL_ALREADY_VERIFIED",
    );
}

async fn create_account_and_contract_are_answered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator();
    let first = create_as(&app, &op, create("77", "Beta", ID))
        .await
        .unwrap();
    let again = create_as(&app, &op, create("77", "Beta", ID))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(audited(&app, "account.create").await, 1);
    assert_status(
        create_as(&app, &op, create("77", "Beta", "")).await,
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
    );
    assert_status(
        create_as(&app, &op, create("77", "Gamma", ID)).await,
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
    );
    // Another operator's call with the same id is theirs: it runs, and the account exists.
    let op2 = app.token("op2", None, &["entitlements.admin"]);
    assert_status(
        create_as(&app, &op2, create("77", "Beta", ID)).await,
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
    );
    // The same id on another method is another key.
    let status = pb::SetAccountStatusRequest {
        request_id: ID.into(),
        icn: "77".into(),
        status: pb::AccountStatus::Suspended as i32,
        reason: "unpaid".into(),
    };
    app.admin()
        .set_account_status(authed(status, &op))
        .await
        .unwrap();

    setup_account(&app).await;
    let now = app.clock.now_ms();
    let contract = || pb::UpsertSupportContractRequest {
        request_id: OTHER_ID.into(),
        icn: ICN.into(),
        contract_id: "C-9".into(),
        product_ids: vec!["P1".into()],
        start_time: ts(now - HOUR),
        end_time: ts(now + 100 * 24 * HOUR),
        includes_24x7: false,
    };
    let first = app
        .admin()
        .upsert_support_contract(authed(contract(), &op))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .admin()
        .upsert_support_contract(authed(contract(), &op))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    let changes =
        "SELECT COUNT(*) FROM audit_events WHERE action IN ('contract.create', 'contract.update')";
    // setup_account's contract, and this one once.
    assert_eq!(app.count(changes).await, 2);
    // Without an id the same upsert is a change again, as it always was.
    app.admin()
        .upsert_support_contract(authed(
            pb::UpsertSupportContractRequest {
                request_id: String::new(),
                ..contract()
            },
            &op,
        ))
        .await
        .unwrap();
    assert_eq!(app.count(changes).await, 3);
}

/// Duplicates sent at once change once, and every one is given the first answer.
async fn concurrent_duplicates_change_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator();
    let calls = (0..4).map(|_| {
        let mut admin = app.admin();
        let op = op.clone();
        tokio::spawn(async move {
            admin
                .create_account(authed(create("88", "Delta", ID), &op))
                .await
                .map(tonic::Response::into_inner)
        })
    });
    let answers: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every duplicate is answered"))
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    assert_eq!(audited(&app, "account.create").await, 1);

    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let calls = (0..4).map(|_| {
        let mut access = app.access();
        let stc = stc.clone();
        let id = req.access_request_id.clone();
        tokio::spawn(async move {
            access
                .approve_request(authed(
                    pb::ApproveRequestRequest {
                        request_id: OTHER_ID.into(),
                        access_request_id: id,
                        granted_role: 0,
                        expire_time: None,
                    },
                    &stc,
                ))
                .await
                .map(tonic::Response::into_inner)
        })
    });
    let answers: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every duplicate is answered"))
        .collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    assert_eq!(audited(&app, "access_request.approve").await, 1);
}

/// An id holds for `--request-id-ttl` (24 hours here): a retry after that is a new call, and
/// the sweeper forgets the claim.
async fn an_expired_request_id_is_a_new_call(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator();
    let first = create_as(&app, &op, create("77", "Beta", ID))
        .await
        .unwrap();
    app.clock.advance(23 * HOUR);
    let again = create_as(&app, &op, create("77", "Beta", ID))
        .await
        .unwrap();
    assert_eq!(again, first, "still held after 23 hours");
    app.clock.advance(2 * HOUR);
    assert_status(
        create_as(&app, &op, create("77", "Beta", ID)).await,
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
    );
    // A new change with the old id claims it afresh.
    let other = create_as(&app, &op, create("78", "Beta", ID))
        .await
        .unwrap();
    assert_eq!(other.account.as_ref().unwrap().icn, "78");
    assert_eq!(
        create_as(&app, &op, create("78", "Beta", ID))
            .await
            .unwrap(),
        other
    );
    // Past the time, the sweeper (every second) forgets it.
    app.clock.advance(25 * HOUR);
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.count("SELECT COUNT(*) FROM request_id_claims").await > 0 {
        assert!(Instant::now() < deadline, "the claims were not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The change committed but its answer was never saved (the server stopped in between): a
/// retry is told so, and the change is not applied again.
async fn a_lost_answer_is_reported_never_applied_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator();
    create_as(&app, &op, create("77", "Beta", ID))
        .await
        .unwrap();
    execute(&app, "UPDATE request_id_claims SET answer = NULL").await;
    let s = assert_status(
        create_as(&app, &op, create("77", "Beta", ID)).await,
        Code::Aborted,
        "REQUEST_ALREADY_APPLIED",
    );
    assert!(
        s.message().contains("read the current state"),
        "{}",
        s.message()
    );
    assert_eq!(audited(&app, "account.create").await, 1);
    // The same id with another request is still refused as such.
    assert_status(
        create_as(&app, &op, create("77", "Other", ID)).await,
        Code::FailedPrecondition,
        "REQUEST_ID_REUSED",
    );
}

async fn a_request_id_is_a_uuid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator();
    for bad in [
        "abc",
        "00000000-0000-0000-0000-000000000000",
        "5f0c8a1e3b7d4c2a9e610d4b8f2a7c93",
        "{5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93}",
        "5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c9g",
    ] {
        let s = assert_status(
            create_as(&app, &op, create("77", "Beta", bad)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(field_violation(&s).as_deref(), Some("request_id"), "{bad}");
    }
    assert_eq!(audited(&app, "account.create").await, 0);
}

/// `ctl --request-id`: a script's retry prints the first answer and changes nothing twice;
/// a read refuses the flag.
async fn ctl_retries_safely(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let run = |args: Vec<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
        cmd.arg("ctl")
            .arg(format!("--server=http://{}", app.addr))
            .arg(format!("--token={stc}"))
            .arg("--output=json")
            .args(args);
        for var in ["ENTITLEMENTS_SERVER", "ENTITLEMENTS_TOKEN"] {
            cmd.env_remove(var);
        }
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    let set_role = || {
        vec![
            "set-role".to_owned(),
            format!("--icn={ICN}"),
            "--web-id=ana".to_owned(),
            "--role=technical-contact".to_owned(),
            format!("--request-id={ID}"),
        ]
    };
    let first = run(set_role()).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = run(set_role()).await;
    assert!(again.status.success());
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(audited(&app, "membership.update_role").await, 1);
    let read = run(vec![
        "list-members".to_owned(),
        format!("--icn={ICN}"),
        format!("--request-id={ID}"),
    ])
    .await;
    assert!(!read.status.success());
    assert!(
        String::from_utf8_lossy(&read.stderr).contains("--request-id"),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
}

crate::both_backends!(
    request_access_is_answered_once,
    approve_and_remove_member_are_answered_once,
    verify_email_is_answered_once_and_failures_run_again,
    create_account_and_contract_are_answered_once,
    concurrent_duplicates_change_once,
    an_expired_request_id_is_a_new_call,
    a_lost_answer_is_reported_never_applied_again,
    a_request_id_is_a_uuid,
    ctl_retries_safely,
);
