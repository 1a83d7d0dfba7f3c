//! Outgoing email through a transactional outbox.
//!
//! The service writes each email into the `outbox` table in the same transaction as the change
//! that causes it, sealed (`seal`: nothing of it is stored in clear); [`MailWorker`] claims due
//! rows under a lease, opens them and delivers them through a [`MailTransport`]. Delivery is
//! at-least-once: a message whose sender died after claiming is re-claimed when its lease runs
//! out, and a stable Message-ID / file name makes a redelivery recognisable rather than a new
//! message. A message that cannot be delivered (refused for good, or still failing after a
//! bounded time or number of tries) is given up, loudly: never retried forever.

mod seal;
pub mod templates;
mod transport;
mod utc;
mod worker;

use std::path::PathBuf;

use lettre::Address;
pub use lettre::message::Mailbox;

use crate::clock::Millis;

pub use seal::{DEV_KEY_FILE, KeyError, MailContent, MailKeys, SealError, Unreadable};
pub use templates::MailBrand;
/// For the fuzz targets (`tests/fuzz`): the message exactly as the transport sends it.
#[doc(hidden)]
pub use transport::build_message;
pub use transport::{MailTransport, SMTP_TIMEOUT};
pub use worker::{MailWorker, RoundReport, WorkerConfig, emails_given_up, retry_delay_ms};

/// What the service layer enqueues: a rendered message, sealed before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Stable machine name of the message type (e.g. "verification_code"), for logs and metrics.
    pub kind: &'static str,
}

/// What the outbox stores of a message: its kind, and the rest sealed ([`MailKeys::seal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEmail {
    pub kind: &'static str,
    pub sealed: String,
}

/// A claimed row of the outbox as it is stored: sealed, unless queued before sealing existed.
#[derive(Debug, Clone)]
pub struct StoredEmail {
    pub id: i64,
    pub kind: String,
    /// Empty for a sealed row; the recipient is inside.
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Including the current one: 1 on the first delivery attempt.
    pub attempts: i32,
    pub created_at: Millis,
}

/// A claimed message as the worker delivers it.
#[derive(Debug, Clone)]
pub struct QueuedEmail {
    pub id: i64,
    pub kind: String,
    /// Including the current one: 1 on the first delivery attempt.
    pub attempts: i32,
    pub created_at: Millis,
    /// The opened message, or why it cannot be read.
    pub content: Result<MailContent, Unreadable>,
}

/// The outbox as the worker sees it: the service implements it over the store (opening sealed
/// rows, and recording a message given up in the audit trail); tests over a Vec.
#[async_trait::async_trait]
pub trait OutboxSource: Send + Sync + 'static {
    /// Atomically claims up to `limit` unsent messages due at `now` (next_attempt_at <= now),
    /// pushing their next_attempt_at to `lease_until` and incrementing attempts.
    async fn claim_due(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, OutboxError>;
    async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError>;
    async fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), OutboxError>;
    /// Ends a message as failed: it is never claimed again. Records it where operators look.
    async fn give_up(&self, msg: &QueuedEmail, now: Millis, error: &str)
    -> Result<(), OutboxError>;
}

#[derive(Debug, thiserror::Error)]
#[error("outbox store: {0}")]
pub struct OutboxError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    #[error("building message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the SMTP transport must be created inside a Tokio runtime")]
    NoRuntime,
    #[error("mail directory {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MailError {
    /// A refusal no retry can change: a recipient or message that cannot be built, or an SMTP
    /// server's permanent (5xx) reply. Anything else (4xx, a dead connection, a full disk) may
    /// pass later.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Recipient(_) | Self::Build(_) => true,
            Self::Smtp(e) => e.is_permanent(),
            Self::NoRuntime | Self::Io { .. } => false,
        }
    }
}

/// The sender used when none is configured; `.invalid` so a misconfigured deployment cannot
/// impersonate a real mailbox.
pub fn default_from() -> Mailbox {
    Mailbox::new(
        Some("IBM Support Entitlements".to_owned()),
        // Checked by a unit test; `new_dangerous` only skips validation of this literal.
        Address::new_dangerous("no-reply", "entitlements.invalid"),
    )
}

#[cfg(test)]
mod tests;
