//! How connections reach the gRPC server: plaintext TCP, or TLS (rustls) whose certificate is
//! re-read when its files change; and the plaintext listener that serves only health, for
//! probes that cannot speak TLS (the kubelet's gRPC probes). And who is calling (the bearer
//! token), which the gRPC and the HTTP door ask alike.

pub mod caller;
mod health;
mod incoming;
mod reload;
#[cfg(test)]
mod test_pki;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use health::serve_health;
pub use incoming::{tcp_connect_info, tls_incoming};
pub use reload::{CurrentTls, spawn_reloader};
pub use tls::fingerprint;

/// How often the certificate files are re-read when nothing else is said.
pub const DEFAULT_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The PEM files TLS is served with.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When given, clients must present a certificate issued by one of these CAs.
    pub client_ca: Option<PathBuf>,
    /// How often the files are re-read to pick up a rotation.
    pub reload_every: Duration,
}
