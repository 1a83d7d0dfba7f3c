//! AIP-155 request-id claims (migration 0016): written in a mutation's own transaction, so a
//! change that commits always leaves its claim and a duplicate cannot commit as well; the
//! answer is saved beside it after the commit.

use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::clock::Millis;
use crate::store::dialect::Dialect;
use crate::store::{RequestClaim, RequestKey, StoreError};

/// A claim made before `expired_before` no longer holds its key: it goes first. Fails with
/// `Conflict` when a live claim has the key (on PostgreSQL after waiting for the transaction
/// that wrote it, if that is still open).
pub(super) async fn insert<D>(
    conn: &mut D::Connection,
    key: &RequestKey,
    fingerprint: &str,
    now: Millis,
    expired_before: Millis,
) -> Result<(), StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
{
    sqlx::query(
        "DELETE FROM request_id_claims \
         WHERE web_id = $1 AND method = $2 AND request_id = $3 AND created_at < $4",
    )
    .bind(key.web_id.as_str())
    .bind(key.method.as_str())
    .bind(key.request_id.as_str())
    .bind(expired_before)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO request_id_claims (web_id, method, request_id, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.web_id.as_str())
    .bind(key.method.as_str())
    .bind(key.request_id.as_str())
    .bind(fingerprint)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The claim of `key` made at or after `since`.
pub(super) async fn get<D>(
    pool: &Pool<D>,
    key: &RequestKey,
    since: Millis,
) -> Result<Option<RequestClaim>, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    (String, Option<Vec<u8>>): for<'r> FromRow<'r, D::Row>,
{
    let row: Option<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT fingerprint, answer FROM request_id_claims \
         WHERE web_id = $1 AND method = $2 AND request_id = $3 AND created_at >= $4",
    )
    .bind(key.web_id.as_str())
    .bind(key.method.as_str())
    .bind(key.request_id.as_str())
    .bind(since)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(fingerprint, answer)| RequestClaim {
        fingerprint,
        answer,
    }))
}

/// Saves the first answer; one saved already stays.
pub(super) async fn save_answer<D>(
    pool: &Pool<D>,
    key: &RequestKey,
    answer: &[u8],
) -> Result<(), StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Vec<u8>: Encode<'q, D> + Type<D>,
{
    sqlx::query(
        "UPDATE request_id_claims SET answer = $4 \
         WHERE web_id = $1 AND method = $2 AND request_id = $3 AND answer IS NULL",
    )
    .bind(key.web_id.as_str())
    .bind(key.method.as_str())
    .bind(key.request_id.as_str())
    .bind(answer.to_vec())
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets claims made before `before`; returns how many.
pub(super) async fn trim<D>(pool: &Pool<D>, before: Millis) -> Result<u64, StoreError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
{
    let done = sqlx::query("DELETE FROM request_id_claims WHERE created_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(D::rows_affected(&done))
}
