//! Keys from a JWKS file: RS256 and ES256 with the fixtures in `testdata/`, key selection
//! without `kid`, and JWKS documents that must be refused at start.

use std::path::Path;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::{claims, sign};
use crate::auth::dev::DevKey;
use crate::auth::{AuthConfig, AuthError, Authenticator, JwksSource};

const RSA_PEM: &str = include_str!("../testdata/rsa2048-test-only.pem");
const P256_PEM: &str = include_str!("../testdata/p256-test-only.pem");

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

/// The JWKS listing the public keys of these dev keys.
pub(super) fn jwks_of(keys: &[&DevKey]) -> String {
    let mut all = Vec::new();
    for key in keys {
        let doc: Value = serde_json::from_slice(&std::fs::read(key.jwks_path()).unwrap()).unwrap();
        all.extend(doc["keys"].as_array().unwrap().iter().cloned());
    }
    serde_json::json!({ "keys": all }).to_string()
}

#[tokio::test]
async fn no_kid_with_two_candidate_keys_is_unknown() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let a = DevKey::load_or_create(one.path()).unwrap();
    let b = DevKey::load_or_create(two.path()).unwrap();
    let path = one.path().join("both.json");
    std::fs::write(&path, jwks_of(&[&a, &b])).unwrap();
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
        let got = Authenticator::new(AuthConfig::new(JwksSource::File(path.clone()))).await;
        // For our logs: the error names the file.
        let shown = path.display().to_string();
        assert!(
            matches!(&got, Err(AuthError::JwksUnavailable(m)) if m.contains(&shown)),
            "{name}: {got:?}"
        );
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

/// `doc` with trailing spaces (the same JSON) up to exactly `len` bytes.
pub(super) fn padded(doc: &str, len: usize) -> String {
    let mut s = doc.to_owned();
    s.extend(std::iter::repeat_n(' ', len - doc.len()));
    s
}

#[tokio::test]
async fn a_jwks_file_of_up_to_one_mib_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let doc = jwks_of(&[&key]);
    let path = dir.path().join("large.json");
    std::fs::write(&path, padded(&doc, 1024 * 1024)).unwrap();
    let source = JwksSource::File(path.clone());
    assert!(
        Authenticator::new(AuthConfig::new(source.clone()))
            .await
            .is_ok()
    );
    std::fs::write(&path, padded(&doc, 1024 * 1024 + 1)).unwrap();
    let got = Authenticator::new(AuthConfig::new(source)).await;
    assert!(
        matches!(&got, Err(AuthError::JwksUnavailable(m)) if m.contains("too large")),
        "{got:?}"
    );
}
