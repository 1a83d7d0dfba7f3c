//! The in-process cache of what a check needs, split by the grain at which things change so
//! that one change invalidates exactly one entry:
//! - accounts: status and contracts (changed by operators),
//! - persons: email verified (changed by the person),
//! - members: membership and latest request of a person on an account.
//!
//! A stale entry must never be served after the feed reported its change. Fills race with
//! invalidations, so every fill follows one rule (see `put`): read the epoch, read the
//! database, insert, and if the epoch moved meanwhile, remove what was inserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::sync::Cache;

use crate::clock::Millis;
use crate::domain::{
    AccessRequestState, AccountStatus, ChangeKey, ChangeRecord, CheckFacts, Contract, Icn,
    MemberStatus, WebId,
};

#[derive(Debug, Clone)]
struct AccountFacts {
    status: Option<AccountStatus>,
    contracts: Arc<[Contract]>,
}

#[derive(Debug, Clone, Copy)]
struct MemberFacts {
    membership: Option<MemberStatus>,
    latest_request: Option<(AccessRequestState, Millis)>,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheCapacity {
    pub accounts: u64,
    pub persons: u64,
    pub members: u64,
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

pub struct FactsCache {
    accounts: Cache<Icn, Arc<AccountFacts>>,
    persons: Cache<WebId, bool>,
    members: Cache<(Icn, WebId), MemberFacts>,
    /// Bumped before every invalidation; a fill that saw it move does not keep its entry.
    epoch: AtomicU64,
}

impl FactsCache {
    pub fn new(capacity: CacheCapacity) -> Self {
        Self {
            accounts: Cache::new(capacity.accounts),
            persons: Cache::new(capacity.persons),
            members: Cache::new(capacity.members),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn get(&self, icn: &Icn, web_id: &WebId) -> Option<CheckFacts> {
        let account = self.accounts.get(icn)?;
        let verified = self.persons.get(web_id)?;
        let member = self.members.get(&(icn.clone(), web_id.clone()))?;
        Some(CheckFacts {
            account_status: account.status,
            membership: member.membership,
            latest_request: member.latest_request,
            email_verified: verified,
            contracts: account.contracts.clone(),
        })
    }

    /// Keeps facts read from the database after `epoch_before` was taken.
    pub fn put(&self, icn: &Icn, web_id: &WebId, facts: &CheckFacts, epoch_before: u64) {
        let key = (icn.clone(), web_id.clone());
        self.accounts.insert(
            icn.clone(),
            Arc::new(AccountFacts {
                status: facts.account_status,
                contracts: facts.contracts.clone(),
            }),
        );
        self.persons.insert(web_id.clone(), facts.email_verified);
        self.members.insert(
            key.clone(),
            MemberFacts {
                membership: facts.membership,
                latest_request: facts.latest_request,
            },
        );
        // An invalidation may have run between our read and our insert, finding nothing to
        // remove. It bumped the epoch first, so we see it here and take our entries back.
        if self.epoch() != epoch_before {
            self.accounts.invalidate(icn);
            self.persons.invalidate(web_id);
            self.members.invalidate(&key);
        }
    }

    pub fn apply(&self, changes: &[ChangeRecord]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for c in changes {
            match &c.key {
                ChangeKey::Account(icn) => self.accounts.invalidate(icn),
                ChangeKey::Person(w) => self.persons.invalidate(w),
                ChangeKey::Member(icn, w) => self.members.invalidate(&(icn.clone(), w.clone())),
            }
        }
    }

    /// When the feed can't say what changed (it missed revisions), forget everything.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.accounts.invalidate_all();
        self.persons.invalidate_all();
        self.members.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.accounts.entry_count() + self.persons.entry_count() + self.members.entry_count()
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
}
