//! The outbox as the mail worker's source reads it. Claims run outside any write transaction:
//! each statement is its own, and the lease (`next_attempt_at`) is what keeps workers apart.

use async_trait::async_trait;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::{SqlStore, text};
use crate::clock::Millis;
use crate::mail::{OutboxError, StoredEmail};
use crate::store::OutboxStore;
use crate::store::dialect::Dialect;
use crate::store::rows::OutboxRow;

fn outbox_error(e: sqlx::Error) -> OutboxError {
    OutboxError(e.to_string())
}

#[async_trait]
impl<D> OutboxStore for SqlStore<D>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    OutboxRow: for<'r> FromRow<'r, D::Row>,
{
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, OutboxError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(&text::claim_due(D::SKIP_LOCKED))
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(outbox_error)?;
        let mut out: Vec<StoredEmail> = rows.into_iter().map(StoredEmail::from).collect();
        // RETURNING gives no order.
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    #[tracing::instrument(name = "UPDATE outbox", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "outbox", db.query.summary = "UPDATE outbox"))]
    async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError> {
        sqlx::query(text::MARK_SENT)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(outbox_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "UPDATE outbox", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "outbox", db.query.summary = "UPDATE outbox"))]
    async fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), OutboxError> {
        sqlx::query(text::MARK_FAILED)
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(outbox_error)?;
        Ok(())
    }
}
