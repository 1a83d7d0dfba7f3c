//! From PEM files to a rustls `ServerConfig`: TLS 1.2 and 1.3 only, ALPN `h2`, the ring
//! provider, and client certificates verified against `--tls-client-ca` when it is given.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest as _, Sha256};

use super::TlsSettings;

/// gRPC is HTTP/2 only: a client that offers ALPN without `h2` is refused in the handshake.
const ALPN_H2: &[u8] = b"h2";

/// The bytes of the files, read together so that a change to any of them is one change.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Files {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Option<Vec<u8>>,
}

/// Reads the files (following symlinks, as a mounted Kubernetes Secret needs).
pub(super) async fn read_files(settings: &TlsSettings) -> anyhow::Result<Files> {
    Ok(Files {
        cert: read(&settings.cert, "--tls-cert").await?,
        key: read(&settings.key, "--tls-key").await?,
        client_ca: match &settings.client_ca {
            Some(p) => Some(read(p, "--tls-client-ca").await?),
            None => None,
        },
    })
}

async fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

/// A server config from the files' bytes, or why they cannot be served.
pub(super) fn server_config(settings: &TlsSettings, files: &Files) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert)
        .with_context(|| format!("--tls-cert {}", settings.cert.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| {
        anyhow!(
            "--tls-key {}: no usable PEM private key ({e})",
            settings.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let builder = match (&files.client_ca, &settings.client_ca) {
        (Some(pem), Some(path)) => {
            let mut roots = RootCertStore::empty();
            let cas =
                certificates(pem).with_context(|| format!("--tls-client-ca {}", path.display()))?;
            for ca in cas {
                roots.add(ca).with_context(|| {
                    format!("--tls-client-ca {}: not a usable CA", path.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("--tls-client-ca {}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    // Checks that the key belongs to the leaf certificate, so a half-rotated pair is refused.
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "--tls-cert {} and --tls-key {} do not make a usable pair",
            settings.cert.display(),
            settings.key.display()
        )
    })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// Every CERTIFICATE block of a PEM file; at least one.
fn certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("not PEM certificates ({e})"))?;
    if certs.is_empty() {
        bail!("no PEM CERTIFICATE in it");
    }
    Ok(certs)
}

/// The SHA-256 fingerprint of the first certificate of a PEM file (what `openssl x509
/// -fingerprint -sha256` prints, lower case), to tell in the logs which certificate is served.
pub fn fingerprint(cert_pem: &[u8]) -> Option<String> {
    let leaf = CertificateDer::pem_slice_iter(cert_pem).next()?.ok()?;
    let digest = Sha256::digest(leaf.as_ref());
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}
