//! Tokens that must not pass (RFC 8725): forged signatures and keys, other audiences and
//! issuers, stale or premature tokens, other kinds of JWT, unknown critical headers, and
//! oversized ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{idp_app, mallory, refused, whoami};
use crate::support::*;

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A token with this header and claims and `signature` as its third part.
fn compact(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| b64(&serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(header), part(claims))
}

/// Forged signatures and keys: none of these was signed by a key of the JWKS in the way the
/// JWKS says it signs.
async fn forged_tokens_are_refused(backend: Backend) {
    let (app, idp) = idp_app(backend).await;
    let claims = mallory();
    // Controls: the provider's real keys are accepted.
    for key in [&idp.ed, &idp.rsa] {
        assert_eq!(
            whoami(&app, &key.sign(&claims, |_| {})).await.unwrap(),
            "mallory"
        );
    }

    let genuine = idp.ed.sign(&claims, |_| {});
    let (signed, signature) = genuine.rsplit_once('.').unwrap();

    // alg "none" (RFC 8725 2.1), in any spelling, with or without a signature part.
    for alg in ["none", "None", "NONE"] {
        for signature in ["", signature] {
            let token = compact(&json!({"alg": alg, "typ": "JWT"}), &claims, signature);
            refused(
                whoami(&app, &token).await,
                "TOKEN_ALGORITHM_UNSUPPORTED",
                alg,
            );
        }
    }

    // Algorithm confusion (RFC 8725 2.1): HMAC keyed with what is public, under the real kid.
    let rsa_n = URL_SAFE_NO_PAD
        .decode(idp.rsa.jwk["n"].as_str().unwrap())
        .unwrap();
    let public_secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the RSA JWK", serde_json::to_vec(&idp.rsa.jwk).unwrap()),
        ("the JWKS document", idp.jwks_bytes()),
        ("the RSA modulus", rsa_n),
        ("the Ed25519 JWK", serde_json::to_vec(&idp.ed.jwk).unwrap()),
    ];
    for (what, secret) in &public_secrets {
        for (alg, kid) in [
            (Algorithm::HS256, &idp.rsa.kid),
            (Algorithm::HS384, &idp.rsa.kid),
            (Algorithm::HS512, &idp.ed.kid),
        ] {
            let mut header = Header::new(alg);
            header.kid = Some(kid.clone());
            let token =
                jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
            refused(
                whoami(&app, &token).await,
                "TOKEN_ALGORITHM_UNSUPPORTED",
                &format!("{alg:?} keyed with {what}"),
            );
        }
    }
    // An accepted algorithm named against a key of another type: no key is both.
    let rs_on_ed = idp.rsa.sign(&claims, |h| h.kid = Some(idp.ed.kid.clone()));
    refused(
        whoami(&app, &rs_on_ed).await,
        "TOKEN_KEY_UNKNOWN",
        "RS256 under the EdDSA kid",
    );
    let ed_on_rsa = idp.ed.sign(&claims, |h| h.kid = Some(idp.rsa.kid.clone()));
    refused(
        whoami(&app, &ed_on_rsa).await,
        "TOKEN_KEY_UNKNOWN",
        "EdDSA under the RSA kid",
    );

    // Keys the provider never published (RFC 8725 3.10: the key comes from the JWKS only).
    let stranger = IdpKey::ed25519("stranger-1");
    refused(
        whoami(&app, &stranger.sign(&claims, |_| {})).await,
        "TOKEN_KEY_UNKNOWN",
        "unknown kid",
    );
    let embedded = stranger.sign(&claims, |h| {
        h.jwk = Some(serde_json::from_value(stranger.jwk.clone()).unwrap());
        h.jku = Some("https://attacker.example/jwks.json".into());
        h.x5u = Some("https://attacker.example/cert.pem".into());
    });
    refused(
        whoami(&app, &embedded).await,
        "TOKEN_KEY_UNKNOWN",
        "own key in jwk/jku/x5u",
    );
    for attack in ["stranger under the real kid", "stranger without a kid"] {
        let token = stranger.sign(&claims, |h| {
            h.kid = attack.contains("real").then(|| idp.ed.kid.clone());
        });
        refused(
            whoami(&app, &token).await,
            "TOKEN_SIGNATURE_INVALID",
            attack,
        );
    }

    // A real signature moved onto other claims, or taken away.
    let (head, _) = signed.split_once('.').unwrap();
    let mut escalated = claims.clone();
    escalated["scope"] = json!("entitlements.admin");
    let moved = format!(
        "{head}.{}.{signature}",
        b64(&serde_json::to_vec(&escalated).unwrap())
    );
    refused(
        whoami(&app, &moved).await,
        "TOKEN_SIGNATURE_INVALID",
        "signature moved",
    );
    let stripped = format!("{signed}.");
    refused(
        whoami(&app, &stripped).await,
        "TOKEN_SIGNATURE_INVALID",
        "signature stripped",
    );
}

/// Tokens signed by the provider but not for us, not now, or not of the kind we accept.
async fn misdirected_and_stale_tokens_are_refused(backend: Backend) {
    let (app, idp) = idp_app(backend).await;
    let now = now_secs();
    let with = |k: &str, v: Value| {
        let mut c = mallory();
        c[k] = v;
        idp.ed.sign(&c, |_| {})
    };
    let without = |k: &str| {
        let mut c = mallory();
        c.as_object_mut().unwrap().remove(k);
        idp.ed.sign(&c, |_| {})
    };
    // The server tolerates 30 s of clock skew.
    for (attack, token, why) in [
        ("expired", with("exp", json!(now - 60)), "TOKEN_EXPIRED"),
        (
            "not yet valid",
            with("nbf", json!(now + 300)),
            "TOKEN_NOT_YET_VALID",
        ),
        (
            "another audience",
            with("aud", json!("billing")),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        (
            "audiences without us",
            with("aud", json!(["billing", "crm"])),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        ("no audience", without("aud"), "TOKEN_AUDIENCE_MISMATCH"),
        (
            "another issuer",
            with("iss", json!("https://evil.example")),
            "TOKEN_ISSUER_MISMATCH",
        ),
        (
            "issuer look-alike",
            with("iss", json!(format!("{IDP_ISSUER}/"))),
            "TOKEN_ISSUER_MISMATCH",
        ),
        ("no issuer", without("iss"), "TOKEN_ISSUER_MISMATCH"),
        ("no subject", without("sub"), "TOKEN_SUBJECT_MISSING"),
        ("no expiry", without("exp"), "TOKEN_MALFORMED"),
    ] {
        refused(whoami(&app, &token).await, why, attack);
    }
    assert_eq!(
        whoami(&app, &with("aud", json!(["billing", "entitlements"])))
            .await
            .unwrap(),
        "mallory",
        "one of several audiences"
    );

    // Explicit typing (RFC 8725 3.11): other kinds of JWT from the same provider.
    for typ in [
        "secevent+jwt",
        "dpop+jwt",
        "application/secevent+jwt",
        "id_token+jwt",
    ] {
        let token = idp.ed.sign(&mallory(), |h| h.typ = Some(typ.into()));
        refused(whoami(&app, &token).await, "TOKEN_MALFORMED", typ);
    }
    for typ in [
        None,
        Some("JWT"),
        Some("at+jwt"),
        Some("application/at+JWT"),
    ] {
        let token = idp.ed.sign(&mallory(), |h| h.typ = typ.map(str::to_owned));
        assert!(whoami(&app, &token).await.is_ok(), "typ {typ:?}");
    }

    // A critical header extension we do not understand (RFC 7515 4.1.11).
    for crit in [
        vec!["exp"],
        vec!["b64"],
        vec!["https://attacker.example/ext"],
    ] {
        let token = idp.ed.sign(&mallory(), |h| {
            h.crit = Some(crit.iter().map(|s| (*s).to_owned()).collect());
        });
        refused(
            whoami(&app, &token).await,
            "TOKEN_MALFORMED",
            &format!("crit {crit:?}"),
        );
    }

    // Oversized tokens cost no verification: refused by their length (16 KiB)...
    let padded = with("pad", json!("x".repeat(13 * 1024)));
    assert!(padded.len() > 16 * 1024, "{}", padded.len());
    refused(
        whoami(&app, &padded).await,
        "TOKEN_MALFORMED",
        "a 17 KiB token",
    );
    // ...or, far beyond any real token, by the transport, and the server carries on.
    let huge = with("pad", json!("x".repeat(512 * 1024)));
    whoami(&app, &huge).await.expect_err("a 700 KiB token");
    // The transport closes that connection; the client's next call may still be sent on it
    // and fail with it (CANCELLED, "connection closed"). The server itself goes on: a new
    // connection is served, within a deadline.
    let good = idp.ed.sign(&mallory(), |_| {});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match whoami(&app, &good).await {
            Ok(who) => {
                assert_eq!(who, "mallory");
                break;
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Cancelled | tonic::Code::Unavailable | tonic::Code::Unknown
                ) =>
            {
                assert!(std::time::Instant::now() < deadline, "{s:?}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
}

crate::both_backends!(
    forged_tokens_are_refused,
    misdirected_and_stale_tokens_are_refused,
);
