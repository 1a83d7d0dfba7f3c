//! The pump's rules the end-to-end suite cannot hold still: a trim landing while a stream
//! replays, and live batches that overlap what was sent or skip past it. The live feed is
//! played by hand here (the pump takes its receiver), so each case happens every time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::clock::ManualClock;
use crate::domain::{ChangeKey, ChangeRecord, CountryCode, Icn, Reason, Revision, WebId};
use crate::service::feed::FEED_RETENTION_MS;
use crate::service::testing::{LAGGARD, caller, on_postgres, on_sqlite, replica_on};
use crate::service::{ServiceError, Services};

const HOUR_MS: i64 = 3600 * 1000;

/// Two accounts a day apart, then the change log trimmed through the first: returns the
/// revision the log now starts after and the second account's revision.
async fn trimmed_log(services: &Services, clock: &ManualClock) -> (Revision, Revision) {
    let operator = caller("op1", true, false);
    let us = CountryCode::parse("US").unwrap();
    services
        .create_account(&operator, &Icn::parse("1000001").unwrap(), "Early", &us)
        .await
        .unwrap();
    clock.advance(FEED_RETENTION_MS + HOUR_MS);
    let later = services
        .create_account(&operator, &Icn::parse("1000002").unwrap(), "Later", &us)
        .await
        .unwrap()
        .revision;
    let store = services.store();
    let cutoff = crate::clock::Clock::now_ms(clock) - FEED_RETENTION_MS;
    assert!(store.trim_changes(cutoff).await.unwrap() > 0);
    let trimmed = store.feed_bounds().await.unwrap().trimmed_through;
    assert!(trimmed > 0 && trimmed < later, "{trimmed} / {later}");
    (trimmed, later)
}

fn is_too_old(e: &ServiceError) -> bool {
    matches!(e, ServiceError::FailedPrecondition { reason, .. }
        if *reason == Reason::ConsistencyTokenTooOld)
}

async fn a_trim_past_a_replaying_stream_ends_it(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let replica = replica_on(&store, Arc::new(clock.clone()), LAGGARD).await;
    let services = &replica.services;
    let (trimmed, later) = trimmed_log(services, &clock).await;

    // A stream that passed the opening check and was trimmed past before its first read (the
    // pump is what runs after that check): the log still holds the later changes, but not
    // those between, so the stream must end rather than skip them.
    let (tx, mut rx) = mpsc::channel(16);
    let pumped = tokio::time::timeout(
        Duration::from_secs(10),
        services.pump(trimmed - 1, None, services.feed().subscribe(), &tx),
    )
    .await
    .expect("the pump ends by itself");
    assert!(
        pumped.as_ref().is_err_and(is_too_old),
        "trimmed through {trimmed}, read from {}: {pumped:?}",
        trimmed - 1
    );
    drop(tx);
    assert!(rx.recv().await.is_none(), "nothing sent from past the gap");

    // From exactly where the log was trimmed nothing is missing: the stream replays the rest.
    let checker = caller("ticketing", false, true);
    let mut stream = services
        .watch_changes(&checker, Some(trimmed), None)
        .await
        .expect("nothing after the trim point was forgotten");
    let first = tokio::time::timeout(Duration::from_secs(10), stream.recv())
        .await
        .expect("a first batch")
        .expect("the stream is open")
        .expect("not refused");
    assert_eq!(first.through, later);
    assert!(
        first.changes.iter().all(|c| c.revision > trimmed)
            && first.changes.iter().any(|c| c.revision == later),
        "{first:?}"
    );
}

#[tokio::test]
async fn sqlite_a_trim_past_a_replaying_stream_ends_it() {
    on_sqlite(a_trim_past_a_replaying_stream_ends_it).await;
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_a_trim_past_a_replaying_stream_ends_it() {
    on_postgres(a_trim_past_a_replaying_stream_ends_it).await;
}

fn record(revision: Revision) -> ChangeRecord {
    ChangeRecord {
        revision,
        key: ChangeKey::Person(WebId::parse(&format!("p{revision}")).unwrap()),
        at: 0,
    }
}

async fn live_batches_are_sent_once_and_in_order(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let replica = replica_on(&store, Arc::new(ManualClock::new(0)), LAGGARD).await;
    let services = replica.services.clone();
    // An empty log: the stream replays nothing and follows the feed played below.
    let (live, receiver) = broadcast::channel(16);
    let (tx, mut rx) = mpsc::channel(16);
    let pump = tokio::spawn(async move { services.pump(0, None, receiver, &tx).await });
    let mut next = async || {
        let b = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a batch within 10 s")
            .expect("the stream is open")
            .expect("not refused");
        let revisions: Vec<Revision> = b.changes.iter().map(|c| c.revision).collect();
        (revisions, b.through)
    };
    let play = |revisions: &[Revision]| {
        let batch: Arc<[ChangeRecord]> = revisions.iter().copied().map(record).collect();
        live.send(batch).unwrap();
    };
    // A batch that follows on is sent as it is, from the feed (the log has none of it).
    play(&[1, 2]);
    assert_eq!(next().await, (vec![1, 2], 2));
    // One that overlaps what was sent: only what is new.
    play(&[2, 3]);
    assert_eq!(next().await, (vec![3], 3));
    // One that skips past the stream (4 never came): not sent; the stream reads the log for
    // what it missed (nothing here) and takes up the feed again, so 4 comes next.
    play(&[5]);
    play(&[4]);
    assert_eq!(next().await, (vec![4], 4));
    pump.abort();
}

#[tokio::test]
async fn sqlite_live_batches_are_sent_once_and_in_order() {
    on_sqlite(live_batches_are_sent_once_and_in_order).await;
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_live_batches_are_sent_once_and_in_order() {
    on_postgres(live_batches_are_sent_once_and_in_order).await;
}
