//! Checks on a replica whose cache lags. A check with a consistency token never answers from a
//! cache that has not applied the token, even when the replica's feed is otherwise fresh; and
//! a next step read past the cache is of one request, its id and dates together. The
//! end-to-end suite cannot hold one replica's feed back (its follower catches up within
//! moments of being woken), so these run two `Services` in-process and stop one's follower
//! outright.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::CheckRequest;
use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::domain::{
    AccountStatus, Action, CountryCode, DecisionReason, Email, Icn, NextStepKind, Role, WebId,
};
use crate::service::{Caller, FeedConfig, Identity, ServiceConfig, Services};
use crate::store::SharedStore;

fn caller(web_id: &str, operator: bool, checker: bool) -> Caller {
    identity(web_id, None, operator, checker)
}

fn person(web_id: &str, email: &str) -> Caller {
    identity(web_id, Some(Email::parse(email).unwrap()), false, false)
}

fn identity(web_id: &str, email: Option<Email>, operator: bool, checker: bool) -> Caller {
    Caller::new(
        Arc::new(Identity {
            web_id: WebId::parse(web_id).unwrap(),
            email,
            given_name: String::new(),
            family_name: String::new(),
            operator,
            checker,
        }),
        None,
    )
}

/// A replica whose feed is never considered stale and is polled only when woken.
async fn replica(store: &SharedStore) -> (Services, tokio::task::JoinHandle<()>) {
    replica_on(store, Arc::new(SystemClock)).await
}

async fn replica_on(
    store: &SharedStore,
    clock: SharedClock,
) -> (Services, tokio::task::JoinHandle<()>) {
    let config = ServiceConfig {
        feed: FeedConfig {
            poll_interval: Duration::from_secs(3600),
            max_staleness: Duration::from_secs(3600),
        },
        ..ServiceConfig::default()
    };
    // The shutdown sender is dropped: followers end when the test aborts them.
    let (_, shutdown) = tokio::sync::watch::channel(false);
    Services::start(
        store.clone(),
        clock,
        config,
        Arc::new(tokio::sync::Notify::new()),
        shutdown,
    )
    .await
    .unwrap()
}

async fn token_check_reads_past_a_stuck_feed(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let operator = caller("op1", true, false);
    let checker = caller("ticketing", false, true);
    let icn = Icn::parse("1234567").unwrap();
    let (writer, _writer_feed) = replica(&store).await;
    writer
        .create_account(&operator, &icn, "Acme", &CountryCode::parse("US").unwrap())
        .await
        .unwrap();
    // The reader's cache is loaded with the account ACTIVE; then its follower stops, so it
    // can apply nothing more, while it still counts as fresh.
    let (reader, reader_feed) = replica(&store).await;
    reader_feed.abort();
    let _ = reader_feed.await;
    let check = CheckRequest {
        web_id: WebId::parse("someone").unwrap(),
        icn: icn.clone(),
        action: Action::ViewSupportArea,
        product: None,
        severity: None,
        fully_consistent: false,
    };
    let (before, _) = reader
        .check_entitlement(&checker, &check, None)
        .await
        .unwrap();
    assert_eq!(before.decision.reason, DecisionReason::NotAMember);
    let suspended = writer
        .set_account_status(&operator, &icn, AccountStatus::Suspended, "test")
        .await
        .unwrap();
    let (after, reflects) = reader
        .check_entitlement(&checker, &check, Some(suspended.revision))
        .await
        .unwrap();
    assert_eq!(
        after.decision.reason,
        DecisionReason::AccountSuspended,
        "a check with the suspension's token answered from a cache that never applied it"
    );
    assert!(reflects >= suspended.revision);
}

/// The reader's cache holds pat's first request, pending; since then pat withdrew it and
/// asked again. The check decides on the cached facts (a request waits), and its next step,
/// read past the cache, names the request that waits now: with that request's dates, not the
/// cached one's.
async fn a_lagging_next_step_is_of_one_request(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let operator = caller("op1", true, false);
    let checker = caller("ticketing", false, true);
    let pat = person("pat", "pat@example.com");
    let icn = Icn::parse("7654321").unwrap();
    let us = CountryCode::parse("US").unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let (writer, _writer_feed) = replica_on(&store, Arc::new(clock.clone())).await;
    writer
        .create_account(&operator, &icn, "Acme", &us)
        .await
        .unwrap();
    let first = writer
        .request_access(&pat, &icn, &us, Role::AuthorizedUser)
        .await
        .unwrap();
    let (reader, reader_feed) = replica_on(&store, Arc::new(clock.clone())).await;
    reader_feed.abort();
    let _ = reader_feed.await;
    clock.advance(60_000);
    writer
        .withdraw_request(&pat, first.value.request.id, "wrong role")
        .await
        .unwrap();
    clock.advance(60_000);
    let second = writer
        .request_access(&pat, &icn, &us, Role::TechnicalContact)
        .await
        .unwrap()
        .value
        .request;
    let check = CheckRequest {
        web_id: WebId::parse("pat").unwrap(),
        icn: icn.clone(),
        action: Action::OpenServiceRequest,
        product: None,
        severity: None,
        fully_consistent: false,
    };
    let (answer, _) = reader
        .check_entitlement(&checker, &check, None)
        .await
        .unwrap();
    assert_eq!(
        answer.decision.reason,
        DecisionReason::RequestPending,
        "{first:?} {second:?}"
    );
    let step = answer.next_step.unwrap();
    assert_eq!(step.kind, NextStepKind::WaitForDecision);
    assert_eq!(step.request, Some(second.id));
    assert_eq!(step.since, Some(second.created_at), "waiting since");
    assert_eq!(step.until, Some(second.expires_at), "waiting until");
    assert_ne!(second.created_at, first.value.request.created_at);
}

async fn on_sqlite(test: impl AsyncFnOnce(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    test(&url).await;
}

/// A database of its own on the PostgreSQL the suite uses, dropped afterwards.
async fn on_postgres(test: impl AsyncFnOnce(&str)) {
    use sqlx::Connection as _;
    let admin = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin} does not answer ({e}): start it or set \
             ENTITLEMENTS_SKIP_POSTGRES=1 to skip the PostgreSQL tests knowingly"
            )
        });
    let name = format!("ent_unit_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    test(&format!("{base}/{name}")).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_token_check_reads_past_a_stuck_feed() {
    on_sqlite(token_check_reads_past_a_stuck_feed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_token_check_reads_past_a_stuck_feed() {
    on_postgres(token_check_reads_past_a_stuck_feed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_lagging_next_step_is_of_one_request() {
    on_sqlite(a_lagging_next_step_is_of_one_request).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_a_lagging_next_step_is_of_one_request() {
    on_postgres(a_lagging_next_step_is_of_one_request).await;
}
