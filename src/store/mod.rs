//! Persistence: one `Store` trait, implemented once over SQL both backends share (`sql/`)
//! and a `Dialect` for what differs (`dialect.rs`, with `sqlite.rs` and `postgres.rs`), and a
//! conformance suite (`tests/`) that runs on both.

mod dialect;
mod error;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::StoreError;

use crate::clock::Millis;
use crate::domain::verification::VerificationCode;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AccountStatus,
    AuditRecord, ChangeRecord, CheckFacts, Contract, DomainRule, EmailDomain, Icn, LatestRequest,
    MemberStatus, MemberView, Membership, Nudge, Person, Revision, WebId,
};
use crate::mail::{OutboxError, SealedEmail, StoredEmail};
use sql::SqlStore;

pub type SharedStore = Arc<dyn Store>;

/// Which backend a URL names. SQLite is the embedded default.
pub async fn connect(url: &str) -> Result<SharedStore, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::<sqlx::Postgres>::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqlStore::<sqlx::Sqlite>::connect(url).await?))
    } else {
        Err(StoreError::Config(
            "database URL must start with sqlite:// or postgres://".to_owned(),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedBounds {
    /// The newest committed revision.
    pub head: Revision,
    /// Entries at or below this revision were trimmed.
    pub trimmed_through: Revision,
}

/// Wakes the feed follower when another replica committed a change.
#[async_trait]
pub trait ChangeSignal: Send {
    async fn wait(&mut self) -> Result<(), StoreError>;
}

/// A page of keyset-paged results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    /// The key to continue after, when there may be more.
    pub next: Option<K>,
}

/// The connection pool as a metric reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub used: u32,
    pub idle: u32,
    pub max: u32,
    pub waiting: u64,
}

/// What operators watch that only the database knows, read in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsStats {
    /// The newest committed revision of the change feed.
    pub head: Revision,
    /// Emails not yet delivered, and the earliest time one of them was due.
    pub outbox_backlog: i64,
    pub outbox_oldest_due: Option<Millis>,
    /// Pending requests created less than a day ago, one to seven days ago, and earlier.
    pub pending_requests: [i64; 3],
    /// Accounts reported as having no administrator who can decide.
    pub orphaned_accounts: i64,
}

/// Whose retry of what: a caller's AIP-155 request id for one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub web_id: WebId,
    /// The gRPC method, e.g. `RequestAccess`: an id is the caller's for each method apart.
    pub method: String,
    /// A UUID, lowercase and hyphenated.
    pub request_id: String,
}

/// A request id's claim, written with the change its first call made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestClaim {
    /// Of the first call's request, without its request id (hex SHA-256).
    pub fingerprint: String,
    /// The first call's answer (an encoded response), once saved after its commit.
    pub answer: Option<Vec<u8>>,
}

/// How many rows of each part of a snapshot to read at most: what the cache can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    pub accounts: u64,
    pub persons: u64,
    pub members: u64,
}

/// What a snapshot read: the revision it reflects and the rows of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub revision: Revision,
    pub accounts: u64,
    pub persons: u64,
    pub members: u64,
}

/// Receives a snapshot's rows as they stream in, so a large data set is never held twice.
pub trait SnapshotSink: Send {
    fn account(&mut self, icn: Icn, status: AccountStatus, contracts: Arc<[Contract]>);
    fn person(&mut self, web_id: WebId, verified: bool);
    fn member(
        &mut self,
        icn: Icn,
        web_id: WebId,
        membership: Option<MemberStatus>,
        latest_request: Option<LatestRequest>,
    );
}

/// The outbox table as the mail worker's source reads it (`service::outbox`). Claims run
/// outside any write transaction: the lease (`next_attempt_at`) keeps workers apart.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Atomically claims up to `limit` messages due at `now` (unsent, not given up,
    /// next_attempt_at <= now), pushing their next_attempt_at to `lease_until` and
    /// incrementing attempts.
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, OutboxError>;
    /// Records delivery and drops the message's content: a delivered message keeps no code.
    async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError>;
    async fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), OutboxError>;
}

#[async_trait]
pub trait Store: OutboxStore + Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    fn pool_stats(&self) -> PoolStats;
    /// Counts for the operators' gauges, as of `now`.
    async fn ops_stats(&self, now: Millis) -> Result<OpsStats, StoreError>;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Starts a write transaction: SQLite `BEGIN IMMEDIATE`, PostgreSQL READ COMMITTED with
    /// row locks on the `*_for_update` reads. Dropping it without `commit` rolls back.
    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError>;

    async fn account(&self, icn: &Icn) -> Result<Option<Account>, StoreError>;
    async fn contracts(&self, icn: &Icn) -> Result<Vec<Contract>, StoreError>;
    /// What a decision needs, in two indexed reads.
    async fn check_facts(&self, icn: &Icn, web_id: &WebId) -> Result<CheckFacts, StoreError>;
    async fn person(&self, web_id: &WebId) -> Result<Option<Person>, StoreError>;
    async fn request_view(
        &self,
        id: AccessRequestId,
    ) -> Result<Option<AccessRequestView>, StoreError>;
    /// Newest first; `before` is the last id of the previous page.
    async fn list_requests(
        &self,
        icn: &Icn,
        state: Option<AccessRequestState>,
        before: Option<AccessRequestId>,
        limit: u32,
    ) -> Result<Page<AccessRequestView, AccessRequestId>, StoreError>;
    /// Members active at `now` (not removed, any end still ahead) by Web ID; `after` is the
    /// last Web ID of the previous page.
    async fn list_members(
        &self,
        icn: &Icn,
        after: Option<WebId>,
        limit: u32,
        now: Millis,
    ) -> Result<Page<MemberView, WebId>, StoreError>;
    /// Active administrators (STCs and TCs) at `now`, with their person records.
    async fn administrators_of(
        &self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError>;
    /// The account's email-domain policies by domain; `after` is the last domain of the
    /// previous page.
    async fn list_domain_rules(
        &self,
        icn: &Icn,
        after: Option<EmailDomain>,
        limit: u32,
    ) -> Result<Page<DomainRule, EmailDomain>, StoreError>;
    /// The person's pending request for the account, read without a lock (at most one).
    async fn pending_request_of(
        &self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<AccessRequest>, StoreError>;
    /// STCs active at `now`.
    async fn site_technical_contacts(
        &self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError>;
    /// The accounts, by ICN after `after`, where the person has a membership (active or not)
    /// or a request (in any state), with their company names; at most `limit`. Rows of
    /// either are never deleted, so these are every account a check could allow the person
    /// anything on, whatever (possibly older) state it reads.
    async fn entitlement_candidates(
        &self,
        web_id: &WebId,
        after: Option<&Icn>,
        limit: u32,
    ) -> Result<Vec<(Icn, String)>, StoreError>;
    /// The person's memberships active at `now`.
    async fn memberships_of(
        &self,
        web_id: &WebId,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError>;
    async fn requests_of(
        &self,
        web_id: &WebId,
        limit: u32,
    ) -> Result<Vec<AccessRequestView>, StoreError>;
    /// Newest first; `before` is the last id of the previous page.
    async fn list_audit(
        &self,
        icn: Option<&Icn>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<AuditRecord, i64>, StoreError>;
    /// Change feed entries of the `limit` revisions after `after` (whole revisions), in order.
    async fn changes_since(
        &self,
        after: Revision,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
    async fn feed_bounds(&self) -> Result<FeedBounds, StoreError>;
    /// This database's own name (migration 0004), which consistency tokens carry.
    async fn database_id(&self) -> Result<String, StoreError>;
    /// Forgets feed entries older than `before`; returns how many.
    async fn trim_changes(&self, before: Millis) -> Result<u64, StoreError>;
    /// A wake-up for new revisions (PostgreSQL LISTEN/NOTIFY); None where only polling works.
    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError>;
    /// Streams what checks read (accounts with their contracts, persons, memberships and
    /// latest requests) from one consistent read, and returns the revision it reflects: a
    /// cache loaded from it and then fed the changes after that revision misses nothing.
    async fn snapshot(
        &self,
        limits: SnapshotLimits,
        sink: &mut dyn SnapshotSink,
    ) -> Result<SnapshotInfo, StoreError>;
    /// Time-boxed memberships past their end at `now` whose lapse is not recorded yet
    /// (not removed), by end, oldest first.
    async fn lapsed_memberships(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, WebId)>, StoreError>;
    /// Active accounts made at or before `made_by` that have no administrator who can decide
    /// at `now` and were not reported yet (`orphaned`), or reported ones that have one again
    /// or were suspended (`!orphaned`).
    async fn orphans(
        &self,
        orphaned: bool,
        made_by: Millis,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<Icn>, StoreError>;
    /// Pending requests whose deadline has passed, oldest first.
    async fn overdue_requests(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<AccessRequestId>, StoreError>;
    /// Pending requests made at or before `made_by`, not yet past their deadline at `now`,
    /// that have not had `nudge`; oldest first.
    async fn due_nudges(
        &self,
        nudge: Nudge,
        made_by: Millis,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<AccessRequestId>, StoreError>;
    /// Active accounts whose last contract not yet ended at `now` ends at or before `warn_by`
    /// and whose end was not warned of yet, with that end; soonest first.
    async fn due_contract_warnings(
        &self,
        now: Millis,
        warn_by: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, Millis)>, StoreError>;
    /// Recertifications past their deadline at `now` still owed by an active, non-STC
    /// membership; oldest deadline first.
    async fn due_recertifications(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, WebId)>, StoreError>;
    /// The claim of `key` made at or after `since` (older ones no longer count).
    async fn request_claim(
        &self,
        key: &RequestKey,
        since: Millis,
    ) -> Result<Option<RequestClaim>, StoreError>;
    /// Saves the answer of the call that claimed `key`; an answer saved already stays.
    async fn save_request_answer(&self, key: &RequestKey, answer: &[u8]) -> Result<(), StoreError>;
    /// Forgets the claims made before `before`; returns how many.
    async fn trim_request_claims(&self, before: Millis) -> Result<u64, StoreError>;
}

/// The operations of one write transaction. The service composes them; rules live there.
#[async_trait]
pub trait WriteTx: Send {
    async fn account_for_update(&mut self, icn: &Icn) -> Result<Option<Account>, StoreError>;
    /// Fails with `Conflict` when the ICN exists.
    async fn insert_account(&mut self, account: &Account) -> Result<(), StoreError>;
    async fn update_account(&mut self, account: &Account) -> Result<(), StoreError>;

    async fn person(&mut self, web_id: &WebId) -> Result<Option<Person>, StoreError>;
    async fn upsert_person(&mut self, person: &Person) -> Result<(), StoreError>;

    async fn membership_for_update(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<Membership>, StoreError>;
    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError>;
    async fn count_active_stcs(&mut self, icn: &Icn) -> Result<i64, StoreError>;
    /// Administrators (STCs and TCs) active at `now`, with their person records.
    async fn administrators(
        &mut self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<(Membership, Person)>, StoreError>;

    /// A request read without a lock: to learn which account to lock first.
    async fn request(&mut self, id: AccessRequestId) -> Result<Option<AccessRequest>, StoreError>;
    async fn request_for_update(
        &mut self,
        id: AccessRequestId,
    ) -> Result<Option<AccessRequest>, StoreError>;
    async fn pending_request(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<AccessRequest>, StoreError>;
    /// When the person made their requests for the account created after `after`.
    async fn request_times(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
        after: Millis,
    ) -> Result<Vec<Millis>, StoreError>;
    /// Fails with `Conflict` when the person already has a pending request for the account.
    async fn insert_request(&mut self, request: &AccessRequest) -> Result<(), StoreError>;
    /// Notes that `nudge` went out for the request; false when it had already (another
    /// replica's sweep got there first), and then nothing may be sent.
    async fn record_nudge(
        &mut self,
        id: AccessRequestId,
        nudge: Nudge,
        now: Millis,
    ) -> Result<bool, StoreError>;
    /// Notes (true) or forgets (false) that the account was reported as having nobody who can
    /// decide; false when that was already so.
    async fn mark_orphan(
        &mut self,
        icn: &Icn,
        orphaned: bool,
        now: Millis,
    ) -> Result<bool, StoreError>;
    /// When each nudge of the request went out.
    async fn nudges(&mut self, id: AccessRequestId) -> Result<Vec<(Nudge, Millis)>, StoreError>;
    async fn update_request(&mut self, request: &AccessRequest) -> Result<(), StoreError>;

    /// The account's email-domain policy for exactly `domain`, if one is set.
    async fn domain_rule(
        &mut self,
        icn: &Icn,
        domain: &EmailDomain,
    ) -> Result<Option<DomainRule>, StoreError>;
    /// Sets a policy; one set before keeps its `created_by` and `created_at`.
    async fn upsert_domain_rule(&mut self, rule: &DomainRule) -> Result<(), StoreError>;
    /// False when there was none.
    async fn delete_domain_rule(
        &mut self,
        icn: &Icn,
        domain: &EmailDomain,
    ) -> Result<bool, StoreError>;

    async fn verification(
        &mut self,
        web_id: &WebId,
    ) -> Result<Option<VerificationCode>, StoreError>;
    async fn put_verification(&mut self, code: &VerificationCode) -> Result<(), StoreError>;
    async fn delete_verification(&mut self, web_id: &WebId) -> Result<(), StoreError>;

    async fn upsert_contract(&mut self, contract: &Contract) -> Result<(), StoreError>;
    /// The account's contracts, read in this transaction.
    async fn contracts(&mut self, icn: &Icn) -> Result<Vec<Contract>, StoreError>;
    /// Notes that the end `ends_at` of the account's contracts was warned of; false when it
    /// had been already (another replica's sweep got there first), and then nothing may be sent.
    async fn record_contract_warning(
        &mut self,
        icn: &Icn,
        ends_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError>;
    /// The account's memberships active at `now`, by Web ID.
    async fn active_memberships(
        &mut self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError>;
    /// Asks for the member's recertification by `due_at` (replacing an earlier question).
    async fn ask_recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
        asked_at: Millis,
        due_at: Millis,
    ) -> Result<(), StoreError>;
    /// The member's open question, if any: when it was asked and its deadline.
    async fn recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<(Millis, Millis)>, StoreError>;
    /// Closes the member's question (confirmed, or acted on); false when there was none.
    async fn delete_recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<bool, StoreError>;
    /// Claims `key` for this transaction's change (a claim made before `expired_before` is
    /// replaced). Fails with `Conflict` when a live claim holds it: on PostgreSQL after the
    /// transaction that wrote it commits, so a concurrent duplicate never commits too.
    async fn claim_request(
        &mut self,
        key: &RequestKey,
        fingerprint: &str,
        now: Millis,
        expired_before: Millis,
    ) -> Result<(), StoreError>;
    async fn insert_audit(&mut self, event: &AuditRecord) -> Result<i64, StoreError>;
    async fn enqueue_email(&mut self, email: &SealedEmail, now: Millis) -> Result<(), StoreError>;
    /// Ends an unsent message as failed for good (never claimed again) and drops its content;
    /// false when it was sent or given up already.
    async fn fail_email(&mut self, id: i64, now: Millis, error: &str) -> Result<bool, StoreError>;

    /// Commits; when the transaction changed what a check may answer, returns the revision
    /// the change feed gave it. Which keys changed is not the writer's to say: triggers on
    /// the tables a check reads note them (migration 0003), so no write can forget one.
    async fn commit(self: Box<Self>, now: Millis) -> Result<Option<Revision>, StoreError>;
}
