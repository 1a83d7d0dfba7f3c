use crate::domain::ParseError;
use crate::store::StoreError;

/// What went wrong in a use case, by the gRPC code it becomes. `reason` is the UPPER_SNAKE
/// `ErrorInfo.reason` a caller can branch on; `message` is safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{field}: {message}")]
    InvalidArgument {
        field: String,
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    NotFound {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
    },
    #[error("{message}")]
    ResourceExhausted {
        reason: &'static str,
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
    /// A bug or corrupt data; the cause is logged, not sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            field: field.into(),
            reason: "INVALID_ARGUMENT",
            message: message.into(),
        }
    }
    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            reason,
            message: message.into(),
        }
    }
    pub fn denied(reason: &'static str, message: impl Into<String>) -> Self {
        ServiceError::PermissionDenied {
            reason,
            message: message.into(),
        }
    }
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        ServiceError::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }
    pub fn exists(reason: &'static str, message: impl Into<String>) -> Self {
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

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Aborted(m) => {
                tracing::info!(cause = %m, "transaction aborted by a concurrent one");
                ServiceError::Aborted {
                    reason: "CONCURRENT_UPDATE",
                    message: "a concurrent change won; retry the call".to_owned(),
                }
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
