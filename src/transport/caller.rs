//! Who is calling: an `authorization: Bearer <JWT>` header -> [`Caller`], the same for the gRPC
//! and the HTTP door. Claims are parsed into domain types once per token, not per call:
//! the ticketing system sends the same token on every check, so the last few tokens seen are
//! kept with their parsed identity and matched by comparing bytes, which costs far less than
//! hashing the token for the verified-token cache on every call. Each is kept with the
//! generation of the key set that verified it and served only while that is still the
//! current one, so a key removed from the JWKS stops working here as soon as in the
//! authenticator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::auth::{AuthError, Authenticator, KeyGeneration, Principal, SCOPE_ADMIN, SCOPE_CHECK};
use crate::domain::{Email, WebId, ids::sanitize_line};
use crate::service::{Caller, Identity};

const SLOTS: usize = 16;
/// A recent token is still handed back to the authenticator at least this often: the
/// generation check covers key changes, this bounds how long anything else it might learn
/// takes to apply here.
const RECHECK: Duration = Duration::from_secs(1);

struct Recent {
    header: Box<str>,
    identity: Arc<Identity>,
    /// Token expiry, Unix seconds.
    expires_at: i64,
    checked: Instant,
    /// The key set that verified the token.
    keys: KeyGeneration,
}

/// The identities of the last few tokens seen.
#[derive(Default)]
pub struct RecentCallers {
    slots: RwLock<Vec<Recent>>,
    next: AtomicUsize,
}

impl RecentCallers {
    fn get(&self, header: &str, keys: KeyGeneration) -> Option<Arc<Identity>> {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = slots.iter().find(|r| {
            // Tokens of one issuer share their first bytes; the signature at the end differs.
            r.header.len() == header.len()
                && r.header.as_bytes().last() == header.as_bytes().last()
                && *r.header == *header
        })?;
        let fresh =
            hit.keys == keys && hit.checked.elapsed() < RECHECK && unix_now() <= hit.expires_at;
        fresh.then(|| hit.identity.clone())
    }

    fn put(&self, header: &str, identity: Arc<Identity>, expires_at: i64, keys: KeyGeneration) {
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = Recent {
            header: header.into(),
            identity,
            expires_at,
            checked: Instant::now(),
            keys,
        };
        if let Some(same) = slots.iter_mut().find(|r| *r.header == *header) {
            *same = entry;
        } else if slots.len() < SLOTS {
            slots.push(entry);
        } else {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % SLOTS;
            slots[i] = entry;
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a call has no caller. Each door says it in its own words (gRPC status, HTTP 401).
#[derive(Debug)]
pub enum CallerError {
    /// The token is missing or not acceptable, or cannot be verified now.
    Auth(AuthError),
    /// The token verified but a claim cannot be an identity here.
    Claim { claim: &'static str, why: String },
}

/// Authenticates a call from its `authorization` header (`None` when absent; a value that is
/// not visible ASCII is given as `"\u{0}"`, which no token matches). `traceparent` is the
/// caller's W3C trace context, read when `with_trace` (for calls that write the audit trail;
/// the hot check path skips it).
pub async fn caller(
    auth: &Authenticator,
    recent: &RecentCallers,
    header: Option<&str>,
    traceparent: Option<&str>,
    with_trace: bool,
) -> Result<Caller, CallerError> {
    let current = auth.key_generation();
    let identity = match header.and_then(|h| recent.get(h, current)) {
        Some(id) => id,
        None => {
            let (principal, keys) = auth
                .authenticate_at(header)
                .await
                .map_err(CallerError::Auth)?;
            let identity = Arc::new(identity(&principal)?);
            if let Some(h) = header {
                recent.put(h, identity.clone(), principal.expires_at, keys);
            }
            identity
        }
    };
    let trace_id = if with_trace {
        crate::telemetry::trace_id_from_current_span()
            .or_else(|| traceparent.and_then(traceparent_trace_id))
    } else {
        None
    };
    Ok(Caller::new(identity, trace_id))
}

fn identity(principal: &Principal) -> Result<Identity, CallerError> {
    let bad_claim = |claim: &'static str, why: String| CallerError::Claim { claim, why };
    let web_id = WebId::parse(&principal.web_id).map_err(|e| bad_claim("sub", e.0))?;
    let email = principal
        .email
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(Email::parse)
        .transpose()
        .map_err(|e| bad_claim("email", e.0))?;
    // Names are made safe, not refused: they come from the identity provider's profile, which
    // the person may not be able to correct (see `sanitize_line`).
    let name = |v: &Option<String>| sanitize_line(v.as_deref().unwrap_or(""), 200);
    Ok(Identity {
        given_name: name(&principal.given_name),
        family_name: name(&principal.family_name),
        web_id,
        email,
        operator: principal.has_scope(SCOPE_ADMIN),
        checker: principal.has_scope(SCOPE_CHECK),
    })
}

/// The trace id of an incoming W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), so the audit
/// trail names the caller's trace even when this process exports no spans.
fn traceparent_trace_id(v: &str) -> Option<String> {
    let mut parts = v.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    let valid = trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id.bytes().any(|b| b != b'0');
    valid.then(|| trace_id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(w: &str) -> Arc<Identity> {
        Arc::new(Identity {
            web_id: WebId::from_trusted(w.into()),
            email: None,
            given_name: String::new(),
            family_name: String::new(),
            operator: false,
            checker: true,
        })
    }

    #[test]
    fn recent_tokens_are_matched_exactly_and_expire() {
        let r = RecentCallers::default();
        let far = unix_now() + 600;
        let g = KeyGeneration::for_tests(0);
        r.put("Bearer aaa.bbb.ccc", id("a"), far, g);
        assert_eq!(
            r.get("Bearer aaa.bbb.ccc", g).map(|i| i.web_id.to_string()),
            Some("a".into())
        );
        assert!(r.get("Bearer aaa.bbb.ccd", g).is_none());
        assert!(r.get("Bearer aaa.bbb.cc", g).is_none());
        r.put("Bearer old", id("b"), unix_now() - 1, g);
        assert!(
            r.get("Bearer old", g).is_none(),
            "an expired token is not served"
        );
        for i in 0..40 {
            r.put(&format!("Bearer t{i}"), id("x"), far, g);
        }
        assert!(r.slots.read().unwrap().len() <= SLOTS);
    }

    #[test]
    fn recent_tokens_are_not_served_once_the_keys_change() {
        let r = RecentCallers::default();
        let far = unix_now() + 600;
        r.put(
            "Bearer aaa.bbb.ccc",
            id("a"),
            far,
            KeyGeneration::for_tests(3),
        );
        assert!(
            r.get("Bearer aaa.bbb.ccc", KeyGeneration::for_tests(3))
                .is_some()
        );
        assert!(
            r.get("Bearer aaa.bbb.ccc", KeyGeneration::for_tests(4))
                .is_none(),
            "verified under keys that are no longer the current ones"
        );
    }
}
