use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::cache::{self, CacheKey};
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

/// Which key set verified a token. It changes whenever the keys do, so whoever keeps verified
/// tokens (the transport's recent callers) can drop them at once when a key is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGeneration(u64);

impl KeyGeneration {
    #[cfg(test)]
    pub(crate) fn for_tests(n: u64) -> Self {
        Self(n)
    }
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

/// One key set as loaded, with its generation.
struct Keys {
    set: KeySet,
    generation: u64,
}

struct Inner {
    keys: RwLock<Arc<Keys>>,
    /// The generation of `keys`, readable without the lock on every call; stored after `keys`
    /// is replaced.
    generation: AtomicU64,
    loader: Loader,
    rs256: Validation,
    es256: Validation,
    eddsa: Validation,
    leeway_secs: u64,
    verified: Cache<CacheKey, Arc<Principal>>,
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
            .field("keys", &self.inner.current_keys().set.len())
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
            keys: RwLock::new(Arc::new(Keys {
                set: keys,
                generation: 0,
            })),
            generation: AtomicU64::new(0),
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
        let (principal, _) = self.authenticate_at(authorization_header).await?;
        Ok(principal)
    }

    /// [`Authenticator::authenticate`], also saying which key set verified the token: a caller
    /// that keeps the result must not use it once [`Authenticator::key_generation`] differs.
    pub async fn authenticate_at(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<(Arc<Principal>, KeyGeneration), AuthError> {
        let token = claims::bearer_token(authorization_header)?;
        let digest = cache::digest(token);
        let now = cache::unix_now();
        let current = self.inner.generation.load(Ordering::Acquire);
        if let Some(principal) = self.inner.verified.get(&(current, digest)) {
            if cache::still_valid(&principal, now, self.inner.leeway_secs) {
                return Ok((principal, KeyGeneration(current)));
            }
            self.inner.verified.invalidate(&(current, digest));
            return Err(AuthError::Expired);
        }
        let (principal, generation) = self.inner.verify(token).await?;
        let principal = Arc::new(principal);
        if principal.expires_at > cache::unix_now() {
            self.inner
                .verified
                .insert((generation, digest), Arc::clone(&principal));
        }
        Ok((principal, KeyGeneration(generation)))
    }

    /// The current key set's generation; cheap enough for every call.
    pub fn key_generation(&self) -> KeyGeneration {
        KeyGeneration(self.inner.generation.load(Ordering::Acquire))
    }

    /// A refresh now, as the background task would run it.
    #[cfg(test)]
    pub(crate) async fn reload_now(&self) -> Result<(), AuthError> {
        let mut state = self.inner.refresh_gate.lock().await;
        self.inner.reload(&mut state).await
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
    fn current_keys(&self) -> Arc<Keys> {
        // A poisoned lock still holds a consistent Arc: the writer only swaps it.
        let guard = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// The principal, and the generation of the key set that verified it.
    async fn verify(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = claims::parse_header(token)?;
        let (key, generation) = self.key_for(header.kid.as_deref(), header.alg).await?;
        let validation = match key.alg {
            Algorithm::RS256 => &self.rs256,
            Algorithm::ES256 => &self.es256,
            _ => &self.eddsa,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| from_jwt(&e))?;
        Ok((data.claims.into_principal()?, generation))
    }

    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Arc<VerifyKey>, u64), AuthError> {
        let find = || {
            let keys = self.current_keys();
            keys.set.find(kid, alg).map(|key| (key, keys.generation))
        };
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
        let fresh = self.loader.parse(&document)?;
        let (removed, generation) = {
            let mut guard = self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if fresh.same_keys_as(&guard.set) {
                tracing::debug!(keys = fresh.len(), "JWKS read again; same keys");
                return Ok(());
            }
            let removed = !fresh.keeps_all_of(&guard.set);
            let generation = guard.generation + 1;
            *guard = Arc::new(Keys {
                set: fresh,
                generation,
            });
            // After the swap: whoever sees the new generation also finds the new keys.
            self.generation.store(generation, Ordering::Release);
            (removed, generation)
        };
        // Entries of older generations are never served again; this only frees them.
        self.verified.invalidate_all();
        tracing::info!(
            keys = self.current_keys().set.len(),
            generation,
            removed,
            "JWKS changed; tokens verified with the earlier keys will be verified again"
        );
        Ok(())
    }
}
