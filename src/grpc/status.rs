//! The one place errors become `tonic::Status`, each with a `google.rpc.ErrorInfo`. Internal
//! causes are logged here and replaced by a generic message.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::domain::Reason;
use crate::service::ServiceError;

pub const DOMAIN: &str = "entitlements.v1";

pub fn status(
    code: Code,
    reason: Reason,
    message: impl Into<String>,
    meta: HashMap<String, String>,
) -> Status {
    let details = ErrorDetails::with_error_info(reason.as_str(), DOMAIN, meta);
    Status::with_error_details(code, message, details)
}

/// RESOURCE_EXHAUSTED with a `RetryInfo` saying when trying again makes sense.
pub fn exhausted(
    reason: Reason,
    message: impl Into<String>,
    meta: HashMap<String, String>,
    retry: Duration,
) -> Status {
    let mut details = ErrorDetails::with_error_info(reason.as_str(), DOMAIN, meta);
    details.set_retry_info(Some(retry));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

pub fn invalid_field(field: &str, reason: Reason, message: &str) -> Status {
    let mut details = ErrorDetails::with_error_info(
        reason.as_str(),
        DOMAIN,
        HashMap::from([("field".to_owned(), field.to_owned())]),
    );
    details.add_bad_request_violation(field, message);
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {message}"),
        details,
    )
}

pub fn from_service(e: ServiceError) -> Status {
    match e {
        ServiceError::InvalidArgument {
            field,
            reason,
            message,
        } => invalid_field(&field, reason, &message),
        ServiceError::NotFound { reason, message } => {
            status(Code::NotFound, reason, message, HashMap::new())
        }
        ServiceError::AlreadyExists { reason, message } => {
            status(Code::AlreadyExists, reason, message, HashMap::new())
        }
        ServiceError::PermissionDenied { reason, message } => {
            status(Code::PermissionDenied, reason, message, HashMap::new())
        }
        ServiceError::FailedPrecondition { reason, message } => {
            status(Code::FailedPrecondition, reason, message, HashMap::new())
        }
        ServiceError::Aborted { reason, message } => {
            status(Code::Aborted, reason, message, HashMap::new())
        }
        ServiceError::ResourceExhausted {
            reason,
            message,
            retry_after_ms,
        } => {
            let retry = Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0));
            exhausted(reason, message, HashMap::new(), retry)
        }
        ServiceError::ShuttingDown => status(
            Code::Unavailable,
            Reason::ShuttingDown,
            "this server is shutting down; reconnect (a change stream resumes from its last token)",
            HashMap::new(),
        ),
        ServiceError::Unavailable(cause) => {
            tracing::warn!(%cause, "database unavailable");
            status(
                Code::Unavailable,
                Reason::DatabaseUnavailable,
                "the database is not answering; retry shortly",
                HashMap::new(),
            )
        }
        ServiceError::CannotWrite(cause) => {
            tracing::error!(%cause, "the database cannot store changes");
            status(
                Code::Unavailable,
                Reason::DatabaseCannotWrite,
                "the database cannot store changes now (its disk is full or read-only); nothing was changed; retry later",
                HashMap::new(),
            )
        }
        ServiceError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            status(
                Code::Internal,
                Reason::Internal,
                "internal error; it has been logged",
                HashMap::new(),
            )
        }
    }
}

pub fn from_auth(e: &AuthError) -> Status {
    if e.is_server_side() {
        tracing::warn!(error = %e, "token verification unavailable");
        return status(
            Code::Unavailable,
            e.reason(),
            e.public_message(),
            HashMap::new(),
        );
    }
    status(
        Code::Unauthenticated,
        e.reason(),
        e.public_message(),
        HashMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::ErrorReason;

    /// The reasons the code can send and the contract's `ErrorReason` are the same set.
    #[test]
    fn every_reason_is_published_and_every_published_reason_is_sent() {
        for r in Reason::ALL {
            let name = format!("ERROR_REASON_{}", r.as_str());
            assert!(
                ErrorReason::from_str_name(&name).is_some(),
                "{name} is missing from proto/entitlement/v1/errors.proto"
            );
        }
        let published: Vec<ErrorReason> = (1..1000)
            .filter_map(|n| ErrorReason::try_from(n).ok())
            .collect();
        assert_eq!(
            published.len(),
            Reason::ALL.len(),
            "errors.proto lists a reason the code never sends"
        );
        let docs = include_str!("../../docs/errors.md");
        for r in Reason::ALL {
            assert!(
                docs.contains(&format!("`{}`", r.as_str())),
                "docs/errors.md does not explain {r}"
            );
        }
    }
}
