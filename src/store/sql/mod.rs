//! The `Store`, `WriteTx` and `OutboxStore` implementations of both backends, written once
//! over a [`Dialect`]; the SQL text is in `text`.
//!
//! Each impl lists the sqlx bounds its code needs (executors, argument encodings, row
//! decodings) on itself: Rust does not carry where-clauses on a trait over to its users, so
//! they cannot live on `Dialect` once. `store::connect` names `Sqlite` and `Postgres`, which
//! is where the compiler checks that both backends meet them.

mod feed;
mod outbox;
mod reads;
mod request_ids;
mod snapshot;
mod text;
mod writes;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};

use super::dialect::Dialect;
use super::{PoolStats, StoreError};

pub(crate) struct SqlStore<D: Dialect> {
    pool: Pool<D>,
    /// Calls waiting for a connection: sqlx does not count them, and a pool too small for
    /// the load shows here first.
    waiting: AtomicU64,
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            pool: D::connect(url).await?,
            waiting: AtomicU64::new(0),
        })
    }

    /// A connection of the pool, counted as waiting until it is handed out.
    async fn conn(&self) -> Result<PoolConnection<D>, StoreError> {
        Ok(self.waited(self.pool.acquire()).await?)
    }

    async fn waited<T>(&self, acquire: impl Future<Output = T>) -> T {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _done = Waited(&self.waiting);
        acquire.await
    }

    fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            used: size.saturating_sub(idle),
            idle,
            max: self.pool.options().get_max_connections(),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}

/// Uncounts a waiter when its acquire ends, also when the call is cancelled meanwhile.
struct Waited<'a>(&'a AtomicU64);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One write transaction; dropping it without `commit` rolls back.
pub(crate) struct SqlTx<D: Dialect> {
    tx: Transaction<'static, D>,
}

/// Asks for one more row than the page holds, to know whether another page follows.
fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Trims the extra row fetched by `fetch_limit` and returns the key to continue from.
fn page_next<T, K>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Option<K> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    }
}
