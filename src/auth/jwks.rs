//! Turning a JWKS document into verification keys, and fetching it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};

use super::{AuthError, JwksSource};

/// A JWKS is a few KiB; anything far larger is not one, and we won't buffer it.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Smaller RSA moduli are breakable; refusing them at load beats trusting them per token.
const MIN_RSA_MODULUS_BYTES: usize = 256;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The usable keys of one JWKS document.
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    /// Identity of every key, so a refresh can tell whether any key went away.
    fingerprints: HashSet<[u8; 32]>,
}

impl KeySet {
    /// Keys we can't use (encryption keys, HMAC secrets, other curves, other algorithms) are
    /// skipped, since real JWKS documents mix them in (at debug level: they come back on every
    /// refresh); but a document without a single usable key is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a JWKS document (expected {{\"keys\": [...]}}): {e}"))?;
        let mut keys = Vec::new();
        let mut fingerprints = HashSet::new();
        for (i, value) in doc.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(e) => {
                    tracing::debug!(index = i, error = %e, "skipping an unreadable JWKS entry");
                    continue;
                }
            };
            match usable_key(&jwk) {
                Ok(key) => {
                    let canonical = serde_json::to_vec(&jwk).unwrap_or_default();
                    fingerprints.insert(Sha256::digest(&canonical).into());
                    keys.push(Arc::new(key));
                }
                Err(why) => {
                    tracing::debug!(
                        index = i,
                        kid = jwk.common.key_id.as_deref(),
                        why,
                        "skipping a JWKS key"
                    );
                }
            }
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable signing key (RS256 with >= 2048 bits, ES256 on P-256, or EdDSA on Ed25519)".into());
        }
        Ok(Self { keys, fingerprints })
    }

    /// The key for a token: by `kid` when it has one; otherwise the only key of its algorithm,
    /// since guessing among several would be trying keys until one fits.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.alg == alg && k.kid.as_deref() == Some(kid))
                .cloned(),
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(Arc::clone(only)),
                    _ => None,
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when every key of `older` is still here, i.e. nothing was revoked.
    pub fn keeps_all_of(&self, older: &KeySet) -> bool {
        older.fingerprints.is_subset(&self.fingerprints)
    }

    /// The same keys, whatever the order or formatting of the document.
    pub fn same_keys_as(&self, other: &KeySet) -> bool {
        self.fingerprints == other.fingerprints
    }
}

fn usable_key(jwk: &Jwk) -> Result<VerifyKey, &'static str> {
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err("not a signature key (`use`)");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("not a verification key (`key_ops`)");
    }
    let declared = jwk.common.key_algorithm;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            check_alg(declared, KeyAlgorithm::RS256)?;
            let n = b64(&rsa.n)?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err("RSA modulus shorter than 2048 bits");
            }
            b64(&rsa.e)?;
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            check_alg(declared, KeyAlgorithm::ES256)?;
            if ec.curve != EllipticCurve::P256 {
                return Err("EC key not on P-256");
            }
            if b64(&ec.x)?.len() != 32 || b64(&ec.y)?.len() != 32 {
                return Err("P-256 coordinates are not 32 bytes");
            }
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            check_alg(declared, KeyAlgorithm::EdDSA)?;
            if okp.curve != EllipticCurve::Ed25519 {
                return Err("OKP key not on Ed25519");
            }
            // The verifier slices the first 32 bytes without checking the length.
            let x: [u8; 32] = b64(&okp.x)?
                .try_into()
                .map_err(|_| "Ed25519 key is not 32 bytes")?;
            ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "invalid Ed25519 point")?;
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never accepted"),
        _ => return Err("unsupported key type"),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "key parameters do not decode")?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

fn check_alg(declared: Option<KeyAlgorithm>, expected: KeyAlgorithm) -> Result<(), &'static str> {
    match declared {
        None => Ok(()),
        Some(alg) if alg == expected => Ok(()),
        Some(_) => Err("key is for an algorithm we do not accept"),
    }
}

fn b64(s: &str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "key parameter is not base64url")
}

/// Reads the JWKS from its source.
pub(crate) struct Loader {
    source: JwksSource,
    client: Option<reqwest::Client>,
}

impl Loader {
    pub fn new(source: JwksSource) -> Result<Self, AuthError> {
        let client = match &source {
            JwksSource::File(_) => None,
            JwksSource::Url(url) => Some(http_client(url.scheme() == "https")?),
        };
        Ok(Self { source, client })
    }

    /// The document's bytes. Errors name the file or URL: they are for our logs (see
    /// `AuthError::public_message`).
    pub async fn read(&self) -> Result<Vec<u8>, AuthError> {
        match (&self.source, &self.client) {
            (JwksSource::Url(url), Some(client)) => fetch(client, url).await,
            (JwksSource::File(path), _) => read_file(path).await,
            (JwksSource::Url(_), None) => {
                Err(AuthError::Config("no HTTP client for the JWKS URL".into()))
            }
        }
    }

    pub fn parse(&self, bytes: &[u8]) -> Result<KeySet, AuthError> {
        KeySet::parse(bytes)
            .map_err(|e| AuthError::JwksUnavailable(format!("{}: {e}", self.origin())))
    }

    fn origin(&self) -> String {
        match &self.source {
            JwksSource::Url(url) => url.to_string(),
            JwksSource::File(path) => path.display().to_string(),
        }
    }
}

fn http_client(https_only: bool) -> Result<reqwest::Client, AuthError> {
    // reqwest is built without a crypto provider; the error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        // Keeps a redirect from downgrading an https JWKS URL to clear text.
        .https_only(https_only)
        .build()
        .map_err(|e| AuthError::Config(format!("cannot build the JWKS HTTP client: {e}")))
}

async fn fetch(client: &reqwest::Client, url: &url::Url) -> Result<Vec<u8>, AuthError> {
    let unavailable = |what: String| AuthError::JwksUnavailable(format!("{url}: {what}"));
    let mut resp = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/json, application/jwk-set+json",
        )
        .send()
        .await
        .map_err(|e| unavailable(format!("request failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(unavailable(format!("answered {}", resp.status())));
    }
    if resp
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(unavailable("the document is too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| unavailable(format!("reading the body failed: {e}")))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(unavailable("the document is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_file(path: &std::path::Path) -> Result<Vec<u8>, AuthError> {
    let unavailable =
        |what: String| AuthError::JwksUnavailable(format!("{}: {what}", path.display()));
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if meta.len() > MAX_JWKS_BYTES as u64 {
        return Err(unavailable("the file is too large to be a JWKS".into()));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| unavailable(e.to_string()))
}
