//! PostgreSQL for production: short READ COMMITTED transactions that lock the rows they
//! decide on (`FOR UPDATE`), so two administrators acting at once serialise on the request row.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::{ChangeSignal, FeedBounds, Page, StoreError};
use crate::clock::Millis;
use crate::domain::verification::VerificationCode;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AuditRecord,
    ChangeKey, ChangeRecord, CheckFacts, Contract, Icn, MemberView, Membership, Person, Revision,
    WebId,
};
use crate::mail::{OutboxError, OutgoingEmail, QueuedEmail};

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    const BACKEND: &'static str = "postgres";

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let opts = opts.application_name("entitlements");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
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
            .await?;
        Ok(Self { pool })
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("migrations/postgres")
    }

    async fn listen(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(Box::new(PgSignal(listener))))
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

super::sql::impl_sql_store!(
    PgStore,
    PgTx,
    Postgres,
    for_update = " FOR UPDATE",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    notify = "SELECT pg_notify('entitlements_changes', $1)"
);

const CHANNEL: &str = "entitlements_changes";

struct PgSignal(sqlx::postgres::PgListener);

#[async_trait::async_trait]
impl ChangeSignal for PgSignal {
    async fn wait(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}
