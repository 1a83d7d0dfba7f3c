//! Secrets at rest: a verification code never reaches the database in clear (not the SQLite
//! file, its WAL or free pages; not PostgreSQL's outbox rows), whether its email waits in the
//! outbox or was delivered. The delivered email itself carries the code, as it must.

use std::time::Duration;

use entitlements::proto::v1 as pb;
use futures_util::FutureExt;
use sqlx::{Connection, Row};

use crate::support::smtp_sink::SmtpSink;
use crate::support::*;

/// Everything the database holds that could carry a code: the SQLite files' raw bytes, or
/// PostgreSQL's outbox and verification rows as text.
async fn database_contents(app: &TestApp) -> Vec<u8> {
    match app.db.backend {
        Backend::Sqlite => {
            let file = app.db.url.trim_start_matches("sqlite://").to_owned();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{file}{suffix}");
                if let Ok(b) = std::fs::read(&path) {
                    bytes.extend(b);
                } else {
                    assert_ne!(suffix, "", "the database file exists");
                }
            }
            bytes
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            let mut text = String::new();
            let outbox = sqlx::query(
                "SELECT kind, to_addr, subject, body, COALESCE(last_error, '') FROM outbox",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            for row in outbox {
                for i in 0..5 {
                    text.push_str(&row.get::<String, _>(i));
                    text.push('\n');
                }
            }
            let codes = sqlx::query("SELECT code_hash, salt, email FROM verification_codes")
                .fetch_all(&mut c)
                .await
                .unwrap();
            for row in codes {
                for i in 0..3 {
                    text.push_str(&row.get::<String, _>(i));
                    text.push('\n');
                }
            }
            text.into_bytes()
        }
    }
}

/// How many outbox rows match `condition`.
async fn outbox_rows(app: &TestApp, condition: &str) -> i64 {
    let q = format!("SELECT COUNT(*) FROM outbox WHERE {condition}");
    let q = q.as_str();
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

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn no_clear_code_reaches_the_database(backend: Backend) {
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
    // The relay is down: the code's email waits in the outbox.
    sink.set_failing(true);
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
    eventually("a refused delivery attempt was recorded", || {
        outbox_rows(&app, "last_error IS NOT NULL").map(|n| n == 1)
    })
    .await;
    assert_eq!(sink.mail_commands(), 1);
    let queued = database_contents(&app).await;

    // The relay is back; the retry delivers the code.
    sink.set_failing(false);
    app.clock.advance(10 * 60 * 1000);
    let mail = sink
        .wait_for(
            |m| m.body().contains("Verification code: "),
            Duration::from_secs(15),
        )
        .await
        .expect("the code's email");
    let code = mail
        .body()
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("Verification code: "))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(code.len(), 8);
    eventually("the delivery was recorded", || {
        outbox_rows(&app, "sent_at IS NULL").map(|n| n == 0)
    })
    .await;
    let delivered = database_contents(&app).await;

    for (when, bytes) in [("queued", &queued), ("delivered", &delivered)] {
        assert!(
            !contains(bytes, &code),
            "the code is in the database ({when})"
        );
        assert!(
            !contains(bytes, "Verification code"),
            "an email's text is in the database ({when})"
        );
    }
    // And it is the real code.
    let r = app
        .access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("stc1"),
        ))
        .await
        .unwrap();
    assert!(r.into_inner().email_verified);
}

crate::both_backends!(no_clear_code_reaches_the_database);
