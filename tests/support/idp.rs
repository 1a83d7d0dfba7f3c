//! A stand-in identity provider: signing keys of its own, its JWKS as a file the server is
//! started with (not dev mode), and tokens with whatever header and claims a test needs.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use entitlements::auth::dev::MintRequest;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const IDP_ISSUER: &str = "https://idp.test.example";
/// The fixture key of the `auth` unit tests (`src/auth/testdata`): protects nothing.
const RSA_PEM: &str = include_str!("../../src/auth/testdata/rsa2048-test-only.pem");

/// One signing key and its public JWK.
pub struct IdpKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl IdpKey {
    /// A fresh Ed25519 key.
    pub fn ed25519(kid: &str) -> IdpKey {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().expect("pkcs8");
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        IdpKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    /// The RSA fixture (there is no RSA key generator among the dependencies).
    pub fn rsa(kid: &str) -> IdpKey {
        let encoding = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("rsa fixture");
        let mut jwk = serde_json::to_value(
            Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("rsa jwk"),
        )
        .expect("jwk json");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        IdpKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding,
            jwk,
        }
    }

    /// A token with this key, `kid` and the given claims; `edit` may change the header.
    pub fn sign(&self, claims: &Value, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        edit(&mut header);
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

pub struct Idp {
    dir: tempfile::TempDir,
    /// Signs the tokens of `TestApp::token`.
    pub ed: IdpKey,
    pub rsa: IdpKey,
}

impl Idp {
    /// Publishes an Ed25519 and an RSA key.
    pub fn new() -> Idp {
        let idp = Idp {
            dir: tempfile::tempdir().expect("tempdir"),
            ed: IdpKey::ed25519("idp-ed-1"),
            rsa: IdpKey::rsa("idp-rsa-1"),
        };
        idp.publish(&[&idp.ed, &idp.rsa]);
        idp
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// Replaces the JWKS file whole (a rename), as a mounted Secret is updated.
    pub fn publish(&self, keys: &[&IdpKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        write_replacing(&self.jwks_path(), &json!({ "keys": jwks }));
    }

    /// The JWKS document as served, e.g. to misuse it as an HMAC secret.
    pub fn jwks_bytes(&self) -> Vec<u8> {
        std::fs::read(self.jwks_path()).expect("jwks")
    }

    /// Claims of a valid one-hour token for `sub`.
    pub fn claims(sub: &str) -> Value {
        let now = now_secs();
        json!({"iss": IDP_ISSUER, "aud": "entitlements", "sub": sub, "iat": now, "exp": now + 3600})
    }

    /// What `TestApp::token` asks for, signed with [`Idp::ed`].
    pub fn mint(&self, req: &MintRequest) -> String {
        let mut claims = Self::claims(&req.sub);
        for (name, value) in [
            ("email", &req.email),
            ("given_name", &req.given_name),
            ("family_name", &req.family_name),
        ] {
            if let Some(value) = value {
                claims[name] = json!(value);
            }
        }
        if !req.scopes.is_empty() {
            claims["scope"] = json!(req.scopes.join(" "));
        }
        self.ed.sign(&claims, |_| {})
    }
}

fn write_replacing(path: &Path, doc: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(doc).expect("json")).expect("write jwks");
    std::fs::rename(&tmp, path).expect("rename jwks");
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
