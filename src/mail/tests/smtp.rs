//! Delivery through lettre to a real SMTP listener on loopback.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::*;

#[path = "../../../tests/support/smtp_sink.rs"]
mod smtp_sink;
use smtp_sink::SmtpSink;

#[tokio::test]
async fn smtp_delivery_retries_with_backoff_until_the_server_recovers() {
    let sink = SmtpSink::start().await;
    let f = fixture(MailTransport::from_smtp_url(&sink.url()).unwrap());
    let id = f.outbox.enqueue(&code_email("333333"), T0);

    sink.set_failing(true);
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.sent, report.failed), (0, 1));
    let row = f.outbox.row(id);
    assert!(
        row.last_error.as_deref().unwrap().contains("451"),
        "{row:?}"
    );
    // First retry after 5 s plus at most 10% jitter.
    assert!(
        (T0 + 5_000..=T0 + 5_500).contains(&row.next_attempt_at),
        "{row:?}"
    );
    assert_eq!(sink.mail_commands(), 1);

    sink.set_failing(false);
    f.clock.set(T0 + 4_999);
    assert_eq!(f.worker.drain_once().await.unwrap().claimed, 0);

    let retry_at = row.next_attempt_at;
    f.clock.set(retry_at);
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    let row = f.outbox.row(id);
    assert_eq!(row.sent_at, Some(retry_at));
    assert_eq!(row.msg.attempts, 2);

    let got = sink
        .wait_for(|m| m.to == ["ada@example.com"], WAIT)
        .await
        .unwrap();
    assert_eq!(got.from, "no-reply@entitlements.invalid");
    assert_eq!(
        got.header("Message-ID").as_deref(),
        Some(format!("<outbox-{id}@entitlements>").as_str())
    );
    assert!(got.body().contains("\r\nVerification code: 333333\r\n"));
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_permanent_smtp_refusal_is_given_up_at_once() {
    let sink = SmtpSink::start().await;
    let f = fixture(MailTransport::from_smtp_url(&sink.url()).unwrap());
    sink.refuse_recipient("ada@example.com");
    let id = f.outbox.enqueue(&code_email("777777"), T0);
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.sent, report.failed, report.given_up), (0, 1, 1));
    let row = f.outbox.row(id);
    assert_eq!(row.failed_at, Some(T0));
    assert!(
        row.last_error.as_deref().unwrap().contains("550"),
        "{row:?}"
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn spawned_worker_sends_on_wake_and_stops_on_shutdown() {
    let sink = SmtpSink::start().await;
    let f = fixture(MailTransport::from_smtp_url(&sink.url()).unwrap());
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let handle = f.worker.spawn(wake.clone(), stopped);

    let id = f.outbox.enqueue(&code_email("444444"), T0);
    wake.notify_one();
    let got = sink
        .wait_for(|m| m.body().contains("Verification code: 444444"), WAIT)
        .await;
    assert!(got.is_some());
    f.outbox.wait_until(|rows| rows[0].sent_at.is_some()).await;
    assert_eq!(f.outbox.row(id).sent_at, Some(T0));

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}

#[test]
fn smtp_transport_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(matches!(
        MailTransport::from_smtp_url("smtp://localhost:2525"),
        Err(MailError::NoRuntime)
    ));
}

#[tokio::test]
async fn transport_configuration() {
    assert!(MailTransport::from_smtp_url("smtp://localhost:2525").is_ok());
    assert!(MailTransport::from_smtp_url("smtp://u:p%40ss@mail.example.com?tls=required").is_ok());
    assert!(MailTransport::from_smtp_url("smtps://mail.example.com").is_ok());
    assert!(MailTransport::from_smtp_url("http://mail.example.com").is_err());
    assert!(MailTransport::from_smtp_url("not a url").is_err());
    let debug = format!(
        "{:?}",
        MailTransport::from_smtp_url("smtp://u:secret@h").unwrap()
    );
    assert!(!debug.contains("secret"));
}

#[tokio::test]
async fn lines_starting_with_a_dot_survive_the_smtp_round_trip() {
    let sink = SmtpSink::start().await;
    let f = fixture(MailTransport::from_smtp_url(&sink.url()).unwrap());
    let mut email = code_email("666666");
    email.body = "first\n.\n..two dots\n.one dot\nlast\n".into();
    f.outbox.enqueue(&email, T0);
    assert_eq!(f.worker.drain_once().await.unwrap().sent, 1);
    let got = sink.wait_for(|_| true, WAIT).await.unwrap();
    // lettre adds a CRLF of its own before the final dot, so only the start is exact.
    let expected = "first\r\n.\r\n..two dots\r\n.one dot\r\nlast\r\n";
    assert!(got.body().starts_with(expected), "{:?}", got.body());
}
