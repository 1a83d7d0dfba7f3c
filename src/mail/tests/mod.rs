//! The worker end to end against an in-memory outbox and a mail directory; `smtp` adds a real
//! SMTP sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smtp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::transport::{build_message, eml_file_name};
use super::*;
use crate::clock::{Clock, ManualClock, SharedClock};

const T0: Millis = 1_750_000_000_000;
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Row {
    msg: QueuedEmail,
    next_attempt_at: Millis,
    sent_at: Option<Millis>,
    failed_at: Option<Millis>,
    last_error: Option<String>,
}

/// The store's claiming contract over a Vec, with hooks to simulate crashes and shutdowns.
#[derive(Default)]
struct MemOutbox {
    rows: Mutex<Vec<Row>>,
    /// Simulates dying between delivering and recording it.
    fail_mark_sent: AtomicBool,
    /// Fired (once) by the first mark_sent, to stop a worker mid-batch.
    stop_on_sent: Mutex<Option<watch::Sender<bool>>>,
    changed: Notify,
}

impl MemOutbox {
    fn enqueue(&self, e: &OutgoingEmail, now: Millis) -> i64 {
        self.enqueue_content(e.kind, Ok(content(e)), now)
    }

    fn enqueue_content(
        &self,
        kind: &str,
        content: Result<MailContent, Unreadable>,
        now: Millis,
    ) -> i64 {
        let mut rows = self.rows.lock().unwrap();
        let id = i64::try_from(rows.len()).unwrap() + 1;
        rows.push(Row {
            msg: QueuedEmail {
                id,
                kind: kind.to_owned(),
                attempts: 0,
                created_at: now,
                content,
            },
            next_attempt_at: now,
            sent_at: None,
            failed_at: None,
            last_error: None,
        });
        id
    }

    fn row(&self, id: i64) -> Row {
        self.rows.lock().unwrap()[usize::try_from(id - 1).unwrap()].clone()
    }

    async fn wait_until(&self, pred: impl Fn(&[Row]) -> bool) {
        let check = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if pred(&self.rows.lock().unwrap()) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(WAIT, check)
            .await
            .expect("outbox never reached the expected state");
    }
}

#[async_trait::async_trait]
impl OutboxSource for MemOutbox {
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, OutboxError> {
        let mut rows = self.rows.lock().unwrap();
        let mut due: Vec<&mut Row> = rows
            .iter_mut()
            .filter(|r| r.sent_at.is_none() && r.failed_at.is_none() && r.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|r| (r.next_attempt_at, r.msg.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.next_attempt_at = lease_until;
                r.msg.attempts += 1;
                r.msg.clone()
            })
            .collect())
    }

    async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError> {
        if let Some(tx) = self.stop_on_sent.lock().unwrap().take() {
            tx.send(true).unwrap();
        }
        if self.fail_mark_sent.load(Ordering::SeqCst) {
            return Err(OutboxError("simulated crash".into()));
        }
        let mut rows = self.rows.lock().unwrap();
        let r = &mut rows[usize::try_from(id - 1).unwrap()];
        r.sent_at = Some(now);
        r.last_error = None;
        drop(rows);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn mark_failed(&self, id: i64, next: Millis, error: &str) -> Result<(), OutboxError> {
        let mut rows = self.rows.lock().unwrap();
        let r = &mut rows[usize::try_from(id - 1).unwrap()];
        r.next_attempt_at = next;
        r.last_error = Some(error.to_owned());
        drop(rows);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn give_up(
        &self,
        msg: &QueuedEmail,
        now: Millis,
        error: &str,
    ) -> Result<(), OutboxError> {
        let mut rows = self.rows.lock().unwrap();
        let r = &mut rows[usize::try_from(msg.id - 1).unwrap()];
        r.failed_at = Some(now);
        r.last_error = Some(error.to_owned());
        drop(rows);
        self.changed.notify_waiters();
        Ok(())
    }
}

fn content(e: &OutgoingEmail) -> MailContent {
    MailContent {
        to: e.to.clone(),
        subject: e.subject.clone(),
        body: e.body.clone(),
    }
}

struct Fixture {
    outbox: Arc<MemOutbox>,
    clock: ManualClock,
    worker: MailWorker,
}

fn fixture(transport: MailTransport) -> Fixture {
    let outbox = Arc::new(MemOutbox::default());
    let clock = ManualClock::new(T0);
    let shared: SharedClock = Arc::new(clock.clone());
    let worker = MailWorker::new(outbox.clone(), Arc::new(transport), default_from(), shared)
        .with_config(WorkerConfig {
            // Long enough that only wake-ups and shutdown move a spawned worker.
            poll_interval: Duration::from_secs(3600),
            ..WorkerConfig::default()
        });
    Fixture {
        outbox,
        clock,
        worker,
    }
}

fn code_email(code: &str) -> OutgoingEmail {
    templates::verification_code(
        &MailBrand::default(),
        "ada@example.com",
        "Ada Lovelace",
        code,
        T0 + 600_000,
    )
}

fn eml_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn dir_transport_writes_readable_eml_and_marks_sent() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path().join("outbox")).unwrap());
    let id = f.outbox.enqueue(&code_email("AB12=CD"), T0);

    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.claimed, report.sent, report.failed), (1, 1, 0));
    assert_eq!(f.outbox.row(id).sent_at, Some(T0));

    let files = eml_files(&dir.path().join("outbox"));
    assert_eq!(files, vec![format!("{T0}-{id}.eml")]);
    let raw = std::fs::read_to_string(dir.path().join("outbox").join(&files[0])).unwrap();
    assert!(
        raw.lines()
            .any(|l| l.trim_end() == "Verification code: AB12=CD")
    );
    assert!(raw.contains(&format!("Message-ID: <outbox-{id}@entitlements>\r\n")));
    assert!(raw.contains("Content-Type: text/plain; charset=utf-8\r\n"));
    assert!(raw.contains("Content-Transfer-Encoding: 7bit\r\n"));
    assert!(raw.contains("To: ada@example.com\r\n"));
    assert!(raw.contains("From: \"IBM Support Entitlements\" <no-reply@entitlements.invalid>"));
    assert!(raw.contains("Date: Sun, 15 Jun 2025 15:06:40 +0000\r\n"));

    // Nothing left to do.
    assert_eq!(f.worker.drain_once().await.unwrap(), RoundReport::default());
}

#[tokio::test]
async fn non_ascii_body_travels_as_8bit_with_lines_intact() {
    let email = templates::request_approved(
        &MailBrand::default(),
        "jose@example.com",
        "José Müller",
        "1234567",
        "Müller & Söhne GmbH",
        "Authorized Caller",
        true,
        None,
    );
    let msg = QueuedEmail {
        id: 7,
        kind: email.kind.to_owned(),
        attempts: 1,
        created_at: T0,
        content: Ok(content(&email)),
    };
    let c = content(&email);
    let raw = String::from_utf8(
        build_message(&default_from(), &msg, &c)
            .unwrap()
            .formatted(),
    )
    .unwrap();
    assert!(raw.contains("Content-Transfer-Encoding: 8bit\r\n"));
    assert!(raw.contains("Hello José Müller,\r\n"));
    assert_eq!(eml_file_name(&msg), format!("{T0}-7.eml"));
}

proptest::proptest! {
    /// One parser for both: whatever `Email::parse` lets into the database, the transport can
    /// address a message to (an address it refused was retried forever).
    #[test]
    fn every_address_the_service_accepts_builds_a_message(
        to in r#"[a-z0-9.+,;:<>"()\[\] _'-]{1,12}@[a-z0-9.,;_\[\]-]{1,16}"#
    ) {
        if crate::domain::Email::parse(&to).is_ok() {
            let c = MailContent { to: to.clone(), subject: "s".into(), body: "b".into() };
            let msg = QueuedEmail {
                id: 1,
                kind: "k".into(),
                attempts: 1,
                created_at: T0,
                content: Ok(c.clone()),
            };
            proptest::prop_assert!(build_message(&default_from(), &msg, &c).is_ok(), "{to:?}");
        }
    }
}

/// Found by the `email_render` fuzz target: a row time past the year 9999 made lettre's Date
/// header panic, in the worker, on every attempt at that row.
#[test]
fn a_row_time_out_of_the_date_header_range_still_builds() {
    let c = content(&code_email("123456"));
    for (created_at, date) in [
        (i64::MAX, "Date: Fri, 31 Dec 9999 23:59:59 +0000\r\n"),
        (
            253_402_300_800_000,
            "Date: Fri, 31 Dec 9999 23:59:59 +0000\r\n",
        ),
        (-1, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"),
    ] {
        let msg = QueuedEmail {
            id: 1,
            kind: "k".into(),
            attempts: 1,
            created_at,
            content: Ok(c.clone()),
        };
        let raw = build_message(&default_from(), &msg, &c)
            .unwrap()
            .formatted();
        let raw = String::from_utf8(raw).unwrap();
        assert!(raw.contains(date), "{created_at}: {raw}");
    }
}

#[test]
fn the_address_of_the_finding_is_refused_where_it_is_given() {
    assert!(crate::domain::Email::parse("a@b.example,c@d.example").is_err());
}

#[tokio::test]
async fn an_invalid_recipient_is_given_up_at_once_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path()).unwrap());
    let mut email = code_email("111111");
    // Queued before the service refused such addresses where they are given.
    email.to = "a@b.example,c@d.example".into();
    let id = f.outbox.enqueue(&email, T0);
    let before = emails_given_up();
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.failed, report.given_up), (1, 1));
    let row = f.outbox.row(id);
    assert_eq!(row.failed_at, Some(T0));
    assert!(row.last_error.unwrap().contains("invalid recipient"));
    assert!(emails_given_up() > before);
    assert!(eml_files(dir.path()).is_empty());
    f.clock.advance(24 * 3_600_000);
    assert_eq!(
        f.worker.drain_once().await.unwrap().claimed,
        0,
        "never again"
    );
}

#[tokio::test]
async fn a_failing_message_is_given_up_at_the_maximum_age() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that cannot be written to: every delivery fails, as a relay that is down.
    let blocked = dir.path().join("blocked");
    let f = fixture(MailTransport::Dir(blocked.clone()));
    std::fs::write(&blocked, b"a file, not a directory").unwrap();
    let id = f.outbox.enqueue(&code_email("222222"), T0);
    let max_age = WorkerConfig::default().max_age_ms;
    let mut rounds = 0;
    loop {
        let report = f.worker.drain_once().await.unwrap();
        if report.given_up == 1 {
            break;
        }
        assert_eq!(report.failed, report.claimed, "{report:?}");
        rounds += 1;
        assert!(rounds < 200, "never given up");
        let row = f.outbox.row(id);
        assert!(row.failed_at.is_none());
        f.clock.set(row.next_attempt_at);
    }
    let row = f.outbox.row(id);
    assert!(
        f.clock.now_ms() - T0 >= max_age,
        "not before the maximum age"
    );
    assert!(row.last_error.unwrap().contains("maximum age"));
}

#[tokio::test]
async fn a_message_tried_too_often_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let f = fixture(MailTransport::Dir(blocked));
    let id = f.outbox.enqueue(&code_email("333333"), T0);
    // As if its worker died with it in hand again and again: only leases ran out.
    f.outbox.rows.lock().unwrap()[0].msg.attempts = WorkerConfig::default().max_attempts - 1;
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!(report.given_up, 1);
    assert!(
        f.outbox
            .row(id)
            .last_error
            .unwrap()
            .contains("maximum attempts")
    );
}

#[tokio::test]
async fn unreadable_messages_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path()).unwrap());
    let damaged = f
        .outbox
        .enqueue_content("k", Err(Unreadable::Damaged("test")), T0);
    let elsewhere =
        f.outbox
            .enqueue_content("k", Err(Unreadable::UnknownKey("0badc0de".into())), T0);
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.failed, report.given_up), (2, 1));
    assert_eq!(f.outbox.row(damaged).failed_at, Some(T0));
    // Another replica may hold that key: retried, until the maximum age.
    let row = f.outbox.row(elsewhere);
    assert!(row.failed_at.is_none() && row.next_attempt_at > T0);
    assert!(row.last_error.unwrap().contains("0badc0de"));
}

#[tokio::test]
async fn redelivery_after_a_crash_overwrites_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path()).unwrap());
    let id = f.outbox.enqueue(&code_email("222222"), T0);

    // Delivered, then "died" before recording it.
    f.outbox.fail_mark_sent.store(true, Ordering::SeqCst);
    f.worker.drain_once().await.unwrap();
    assert_eq!(f.outbox.row(id).sent_at, None);
    let first = eml_files(dir.path());
    assert_eq!(first.len(), 1);

    // Still leased: nobody may take it yet.
    f.clock.advance(119_999);
    assert_eq!(f.worker.drain_once().await.unwrap().claimed, 0);

    f.outbox.fail_mark_sent.store(false, Ordering::SeqCst);
    f.clock.advance(1);
    let report = f.worker.drain_once().await.unwrap();
    assert_eq!((report.claimed, report.sent), (1, 1));
    assert_eq!(f.outbox.row(id).msg.attempts, 2);
    assert_eq!(
        eml_files(dir.path()),
        first,
        "same name, no temp files left"
    );
}

#[test]
fn backoff_doubles_from_five_seconds_and_caps_at_an_hour() {
    assert_eq!(retry_delay_ms(1), 5_000);
    assert_eq!(retry_delay_ms(2), 10_000);
    assert_eq!(retry_delay_ms(5), 80_000);
    assert_eq!(retry_delay_ms(10), 2_560_000);
    assert_eq!(retry_delay_ms(11), 3_600_000);
    assert_eq!(retry_delay_ms(1_000), 3_600_000);
    assert_eq!(retry_delay_ms(0), 5_000);
}

#[tokio::test]
async fn worker_stops_when_the_shutdown_sender_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path()).unwrap());
    let (stop, stopped) = watch::channel(false);
    let handle = f.worker.spawn(Arc::new(Notify::new()), stopped);
    drop(stop);
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_mid_batch_finishes_the_message_in_hand_and_releases_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(MailTransport::dir(dir.path()).unwrap());
    for code in ["555551", "555552", "555553"] {
        f.outbox.enqueue(&code_email(code), T0);
    }
    let (stop, stopped) = watch::channel(false);
    *f.outbox.stop_on_sent.lock().unwrap() = Some(stop);
    let handle = f.worker.spawn(Arc::new(Notify::new()), stopped);
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();

    let rows = f.outbox.rows.lock().unwrap().clone();
    assert_eq!(rows[0].sent_at, Some(T0));
    for r in &rows[1..] {
        assert_eq!(r.sent_at, None);
        // Due again at once rather than after the lease, for another replica to take.
        assert_eq!(r.next_attempt_at, T0);
    }
    assert_eq!(eml_files(dir.path()).len(), 1);
}

#[test]
fn default_from_is_valid() {
    let from = default_from();
    assert_eq!(
        from.to_string(),
        "IBM Support Entitlements <no-reply@entitlements.invalid>"
    );
    let reparsed: Mailbox = from.to_string().parse().unwrap();
    assert_eq!(reparsed, from);
}
