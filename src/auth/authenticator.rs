use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::cache::{self, TokenDigest};
use super::claims::{self, Claims};
use super::error::from_jwt;
use super::jwks::{KeySet, Loader, VerifyKey};
use super::{AuthConfig, AuthError, JwksSource, MAX_LEEWAY_SECS, Principal};

/// Verifies bearer tokens against the identity provider's JWKS. Clones share everything.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
    _refresher: Arc<AbortOnDrop>,
}

/// Minimum time between two refreshes caused by unknown `kid`s, so that tokens with made-up
/// `kid`s cannot turn us into a load generator against the identity provider (or make us read
/// a file on every call).
fn unknown_kid_floor(source: &JwksSource) -> Duration {
    match source {
        JwksSource::Url(_) => Duration::from_secs(30),
        JwksSource::File(_) => Duration::from_secs(1),
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
    /// Held for the whole read, so concurrent misses on the same new `kid` read once.
    refresh_gate: tokio::sync::Mutex<RefreshState>,
    unknown_kid_floor: Duration,
}

struct RefreshState {
    /// When the last refresh caused by an unknown `kid` started.
    last_unknown_kid: Option<Instant>,
    /// SHA-256 of the last document read: an unchanged one (the usual case when polling a
    /// file) is not parsed again.
    last_document: [u8; 32],
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
    /// Loads the JWKS; an unreadable or unusable JWKS is an error here rather than a rejection
    /// of every call later. Also starts the background refresh (every `cfg.refresh_every`),
    /// which ends when the last clone is dropped.
    pub async fn new(cfg: AuthConfig) -> Result<Self, AuthError> {
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
        if cfg.refresh_every.is_zero() {
            return Err(AuthError::Config(
                "the JWKS refresh interval is zero".into(),
            ));
        }
        let floor = unknown_kid_floor(&cfg.jwks);
        let loader = Loader::new(cfg.jwks)?;
        let document = loader.read().await?;
        let keys = loader.parse(&document)?;
        tracing::info!(keys = keys.len(), "JWKS loaded");
        let validation = |alg| validation(alg, audience, issuer, cfg.leeway_secs);
        let inner = Arc::new(Inner {
            keys: RwLock::new(Arc::new(keys)),
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
            eddsa: validation(Algorithm::EdDSA),
            leeway_secs: cfg.leeway_secs,
            verified: cache::new_cache(),
            refresh_gate: tokio::sync::Mutex::new(RefreshState {
                last_unknown_kid: None,
                last_document: Sha256::digest(&document).into(),
            }),
            unknown_kid_floor: floor,
            loader,
        });
        let refresher = spawn_refresher(Arc::downgrade(&inner), cfg.refresh_every);
        Ok(Self {
            inner,
            _refresher: Arc::new(AbortOnDrop(refresher)),
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

fn spawn_refresher(inner: Weak<Inner>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(start, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A file that stays missing would otherwise be reported on every poll.
        let mut failing: Option<String> = None;
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            let mut state = inner.refresh_gate.lock().await;
            // Keep serving the keys we have: a flaky identity provider must not lock callers out.
            match inner.reload(&mut state).await {
                Ok(()) => {
                    if failing.take().is_some() {
                        tracing::info!("the JWKS is readable again");
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if failing.as_deref() != Some(text.as_str()) {
                        tracing::warn!(error = %e, "JWKS refresh failed; keeping the current keys");
                    }
                    failing = Some(text);
                }
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
        let find = || self.current_keys().find(kid, alg);
        if let Some(found) = find() {
            return Ok(found);
        }
        let mut state = self.refresh_gate.lock().await;
        // Whoever held the gate before us may just have read the key.
        if let Some(found) = find() {
            return Ok(found);
        }
        // The start-up load doesn't count, so a key rotated just before a restart works at once.
        if state
            .last_unknown_kid
            .is_some_and(|t| t.elapsed() < self.unknown_kid_floor)
        {
            return Err(AuthError::UnknownKey);
        }
        state.last_unknown_kid = Some(Instant::now());
        tracing::info!(
            kid,
            "token signed by an unknown key; reading the JWKS again"
        );
        self.reload(&mut state).await?;
        find().ok_or(AuthError::UnknownKey)
    }

    /// Reads the JWKS and installs it if its keys changed. Takes the state behind
    /// `refresh_gate`, so only one read runs at a time.
    async fn reload(&self, state: &mut RefreshState) -> Result<(), AuthError> {
        let document = self.loader.read().await?;
        let digest: [u8; 32] = Sha256::digest(&document).into();
        if digest == state.last_document {
            return Ok(());
        }
        // Remembered even when unusable, so a broken file is reported once, not on every poll.
        state.last_document = digest;
        let fresh = Arc::new(self.loader.parse(&document)?);
        let old = {
            let mut guard = self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if fresh.same_keys_as(&guard) {
                tracing::debug!(keys = fresh.len(), "JWKS read again; same keys");
                return Ok(());
            }
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
            tracing::info!(keys = fresh.len(), "JWKS changed; keys added");
        }
        Ok(())
    }
}
