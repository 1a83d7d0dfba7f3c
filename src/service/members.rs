//! What administrators see and do with their account's people, and the "My agreements" page.

use super::access::read_by;
use super::audit::{self, Event};
use super::write::{Write, no_such_account};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::model::check_expire_time;
use crate::domain::policy::{Operation, Standing};
use crate::domain::{
    AccessRequestId, AccessRequestState, AccessRequestView, Account, Icn, MemberView, Membership,
    Person, Reason, Role, Waiting, WebId,
};
use crate::mail::templates;
use crate::store::Page;

/// The "My agreements" page.
#[derive(Debug, Clone)]
pub struct MyAccess {
    pub person: Option<Person>,
    pub memberships: Vec<MemberView>,
    pub requests: Vec<AccessRequestView>,
    /// Each pending request: who can decide it and since when it waits.
    pub waiting: Vec<Waiting>,
}

impl Services {
    pub async fn my_access(&self, caller: &Caller) -> ServiceResult<MyAccess> {
        self.authorize(caller, Operation::OwnProfile)?;
        let store = self.store();
        let (person, memberships, requests) = tokio::try_join!(
            store.person(&caller.web_id),
            store.memberships_of(&caller.web_id, self.now()),
            store.requests_of(&caller.web_id, 100),
        )?;
        let mut waiting = Vec::new();
        for v in &requests {
            if v.request.is_waiting(self.now()) {
                waiting.push(self.waiting(&v.request).await?);
            }
        }
        Ok(MyAccess {
            person,
            memberships,
            requests: requests.into_iter().map(|v| read_by(caller, v)).collect(),
            waiting,
        })
    }

    /// Reads of an account's people are for operators and its administrators (the policy),
    /// judged on the same facts a check reads.
    async fn authorize_read(&self, caller: &Caller, icn: &Icn) -> ServiceResult<()> {
        let facts = self.store().check_facts(icn, &caller.web_id).await?;
        let Some(account) = facts.account_status else {
            return Err(no_such_account(Some(caller), icn));
        };
        let standing = Standing {
            account,
            role: facts
                .membership
                .filter(|m| m.is_active_at(self.now()))
                .map(|m| m.role),
            email_verified: facts.email_verified,
        };
        self.authorize(caller, Operation::ReadMembers { standing })
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
        let mut page = self
            .store()
            .list_requests(icn, state, before, limit)
            .await?;
        page.items = page.items.into_iter().map(|v| read_by(caller, v)).collect();
        Ok(page)
    }

    pub async fn list_members(
        &self,
        caller: &Caller,
        icn: &Icn,
        after: Option<WebId>,
        limit: u32,
    ) -> ServiceResult<Page<MemberView, WebId>> {
        self.authorize_read(caller, icn).await?;
        Ok(self
            .store()
            .list_members(icn, after, limit, self.now())
            .await?)
    }

    /// Moves a member between Authorized User and Technical Contact, and sets the end of their
    /// membership: `expires_at`, or none (a change without an end clears an earlier one).
    pub async fn update_member_role(
        &self,
        caller: &Caller,
        icn: &Icn,
        web_id: &WebId,
        role: Role,
        expires_at: Option<Millis>,
    ) -> ServiceResult<Written<MemberView>> {
        if !role.is_self_service() {
            return Err(ServiceError::invalid(
                "role",
                "must be ROLE_AUTHORIZED_USER or ROLE_TECHNICAL_CONTACT; only an operator designates Site Technical Contacts",
            ));
        }
        check_end(self.now(), expires_at)?;
        let mut w = self.begin(caller).await?;
        let (account, mut member) = self.changeable_member(&mut w, icn, web_id).await?;
        if member.role == role && member.expires_at == expires_at {
            let revision = w.commit().await?;
            let value = self.member_view(icn, web_id).await?;
            return Ok(Written { value, revision });
        }
        let before = audit::membership(&member);
        let old = member.role;
        member.role = role;
        member.expires_at = expires_at;
        member.updated_at = w.now();
        w.tx().upsert_membership(&member).await?;
        w.audit(Event {
            action: "membership.update_role",
            target_type: "membership",
            target_id: format!("{icn}/{web_id}"),
            icn: Some(icn),
            before: Some(before),
            after: Some(audit::membership(&member)),
            reason: None,
        });
        if let Some(p) = w.tx().person(web_id).await? {
            w.mail(templates::member_role_changed(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                icn.as_str(),
                &account.company_name,
                old.label(),
                role.label(),
                expires_at,
            ));
        }
        let revision = w.commit().await?;
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
        let mut w = self.begin(caller).await?;
        let (account, member) = self.changeable_member(&mut w, icn, web_id).await?;
        self.end_membership(w, account, member, "membership.remove", reason)
            .await
    }

    /// Ends a membership (kept, with `removed_at`, so checks say ACCESS_REVOKED), audits it
    /// as `action` and tells the person.
    pub(super) async fn end_membership(
        &self,
        mut w: Write<'_>,
        account: Account,
        member: Membership,
        action: &'static str,
        reason: &str,
    ) -> ServiceResult<Written<MemberView>> {
        let removed = Membership {
            removed_at: Some(w.now()),
            updated_at: w.now(),
            ..member.clone()
        };
        w.tx().upsert_membership(&removed).await?;
        w.audit(Event {
            action,
            target_type: "membership",
            target_id: format!("{}/{}", member.icn, member.web_id),
            icn: Some(&member.icn),
            before: Some(audit::membership(&member)),
            after: Some(audit::membership(&removed)),
            reason: Some(reason),
        });
        let person = w.tx().person(&member.web_id).await?;
        if let Some(p) = &person {
            w.mail(templates::member_removed(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                member.icn.as_str(),
                &account.company_name,
            ));
        }
        w.done(MemberView {
            membership: member,
            person,
            company_name: account.company_name,
            recertify_by: None,
        })
        .await
    }

    /// Locks the account and the member an administrator acts on, and asks the policy.
    async fn changeable_member(
        &self,
        w: &mut Write<'_>,
        icn: &Icn,
        web_id: &WebId,
    ) -> ServiceResult<(Account, Membership)> {
        let account = w.lock_account(icn).await?;
        let standing = w.standing(&account).await?;
        let now = w.now();
        let member = w
            .tx()
            .membership_for_update(icn, web_id)
            .await?
            .filter(|m| m.is_active_at(now));
        w.authorize(Operation::ChangeMember {
            standing,
            member: web_id,
            role: member.as_ref().map(|m| m.role),
        })?;
        let member = member.ok_or_else(|| member_not_found(icn, web_id))?;
        Ok((account, member))
    }

    pub(super) async fn member_view(&self, icn: &Icn, web_id: &WebId) -> ServiceResult<MemberView> {
        let members = self.store().memberships_of(web_id, self.now()).await?;
        members
            .into_iter()
            .find(|m| &m.membership.icn == icn)
            .ok_or_else(|| member_not_found(icn, web_id))
    }
}

/// An end given to a membership (ApproveRequest, UpdateMemberRole): in the future and not too
/// far ahead (`model::check_expire_time`), else INVALID_ARGUMENT naming `expire_time`.
pub(super) fn check_end(now: Millis, expires_at: Option<Millis>) -> ServiceResult<()> {
    match expires_at.map(|end| check_expire_time(now, end)) {
        Some(Err(why)) => Err(ServiceError::invalid("expire_time", why)),
        _ => Ok(()),
    }
}

pub(super) fn member_not_found(icn: &Icn, web_id: &WebId) -> ServiceError {
    ServiceError::not_found(
        Reason::MemberNotFound,
        format!("{web_id} is not a member of {icn}"),
    )
}
