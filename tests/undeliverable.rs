//! Email that cannot be delivered ends as failed, loudly: an audit event by the service itself,
//! an error log line and a counter; never retried forever, and a permanent refusal at once.

use std::time::Duration;

use entitlements::proto::v1 as pb;
use sqlx::Connection;

use crate::support::smtp_sink::{ReceivedMail, SmtpSink};
use crate::support::*;

/// (kind, failed_at is set, body is empty) of every outbox row, by id.
async fn outbox(app: &TestApp) -> Vec<(String, bool, bool)> {
    let q = "SELECT kind, failed_at IS NOT NULL, body = '' FROM outbox ORDER BY id";
    match app.db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(q).fetch_all(&mut c).await.unwrap()
        }
    }
}

/// How many outbox rows carry the error of a failed attempt.
async fn retries_recorded(app: &TestApp) -> i64 {
    let q = "SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL";
    match app.db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap()
        }
    }
}

async fn a_permanently_refused_email_ends_failed_and_audited(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            mail: Some(MailKind::Smtp(sink.url())),
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
                company_name: "Acme".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    // The relay knows no such user: 550 for every message to her.
    sink.refuse_recipient("ana@example.com");
    let given_up_before = entitlements::mail::emails_given_up();
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "ana".into(),
                email: "ana@example.com".into(),
                given_name: "Ana".into(),
                family_name: "Lima".into(),
            },
            &op,
        ))
        .await
        .unwrap();

    let audit = || async {
        app.admin()
            .list_audit_events(authed(
                pb::ListAuditEventsRequest {
                    icn: String::new(),
                    page_size: 100,
                    page_token: String::new(),
                },
                &op,
            ))
            .await
            .unwrap()
            .into_inner()
            .audit_events
    };
    eventually("the refusal was audited", || async {
        audit()
            .await
            .iter()
            .any(|e| e.action == "email.undeliverable")
    })
    .await;
    let events = audit().await;
    let failed = events
        .iter()
        .find(|e| e.action == "email.undeliverable")
        .unwrap();
    assert_eq!(failed.actor, "system");
    assert_eq!(failed.target_type, "email");
    assert!(failed.reason.contains("550"), "{failed:?}");
    assert!(failed.after_json.contains("ana@example.com"), "{failed:?}");
    assert!(
        failed.after_json.contains("verification_code"),
        "{failed:?}"
    );
    assert!(!failed.after_json.contains("Verification code"), "no text");
    assert!(entitlements::mail::emails_given_up() > given_up_before);

    // Tried once, ended as failed, content dropped; never claimed again.
    assert_eq!(sink.mail_commands(), 1);
    assert_eq!(
        outbox(&app).await,
        vec![("verification_code".to_owned(), true, true)]
    );
    // A day later another email goes out; hers, long due if it were retried, does not.
    app.clock.advance(24 * 3_600_000);
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "ben".into(),
                email: "ben@example.com".into(),
                given_name: "Ben".into(),
                family_name: "Ng".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    sink.wait_for(
        |m| m.to.iter().any(|t| t == "ben@example.com"),
        Duration::from_secs(15),
    )
    .await
    .expect("the next email");
    assert_eq!(sink.mail_commands(), 2, "hers was never tried again");
    assert_eq!(sink.messages().len(), 1);
}

/// The outbox's bookkeeping, seen from the relay: a message refused for now comes back after
/// its retry delay (5 s), well before its claim's lease (2 min) would free it; a delivered one
/// is never sent again, however much later the worker runs.
async fn a_retried_email_comes_back_after_its_delay_and_goes_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            mail: Some(MailKind::Smtp(sink.url())),
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
                company_name: "Acme".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let add = |web_id: &'static str| {
        let op = &op;
        let app = &app;
        async move {
            app.admin()
                .add_site_technical_contact(authed(
                    pb::AddSiteTechnicalContactRequest {
                        request_id: String::new(),
                        icn: ICN.into(),
                        web_id: web_id.into(),
                        email: format!("{web_id}@example.com"),
                        given_name: "Site".into(),
                        family_name: "Contact".into(),
                    },
                    op,
                ))
                .await
                .unwrap();
        }
    };
    let to = |addr: &'static str| move |m: &ReceivedMail| m.to.iter().any(|t| t == addr);
    sink.set_failing(true);
    add("ana").await;
    eventually(
        "a delivery attempt refused for now, and recorded",
        || async { retries_recorded(&app).await == 1 },
    )
    .await;
    sink.set_failing(false);
    // Past the first retry delay and its jitter, not past the lease.
    app.clock.advance(6_000);
    sink.wait_for(to("ana@example.com"), Duration::from_secs(15))
        .await
        .expect("retried after its delay");
    // A day later another email goes out; hers, delivered, is not sent again with it.
    app.clock.advance(24 * 3_600_000);
    add("ben").await;
    sink.wait_for(to("ben@example.com"), Duration::from_secs(15))
        .await
        .expect("the next email");
    let hers = sink
        .messages()
        .iter()
        .filter(|m| to("ana@example.com")(m))
        .count();
    assert_eq!(hers, 1, "delivered once");
    assert_eq!(
        outbox(&app)
            .await
            .iter()
            .filter(|(_, failed, _)| *failed)
            .count(),
        0
    );
}

crate::both_backends!(
    a_permanently_refused_email_ends_failed_and_audited,
    a_retried_email_comes_back_after_its_delay_and_goes_once
);
