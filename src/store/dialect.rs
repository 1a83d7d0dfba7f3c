//! Everything in which the two backends differ, named in one place. The shared SQL
//! (`sql/`) is generic over a `Dialect`; `sqlite.rs` and `postgres.rs` implement it.

use std::future::Future;

use sqlx::{Pool, Transaction};

use super::{ChangeSignal, StoreError};
use crate::domain::Revision;

pub(crate) trait Dialect: sqlx::Database {
    /// What `Store::backend` reports.
    const BACKEND: &'static str;
    /// `db.system.name` of the OpenTelemetry database conventions.
    const SYSTEM_NAME: &'static str;
    /// Appended to the reads a write transaction decides on. Empty on SQLite, whose
    /// `BEGIN IMMEDIATE` already holds the only write lock.
    const LOCK_ROWS: &'static str;
    /// Appended to the outbox claim's subquery, so concurrent workers claim disjoint rows
    /// instead of waiting for each other.
    const SKIP_LOCKED: &'static str;

    /// A pool with the backend's session settings applied to every connection.
    fn connect(url: &str) -> impl Future<Output = Result<Pool<Self>, StoreError>> + Send;

    /// Runs the backend's own migrations (`migrations/<backend>`).
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a transaction that may write.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, StoreError>> + Send;

    /// Starts a read-only transaction whose reads all see one snapshot of the database.
    fn begin_snapshot(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, StoreError>> + Send;

    /// Tells other replicas, on commit, that `revision` exists (a no-op where none can hear).
    fn announce(
        tx: &mut Transaction<'static, Self>,
        revision: Revision,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A wake-up for revisions committed elsewhere; None where only polling works.
    fn listen(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Option<Box<dyn ChangeSignal>>, StoreError>> + Send;

    /// `sqlx::Database` leaves the query result opaque; each backend's result counts rows.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}
