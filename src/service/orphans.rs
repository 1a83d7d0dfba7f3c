//! Accounts that are never orphaned: an active account with no administrator who can decide
//! (no active STC or TC with a verified email) is reported to the operators once, with an
//! audit event, and counted in a gauge; its requests already go to the operators (the policy's
//! `request_audience`). When someone can decide again, the report is withdrawn, so a later
//! orphaning is reported anew.

use super::audit::Event;
use super::sweep;
use super::{ServiceResult, Services};
use crate::domain::{AccountStatus, Icn};
use crate::mail::templates;

impl Services {
    /// Reports newly orphaned accounts and withdraws the reports of adopted ones; returns how
    /// many changed. An account younger than `--remind-after` is left the time to have its
    /// first STC verify their address.
    pub async fn report_orphans(&self) -> ServiceResult<usize> {
        let now = self.now();
        let made_by = now.saturating_sub(self.inner.config.remind_after_ms);
        let mut changed = 0;
        for orphaned in [true, false] {
            changed +=
                sweep::drain(
                    sweep::BATCH,
                    |limit| async move {
                        Ok(self.store().orphans(orphaned, made_by, now, limit).await?)
                    },
                    move |icn| async move { self.mark_orphan(&icn, orphaned).await },
                )
                .await?;
        }
        Ok(changed)
    }

    /// Records the account's state in one write, after checking it again under the account's
    /// lock (an administrator may have verified meanwhile; another replica may have reported).
    async fn mark_orphan(&self, icn: &Icn, orphaned: bool) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let account = w.lock_account(icn).await?;
        let now = w.now();
        let admins = w.tx().administrators(icn, now).await?;
        let can_decide = account.status == AccountStatus::Active
            && admins.iter().any(|(_, p)| p.email_verified());
        let is_orphan = account.status == AccountStatus::Active && !can_decide;
        if is_orphan != orphaned || !w.tx().mark_orphan(icn, orphaned, now).await? {
            return Ok(false);
        }
        w.system_audit(Event {
            action: if orphaned {
                "account.orphaned"
            } else {
                "account.adopted"
            },
            target_type: "account",
            target_id: icn.to_string(),
            icn: Some(icn),
            before: None,
            after: Some(serde_json::json!({
                "administrators": admins.len(),
                "administrators_with_verified_email": admins.iter().filter(|(_, p)| p.email_verified()).count(),
            })),
            reason: Some(if orphaned {
                "no administrator with a verified email"
            } else {
                "an administrator can decide again"
            }),
        });
        if orphaned {
            match &self.inner.config.operator_email {
                Some(to) => w.mail(templates::account_orphaned(
                    self.brand(),
                    to.as_str(),
                    icn.as_str(),
                    &account.company_name,
                    admins.len(),
                )),
                None => tracing::warn!(
                    %icn,
                    "an account has no administrator who can decide, and no --operator-email is set to report it to"
                ),
            }
        }
        w.commit().await?;
        Ok(true)
    }
}
