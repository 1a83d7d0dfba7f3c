//! The decision requests: one check, a batch, a watch of the change feed, and the consistency
//! token each may carry. Kept apart from the workflow's messages because the hot path's
//! validation (every check the ticketing system asks) lives here.

use tonic::Status;

use super::{MAX_BATCH, optional_icn};
use crate::domain::feed::{Token, decode_token};
use crate::domain::{Icn, ProductId, Reason, WebId};
use crate::grpc::convert::{self as cv, field};
use crate::grpc::status::invalid_field;
use crate::proto::v1 as pb;
use crate::service::CheckRequest;

/// A consistency token as given out by [`crate::service::Services::token`]; empty is None.
/// Whether this service can honour it (its database, a revision it has reached) is the
/// service's question, asked after this one.
pub fn consistency_token(name: &str, s: &str) -> Result<Option<Token>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    decode_token(s).map(Some).ok_or_else(|| {
        invalid_field(
            name,
            Reason::InvalidConsistencyToken,
            "is not a token this service gave out",
        )
    })
}

/// One check; `prefix` names the field's place in a batch (e.g. "checks[3].").
pub fn check_request(
    m: &pb::CheckEntitlementRequest,
    prefix: &str,
) -> Result<CheckRequest, Status> {
    let f = |name: &str| format!("{prefix}{name}");
    Ok(CheckRequest {
        web_id: field(&f("web_id"), &m.web_id, WebId::parse)?,
        icn: field(&f("icn"), &m.icn, Icn::parse)?,
        action: cv::action(&f("action"), m.action)?,
        product: match m.product_id.as_str() {
            "" => None,
            p => Some(field(&f("product_id"), p, ProductId::parse)?),
        },
        severity: cv::severity(&f("severity"), m.severity)?,
        fully_consistent: consistency(
            &f("consistency"),
            m.consistency,
            &f("consistency_token"),
            &m.consistency_token,
        )?,
    })
}

/// Whether the caller asked for a fully consistent answer; refuses a mode its token
/// contradicts (a token with MINIMIZE_LATENCY) or lacks (AT_LEAST_AS_FRESH without one).
pub(super) fn consistency(
    name: &str,
    v: i32,
    token_name: &str,
    token: &str,
) -> Result<bool, Status> {
    use pb::Consistency as C;
    match C::try_from(v) {
        Ok(C::Unspecified) => Ok(false),
        Ok(C::MinimizeLatency) if !token.is_empty() => Err(invalid_field(
            name,
            Reason::InvalidArgument,
            "CONSISTENCY_MINIMIZE_LATENCY takes no consistency_token; leave one of them out",
        )),
        Ok(C::MinimizeLatency) => Ok(false),
        Ok(C::AtLeastAsFresh) if token.is_empty() => Err(invalid_field(
            token_name,
            Reason::InvalidArgument,
            "is required with CONSISTENCY_AT_LEAST_AS_FRESH",
        )),
        Ok(C::AtLeastAsFresh) => Ok(false),
        Ok(C::FullyConsistent) => Ok(true),
        Err(_) => Err(invalid_field(
            name,
            Reason::InvalidArgument,
            "must be a Consistency value",
        )),
    }
}

/// The check and the token it must read at least.
pub fn check_entitlement(
    m: &pb::CheckEntitlementRequest,
) -> Result<(CheckRequest, Option<Token>), Status> {
    Ok((
        check_request(m, "")?,
        consistency_token("consistency_token", &m.consistency_token)?,
    ))
}

pub struct BatchCheck {
    /// The token every check reads at least.
    pub token: Option<Token>,
    /// Each check with its own token, or why it is refused: one bad check fails only itself.
    pub checks: Vec<Result<(CheckRequest, Option<Token>), Status>>,
}

pub fn batch_check_entitlements(
    m: &pb::BatchCheckEntitlementsRequest,
) -> Result<BatchCheck, Status> {
    if m.checks.len() > MAX_BATCH {
        return Err(invalid_field(
            "checks",
            Reason::BatchTooLarge,
            "at most 100 checks per call",
        ));
    }
    let token = consistency_token("consistency_token", &m.consistency_token)?;
    let all_fully = consistency(
        "consistency",
        m.consistency,
        "consistency_token",
        &m.consistency_token,
    )?;
    let checks = m
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let prefix = format!("checks[{i}].");
            let mut check = check_request(c, &prefix)?;
            check.fully_consistent |= all_fully;
            let own =
                consistency_token(&format!("{prefix}consistency_token"), &c.consistency_token)?;
            Ok((check, own))
        })
        .collect();
    Ok(BatchCheck { token, checks })
}

/// The token a watch starts from. Asked (and honoured) before [`watch_icn`], as it always was.
pub fn watch_token(m: &pb::WatchEntitlementChangesRequest) -> Result<Option<Token>, Status> {
    consistency_token("consistency_token", &m.consistency_token)
}

/// The account a watch is narrowed to; None: every account the caller may watch.
pub fn watch_icn(m: &pb::WatchEntitlementChangesRequest) -> Result<Option<Icn>, Status> {
    optional_icn(&m.icn)
}
