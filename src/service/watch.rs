//! WatchEntitlementChanges: the change feed as a resumable stream, so a caller can keep its
//! own cache. Replays from the change log, then follows this replica's live feed; falls back
//! to the log whenever it lags behind the live feed.

use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::{Caller, ServiceError, ServiceResult, Services};
use crate::domain::policy::Operation;
use crate::domain::{ChangeRecord, Icn, Reason, Revision};

/// One message of the stream: changes up to `through` (possibly none: a heartbeat).
#[derive(Debug, Clone)]
pub struct WatchBatch {
    pub changes: Vec<ChangeRecord>,
    pub through: Revision,
}

const HEARTBEAT: Duration = Duration::from_secs(15);
const REPLAY_BATCH: u32 = 500;

impl Services {
    pub async fn watch_changes(
        &self,
        caller: &Caller,
        from: Option<Revision>,
        icn: Option<Icn>,
    ) -> ServiceResult<mpsc::Receiver<ServiceResult<WatchBatch>>> {
        self.authorize(caller, Operation::WatchChanges)?;
        let feed = self.feed().clone();
        // Subscribe before reading the log, so nothing falls between the two.
        let live = feed.subscribe();
        let bounds = self.store().feed_bounds().await?;
        let from = from.unwrap_or(feed.applied());
        if from < bounds.trimmed_through {
            return Err(too_old());
        }
        let (tx, rx) = mpsc::channel(16);
        let services = self.clone();
        tokio::spawn(async move {
            if let Err(e) = services.pump(from, icn, live, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }

    async fn pump(
        &self,
        mut pos: Revision,
        icn: Option<Icn>,
        mut live: broadcast::Receiver<std::sync::Arc<[ChangeRecord]>>,
        tx: &mpsc::Sender<ServiceResult<WatchBatch>>,
    ) -> ServiceResult<()> {
        let keep = |c: &ChangeRecord| {
            icn.as_ref()
                .is_none_or(|i| c.key.icn().is_none_or(|ci| ci == i))
        };
        // Replay what the log has past `pos`.
        let mut replaying = true;
        loop {
            if replaying {
                let batch = self.store().changes_since(pos, REPLAY_BATCH).await?;
                // Checked after every read, not only at the end of the log: a trim past `pos`
                // that landed before this read took changes the stream has not sent, and the
                // read alone cannot tell (it returns what follows the gap).
                if self.store().feed_bounds().await?.trimmed_through > pos {
                    return Err(too_old());
                }
                let Some(last) = batch.last().map(|c| c.revision) else {
                    replaying = false;
                    continue;
                };
                pos = last;
                let changes = batch.into_iter().filter(|c| keep(c)).collect();
                if tx
                    .send(Ok(WatchBatch {
                        changes,
                        through: pos,
                    }))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                continue;
            }
            let next = tokio::select! {
                r = live.recv() => r,
                () = tokio::time::sleep(HEARTBEAT) => {
                    if tx.send(Ok(WatchBatch { changes: Vec::new(), through: pos })).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
                () = tx.closed() => return Ok(()),
                () = self.feed().stopping() => {
                    return Err(ServiceError::ShuttingDown);
                }
            };
            match next {
                Ok(batch) => {
                    let Some(last) = batch.last().map(|c| c.revision) else {
                        continue;
                    };
                    if last <= pos {
                        continue;
                    }
                    if batch.first().is_some_and(|c| c.revision > pos + 1) {
                        // The live feed skipped past us (we were slow): read the log instead.
                        replaying = true;
                        continue;
                    }
                    let changes = batch
                        .iter()
                        .filter(|c| c.revision > pos && keep(c))
                        .cloned()
                        .collect();
                    pos = last;
                    if tx
                        .send(Ok(WatchBatch {
                            changes,
                            through: pos,
                        }))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => replaying = true,
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(ServiceError::Unavailable(
                        "the change feed stopped".to_owned(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

fn too_old() -> ServiceError {
    ServiceError::precondition(
        Reason::ConsistencyTokenTooOld,
        "changes after this token were already forgotten; reload your cache and watch from now",
    )
}
