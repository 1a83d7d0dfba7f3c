//! Email that cannot be delivered ends as failed, loudly: an audit event by the service itself,
//! an error log line and a counter; never retried forever, and a permanent refusal at once.

use std::time::Duration;

use sqlx::Connection;

use crate::list_entitlements::{add_stc, create_account};
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

/// A server mailing through a relay of the test's own, with the account created.
async fn with_relay(backend: Backend) -> (SmtpSink, TestApp) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            mail: Some(MailKind::Smtp(sink.url())),
            ..Default::default()
        },
    )
    .await;
    create_account(&app, ICN).await;
    (sink, app)
}

async fn a_permanently_refused_email_ends_failed_and_audited(backend: Backend) {
    let (sink, app) = with_relay(backend).await;
    // The relay knows no such user: 550 for every message to her.
    sink.refuse_recipient("ana@example.com");
    let given_up_before = entitlements::mail::emails_given_up();
    add_stc(&app, ICN, "ana").await;

    eventually("the refusal was audited", || async {
        app.audit_events("")
            .await
            .iter()
            .any(|e| e.action == "email.undeliverable")
    })
    .await;
    let events = app.audit_events("").await;
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
    add_stc(&app, ICN, "ben").await;
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
    let (sink, app) = with_relay(backend).await;
    let to = |addr: &'static str| move |m: &ReceivedMail| m.to.iter().any(|t| t == addr);
    sink.set_failing(true);
    add_stc(&app, ICN, "ana").await;
    eventually(
        "a delivery attempt refused for now, and recorded",
        || async {
            app.count("SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL")
                .await
                == 1
        },
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
    add_stc(&app, ICN, "ben").await;
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
