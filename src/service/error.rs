use crate::domain::policy::Refusal;
use crate::domain::{ParseError, Reason};
use crate::store::StoreError;

/// What went wrong in a use case, by the gRPC code it becomes. `reason` is the UPPER_SNAKE
/// `ErrorInfo.reason` a caller can branch on; `message` is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{field}: {message}")]
    InvalidArgument {
        field: String,
        reason: Reason,
        message: String,
    },
    #[error("{message}")]
    NotFound { reason: Reason, message: String },
    #[error("{message}")]
    AlreadyExists { reason: Reason, message: String },
    #[error("{message}")]
    PermissionDenied { reason: Reason, message: String },
    #[error("{message}")]
    FailedPrecondition { reason: Reason, message: String },
    #[error("{message}")]
    Aborted { reason: Reason, message: String },
    #[error("{message}")]
    ResourceExhausted {
        reason: Reason,
        message: String,
        retry_after_ms: i64,
    },
    /// This replica is stopping; the caller should go on with another (a change stream
    /// resumes from its last token).
    #[error("shutting down")]
    ShuttingDown,
    /// The database did not answer; the cause is logged, not sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database cannot store changes (disk full, read-only); the cause is logged.
    #[error("cannot write: {0}")]
    CannotWrite(String),
    /// A bug or corrupt data; the cause is logged, not sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field: field.into(),
            reason: Reason::InvalidArgument,
            message: message.into(),
        }
    }
    pub fn not_found(reason: Reason, message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            reason,
            message: message.into(),
        }
    }
    pub fn denied(reason: Reason, message: impl Into<String>) -> Self {
        ServiceError::PermissionDenied {
            reason,
            message: message.into(),
        }
    }
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        ServiceError::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }
    pub fn exists(reason: Reason, message: impl Into<String>) -> Self {
        ServiceError::AlreadyExists {
            reason,
            message: message.into(),
        }
    }

    /// Attaches a field name to a domain parse error.
    pub fn field(field: &str) -> impl Fn(ParseError) -> ServiceError + '_ {
        move |e| ServiceError::invalid(field, e.0)
    }
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        if r.is_precondition() {
            ServiceError::precondition(r.into(), r.to_string())
        } else {
            ServiceError::denied(r.into(), r.to_string())
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::CannotWrite(m) => ServiceError::CannotWrite(m),
            StoreError::Aborted(m) => {
                tracing::info!(cause = %m, "transaction aborted by a concurrent one");
                ServiceError::Aborted {
                    reason: Reason::ConcurrentUpdate,
                    message: "a concurrent change won; retry the call".to_owned(),
                }
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
