//! What the service counts for operators: decisions by reason, cache hits and misses, and the
//! database's own figures sampled in the background (never on a caller's path).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::Services;
use crate::domain::DecisionReason;
use crate::store::{OpsStats, PoolStats};

#[derive(Default)]
pub(super) struct Counters {
    decisions: [AtomicU64; DecisionReason::ALL.len()],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// The last sample of the database's figures, with the time it was taken.
    ops: Mutex<Option<OpsStats>>,
    warm_seconds: Mutex<f64>,
}

impl Counters {
    pub(super) fn decided(&self, reason: DecisionReason) {
        self.decisions[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn looked_up(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn warmed(&self, seconds: f64) {
        *self
            .warm_seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = seconds;
    }
}

/// A reading of everything operators watch, for the metrics exporter.
#[derive(Debug, Clone, Default)]
pub struct ServiceStats {
    pub decisions: Vec<(DecisionReason, u64)>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Revisions committed but not yet applied here (from the last database sample).
    pub feed_lag_revisions: i64,
    /// Seconds since the feed was last read to its end.
    pub feed_lag_seconds: f64,
    pub pool: PoolStats,
    /// The last database sample, if one succeeded.
    pub ops: Option<OpsStats>,
    /// How long loading the cache took at start.
    pub warm_seconds: f64,
    /// How long the longest-waiting email of the last database sample has been due, on the
    /// service clock (0 when every email was delivered or waits for a later retry).
    pub outbox_oldest_due_age_ms: Option<crate::clock::Millis>,
}

impl Services {
    pub fn stats(&self) -> ServiceStats {
        let c = &self.inner.counters;
        let ops = *c
            .ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let applied = self.inner.feed.applied();
        ServiceStats {
            decisions: DecisionReason::ALL
                .iter()
                .map(|r| (*r, c.decisions[*r as usize].load(Ordering::Relaxed)))
                .collect(),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            feed_lag_revisions: ops.map_or(0, |o| (o.head - applied).max(0)),
            outbox_oldest_due_age_ms: ops.map(|o| {
                o.outbox_oldest_due
                    .map_or(0, |due| (self.now() - due).max(0))
            }),
            feed_lag_seconds: self.inner.feed.staleness().as_secs_f64(),
            pool: self.store().pool_stats(),
            ops,
            warm_seconds: *c
                .warm_seconds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Reads the database's figures now; the metrics then report them until the next sample.
    pub async fn sample_ops(&self) {
        match self.store().ops_stats(self.now()).await {
            Ok(o) => {
                *self
                    .inner
                    .counters
                    .ops
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(o);
            }
            Err(e) => tracing::warn!(error = %e, "sampling the database's figures failed"),
        }
    }
}

/// Samples the database's figures every `every` until `shutdown`.
pub fn spawn_ops_sampler(
    services: Services,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            services.sample_ops().await;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests;
