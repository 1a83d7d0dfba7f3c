//! The `authorization` metadata of a call, through the transport's `grpc::auth::caller`: the
//! bearer scheme, the JOSE header, the signature (against a JWKS file, as in production), the
//! registered claims (`exp`, `nbf`, `aud`, `iss`) and the claims that become the caller's
//! identity (`sub`, `email`, names, scopes).
//!
//! Half of the inputs are taken as the raw header value. The other half are signed here with
//! the fixed key the JWKS names, so the fuzzer gets past the signature to the claims: a JOSE
//! header and a claims set, each either drawn field by field or raw JSON bytes of its own.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use entitlements::auth::{AuthConfig, Authenticator, JwksSource};
use entitlements::domain::WebId;
use entitlements::domain::ids::is_unsafe_char;
use entitlements::grpc::auth::{RecentCallers, caller};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tonic::metadata::MetadataValue;

const ISSUER: &str = "https://idp.fuzz.example";
const KID: &str = "fuzz-key";
/// Throwaway: signs tokens for this target only.
const SEED: [u8; 32] = [7; 32];

struct World {
    rt: tokio::runtime::Runtime,
    auth: Authenticator,
    recent: RecentCallers,
    key: SigningKey,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = SigningKey::from_bytes(&SEED);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"}
        ]});
        let dir = std::env::temp_dir().join(format!("entitlements-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks.to_string()).expect("JWKS file");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = AuthConfig::new(JwksSource::File(path));
        cfg.issuer = Some(ISSUER.to_owned());
        let auth = rt.block_on(Authenticator::new(cfg)).expect("authenticator");
        World {
            rt,
            auth,
            recent: RecentCallers::default(),
            key,
        }
    })
}

/// A JSON value of the kinds claims come in, drawn small.
fn value(u: &mut Unstructured, depth: u8) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<f64>()?),
        4 if depth < 2 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| value(u, depth + 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
        5 => json!(now() + i64::from(u.int_in_range(-100_000..=100_000)?)),
        _ => Value::String(u.arbitrary()?),
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A claim drawn: usually a plausible value, sometimes anything.
fn claim(
    u: &mut Unstructured,
    m: &mut Map<String, Value>,
    name: &str,
    plausible: impl FnOnce(&mut Unstructured) -> arbitrary::Result<Value>,
) -> arbitrary::Result<()> {
    match u.int_in_range(0..=5)? {
        0 => {}
        1 => {
            m.insert(name.into(), value(u, 0)?);
        }
        _ => {
            m.insert(name.into(), plausible(u)?);
        }
    }
    Ok(())
}

fn claims(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return u.arbitrary();
    }
    let mut m = Map::new();
    claim(u, &mut m, "sub", |u| Ok(Value::String(u.arbitrary()?)))?;
    claim(u, &mut m, "exp", |u| {
        Ok(json!(now() + i64::from(u.int_in_range(-120..=7200)?)))
    })?;
    claim(u, &mut m, "nbf", |u| {
        Ok(json!(now() + i64::from(u.int_in_range(-7200..=120)?)))
    })?;
    claim(u, &mut m, "aud", |u| {
        Ok(match u.int_in_range(0..=2)? {
            0 => json!("entitlements"),
            1 => json!(["other", "entitlements"]),
            _ => Value::String(u.arbitrary()?),
        })
    })?;
    claim(u, &mut m, "iss", |u| {
        Ok(if u.ratio(3, 4)? {
            json!(ISSUER)
        } else {
            Value::String(u.arbitrary()?)
        })
    })?;
    for name in ["email", "given_name", "family_name", "name"] {
        claim(u, &mut m, name, |u| Ok(Value::String(u.arbitrary()?)))?;
    }
    for name in ["scope", "scp"] {
        claim(u, &mut m, name, |u| {
            Ok(match u.int_in_range(0..=2)? {
                0 => json!("entitlements.check entitlements.admin"),
                1 => Value::Array(
                    (0..u.int_in_range(0..=3)?)
                        .map(|_| u.arbitrary::<String>().map(Value::String))
                        .collect::<arbitrary::Result<_>>()?,
                ),
                _ => Value::String(u.arbitrary()?),
            })
        })?;
    }
    Ok(serde_json::to_vec(&m).unwrap_or_default())
}

fn header(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    if u.ratio(1, 8)? {
        return u.arbitrary();
    }
    let mut m = Map::new();
    claim(u, &mut m, "alg", |u| {
        Ok(json!(*u.choose(&[
            "EdDSA", "EdDSA", "EdDSA", "RS256", "ES256", "none", "HS256"
        ])?))
    })?;
    claim(u, &mut m, "kid", |u| {
        Ok(json!(if u.ratio(7, 8)? { KID } else { "other" }))
    })?;
    claim(u, &mut m, "typ", |u| {
        Ok(json!(*u.choose(&[
            "JWT",
            "at+jwt",
            "application/at+jwt",
            "dpop+jwt"
        ])?))
    })?;
    if u.ratio(1, 16)? {
        m.insert("crit".into(), json!(["b64"]));
    }
    Ok(serde_json::to_vec(&m).unwrap_or_default())
}

/// `Bearer <header>.<claims>.<signature>`, signed with the JWKS's key.
fn signed(u: &mut Unstructured, key: &SigningKey) -> arbitrary::Result<Vec<u8>> {
    let h = URL_SAFE_NO_PAD.encode(header(u)?);
    let c = URL_SAFE_NO_PAD.encode(claims(u)?);
    let input = format!("{h}.{c}");
    let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes());
    let scheme = if u.ratio(15, 16)? { "Bearer" } else { "bEaReR" };
    Ok(format!("{scheme} {input}.{sig}").into_bytes())
}

fn check(data: &[u8]) {
    let w = world();
    let mut u = Unstructured::new(data);
    let Ok(signed_token) = u.arbitrary::<bool>() else {
        return;
    };
    let raw = if signed_token {
        match signed(&mut u, &w.key) {
            Ok(raw) => raw,
            Err(_) => return,
        }
    } else {
        u.take_rest().to_vec()
    };
    let mut req = tonic::Request::new(());
    // What HTTP/2 can carry at all; anything else never reaches the service.
    if let Ok(v) = MetadataValue::try_from(raw.as_slice()) {
        req.metadata_mut().insert("authorization", v);
    } else {
        return;
    }
    match w.rt.block_on(caller(&w.auth, &w.recent, &req, false)) {
        Ok(c) => {
            // Only a token signed with the key: nothing unsigned gets an identity.
            assert!(signed_token);
            assert_eq!(WebId::parse(c.web_id.as_str()).as_ref(), Ok(&c.web_id));
            for name in [&c.given_name, &c.family_name] {
                assert!(name.chars().count() <= 200);
                assert!(!name.chars().any(is_unsafe_char), "{name:?}");
                assert_eq!(name, name.trim());
            }
        }
        Err(s) => {
            assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| check(data));
