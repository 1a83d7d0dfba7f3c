//! The benchmark's data set, generated inside the database (recursive CTE on SQLite,
//! generate_series on PostgreSQL) so seeding 1M memberships takes seconds.
//!
//! Shape: `accounts` accounts (ICN 1000000+a), each with one 24x7 contract covering every
//! product; `members` memberships, ten per account; persons p0..p(members/2), each a verified
//! member of two accounts. Membership i joins account i/10 and person i % persons.

use sqlx::Connection;

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub accounts: i64,
    pub members: i64,
}

impl Shape {
    pub fn persons(&self) -> i64 {
        (self.members / 2).max(1)
    }
    /// The (ICN, Web ID) of membership `i`.
    pub fn member(&self, i: i64) -> (String, String) {
        (
            format!("{}", 1_000_000 + i / 10),
            format!("p{}", i % self.persons()),
        )
    }
}

const FAR_FUTURE_MS: i64 = 4_102_444_800_000; // 2100-01-01

pub async fn seed_sqlite(url: &str, s: Shape) -> anyhow::Result<()> {
    let mut c = sqlx::SqliteConnection::connect(url).await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut c)
        .await?;
    let rec = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $1 - 1)";
    let mut tx = c.begin().await?;
    for (sql, n) in [
        (
            format!(
                "{rec} INSERT INTO accounts (icn, company_name, country_code, status, status_reason, created_at, updated_at) SELECT CAST(1000000 + i AS TEXT), 'Company ' || i, 'US', 'ACTIVE', '', 0, 0 FROM s"
            ),
            s.accounts,
        ),
        (
            format!(
                "{rec} INSERT INTO contracts (icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at) SELECT CAST(1000000 + i AS TEXT), 'C' || i, '[]', 0, {FAR_FUTURE_MS}, 1, 0 FROM s"
            ),
            s.accounts,
        ),
        (
            format!(
                "{rec} INSERT INTO persons (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) SELECT 'p' || i, 'p' || i || '@example.com', '', '', 1, 0, 0 FROM s"
            ),
            s.persons(),
        ),
        (
            format!(
                "{rec} INSERT INTO memberships (icn, web_id, role, created_at, updated_at, removed_at) SELECT CAST(1000000 + i / 10 AS TEXT), 'p' || (i % {}), 'AUTHORIZED_USER', 0, 0, NULL FROM s",
                s.persons()
            ),
            s.members,
        ),
    ] {
        sqlx::query(&sql).bind(n).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn seed_postgres(url: &str, s: Shape) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    let series = "FROM generate_series(0, $1 - 1) AS i";
    let mut tx = c.begin().await?;
    for (sql, n) in [
        (
            format!(
                "INSERT INTO accounts (icn, company_name, country_code, status, status_reason, created_at, updated_at) SELECT (1000000 + i)::text, 'Company ' || i, 'US', 'ACTIVE', '', 0, 0 {series}"
            ),
            s.accounts,
        ),
        (
            format!(
                "INSERT INTO contracts (icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at) SELECT (1000000 + i)::text, 'C' || i, '[]', 0, {FAR_FUTURE_MS}, true, 0 {series}"
            ),
            s.accounts,
        ),
        (
            format!(
                "INSERT INTO persons (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) SELECT 'p' || i, 'p' || i || '@example.com', '', '', 1, 0, 0 {series}"
            ),
            s.persons(),
        ),
        (
            format!(
                "INSERT INTO memberships (icn, web_id, role, created_at, updated_at, removed_at) SELECT (1000000 + i / 10)::text, 'p' || (i % {}), 'AUTHORIZED_USER', 0, 0, NULL {series}",
                s.persons()
            ),
            s.members,
        ),
    ] {
        sqlx::query(&sql).bind(n).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(&mut c).await?;
    Ok(())
}

/// A fresh PostgreSQL database for the run, next to the one `admin_url` names.
pub async fn fresh_postgres(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let mut c = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

pub async fn drop_postgres(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    Ok(())
}
