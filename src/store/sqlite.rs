//! The embedded default: one SQLite file, WAL, one writer at a time (`BEGIN IMMEDIATE`, so a
//! read-then-write transaction waits for the lock instead of failing with SQLITE_BUSY).

use std::path::Path;
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
use crate::private_fs;

/// The database file and its directory are the service's alone: the file is created empty
/// with mode 0600 before SQLite opens it (SQLite would use 0644 less the umask, and gives the
/// WAL and shared-memory files the same mode), and an existing one is made 0600.
fn make_private(file: &Path) -> Result<(), StoreError> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    match private_fs::create_new_file(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            restrict_existing(file);
            Ok(())
        }
        Err(e) => Err(io_error(file, e)),
    }
}

/// A file that is not the service's user's own cannot be changed, and need not stop it.
fn restrict_existing(file: &Path) {
    if let Err(e) = private_fs::restrict_file(file) {
        tracing::warn!(path = %file.display(), error = %e, "could not make the database file private (mode 0600)");
    }
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Config(format!("cannot prepare {}: {e}", path.display()))
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const SYSTEM_NAME: &'static str = "sqlite";
    const LOCK_ROWS: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    async fn connect(url: &str) -> Result<Pool<Self>, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?;
        let file = opts.get_filename().to_path_buf();
        // sqlx names an in-memory database `file:sqlx-in-memory-<n>`: nothing on disk.
        let on_disk = !file.to_string_lossy().starts_with("file:") && file != Path::new(":memory:");
        if on_disk {
            make_private(&file)?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed request or email survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            // Deleted and overwritten content is zeroed, not left in free pages of the file.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            // When a COMMIT fails because the disk is full, SQLite has already rolled back and
            // sqlx's own ROLLBACK then fails too, leaving the connection counted as inside a
            // transaction: every later write on it would fail. Such a connection is closed.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(&*conn)) })
            })
            .connect_with(opts)
            .await?;
        if on_disk {
            // SQLite gives its WAL and shared-memory files the database file's mode; ones left
            // by an older version may be more open.
            for suffix in ["-wal", "-shm"] {
                let mut side = file.clone().into_os_string();
                side.push(suffix);
                let side = std::path::PathBuf::from(side);
                if side.exists() {
                    restrict_existing(&side);
                }
            }
        }
        Ok(pool)
    }

    async fn migrate(pool: &Pool<Self>) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(pool).await?;
        // Moves what migrations rewrote into the database file and empties the WAL, so older
        // page images (delivered mail's text, before 0010 dropped it) do not linger in it.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
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
