//! Pending requests that nobody decided in time become EXPIRED, and the requester hears of it.
//! Time-boxed memberships whose end passed lapse: checks answer ACCESS_REVOKED from the end
//! instant by themselves (the decision compares it with the clock); the sweeper records each
//! lapse once (the membership is ended as a removal is, at that instant), audits it as
//! `membership.lapse` by the system and tells the member and the account's administrators.

use std::time::Duration;

use tokio::sync::watch;

use super::access::admin_recipients;
use super::audit::{self, Event};
use super::sweep;
use super::write::Write;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, Account, Icn, Membership, WebId,
};
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

    /// Records the lapse of `member` (locked in `w`, active until its end, which has passed),
    /// as the service itself, whoever noticed it: ends it at the end instant (so a check
    /// answers the same before and after), audits `membership.lapse` and tells the member and
    /// the account's administrators. Returns the ended membership.
    pub(super) async fn record_lapse(
        &self,
        w: &mut Write<'_>,
        account: &Account,
        member: &Membership,
    ) -> ServiceResult<Membership> {
        let Some(end) = member.expires_at.filter(|_| member.lapse_due(w.now())) else {
            return Err(ServiceError::Internal(
                "asked to record the lapse of a membership that has not lapsed".to_owned(),
            ));
        };
        let lapsed = Membership {
            removed_at: Some(end),
            updated_at: w.now(),
            ..member.clone()
        };
        w.tx().upsert_membership(&lapsed).await?;
        w.system_audit(Event {
            action: "membership.lapse",
            target_type: "membership",
            target_id: format!("{}/{}", member.icn, member.web_id),
            icn: Some(&member.icn),
            before: Some(audit::membership(member)),
            after: Some(audit::membership(&lapsed)),
            reason: Some("the time-boxed grant reached its end"),
        });
        let person = w.tx().person(&member.web_id).await?;
        let name = person
            .as_ref()
            .map_or_else(|| member.web_id.to_string(), |p| p.display_name());
        if let Some(p) = &person {
            w.mail(templates::membership_lapsed(
                self.brand(),
                p.email.as_str(),
                &name,
                member.icn.as_str(),
                &account.company_name,
                member.role.label(),
                end,
            ));
        }
        let now = w.now();
        let admins = w.tx().administrators(&member.icn, now).await?;
        for admin in admin_recipients(&admins) {
            if admin.web_id == member.web_id {
                continue;
            }
            w.mail(templates::membership_lapsed_to_admin(
                self.brand(),
                admin.email.as_str(),
                &name,
                member.web_id.as_str(),
                member.icn.as_str(),
                &account.company_name,
                member.role.label(),
                end,
            ));
        }
        Ok(lapsed)
    }

    /// Records every lapse due (time-boxed memberships past their end); returns how many.
    pub async fn lapse_overdue(&self) -> ServiceResult<usize> {
        let now = self.now();
        sweep::drain(
            sweep::BATCH,
            |limit| async move { Ok(self.store().lapsed_memberships(now, limit).await?) },
            move |(icn, web_id)| async move { self.lapse(&icn, &web_id).await },
        )
        .await
    }

    /// Records one lapse, in a write of its own that locks the account and the membership row
    /// and checks again: a lapse another replica recorded, or a grant renewed meanwhile, is
    /// left alone (false).
    async fn lapse(&self, icn: &Icn, web_id: &WebId) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let account = match w.lock_account(icn).await {
            Ok(a) => a,
            Err(ServiceError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(member) = w.tx().membership_for_update(icn, web_id).await? else {
            return Ok(false);
        };
        if !member.lapse_due(w.now()) {
            return Ok(false);
        }
        self.record_lapse(&mut w, &account, &member).await?;
        w.commit().await?;
        Ok(true)
    }

    /// Expires every overdue pending request; returns how many it expired.
    pub async fn expire_overdue(&self) -> ServiceResult<usize> {
        let now = self.now();
        sweep::drain(
            sweep::BATCH,
            |limit| async move { Ok(self.store().overdue_requests(now, limit).await?) },
            move |id| async move { self.expire(id).await },
        )
        .await
    }

    /// Expires one overdue request, unless it was decided (or expired by another replica)
    /// meanwhile (false).
    async fn expire(&self, id: AccessRequestId) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let (mut request, account) = match w.lock_request(id).await {
            Ok(found) => found,
            Err(ServiceError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !request.is_overdue(w.now()) || request.expire(w.now()).is_err() {
            return Ok(false);
        }
        self.record_expiry(&mut w, &request, &account).await?;
        w.commit().await?;
        Ok(true)
    }
}

/// Runs `nudge_due` and `expire_overdue` every `every` until shutdown.
pub fn spawn_expiry_sweeper(
    services: Services,
    every: Duration,
    orphans_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Looking for orphaned accounts reads every active account: less often.
        let mut orphans = tokio::time::interval(orphans_every);
        orphans.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = orphans.tick() => {
                    match services.report_orphans().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(changed = n, "reported or withdrew orphaned accounts"),
                        Err(e) => tracing::warn!(error = %e, "orphaned-account sweep failed; will retry"),
                    }
                }
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
                    match services.trim_request_ids().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(forgotten = n, "forgot request ids past --request-id-ttl"),
                        Err(e) => tracing::warn!(error = %e, "request id sweep failed; will retry"),
                    }
                    match services.lapse_overdue().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(lapsed = n, "recorded lapsed time-boxed memberships"),
                        Err(e) => tracing::warn!(error = %e, "lapse sweep failed; will retry"),
                    }
                    match services.warn_contract_ends().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(accounts = n, "warned of contract ends"),
                        Err(e) => tracing::warn!(error = %e, "contract-end warning sweep failed; will retry"),
                    }
                    match services.remove_unrecertified().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(removed = n, "removed members not recertified in time"),
                        Err(e) => tracing::warn!(error = %e, "recertification sweep failed; will retry"),
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}
