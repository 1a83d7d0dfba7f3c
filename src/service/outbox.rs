//! The outbox as the mail worker sees it: the store's rows, opened with the service's mail
//! keys.

use super::Services;
use crate::clock::Millis;
use crate::mail::{OutboxError, OutboxSource, QueuedEmail};

#[async_trait::async_trait]
impl OutboxSource for Services {
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, OutboxError> {
        let rows = self.store().claim_due(now, lease_until, limit).await?;
        let keys = &self.inner.config.mail_keys;
        Ok(rows.into_iter().map(|r| keys.open_stored(r)).collect())
    }

    async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError> {
        self.store().mark_sent(id, now).await
    }

    async fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), OutboxError> {
        self.store().mark_failed(id, next_attempt_at, error).await
    }
}
