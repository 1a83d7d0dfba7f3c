//! Bearer token -> `Caller`. Claims are parsed into domain types once, here.

use tonic::Request;

use super::status::status;
use crate::auth::{Authenticator, SCOPE_ADMIN, SCOPE_CHECK};
use crate::domain::{Email, WebId, ids::parse_text};
use crate::service::Caller;

pub async fn caller<T>(auth: &Authenticator, req: &Request<T>) -> Result<Caller, tonic::Status> {
    let header = req
        .metadata()
        .get("authorization")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = auth
        .authenticate(header)
        .await
        .map_err(|e| super::status::from_auth(&e))?;
    let bad_claim = |claim: &str, why: String| {
        status(
            tonic::Code::Unauthenticated,
            "TOKEN_CLAIM_INVALID",
            format!("the token's {claim} claim {why}"),
            std::collections::HashMap::from([("claim".to_owned(), claim.to_owned())]),
        )
    };
    let web_id = WebId::parse(&principal.web_id).map_err(|e| bad_claim("sub", e.0))?;
    let email = principal
        .email
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(Email::parse)
        .transpose()
        .map_err(|e| bad_claim("email", e.0))?;
    let name = |v: &Option<String>, claim: &str| {
        parse_text(v.as_deref().unwrap_or(""), 200, false).map_err(|e| bad_claim(claim, e.0))
    };
    Ok(Caller {
        given_name: name(&principal.given_name, "given_name")?,
        family_name: name(&principal.family_name, "family_name")?,
        web_id,
        email,
        operator: principal.has_scope(SCOPE_ADMIN),
        checker: principal.has_scope(SCOPE_CHECK),
        trace_id: crate::telemetry::trace_id_from_current_span()
            .or_else(|| traceparent_trace_id(req)),
    })
}

/// The trace id of an incoming W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), so the audit
/// trail names the caller's trace even when this process exports no spans.
fn traceparent_trace_id<T>(req: &Request<T>) -> Option<String> {
    let v = req.metadata().get("traceparent")?.to_str().ok()?;
    let mut parts = v.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    let valid = trace_id.len() == 32
        && trace_id.bytes().all(|b| b.is_ascii_hexdigit())
        && trace_id.bytes().any(|b| b != b'0');
    valid.then(|| trace_id.to_ascii_lowercase())
}
