//! PostgreSQL for production: short READ COMMITTED transactions that lock the rows they
//! decide on (`FOR UPDATE`), so two administrators acting at once serialise on the request row.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{Pool, Postgres, Transaction};

use super::dialect::Dialect;
use super::{ChangeSignal, StoreError};
use crate::domain::Revision;

/// The channel commits announce new revisions on.
const CHANNEL: &str = "entitlements_changes";

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    const SYSTEM_NAME: &'static str = "postgresql";
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    async fn connect(url: &str) -> Result<Pool<Self>, StoreError> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let opts = opts.application_name("entitlements");
        Ok(PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            // A connection whose transaction could not be ended (a failed COMMIT or ROLLBACK)
            // is closed rather than handed to the next caller.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(&*conn)) })
            })
            // A statement that hangs (lock wait, network) must not hold a connection forever.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET statement_timeout = '15s'")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("SET idle_in_transaction_session_timeout = '30s'")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?)
    }

    async fn migrate(pool: &Pool<Self>) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/postgres").run(pool).await?;
        Ok(())
    }

    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, StoreError> {
        Ok(pool.begin().await?)
    }

    async fn begin_snapshot(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, StoreError> {
        let mut tx = pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        // Streaming a million rows into the cache can outlast the session's 15 s limit,
        // which is meant for statements that hang, not for this one read.
        sqlx::query("SET LOCAL statement_timeout = '300s'")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn announce(
        tx: &mut Transaction<'static, Self>,
        revision: Revision,
    ) -> Result<(), StoreError> {
        // Delivered by PostgreSQL only when (and if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(revision.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn listen(pool: &Pool<Self>) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(PgSignal(listener))))
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

struct PgSignal(PgListener);

#[async_trait::async_trait]
impl ChangeSignal for PgSignal {
    async fn wait(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}
