//! The request workflow: ask, approve, deny, withdraw.

use super::audit::{self, Event};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AccountStatus,
    CountryCode, Icn, Membership, Person, Role, TransitionError,
};
use crate::mail::templates;
use crate::store::{StoreError, WriteTx};

impl Services {
    /// A person asks for access. Returns the pending request, new or the one already open.
    pub async fn request_access(
        &self,
        caller: &Caller,
        icn: &Icn,
        country: &CountryCode,
        role: Role,
    ) -> ServiceResult<Written<AccessRequestView>> {
        if !role.is_self_service() {
            return Err(ServiceError::invalid(
                "requested_role",
                "must be ROLE_AUTHORIZED_USER or ROLE_TECHNICAL_CONTACT",
            ));
        }
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let account = tx.account_for_update(icn).await?;
        let account = match account {
            Some(a) if &a.country == country => a,
            // The same answer for a wrong country as for no account: an ICN is only valid
            // with its own country, and this must not reveal which ICNs exist elsewhere.
            _ => {
                return Err(ServiceError::not_found(
                    "ACCOUNT_NOT_FOUND",
                    format!("no customer account {icn} in country {country}"),
                ));
            }
        };
        if account.status == AccountStatus::Suspended {
            return Err(ServiceError::precondition(
                "ACCOUNT_SUSPENDED",
                "this account is suspended",
            ));
        }
        let person = self.sync_person(tx.as_mut(), caller, now).await?;
        if tx
            .membership_for_update(icn, &caller.web_id)
            .await?
            .is_some_and(|m| m.is_active())
        {
            return Err(ServiceError::exists(
                "ALREADY_A_MEMBER",
                "you are already a member of this account",
            ));
        }
        if let Some(existing) = tx.pending_request(icn, &caller.web_id).await? {
            // Asking twice is not two requests: answer with the one that is open.
            let revision = self.commit(tx, now).await?;
            return Ok(Written {
                value: view(existing, Some(person), &account),
                revision,
            });
        }
        let request = AccessRequest::new(
            icn.clone(),
            caller.web_id.clone(),
            country.clone(),
            role,
            now,
            self.inner.config.request_ttl_ms,
        );
        match tx.insert_request(&request).await {
            Ok(()) => {}
            // Only possible on PostgreSQL, when the same person's twin call committed first.
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let value = self.existing_pending(icn, caller).await?;
                return Ok(Written {
                    value,
                    revision: self.applied_revision(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "access_request.create",
                target_type: "access_request",
                target_id: request.id.to_string(),
                icn: Some(icn),
                before: None,
                after: Some(audit::request(&request)),
                reason: None,
            },
        )
        .await?;
        self.notify_new_request(tx.as_mut(), &request, &person, &account, now)
            .await?;
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: view(request, Some(person), &account),
            revision,
        })
    }

    async fn existing_pending(
        &self,
        icn: &Icn,
        caller: &Caller,
    ) -> ServiceResult<AccessRequestView> {
        // A plain read: opening a write transaction here would take SQLite's write lock.
        let mine = self.store().requests_of(&caller.web_id, 100).await?;
        let pending = mine
            .into_iter()
            .find(|v| &v.request.icn == icn && v.request.state == AccessRequestState::Pending);
        match pending {
            Some(v) => Ok(v),
            None => Err(ServiceError::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: "a concurrent change won; retry the call".to_owned(),
            }),
        }
    }

    /// Emails every administrator with a verified address (all of them if none has one),
    /// tells the requester what a Provisional Caller may do, and sends a verification code
    /// when their address is not verified yet.
    async fn notify_new_request(
        &self,
        tx: &mut dyn WriteTx,
        request: &AccessRequest,
        person: &Person,
        account: &Account,
        now: Millis,
    ) -> ServiceResult<()> {
        let admins = tx.administrators(&request.icn).await?;
        let verified: Vec<&Person> = admins
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.email_verified())
            .collect();
        let recipients: Vec<&Person> = if verified.is_empty() {
            admins.iter().map(|(_, p)| p).collect()
        } else {
            verified
        };
        let name = person.display_name();
        let id = request.id.to_string();
        for admin in recipients {
            let mail = templates::access_requested_to_admin(
                self.brand(),
                admin.email.as_str(),
                &name,
                person.email.as_str(),
                person.web_id.as_str(),
                request.icn.as_str(),
                &account.company_name,
                request.requested_role.label(),
                &id,
            );
            self.enqueue(tx, mail, now).await?;
        }
        let notice = templates::provisional_caller_notice(
            self.brand(),
            person.email.as_str(),
            &name,
            request.icn.as_str(),
            &account.company_name,
            request.requested_role.label(),
            &id,
        );
        self.enqueue(tx, notice, now).await?;
        if !person.email_verified() {
            // A code sent moments ago is still good; the rate limit only skips a duplicate.
            let _ = self.queue_verification(tx, person, now).await?;
        }
        Ok(())
    }

    pub async fn approve_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        granted: Option<Role>,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut request = self.decidable_request(tx.as_mut(), caller, id).await?;
        let account = self.locked_account(tx.as_mut(), &request.icn).await?;
        if account.status == AccountStatus::Suspended {
            return Err(ServiceError::precondition(
                "ACCOUNT_SUSPENDED",
                "this account is suspended",
            ));
        }
        let before = audit::request(&request);
        let role = match request.approve(granted, caller.web_id.clone(), now) {
            Ok(role) => role,
            Err(e) => return self.transition_failed(tx, request, e, now).await,
        };
        let existing = tx
            .membership_for_update(&request.icn, &request.web_id)
            .await?;
        let membership = match existing {
            // Already a member (an operator made them an STC meanwhile): never lower a role.
            Some(m) if m.is_active() => Membership {
                role: m.role.max(role),
                updated_at: now,
                ..m
            },
            _ => Membership {
                icn: request.icn.clone(),
                web_id: request.web_id.clone(),
                role,
                created_at: now,
                updated_at: now,
                removed_at: None,
            },
        };
        tx.upsert_membership(&membership).await?;
        tx.update_request(&request).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "access_request.approve",
                target_type: "access_request",
                target_id: request.id.to_string(),
                icn: Some(&request.icn),
                before: Some(before),
                after: Some(audit::request(&request)),
                reason: None,
            },
        )
        .await?;
        let requester = tx.person(&request.web_id).await?;
        if let Some(p) = &requester {
            let mail = templates::request_approved(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &account.company_name,
                membership.role.label(),
                p.email_verified(),
            );
            self.enqueue(tx.as_mut(), mail, now).await?;
        }
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: view(request, requester, &account),
            revision,
        })
    }

    pub async fn deny_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        reason: &str,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut request = self.decidable_request(tx.as_mut(), caller, id).await?;
        let account = self.locked_account(tx.as_mut(), &request.icn).await?;
        let before = audit::request(&request);
        if let Err(e) = request.deny(reason.to_owned(), caller.web_id.clone(), now) {
            return self.transition_failed(tx, request, e, now).await;
        }
        tx.update_request(&request).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "access_request.deny",
                target_type: "access_request",
                target_id: request.id.to_string(),
                icn: Some(&request.icn),
                before: Some(before),
                after: Some(audit::request(&request)),
                reason: Some(reason),
            },
        )
        .await?;
        let requester = tx.person(&request.web_id).await?;
        if let Some(p) = &requester {
            let mail = templates::request_denied(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &account.company_name,
                reason,
            );
            self.enqueue(tx.as_mut(), mail, now).await?;
        }
        let revision = self.commit(tx, now).await?;
        Ok(Written {
            value: view(request, requester, &account),
            revision,
        })
    }

    pub async fn withdraw_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        reason: &str,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let Some(mut request) = tx.request_for_update(id).await? else {
            return Err(request_not_found(id));
        };
        if request.web_id != caller.web_id {
            return Err(ServiceError::denied(
                "NOT_YOUR_REQUEST",
                "only the requester may withdraw a request",
            ));
        }
        let before = audit::request(&request);
        let reason = Some(reason.to_owned()).filter(|r| !r.is_empty());
        if let Err(e) = request.withdraw(reason.clone(), now) {
            return self.transition_failed(tx, request, e, now).await;
        }
        tx.update_request(&request).await?;
        audit::record(
            tx.as_mut(),
            Some(caller),
            now,
            Event {
                action: "access_request.withdraw",
                target_type: "access_request",
                target_id: request.id.to_string(),
                icn: Some(&request.icn),
                before: Some(before),
                after: Some(audit::request(&request)),
                reason: reason.as_deref(),
            },
        )
        .await?;
        let revision = self.commit(tx, now).await?;
        let value = self
            .store()
            .request_view(id)
            .await?
            .ok_or_else(|| ServiceError::Internal("withdrawn request vanished".to_owned()))?;
        Ok(Written { value, revision })
    }

    /// Locks the request and checks the caller may decide it.
    async fn decidable_request(
        &self,
        tx: &mut dyn WriteTx,
        caller: &Caller,
        id: AccessRequestId,
    ) -> ServiceResult<AccessRequest> {
        let Some(request) = tx.request_for_update(id).await? else {
            return Err(request_not_found(id));
        };
        if request.web_id == caller.web_id {
            return Err(ServiceError::denied(
                "SELF_DECISION",
                "nobody may decide their own request",
            ));
        }
        let member = tx
            .membership_for_update(&request.icn, &caller.web_id)
            .await?
            .filter(|m| m.is_active());
        if !member.is_some_and(|m| m.role.is_administrator()) {
            return Err(ServiceError::denied(
                "NOT_AN_ADMINISTRATOR",
                "only a Site Technical Contact or Technical Contact of this account may decide its requests",
            ));
        }
        if !tx
            .person(&caller.web_id)
            .await?
            .is_some_and(|p| p.email_verified())
        {
            return Err(ServiceError::denied(
                "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
                "verify your email address before deciding requests",
            ));
        }
        Ok(request)
    }

    pub(super) async fn locked_account(
        &self,
        tx: &mut dyn WriteTx,
        icn: &Icn,
    ) -> ServiceResult<Account> {
        tx.account_for_update(icn).await?.ok_or_else(|| {
            ServiceError::not_found("ACCOUNT_NOT_FOUND", format!("no customer account {icn}"))
        })
    }

    /// A request that can no longer move. An overdue one is recorded as expired on the way.
    async fn transition_failed<T>(
        &self,
        mut tx: Box<dyn WriteTx>,
        mut request: AccessRequest,
        error: TransitionError,
        now: Millis,
    ) -> ServiceResult<T> {
        match error {
            TransitionError::NotPending(state) => Err(ServiceError::precondition(
                "REQUEST_NOT_PENDING",
                format!("the request is already {state}"),
            )),
            TransitionError::RoleNotGrantable(role) => Err(ServiceError::invalid(
                "granted_role",
                format!(
                    "{role} may not be granted: grant the requested role or a lower one, never a Site Technical Contact"
                ),
            )),
            TransitionError::Expired => {
                if request.expire(now).is_ok() {
                    self.record_expiry(tx.as_mut(), &request, now).await?;
                    self.commit(tx, now).await?;
                }
                Err(ServiceError::precondition(
                    "REQUEST_EXPIRED",
                    "the request expired before it was decided",
                ))
            }
        }
    }
}

pub(super) fn request_not_found(id: AccessRequestId) -> ServiceError {
    ServiceError::not_found(
        "ACCESS_REQUEST_NOT_FOUND",
        format!("no access request {id}"),
    )
}

fn view(request: AccessRequest, requester: Option<Person>, account: &Account) -> AccessRequestView {
    AccessRequestView {
        request,
        requester,
        company_name: account.company_name.clone(),
    }
}
