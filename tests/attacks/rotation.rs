//! A JWKS file rotated under a running server.

use serde_json::json;

use super::{idp_app, mallory, refused, whoami};
use crate::support::*;

/// Key rotation through the JWKS file: a key published later works without a restart, and a
/// key removed (say it leaked) stops at once, even for a token the server has just accepted
/// and keeps in its caches.
async fn a_removed_key_stops_at_once_and_a_new_key_works(backend: Backend) {
    let (app, idp) = idp_app(backend).await;
    let next = IdpKey::ed25519("idp-ed-2");
    let token_next = next.sign(&mallory(), |_| {});
    refused(
        whoami(&app, &token_next).await,
        "TOKEN_KEY_UNKNOWN",
        "a key not yet published",
    );
    idp.publish(&[&idp.ed, &idp.rsa, &next]);
    eventually("the new key is accepted", || {
        let (app, token) = (&app, &token_next);
        async move { whoami(app, token).await.is_ok() }
    })
    .await;

    let stolen = idp.rsa.sign(&mallory(), |_| {});
    assert_eq!(whoami(&app, &stolen).await.unwrap(), "mallory");
    assert_eq!(whoami(&app, &stolen).await.unwrap(), "mallory");
    idp.publish(&[&idp.ed, &next]);
    // Tokens the server has never seen, so never cached, show when the removal is read...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for i in 0.. {
        let mut claims = mallory();
        claims["sub"] = json!(format!("probe-{i}"));
        if whoami(&app, &idp.rsa.sign(&claims, |_| {})).await.is_err() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the removal was never read"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // ...and from then on the token accepted a moment ago is refused too.
    refused(
        whoami(&app, &stolen).await,
        "TOKEN_KEY_UNKNOWN",
        "a cached token of the removed key",
    );
    assert_eq!(whoami(&app, &token_next).await.unwrap(), "mallory");
}

crate::both_backends!(a_removed_key_stops_at_once_and_a_new_key_works);
