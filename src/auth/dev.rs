//! Dev mode: a local Ed25519 signing key and its JWKS, so the service can run and be called
//! without an identity provider. The authenticator still verifies tokens exactly as in
//! production; only the issuer is local.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use super::AuthError;
use super::cache::unix_now;

pub const DEV_ISSUER: &str = "entitlements-dev";

const KEY_FILE: &str = "dev-signing-key.pem";
const JWKS_FILE: &str = "dev-jwks.json";
const PEM_LABEL: &str = "PRIVATE KEY";

/// What a dev token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    pub sub: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub scopes: Vec<String>,
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
}

impl MintRequest {
    /// A one-hour token for `sub` from [`DEV_ISSUER`] to the default audience, with no scopes.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            email: None,
            given_name: None,
            family_name: None,
            scopes: Vec::new(),
            issuer: DEV_ISSUER.to_owned(),
            audience: super::DEFAULT_AUDIENCE.to_owned(),
            ttl_secs: 3600,
        }
    }
}

/// The dev signing key, kept under the data directory so tokens survive restarts.
pub struct DevKey {
    kid: String,
    encoding: EncodingKey,
    jwks_path: PathBuf,
}

impl fmt::Debug for DevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .field("jwks_path", &self.jwks_path)
            .finish_non_exhaustive()
    }
}

impl DevKey {
    /// Loads or creates (first run) an Ed25519 key under `data_dir` (`dev-signing-key.pem`,
    /// PKCS#8, file mode 0600) and writes `dev-jwks.json` (the public key as a JWKS with a stable
    /// `kid`) beside it.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, AuthError> {
        fs::create_dir_all(data_dir)
            .map_err(|e| config(format!("cannot create {}: {e}", data_dir.display())))?;
        let key_path = data_dir.join(KEY_FILE);
        let signing = match fs::read_to_string(&key_path) {
            Ok(pem) => {
                parse_pem(&pem).map_err(|e| config(format!("{}: {e}", key_path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&key_path)?,
            Err(e) => return Err(config(format!("cannot read {}: {e}", key_path.display()))),
        };
        warn_if_readable_by_others(&key_path);

        let der = signing
            .to_pkcs8_der()
            .map_err(|e| config(format!("cannot encode the dev key: {e}")))?;
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let kid = thumbprint(&x);
        let jwks = serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]
        });
        let jwks_path = data_dir.join(JWKS_FILE);
        let body = serde_json::to_vec_pretty(&jwks).map_err(|e| config(e.to_string()))?;
        // Rewritten on every start so it always matches the key, even if someone edited it.
        write_replacing(&jwks_path, &body)?;
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwks_path,
        })
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.jwks_path.clone()
    }

    /// The RFC 7638 thumbprint of the public key, so it stays the same across restarts.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// An EdDSA JWT carrying `kid`, `iss`, `aud`, `sub`, `iat`, `exp`, the optional profile
    /// claims when given, and `scope` (space-joined) when there are scopes.
    pub fn mint(&self, req: &MintRequest) -> Result<String, AuthError> {
        if req.sub.trim().is_empty() {
            return Err(AuthError::MissingSubject);
        }
        if req.issuer.trim().is_empty() || req.audience.trim().is_empty() {
            return Err(config("a dev token needs an issuer and an audience".into()));
        }
        if req.ttl_secs == 0 {
            return Err(config("a dev token needs a positive lifetime".into()));
        }
        let now = unix_now();
        let ttl = i64::try_from(req.ttl_secs).unwrap_or(i64::MAX);
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), req.issuer.clone().into());
        claims.insert("aud".into(), req.audience.clone().into());
        claims.insert("sub".into(), req.sub.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl).into());
        for (name, value) in [
            ("email", &req.email),
            ("given_name", &req.given_name),
            ("family_name", &req.family_name),
        ] {
            if let Some(value) = value {
                claims.insert(name.into(), value.clone().into());
            }
        }
        if !req.scopes.is_empty() {
            claims.insert("scope".into(), req.scopes.join(" ").into());
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| config(format!("cannot sign a dev token: {e}")))
    }

    #[cfg(test)]
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

fn config(msg: String) -> AuthError {
    AuthError::Config(msg)
}

fn create_key(path: &Path) -> Result<SigningKey, AuthError> {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| config(format!("cannot encode the dev key: {e}")))?;
    let pem = to_pem(der.as_bytes());
    // Written whole under a temporary name, then linked into place: a crash leaves no
    // half-written key, and of two processes starting together the second adopts the first's key.
    let tmp = temp_sibling(path);
    write_private(&tmp, pem.as_bytes())?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a dev signing key");
            Ok(signing)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = fs::read_to_string(path)
                .map_err(|e| config(format!("cannot read {}: {e}", path.display())))?;
            parse_pem(&pem).map_err(|e| config(format!("{}: {e}", path.display())))
        }
        Err(e) => Err(config(format!("cannot create {}: {e}", path.display()))),
    }
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    path.with_file_name(name)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(path)
        .map_err(|e| config(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| config(format!("cannot write {}: {e}", path.display())))
}

fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let tmp = temp_sibling(path);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            config(format!("cannot write {}: {e}", path.display()))
        })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the dev signing key is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn thumbprint(x: &str) -> String {
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    pem
}

fn parse_pem(pem: &str) -> Result<SigningKey, String> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = pem
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or("not a PEM `PRIVATE KEY` (PKCS#8) file")?;
    let b64: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| "the PEM body is not base64".to_owned())?;
    SigningKey::from_pkcs8_der(&der).map_err(|_| "not an Ed25519 PKCS#8 key".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevKey::load_or_create(dir.path()).unwrap();
        let second = DevKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks_path(), dir.path().join(JWKS_FILE));

        let jwks: serde_json::Value =
            serde_json::from_slice(&fs::read(first.jwks_path()).unwrap()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], first.kid());
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );

        let pem = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // Also readable by jsonwebtoken's own PEM parser, i.e. standard PKCS#8.
        assert!(EncodingKey::from_ed_pem(pem.as_bytes()).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files left behind");
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(matches!(
            DevKey::load_or_create(dir.path()),
            Err(AuthError::Config(_))
        ));
        assert_eq!(
            fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            "garbage"
        );
    }

    #[test]
    fn mint_rejects_bad_requests() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        assert_eq!(
            key.mint(&MintRequest::new(" ")),
            Err(AuthError::MissingSubject)
        );
        let zero = MintRequest {
            ttl_secs: 0,
            ..MintRequest::new("a")
        };
        assert!(matches!(key.mint(&zero), Err(AuthError::Config(_))));
        let token = key.mint(&MintRequest::new("a")).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
    }

    #[test]
    fn mint_needs_an_issuer_and_an_audience() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let no_issuer = MintRequest {
            issuer: " ".into(),
            ..MintRequest::new("a")
        };
        assert!(matches!(key.mint(&no_issuer), Err(AuthError::Config(_))));
        let no_audience = MintRequest {
            audience: String::new(),
            ..MintRequest::new("a")
        };
        assert!(matches!(key.mint(&no_audience), Err(AuthError::Config(_))));
    }

    #[test]
    fn debug_names_the_key_but_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.kid()), "{shown}");
        let pem = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        let secret = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(secret), "{shown}");
    }

    /// Two processes starting together: the one that links its key second adopts the first's.
    #[test]
    fn a_key_created_meanwhile_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevKey::load_or_create(dir.path()).unwrap();
        let adopted = create_key(&dir.path().join(KEY_FILE)).unwrap();
        let x = URL_SAFE_NO_PAD.encode(adopted.verifying_key().as_bytes());
        assert_eq!(thumbprint(&x), first.kid());
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files left behind");
    }
}
