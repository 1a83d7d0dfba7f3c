//! The in-process cache of what a check needs (quick_cache: sharded, cheap reads, small
//! per-entry overhead), split by the grain at which things change so
//! that one change invalidates exactly one entry:
//! - accounts: status and contracts (changed by operators),
//! - persons: email verified (changed by the person),
//! - members: membership and latest request of a person on an account.
//!
//! A stale entry must never be served after the feed reported its change, and a fill keeps
//! only what it read (the store reads every part on its own, an unknown account included).
//! Fills race with invalidations, so every fill follows one rule (see `put`): read the epoch,
//! read the database, then insert only if no invalidation ran meanwhile. The check and the
//! insert happen under the lock every invalidation takes, so no reader can ever see a value
//! that an invalidation has already passed over, not even for an instant, and a fill that read
//! before a change can never overwrite the value read after it.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use quick_cache::sync::Cache;

use crate::clock::Millis;
use crate::domain::{
    AccessRequestState, AccountStatus, ChangeKey, ChangeRecord, CheckFacts, Contract, Icn,
    LatestRequest, MemberStatus, Role, WebId,
};
use crate::store::{SnapshotInfo, SnapshotLimits, SnapshotSink, Store, StoreError};

#[derive(Debug, Clone)]
struct AccountFacts {
    status: Option<AccountStatus>,
    contracts: Arc<[Contract]>,
}

/// A member entry, packed: a million of these is most of a replica's memory, and the plain
/// `(Option<MemberStatus>, Option<LatestRequest>)` spends 24 of its 64 bytes on `Option`
/// tags and padding. Instants use `NONE` for "absent"; role and state use 0 for "absent".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MemberFacts {
    removed_at: Millis,
    member_expires_at: Millis,
    request_changed_at: Millis,
    request_expires_at: Millis,
    role: u8,
    request_state: u8,
}

/// No instant: `i64::MIN` is no instant a store holds (milliseconds since 1970).
const NONE: Millis = Millis::MIN;

const ROLES: [Role; 4] = [
    Role::ProvisionalCaller,
    Role::AuthorizedUser,
    Role::TechnicalContact,
    Role::SiteTechnicalContact,
];

const STATES: [AccessRequestState; 5] = [
    AccessRequestState::Pending,
    AccessRequestState::Approved,
    AccessRequestState::Denied,
    AccessRequestState::Withdrawn,
    AccessRequestState::Expired,
];

/// 0 for None, else the position in `all` plus one.
fn tag<T: PartialEq + Copy>(all: &[T], v: Option<T>) -> u8 {
    v.and_then(|v| all.iter().position(|a| *a == v))
        .and_then(|i| u8::try_from(i + 1).ok())
        .unwrap_or(0)
}

fn untag<T: Copy>(all: &[T], tag: u8) -> Option<T> {
    usize::from(tag)
        .checked_sub(1)
        .and_then(|i| all.get(i))
        .copied()
}

fn instant(v: Option<Millis>) -> Millis {
    v.unwrap_or(NONE)
}

fn maybe(v: Millis) -> Option<Millis> {
    (v != NONE).then_some(v)
}

impl MemberFacts {
    fn pack(membership: Option<MemberStatus>, latest_request: Option<LatestRequest>) -> Self {
        Self {
            removed_at: instant(membership.and_then(|m| m.removed_at)),
            member_expires_at: instant(membership.and_then(|m| m.expires_at)),
            request_changed_at: latest_request.map_or(NONE, |r| r.changed_at),
            request_expires_at: latest_request.map_or(NONE, |r| r.expires_at),
            role: tag(&ROLES, membership.map(|m| m.role)),
            request_state: tag(&STATES, latest_request.map(|r| r.state)),
        }
    }

    fn membership(&self) -> Option<MemberStatus> {
        untag(&ROLES, self.role).map(|role| MemberStatus {
            role,
            removed_at: maybe(self.removed_at),
            expires_at: maybe(self.member_expires_at),
        })
    }

    fn latest_request(&self) -> Option<LatestRequest> {
        untag(&STATES, self.request_state).map(|state| LatestRequest {
            state,
            changed_at: self.request_changed_at,
            expires_at: self.request_expires_at,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CacheCapacity {
    pub accounts: usize,
    pub persons: usize,
    pub members: usize,
}

impl Default for CacheCapacity {
    fn default() -> Self {
        Self {
            accounts: 200_000,
            persons: 1_500_000,
            members: 1_500_000,
        }
    }
}

/// Cache keys are 128-bit keyed hashes of the identifiers: fixed-size, no allocation per
/// lookup, and a fraction of the memory of the strings. Two SipHash instances with secret
/// random keys make a collision (which would mix up two people) infeasible to provoke and, at
/// 2^-128 per pair, not a practical accident. Two `u64`s, not a `u128`: the latter's 16-byte
/// alignment would pad every entry.
type Key = [u64; 2];

struct Keys(RandomState, RandomState);

impl Keys {
    fn of(&self, parts: impl Hash + Copy) -> Key {
        [self.0.hash_one(parts), self.1.hash_one(parts)]
    }
    fn account(&self, icn: &Icn) -> Key {
        self.of(("a", icn.as_str()))
    }
    fn person(&self, w: &WebId) -> Key {
        self.of(("p", w.as_str()))
    }
    fn member(&self, icn: &Icn, w: &WebId) -> Key {
        self.of(("m", icn.as_str(), w.as_str()))
    }
}

pub struct FactsCache {
    keys: Keys,
    accounts: Cache<Key, Arc<AccountFacts>>,
    persons: Cache<Key, bool>,
    members: Cache<Key, MemberFacts>,
    /// Bumped by every invalidation; a fill that saw it move does not keep what it read.
    epoch: AtomicU64,
    /// Held by invalidations and by the check-and-insert of fills (never by lookups).
    writers: Mutex<()>,
}

impl FactsCache {
    pub fn new(capacity: CacheCapacity) -> Self {
        Self {
            keys: Keys(RandomState::new(), RandomState::new()),
            accounts: Cache::new(capacity.accounts),
            persons: Cache::new(capacity.persons),
            members: Cache::new(capacity.members),
            epoch: AtomicU64::new(0),
            writers: Mutex::new(()),
        }
    }

    fn writers(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere leaves nothing half-done to distrust.
        self.writers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn get(&self, icn: &Icn, web_id: &WebId) -> Option<CheckFacts> {
        let member = self.members.get(&self.keys.member(icn, web_id))?;
        let account = self.accounts.get(&self.keys.account(icn))?;
        let verified = self.persons.get(&self.keys.person(web_id))?;
        Some(CheckFacts {
            account_status: account.status,
            membership: member.membership(),
            latest_request: member.latest_request(),
            email_verified: verified,
            contracts: account.contracts.clone(),
        })
    }

    /// Keeps facts read from the database after `epoch_before` was taken, unless an
    /// invalidation ran since: then they may be older than what the feed applied. Returns
    /// whether they were kept.
    pub fn put(&self, icn: &Icn, web_id: &WebId, facts: &CheckFacts, epoch_before: u64) -> bool {
        let _writers = self.writers();
        if self.epoch() != epoch_before {
            return false;
        }
        self.accounts.insert(
            self.keys.account(icn),
            Arc::new(AccountFacts {
                status: facts.account_status,
                contracts: facts.contracts.clone(),
            }),
        );
        self.persons
            .insert(self.keys.person(web_id), facts.email_verified);
        self.members.insert(
            self.keys.member(icn, web_id),
            MemberFacts::pack(facts.membership, facts.latest_request),
        );
        true
    }

    /// Loads a snapshot of everything checks read, up to each part's capacity. Runs before the
    /// replica serves and before the feed follows (from the snapshot's revision), so no fill
    /// or invalidation can race it.
    pub async fn warm(&self, store: &dyn Store) -> Result<SnapshotInfo, StoreError> {
        let limits = SnapshotLimits {
            accounts: self.accounts.capacity(),
            persons: self.persons.capacity(),
            members: self.members.capacity(),
        };
        store.snapshot(limits, &mut Loader(self)).await
    }

    pub fn apply(&self, changes: &[ChangeRecord]) {
        let _writers = self.writers();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for c in changes {
            match &c.key {
                ChangeKey::Account(icn) => drop(self.accounts.remove(&self.keys.account(icn))),
                ChangeKey::Person(w) => drop(self.persons.remove(&self.keys.person(w))),
                ChangeKey::Member(icn, w) => drop(self.members.remove(&self.keys.member(icn, w))),
            }
        }
    }

    /// When the feed can't say what changed (it missed revisions), forget everything.
    pub fn clear(&self) {
        let _writers = self.writers();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.accounts.clear();
        self.persons.clear();
        self.members.clear();
    }
}

struct Loader<'a>(&'a FactsCache);

impl SnapshotSink for Loader<'_> {
    fn account(&mut self, icn: Icn, status: AccountStatus, contracts: Arc<[Contract]>) {
        let facts = AccountFacts {
            status: Some(status),
            contracts,
        };
        let c = self.0;
        c.accounts.insert(c.keys.account(&icn), Arc::new(facts));
    }

    fn person(&mut self, web_id: WebId, verified: bool) {
        let c = self.0;
        c.persons.insert(c.keys.person(&web_id), verified);
    }

    fn member(
        &mut self,
        icn: Icn,
        web_id: WebId,
        membership: Option<MemberStatus>,
        latest_request: Option<LatestRequest>,
    ) {
        let c = self.0;
        let facts = MemberFacts::pack(membership, latest_request);
        c.members.insert(c.keys.member(&icn, &web_id), facts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(verified: bool) -> CheckFacts {
        CheckFacts {
            account_status: Some(AccountStatus::Active),
            email_verified: verified,
            ..Default::default()
        }
    }
    fn ids() -> (Icn, WebId) {
        (
            Icn::from_trusted("1".into()),
            WebId::from_trusted("ana".into()),
        )
    }

    #[test]
    fn hit_after_put_and_miss_after_change() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        c.put(&i, &w, &facts(true), c.epoch());
        assert_eq!(c.get(&i, &w), Some(facts(true)));
        c.apply(&[ChangeRecord {
            revision: 1,
            key: ChangeKey::Person(w.clone()),
            at: 0,
        }]);
        assert_eq!(c.get(&i, &w), None);
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_not_kept() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        let before = c.epoch();
        // The change lands while the fill's database read is in flight...
        c.apply(&[ChangeRecord {
            revision: 1,
            key: ChangeKey::Member(i.clone(), w.clone()),
            at: 0,
        }]);
        // ...so the (possibly stale) value read before it must not stay.
        c.put(&i, &w, &facts(true), before);
        assert_eq!(c.get(&i, &w), None);
    }

    #[test]
    fn a_fill_that_read_before_a_change_never_replaces_one_that_read_after() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        let slow = c.epoch();
        c.apply(&[ChangeRecord {
            revision: 1,
            key: ChangeKey::Person(w.clone()),
            at: 0,
        }]);
        let fast = c.epoch();
        c.put(&i, &w, &facts(true), fast);
        // The slow fill read the old "unverified" before the change: it must not replace
        // (nor evict) what the fast one read after it.
        c.put(&i, &w, &facts(false), slow);
        assert_eq!(c.get(&i, &w), Some(facts(true)));
    }

    #[test]
    fn a_snapshot_fills_all_three_parts() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        let mut load = Loader(&c);
        load.account(i.clone(), AccountStatus::Active, Arc::from(Vec::new()));
        load.person(w.clone(), true);
        load.member(i.clone(), w.clone(), None, None);
        assert_eq!(c.get(&i, &w), Some(facts(true)));
    }

    #[test]
    fn clearing_forgets_everything_and_fences_fills_in_flight() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        let before = c.epoch();
        assert!(c.put(&i, &w, &facts(true), before));
        c.clear();
        assert_eq!(c.get(&i, &w), None);
        assert!(!c.put(&i, &w, &facts(true), before));
        assert_eq!(c.get(&i, &w), None);
    }

    /// Both halves of a key carry a hash: 128 bits, not 64 with zeros above.
    #[test]
    fn keys_use_all_128_bits() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, w) = ids();
        for key in [c.keys.account(&i), c.keys.person(&w), c.keys.member(&i, &w)] {
            assert_ne!(key[0], 0, "{key:x?}");
            assert_ne!(key[1], 0, "{key:x?}");
            assert_ne!(key[0], key[1], "{key:x?}");
        }
    }

    #[test]
    fn each_person_and_each_account_has_its_own_entry() {
        let c = FactsCache::new(CacheCapacity::default());
        let (i, ana) = ids();
        let j = Icn::from_trusted("2".into());
        let ben = WebId::from_trusted("ben".into());
        c.put(&i, &ana, &facts(true), c.epoch());
        c.put(&i, &ben, &facts(false), c.epoch());
        let suspended = CheckFacts {
            account_status: Some(AccountStatus::Suspended),
            ..facts(true)
        };
        c.put(&j, &ana, &suspended, c.epoch());
        assert_eq!(c.get(&i, &ana), Some(facts(true)));
        assert_eq!(c.get(&i, &ben), Some(facts(false)));
        assert_eq!(c.get(&j, &ana), Some(suspended));
    }

    /// Packing a member entry loses nothing: every role, every request state, each instant
    /// present or absent, comes back as it went in.
    #[test]
    fn member_entries_unpack_to_what_was_packed() {
        let instants = [
            None,
            Some(0),
            Some(-5),
            Some(1_700_000_000_000),
            Some(Millis::MAX),
        ];
        let mut memberships = vec![None];
        for role in ROLES {
            for removed_at in instants {
                for expires_at in instants {
                    memberships.push(Some(MemberStatus {
                        role,
                        removed_at,
                        expires_at,
                    }));
                }
            }
        }
        let mut requests = vec![None];
        for state in STATES {
            for (changed_at, expires_at) in [(0, 1), (-3, Millis::MAX), (7, 7)] {
                requests.push(Some(LatestRequest {
                    state,
                    changed_at,
                    expires_at,
                }));
            }
        }
        for m in &memberships {
            for r in &requests {
                let packed = MemberFacts::pack(*m, *r);
                assert_eq!((packed.membership(), packed.latest_request()), (*m, *r));
            }
        }
    }

    /// The cache's own memory for the benchmark's data set (100k accounts, 1M persons, 1M
    /// memberships): `cargo test --release --lib cache_memory -- --ignored --nocapture`.
    /// What docs/benchmarks.md quotes for the bytes each entry costs.
    #[test]
    #[ignore = "a measurement, not a test: run on demand"]
    fn cache_memory_of_the_benchmark_data_set() {
        let c = FactsCache::new(CacheCapacity::default());
        let mut load = Loader(&c);
        let contracts: Arc<[Contract]> = Arc::from(Vec::new());
        for a in 0..100_000u32 {
            load.account(
                Icn::from_trusted(format!("{a:07}")),
                AccountStatus::Active,
                contracts.clone(),
            );
        }
        let membership = MemberStatus {
            role: Role::AuthorizedUser,
            removed_at: None,
            expires_at: None,
        };
        for p in 0..1_000_000u32 {
            let w = WebId::from_trusted(format!("p{p}"));
            load.person(w.clone(), true);
            load.member(
                Icn::from_trusted(format!("{:07}", p % 100_000)),
                w,
                Some(membership),
                None,
            );
        }
        let mib = |m: quick_cache::MemoryUsed| m.total() as f64 / (1024.0 * 1024.0);
        let (a, p, m) = (
            mib(c.accounts.memory_used()),
            mib(c.persons.memory_used()),
            mib(c.members.memory_used()),
        );
        println!(
            "accounts {a:.1} MiB, persons {p:.1} MiB, members {m:.1} MiB, total {:.1} MiB; \
             entry sizes: member value {} B, person value {} B, key {} B",
            a + p + m,
            std::mem::size_of::<MemberFacts>(),
            std::mem::size_of::<bool>(),
            std::mem::size_of::<Key>(),
        );
    }
}
