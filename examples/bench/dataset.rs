//! The benchmark's data set, generated inside the database (recursive CTE on SQLite,
//! generate_series on PostgreSQL) so seeding 1M memberships takes seconds.
//!
//! Shape: `accounts` accounts (ICN 1000000+a), each with one 24x7 contract covering every
//! product; `members` memberships, ten per account; persons p0..p(members/2), each a verified
//! member of two accounts. Membership i joins account i/10 and person i % persons.
//!
//! For the workflow benchmark, `workflow_accounts` more accounts (ICN 9000000+k, same contract)
//! each with one Site Technical Contact `wstc<k>` whose email is verified: the administrator
//! who approves the requests made to that account. They are kept apart from the check data
//! set so the check benchmark and its cache size are the same with or without them.

use sqlx::Connection;

#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub accounts: i64,
    pub members: i64,
    pub workflow_accounts: i64,
}

/// The first ICN of the workflow accounts (the check data set's ICNs start at 1000000).
pub const WORKFLOW_ICN_BASE: i64 = 9_000_000;

/// The ICN of workflow account `k`.
pub fn workflow_icn(k: i64) -> String {
    format!("{}", WORKFLOW_ICN_BASE + k)
}

/// The Web ID of workflow account `k`'s Site Technical Contact (email `<web id>@example.com`).
pub fn workflow_stc(k: i64) -> String {
    format!("wstc{k}")
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
        (
            format!(
                "{rec} INSERT INTO accounts (icn, company_name, country_code, status, status_reason, created_at, updated_at) SELECT CAST({WORKFLOW_ICN_BASE} + i AS TEXT), 'Workflow Company ' || i, 'US', 'ACTIVE', '', 0, 0 FROM s"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "{rec} INSERT INTO contracts (icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at) SELECT CAST({WORKFLOW_ICN_BASE} + i AS TEXT), 'WC' || i, '[]', 0, {FAR_FUTURE_MS}, 1, 0 FROM s"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "{rec} INSERT INTO persons (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) SELECT 'wstc' || i, 'wstc' || i || '@example.com', 'Site', 'Contact ' || i, 1, 0, 0 FROM s"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "{rec} INSERT INTO memberships (icn, web_id, role, created_at, updated_at, removed_at) SELECT CAST({WORKFLOW_ICN_BASE} + i AS TEXT), 'wstc' || i, 'SITE_TECHNICAL_CONTACT', 0, 0, NULL FROM s"
            ),
            s.workflow_accounts,
        ),
    ] {
        // The recursive CTE always yields its first row: an empty set needs no statement.
        if n > 0 {
            sqlx::query(&sql).bind(n).execute(&mut *tx).await?;
        }
    }
    forget_change_keys(&mut tx).await?;
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
        (
            format!(
                "INSERT INTO accounts (icn, company_name, country_code, status, status_reason, created_at, updated_at) SELECT ({WORKFLOW_ICN_BASE} + i)::text, 'Workflow Company ' || i, 'US', 'ACTIVE', '', 0, 0 {series}"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "INSERT INTO contracts (icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at) SELECT ({WORKFLOW_ICN_BASE} + i)::text, 'WC' || i, '[]', 0, {FAR_FUTURE_MS}, true, 0 {series}"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "INSERT INTO persons (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) SELECT 'wstc' || i, 'wstc' || i || '@example.com', 'Site', 'Contact ' || i, 1, 0, 0 {series}"
            ),
            s.workflow_accounts,
        ),
        (
            format!(
                "INSERT INTO memberships (icn, web_id, role, created_at, updated_at, removed_at) SELECT ({WORKFLOW_ICN_BASE} + i)::text, 'wstc' || i, 'SITE_TECHNICAL_CONTACT', 0, 0, NULL {series}"
            ),
            s.workflow_accounts,
        ),
    ] {
        sqlx::query(&sql).bind(n).execute(&mut *tx).await?;
    }
    forget_change_keys(&mut tx).await?;
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

/// What the service's write path leaves in the database, read between runs: the change-feed
/// revision (one per committed write transaction that changed what a check reads), audit
/// events and outbox rows (emails) so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footprint {
    pub revision: i64,
    pub audit_events: i64,
    pub emails: i64,
}

const FOOTPRINT: &str = "SELECT (SELECT revision FROM feed_head WHERE id = 1), (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM outbox)";

pub async fn footprint(url: &str) -> anyhow::Result<Footprint> {
    let (revision, audit_events, emails): (i64, i64, i64) = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query_as(FOOTPRINT).fetch_one(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query_as(FOOTPRINT).fetch_one(&mut c).await?
    };
    Ok(Footprint {
        revision,
        audit_events,
        emails,
    })
}

/// The triggers of the tables checks read noted a change key for every seeded row. The seed
/// predates every replica (each loads it in its snapshot), so those keys are dropped: left in
/// place, the service's first write would carry a million of them into one feed revision
/// and hold SQLite's write lock for many seconds.
async fn forget_change_keys<D>(tx: &mut sqlx::Transaction<'_, D>) -> anyhow::Result<()>
where
    D: sqlx::Database,
    for<'c> &'c mut D::Connection: sqlx::Executor<'c, Database = D>,
    for<'q> <D as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, D>,
{
    sqlx::query("DELETE FROM change_pending")
        .execute(&mut **tx)
        .await?;
    Ok(())
}
