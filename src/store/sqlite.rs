//! The embedded default: one SQLite file, WAL, one writer at a time (`BEGIN IMMEDIATE`, so a
//! read-then-write transaction waits for the lock instead of failing with SQLITE_BUSY).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Pool, Sqlite, Transaction};

use super::dialect::Dialect;
use super::{ChangeSignal, StoreError};
use crate::domain::Revision;

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SYSTEM_NAME: &'static str = "sqlite";
    const LOCK_ROWS: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    async fn connect(url: &str) -> Result<Pool<Self>, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?;
        if let Some(dir) = opts
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed request or email survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        Ok(SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?)
    }

    async fn migrate(pool: &Pool<Self>) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(pool).await?;
        Ok(())
    }

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, StoreError> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// In WAL mode a deferred transaction keeps the snapshot of its first read until it ends.
    async fn begin_snapshot(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, StoreError> {
        Ok(pool.begin().await?)
    }

    /// No one could hear it: see `listen`.
    async fn announce(
        _tx: &mut Transaction<'static, Self>,
        _revision: Revision,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// SQLite has no notifications across processes; the follower polls (and is woken
    /// directly by commits in this process).
    async fn listen(_pool: &Pool<Self>) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        Ok(None)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
