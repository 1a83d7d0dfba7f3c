//! Bearer token -> `Caller` for gRPC calls: the shared [`crate::transport::caller`], with its
//! refusals said as gRPC statuses.

use std::collections::HashMap;

use tonic::Request;

use super::status::status;
use crate::auth::Authenticator;
use crate::domain::Reason;
use crate::service::Caller;
use crate::transport::caller::CallerError;
pub use crate::transport::caller::RecentCallers;

/// Authenticates the call. `with_trace` reads the caller's trace id (for calls that write
/// the audit trail; the hot check path skips it).
pub async fn caller<T>(
    auth: &Authenticator,
    recent: &RecentCallers,
    req: &Request<T>,
    with_trace: bool,
) -> Result<Caller, tonic::Status> {
    let header = req
        .metadata()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let traceparent = req
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    crate::transport::caller::caller(auth, recent, header, traceparent, with_trace)
        .await
        .map_err(|e| match e {
            CallerError::Auth(e) => super::status::from_auth(&e),
            CallerError::Claim { claim, why } => status(
                tonic::Code::Unauthenticated,
                Reason::TokenClaimInvalid,
                format!("the token's {claim} claim {why}"),
                HashMap::from([("claim".to_owned(), claim.to_owned())]),
            ),
        })
}
