//! Checks on a replica whose cache lags. A check with a consistency token never answers from a
//! cache that has not applied the token, even when the replica's feed is otherwise fresh; and
//! a next step read past the cache is of one request, its id and dates together. The
//! end-to-end suite cannot hold one replica's feed back (its follower catches up within
//! moments of being woken), so these run two `Services` in-process and stop one's follower
//! outright.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::CheckRequest;
use crate::clock::{ManualClock, SystemClock};
use crate::domain::{
    AccountStatus, Action, CountryCode, DecisionReason, Icn, NextStepKind, Role, WebId,
};
use crate::service::testing::{
    LAGGARD, Replica, caller, on_postgres, on_sqlite, person, replica_on,
};
use crate::store::SharedStore;

/// A replica whose feed is never considered stale and is polled only when woken.
async fn replica(store: &SharedStore) -> Replica {
    replica_on(store, Arc::new(SystemClock), LAGGARD).await
}

async fn token_check_reads_past_a_stuck_feed(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let operator = caller("op1", true, false);
    let checker = caller("ticketing", false, true);
    let icn = Icn::parse("1234567").unwrap();
    let writer = &replica(&store).await.services;
    writer
        .create_account(&operator, &icn, "Acme", &CountryCode::parse("US").unwrap())
        .await
        .unwrap();
    // The reader's cache is loaded with the account ACTIVE; then its follower stops, so it
    // can apply nothing more, while it still counts as fresh.
    let mut reader = replica(&store).await;
    reader.stop_following().await;
    let reader = &reader.services;
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
    let writer = &replica_on(&store, Arc::new(clock.clone()), LAGGARD)
        .await
        .services;
    writer
        .create_account(&operator, &icn, "Acme", &us)
        .await
        .unwrap();
    let first = writer
        .request_access(&pat, &icn, &us, Role::AuthorizedUser)
        .await
        .unwrap();
    let mut reader = replica_on(&store, Arc::new(clock.clone()), LAGGARD).await;
    reader.stop_following().await;
    let reader = &reader.services;
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
