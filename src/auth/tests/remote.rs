//! A JWKS served by a one-response-per-connection HTTP/1.1 server on loopback.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::files::{jwks_of, padded};
use super::{bearer, two_keys};
use crate::auth::{AuthConfig, AuthError, Authenticator, JwksSource};

struct JwksServer {
    url: url::Url,
    /// `None` answers 500.
    body: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
    /// Whether answers carry a `Content-Length` (else the body ends when the connection does).
    length: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(body: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let length = Arc::new(AtomicBool::new(true));
        let (b, h, l) = (Arc::clone(&body), Arc::clone(&hits), Arc::clone(&length));
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let current = b.lock().unwrap().clone();
                let (status, text) = match current {
                    Some(text) => ("200 OK", text),
                    None => ("500 Internal Server Error", String::new()),
                };
                let length = if l.load(Ordering::SeqCst) {
                    format!("Content-Length: {}\r\n", text.len())
                } else {
                    String::new()
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{text}"
                );
                let _ = conn.write_all(resp.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self {
            url: url.parse().unwrap(),
            body,
            hits,
            length,
            task,
        }
    }

    fn serve(&self, body: Option<String>) {
        *self.body.lock().unwrap() = body;
    }

    fn announce_length(&self, yes: bool) {
        self.length.store(yes, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn unknown_kid_refreshes_once_per_floor() {
    let keys = two_keys();
    let server = JwksServer::start(Some(jwks_of(&[&keys.a]))).await;
    let auth = Authenticator::new(AuthConfig::new(JwksSource::Url(server.url.clone())))
        .await
        .unwrap();
    assert_eq!(server.hits(), 1, "fetched at start");

    auth.authenticate(Some(&bearer(&keys.a, keys.a.kid(), "alice")))
        .await
        .unwrap();
    assert_eq!(server.hits(), 1, "a known kid needs no fetch");

    // The provider rotates in key B; the first token signed with it triggers a refresh.
    server.serve(Some(jwks_of(&[&keys.a, &keys.b])));
    let p = auth
        .authenticate(Some(&bearer(&keys.b, keys.b.kid(), "bob")))
        .await
        .unwrap();
    assert_eq!(p.web_id, "bob");
    assert_eq!(server.hits(), 2);

    // Another unknown kid within the floor is refused without fetching.
    let got = auth
        .authenticate(Some(&bearer(&keys.b, "made-up", "eve")))
        .await;
    assert_eq!(got.err(), Some(AuthError::UnknownKey));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn background_refresh_drops_revoked_keys_from_the_cache() {
    let keys = two_keys();
    let server = JwksServer::start(Some(jwks_of(&[&keys.a, &keys.b]))).await;
    let cfg = AuthConfig {
        refresh_every: Duration::from_millis(100),
        ..AuthConfig::new(JwksSource::Url(server.url.clone()))
    };
    let auth = Authenticator::new(cfg).await.unwrap();
    let token_a = bearer(&keys.a, keys.a.kid(), "alice");
    auth.authenticate(Some(&token_a)).await.unwrap();

    // Key A is revoked at the provider; a periodic refresh notices.
    server.serve(Some(jwks_of(&[&keys.b])));
    let seen = server.hits();
    for _ in 0..50 {
        if server.hits() > seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.hits() > seen, "the background refresh ran");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = auth.authenticate(Some(&token_a)).await;
    assert_eq!(
        got.err(),
        Some(AuthError::UnknownKey),
        "the cached principal was dropped"
    );

    // A failing provider leaves the last good keys in place.
    server.serve(None);
    let seen = server.hits();
    while server.hits() <= seen + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    auth.authenticate(Some(&bearer(&keys.b, keys.b.kid(), "bob")))
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_jwks_fails_at_start() {
    let server = JwksServer::start(None).await;
    let got = Authenticator::new(AuthConfig::new(JwksSource::Url(server.url.clone()))).await;
    let err = got.err().unwrap();
    assert!(matches!(err, AuthError::JwksUnavailable(_)), "{err:?}");
    assert!(!err.public_message().contains("127.0.0.1"));
}

/// The size bound holds whether the provider announces the length or not: with a
/// `Content-Length` the answer is refused before its body is read, without one while reading.
#[tokio::test]
async fn a_served_jwks_of_up_to_one_mib_is_read() {
    let keys = two_keys();
    let doc = jwks_of(&[&keys.a]);
    let server = JwksServer::start(None).await;
    let source = JwksSource::Url(server.url.clone());
    for announced in [true, false] {
        server.announce_length(announced);
        server.serve(Some(padded(&doc, 1024 * 1024)));
        let got = Authenticator::new(AuthConfig::new(source.clone())).await;
        assert!(got.is_ok(), "length announced: {announced}: {got:?}");
        server.serve(Some(padded(&doc, 1024 * 1024 + 1)));
        let got = Authenticator::new(AuthConfig::new(source.clone())).await;
        assert!(
            matches!(&got, Err(AuthError::JwksUnavailable(m)) if m.contains("too large")),
            "length announced: {announced}: {got:?}"
        );
    }
}
