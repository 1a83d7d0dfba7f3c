//! In-process test support for the service layer: callers, replicas with a chosen feed
//! configuration, and a fresh database on each store. The end-to-end suite drives the service
//! over gRPC; these are for what it cannot reach, such as one replica's feed held back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::domain::{Email, WebId};
use crate::service::{Caller, FeedConfig, Identity, ServiceConfig, Services};
use crate::store::SharedStore;

pub(crate) fn caller(web_id: &str, operator: bool, checker: bool) -> Caller {
    identity(web_id, None, operator, checker)
}

pub(crate) fn person(web_id: &str, email: &str) -> Caller {
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

/// A feed never considered stale and polled only when woken: stopping its follower leaves a
/// replica that lags while it believes itself fresh.
pub(crate) const LAGGARD: FeedConfig = FeedConfig {
    poll_interval: Duration::from_secs(3600),
    max_staleness: Duration::from_secs(3600),
};

/// One replica: `Services` and its feed follower.
pub(crate) struct Replica {
    pub services: Services,
    follower: tokio::task::JoinHandle<()>,
    /// Held: the follower reads a dropped sender as the server stopping.
    _running: tokio::sync::watch::Sender<bool>,
}

impl Replica {
    /// Stops the follower: the replica applies nothing more, and counts as fresh only as long
    /// as its feed configuration allows.
    pub(crate) async fn stop_following(&mut self) {
        self.follower.abort();
        let _ = (&mut self.follower).await;
    }
}

/// `Services` on `store` with the feed configured as `feed`, its follower running.
pub(crate) async fn replica_on(
    store: &SharedStore,
    clock: SharedClock,
    feed: FeedConfig,
) -> Replica {
    let config = ServiceConfig {
        feed,
        ..ServiceConfig::default()
    };
    let (running, shutdown) = tokio::sync::watch::channel(false);
    let (services, follower) = Services::start(
        store.clone(),
        clock,
        config,
        Arc::new(tokio::sync::Notify::new()),
        shutdown,
    )
    .await
    .unwrap();
    Replica {
        services,
        follower,
        _running: running,
    }
}

pub(crate) async fn on_sqlite(test: impl AsyncFnOnce(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    test(&url).await;
}

/// A database of its own on the PostgreSQL the suite uses, dropped afterwards.
pub(crate) async fn on_postgres(test: impl AsyncFnOnce(&str)) {
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
