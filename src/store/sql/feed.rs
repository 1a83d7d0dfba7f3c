//! The change feed: which revision a commit takes, and reading and trimming the log.
//!
//! Which keys a transaction changed is not the writer's to say: triggers on the tables a check
//! reads note them in `change_pending` (migration 0003), and the commit moves them into
//! `change_log` under the next revision.

use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::text;
use crate::clock::Millis;
use crate::domain::{ChangeKey, ChangeRecord, Revision};
use crate::store::dialect::Dialect;
use crate::store::rows::{ChangeKeyRow, ChangeRow};
use crate::store::{FeedBounds, StoreError};

/// Commits `tx`; when its triggers noted keys, they become the next revision, which is returned.
pub(super) async fn commit<D>(
    mut tx: Transaction<'static, D>,
    now: Millis,
) -> Result<Option<Revision>, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    ChangeKeyRow: for<'r> FromRow<'r, D::Row>,
{
    let noted: Vec<ChangeKeyRow> = sqlx::query_as(text::TAKE_PENDING_KEYS)
        .fetch_all(&mut *tx)
        .await?;
    let mut keys = noted
        .into_iter()
        .map(ChangeKey::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        tx.commit().await?;
        return Ok(None);
    }
    keys.sort();
    keys.dedup();
    // Last, so the head row is locked for as short a time as possible: it stays
    // locked until commit, which is what orders revisions by commit.
    let revision: i64 = sqlx::query_scalar(text::NEXT_REVISION)
        .fetch_one(&mut *tx)
        .await?;
    for (seq, key) in keys.iter().enumerate() {
        sqlx::query(text::INSERT_CHANGE)
            .bind(revision)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(key.kind())
            .bind(key.icn().map(|i| i.as_str()))
            .bind(key.web_id().map(|w| w.as_str()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    D::announce(&mut tx, revision).await?;
    tx.commit().await?;
    Ok(Some(revision))
}

pub(super) async fn changes_since<D>(
    pool: &Pool<D>,
    after: Revision,
    limit: u32,
) -> Result<Vec<ChangeRecord>, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    ChangeRow: for<'r> FromRow<'r, D::Row>,
{
    let rows: Vec<ChangeRow> = sqlx::query_as(text::CHANGES_SINCE)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(ChangeRecord::try_from).collect()
}

pub(super) async fn bounds<D>(pool: &Pool<D>) -> Result<FeedBounds, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
{
    let (head, trimmed_through): (i64, i64) =
        sqlx::query_as(text::FEED_BOUNDS).fetch_one(pool).await?;
    Ok(FeedBounds {
        head,
        trimmed_through,
    })
}

/// Forgets whole revisions older than `before`; returns how many entries went.
pub(super) async fn trim<D>(pool: &Pool<D>, before: Millis) -> Result<u64, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    (Option<i64>,): for<'r> FromRow<'r, D::Row>,
{
    let mut tx = D::begin_write(pool).await?;
    let upto: Option<i64> = sqlx::query_scalar(text::LAST_REVISION_BEFORE)
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
    let Some(upto) = upto else { return Ok(0) };
    let deleted = sqlx::query(text::DELETE_CHANGES_THROUGH)
        .bind(upto)
        .execute(&mut *tx)
        .await?;
    sqlx::query(text::MARK_TRIMMED_THROUGH)
        .bind(upto)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(D::rows_affected(&deleted))
}
