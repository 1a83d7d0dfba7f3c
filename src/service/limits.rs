//! Per-replica rate limits on asking for access (governor's GCRA, keyed): per person across
//! all accounts, and per account across all persons. They bound what one identity, or many
//! made-up ones, can make the service email an account's administrators. The rule per
//! person and account (`domain::limits`) is kept in the database and holds across replicas;
//! these are a coarser, cheaper first line, each replica counting on its own.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::clock::Millis;
use crate::domain::{Icn, WebId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// RequestAccess calls per person per hour, all accounts together (also the burst).
    pub per_person_per_hour: u32,
    /// RequestAccess calls per account per hour, all persons together (also the burst).
    pub per_account_per_hour: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            per_person_per_hour: 30,
            per_account_per_hour: 120,
        }
    }
}

pub(super) struct Limiters {
    person: DefaultKeyedRateLimiter<String>,
    account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    calls: AtomicU64,
}

/// Keys not seen for a while are forgotten every this many calls, so the maps stay small.
const TIDY_EVERY: u64 = 4096;

impl Limiters {
    pub(super) fn new(limits: RequestLimits) -> Self {
        let quota = |n: u32| Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            person: RateLimiter::keyed(quota(limits.per_person_per_hour)),
            account: RateLimiter::keyed(quota(limits.per_account_per_hour)),
            clock: DefaultClock::default(),
            calls: AtomicU64::new(0),
        }
    }

    /// Counts one RequestAccess; Err: how long to wait before the next one may pass.
    pub(super) fn request_access(&self, web_id: &WebId, icn: &Icn) -> Result<(), Millis> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % TIDY_EVERY == TIDY_EVERY - 1 {
            self.person.retain_recent();
            self.account.retain_recent();
        }
        let now = self.clock.now();
        let wait = |e: governor::NotUntil<_>| {
            let d = e.wait_time_from(now);
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
        };
        self.person
            .check_key(&web_id.as_str().to_owned())
            .map_err(wait)?;
        self.account
            .check_key(&icn.as_str().to_owned())
            .map_err(wait)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn a_handful_at_once_passes_a_flood_waits() {
        let l = Limiters::new(RequestLimits {
            per_person_per_hour: 10,
            per_account_per_hour: 1000,
        });
        let ana = WebId::parse("ana").unwrap();
        for i in 0..10 {
            let icn = Icn::parse(&format!("{}", 1000 + i)).unwrap();
            assert_eq!(l.request_access(&ana, &icn), Ok(()), "request {i}");
        }
        let wait = l
            .request_access(&ana, &Icn::parse("2000").unwrap())
            .unwrap_err();
        // One more every six minutes.
        assert!((1..=6 * 60 * 1000).contains(&wait), "{wait}");
        // Someone else is not held back by ana.
        let ben = WebId::parse("ben").unwrap();
        assert_eq!(l.request_access(&ben, &Icn::parse("2000").unwrap()), Ok(()));
    }

    #[test]
    fn an_account_is_limited_across_persons() {
        let l = Limiters::new(RequestLimits {
            per_person_per_hour: 1000,
            per_account_per_hour: 3,
        });
        let icn = Icn::parse("42").unwrap();
        for p in ["a", "b", "c"] {
            assert_eq!(l.request_access(&WebId::parse(p).unwrap(), &icn), Ok(()));
        }
        assert!(l.request_access(&WebId::parse("d").unwrap(), &icn).is_err());
    }

    /// Every 4096th call first forgets the keys that are back to a fresh state, so the maps
    /// hold only the recently active. (A quota this large refills within microseconds.)
    #[test]
    fn idle_keys_are_forgotten_every_4096_calls() {
        let l = Limiters::new(RequestLimits {
            per_person_per_hour: u32::MAX,
            per_account_per_hour: u32::MAX,
        });
        let icn = Icn::parse("42").unwrap();
        for n in 0..4095 {
            let who = WebId::parse(&format!("p{n}")).unwrap();
            assert_eq!(l.request_access(&who, &icn), Ok(()));
        }
        assert_eq!(l.person.len(), 4095, "no tidying before the 4096th call");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let last = WebId::parse("last").unwrap();
        assert_eq!(l.request_access(&last, &icn), Ok(()));
        assert_eq!(l.person.len(), 1, "only the key just used is left");
    }
}
