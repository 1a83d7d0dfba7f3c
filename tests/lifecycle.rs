//! Requests that never rot: reminded, escalated, expired, each once, on the injected clock;
//! requests nobody on the account can decide go to the operators; and the same on a real
//! server with second-scale delays on the wall clock.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;

use crate::flow::{request, setup_account, verified_member};
use crate::support::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const OPS: &str = "ops@example.com";

fn subjects(app: &TestApp, to: &str, starts: &str) -> usize {
    app.mails_to(to)
        .iter()
        .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with(starts)))
        .count()
}

/// Waits until `to` has `n` emails whose subject starts with `starts`, then checks there are
/// not more.
async fn expect_mails(app: &TestApp, to: &str, starts: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while subjects(app, to, starts) < n {
        assert!(
            Instant::now() < deadline,
            "{to}: {n} x {starts:?} expected, have {}",
            subjects(app, to, starts)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        subjects(app, to, starts),
        n,
        "{to}: {starts:?}: {:#?}",
        app.mails_to(to)
            .iter()
            .map(|m| (header(m, "Subject"), header(m, "Date")))
            .collect::<Vec<_>>()
    );
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.admin()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                icn: ICN.into(),
                page_size: 500,
                ..Default::default()
            },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// Waits for the sweeper's expiry to be recorded (polling the audit trail).
async fn wait_action(app: &TestApp, action: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let have = audit_actions(app)
            .await
            .iter()
            .filter(|a| *a == action)
            .count();
        if have >= n {
            assert_eq!(have, n, "{action}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} x {action} expected, have {have}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What "My agreements" says of the person's one pending request.
async fn waiting_of(app: &TestApp, who: &str) -> pb::WaitingRequest {
    let mine = app
        .access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person(who)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.waiting_requests.len(), 1, "{mine:?}");
    mine.waiting_requests[0].clone()
}

fn ms(t: &Option<prost_types::Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

async fn a_waiting_request_is_reminded_then_escalated_then_expired_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    // A second replica sweeps the same database: still one email of each.
    let replica = app.replica().await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.wait_mail("stc1@example.com", "Access request from", 1)
        .await;
    // The requester sees who can decide (by name only) and since when it waits.
    let made = ms(&req.create_time).unwrap();
    let w = waiting_of(&app, "ana").await;
    assert_eq!(w.access_request_id, req.access_request_id);
    assert_eq!(w.decider_group, pb::DeciderGroup::Administrators as i32);
    let mut names = w.decider_names.clone();
    names.sort();
    assert_eq!(names, ["stc1-given stc1-family", "tom-given tom-family"]);
    assert_eq!(ms(&w.wait_start_time), Some(made));
    assert_eq!(ms(&w.next_step_time), Some(made + 72 * HOUR));
    assert_eq!(ms(&w.expire_time), Some(made + 30 * DAY));

    // Not yet: a minute before the reminder is due.
    app.clock.advance(72 * HOUR - 60_000);
    wait_action(&app, "access_request.create", 2).await;
    assert_eq!(subjects(&app, "stc1@example.com", "Reminder:"), 0);

    app.clock.advance(60_000);
    wait_action(&app, "access_request.remind", 1).await;
    // Both administrators with a verified email are reminded, each once.
    expect_mails(&app, "stc1@example.com", "Reminder:", 1).await;
    expect_mails(&app, "tom@example.com", "Reminder:", 1).await;

    app.clock.advance(7 * DAY - 72 * HOUR);
    wait_action(&app, "access_request.escalate", 1).await;
    // Past the TC, to the STC.
    expect_mails(&app, "stc1@example.com", "Escalated:", 1).await;
    assert_eq!(subjects(&app, "tom@example.com", "Escalated:"), 0);
    let w = waiting_of(&app, "ana").await;
    assert_eq!(
        w.decider_group,
        pb::DeciderGroup::SiteTechnicalContacts as i32
    );
    assert_eq!(w.decider_names, ["stc1-given stc1-family"]);
    assert_eq!(ms(&w.next_step_time), None, "only the expiry is left");
    // The requester is still waiting: a Provisional Caller.
    assert_eq!(
        crate::flow::reason_of(&app, "ana", pb::Action::OpenServiceRequest).await,
        pb::DecisionReason::RequestPending
    );

    app.clock.advance(30 * DAY - 7 * DAY);
    wait_action(&app, "access_request.expire", 1).await;
    expect_mails(&app, "ana@example.com", "Access request expired", 1).await;
    // Later sweeps send nothing more.
    app.clock.advance(DAY);
    wait_action(&app, "access_request.expire", 1).await;
    wait_action(&app, "access_request.remind", 1).await;
    wait_action(&app, "access_request.escalate", 1).await;
    expect_mails(&app, "stc1@example.com", "Reminder:", 1).await;
    drop(replica);
}

/// A decided request is never reminded; one still pending beside it is (which shows the
/// sweep ran past the decided one).
async fn a_decided_request_is_not_reminded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let decided = request(&app, "ana", pb::Role::AuthorizedUser).await;
    crate::flow::approve(&app, &stc, &decided.access_request_id)
        .await
        .unwrap();
    let waiting = request(&app, "bob", pb::Role::AuthorizedUser).await;
    app.clock.advance(72 * HOUR);
    wait_action(&app, "access_request.remind", 1).await;
    expect_mails(&app, "stc1@example.com", "Reminder:", 1).await;
    let reminders: Vec<String> = app
        .mails_to("stc1@example.com")
        .into_iter()
        .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Reminder:")))
        .collect();
    assert_eq!(reminders.len(), 1);
    assert!(reminders[0].contains(&waiting.access_request_id));
    assert!(!reminders[0].contains(&decided.access_request_id));
}

/// An account whose only administrator never verified their email: the request goes to the
/// operators as soon as it is made, and again at its reminder and escalation.
async fn requests_nobody_can_decide_go_to_the_operators(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            operator_email: Some(OPS.to_owned()),
            ..Default::default()
        },
    )
    .await;
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICN.into(),
                company_name: "Orphan Corp".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc1".into(),
                email: "stc1@example.com".into(),
                given_name: "Sam".into(),
                family_name: "Stc".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let first = request(&app, "ana", pb::Role::AuthorizedUser).await;
    expect_mails(&app, OPS, "No administrator can decide:", 1).await;
    // Asking again the same day is not announced again, to the operators neither (their
    // email would be queued before Ana's notice of the new request).
    app.access()
        .withdraw_request(authed(
            pb::WithdrawRequestRequest {
                request_id: String::new(),
                access_request_id: first.access_request_id,
                reason: String::new(),
            },
            &app.person("ana"),
        ))
        .await
        .unwrap();
    let again = request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.wait_mail("ana@example.com", &again.access_request_id, 1)
        .await;
    expect_mails(&app, OPS, "No administrator can decide:", 1).await;
    let w = waiting_of(&app, "ana").await;
    assert_eq!(w.decider_group, pb::DeciderGroup::Operators as i32);
    assert!(w.decider_names.is_empty(), "{w:?}");
    // The unverified STC hears too: verifying is what lets them decide.
    app.wait_mail("stc1@example.com", "Access request from", 1)
        .await;
    app.clock.advance(72 * HOUR);
    wait_action(&app, "access_request.remind", 1).await;
    expect_mails(&app, OPS, "No administrator can decide:", 2).await;
    expect_mails(&app, "stc1@example.com", "Reminder:", 1).await;
    // Once the STC has verified their address they can decide: a new request is theirs
    // alone. The operators' email would be queued before the STC's, so once the STC has
    // theirs, none is coming to the operators.
    app.access()
        .send_verification_email(authed(
            pb::SendVerificationEmailRequest::default(),
            &app.person("stc1"),
        ))
        .await
        .unwrap();
    let code = app.verification_code("stc1@example.com", 2).await;
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("stc1"),
        ))
        .await
        .unwrap();
    request(&app, "ben", pb::Role::AuthorizedUser).await;
    app.wait_mail("stc1@example.com", "ben@example.com", 1)
        .await;
    expect_mails(&app, OPS, "No administrator can decide:", 2).await;
}

/// The same on a real server on the wall clock, with second-scale delays: each step arrives
/// within a few seconds of when it is due.
async fn a_running_server_honours_second_scale_delays(backend: Backend) {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db = std::sync::Arc::new(TestDb::create(backend, data.path()).await);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"))
        .args(["serve", "--dev", "--listen", &addr.to_string()])
        .args(["--database-url", &db.url])
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "--remind-after",
            "2s",
            "--escalate-after",
            "4s",
            "--expire-after",
            "6s",
        ])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start entitlements serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "the server stopped");
            assert!(Instant::now() < deadline, "the server did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Kill(child)
    };
    let app = TestApp::attach(addr, db, data.clone()).await;
    setup_account(&app).await;
    let made = Instant::now();
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    // Due at 2 s, 4 s, 6 s; the sweep runs every second and the mail worker polls every second.
    let late = Duration::from_secs(4);
    for (to, subject, due) in [
        ("stc1@example.com", "Reminder:", 2),
        ("stc1@example.com", "Escalated:", 4),
        ("ana@example.com", "Access request expired", 6),
    ] {
        let due = Duration::from_secs(due);
        let deadline = made + due + late;
        while subjects(&app, to, subject) == 0 {
            assert!(
                Instant::now() < deadline,
                "{subject} not there {late:?} after it was due"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            made.elapsed() >= due,
            "{subject} came early: {:?}",
            made.elapsed()
        );
        assert_eq!(subjects(&app, to, subject), 1, "{subject} once");
    }
}

/// An account with nobody who can decide (its STC never verified) is reported to the operators
/// once (audit event, email); when an administrator can decide the report is withdrawn.
async fn an_account_nobody_can_administer_is_reported_once(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            operator_email: Some(OPS.to_owned()),
            ..Default::default()
        },
    )
    .await;
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICN.into(),
                company_name: "Orphan Corp".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    // Its only STC never verifies their address: nobody can decide for it.
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "sue".into(),
                email: "sue@example.com".into(),
                given_name: "Sue".into(),
                family_name: "Stc".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    // Once past the grace an account has to get its first STC verified, it is reported.
    app.clock.advance(73 * HOUR);
    wait_action(&app, "account.orphaned", 1).await;
    expect_mails(&app, OPS, "No administrator can decide for", 1).await;
    // Sweeps go on; still one report.
    let replica = app.replica().await;
    app.clock.advance(HOUR);
    wait_action(&app, "account.orphaned", 1).await;
    // From here only the first server sweeps: its sweeper outlived the report it made.
    drop(replica);

    // The first code expired long ago: Sue asks for another one and verifies.
    app.access()
        .send_verification_email(authed(
            pb::SendVerificationEmailRequest::default(),
            &app.person("sue"),
        ))
        .await
        .unwrap();
    let code = app.verification_code("sue@example.com", 2).await;
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("sue"),
        ))
        .await
        .unwrap();
    wait_action(&app, "account.adopted", 1).await;
    expect_mails(&app, OPS, "No administrator can decide for", 1).await;
}

crate::both_backends!(
    a_waiting_request_is_reminded_then_escalated_then_expired_once,
    a_decided_request_is_not_reminded,
    requests_nobody_can_decide_go_to_the_operators,
    a_running_server_honours_second_scale_delays,
    an_account_nobody_can_administer_is_reported_once,
);
