#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_stream::StreamExt as _;
use tonic::transport::server::Connected as _;

use super::*;
use crate::transport::test_pki::{ca, leaf};
use crate::transport::{DEFAULT_RELOAD_EVERY, TlsSettings};

#[tokio::test]
async fn a_silent_client_holds_up_nobody_and_the_peer_address_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let (cert, key) = leaf(&ca, "server");
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    let settings = TlsSettings {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        client_ca: None,
        reload_every: DEFAULT_RELOAD_EVERY,
    };
    let (current, _) = CurrentTls::load(settings).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut incoming = tls_incoming(listener, current, stop_rx);

    // Connects and never says a word: its handshake waits in a task of its own.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client_addr = tcp.local_addr().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let _client = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), incoming.next())
        .await
        .expect("the second client is not held up by the silent first")
        .expect("a connection")
        .expect("no error");
    assert!(served.get_ref().0.nodelay().unwrap(), "TCP_NODELAY");

    // What the RPC layer reads the peer's address from.
    let mut extensions = http::Extensions::new();
    extensions.insert(served.connect_info());
    let tcp = tcp_connect_info(&extensions).expect("the TCP connect info under TLS");
    assert_eq!(tcp.remote_addr(), Some(client_addr));
    assert_eq!(tcp.local_addr(), Some(addr));

    // Stopped, and the silent client gone: the stream ends.
    drop(silent);
    stop_tx.send(true).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends when the server stops"
    );
}
