//! The follower's rules, which every answer served from the cache rests on and the end-to-end
//! suite cannot see (a replica that reads the database for every check answers just as
//! right): the feed counts as fresh while it is followed and turns stale when it is not; a
//! consistency token waits for its revision; an ordinary batch of changes invalidates what it
//! changed and keeps the rest of the cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::FeedConfig;
use crate::clock::SystemClock;
use crate::domain::{Action, CountryCode, Icn, WebId};
use crate::service::CheckRequest;
use crate::service::testing::{caller, on_postgres, on_sqlite, replica_on};

const STALE_AFTER: Duration = Duration::from_millis(150);

/// Polls `cond` every few milliseconds until it holds, or fails naming `what`.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn freshness_follows_the_follower(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let config = FeedConfig {
        poll_interval: Duration::from_millis(10),
        max_staleness: STALE_AFTER,
    };
    let mut replica = replica_on(&store, Arc::new(SystemClock), config).await;
    let feed = replica.services.feed().clone();
    until("fresh once followed", || feed.is_fresh()).await;
    // Followed for several times the bound, it stays fresh, and its staleness stays small.
    let watched = Instant::now();
    while watched.elapsed() < STALE_AFTER * 3 {
        assert!(feed.is_fresh(), "a followed feed turned stale");
        assert!(feed.staleness() < STALE_AFTER, "{:?}", feed.staleness());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replica.stop_following().await;
    until("stale once no longer followed", || !feed.is_fresh()).await;
    assert!(feed.staleness() >= STALE_AFTER, "{:?}", feed.staleness());
}

async fn a_token_waits_for_its_revision(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let config = FeedConfig {
        poll_interval: Duration::from_secs(3600),
        max_staleness: Duration::from_secs(3600),
    };
    let replica = replica_on(&store, Arc::new(SystemClock), config).await;
    let services = &replica.services;
    let feed = services.feed().clone();
    let now = feed.applied();
    assert!(feed.wait_for(now, Duration::ZERO).await, "applied already");
    assert!(
        !feed.wait_for(now + 1, Duration::from_millis(50)).await,
        "nothing was written: revision {} never comes",
        now + 1
    );
    let written = services
        .create_account(
            &caller("op1", true, false),
            &Icn::parse("1000001").unwrap(),
            "Acme",
            &CountryCode::parse("US").unwrap(),
        )
        .await
        .unwrap();
    assert!(written.revision > now);
    // Polled hourly: only the wake-up that waiting sends gets it applied in time.
    assert!(
        feed.wait_for(written.revision, Duration::from_secs(10))
            .await
    );
    assert!(feed.applied() >= written.revision);
    assert!(
        !feed
            .wait_for(written.revision + 1000, Duration::from_millis(50))
            .await
    );
}

async fn a_batch_keeps_what_it_did_not_change(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let config = FeedConfig {
        poll_interval: Duration::from_millis(10),
        max_staleness: Duration::from_secs(3600),
    };
    let replica = replica_on(&store, Arc::new(SystemClock), config).await;
    let services = &replica.services;
    let operator = caller("op1", true, false);
    let us = CountryCode::parse("US").unwrap();
    let (kept, changed) = (
        Icn::parse("1000001").unwrap(),
        Icn::parse("1000002").unwrap(),
    );
    for icn in [&kept, &changed] {
        services
            .create_account(&operator, icn, "Acme", &us)
            .await
            .unwrap();
    }
    let check = CheckRequest {
        web_id: WebId::parse("pat").unwrap(),
        icn: kept.clone(),
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
        fully_consistent: false,
    };
    let feed = services.feed().clone();
    let cache = services.inner.cache.clone();
    let pat = WebId::parse("pat").unwrap();
    // Once the feed has applied both accounts, a check fills the cache for pat on `kept`.
    let head = store.feed_bounds().await.unwrap().head;
    assert!(feed.wait_for(head, Duration::from_secs(10)).await);
    services
        .check_entitlement(&caller("ticketing", false, true), &check, None)
        .await
        .unwrap();
    assert!(
        cache.get(&kept, &pat).is_some(),
        "the check filled the cache"
    );
    let suspended = services
        .set_account_status(
            &operator,
            &changed,
            crate::domain::AccountStatus::Suspended,
            "test",
        )
        .await
        .unwrap();
    assert!(
        feed.wait_for(suspended.revision, Duration::from_secs(10))
            .await
    );
    assert!(
        cache.get(&kept, &pat).is_some(),
        "a change to another account emptied the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_freshness_follows_the_follower() {
    on_sqlite(freshness_follows_the_follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_freshness_follows_the_follower() {
    on_postgres(freshness_follows_the_follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_token_waits_for_its_revision() {
    on_sqlite(a_token_waits_for_its_revision).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_a_token_waits_for_its_revision() {
    on_postgres(a_token_waits_for_its_revision).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_batch_keeps_what_it_did_not_change() {
    on_sqlite(a_batch_keeps_what_it_did_not_change).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_a_batch_keeps_what_it_did_not_change() {
    on_postgres(a_batch_keeps_what_it_did_not_change).await;
}
