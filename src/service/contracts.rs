//! Access that follows the contract (issue 9).
//!
//! - **Contract-end warnings**: the STCs of an active account hear `--contract-warning` before
//!   the last of its contracts not yet ended ends (who hears: `policy::contract_end_audience`).
//!   Once per end instant: the `contract_end_warnings` key, written in the same transaction as
//!   the audit event and the emails, keeps two replicas' sweeps from both sending it; an
//!   extension moves the end, and the new end is warned of again in its time.
//! - **Recertification at renewal**: when UpsertSupportContract moves an existing contract's
//!   end later, the account's administrators are asked to confirm its members (everyone but
//!   the STCs, `policy::recertified`) within `--recertify-within`; `CertifyMember` confirms one.
//!   The sweeper removes whoever is not confirmed by the deadline, as RemoveMember does, by the
//!   system (`membership.not_recertified`), and tells the member and the administrators. Each
//!   removal locks the account and the membership and checks again in its own transaction, so
//!   a confirmation that won the race, or another replica's removal, is left alone.

use serde_json::json;

use super::access::admin_recipients;
use super::audit::{self, Event};
use super::members::member_not_found;
use super::nudges::administrator_facts;
use super::sweep;
use super::write::Write;
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::contract_end;
use crate::domain::policy::{self, Operation};
use crate::domain::{Account, AccountStatus, Contract, Icn, MemberView, Membership, WebId};
use crate::mail::templates::{self, MemberToConfirm};

impl Services {
    /// Warns of every contract end that is due; returns how many accounts were warned.
    pub async fn warn_contract_ends(&self) -> ServiceResult<usize> {
        let now = self.now();
        let warn_by = now.saturating_add(self.inner.config.contract_warning_ms);
        sweep::drain(
            sweep::BATCH,
            |limit| async move {
                Ok(self
                    .store()
                    .due_contract_warnings(now, warn_by, limit)
                    .await?)
            },
            move |(icn, end)| async move { self.warn_contract_end(&icn, end).await },
        )
        .await
    }

    /// Warns the account's STCs that its contracts end at `end`, unless that is no longer the
    /// last end, not yet due, the account is not active, or it was warned of already.
    async fn warn_contract_end(&self, icn: &Icn, end: Millis) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let account = match w.lock_account(icn).await {
            Ok(a) => a,
            Err(ServiceError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let now = w.now();
        let contracts = w.tx().contracts(icn).await?;
        let warning = self.inner.config.contract_warning_ms;
        if !contract_end::end_warning_due(account.status, &contracts, end, warning, now) {
            return Ok(false);
        }
        if !w.tx().record_contract_warning(icn, end, now).await? {
            return Ok(false);
        }
        let admins = w.tx().administrators(icn, now).await?;
        let told = policy::contract_end_audience(account.status, &administrator_facts(&admins));
        let mut heard = Vec::new();
        for i in told {
            let (_, person) = &admins[i];
            w.mail(templates::contract_ending(
                self.brand(),
                person.email.as_str(),
                &person.display_name(),
                icn.as_str(),
                &account.company_name,
                end,
            ));
            heard.push(person.web_id.to_string());
        }
        w.system_audit(Event {
            action: "contract.end_warning",
            target_type: "account",
            target_id: icn.to_string(),
            icn: Some(icn),
            before: None,
            after: Some(json!({ "ends_at": end, "site_technical_contacts": heard })),
            reason: Some("the last contract in force ends soon"),
        });
        w.commit().await?;
        Ok(true)
    }

    /// At a renewal (an existing contract's end moved later) of an active account: asks for
    /// the recertification of every active member but the STCs by `--recertify-within` from
    /// now (restarting an earlier question), and emails the account's administrators the list.
    pub(super) async fn ask_recertification(
        &self,
        w: &mut Write<'_>,
        account: &Account,
        contract: &Contract,
    ) -> ServiceResult<()> {
        if account.status != AccountStatus::Active {
            return Ok(());
        }
        let now = w.now();
        let due = now.saturating_add(self.inner.config.recertify_within_ms);
        let icn = &account.icn;
        let members: Vec<Membership> = w
            .tx()
            .active_memberships(icn, now)
            .await?
            .into_iter()
            .filter(|m| policy::recertified(m.role))
            .collect();
        if members.is_empty() {
            return Ok(());
        }
        let mut listed = Vec::with_capacity(members.len());
        for m in &members {
            w.tx().ask_recertification(icn, &m.web_id, now, due).await?;
            let name = match w.tx().person(&m.web_id).await? {
                Some(p) => p.display_name(),
                None => m.web_id.to_string(),
            };
            listed.push((name, m.web_id.to_string(), m.role.label()));
        }
        let confirm: Vec<MemberToConfirm<'_>> = listed
            .iter()
            .map(|(name, web_id, role_label)| MemberToConfirm {
                name,
                web_id,
                role_label,
            })
            .collect();
        let admins = w.tx().administrators(icn, now).await?;
        let mut heard = Vec::new();
        for admin in admin_recipients(&admins) {
            w.mail(templates::recertification_requested(
                self.brand(),
                admin.email.as_str(),
                &admin.display_name(),
                icn.as_str(),
                &account.company_name,
                &confirm,
                due,
            ));
            heard.push(admin.web_id.to_string());
        }
        let web_ids: Vec<&str> = members.iter().map(|m| m.web_id.as_str()).collect();
        w.audit(Event {
            action: "account.recertification_requested",
            target_type: "account",
            target_id: icn.to_string(),
            icn: Some(icn),
            before: None,
            after: Some(json!({
                "contract_id": contract.contract_id.as_str(),
                "recertify_by": due,
                "members": web_ids,
                "administrators": heard,
            })),
            reason: Some("the contract was renewed"),
        });
        Ok(())
    }

    /// Confirms that `web_id` keeps their access to the account after a renewal. Confirming a
    /// member who owes nothing (an STC, or already confirmed) changes nothing and succeeds, so
    /// a retry is safe.
    pub async fn certify_member(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
    ) -> ServiceResult<Written<MemberView>> {
        let mut w = self.begin(caller).await?;
        let account = w.lock_account(icn).await?;
        let standing = w.standing(&account).await?;
        w.authorize(Operation::CertifyMember {
            standing,
            member: web_id,
        })?;
        let now = w.now();
        let member = w
            .tx()
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active_at(now))
            .ok_or_else(|| member_not_found(icn, web_id))?;
        if let Some(due) = owed(&mut w, &member).await? {
            w.tx().delete_recertification(icn, web_id).await?;
            w.audit(Event {
                action: "membership.recertify",
                target_type: "membership",
                target_id: format!("{icn}/{web_id}"),
                icn: Some(icn),
                before: Some(json!({ "recertify_by": due })),
                after: Some(audit::membership(&member)),
                reason: None,
            });
        }
        let revision = w.commit().await?;
        let value = self.member_view(icn, web_id).await?;
        Ok(Written { value, revision })
    }

    /// Removes every member whose recertification deadline passed unconfirmed; returns how many.
    pub async fn remove_unrecertified(&self) -> ServiceResult<usize> {
        let now = self.now();
        sweep::drain(
            sweep::BATCH,
            |limit| async move { Ok(self.store().due_recertifications(now, limit).await?) },
            move |(icn, web_id)| async move { self.remove_unrecertified_member(&icn, &web_id).await },
        )
        .await
    }

    async fn remove_unrecertified_member(&self, icn: &Icn, web_id: &WebId) -> ServiceResult<bool> {
        let mut w = self.begin_system().await?;
        let account = match w.lock_account(icn).await {
            Ok(a) => a,
            Err(ServiceError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let now = w.now();
        let Some(member) = w
            .tx()
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active_at(now))
        else {
            return Ok(false);
        };
        // Checked again under the locks: confirmed meanwhile, or removed by another replica.
        match owed(&mut w, &member).await? {
            Some(due) if due <= now => {}
            _ => return Ok(false),
        }
        w.tx().delete_recertification(icn, web_id).await?;
        let removed = Membership {
            removed_at: Some(now),
            updated_at: now,
            ..member.clone()
        };
        w.tx().upsert_membership(&removed).await?;
        w.system_audit(Event {
            action: "membership.not_recertified",
            target_type: "membership",
            target_id: format!("{icn}/{web_id}"),
            icn: Some(icn),
            before: Some(audit::membership(&member)),
            after: Some(audit::membership(&removed)),
            reason: Some("not confirmed by an administrator after the contract was renewed"),
        });
        let person = w.tx().person(web_id).await?;
        let name = person
            .as_ref()
            .map_or_else(|| web_id.to_string(), |p| p.display_name());
        if let Some(p) = &person {
            w.mail(templates::not_recertified(
                self.brand(),
                p.email.as_str(),
                &name,
                icn.as_str(),
                &account.company_name,
            ));
        }
        let admins = w.tx().administrators(icn, now).await?;
        for admin in admin_recipients(&admins) {
            if &admin.web_id == web_id {
                continue;
            }
            w.mail(templates::not_recertified_to_admin(
                self.brand(),
                admin.email.as_str(),
                &name,
                web_id.as_str(),
                icn.as_str(),
                &account.company_name,
                member.role.label(),
            ));
        }
        w.commit().await?;
        Ok(true)
    }
}

/// The deadline of the recertification `member` (active, locked in `w`) owes, if any: a
/// question asked while this membership existed, and never of an STC.
async fn owed(w: &mut Write<'_>, member: &Membership) -> ServiceResult<Option<Millis>> {
    if !policy::recertified(member.role) {
        return Ok(None);
    }
    let question = w.tx().recertification(&member.icn, &member.web_id).await?;
    Ok(question
        .filter(|&(asked, _)| asked >= member.created_at)
        .map(|(_, due)| due))
}
