//! Following the change feed: each replica applies every committed change to its cache, in
//! revision order, woken by PostgreSQL NOTIFY (or by its own commits) and polling as a backstop.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};

use super::cache::FactsCache;
use crate::domain::{ChangeRecord, Revision};
use crate::store::{SharedStore, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// Poll even without a notification: bounds staleness when a NOTIFY is lost.
    pub poll_interval: Duration,
    /// If the feed has not been read successfully for this long, checks read the database.
    pub max_staleness: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            max_staleness: Duration::from_secs(1),
        }
    }
}

pub struct Feed {
    store: SharedStore,
    cache: Arc<FactsCache>,
    applied: watch::Sender<Revision>,
    wake: Notify,
    started: Instant,
    /// Milliseconds since `started` of the last successful read of the feed.
    last_ok_ms: AtomicI64,
    changes: broadcast::Sender<Arc<[ChangeRecord]>>,
    config: FeedConfig,
    /// The server's stop signal: long-lived readers of the feed (change streams) end on it,
    /// or a graceful shutdown would wait for them forever.
    stopping: watch::Receiver<bool>,
}

const BATCH: u32 = 1000;

impl Feed {
    /// Starts following after revision `from`: what the cache already reflects (the revision
    /// of the snapshot it was loaded from; for an empty cache, any revision will do).
    pub fn start(
        store: SharedStore,
        cache: Arc<FactsCache>,
        config: FeedConfig,
        from: Revision,
        shutdown: watch::Receiver<bool>,
    ) -> (Arc<Feed>, tokio::task::JoinHandle<()>) {
        let (applied, _) = watch::channel(from);
        let (changes, _) = broadcast::channel(1024);
        let feed = Arc::new(Feed {
            store,
            cache,
            applied,
            wake: Notify::new(),
            started: Instant::now(),
            last_ok_ms: AtomicI64::new(0),
            changes,
            config,
            stopping: shutdown.clone(),
        });
        let task = tokio::spawn(feed.clone().follow(shutdown));
        (feed, task)
    }

    pub fn applied(&self) -> Revision {
        *self.applied.borrow()
    }

    /// True while the feed was read recently enough that cached facts may be served.
    pub fn is_fresh(&self) -> bool {
        let age = self.elapsed_ms() - self.last_ok_ms.load(Ordering::SeqCst);
        age <= i64::try_from(self.config.max_staleness.as_millis()).unwrap_or(i64::MAX)
    }

    /// How long ago the feed was last read to its end.
    pub fn staleness(&self) -> Duration {
        let age = self.elapsed_ms() - self.last_ok_ms.load(Ordering::SeqCst);
        Duration::from_millis(u64::try_from(age).unwrap_or(0))
    }

    /// Waits (up to `timeout`) until revision `r` is applied; wakes the follower first.
    pub async fn wait_for(&self, r: Revision, timeout: Duration) -> bool {
        if self.applied() >= r {
            return true;
        }
        self.wake.notify_one();
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|a| *a >= r))
            .await
            .is_ok_and(|x| x.is_ok())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[ChangeRecord]>> {
        self.changes.subscribe()
    }

    /// Resolves once the server is stopping.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut signal = None;
        loop {
            if signal.is_none() {
                signal = match self.store.change_signal().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; polling only");
                        None
                    }
                };
            }
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "reading the change feed failed");
            }
            let notified = async {
                match signal.as_mut() {
                    Some(s) => s.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = notified => if let Err(e) = r {
                    tracing::warn!(error = %e, "change notifications lost; reconnecting");
                    signal = None;
                },
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        loop {
            let from = self.applied();
            let batch = self.store.changes_since(from, BATCH).await?;
            let Some(last) = batch.last().map(|c| c.revision) else {
                break;
            };
            // Revisions are gapless (one per committing transaction, handed out under the
            // feed_head row lock). A gap means entries were trimmed before we read them.
            if batch.first().is_some_and(|c| c.revision != from + 1) {
                tracing::warn!(
                    from,
                    first = batch[0].revision,
                    "change feed gap; clearing the cache"
                );
                self.cache.clear();
            } else {
                self.cache.apply(&batch);
            }
            self.applied.send_replace(last);
            let _ = self.changes.send(batch.into());
            if last < from + i64::from(BATCH) {
                break;
            }
        }
        self.last_ok_ms.store(self.elapsed_ms(), Ordering::SeqCst);
        Ok(())
    }
}

/// How long the change log keeps entries: a watcher (or replica) that was away longer
/// must resynchronise.
pub const FEED_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Trims the change log every ten minutes.
pub fn spawn_feed_trimmer(
    store: SharedStore,
    clock: crate::clock::SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.trim_changes(clock.now_ms() - FEED_RETENTION_MS).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(trimmed = n, "trimmed the change log"),
                Err(e) => tracing::warn!(error = %e, "trimming the change log failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests;
