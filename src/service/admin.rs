//! Operators and the CRM: accounts, contracts, Site Technical Contacts, the audit trail.

use super::audit::{self, Event};
use super::write::account_not_found;
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::domain::policy::Operation;
use crate::domain::{
    Account, AccountStatus, AuditRecord, Contract, CountryCode, Email, Icn, MemberView, Membership,
    Person, Reason, Role, WebId,
};
use crate::store::{Page, StoreError};

/// What an operator gives to designate an STC. The address and names are used only when the
/// person is new to the service.
#[derive(Debug, Clone)]
pub struct NewStc {
    pub web_id: WebId,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
}

impl NewStc {
    /// The fields given that differ from the existing person's (an empty name gives nothing).
    fn not_applied_to(&self, p: &Person) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.email != p.email {
            fields.push("email");
        }
        if !self.given_name.is_empty() && self.given_name != p.given_name {
            fields.push("given_name");
        }
        if !self.family_name.is_empty() && self.family_name != p.family_name {
            fields.push("family_name");
        }
        fields
    }
}

impl Services {
    pub async fn create_account(
        &self,
        caller: &Caller,
        icn: &Icn,
        company_name: &str,
        country: &CountryCode,
    ) -> ServiceResult<Written<Account>> {
        let mut w = self
            .begin_authorized(caller, Operation::RunAccounts)
            .await?;
        let account = Account {
            icn: icn.clone(),
            company_name: company_name.to_owned(),
            country: country.clone(),
            status: AccountStatus::Active,
            status_reason: String::new(),
            created_at: w.now(),
            updated_at: w.now(),
        };
        if w.tx().account_for_update(icn).await?.is_some() {
            return Err(account_exists(icn));
        }
        match w.tx().insert_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(account_exists(icn)),
            Err(e) => return Err(e.into()),
        }
        w.audit(Event {
            action: "account.create",
            target_type: "account",
            target_id: icn.to_string(),
            icn: Some(icn),
            before: None,
            after: Some(audit::account(&account)),
            reason: None,
        });
        w.done(account).await
    }

    pub async fn get_account(
        &self,
        caller: &Caller,
        icn: &Icn,
    ) -> ServiceResult<(Account, Vec<Contract>, Vec<MemberView>)> {
        self.authorize(caller, Operation::RunAccounts)?;
        let store = self.store();
        let account = store
            .account(icn)
            .await?
            .ok_or_else(|| account_not_found(icn))?;
        let (contracts, stcs) = tokio::try_join!(
            store.contracts(icn),
            store.site_technical_contacts(icn, self.now())
        )?;
        Ok((account, contracts, stcs))
    }

    pub async fn set_account_status(
        &self,
        caller: &Caller,
        icn: &Icn,
        status: AccountStatus,
        reason: &str,
    ) -> ServiceResult<Written<Account>> {
        let mut w = self
            .begin_authorized(caller, Operation::RunAccounts)
            .await?;
        let mut account = w.lock_account(icn).await?;
        if account.status == status {
            return w.done(account).await;
        }
        let before = audit::account(&account);
        account.status = status;
        account.status_reason = reason.to_owned();
        account.updated_at = w.now();
        w.tx().update_account(&account).await?;
        w.audit(Event {
            action: match status {
                AccountStatus::Suspended => "account.suspend",
                AccountStatus::Active => "account.reactivate",
            },
            target_type: "account",
            target_id: icn.to_string(),
            icn: Some(icn),
            before: Some(before),
            after: Some(audit::account(&account)),
            reason: Some(reason),
        });
        w.done(account).await
    }

    /// Designates an STC: creates the person if new, promotes an existing member, and sends a
    /// verification code when the address is not verified yet.
    ///
    /// An existing person keeps their address, names and verification: those come from their
    /// own tokens, and an operator's copy (from the CRM) may be stale. Applying it used to blank
    /// their names and revoke their verification, cutting them off on every other account.
    /// What the operator gave but was not applied is recorded in the audit trail instead.
    pub async fn add_site_technical_contact(
        &self,
        caller: &Caller,
        icn: &Icn,
        stc: NewStc,
    ) -> ServiceResult<Written<MemberView>> {
        let mut w = self
            .begin_authorized(caller, Operation::RunAccounts)
            .await?;
        let now = w.now();
        let account = w.lock_account(icn).await?;
        let existing = w.tx().membership_for_update(icn, &stc.web_id).await?;
        if let Some(m) = existing.as_ref().filter(|m| m.lapse_due(now)) {
            // Lapsed but not swept yet: record the lapse on the way, once.
            self.record_lapse(&mut w, &account, m).await?;
        }
        let person = match w.tx().person(&stc.web_id).await? {
            Some(p) => {
                let ignored = stc.not_applied_to(&p);
                if !ignored.is_empty() {
                    w.audit(Event {
                        action: "person.identity_not_applied",
                        target_type: "person",
                        target_id: stc.web_id.to_string(),
                        icn: Some(icn),
                        before: None,
                        after: Some(audit::identity_not_applied(&p, &stc, &ignored)),
                        reason: Some(
                            "an existing person's address and names come from their own token",
                        ),
                    });
                }
                p
            }
            None => {
                let p = Person {
                    web_id: stc.web_id.clone(),
                    email: stc.email.clone(),
                    given_name: stc.given_name.clone(),
                    family_name: stc.family_name.clone(),
                    email_verified_at: None,
                    created_at: now,
                    updated_at: now,
                };
                w.tx().upsert_person(&p).await?;
                p
            }
        };
        let before = existing
            .as_ref()
            .filter(|m| m.is_active_at(now))
            .map(audit::membership);
        let membership = match existing {
            Some(m) if m.is_active_at(now) && m.role == Role::SiteTechnicalContact => {
                return w
                    .done(MemberView {
                        membership: m,
                        person: Some(person),
                        company_name: account.company_name,
                        recertify_by: None,
                    })
                    .await;
            }
            // An operator's designation has no end: a time-boxed grant's end goes.
            Some(m) if m.is_active_at(now) => Membership {
                role: Role::SiteTechnicalContact,
                updated_at: now,
                expires_at: None,
                ..m
            },
            _ => Membership {
                icn: icn.clone(),
                web_id: stc.web_id.clone(),
                role: Role::SiteTechnicalContact,
                created_at: now,
                updated_at: now,
                removed_at: None,
                expires_at: None,
            },
        };
        w.tx().upsert_membership(&membership).await?;
        w.audit(Event {
            action: "membership.add_site_technical_contact",
            target_type: "membership",
            target_id: format!("{icn}/{}", stc.web_id),
            icn: Some(icn),
            before,
            after: Some(audit::membership(&membership)),
            reason: None,
        });
        if !person.email_verified() {
            let _ = self.queue_verification(&mut w, &person).await?;
        }
        w.done(MemberView {
            membership,
            person: Some(person),
            company_name: account.company_name,
            recertify_by: None,
        })
        .await
    }

    /// Removes an STC; the account keeps at least one.
    pub async fn remove_site_technical_contact(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
        reason: &str,
    ) -> ServiceResult<Written<MemberView>> {
        let mut w = self
            .begin_authorized(caller, Operation::RunAccounts)
            .await?;
        // The account row lock serialises concurrent removals, so two can't each see "two left".
        let account = w.lock_account(icn).await?;
        let now = w.now();
        let member = w
            .tx()
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active_at(now) && m.role == Role::SiteTechnicalContact)
            .ok_or_else(|| {
                ServiceError::not_found(
                    Reason::SiteTechnicalContactNotFound,
                    format!("{web_id} is not a Site Technical Contact of {icn}"),
                )
            })?;
        if w.tx().count_active_stcs(icn).await? <= 1 {
            return Err(ServiceError::precondition(
                Reason::LastSiteTechnicalContact,
                "an account must keep at least one Site Technical Contact; add another first",
            ));
        }
        self.end_membership(
            w,
            account,
            member,
            "membership.remove_site_technical_contact",
            reason,
        )
        .await
    }

    pub async fn upsert_contract(
        &self,
        caller: &Caller,
        mut contract: Contract,
    ) -> ServiceResult<Written<Contract>> {
        self.authorize(caller, Operation::RunAccounts)?;
        if contract.starts_at >= contract.ends_at {
            return Err(ServiceError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let mut w = self
            .begin_authorized(caller, Operation::RunAccounts)
            .await?;
        contract.updated_at = w.now();
        let account = w.lock_account(&contract.icn).await?;
        let before = w
            .tx()
            .contracts(&contract.icn)
            .await?
            .into_iter()
            .find(|c| c.contract_id == contract.contract_id);
        w.tx().upsert_contract(&contract).await?;
        // A renewal: the account's administrators confirm who keeps access.
        if before
            .as_ref()
            .is_some_and(|b| contract.ends_at > b.ends_at)
        {
            self.ask_recertification(&mut w, &account, &contract)
                .await?;
        }
        w.audit(Event {
            action: if before.is_some() {
                "contract.update"
            } else {
                "contract.create"
            },
            target_type: "contract",
            target_id: format!("{}/{}", contract.icn, contract.contract_id),
            icn: Some(&contract.icn),
            before: before.as_ref().map(audit::contract),
            after: Some(audit::contract(&contract)),
            reason: None,
        });
        w.done(contract).await
    }

    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        icn: Option<&Icn>,
        before: Option<i64>,
        limit: u32,
    ) -> ServiceResult<Page<AuditRecord, i64>> {
        self.authorize(caller, Operation::RunAccounts)?;
        Ok(self.store().list_audit(icn, before, limit).await?)
    }
}

fn account_exists(icn: &Icn) -> ServiceError {
    ServiceError::exists(
        Reason::AccountExists,
        format!("customer account {icn} already exists"),
    )
}
