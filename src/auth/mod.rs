//! The identity layer: turns an `authorization: Bearer <JWT>` header into a [`Principal`].
//!
//! Tokens are signed by an external identity provider (or, in dev mode, by [`dev::DevKey`]) and
//! verified against its JWKS. Only asymmetric algorithms are accepted (RS256, ES256, EdDSA), so
//! this service never holds a secret that could mint tokens.

mod authenticator;
mod cache;
mod claims;
pub mod dev;
mod error;
mod jwks;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use authenticator::{Authenticator, KeyGeneration};
pub use claims::MAX_TOKEN_LEN;
pub use error::AuthError;

/// Scope a caller needs to ask entitlement questions.
pub const SCOPE_CHECK: &str = "entitlements.check";
/// Scope a caller needs to change accounts and entitlements.
pub const SCOPE_ADMIN: &str = "entitlements.admin";

pub const DEFAULT_AUDIENCE: &str = "entitlements";
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Longer leeways are almost certainly a unit mistake (ms for s), and past the current Unix
/// time the validator's `now - leeway` would underflow.
const MAX_LEEWAY_SECS: u64 = 3600;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwks: JwksSource,
    /// When set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// Tokens must list this in `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// How often the JWKS is read again in the background (it is also read again on an
    /// unknown `kid`).
    pub refresh_every: Duration,
}

impl AuthConfig {
    /// Defaults: no issuer check, audience [`DEFAULT_AUDIENCE`], leeway [`DEFAULT_LEEWAY_SECS`],
    /// the source's refresh interval ([`JwksSource::default_refresh`]).
    pub fn new(jwks: JwksSource) -> Self {
        Self {
            refresh_every: jwks.default_refresh(),
            jwks,
            issuer: None,
            audience: DEFAULT_AUDIENCE.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Where the identity provider's public keys come from. Both are read at start, again in the
/// background and on an unknown `kid`; a removed key stops working once a read sees it gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(url::Url),
}

impl JwksSource {
    /// `https://…` is a URL; `http://…` only for a loopback host (keys fetched in clear text
    /// from elsewhere could be swapped by anyone on the path); `file://…` or anything else is a
    /// file path.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AuthError::Config("the JWKS source is empty".into()));
        }
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let url = url::Url::parse(s)
                .map_err(|e| AuthError::Config(format!("invalid JWKS URL: {e}")))?;
            if url.scheme() == "http" && !is_loopback(&url) {
                return Err(AuthError::Config(
                    "a plain http:// JWKS URL is only allowed for a loopback host; use https://"
                        .into(),
                ));
            }
            return Ok(Self::Url(url));
        }
        if lower.starts_with("file://") {
            let url = url::Url::parse(s)
                .map_err(|e| AuthError::Config(format!("invalid JWKS file URL: {e}")))?;
            let path = url
                .to_file_path()
                .map_err(|()| AuthError::Config("the JWKS file URL has no local path".into()))?;
            return Ok(Self::File(path));
        }
        Ok(Self::File(PathBuf::from(s)))
    }
}

impl JwksSource {
    /// A URL every 10 minutes: the identity provider is someone else's server, and keys are
    /// published well before use. A file every 2 seconds: a local read of a few KiB (parsed
    /// only when it changed), and whoever edits it expects a removed key to stop at once.
    pub fn default_refresh(&self) -> Duration {
        match self {
            Self::File(_) => Duration::from_secs(2),
            Self::Url(_) => Duration::from_secs(600),
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the caller's Web ID.
    pub web_id: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub scopes: Vec<String>,
    /// The token's `exp`, Unix seconds.
    pub expires_at: i64,
}

impl Principal {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.iter().any(|have| have == s)
    }
}
