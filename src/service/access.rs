//! The request workflow: ask, approve, deny, withdraw.

use super::audit::{self, Event};
use super::members::check_end;
use super::write::{Write, actor};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::limits::{self, RequestPace};
use crate::domain::policy::{self, NewRequest, Operation};
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, CountryCode,
    DomainRule, EmailDomain, Icn, Membership, Person, Reason, Role, TransitionError, WebId,
};

/// Who decides what the service decides on its own (an email-domain policy's approval).
const SYSTEM: &str = "system";
use crate::mail::templates;
use crate::store::StoreError;

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
        if let Err(retry_after_ms) = self.inner.limiters.request_access(&caller.web_id, icn) {
            return Err(too_many_requests(retry_after_ms));
        }
        let mut w = self.begin(caller).await?;
        let account = match w.tx().account_for_update(icn).await? {
            Some(a) if &a.country == country => a,
            // The same answer for a wrong country as for no account: an ICN is only valid
            // with its own country, and this must not reveal which ICNs exist elsewhere.
            _ => {
                return Err(ServiceError::not_found(
                    Reason::AccountNotFound,
                    format!("no customer account {icn} in country {country}"),
                ));
            }
        };
        w.authorize(Operation::RequestAccess {
            account: account.status,
        })?;
        let person = self.sync_person(&mut w, caller).await?;
        if w.tx()
            .membership_for_update(icn, &caller.web_id)
            .await?
            .is_some_and(|m| m.is_active_at(w.now()))
        {
            return Err(ServiceError::exists(
                Reason::AlreadyAMember,
                "you are already a member of this account",
            ));
        }
        if let Some(mut existing) = w.tx().pending_request(icn, &caller.web_id).await? {
            if !existing.is_overdue(w.now()) {
                // Asking twice is not two requests: answer with the one that is open.
                return w.done(view(caller, existing, Some(person), &account)).await;
            }
            // Past its deadline but not swept yet: record the expiry, then ask anew.
            if existing.expire(w.now()).is_ok() {
                self.record_expiry(&mut w, &existing, &account).await?;
            }
        }
        let now = w.now();
        let earlier = w
            .tx()
            .request_times(icn, &caller.web_id, now - limits::REQUEST_WINDOW_MS)
            .await?;
        let pace = limits::request_pace(&earlier, now);
        if let RequestPace::TooSoon { retry_after_ms } = pace {
            return Err(too_many_requests(retry_after_ms));
        }
        // The account's policy for the domain of the address the service records (the token's
        // own), as the policy rules. Refused: nothing is written (the transaction rolls back,
        // the refreshed person record too).
        let rule = match EmailDomain::of(&person.email) {
            Some(domain) => w.tx().domain_rule(icn, &domain).await?,
            None => None,
        };
        let auto = match policy::new_request(rule.as_ref().map(|r| r.action))? {
            NewRequest::AutoApproved => rule,
            NewRequest::Held => None,
        };
        let request = AccessRequest::new(
            icn.clone(),
            caller.web_id.clone(),
            country.clone(),
            role,
            w.now(),
            self.inner.config.request_ttl_ms,
        );
        match w.tx().insert_request(&request).await {
            Ok(()) => {}
            // Only possible on PostgreSQL, when the same person's twin call committed first.
            Err(StoreError::Conflict(_)) => {
                drop(w);
                let value = self.existing_pending(icn, caller).await?;
                return Ok(Written {
                    value,
                    revision: self.applied_revision(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let auto_reason = auto.as_ref().map(|r| {
            format!(
                "email-domain policy: {} is approved automatically as {}",
                r.domain,
                r.granted(request.requested_role).as_str()
            )
        });
        w.audit(Event {
            action: "access_request.create",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(icn),
            before: None,
            after: Some(audit::request(&request)),
            reason: auto_reason.as_deref(),
        });
        if let (Some(rule), Some(reason)) = (auto, auto_reason) {
            return self
                .auto_approve(w, caller, request, person, account, &rule, &reason)
                .await;
        }
        // The administrators heard of this person's first request today; a loop of requests
        // and withdrawals must not email them on every turn.
        let tell_administrators = pace == RequestPace::First;
        self.notify_new_request(&mut w, &request, &person, &account, tell_administrators)
            .await?;
        w.done(view(caller, request, Some(person), &account)).await
    }

    /// Approves a new request on the account's email-domain policy: by the service itself
    /// (audit actor "system", decided by "system"), with the rule's role. The requester is
    /// emailed as for an approval (and sent a verification code while their address is not
    /// verified); the administrators the policy names are told it happened.
    #[allow(clippy::too_many_arguments)]
    async fn auto_approve(
        &self,
        mut w: Write<'_>,
        caller: &Caller,
        mut request: AccessRequest,
        person: Person,
        account: Account,
        rule: &DomainRule,
        reason: &str,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let before = audit::request(&request);
        let granted = rule.granted(request.requested_role);
        let role = match request.approve(
            Some(granted),
            WebId::from_trusted(SYSTEM.to_owned()),
            w.now(),
        ) {
            Ok(role) => role,
            Err(e) => {
                return Err(ServiceError::Internal(format!(
                    "a new request could not be approved automatically: {e:?}"
                )));
            }
        };
        let membership = self.grant(&mut w, &account, &request, role, None).await?;
        w.tx().update_request(&request).await?;
        w.system_audit(Event {
            action: "access_request.approve",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: Some(before),
            after: Some(audit::request(&request)),
            reason: Some(reason),
        });
        let now = w.now();
        let admins = w.tx().administrators(&request.icn, now).await?;
        let name = person.display_name();
        let id = request.id.to_string();
        for admin in admin_recipients(&admins) {
            w.mail(templates::auto_approved_to_admin(
                self.brand(),
                admin.email.as_str(),
                &name,
                person.email.as_str(),
                person.web_id.as_str(),
                request.icn.as_str(),
                &account.company_name,
                membership.role.label(),
                rule.domain.as_str(),
                &id,
            ));
        }
        w.mail(templates::request_approved(
            self.brand(),
            person.email.as_str(),
            &name,
            request.icn.as_str(),
            &account.company_name,
            membership.role.label(),
            person.email_verified(),
            membership.expires_at,
        ));
        if !person.email_verified() {
            // Approved, but they still verify their address before opening service requests.
            let _ = self.queue_verification(&mut w, &person).await?;
        }
        w.done(view(caller, request, Some(person), &account)).await
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
            Some(v) => Ok(read_by(caller, v)),
            None => Err(ServiceError::Aborted {
                reason: Reason::ConcurrentUpdate,
                message: "a concurrent change won; retry the call".to_owned(),
            }),
        }
    }

    /// Emails the administrators the policy names (and the operators where nobody on the
    /// account can decide), tells the requester what a Provisional Caller may do, and sends a verification code
    /// when their address is not verified yet.
    async fn notify_new_request(
        &self,
        w: &mut Write<'_>,
        request: &AccessRequest,
        person: &Person,
        account: &Account,
        tell_administrators: bool,
    ) -> ServiceResult<()> {
        let now = w.now();
        let admins = if tell_administrators {
            w.tx().administrators(&request.icn, now).await?
        } else {
            Vec::new()
        };
        // Who hears is the policy's; a request that is not announced (a repeat within the day)
        // goes to nobody.
        let facts = super::nudges::administrator_facts(&admins);
        let audience = policy::request_audience(None, account.status, &facts);
        let recipients: Vec<&Person> = audience
            .administrators
            .iter()
            .map(|&i| &admins[i].1)
            .collect();
        if tell_administrators && audience.operators {
            self.tell_waiting(w, None, request, person, account).await?;
        }
        let name = person.display_name();
        let id = request.id.to_string();
        for admin in recipients {
            w.mail(templates::access_requested_to_admin(
                self.brand(),
                admin.email.as_str(),
                &name,
                person.email.as_str(),
                person.web_id.as_str(),
                request.icn.as_str(),
                &account.company_name,
                request.requested_role.label(),
                &id,
            ));
        }
        w.mail(templates::provisional_caller_notice(
            self.brand(),
            person.email.as_str(),
            &name,
            request.icn.as_str(),
            &account.company_name,
            request.requested_role.label(),
            &id,
        ));
        if !person.email_verified() {
            // A code sent moments ago is still good; the rate limit only skips a duplicate.
            let _ = self.queue_verification(w, person).await?;
        }
        Ok(())
    }

    /// Approves a request; the membership ends at `expires_at`, or never (an approval
    /// without an end clears an earlier one). A Site Technical Contact's membership never
    /// gets an end from an approval: operators designate them, for as long as they say.
    pub async fn approve_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        granted: Option<Role>,
        expires_at: Option<Millis>,
    ) -> ServiceResult<Written<AccessRequestView>> {
        check_end(self.now(), expires_at)?;
        let mut w = self.begin(caller).await?;
        let (mut request, account) = decidable(&mut w, id).await?;
        let before = audit::request(&request);
        let role = match request.approve(granted, caller.web_id.clone(), w.now()) {
            Ok(role) => role,
            Err(e) => return transition_failed(w, request, &account, e).await,
        };
        let membership = self
            .grant(&mut w, &account, &request, role, expires_at)
            .await?;
        w.tx().update_request(&request).await?;
        w.audit(Event {
            action: "access_request.approve",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: Some(before),
            after: Some(audit::request(&request)),
            reason: None,
        });
        let requester = w.tx().person(&request.web_id).await?;
        if let Some(p) = &requester {
            w.mail(templates::request_approved(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &account.company_name,
                membership.role.label(),
                p.email_verified(),
                membership.expires_at,
            ));
        }
        w.done(view(caller, request, requester, &account)).await
    }

    /// Writes the membership an approval of `request` grants: `role`, ending at `expires_at`
    /// or never. A lapse of an earlier grant not recorded yet is recorded first.
    async fn grant(
        &self,
        w: &mut Write<'_>,
        account: &Account,
        request: &AccessRequest,
        role: Role,
        expires_at: Option<Millis>,
    ) -> ServiceResult<Membership> {
        let now = w.now();
        let existing = w
            .tx()
            .membership_for_update(&request.icn, &request.web_id)
            .await?;
        if let Some(m) = existing.as_ref().filter(|m| m.lapse_due(now)) {
            // An earlier grant lapsed and the sweeper has not recorded it yet: record it on
            // the way, once, before the new grant replaces it.
            self.record_lapse(w, account, m).await?;
        }
        let end = |role: Role| expires_at.filter(|_| role != Role::SiteTechnicalContact);
        let membership = match existing {
            // Already a member (an operator made them an STC meanwhile): never lower a role.
            Some(m) if m.is_active_at(now) => {
                let role = m.role.max(role);
                Membership {
                    role,
                    updated_at: now,
                    expires_at: end(role),
                    ..m
                }
            }
            _ => Membership {
                icn: request.icn.clone(),
                web_id: request.web_id.clone(),
                role,
                created_at: now,
                updated_at: now,
                removed_at: None,
                expires_at: end(role),
            },
        };
        if membership.created_at == now {
            // A new membership owes nothing its predecessor was asked at a renewal.
            w.tx()
                .delete_recertification(&request.icn, &request.web_id)
                .await?;
        }
        w.tx().upsert_membership(&membership).await?;
        Ok(membership)
    }

    pub async fn deny_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        reason: &str,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let mut w = self.begin(caller).await?;
        let (mut request, account) = decidable(&mut w, id).await?;
        let before = audit::request(&request);
        if let Err(e) = request.deny(reason.to_owned(), caller.web_id.clone(), w.now()) {
            return transition_failed(w, request, &account, e).await;
        }
        w.tx().update_request(&request).await?;
        w.audit(Event {
            action: "access_request.deny",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: Some(before),
            after: Some(audit::request(&request)),
            reason: Some(reason),
        });
        let requester = w.tx().person(&request.web_id).await?;
        if let Some(p) = &requester {
            w.mail(templates::request_denied(
                self.brand(),
                p.email.as_str(),
                &p.display_name(),
                request.icn.as_str(),
                &account.company_name,
                reason,
            ));
        }
        w.done(view(caller, request, requester, &account)).await
    }

    pub async fn withdraw_request(
        &self,
        caller: &Caller,
        id: AccessRequestId,
        reason: &str,
    ) -> ServiceResult<Written<AccessRequestView>> {
        let mut w = self.begin(caller).await?;
        let (mut request, account) = w.lock_request(id).await?;
        w.authorize(Operation::WithdrawRequest {
            requester: &request.web_id,
        })?;
        let before = audit::request(&request);
        let reason = Some(reason.to_owned()).filter(|r| !r.is_empty());
        if let Err(e) = request.withdraw(reason.clone(), w.now()) {
            return transition_failed(w, request, &account, e).await;
        }
        w.tx().update_request(&request).await?;
        w.audit(Event {
            action: "access_request.withdraw",
            target_type: "access_request",
            target_id: request.id.to_string(),
            icn: Some(&request.icn),
            before: Some(before),
            after: Some(audit::request(&request)),
            reason: reason.as_deref(),
        });
        let revision = w.commit().await?;
        let value = self
            .store()
            .request_view(id)
            .await?
            .ok_or_else(|| ServiceError::Internal("withdrawn request vanished".to_owned()))?;
        Ok(Written {
            value: read_by(caller, value),
            revision,
        })
    }
}

/// Locks a request and its account, and asks the policy whether the caller may decide it.
async fn decidable(
    w: &mut Write<'_>,
    id: AccessRequestId,
) -> ServiceResult<(AccessRequest, Account)> {
    let (request, account) = w.lock_request(id).await?;
    let standing = w.standing(&account).await?;
    w.authorize(Operation::DecideRequest {
        requester: &request.web_id,
        standing,
    })?;
    Ok((request, account))
}

/// A request that can no longer move. An overdue one is recorded as expired on the way.
async fn transition_failed<T>(
    mut w: Write<'_>,
    mut request: AccessRequest,
    account: &Account,
    error: TransitionError,
) -> ServiceResult<T> {
    match error {
        TransitionError::NotPending(state) => Err(ServiceError::precondition(
            Reason::RequestNotPending,
            format!("the request is already {state}"),
        )),
        TransitionError::RoleNotGrantable(role) => Err(ServiceError::invalid(
            "granted_role",
            format!(
                "{role} may not be granted: grant the requested role or a lower one, never a Site Technical Contact"
            ),
        )),
        TransitionError::Expired => {
            if request.expire(w.now()).is_ok() {
                w.services()
                    .record_expiry(&mut w, &request, account)
                    .await?;
                w.commit_refusal().await?;
            }
            Err(ServiceError::precondition(
                Reason::RequestExpired,
                "the request expired before it was decided",
            ))
        }
    }
}

fn view(
    caller: &Caller,
    request: AccessRequest,
    requester: Option<Person>,
    account: &Account,
) -> AccessRequestView {
    read_by(
        caller,
        AccessRequestView {
            request,
            requester,
            company_name: account.company_name.clone(),
        },
    )
}

/// A request as `caller` is shown it: the policy's read-side rule on who decided.
pub(super) fn read_by(caller: &Caller, mut v: AccessRequestView) -> AccessRequestView {
    let r = &v.request;
    if r.decided_by
        .as_ref()
        .is_some_and(|d| !policy::shows_decider(&actor(caller), &r.web_id, d))
    {
        v.request.decided_by = None;
    }
    v
}

/// Who of an account's administrators hears of something (the policy's rule).
pub(super) fn admin_recipients(admins: &[(Membership, Person)]) -> Vec<&Person> {
    let facts = super::nudges::administrator_facts(admins);
    policy::administrators_told(&facts)
        .into_iter()
        .map(|i| &admins[i].1)
        .collect()
}

fn too_many_requests(retry_after_ms: i64) -> ServiceError {
    ServiceError::ResourceExhausted {
        reason: Reason::AccessRequestsRateLimited,
        message: "too many requests for access; try again later".to_owned(),
        retry_after_ms,
    }
}
