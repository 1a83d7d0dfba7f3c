use sqlx::error::ErrorKind;

/// Store failures, by what the caller can do about them. SQL text stays in the message for
/// the logs; the transport layer never sends it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answers but cannot store anything: its disk is full or it is read-only.
    #[error("database cannot write: {0}")]
    CannotWrite(String),
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
                    // Disk full or read-only: SQLITE_FULL, SQLITE_READONLY and its extended
                    // codes; PostgreSQL's disk_full and read_only_sql_transaction (a standby).
                    _ if cannot_write(&code) => StoreError::CannotWrite(db.message().to_owned()),
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

fn cannot_write(code: &str) -> bool {
    if matches!(code, "53100" | "25006") {
        return true;
    }
    // SQLite's codes are numbers below 10000 (PostgreSQL's SQLSTATEs have five characters);
    // extended codes keep the primary code in their low byte.
    code.len() < 5
        && code
            .parse::<u32>()
            .is_ok_and(|n| matches!(n & 0xff, 8 | 13))
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::cannot_write;

    #[test]
    fn full_and_read_only_are_told_apart_from_other_failures() {
        // SQLITE_FULL, SQLITE_READONLY, SQLITE_READONLY_DBMOVED, disk_full, a standby.
        for c in ["13", "8", "1032", "53100", "25006"] {
            assert!(cannot_write(c), "{c}");
        }
        // SQLITE_BUSY, SQLITE_IOERR, a constraint, PostgreSQL's unique violation and 22008.
        for c in ["5", "10", "2067", "23505", "22008", ""] {
            assert!(!cannot_write(c), "{c}");
        }
    }
}
