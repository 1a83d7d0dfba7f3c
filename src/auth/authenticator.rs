use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;
use tokio::task::JoinHandle;

use super::cache::{self, TokenDigest};
use super::claims::{self, Claims};
use super::error::from_jwt;
use super::jwks::{KeySet, Loader, VerifyKey};
use super::{AuthConfig, AuthError, MAX_LEEWAY_SECS, Principal};

/// Verifies bearer tokens against the identity provider's JWKS. Clones share everything.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
    _refresher: Option<Arc<AbortOnDrop>>,
}

/// How often keys are fetched; a parameter so tests need not wait minutes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub refresh_every: Duration,
    /// Minimum time between two refreshes caused by unknown `kid`s, so that tokens with made-up
    /// `kid`s cannot turn us into a load generator against the identity provider.
    pub unknown_kid_floor: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(600),
            unknown_kid_floor: Duration::from_secs(30),
        }
    }
}

struct Inner {
    keys: RwLock<Arc<KeySet>>,
    loader: Loader,
    rs256: Validation,
    es256: Validation,
    eddsa: Validation,
    leeway_secs: u64,
    verified: Cache<TokenDigest, Arc<Principal>>,
    /// Held for the whole fetch, so concurrent misses on the same new `kid` fetch once; holds
    /// when the last unknown-`kid` refresh started.
    refresh_gate: tokio::sync::Mutex<Option<Instant>>,
    timing: Timing,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.inner.current_keys().len())
            .field("cached_tokens", &self.inner.verified.entry_count())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads the JWKS once; an unreadable or unusable JWKS is an error here rather than a
    /// rejection of every call later. For a URL, also starts the background refresh, which ends
    /// when the last clone is dropped.
    pub async fn new(cfg: AuthConfig) -> Result<Self, AuthError> {
        Self::with_timing(cfg, Timing::default()).await
    }

    pub(crate) async fn with_timing(cfg: AuthConfig, timing: Timing) -> Result<Self, AuthError> {
        let audience = cfg.audience.trim();
        if audience.is_empty() {
            return Err(AuthError::Config("the audience is empty".into()));
        }
        if cfg.leeway_secs > MAX_LEEWAY_SECS {
            return Err(AuthError::Config(format!(
                "a leeway of {} s is beyond the {MAX_LEEWAY_SECS} s maximum",
                cfg.leeway_secs
            )));
        }
        let issuer = cfg
            .issuer
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let loader = Loader::new(cfg.jwks)?;
        let keys = loader.load().await?;
        tracing::info!(keys = keys.len(), "JWKS loaded");
        let validation = |alg| validation(alg, audience, issuer, cfg.leeway_secs);
        let inner = Arc::new(Inner {
            keys: RwLock::new(Arc::new(keys)),
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
            eddsa: validation(Algorithm::EdDSA),
            leeway_secs: cfg.leeway_secs,
            verified: cache::new_cache(),
            refresh_gate: tokio::sync::Mutex::new(None),
            timing,
            loader,
        });
        let refresher = inner
            .loader
            .is_remote()
            .then(|| Arc::new(AbortOnDrop(spawn_refresher(Arc::downgrade(&inner), timing))));
        Ok(Self {
            inner,
            _refresher: refresher,
        })
    }

    /// Authenticates the raw `authorization` header value (`Bearer <JWT>`).
    pub async fn authenticate(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<Arc<Principal>, AuthError> {
        let token = claims::bearer_token(authorization_header)?;
        let digest = cache::digest(token);
        let now = cache::unix_now();
        if let Some(principal) = self.inner.verified.get(&digest) {
            if cache::still_valid(&principal, now, self.inner.leeway_secs) {
                return Ok(principal);
            }
            self.inner.verified.invalidate(&digest);
            return Err(AuthError::Expired);
        }
        let principal = Arc::new(self.inner.verify(token).await?);
        if principal.expires_at > cache::unix_now() {
            self.inner.verified.insert(digest, Arc::clone(&principal));
        }
        Ok(principal)
    }
}

fn validation(alg: Algorithm, audience: &str, issuer: Option<&str>, leeway: u64) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = leeway;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_audience(&[audience]);
    let mut required = vec!["exp", "aud"];
    if let Some(issuer) = issuer {
        v.set_issuer(&[issuer]);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
}

fn spawn_refresher(inner: Weak<Inner>, timing: Timing) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + timing.refresh_every;
        let mut ticks = tokio::time::interval_at(start, timing.refresh_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            let _gate = inner.refresh_gate.lock().await;
            // Keep serving the keys we have: a flaky identity provider must not lock callers out.
            if let Err(e) = inner.reload().await {
                tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the current keys");
            }
        }
    })
}

impl Inner {
    fn current_keys(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a consistent Arc: the writer only swaps it.
        let guard = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = claims::parse_header(token)?;
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let validation = match key.alg {
            Algorithm::RS256 => &self.rs256,
            Algorithm::ES256 => &self.es256,
            _ => &self.eddsa,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| from_jwt(&e))?;
        data.claims.into_principal()
    }

    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyKey>, AuthError> {
        if let Some(key) = self.current_keys().find(kid, alg) {
            return Ok(key);
        }
        if !self.loader.is_remote() {
            return Err(AuthError::UnknownKey);
        }
        let mut last = self.refresh_gate.lock().await;
        // Whoever held the gate before us may just have fetched the key.
        if let Some(key) = self.current_keys().find(kid, alg) {
            return Ok(key);
        }
        // The start-up load doesn't count, so a key rotated just before a restart works at once.
        if last.is_some_and(|t| t.elapsed() < self.timing.unknown_kid_floor) {
            return Err(AuthError::UnknownKey);
        }
        *last = Some(Instant::now());
        tracing::info!(kid, "token signed by an unknown key; refreshing the JWKS");
        self.reload().await?;
        self.current_keys()
            .find(kid, alg)
            .ok_or(AuthError::UnknownKey)
    }

    /// Callers hold `refresh_gate`.
    async fn reload(&self) -> Result<(), AuthError> {
        let fresh = Arc::new(self.loader.load().await?);
        let old = {
            let mut guard = self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *guard, Arc::clone(&fresh))
        };
        // A key that went away may have been revoked: tokens it signed must be checked again.
        if !fresh.keeps_all_of(&old) {
            self.verified.invalidate_all();
            tracing::info!(
                keys = fresh.len(),
                "JWKS changed; a key was removed, verified-token cache cleared"
            );
        } else {
            tracing::debug!(keys = fresh.len(), "JWKS refreshed");
        }
        Ok(())
    }
}
