//! Authenticator tests with real keys and signatures: EdDSA from the dev key, RS256 and ES256
//! from the fixtures in `testdata/`.

mod remote;

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::cache::unix_now;
use super::dev::{DEV_ISSUER, DevKey, MintRequest};
use super::{AuthConfig, AuthError, Authenticator, JwksSource, SCOPE_ADMIN, SCOPE_CHECK};

const RSA_PEM: &str = include_str!("../testdata/rsa2048-test-only.pem");
const P256_PEM: &str = include_str!("../testdata/p256-test-only.pem");

struct Dev {
    _dir: tempfile::TempDir,
    key: DevKey,
    auth: Authenticator,
}

async fn dev_setup(issuer: Option<&str>, leeway_secs: u64) -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let cfg = AuthConfig {
        issuer: issuer.map(str::to_owned),
        leeway_secs,
        ..AuthConfig::new(JwksSource::File(key.jwks_path()))
    };
    let auth = Authenticator::new(cfg).await.unwrap();
    Dev {
        _dir: dir,
        key,
        auth,
    }
}

fn claims(sub: &str, exp_in: i64) -> Value {
    let now = unix_now();
    json!({"iss": DEV_ISSUER, "aud": "entitlements", "sub": sub, "iat": now, "exp": now + exp_in})
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

impl Dev {
    fn token(&self, claims: &Value) -> String {
        sign(
            Algorithm::EdDSA,
            Some(self.key.kid()),
            claims,
            self.key.encoding_key(),
        )
    }

    async fn check(&self, token: &str) -> Result<Arc<super::Principal>, AuthError> {
        self.auth
            .authenticate(Some(&format!("Bearer {token}")))
            .await
    }
}

fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(header), part(claims))
}

#[tokio::test]
async fn minted_eddsa_token_is_accepted() {
    let dev = dev_setup(Some(DEV_ISSUER), 30).await;
    let req = MintRequest {
        email: Some("alice@example.com".into()),
        given_name: Some("Alice".into()),
        family_name: Some("Example".into()),
        scopes: vec![SCOPE_CHECK.into()],
        ..MintRequest::new("https://id.example/alice")
    };
    let token = dev.key.mint(&req).unwrap();
    let p = dev.check(&token).await.unwrap();
    assert_eq!(p.web_id, "https://id.example/alice");
    assert_eq!(p.email.as_deref(), Some("alice@example.com"));
    assert_eq!(p.given_name.as_deref(), Some("Alice"));
    assert_eq!(p.family_name.as_deref(), Some("Example"));
    assert!(p.has_scope(SCOPE_CHECK));
    assert!(!p.has_scope(SCOPE_ADMIN));
    assert!((p.expires_at - unix_now() - 3600).abs() <= 2);
}

#[tokio::test]
async fn rejections_map_to_their_errors() {
    let dev = dev_setup(Some(DEV_ISSUER), 30).await;
    let base = claims("https://id.example/bob", 300);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let now = unix_now();
    let cases: Vec<(&str, String, AuthError)> = vec![
        (
            "expired beyond leeway",
            dev.token(&with("exp", json!(now - 31))),
            AuthError::Expired,
        ),
        (
            "not yet valid",
            dev.token(&with("nbf", json!(now + 120))),
            AuthError::NotYetValid,
        ),
        (
            "wrong audience",
            dev.token(&with("aud", json!("billing"))),
            AuthError::WrongAudience,
        ),
        (
            "no audience",
            dev.token(&without("aud")),
            AuthError::WrongAudience,
        ),
        (
            "wrong issuer",
            dev.token(&with("iss", json!("https://evil.example"))),
            AuthError::WrongIssuer,
        ),
        (
            "no issuer",
            dev.token(&without("iss")),
            AuthError::WrongIssuer,
        ),
        (
            "no subject",
            dev.token(&without("sub")),
            AuthError::MissingSubject,
        ),
        (
            "empty subject",
            dev.token(&with("sub", json!(""))),
            AuthError::MissingSubject,
        ),
        (
            "alg none",
            unsigned(&json!({"alg": "none", "typ": "JWT"}), &base, ""),
            AuthError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "HS256",
            sign(
                Algorithm::HS256,
                Some(dev.key.kid()),
                &base,
                &EncodingKey::from_secret(b"x"),
            ),
            AuthError::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "unknown kid",
            sign(
                Algorithm::EdDSA,
                Some("nope"),
                &base,
                dev.key.encoding_key(),
            ),
            AuthError::UnknownKey,
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(dev.check(&token).await.err(), Some(want), "{name}");
    }

    let no_exp = dev.token(&without("exp"));
    assert!(matches!(
        dev.check(&no_exp).await,
        Err(AuthError::MalformedToken(_))
    ));
    // Inside the leeway an expired token still passes.
    let just_expired = dev.token(&with("exp", json!(now - 5)));
    assert!(dev.check(&just_expired).await.is_ok());
}

#[tokio::test]
async fn tampering_breaks_the_signature() {
    let dev = dev_setup(None, 30).await;
    let token = dev.token(&claims("https://id.example/carol", 300));
    let (signed, sig) = token.rsplit_once('.').unwrap();

    // Flip a character in the middle: still valid base64url, no longer the signature.
    let mut sig = sig.to_owned().into_bytes();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!("{signed}.{}", String::from_utf8(sig).unwrap());
    assert_eq!(
        dev.check(&bad_sig).await.err(),
        Some(AuthError::BadSignature)
    );

    // Swap in other claims under the original signature.
    let (header, _) = signed.split_once('.').unwrap();
    let forged_claims = claims("https://id.example/mallory", 300);
    let forged = format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap()),
        token.rsplit_once('.').unwrap().1
    );
    assert_eq!(
        dev.check(&forged).await.err(),
        Some(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn malformed_headers_and_tokens() {
    let dev = dev_setup(None, 30).await;
    let auth = &dev.auth;
    assert_eq!(
        auth.authenticate(None).await.err(),
        Some(AuthError::MissingToken)
    );
    assert_eq!(
        auth.authenticate(Some("")).await.err(),
        Some(AuthError::MissingToken)
    );
    assert_eq!(
        auth.authenticate(Some("Basic dXNlcjpwdw==")).await.err(),
        Some(AuthError::MalformedHeader)
    );
    assert_eq!(
        auth.authenticate(Some("Bearer")).await.err(),
        Some(AuthError::MalformedHeader)
    );
    let token = dev.key.mint(&MintRequest::new("x")).unwrap();
    assert_eq!(
        auth.authenticate(Some(&token)).await.err(),
        Some(AuthError::MalformedHeader)
    );
    for junk in ["a.b", "not-a-jwt", "a.b.c.d", "e30.e30.e30"] {
        let got = auth.authenticate(Some(&format!("Bearer {junk}"))).await;
        assert!(
            matches!(got, Err(AuthError::MalformedToken(_))),
            "{junk}: {got:?}"
        );
    }
}

/// Writes `{"keys": [...]}` for the given private keys' public halves.
fn write_jwks(path: &Path, keys: &[(&EncodingKey, Algorithm, &str)]) {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(key, alg, kid)| {
            let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, *alg).unwrap()).unwrap();
            jwk["kid"] = json!(kid);
            jwk["use"] = json!("sig");
            jwk
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&json!({ "keys": keys })).unwrap()).unwrap();
}

#[tokio::test]
async fn rs256_and_es256_through_a_jwks_file() {
    let rsa = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(P256_PEM.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    write_jwks(
        &path,
        &[
            (&rsa, Algorithm::RS256, "rsa-1"),
            (&ec, Algorithm::ES256, "ec-1"),
        ],
    );
    let auth = Authenticator::new(AuthConfig::new(JwksSource::File(path)))
        .await
        .unwrap();
    let base = claims("https://id.example/dave", 300);
    let bearer = |t: String| format!("Bearer {t}");

    let rs = sign(Algorithm::RS256, Some("rsa-1"), &base, &rsa);
    assert_eq!(
        auth.authenticate(Some(&bearer(rs))).await.unwrap().web_id,
        "https://id.example/dave"
    );
    let es = sign(Algorithm::ES256, Some("ec-1"), &base, &ec);
    assert!(auth.authenticate(Some(&bearer(es))).await.is_ok());
    // No kid: the only key of the token's algorithm is used.
    let rs_no_kid = sign(Algorithm::RS256, None, &base, &rsa);
    assert!(auth.authenticate(Some(&bearer(rs_no_kid))).await.is_ok());
    // A kid naming a key of another algorithm is no match.
    let crossed = sign(Algorithm::RS256, Some("ec-1"), &base, &rsa);
    assert_eq!(
        auth.authenticate(Some(&bearer(crossed))).await.err(),
        Some(AuthError::UnknownKey)
    );
    // RS512 is RSA but not an accepted algorithm.
    let rs512 = sign(Algorithm::RS512, Some("rsa-1"), &base, &rsa);
    assert_eq!(
        auth.authenticate(Some(&bearer(rs512))).await.err(),
        Some(AuthError::UnsupportedAlgorithm("RS512".into()))
    );
}

#[tokio::test]
async fn no_kid_with_two_candidate_keys_is_unknown() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let a = DevKey::load_or_create(one.path()).unwrap();
    let b = DevKey::load_or_create(two.path()).unwrap();
    let path = one.path().join("both.json");
    write_jwks(
        &path,
        &[
            (a.encoding_key(), Algorithm::EdDSA, a.kid()),
            (b.encoding_key(), Algorithm::EdDSA, b.kid()),
        ],
    );
    let auth = Authenticator::new(AuthConfig::new(JwksSource::File(path)))
        .await
        .unwrap();
    let token = sign(Algorithm::EdDSA, None, &claims("x", 300), a.encoding_key());
    let got = auth.authenticate(Some(&format!("Bearer {token}"))).await;
    assert_eq!(got.err(), Some(AuthError::UnknownKey));
}

#[tokio::test]
async fn bad_jwks_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = AuthConfig::new(JwksSource::File(dir.path().join("absent.json")));
    assert!(matches!(
        Authenticator::new(missing).await,
        Err(AuthError::JwksUnavailable(_))
    ));

    for (name, body) in [
        ("not-json", "nope".to_owned()),
        (
            "hmac-only",
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}).to_string(),
        ),
        ("empty", json!({"keys": []}).to_string()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let got = Authenticator::new(AuthConfig::new(JwksSource::File(path))).await;
        assert!(matches!(got, Err(AuthError::JwksUnavailable(_))), "{name}");
    }
    let dev = DevKey::load_or_create(dir.path()).unwrap();
    let no_aud = AuthConfig {
        audience: " ".into(),
        ..AuthConfig::new(JwksSource::File(dev.jwks_path()))
    };
    assert!(matches!(
        Authenticator::new(no_aud).await,
        Err(AuthError::Config(_))
    ));
}

#[tokio::test]
async fn cache_returns_same_principal_until_expiry() {
    let dev = dev_setup(None, 0).await;
    let token = dev.token(&claims("https://id.example/erin", 1));
    let first = dev.check(&token).await.unwrap();
    let second = dev.check(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "second call served from the cache"
    );

    // Wait until the token is past `exp` (leeway 0).
    while unix_now() <= first.expires_at {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(dev.check(&token).await.err(), Some(AuthError::Expired));
}

#[test]
fn jwks_source_parsing() {
    let url = |s: &str| JwksSource::parse(s).unwrap();
    assert!(matches!(
        url("https://idp.example/.well-known/jwks.json"),
        JwksSource::Url(_)
    ));
    assert!(matches!(
        url("http://127.0.0.1:8080/jwks"),
        JwksSource::Url(_)
    ));
    assert!(matches!(url("HTTP://localhost/jwks"), JwksSource::Url(_)));
    assert!(matches!(url("http://[::1]/jwks"), JwksSource::Url(_)));
    assert_eq!(
        url("/etc/jwks.json"),
        JwksSource::File("/etc/jwks.json".into())
    );
    assert_eq!(
        url("file:///etc/jwks.json"),
        JwksSource::File("/etc/jwks.json".into())
    );
    assert_eq!(url("jwks.json"), JwksSource::File("jwks.json".into()));
    assert!(matches!(
        JwksSource::parse("http://idp.example/jwks"),
        Err(AuthError::Config(_))
    ));
    assert!(matches!(JwksSource::parse("  "), Err(AuthError::Config(_))));
}

#[test]
fn public_messages_are_safe() {
    let internal = "/srv/secret/path/jwks.json: connection refused";
    for err in [
        AuthError::JwksUnavailable(internal.into()),
        AuthError::Config(internal.into()),
    ] {
        assert!(!err.public_message().contains("/srv"), "{err:?}");
        assert!(err.is_server_side());
    }
    assert_eq!(AuthError::Expired.reason(), "TOKEN_EXPIRED");
    assert!(!AuthError::BadSignature.is_server_side());
}
