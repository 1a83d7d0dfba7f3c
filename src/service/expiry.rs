//! Pending requests that nobody decided in time become EXPIRED, and the requester hears of it.

use std::time::Duration;

use tokio::sync::watch;

use super::audit::{self, Event};
use super::write::Write;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{AccessRequest, AccessRequestState, Account};
use crate::mail::templates;

impl Services {
    /// Records an expiry already applied to `request` (state EXPIRED) in `w`, as the service
    /// itself: the deadline passed, whoever noticed it.
    pub(super) async fn record_expiry(
        &self,
        w: &mut Write<'_>,
        request: &AccessRequest,
        account: &Account,
    ) -> ServiceResult<()> {
        w.tx().update_request(request).await?;
        let mut before = request.clone();
        before.state = AccessRequestState::Pending;
        w.system_audit(Event {
            action: "access_request.expire",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: Some(audit::request(&before)),
            after: Some(audit::request(request)),
            reason: Some("no decision before the deadline"),
        });
        if let Some(p) = w.tx().person(&request.web_id).await? {
            w.mail(templates::request_expired(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &account.company_name,
            ));
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
                let mut w = self.begin_system().await?;
                let (mut request, account) = match w.lock_request(id).await {
                    Ok(found) => found,
                    Err(ServiceError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                // Decided meanwhile by an administrator: nothing to do.
                if !request.is_overdue(w.now()) || request.expire(w.now()).is_err() {
                    continue;
                }
                self.record_expiry(&mut w, &request, &account).await?;
                w.commit().await?;
                done += 1;
            }
            if batch < 100 {
                return Ok(done);
            }
        }
    }
}

/// Runs `nudge_due` and `expire_overdue` every `every` until shutdown.
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
                    match services.nudge_due().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sent = n, "reminded or escalated pending access requests"),
                        Err(e) => tracing::warn!(error = %e, "reminder sweep failed; will retry"),
                    }
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
