use sqlx::error::ErrorKind;

/// Store failures, by what the caller can do about them. SQL text stays in the message for
/// the logs; the transport layer never sends it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("transaction aborted: {0}")]
    Aborted(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match db.kind() {
                    ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
                    _ if matches!(code.as_str(), "40001" | "40P01" | "55P03") => {
                        StoreError::Aborted(db.message().to_owned())
                    }
                    // SQLITE_BUSY and its extended codes: another writer held the lock too long.
                    _ if matches!(code.as_str(), "5" | "261" | "517" | "6") => {
                        StoreError::Aborted(db.message().to_owned())
                    }
                    // Admin shutdown, cannot connect now, too many connections.
                    _ if code.starts_with("57P") || code.starts_with("08") || code == "53300" => {
                        StoreError::Unavailable(db.message().to_owned())
                    }
                    _ => StoreError::Other(format!("{code}: {}", db.message())),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
            sqlx::Error::Configuration(_) => StoreError::Config(e.to_string()),
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}
