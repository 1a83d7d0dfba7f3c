//! The connection to the service: the channel, the bearer token on every call, and gRPC
//! errors made readable.

use std::time::Duration;

use anyhow::{Context, anyhow};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use super::names::code_name;
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::account_admin_service_client::AccountAdminServiceClient;
use crate::proto::v1::entitlement_service_client::EntitlementServiceClient;

pub struct Client {
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
}

impl Client {
    /// Connects to `server` (`http://host:port`; a bare `host:port` means http).
    pub async fn connect(server: &str, token: Option<&str>) -> anyhow::Result<Self> {
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
        let channel = Endpoint::from_shared(url.clone())
            .with_context(|| format!("--server {server}: not a URL"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
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
