//! What a stream does when the change log is trimmed under it: the end-to-end suite reaches
//! only the check at the start of a stream, not a trim landing while it replays.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::ManualClock;
use crate::domain::{CountryCode, Icn, Reason, Revision};
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
