//! The certificate in use, and the task that replaces it when its files change.
//!
//! cert-manager (and the kubelet, for any mounted Secret) rotates by writing the new files
//! into a fresh directory and swapping a symlink, so there is no file event to wait for that
//! works everywhere; the files are re-read every few seconds and compared with what is
//! served. The whole `ServerConfig` is replaced, not only the certificate, so that a rotated
//! client CA (cert-manager's `ca.crt` beside `tls.crt`) takes effect as well. Connections
//! already open keep the certificate they were made with; new ones get the new one.

use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::TlsSettings;
use super::tls::{Files, fingerprint, read_files, server_config};

/// The TLS config new connections are accepted with.
#[derive(Clone)]
pub struct CurrentTls {
    config: Arc<RwLock<Arc<ServerConfig>>>,
    mutual: bool,
    /// The ALPN protocols offered instead of the config's `h2` (the HTTP door's view).
    alpn: Option<Arc<[Vec<u8>]>>,
}

impl CurrentTls {
    /// Reads and checks the files: an error here is a start-up error, naming the flag.
    pub async fn load(settings: TlsSettings) -> anyhow::Result<(Self, Reloader)> {
        let files = read_files(&settings).await?;
        let config = server_config(&settings, &files)?;
        tracing::info!(
            cert = %settings.cert.display(),
            sha256 = fingerprint(&files.cert).unwrap_or_default(),
            mutual = settings.client_ca.is_some(),
            "TLS certificate loaded"
        );
        let current = Self {
            config: Arc::new(RwLock::new(Arc::new(config))),
            mutual: settings.client_ca.is_some(),
            alpn: None,
        };
        let reloader = Reloader {
            settings,
            current: current.clone(),
            served: files,
            complaint: None,
        };
        Ok((current, reloader))
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.mutual
    }

    /// The same certificate (and its rotations), offering these ALPN protocols: the HTTP door
    /// also speaks HTTP/1.1, which gRPC's `h2`-only config refuses in the handshake.
    pub fn with_alpn(&self, protocols: &[&[u8]]) -> Self {
        Self {
            alpn: Some(protocols.iter().map(|p| p.to_vec()).collect()),
            ..self.clone()
        }
    }

    /// An acceptor with the config in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        // A poisoned lock still holds a whole Arc: the writer only ever swaps it.
        let config = match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match &self.alpn {
            None => TlsAcceptor::from(config),
            // A copy per handshake: a few Arcs and short vectors, next to a handshake's cost.
            Some(alpn) => {
                let mut config = (*config).clone();
                config.alpn_protocols = alpn.to_vec();
                TlsAcceptor::from(Arc::new(config))
            }
        }
    }

    fn replace(&self, config: ServerConfig) {
        let config = Arc::new(config);
        match self.config.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

/// What one look at the files did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The files are what is served.
    Unchanged,
    /// New files, now served to new connections.
    Reloaded,
    /// The files changed but cannot be served (unreadable, not PEM, a key that does not
    /// match the certificate): the previous config stays in force.
    Kept(String),
}

/// Compares the files with what is served and swaps in a new config when they changed.
pub struct Reloader {
    settings: TlsSettings,
    current: CurrentTls,
    served: Files,
    /// The last complaint logged, so that a broken file is logged once, not every few seconds.
    complaint: Option<String>,
}

impl Reloader {
    pub async fn check(&mut self) -> Outcome {
        let files = match read_files(&self.settings).await {
            Ok(f) => f,
            Err(e) => return self.complain(e),
        };
        if files == self.served {
            self.complaint = None;
            return Outcome::Unchanged;
        }
        match server_config(&self.settings, &files) {
            Ok(config) => {
                self.current.replace(config);
                tracing::info!(
                    cert = %self.settings.cert.display(),
                    sha256 = fingerprint(&files.cert).unwrap_or_default(),
                    "TLS certificate reloaded; new connections get it"
                );
                self.served = files;
                self.complaint = None;
                Outcome::Reloaded
            }
            Err(e) => self.complain(e),
        }
    }

    fn complain(&mut self, e: anyhow::Error) -> Outcome {
        let msg = format!("{e:#}");
        if self.complaint.as_deref() != Some(msg.as_str()) {
            // A writer that replaces the files one at a time passes through a mismatched pair;
            // the next look sees the finished pair. Only a lasting complaint needs a person.
            tracing::warn!(
                error = %msg,
                "TLS files changed but cannot be served; still serving the previous certificate"
            );
            self.complaint = Some(msg.clone());
        }
        Outcome::Kept(msg)
    }
}

/// Looks at the files every `settings.reload_every` until `stop`.
pub fn spawn_reloader(
    mut reloader: Reloader,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = reloader.settings.reload_every;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            reloader.check().await;
        }
    })
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
