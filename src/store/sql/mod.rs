//! The `Store`, `WriteTx` and `OutboxSource` implementations of both backends, written once
//! over a [`Dialect`]; the SQL text is in `text`.
//!
//! Each impl lists the sqlx bounds its code needs (executors, argument encodings, row
//! decodings) on itself: Rust does not carry where-clauses on a trait over to its users, so
//! they cannot live on `Dialect` once. `store::connect` names `Sqlite` and `Postgres`, which
//! is where the compiler checks that both backends meet them.

mod feed;
mod outbox;
mod reads;
mod text;
mod writes;

use sqlx::{Pool, Transaction};

use super::StoreError;
use super::dialect::Dialect;

pub(crate) struct SqlStore<D: Dialect> {
    pool: Pool<D>,
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            pool: D::connect(url).await?,
        })
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
