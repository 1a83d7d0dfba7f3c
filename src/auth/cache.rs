//! Verified tokens, so that a caller resending the same token costs a hash lookup instead of a
//! signature verification.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::Principal;

const MAX_ENTRIES: u64 = 100_000;

/// Keyed by the token's SHA-256 rather than the token: entries stay 32 bytes whatever the token
/// size, and the cache holds no bearer credentials.
pub(crate) type TokenDigest = [u8; 32];

/// The generation of the key set that verified the token, then the token's digest. Lookups use
/// the current generation, so once the keys change no earlier verification is served, not
/// even one that finished after the change began (and was inserted after it was cleared).
pub(crate) type CacheKey = (u64, TokenDigest);

pub(crate) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn new_cache() -> Cache<CacheKey, Arc<Principal>> {
    Cache::builder()
        .max_capacity(MAX_ENTRIES)
        .expire_after(UntilTokenExpiry)
        .build()
}

/// Each entry lives until its token's `exp`, never longer.
struct UntilTokenExpiry;

impl moka::Expiry<CacheKey, Arc<Principal>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Principal>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(time_left(value.expires_at, unix_now()))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<Principal>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(time_left(value.expires_at, unix_now()))
    }
}

fn time_left(expires_at: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0))
}

/// The same rule the verifier applies, for the cache hit path: moka evicts on its own clock
/// and lazily, so an entry may briefly outlive its token.
pub(crate) fn still_valid(principal: &Principal, now: i64, leeway_secs: u64) -> bool {
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    now <= principal.expires_at.saturating_add(leeway)
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    fn principal(expires_at: i64) -> Principal {
        Principal {
            web_id: "https://id.example/p".into(),
            email: None,
            given_name: None,
            family_name: None,
            scopes: vec![],
            expires_at,
        }
    }

    #[test]
    fn validity_window_includes_leeway() {
        let p = principal(1_000);
        assert!(still_valid(&p, 999, 0));
        assert!(still_valid(&p, 1_000, 0));
        assert!(!still_valid(&p, 1_001, 0));
        assert!(still_valid(&p, 1_030, 30));
        assert!(!still_valid(&p, 1_031, 30));
    }

    #[test]
    fn entries_live_until_exp_only() {
        assert_eq!(time_left(1_000, 900), Duration::from_secs(100));
        assert_eq!(time_left(1_000, 1_200), Duration::ZERO);
    }

    #[test]
    fn cache_drops_entry_at_its_expiry() {
        let cache = new_cache();
        let key = (0, digest("a.b.c"));
        cache.insert(key, Arc::new(principal(unix_now() + 3600)));
        assert!(cache.get(&key).is_some());
        let gone = (0, digest("d.e.f"));
        cache.insert(gone, Arc::new(principal(unix_now() - 5)));
        assert!(cache.get(&gone).is_none());
    }

    /// Two verifications of one token racing each other both insert it: the second insert is
    /// an update, bound by its own token's expiry like a first insert.
    #[test]
    fn a_replaced_entry_lives_until_its_expiry_only() {
        let cache = new_cache();
        let key = (0, digest("a.b.c"));
        cache.insert(key, Arc::new(principal(unix_now() + 3600)));
        cache.insert(key, Arc::new(principal(unix_now() + 3600)));
        assert!(cache.get(&key).is_some());
        cache.insert(key, Arc::new(principal(unix_now() - 5)));
        assert!(cache.get(&key).is_none());
    }
}
