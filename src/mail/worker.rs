//! The background loop that drains the outbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{MailTransport, Mailbox, OutboxError, OutboxSource, QueuedEmail, Unreadable};
use crate::clock::{Millis, SharedClock};

const BASE_RETRY_MS: Millis = 5_000;
const MAX_RETRY_MS: Millis = 3_600_000;
/// From this attempt on a failure is logged as an error: someone should look at the relay or
/// the address.
const LOUD_AFTER_ATTEMPTS: i32 = 10;

/// Messages given up since the process started (refused for good, too old, or tried too
/// often), for the metrics.
static GIVEN_UP: AtomicU64 = AtomicU64::new(0);

/// How many messages this process has given up on: each one is also an error log line and an
/// `email.undeliverable` audit event.
pub fn emails_given_up() -> u64 {
    GIVEN_UP.load(Ordering::Relaxed)
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long to wait between rounds when nobody wakes the worker; bounds the delay for
    /// messages enqueued by other replicas and for retries coming due.
    pub poll_interval: Duration,
    /// How long a claimed message stays invisible to other workers; must exceed the time to
    /// deliver a whole batch, or a slow batch is sent twice.
    pub lease_ms: Millis,
    pub batch_size: u32,
    /// A message still failing this long after it was queued is given up. Three days ride out
    /// a relay outage over a long weekend; by then a verification code has long expired.
    pub max_age_ms: Millis,
    /// ... or after this many claims. With the backoff the age bound comes first; this one
    /// catches a message that kills or stalls its worker, whose claims end by lease expiry.
    pub max_attempts: i32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease_ms: 120_000,
            batch_size: 20,
            max_age_ms: 3 * 24 * 3_600_000,
            max_attempts: 100,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    /// Of the failed, those given up for good.
    pub given_up: usize,
    /// Claimed but handed back untried because the worker is shutting down.
    pub released: usize,
}

enum Outcome {
    Sent,
    Retry,
    GivenUp,
}

pub struct MailWorker {
    source: Arc<dyn OutboxSource>,
    transport: Arc<MailTransport>,
    from: Mailbox,
    clock: SharedClock,
    config: WorkerConfig,
}

/// Delay before retrying after failed attempt number `attempts` (1-based): 5 s doubling per
/// attempt, capped at an hour, so a long outage is retried hourly until the message's maximum
/// age ([`WorkerConfig::max_age_ms`]).
pub fn retry_delay_ms(attempts: i32) -> Millis {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    (BASE_RETRY_MS << exp).min(MAX_RETRY_MS)
}

impl MailWorker {
    pub fn new(
        source: Arc<dyn OutboxSource>,
        transport: Arc<MailTransport>,
        from: Mailbox,
        clock: SharedClock,
    ) -> Self {
        Self {
            source,
            transport,
            from,
            clock,
            config: WorkerConfig::default(),
        }
    }

    pub fn with_config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs until `shutdown` becomes true (or its sender is dropped). `wake` cuts the wait
    /// between rounds short, so a freshly committed email goes out at once.
    pub fn spawn(self, wake: Arc<Notify>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(wake, shutdown))
    }

    async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("mail worker started");
        while !*shutdown.borrow() {
            let full_batch = match self.round(Some(&shutdown)).await {
                Ok(report) => report.claimed >= self.batch_len(),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming outbox messages failed");
                    false
                }
            };
            if *shutdown.borrow() {
                break;
            }
            // A full batch suggests more is due: go again without waiting.
            if full_batch {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                changed = shutdown.changed() => {
                    // A dropped sender can never say "stop", so treat it as having said so.
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("mail worker stopped");
    }

    /// Claims one batch and tries each message once; what fails is rescheduled, not retried
    /// here. Deterministic under a manual clock, which is what tests drive.
    pub async fn drain_once(&self) -> Result<RoundReport, OutboxError> {
        self.round(None).await
    }

    fn batch_len(&self) -> usize {
        usize::try_from(self.config.batch_size).unwrap_or(usize::MAX)
    }

    async fn round(
        &self,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Result<RoundReport, OutboxError> {
        let now = self.clock.now_ms();
        let batch = self
            .source
            .claim_due(
                now,
                now.saturating_add(self.config.lease_ms),
                self.config.batch_size,
            )
            .await?;
        let mut report = RoundReport {
            claimed: batch.len(),
            ..RoundReport::default()
        };
        for msg in &batch {
            if shutdown.is_some_and(|s| *s.borrow()) {
                self.release(msg).await;
                report.released += 1;
                continue;
            }
            // One span per delivery, a root of its own: it happens after the call that
            // queued the message has answered.
            let span = tracing::info_span!(
                "mail.deliver",
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                outbox_id = msg.id,
                kind = %msg.kind,
                attempt = msg.attempts
            );
            match self.deliver_one(msg).instrument(span).await {
                Outcome::Sent => report.sent += 1,
                Outcome::Retry => report.failed += 1,
                Outcome::GivenUp => {
                    report.failed += 1;
                    report.given_up += 1;
                }
            }
        }
        Ok(report)
    }

    /// Bookkeeping failures are logged, not returned: the lease brings the message back either
    /// way, and the rest of the batch should still go out.
    async fn deliver_one(&self, msg: &QueuedEmail) -> Outcome {
        let failure = match &msg.content {
            Ok(content) => match self.transport.deliver(&self.from, msg, content).await {
                Ok(()) => None,
                Err(e) => Some((e.is_permanent(), e.to_string())),
            },
            // A damaged message never opens; one sealed under a key another replica may hold
            // is retried like a relay that is down.
            Err(u) => Some((matches!(u, Unreadable::Damaged(_)), u.to_string())),
        };
        let now = self.clock.now_ms();
        let Some((permanent, error)) = failure else {
            if let Err(e) = self.source.mark_sent(msg.id, now).await {
                // Delivered but not recorded: it will be sent again when the lease ends.
                tracing::error!(error = %e, "email delivered but not marked sent");
            } else {
                tracing::info!("email delivered");
            }
            return Outcome::Sent;
        };
        tracing::Span::current().record("otel.status_code", "ERROR");
        let age_ms = now.saturating_sub(msg.created_at);
        let final_reason = if permanent {
            Some("refused for good")
        } else if age_ms >= self.config.max_age_ms {
            Some("still failing at the maximum age")
        } else if msg.attempts >= self.config.max_attempts {
            Some("still failing after the maximum attempts")
        } else {
            None
        };
        if let Some(why) = final_reason {
            let error = format!("{why}: {error}");
            tracing::error!(error = %error, age_ms, "email undeliverable: given up");
            match self.source.give_up(msg, now, &error).await {
                // Counted once recorded: an unrecorded one comes back and is given up again.
                Ok(()) => {
                    GIVEN_UP.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // The lease brings it back, and the next attempt gives up again.
                    tracing::error!(error = %e, "could not record an undeliverable email");
                }
            }
            return Outcome::GivenUp;
        }
        let delay = retry_delay_ms(msg.attempts);
        // Up to 10% jitter so replicas retrying after a shared outage do not stampede.
        let jitter = rand::thread_rng().gen_range(0..=delay / 10);
        let next = now.saturating_add(delay).saturating_add(jitter);
        if msg.attempts >= LOUD_AFTER_ATTEMPTS {
            tracing::error!(error = %error, retry_in_ms = next - now, "email delivery failed");
        } else {
            tracing::warn!(error = %error, retry_in_ms = next - now, "email delivery failed");
        }
        if let Err(e) = self.source.mark_failed(msg.id, next, &error).await {
            tracing::error!(error = %e, "could not reschedule failed email");
        }
        Outcome::Retry
    }

    /// Makes an untried message due again now, so another replica need not wait out the lease.
    async fn release(&self, msg: &QueuedEmail) {
        let now = self.clock.now_ms();
        if let Err(e) = self
            .source
            .mark_failed(msg.id, now, "released unsent at worker shutdown")
            .await
        {
            tracing::warn!(outbox_id = msg.id, error = %e, "could not release claimed email");
        }
    }
}
