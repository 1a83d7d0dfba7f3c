//! Use cases: authorization rules, transaction boundaries, audit and outbox writes. Every
//! change commits together with its audit event and the emails it causes, or not at all.

mod access;
mod admin;
mod audit;
mod cache;
mod check;
mod contracts;
mod domains;
mod entitlements;
mod error;
mod expiry;
mod feed;
mod limits;
mod members;
mod next_step;
mod nudges;
mod orphans;
mod outbox;
mod request_ids;
mod search;
mod stats;
mod sweep;
#[cfg(test)]
mod testing;
mod verify;
mod watch;
mod write;

use std::sync::Arc;

use tokio::sync::Notify;

pub use admin::NewStc;
pub use cache::{CacheCapacity, FactsCache};
pub use check::{CheckAnswer, CheckRequest};
pub use entitlements::{Entitlement, EntitlementPage, ListEntitlements};
pub use error::{ServiceError, ServiceResult};
pub use expiry::spawn_expiry_sweeper;
pub use feed::{FEED_RETENTION_MS, Feed, FeedConfig, spawn_feed_trimmer};
pub use limits::RequestLimits;
pub use members::MyAccess;
pub use request_ids::RequestTicket;
pub use search::{AccountPage, AccountSearch};
pub use stats::{ServiceStats, spawn_ops_sampler};
pub use watch::WatchBatch;

use crate::clock::{Millis, SharedClock};
use crate::domain::feed::Token;
use crate::domain::policy::Refusal;
use crate::domain::verification::{SendPolicy, VerificationCode};
use crate::domain::{Email, Person, Reason, Revision, WebId};
use crate::mail::{MailBrand, MailKeys, templates};
use crate::store::SharedStore;
use write::Write;

/// Who is calling, as established by the transport from a verified token. The same token
/// arrives on many calls, so the transport keeps one `Identity` per token and shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub web_id: WebId,
    /// From the token; None for service callers without a person's claims.
    pub email: Option<Email>,
    pub given_name: String,
    pub family_name: String,
    /// Scope `entitlements.admin`: an operator or the CRM.
    pub operator: bool,
    /// Scope `entitlements.check`: the ticketing system.
    pub checker: bool,
}

/// One call's caller: the shared identity, this call's trace id (for the audit trail) and its
/// AIP-155 request id, if it gave one (the write path claims it with the change).
#[derive(Debug, Clone)]
pub struct Caller {
    identity: Arc<Identity>,
    pub trace_id: Option<String>,
    ticket: Option<Arc<RequestTicket>>,
}

impl Caller {
    pub fn new(identity: Arc<Identity>, trace_id: Option<String>) -> Self {
        Self {
            identity,
            trace_id,
            ticket: None,
        }
    }
}

impl std::ops::Deref for Caller {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.identity
    }
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// A pending request not decided within this time expires.
    pub request_ttl_ms: Millis,
    /// ... reminds its account's administrators this long after it was made,
    pub remind_after_ms: Millis,
    /// ... and is escalated past them this long after it was made.
    pub escalate_after_ms: Millis,
    /// Where what nobody on an account can decide is reported.
    pub operator_email: Option<Email>,
    /// STCs are warned this long before their account's last contract in force ends.
    pub contract_warning_ms: Millis,
    /// Members of an account whose contract was renewed must be confirmed within this time.
    pub recertify_within_ms: Millis,
    /// A mutation's AIP-155 request id holds this long: a retry later is a new call.
    pub request_id_ttl_ms: Millis,
    pub verification: SendPolicy,
    pub brand: MailBrand,
    pub cache: CacheCapacity,
    pub feed: FeedConfig,
    pub limits: RequestLimits,
    /// Seal every email written to the outbox, and open what the worker claims.
    pub mail_keys: Arc<MailKeys>,
}

impl Default for ServiceConfig {
    /// With a key of this process only (`MailKeys::ephemeral`): `serve` configures its own.
    fn default() -> Self {
        Self {
            request_ttl_ms: 30 * 24 * 3600 * 1000,
            remind_after_ms: 3 * 24 * 3600 * 1000,
            escalate_after_ms: 7 * 24 * 3600 * 1000,
            operator_email: None,
            contract_warning_ms: 30 * 24 * 3600 * 1000,
            recertify_within_ms: 30 * 24 * 3600 * 1000,
            request_id_ttl_ms: 24 * 3600 * 1000,
            verification: SendPolicy::default(),
            brand: MailBrand::default(),
            cache: CacheCapacity::default(),
            feed: FeedConfig::default(),
            limits: RequestLimits::default(),
            mail_keys: Arc::new(MailKeys::ephemeral()),
        }
    }
}

/// The use cases, shared by every handler.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    clock: SharedClock,
    config: ServiceConfig,
    /// Wakes the outbox worker after a commit that queued email.
    mail_wake: Arc<Notify>,
    feed: Arc<Feed>,
    cache: Arc<FactsCache>,
    counters: stats::Counters,
    /// This database's name, which every consistency token carries.
    database: String,
    limiters: limits::Limiters,
}

/// A mutation's result and the revision that makes it visible (its consistency token).
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub revision: Revision,
}

impl Services {
    /// Loads the cache from a snapshot, then follows the change feed from the snapshot's
    /// revision, so no change is missed in between; the returned task stops at `shutdown`.
    pub async fn start(
        store: SharedStore,
        clock: SharedClock,
        config: ServiceConfig,
        mail_wake: Arc<Notify>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> ServiceResult<(Self, tokio::task::JoinHandle<()>)> {
        let database = store.database_id().await?;
        let cache = Arc::new(FactsCache::new(config.cache));
        let started = std::time::Instant::now();
        let loaded = cache.warm(&*store).await?;
        let warm_seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            revision = loaded.revision,
            accounts = loaded.accounts,
            persons = loaded.persons,
            members = loaded.members,
            seconds = warm_seconds,
            "cache loaded"
        );
        let (feed, task) = Feed::start(
            store.clone(),
            cache.clone(),
            config.feed,
            loaded.revision,
            shutdown,
        );
        let limiters = limits::Limiters::new(config.limits);
        let inner = Inner {
            store,
            clock,
            config,
            mail_wake,
            feed,
            cache,
            counters: stats::Counters::default(),
            database,
            limiters,
        };
        inner.counters.warmed(warm_seconds);
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            task,
        ))
    }

    fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    fn now(&self) -> Millis {
        self.inner.clock.now_ms()
    }

    fn brand(&self) -> &MailBrand {
        &self.inner.config.brand
    }

    /// The revision this replica has applied: what a read now reflects at least.
    pub fn applied_revision(&self) -> Revision {
        self.inner.feed.applied()
    }

    /// The consistency token for revision `r` of this database.
    pub fn token(&self, r: Revision) -> String {
        crate::domain::feed::encode_token(&self.inner.database, r)
    }

    /// The revision a caller's token asks for, if this service can honour it: a token of this
    /// database, at a revision it has reached. Anything else is refused with its reason,
    /// never read as something else.
    pub async fn honour(&self, token: Option<Token>) -> ServiceResult<Option<Revision>> {
        let Some(t) = token else {
            return Ok(None);
        };
        if t.database != self.inner.database {
            return Err(ServiceError::precondition(
                Reason::ConsistencyTokenForeign,
                "this consistency token was given out by another database; call without it",
            ));
        }
        if t.revision > self.applied_revision()
            && t.revision > self.store().feed_bounds().await?.head
        {
            return Err(ServiceError::precondition(
                Reason::ConsistencyTokenAhead,
                "this consistency token is ahead of the database; call without it",
            ));
        }
        Ok(Some(t.revision))
    }

    pub fn feed(&self) -> &Arc<Feed> {
        &self.inner.feed
    }

    /// Creates or refreshes the caller's person record from their token. A changed address
    /// is no longer verified, and a code sent to the old address stops working: the code row
    /// names the address it proves, so `verify_email` refuses it as superseded. The row itself
    /// stays, because it also holds the person's send history: the resend limit belongs to
    /// the person, and deleting the row here let alternating addresses reset it.
    async fn sync_person(&self, w: &mut Write<'_>, caller: &Caller) -> ServiceResult<Person> {
        let Some(email) = caller.email.clone() else {
            return Err(Refusal::EmailClaimRequired.into());
        };
        let now = w.now();
        let tx = w.tx();
        let existing = tx.person(&caller.web_id).await?;
        let person = match existing {
            Some(mut p) => {
                let changed = p.email != email;
                let names_changed = (!caller.given_name.is_empty()
                    && p.given_name != caller.given_name)
                    || (!caller.family_name.is_empty() && p.family_name != caller.family_name);
                if !changed && !names_changed {
                    return Ok(p);
                }
                if changed {
                    p.email = email;
                    p.email_verified_at = None;
                }
                if !caller.given_name.is_empty() {
                    p.given_name = caller.given_name.clone();
                }
                if !caller.family_name.is_empty() {
                    p.family_name = caller.family_name.clone();
                }
                p.updated_at = now;
                p
            }
            None => Person {
                web_id: caller.web_id.clone(),
                email,
                given_name: caller.given_name.clone(),
                family_name: caller.family_name.clone(),
                email_verified_at: None,
                created_at: now,
                updated_at: now,
            },
        };
        tx.upsert_person(&person).await?;
        Ok(person)
    }

    /// Issues a verification code and queues its email, unless the send rate says not yet.
    async fn queue_verification(
        &self,
        w: &mut Write<'_>,
        person: &Person,
    ) -> ServiceResult<Result<VerificationCode, i64>> {
        let now = w.now();
        let previous = w.tx().verification(&person.web_id).await?;
        match VerificationCode::issue(
            person.web_id.clone(),
            person.email.clone(),
            previous.as_ref(),
            &self.inner.config.verification,
            now,
        ) {
            Ok((row, code)) => {
                w.tx().put_verification(&row).await?;
                w.mail(templates::verification_code(
                    self.brand(),
                    person.email.as_str(),
                    &person.display_name(),
                    &code,
                    row.expires_at,
                ));
                Ok(Ok(row))
            }
            Err(retry) => Ok(Err(retry.0)),
        }
    }
}
