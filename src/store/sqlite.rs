//! The embedded default: one SQLite file, WAL, one writer at a time (`BEGIN IMMEDIATE`, so a
//! read-then-write transaction waits for the lock instead of failing with SQLITE_BUSY).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use super::{ChangeSignal, FeedBounds, Page, StoreError};
use crate::clock::Millis;
use crate::domain::verification::VerificationCode;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AuditRecord,
    ChangeKey, ChangeRecord, CheckFacts, Contract, Icn, MemberView, Membership, Person, Revision,
    WebId,
};
use crate::mail::{OutboxError, OutgoingEmail, QueuedEmail};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("migrations/sqlite")
    }

    /// SQLite has no notifications across processes; the follower polls (and is woken
    /// directly by commits in this process).
    async fn listen(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        Ok(None)
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

super::sql::impl_sql_store!(
    SqliteStore,
    SqliteTx,
    Sqlite,
    for_update = "",
    skip_locked = "",
    notify = ""
);
