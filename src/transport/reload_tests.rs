#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::transport::test_pki::{ca, leaf};

fn settings(dir: &Path, mutual: bool) -> TlsSettings {
    TlsSettings {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        client_ca: mutual.then(|| dir.join("ca.crt")),
        reload_every: Duration::from_millis(10),
    }
}

fn write(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
}

fn config_of(current: &CurrentTls) -> Arc<ServerConfig> {
    current.config.read().unwrap().clone()
}

async fn load_err(s: TlsSettings) -> String {
    match CurrentTls::load(s).await {
        Ok(_) => panic!("loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn start_up_errors_name_the_flag_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let first = leaf(&ca, "first");

    let e = load_err(settings(dir.path(), false)).await;
    assert!(
        e.contains("--tls-cert") && e.contains("tls.crt") && e.contains("cannot read"),
        "{e}"
    );

    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("tls.key"), &first.1).unwrap();
    let e = load_err(settings(dir.path(), false)).await;
    assert!(
        e.contains("--tls-cert") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );

    std::fs::write(dir.path().join("tls.crt"), &first.0).unwrap();
    std::fs::write(dir.path().join("tls.key"), &first.0).unwrap();
    let e = load_err(settings(dir.path(), false)).await;
    assert!(
        e.contains("--tls-key") && e.contains("no usable PEM private key"),
        "{e}"
    );

    // Another certificate's key: refused, not served to fail every handshake.
    let other = leaf(&ca, "other");
    std::fs::write(dir.path().join("tls.key"), &other.1).unwrap();
    let e = load_err(settings(dir.path(), false)).await;
    assert!(e.contains("do not make a usable pair"), "{e}");

    write(dir.path(), &first);
    let e = load_err(settings(dir.path(), true)).await;
    assert!(e.contains("--tls-client-ca") && e.contains("ca.crt"), "{e}");
    std::fs::write(dir.path().join("ca.crt"), &first.1).unwrap();
    let e = load_err(settings(dir.path(), true)).await;
    assert!(
        e.contains("--tls-client-ca") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );
    std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
    let (current, _) = CurrentTls::load(settings(dir.path(), true)).await.unwrap();
    assert!(current.mutual());
    assert_eq!(config_of(&current).alpn_protocols, vec![b"h2".to_vec()]);
}

#[tokio::test]
async fn a_changed_pair_is_swapped_in_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    write(dir.path(), &leaf(&ca, "first"));
    let (current, mut reloader) = CurrentTls::load(settings(dir.path(), false)).await.unwrap();
    let first = config_of(&current);
    assert_eq!(reloader.check().await, Outcome::Unchanged);
    assert!(Arc::ptr_eq(&first, &config_of(&current)));

    let second = leaf(&ca, "second");
    write(dir.path(), &second);
    assert_eq!(reloader.check().await, Outcome::Reloaded);
    let served = config_of(&current);
    assert!(!Arc::ptr_eq(&first, &served));
    assert_eq!(reloader.check().await, Outcome::Unchanged);

    // Half a rotation: the third certificate with the second key. Kept, and kept quiet.
    let third = leaf(&ca, "third");
    std::fs::write(dir.path().join("tls.crt"), &third.0).unwrap();
    let Outcome::Kept(why) = reloader.check().await else {
        panic!("a mismatched pair is not served")
    };
    assert!(why.contains("do not make a usable pair"), "{why}");
    assert!(Arc::ptr_eq(&served, &config_of(&current)));
    assert!(reloader.complaint.is_some());
    // The rest of the rotation arrives: served.
    std::fs::write(dir.path().join("tls.key"), &third.1).unwrap();
    assert_eq!(reloader.check().await, Outcome::Reloaded);
    assert!(reloader.complaint.is_none());

    // A vanished file (a broken mount): the old config stays.
    let served = config_of(&current);
    std::fs::remove_file(dir.path().join("tls.key")).unwrap();
    assert!(matches!(reloader.check().await, Outcome::Kept(_)));
    assert!(Arc::ptr_eq(&served, &config_of(&current)));
}

#[tokio::test]
async fn the_reloader_stops_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &leaf(&ca("test CA"), "first"));
    let (_current, reloader) = CurrentTls::load(settings(dir.path(), false)).await.unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = spawn_reloader(reloader, stop_rx);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reloader stops")
        .unwrap();
}
