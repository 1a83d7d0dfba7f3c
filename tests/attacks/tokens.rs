//! Tokens that must not pass (RFC 8725): other audiences and issuers, stale or premature
//! tokens, other kinds of JWT, unknown critical headers, and oversized ones.

use serde_json::{Value, json};

use super::{idp_app, mallory, refused, whoami};
use crate::support::*;

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
    assert_eq!(
        whoami(&app, &idp.ed.sign(&mallory(), |_| {}))
            .await
            .unwrap(),
        "mallory"
    );
}

crate::both_backends!(misdirected_and_stale_tokens_are_refused);
