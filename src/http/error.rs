//! The one place errors become HTTP answers: a status code and a JSON body
//! `{"error": {"status", "reason", "message", "field"?}}`, where `reason` is the same
//! UPPER_SNAKE `ErrorReason` the gRPC door sends in `ErrorInfo`. Internal causes are logged
//! here and replaced by a generic message, as in `grpc/status.rs`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::args::FieldError;
use crate::domain::Reason;
use crate::service::ServiceError;
use crate::transport::caller::CallerError;

/// An error as the body carries it, also inside an evaluation's `context.error`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct HttpError {
    pub body: ErrorBody,
    /// Seconds, for `Retry-After`.
    retry_after: Option<u64>,
    /// RFC 6750 `WWW-Authenticate`, which the spec asks of a 401.
    challenge: Option<&'static str>,
}

impl HttpError {
    pub fn new(status: StatusCode, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            body: ErrorBody {
                status: status.as_u16(),
                reason: reason.as_str(),
                message: message.into(),
                field: None,
            },
            retry_after: None,
            challenge: None,
        }
    }

    pub fn field(status: StatusCode, reason: Reason, field: &str, message: &str) -> Self {
        let mut e = Self::new(status, reason, format!("{field}: {message}"));
        e.body.field = Some(field.to_owned());
        e
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = super::json(status, &Envelope { error: &self.body });
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(c) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        response
    }
}

impl From<FieldError> for HttpError {
    fn from(e: FieldError) -> Self {
        Self::field(StatusCode::BAD_REQUEST, e.reason, &e.field, &e.message)
    }
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        let plain = |status, reason, message: String| Self::new(status, reason, message);
        match e {
            ServiceError::InvalidArgument {
                field,
                reason,
                message,
            } => Self::field(StatusCode::BAD_REQUEST, reason, &field, &message),
            ServiceError::NotFound { reason, message } => {
                plain(StatusCode::NOT_FOUND, reason, message)
            }
            ServiceError::AlreadyExists { reason, message }
            | ServiceError::Aborted { reason, message } => {
                plain(StatusCode::CONFLICT, reason, message)
            }
            ServiceError::PermissionDenied { reason, message } => {
                plain(StatusCode::FORBIDDEN, reason, message)
            }
            // As Google's HTTP mapping of FAILED_PRECONDITION (e.g. a consistency token of
            // another database): the request cannot be served as it stands.
            ServiceError::FailedPrecondition { reason, message } => {
                plain(StatusCode::BAD_REQUEST, reason, message)
            }
            ServiceError::ResourceExhausted {
                reason,
                message,
                retry_after_ms,
            } => plain(StatusCode::TOO_MANY_REQUESTS, reason, message)
                .retry_after(u64::try_from(retry_after_ms).unwrap_or(0).div_ceil(1000)),
            ServiceError::ShuttingDown => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                Reason::ShuttingDown,
                "this server is shutting down; retry on another".into(),
            ),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Reason::DatabaseUnavailable,
                    "the database is not answering; retry shortly".into(),
                )
                .retry_after(1)
            }
            ServiceError::CannotWrite(cause) => {
                tracing::error!(%cause, "the database cannot store changes");
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Reason::DatabaseCannotWrite,
                    "the database cannot store changes now; retry later".into(),
                )
            }
            ServiceError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Reason::Internal,
                    "internal error; it has been logged".into(),
                )
            }
        }
    }
}

impl From<CallerError> for HttpError {
    fn from(e: CallerError) -> Self {
        match e {
            CallerError::Auth(e) if e.is_server_side() => {
                tracing::warn!(error = %e, "token verification unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.reason(),
                    e.public_message(),
                )
                .retry_after(1)
            }
            CallerError::Auth(e) => {
                let missing = e.reason() == Reason::TokenMissing;
                let mut out = Self::new(StatusCode::UNAUTHORIZED, e.reason(), e.public_message());
                // RFC 6750 section 3: no error code when the request carried no token at all.
                out.challenge = Some(if missing {
                    "Bearer realm=\"entitlements\""
                } else {
                    "Bearer realm=\"entitlements\", error=\"invalid_token\""
                });
                out
            }
            CallerError::Claim { claim, why } => {
                let mut out = Self::new(
                    StatusCode::UNAUTHORIZED,
                    Reason::TokenClaimInvalid,
                    format!("the token's {claim} claim {why}"),
                );
                out.challenge = Some("Bearer realm=\"entitlements\", error=\"invalid_token\"");
                out
            }
        }
    }
}
