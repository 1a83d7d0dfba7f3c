//! The connection to the service: the channel, the bearer token on every call, and gRPC
//! errors made readable.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt;

use super::TlsArgs;
use super::names::code_name;
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::account_admin_service_client::AccountAdminServiceClient;
use crate::proto::v1::entitlement_service_client::EntitlementServiceClient;

pub struct Client {
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
}

impl Client {
    /// Connects to `server` (`http://host:port` or `https://host:port`; a bare `host:port`
    /// means http).
    pub async fn connect(server: &str, token: Option<&str>, tls: &TlsArgs) -> anyhow::Result<Self> {
        let auth = match token.map(str::trim) {
            Some(t) if !t.is_empty() => Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| anyhow!("--token: not a valid header value"))?,
            ),
            _ => None,
        };
        let url = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("--server {server}: not a URL"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let endpoint = if url.starts_with("https://") {
            with_tls(endpoint, tls)?
        } else if tls.ca_cert.is_some() || tls.client_cert.is_some() || tls.client_key.is_some() {
            bail!(
                "--ca-cert, --client-cert and --client-key are for TLS: use an https:// --server, not {url}"
            );
        } else {
            endpoint
        };
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        Ok(Self { channel, auth })
    }

    /// `msg` with `authorization: Bearer <token>` when there is a token.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(auth) = &self.auth {
            req.metadata_mut().insert("authorization", auth.clone());
        }
        req
    }

    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AccountAdminServiceClient<Channel> {
        AccountAdminServiceClient::new(self.channel.clone())
    }

    pub fn entitlement(&self) -> EntitlementServiceClient<Channel> {
        EntitlementServiceClient::new(self.channel.clone())
    }
}

/// TLS with ALPN h2: the server is checked against `--ca-cert` when given, else against the
/// system's roots (or the webpki roots compiled in, where the system has none); a client
/// certificate is presented when the server requires one.
fn with_tls(endpoint: Endpoint, tls: &TlsArgs) -> anyhow::Result<Endpoint> {
    let mut config = ClientTlsConfig::new();
    if let Some(path) = &tls.ca_cert {
        let pem = read_pem(path, "--ca-cert")?;
        config = config.ca_certificate(Certificate::from_pem(pem));
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let cert = read_pem(cert, "--client-cert")?;
            let key = std::fs::read(key)
                .with_context(|| format!("--client-key {}: cannot read it", key.display()))?;
            config = config.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => bail!("--client-cert and --client-key go together: give both or neither"),
    }
    if tls.ca_cert.is_some() {
        // Only the private CA: a public certificate for the same name is not trusted here.
        return endpoint.tls_config(config).context("TLS settings");
    }
    endpoint
        .clone()
        .tls_config(config.clone().with_native_roots())
        .or_else(|_| endpoint.tls_config(config.with_webpki_roots()))
        .context("TLS settings")
}

/// A PEM file with at least one certificate in it.
fn read_pem(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?;
    match CertificateDer::pem_slice_iter(&pem).next() {
        Some(Ok(_)) => Ok(pem),
        Some(Err(e)) => bail!("{flag} {}: not a PEM certificate ({e})", path.display()),
        None => bail!("{flag} {}: no PEM CERTIFICATE in it", path.display()),
    }
}

/// `NOT_FOUND ACCOUNT_NOT_FOUND: no account 123`, then one line per field violation and the
/// retry delay when the server gave one.
pub fn describe_status(status: tonic::Status) -> anyhow::Error {
    let details = status.get_error_details();
    let mut msg = code_name(status.code()).to_owned();
    if let Some(info) = details.error_info() {
        msg.push(' ');
        msg.push_str(&info.reason);
    }
    msg.push_str(": ");
    msg.push_str(status.message());
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            msg.push_str(&format!("\n  field {}: {}", v.field, v.description));
        }
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        msg.push_str(&format!("\n  retry after {} ms", delay.as_millis()));
    }
    anyhow!(msg)
}
