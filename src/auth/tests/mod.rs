//! Authenticator tests with real keys and signatures: EdDSA from the dev key, RS256 and ES256
//! from the fixtures in `testdata/`.

mod files;
mod keys;
mod remote;
mod rotation;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::cache::unix_now;
use super::dev::{DEV_ISSUER, DevKey, MintRequest};
use super::{AuthConfig, AuthError, Authenticator, JwksSource, SCOPE_ADMIN, SCOPE_CHECK};

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

struct Keys {
    _dirs: Vec<tempfile::TempDir>,
    a: DevKey,
    b: DevKey,
}

fn two_keys() -> Keys {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = DevKey::load_or_create(da.path()).unwrap();
    let b = DevKey::load_or_create(db.path()).unwrap();
    Keys {
        _dirs: vec![da, db],
        a,
        b,
    }
}

fn bearer(key: &DevKey, kid: &str, sub: &str) -> String {
    format!(
        "Bearer {}",
        sign(
            Algorithm::EdDSA,
            Some(kid),
            &claims(sub, 300),
            key.encoding_key()
        )
    )
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
async fn only_access_token_types_are_accepted() {
    let dev = dev_setup(Some(DEV_ISSUER), 30).await;
    let base = claims("https://id.example/gina", 300);
    let typed = |typ: Option<&str>| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(dev.key.kid().to_owned());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, &base, dev.key.encoding_key()).unwrap()
    };
    for typ in [
        None,
        Some("JWT"),
        Some("at+jwt"),
        Some("application/AT+JWT"),
    ] {
        assert!(dev.check(&typed(typ)).await.is_ok(), "{typ:?}");
    }
    // Signed by the trusted key, but a security event is not an access token.
    let got = dev.check(&typed(Some("secevent+jwt"))).await.err();
    assert_eq!(got, Some(AuthError::UnsupportedType("secevent+jwt".into())));
    assert_eq!(got.unwrap().reason().as_str(), "TOKEN_MALFORMED");
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

#[tokio::test]
async fn cache_returns_same_principal_until_expiry() {
    let dev = dev_setup(None, 0).await;
    // Long enough that a loaded machine still gets both checks in before `exp`; the wait
    // below polls until it has passed.
    let token = dev.token(&claims("https://id.example/erin", 3));
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
    assert_eq!(AuthError::Expired.reason().as_str(), "TOKEN_EXPIRED");
    assert!(!AuthError::BadSignature.is_server_side());
}

#[tokio::test]
async fn authenticator_is_shareable_across_tasks() {
    fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let dev = dev_setup(None, 30).await;
    send_sync(&dev.auth);
    let fut = dev.auth.authenticate(None);
    send(&fut);
    let token = dev
        .key
        .mint(&MintRequest::new("https://id.example/frank"))
        .unwrap();
    let header = format!("Bearer {token}");
    let auth = dev.auth.clone();
    let joined = tokio::spawn(async move { auth.authenticate(Some(&header)).await }).await;
    assert_eq!(joined.unwrap().unwrap().web_id, "https://id.example/frank");
}

#[test]
fn verifier_errors_map_to_ours() {
    use jsonwebtoken::errors::{Error, ErrorKind as K};
    let map = |kind: K| super::error::from_jwt(&Error::from(kind));
    let malformed = |text: &str| AuthError::MalformedToken(text.into());
    assert_eq!(
        map(K::InvalidClaimFormat("exp".into())),
        malformed("claim `exp` has the wrong type")
    );
    let json = serde_json::from_str::<Value>("{").unwrap_err();
    assert_eq!(
        map(K::Json(Arc::new(json))),
        malformed("the claims do not have the expected shape")
    );
    assert_eq!(
        map(K::MissingRequiredClaim("exp".into())),
        malformed("missing required claim `exp`")
    );
    // A key of the JWKS the crypto backend cannot use: the token is not verified.
    for kind in [
        K::InvalidAlgorithm,
        K::InvalidRsaKey("n".into()),
        K::InvalidEcdsaKey,
        K::InvalidKeyFormat,
    ] {
        assert_eq!(map(kind), AuthError::BadSignature);
    }
    assert_eq!(
        map(K::InvalidToken),
        malformed("not a well-formed JWS compact token")
    );
}

#[test]
fn each_rejection_has_its_own_public_message() {
    let all = [
        AuthError::MissingToken,
        AuthError::MalformedHeader,
        AuthError::MalformedToken("x".into()),
        AuthError::UnsupportedAlgorithm("HS256".into()),
        AuthError::UnsupportedType("JOSE".into()),
        AuthError::UnknownKey,
        AuthError::BadSignature,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::MissingSubject,
        AuthError::JwksUnavailable("x".into()),
        AuthError::Config("x".into()),
    ];
    let messages: std::collections::HashSet<String> =
        all.iter().map(AuthError::public_message).collect();
    assert_eq!(messages.len(), all.len(), "{messages:?}");
    assert_eq!(AuthError::Expired.public_message(), "the token has expired");
    assert_eq!(
        AuthError::UnsupportedAlgorithm("HS256".into()).public_message(),
        "token algorithm `HS256` is not accepted (use RS256, ES256 or EdDSA)"
    );
}
