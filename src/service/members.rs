//! What administrators see and do with their account's people, and the "My agreements" page.

use super::audit::{self, Event};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::domain::decision::CheckInput;
use crate::domain::{
    AccessRequestId, AccessRequestState, AccessRequestView, Action, DecisionReason, Icn,
    MemberView, Membership, Person, Role, WebId, decide,
};
use crate::mail::templates;
use crate::store::Page;

/// The "My agreements" page.
#[derive(Debug, Clone)]
pub struct MyAccess {
    pub person: Option<Person>,
    pub memberships: Vec<MemberView>,
    pub requests: Vec<AccessRequestView>,
}

impl Services {
    pub async fn my_access(&self, caller: &Caller) -> ServiceResult<MyAccess> {
        let store = self.store();
        let (person, memberships, requests) = tokio::try_join!(
            store.person(&caller.web_id),
            store.memberships_of(&caller.web_id),
            store.requests_of(&caller.web_id, 100),
        )?;
        Ok(MyAccess {
            person,
            memberships,
            requests,
        })
    }

    /// Reads are for operators and for verified administrators of the account, decided by the
    /// same rule as CheckEntitlement's ACTION_MANAGE_USERS.
    async fn authorize_read(&self, caller: &Caller, icn: &Icn) -> ServiceResult<()> {
        let facts = self.store().check_facts(icn, &caller.web_id).await?;
        if facts.account_status.is_none() {
            return Err(ServiceError::not_found(
                "ACCOUNT_NOT_FOUND",
                format!("no customer account {icn}"),
            ));
        }
        if caller.operator {
            return Ok(());
        }
        let input = CheckInput {
            action: Action::ManageUsers,
            product: None,
            severity: None,
        };
        let d = decide(&facts, &input, self.now());
        match d.reason {
            DecisionReason::Granted => Ok(()),
            DecisionReason::EmailNotVerified => Err(ServiceError::denied(
                "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
                "verify your email address before administering this account",
            )),
            DecisionReason::AccountSuspended => Err(ServiceError::precondition(
                "ACCOUNT_SUSPENDED",
                "this account is suspended",
            )),
            _ => Err(ServiceError::denied(
                "NOT_AN_ADMINISTRATOR",
                "only a Site Technical Contact or Technical Contact of this account may see this",
            )),
        }
    }

    pub async fn list_access_requests(
        &self,
        caller: &Caller,
        icn: &Icn,
        state: Option<AccessRequestState>,
        before: Option<AccessRequestId>,
        limit: u32,
    ) -> ServiceResult<Page<AccessRequestView, AccessRequestId>> {
        self.authorize_read(caller, icn).await?;
        Ok(self
            .store()
            .list_requests(icn, state, before, limit)
            .await?)
    }

    pub async fn list_members(
        &self,
        caller: &Caller,
        icn: &Icn,
        after: Option<WebId>,
        limit: u32,
    ) -> ServiceResult<Page<MemberView, WebId>> {
        self.authorize_read(caller, icn).await?;
        Ok(self.store().list_members(icn, after, limit).await?)
    }

    /// Moves a member between Authorized User and Technical Contact.
    pub async fn update_member_role(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
        role: Role,
    ) -> ServiceResult<Written<MemberView>> {
        if !role.is_self_service() {
            return Err(ServiceError::invalid(
                "role",
                "must be ROLE_AUTHORIZED_USER or ROLE_TECHNICAL_CONTACT; only an operator designates Site Technical Contacts",
            ));
        }
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let account = self.locked_account(tx.as_mut(), icn).await?;
        self.authorize_administrator(tx.as_mut(), caller, icn)
            .await?;
        let mut member = self.target_member(tx.as_mut(), caller, icn, web_id).await?;
        if member.role == role {
            let revision = self.commit(tx, now).await?;
            let value = self.member_view(icn, web_id).await?;
            return Ok(Written { value, revision });
        }
        let before = audit::membership(&member);
        let old = member.role;
        member.role = role;
        member.updated_at = now;
        tx.upsert_membership(&member).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "membership.update_role",
                target_type: "membership",
                target_id: format!("{icn}/{web_id}"),
                icn: Some(icn),
                before: Some(before),
                after: Some(audit::membership(&member)),
                reason: None,
            },
        )
        .await?;
        if let Some(p) = tx.person(web_id).await? {
            let mail = templates::member_role_changed(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                icn.as_str(),
                &account.company_name,
                old.label(),
                role.label(),
            );
            self.enqueue(tx.as_mut(), mail, now).await?;
        }
        let revision = self.commit(tx, now).await?;
        let value = self.member_view(icn, web_id).await?;
        Ok(Written { value, revision })
    }

    /// Removes a member; their next check says ACCESS_REVOKED.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
        reason: &str,
    ) -> ServiceResult<Written<MemberView>> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let account = self.locked_account(tx.as_mut(), icn).await?;
        self.authorize_administrator(tx.as_mut(), caller, icn)
            .await?;
        let member = self.target_member(tx.as_mut(), caller, icn, web_id).await?;
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
                action: "membership.remove",
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

    /// The member an administrator acts on: active, not the caller, not an STC.
    async fn target_member(
        &self,
        tx: &mut dyn crate::store::WriteTx,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
    ) -> ServiceResult<Membership> {
        if web_id == &caller.web_id && !caller.operator {
            return Err(ServiceError::denied(
                "SELF_MODIFICATION",
                "administrators may not change their own membership; ask another administrator",
            ));
        }
        let member = tx
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active())
            .ok_or_else(|| {
                ServiceError::not_found(
                    "MEMBER_NOT_FOUND",
                    format!("{web_id} is not a member of {icn}"),
                )
            })?;
        if member.role == Role::SiteTechnicalContact {
            return Err(ServiceError::denied(
                "SITE_TECHNICAL_CONTACT_PROTECTED",
                "only an operator adds or removes a Site Technical Contact",
            ));
        }
        Ok(member)
    }

    async fn member_view(&self, icn: &Icn, web_id: &WebId) -> ServiceResult<MemberView> {
        let members = self.store().memberships_of(web_id).await?;
        members
            .into_iter()
            .find(|m| &m.membership.icn == icn)
            .ok_or_else(|| {
                ServiceError::not_found(
                    "MEMBER_NOT_FOUND",
                    format!("{web_id} is not a member of {icn}"),
                )
            })
    }
}
