//! Key rotation through a JWKS file: a key added works at once, a key removed stops working
//! once a read sees it gone, and no cached verification outlives the key set that made it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::files::jwks_of;
use super::{Keys, bearer, two_keys};
use crate::auth::dev::DevKey;
use crate::auth::{AuthConfig, AuthError, Authenticator, JwksSource};

/// Replaces the file whole, as an operator's tooling (or a Kubernetes volume) would.
fn publish(path: &Path, keys: &[&DevKey]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, jwks_of(keys)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn file_auth(
    keys: &[&DevKey],
    refresh_every: Duration,
) -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    publish(&path, keys);
    let cfg = AuthConfig {
        refresh_every,
        ..AuthConfig::new(JwksSource::File(path))
    };
    (dir, Authenticator::new(cfg).await.unwrap())
}

fn jwks_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("jwks.json")
}

#[tokio::test]
async fn a_key_added_to_the_file_works_at_once() {
    let Keys { a, b, .. } = &two_keys();
    // No poll within the test: the unknown `kid` alone makes it read the file again.
    let (dir, auth) = file_auth(&[a], Duration::from_secs(3600)).await;
    auth.authenticate(Some(&bearer(a, a.kid(), "alice")))
        .await
        .unwrap();
    publish(&jwks_path(&dir), &[a, b]);
    let p = auth
        .authenticate(Some(&bearer(b, b.kid(), "bob")))
        .await
        .unwrap();
    assert_eq!(p.web_id, "bob");
}

#[tokio::test]
async fn a_key_removed_from_the_file_stops_working() {
    let Keys { a, b, .. } = &two_keys();
    let (dir, auth) = file_auth(&[a, b], Duration::from_millis(50)).await;
    let cached = bearer(a, a.kid(), "alice");
    auth.authenticate(Some(&cached)).await.unwrap();
    auth.authenticate(Some(&cached)).await.unwrap();

    publish(&jwks_path(&dir), &[b]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while auth.authenticate(Some(&cached)).await.is_ok() {
        assert!(Instant::now() < deadline, "the removed key still verifies");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        auth.authenticate(Some(&cached)).await.err(),
        Some(AuthError::UnknownKey)
    );
    let fresh = bearer(a, a.kid(), "alice-again");
    assert_eq!(
        auth.authenticate(Some(&fresh)).await.err(),
        Some(AuthError::UnknownKey)
    );

    // A file that is briefly unusable (half-written, emptied) leaves the last good keys.
    std::fs::write(jwks_path(&dir), "{\"keys\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    auth.authenticate(Some(&bearer(b, b.kid(), "bob")))
        .await
        .unwrap();
    std::fs::remove_file(jwks_path(&dir)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    auth.authenticate(Some(&bearer(b, b.kid(), "bob-2")))
        .await
        .unwrap();
}

/// Verifications still running when the refresh that removes their key completes may finish
/// after it (and after it cleared the cache); what they cache must not outlive the old keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_racing_a_key_removal_are_not_served_afterwards() {
    let Keys { a, b, .. } = &two_keys();
    let (dir, auth) = file_auth(&[a, b], Duration::from_secs(3600)).await;
    let path = jwks_path(&dir);
    for round in 0..30 {
        publish(&path, &[a, b]);
        auth.reload_now().await.unwrap();
        let tokens: Vec<String> = (0..48)
            .map(|i| bearer(a, a.kid(), &format!("r{round}-{i}")))
            .collect();
        let racing: Vec<_> = tokens
            .iter()
            .cloned()
            .map(|t| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.authenticate(Some(&t)).await })
            })
            .collect();
        publish(&path, &[b]);
        auth.reload_now().await.unwrap();
        // Whatever the racing calls answered, the refresh has completed: key A is gone.
        for r in racing {
            let _ = r.await.unwrap();
        }
        for t in &tokens {
            assert_eq!(
                auth.authenticate(Some(t)).await.err(),
                Some(AuthError::UnknownKey),
                "round {round}: a token of the removed key was served from the cache"
            );
        }
    }
}

/// The key generation (which the transport's recent callers are keyed by) moves when the keys
/// change, not when the same keys are published again in another order.
#[tokio::test]
async fn the_generation_moves_only_when_the_keys_change() {
    let Keys { a, b, .. } = &two_keys();
    let (dir, auth) = file_auth(&[a, b], Duration::from_secs(3600)).await;
    let path = jwks_path(&dir);
    let start = auth.key_generation();
    publish(&path, &[b, a]);
    auth.reload_now().await.unwrap();
    assert_eq!(auth.key_generation(), start, "the same keys, reordered");
    publish(&path, &[a]);
    auth.reload_now().await.unwrap();
    let removed = auth.key_generation();
    assert_ne!(removed, start);
    publish(&path, &[a, b]);
    auth.reload_now().await.unwrap();
    assert_ne!(auth.key_generation(), removed);
    assert_ne!(auth.key_generation(), start);
    // Debug shows how many keys there are, never the keys.
    let shown = format!("{auth:?}");
    assert!(shown.contains("keys: 2"), "{shown}");
}
