//! The bulk read a replica loads its cache from before it serves: every part a check reads,
//! from one snapshot, with the feed revision that snapshot reflects.

use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::text;
use crate::domain::{AccountStatus, Contract, Icn, WebId};
use crate::store::dialect::Dialect;
use crate::store::rows::{SnapshotAccountRow, SnapshotMemberRow};
use crate::store::{SnapshotInfo, SnapshotLimits, SnapshotSink, StoreError};

pub(super) async fn load<D>(
    pool: &Pool<D>,
    limits: SnapshotLimits,
    sink: &mut dyn SnapshotSink,
) -> Result<SnapshotInfo, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
    (String, Option<i64>): for<'r> FromRow<'r, D::Row>,
    SnapshotAccountRow: for<'r> FromRow<'r, D::Row>,
    SnapshotMemberRow: for<'r> FromRow<'r, D::Row>,
{
    let limit = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut tx = D::begin_snapshot(pool).await?;
    // Read first, inside the snapshot: the rows below reflect exactly this revision.
    let (revision, _): (i64, i64) = sqlx::query_as(text::FEED_BOUNDS)
        .fetch_one(&mut *tx)
        .await?;

    // A row that does not convert is left out (with its whole account, for a contract), not
    // fatal: one bad row must not keep a replica from serving every other answer. Checks of
    // what was left out read the database and answer INTERNAL there, as they would anyway.
    let mut skipped = 0u64;
    let mut info = SnapshotInfo {
        revision,
        accounts: 0,
        persons: 0,
        members: 0,
    };
    {
        // An account's rows arrive together: it is handed over when the next one begins.
        let mut current: Option<PendingAccount> = None;
        let mut rows = sqlx::query_as::<_, SnapshotAccountRow>(text::SNAPSHOT_ACCOUNTS)
            .bind(limit(limits.accounts))
            .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            if current.as_ref().is_none_or(|a| a.icn != row.icn) {
                if let Some(done) = current.take() {
                    done.hand_over(sink, &mut info, &mut skipped);
                }
                current = Some(PendingAccount {
                    icn: row.icn.clone(),
                    status: row.status().ok(),
                    contracts: Some(Vec::new()),
                });
            }
            if let (Some(account), Some(contract)) = (current.as_mut(), row.contract()) {
                match (contract, account.contracts.as_mut()) {
                    (Ok(c), Some(list)) => list.push(c),
                    (Ok(_), None) => {}
                    (Err(e), _) => {
                        tracing::warn!(error = %e, "a contract left out of the cache snapshot");
                        account.contracts = None;
                    }
                }
            }
        }
        if let Some(done) = current.take() {
            done.hand_over(sink, &mut info, &mut skipped);
        }
    }
    {
        let mut rows = sqlx::query_as::<_, (String, Option<i64>)>(text::SNAPSHOT_PERSONS)
            .bind(limit(limits.persons))
            .fetch(&mut *tx);
        while let Some((web_id, verified_at)) = rows.try_next().await? {
            sink.person(WebId::from_trusted(web_id), verified_at.is_some());
            info.persons += 1;
        }
    }
    {
        let mut rows = sqlx::query_as::<_, SnapshotMemberRow>(text::SNAPSHOT_MEMBERS)
            .bind(limit(limits.members))
            .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let Ok((membership, latest_request)) = row.facts() else {
                skipped += 1;
                continue;
            };
            sink.member(
                Icn::from_trusted(row.icn),
                WebId::from_trusted(row.web_id),
                membership,
                latest_request,
            );
            info.members += 1;
        }
    }
    tx.commit().await?;
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "rows that do not convert were left out of the cache snapshot; checks of them read the database"
        );
    }
    Ok(info)
}

/// An account whose rows are being read: None where its status or a contract did not convert.
struct PendingAccount {
    icn: String,
    status: Option<AccountStatus>,
    contracts: Option<Vec<Contract>>,
}

impl PendingAccount {
    fn hand_over(self, sink: &mut dyn SnapshotSink, info: &mut SnapshotInfo, skipped: &mut u64) {
        match (self.status, self.contracts) {
            (Some(status), Some(list)) => {
                let list: Arc<[Contract]> = list.into();
                sink.account(Icn::from_trusted(self.icn), status, list);
                info.accounts += 1;
            }
            _ => *skipped += 1,
        }
    }
}
