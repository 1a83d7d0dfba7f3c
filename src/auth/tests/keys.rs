//! Which JWKS entries become verification keys: the checks `KeySet::parse` makes on each
//! entry, at their bounds.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::auth::dev::DevKey;
use crate::auth::jwks::KeySet;

const P256_PEM: &str = include_str!("../testdata/p256-test-only.pem");

fn usable(entry: &Value) -> bool {
    KeySet::parse(json!({ "keys": [entry] }).to_string().as_bytes()).is_ok()
}

fn with(entry: &Value, member: &str, value: Value) -> Value {
    let mut e = entry.clone();
    e[member] = value;
    e
}

#[test]
fn use_key_ops_and_the_declared_algorithm_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let key = DevKey::load_or_create(dir.path()).unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(key.jwks_path()).unwrap()).unwrap();
    let ed = &doc["keys"][0];
    assert!(usable(ed));
    assert!(!usable(&with(ed, "use", json!("enc"))));
    assert!(usable(&with(ed, "key_ops", json!(["verify"]))));
    assert!(!usable(&with(ed, "key_ops", json!(["sign"]))));
    // An Ed25519 key declared for another algorithm is not used for EdDSA.
    assert!(!usable(&with(ed, "alg", json!("ES256"))));
    let mut undeclared = ed.clone();
    undeclared.as_object_mut().unwrap().remove("alg");
    assert!(usable(&undeclared));
}

#[test]
fn rsa_moduli_of_fewer_than_2048_bits_are_refused() {
    let rsa = |n: &[u8]| json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"});
    assert!(usable(&rsa(&[0xc5; 256])));
    assert!(!usable(&rsa(&[0xc5; 255])));
    // Leading zero bytes are padding, not bits of the modulus.
    let mut padded = vec![0u8];
    padded.extend([0xc5; 256]);
    assert!(usable(&rsa(&padded)));
    let mut short = vec![0u8];
    short.extend([0xc5; 255]);
    assert!(!usable(&rsa(&short)));
}

#[test]
fn p256_coordinates_must_be_32_bytes() {
    let ec = EncodingKey::from_ec_pem(P256_PEM.as_bytes()).unwrap();
    let entry =
        serde_json::to_value(Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap()).unwrap();
    assert!(usable(&entry));
    for coordinate in ["x", "y"] {
        let short = with(&entry, coordinate, json!(URL_SAFE_NO_PAD.encode([7u8; 31])));
        assert!(!usable(&short), "{coordinate}");
    }
}
