//! Operators and the CRM: accounts, contracts, Site Technical Contacts, the audit trail.

use super::audit::{self, Event};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::domain::{
    Account, AccountStatus, AuditRecord, Contract, CountryCode, Email, Icn, MemberView, Membership,
    Person, Role, WebId,
};
use crate::mail::templates;
use crate::store::{Page, StoreError};

/// What an operator gives to designate an STC.
#[derive(Debug, Clone)]
pub struct NewStc {
    pub web_id: WebId,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
}

impl Services {
    pub async fn create_account(
        &self,
        caller: &Caller,
        icn: &Icn,
        company_name: &str,
        country: &CountryCode,
    ) -> ServiceResult<Written<Account>> {
        Self::require_operator(caller)?;
        let now = self.now();
        let account = Account {
            icn: icn.clone(),
            company_name: company_name.to_owned(),
            country: country.clone(),
            status: AccountStatus::Active,
            status_reason: String::new(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store().begin().await?;
        if tx.account_for_update(icn).await?.is_some() {
            return Err(account_exists(icn));
        }
        match tx.insert_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(account_exists(icn)),
            Err(e) => return Err(e.into()),
        }
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "account.create",
                target_type: "account",
                target_id: icn.to_string(),
                icn: Some(icn),
                before: None,
                after: Some(audit::account(&account)),
                reason: None,
            },
        )
        .await?;
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: account,
            revision,
        })
    }

    pub async fn get_account(
        &self,
        caller: &Caller,
        icn: &Icn,
    ) -> ServiceResult<(Account, Vec<Contract>, Vec<MemberView>)> {
        Self::require_operator(caller)?;
        let store = self.store();
        let account = store
            .account(icn)
            .await?
            .ok_or_else(|| account_not_found(icn))?;
        let (contracts, stcs) =
            tokio::try_join!(store.contracts(icn), store.site_technical_contacts(icn))?;
        Ok((account, contracts, stcs))
    }

    pub async fn set_account_status(
        &self,
        caller: &Caller,
        icn: &Icn,
        status: AccountStatus,
        reason: &str,
    ) -> ServiceResult<Written<Account>> {
        Self::require_operator(caller)?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut account = self.locked_account(tx.as_mut(), icn).await?;
        if account.status == status {
            return Ok(Written {
                value: account,
                revision: self.applied_revision(),
            });
        }
        let before = audit::account(&account);
        account.status = status;
        account.status_reason = reason.to_owned();
        account.updated_at = now;
        tx.update_account(&account).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
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
            },
        )
        .await?;
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: account,
            revision,
        })
    }

    /// Designates an STC: creates the person if new, promotes an existing member, and sends a
    /// verification code when the address is not verified yet.
    pub async fn add_site_technical_contact(
        &self,
        caller: &Caller,
        icn: &Icn,
        stc: NewStc,
    ) -> ServiceResult<Written<MemberView>> {
        Self::require_operator(caller)?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let account = self.locked_account(tx.as_mut(), icn).await?;
        let person = match tx.person(&stc.web_id).await? {
            Some(p) if p.email == stc.email => Person {
                given_name: stc.given_name.clone(),
                family_name: stc.family_name.clone(),
                updated_at: now,
                ..p
            },
            // A different address than the one we know: it has to be verified again.
            Some(p) => Person {
                email: stc.email.clone(),
                given_name: stc.given_name.clone(),
                family_name: stc.family_name.clone(),
                email_verified_at: None,
                updated_at: now,
                ..p
            },
            None => Person {
                web_id: stc.web_id.clone(),
                email: stc.email.clone(),
                given_name: stc.given_name.clone(),
                family_name: stc.family_name.clone(),
                email_verified_at: None,
                created_at: now,
                updated_at: now,
            },
        };
        tx.upsert_person(&person).await?;
        let existing = tx.membership_for_update(icn, &stc.web_id).await?;
        let before = existing
            .as_ref()
            .filter(|m| m.is_active())
            .map(audit::membership);
        let membership = match existing {
            Some(m) if m.is_active() && m.role == Role::SiteTechnicalContact => {
                let revision = self.commit(tx, now).await?;
                return Ok(Written {
                    value: MemberView {
                        membership: m,
                        person: Some(person),
                        company_name: account.company_name,
                    },
                    revision,
                });
            }
            Some(m) if m.is_active() => Membership {
                role: Role::SiteTechnicalContact,
                updated_at: now,
                ..m
            },
            _ => Membership {
                icn: icn.clone(),
                web_id: stc.web_id.clone(),
                role: Role::SiteTechnicalContact,
                created_at: now,
                updated_at: now,
                removed_at: None,
            },
        };
        tx.upsert_membership(&membership).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "membership.add_site_technical_contact",
                target_type: "membership",
                target_id: format!("{icn}/{}", stc.web_id),
                icn: Some(icn),
                before,
                after: Some(audit::membership(&membership)),
                reason: None,
            },
        )
        .await?;
        if !person.email_verified() {
            let _ = self.queue_verification(tx.as_mut(), &person, now).await?;
        }
        let revision = self.commit(tx, now).await?;
        let value = MemberView {
            membership,
            person: Some(person),
            company_name: account.company_name,
        };
        Ok(Written { value, revision })
    }

    /// Removes an STC; the account keeps at least one.
    pub async fn remove_site_technical_contact(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
        reason: &str,
    ) -> ServiceResult<Written<MemberView>> {
        Self::require_operator(caller)?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        // The account row lock serialises concurrent removals, so two can't each see "two left".
        let account = self.locked_account(tx.as_mut(), icn).await?;
        let member = tx
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active() && m.role == Role::SiteTechnicalContact)
            .ok_or_else(|| {
                ServiceError::not_found(
                    "SITE_TECHNICAL_CONTACT_NOT_FOUND",
                    format!("{web_id} is not a Site Technical Contact of {icn}"),
                )
            })?;
        if tx.count_active_stcs(icn).await? <= 1 {
            return Err(ServiceError::precondition(
                "LAST_SITE_TECHNICAL_CONTACT",
                "an account must keep at least one Site Technical Contact; add another first",
            ));
        }
        let removed = Membership {
            removed_at: Some(now),
            updated_at: now,
            ..member.clone()
        };
        tx.upsert_membership(&removed).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "membership.remove_site_technical_contact",
                target_type: "membership",
                target_id: format!("{icn}/{web_id}"),
                icn: Some(icn),
                before: Some(audit::membership(&member)),
                after: Some(audit::membership(&removed)),
                reason: Some(reason),
            },
        )
        .await?;
        let person = tx.person(web_id).await?;
        if let Some(p) = &person {
            let mail = templates::member_removed(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                icn.as_str(),
                &account.company_name,
            );
            self.enqueue(tx.as_mut(), mail, now).await?;
        }
        let revision = self.commit(tx, now).await?;
        let value = MemberView {
            membership: member,
            person,
            company_name: account.company_name,
        };
        Ok(Written { value, revision })
    }

    pub async fn upsert_contract(
        &self,
        caller: &Caller,
        mut contract: Contract,
    ) -> ServiceResult<Written<Contract>> {
        Self::require_operator(caller)?;
        if contract.starts_at >= contract.ends_at {
            return Err(ServiceError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let now = self.now();
        contract.updated_at = now;
        let mut tx = self.store().begin().await?;
        self.locked_account(tx.as_mut(), &contract.icn).await?;
        let before = self
            .store()
            .contracts(&contract.icn)
            .await?
            .into_iter()
            .find(|c| c.contract_id == contract.contract_id);
        tx.upsert_contract(&contract).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
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
            },
        )
        .await?;
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: contract,
            revision,
        })
    }

    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        icn: Option<&Icn>,
        before: Option<i64>,
        limit: u32,
    ) -> ServiceResult<Page<AuditRecord, i64>> {
        Self::require_operator(caller)?;
        Ok(self.store().list_audit(icn, before, limit).await?)
    }
}

fn account_exists(icn: &Icn) -> ServiceError {
    ServiceError::exists(
        "ACCOUNT_EXISTS",
        format!("customer account {icn} already exists"),
    )
}

fn account_not_found(icn: &Icn) -> ServiceError {
    ServiceError::not_found("ACCOUNT_NOT_FOUND", format!("no customer account {icn}"))
}
