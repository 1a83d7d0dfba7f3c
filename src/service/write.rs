//! The one write path. Every mutation is a [`Write`]: it begins a transaction, is authorized by
//! the policy, changes rows, records its audit events and queues its emails (sealed), and
//! commits them all together; the commit hands back the revision that is its consistency token. Which
//! cache keys changed is not the use case's to say: the store's triggers note them.
//!
//! Locks are taken in one order everywhere, so two writes never wait on each other in a
//! cycle: the account row, then the request row, then membership rows, then person rows.

use std::time::Duration;

use super::audit::{self, Event};
use super::{Caller, ServiceError, ServiceResult, Services, Written};
use crate::clock::Millis;
use crate::domain::policy::{self, Actor, Operation, Standing};
use crate::domain::{AccessRequest, AccessRequestId, Account, AuditRecord, Icn, Reason, Revision};
use crate::mail::OutgoingEmail;
use crate::store::{StoreError, WriteTx};

/// How long a commit waits for this replica's cache to apply it, so the caller reads its own
/// write here even without a token.
const READ_YOUR_WRITE_WAIT: Duration = Duration::from_millis(500);

pub(super) struct Write<'s> {
    services: &'s Services,
    tx: Box<dyn WriteTx>,
    /// None: the service itself (the expiry sweeper), bound by its own rules.
    caller: Option<&'s Caller>,
    now: Millis,
    authorized: bool,
    /// Whether the commit claims the caller's request id: not when it keeps only what a
    /// refused call must (`commit_refusal`).
    claims: bool,
    events: Vec<AuditRecord>,
    mail: Vec<OutgoingEmail>,
}

impl Services {
    /// Begins a write whose authorization needs facts read inside it (call `authorize`).
    pub(super) async fn begin<'s>(&'s self, caller: &'s Caller) -> ServiceResult<Write<'s>> {
        self.open(Some(caller)).await
    }

    /// Begins a write the policy allows without reading anything, checked before the
    /// transaction opens (so a refused call never waits for SQLite's write lock).
    pub(super) async fn begin_authorized<'s>(
        &'s self,
        caller: &'s Caller,
        op: Operation<'_>,
    ) -> ServiceResult<Write<'s>> {
        self.authorize(caller, op)?;
        let mut w = self.open(Some(caller)).await?;
        w.authorized = true;
        Ok(w)
    }

    /// Begins a write by the service itself.
    pub(super) async fn begin_system(&self) -> ServiceResult<Write<'_>> {
        let mut w = self.open(None).await?;
        w.authorized = true;
        Ok(w)
    }

    async fn open<'s>(&'s self, caller: Option<&'s Caller>) -> ServiceResult<Write<'s>> {
        let tx = self.store().begin().await?;
        Ok(Write {
            services: self,
            tx,
            caller,
            now: self.now(),
            authorized: false,
            claims: true,
            events: Vec::new(),
            mail: Vec::new(),
        })
    }

    /// Asks the policy; for reads and for writes that need no facts.
    pub(super) fn authorize(&self, caller: &Caller, op: Operation<'_>) -> ServiceResult<()> {
        policy::authorize(&actor(caller), &op)?;
        Ok(())
    }
}

pub(super) fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        web_id: &caller.web_id,
        operator: caller.operator,
        checker: caller.checker,
        has_email: caller.email.is_some(),
    }
}

impl<'s> Write<'s> {
    pub(super) fn now(&self) -> Millis {
        self.now
    }

    pub(super) fn tx(&mut self) -> &mut dyn WriteTx {
        self.tx.as_mut()
    }

    pub(super) fn services(&self) -> &'s Services {
        self.services
    }

    /// Asks the policy about the caller; a refusal ends the write (the transaction rolls back).
    pub(super) fn authorize(&mut self, op: Operation<'_>) -> ServiceResult<()> {
        if let Some(caller) = self.caller {
            self.services.authorize(caller, op)?;
        }
        self.authorized = true;
        Ok(())
    }

    /// Locks an account (first, by the lock order).
    pub(super) async fn lock_account(&mut self, icn: &Icn) -> ServiceResult<Account> {
        match self.tx.account_for_update(icn).await? {
            Some(a) => Ok(a),
            None => Err(no_such_account(self.caller, icn)),
        }
    }

    /// Locks a request and its account, in the lock order (the account first: its ICN is read
    /// unlocked first, which is safe because a request never changes account). The read goes
    /// through this transaction's own connection: on SQLite a writer holding the write lock
    /// and waiting for a second pooled connection, while every other connection waits for
    /// that lock, stalls the pool until the busy timeout.
    pub(super) async fn lock_request(
        &mut self,
        id: AccessRequestId,
    ) -> ServiceResult<(AccessRequest, Account)> {
        let icn = self
            .tx
            .request(id)
            .await?
            .map(|r| r.icn)
            .ok_or_else(|| request_not_found(id))?;
        let account = self.lock_account(&icn).await?;
        let request = self
            .tx
            .request_for_update(id)
            .await?
            .ok_or_else(|| request_not_found(id))?;
        Ok((request, account))
    }

    /// The caller's standing on `account`, read (and locked) in this transaction, so a
    /// concurrent removal or demotion is seen.
    pub(super) async fn standing(&mut self, account: &Account) -> ServiceResult<Standing> {
        let Some(caller) = self.caller else {
            return Err(ServiceError::Internal(
                "the service itself has no standing on an account".to_owned(),
            ));
        };
        let now = self.now;
        let role = self
            .tx
            .membership_for_update(&account.icn, &caller.web_id)
            .await?
            .filter(|m| m.is_active_at(now))
            .map(|m| m.role);
        let email_verified = self
            .tx
            .person(&caller.web_id)
            .await?
            .is_some_and(|p| p.email_verified());
        Ok(Standing {
            account: account.status,
            role,
            email_verified,
        })
    }

    /// Records an audit event by the caller (or the service itself), written at commit.
    pub(super) fn audit(&mut self, event: Event<'_>) {
        let record = audit::record(self.caller, self.now, event);
        self.events.push(record);
    }

    /// Records an audit event by the service itself, even inside a caller's write (an expiry
    /// noticed on the way).
    pub(super) fn system_audit(&mut self, event: Event<'_>) {
        let record = audit::record(None, self.now, event);
        self.events.push(record);
    }

    /// Queues an email, written to the outbox at commit and sent once it is durable.
    pub(super) fn mail(&mut self, mail: OutgoingEmail) {
        self.mail.push(mail);
    }

    /// Commits the change with its audit events and emails; wakes the mail worker and waits
    /// briefly until this replica's cache has applied the change. Returns the consistency
    /// token's revision.
    pub(super) async fn commit(mut self) -> ServiceResult<Revision> {
        if !self.authorized {
            return Err(ServiceError::Internal(
                "a write reached commit without asking the policy".to_owned(),
            ));
        }
        let ticket = self
            .caller
            .and_then(|c| c.ticket())
            .filter(|_| self.claims)
            .cloned();
        if let Some(t) = &ticket {
            let expired_before = self.services.request_ids_since();
            match self
                .tx
                .claim_request(&t.key, &t.fingerprint, self.now, expired_before)
                .await
            {
                // A duplicate committed first: this one rolls back, and the transport answers
                // with the first call's answer.
                Err(StoreError::Conflict(_)) => {
                    return Err(ServiceError::Aborted {
                        reason: Reason::ConcurrentUpdate,
                        message: "a call with the same request_id was applied first".to_owned(),
                    });
                }
                other => other?,
            }
        }
        for event in std::mem::take(&mut self.events) {
            self.tx.insert_audit(&event).await?;
        }
        let queued = !self.mail.is_empty();
        let keys = &self.services.inner.config.mail_keys;
        for mail in std::mem::take(&mut self.mail) {
            // Sealed before it is written: a verification code never reaches the database
            // (its files, WAL, free pages or backups) in clear.
            let sealed = keys
                .seal(&mail)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            self.tx.enqueue_email(&sealed, self.now).await?;
        }
        let feed = self.services.feed().clone();
        let revision = self.tx.commit(self.now).await?;
        if let Some(t) = ticket {
            t.set_claimed();
        }
        if queued {
            self.services.inner.mail_wake.notify_one();
        }
        match revision {
            Some(r) => {
                feed.wait_for(r, READ_YOUR_WRITE_WAIT).await;
                Ok(r)
            }
            None => Ok(feed.applied()),
        }
    }

    /// Commits what a refused call keeps (a wrong code counted, an expiry noticed on the way)
    /// without claiming the caller's request id: a failed call stores no answer, so its
    /// retry runs again.
    pub(super) async fn commit_refusal(mut self) -> ServiceResult<Revision> {
        self.claims = false;
        self.commit().await
    }

    /// Commits and answers with `value` and its consistency token.
    pub(super) async fn done<T>(self, value: T) -> ServiceResult<Written<T>> {
        let revision = self.commit().await?;
        Ok(Written { value, revision })
    }
}

/// What a caller is told about an account that does not exist: operators NOT_FOUND, anyone
/// else what they would hear about an account they do not administer (the policy).
pub(super) fn no_such_account(caller: Option<&Caller>, icn: &Icn) -> ServiceError {
    match caller.map(|c| policy::unknown_account(&actor(c))) {
        Some(Err(refusal)) => refusal.into(),
        _ => account_not_found(icn),
    }
}

pub(super) fn account_not_found(icn: &Icn) -> ServiceError {
    ServiceError::not_found(
        Reason::AccountNotFound,
        format!("no customer account {icn}"),
    )
}

pub(super) fn request_not_found(id: AccessRequestId) -> ServiceError {
    ServiceError::not_found(
        Reason::AccessRequestNotFound,
        format!("no access request {id}"),
    )
}
