//! Pending requests that nobody decided in time become EXPIRED, and the requester hears of it.

use std::time::Duration;

use tokio::sync::watch;

use super::audit::{self, Event};
use super::{ServiceResult, Services};
use crate::clock::Millis;
use crate::domain::AccessRequest;
use crate::mail::templates;
use crate::store::WriteTx;

impl Services {
    /// Records an expiry already applied to `request` (state EXPIRED) in `tx`.
    pub(super) async fn record_expiry(
        &self,
        tx: &mut dyn WriteTx,
        request: &AccessRequest,
        now: Millis,
    ) -> ServiceResult<()> {
        tx.update_request(request).await?;
        let mut before = request.clone();
        before.state = crate::domain::AccessRequestState::Pending;
        audit::record(
            tx,
            None,
            now,
            Event {
                action: "access_request.expire",
                target_type: "access_request",
                target_id: request.id.to_string(),
                icn: Some(&request.icn),
                before: Some(audit::request(&before)),
                after: Some(audit::request(request)),
                reason: Some("no decision before the deadline"),
            },
        )
        .await?;
        if let Some(p) = tx.person(&request.web_id).await? {
            let company = tx
                .account_for_update(&request.icn)
                .await?
                .map(|a| a.company_name)
                .unwrap_or_default();
            let mail = templates::request_expired(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &company,
            );
            self.enqueue(tx, mail, now).await?;
        }
        Ok(())
    }

    /// Expires every overdue pending request; returns how many it expired.
    pub async fn expire_overdue(&self) -> ServiceResult<usize> {
        let now = self.now();
        let mut done = 0;
        loop {
            let ids = self.store().overdue_requests(now, 100).await?;
            if ids.is_empty() {
                return Ok(done);
            }
            let batch = ids.len();
            for id in ids {
                let mut tx = self.store().begin().await?;
                let Some(mut request) = tx.request_for_update(id).await? else {
                    continue;
                };
                // Decided meanwhile by an administrator: nothing to do.
                if !request.is_overdue(now) || request.expire(now).is_err() {
                    continue;
                }
                self.record_expiry(tx.as_mut(), &request, now).await?;
                self.commit(tx, now).await?;
                done += 1;
            }
            if batch < 100 {
                return Ok(done);
            }
        }
    }
}

/// Runs `expire_overdue` every `every` until shutdown.
pub fn spawn_expiry_sweeper(
    services: Services,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match services.expire_overdue().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(expired = n, "expired overdue access requests"),
                        Err(e) => tracing::warn!(error = %e, "expiry sweep failed; will retry"),
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}
