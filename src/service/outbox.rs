//! The outbox as the mail worker sees it: the store's rows, opened with the service's mail
//! keys, and a message the worker gives up on ended through the write path, so it is audited
//! like any other change (by the service itself).

use super::Services;
use super::audit::Event;
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

    async fn give_up(
        &self,
        msg: &QueuedEmail,
        now: Millis,
        error: &str,
    ) -> Result<(), OutboxError> {
        let failed = |e: &dyn std::fmt::Display| OutboxError(e.to_string());
        let mut w = self.begin_system().await.map_err(|e| failed(&e))?;
        if !w
            .tx()
            .fail_email(msg.id, now, error)
            .await
            .map_err(|e| failed(&e))?
        {
            // Sent or given up by another replica meanwhile: nothing to record.
            return Ok(());
        }
        w.system_audit(Event {
            action: "email.undeliverable",
            target_type: "email",
            target_id: msg.id.to_string(),
            icn: None,
            before: None,
            after: Some(super::audit::undeliverable(msg)),
            reason: Some(error),
        });
        w.commit().await.map_err(|e| failed(&e))?;
        Ok(())
    }
}
