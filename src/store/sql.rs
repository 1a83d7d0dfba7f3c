//! The SQL of both backends, written once. SQLite and PostgreSQL accept the same `$n`
//! placeholders, `RETURNING`, `ON CONFLICT` and partial indexes; the only differences (row
//! locks) are macro parameters. `impl_sql_store!` expands to the `Store`, `WriteTx` and
//! `OutboxSource` implementations for one backend.

pub(crate) const ACCOUNT_COLS: &str =
    "icn, company_name, country_code, status, status_reason, created_at, updated_at";
pub(crate) const REQUEST_COLS: &str = "r.id, r.icn, r.web_id, r.country_code, r.requested_role, r.granted_role, r.state, r.decided_by, r.decision_reason, r.created_at, r.updated_at, r.expires_at";
pub(crate) const MEMBER_VIEW_SELECT: &str = "SELECT m.icn, m.web_id, m.role, m.created_at, m.updated_at, m.removed_at, p.email, p.given_name, p.family_name, p.email_verified_at, p.created_at AS p_created_at, p.updated_at AS p_updated_at, a.company_name FROM memberships m JOIN persons p ON p.web_id = m.web_id JOIN accounts a ON a.icn = m.icn";
pub(crate) const CONTRACT_COLS: &str =
    "icn, contract_id, product_ids, starts_at, ends_at, includes_24x7, updated_at";
pub(crate) const VERIFICATION_COLS: &str = "web_id, email, code_hash, salt, created_at, expires_at, wrong_attempts, window_start, sends_in_window";
pub(crate) const AUDIT_COLS: &str =
    "id, at, actor, action, target_type, target_id, icn, before_json, after_json, reason, trace_id";

/// The account's status, the person's verification, their membership and latest request on
/// the account: four independent reads in one round trip.
pub(crate) const CHECK_FACTS_SQL: &str = "SELECT \
     (SELECT a.status FROM accounts a WHERE a.icn = $1) AS status, \
     (SELECT p.email_verified_at FROM persons p WHERE p.web_id = $2) AS email_verified_at, \
     m.role, m.removed_at, lr.state AS req_state, lr.updated_at AS req_updated_at, lr.expires_at AS req_expires_at \
     FROM (SELECT 1 AS one) AS base \
     LEFT JOIN memberships m ON m.icn = $1 AND m.web_id = $2 \
     LEFT JOIN (SELECT r.state, r.updated_at, r.expires_at FROM access_requests r WHERE r.web_id = $2 AND r.icn = $1 ORDER BY r.id DESC LIMIT 1) AS lr ON 1 = 1";

pub(crate) fn request_view_select() -> String {
    format!(
        "SELECT {REQUEST_COLS}, p.email, p.given_name, p.family_name, p.email_verified_at, p.created_at AS p_created_at, p.updated_at AS p_updated_at, a.company_name FROM access_requests r LEFT JOIN persons p ON p.web_id = r.web_id LEFT JOIN accounts a ON a.icn = r.icn"
    )
}

/// Asks for one more row than the page holds, to know whether another page follows.
pub(crate) fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

macro_rules! impl_sql_store {
    ($store:ident, $tx:ident, $db:ty, for_update = $for_update:literal, skip_locked = $skip_locked:literal, notify = $notify:literal) => {
        pub struct $tx {
            tx: sqlx::Transaction<'static, $db>,
        }

        use $crate::store::rows::*;
        use $crate::store::sql::*;

        #[async_trait::async_trait]
        impl $crate::store::WriteTx for $tx {
            async fn account_for_update(&mut self, icn: &Icn) -> Result<Option<Account>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE icn = $1{}", $for_update);
                let row: Option<AccountRow> =
                    sqlx::query_as(&sql).bind(icn.as_str()).fetch_optional(&mut *self.tx).await?;
                row.map(Account::try_from).transpose()
            }

            async fn insert_account(&mut self, a: &Account) -> Result<(), StoreError> {
                sqlx::query(&format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                    .bind(a.icn.as_str())
                    .bind(&a.company_name)
                    .bind(a.country.as_str())
                    .bind(a.status.as_str())
                    .bind(&a.status_reason)
                    .bind(a.created_at)
                    .bind(a.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn update_account(&mut self, a: &Account) -> Result<(), StoreError> {
                sqlx::query("UPDATE accounts SET company_name = $2, status = $3, status_reason = $4, updated_at = $5 WHERE icn = $1")
                    .bind(a.icn.as_str())
                    .bind(&a.company_name)
                    .bind(a.status.as_str())
                    .bind(&a.status_reason)
                    .bind(a.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn person(&mut self, web_id: &WebId) -> Result<Option<Person>, StoreError> {
                let row: Option<PersonRow> = sqlx::query_as("SELECT web_id, email, given_name, family_name, email_verified_at, created_at, updated_at FROM persons WHERE web_id = $1")
                    .bind(web_id.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                Ok(row.map(Person::from))
            }

            async fn upsert_person(&mut self, p: &Person) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO persons (web_id, email, given_name, family_name, email_verified_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (web_id) DO UPDATE SET email = excluded.email, given_name = excluded.given_name, family_name = excluded.family_name, email_verified_at = excluded.email_verified_at, updated_at = excluded.updated_at")
                    .bind(p.web_id.as_str())
                    .bind(p.email.as_str())
                    .bind(&p.given_name)
                    .bind(&p.family_name)
                    .bind(p.email_verified_at)
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn membership_for_update(&mut self, icn: &Icn, web_id: &WebId) -> Result<Option<Membership>, StoreError> {
                let sql = format!("SELECT icn, web_id, role, created_at, updated_at, removed_at FROM memberships WHERE icn = $1 AND web_id = $2{}", $for_update);
                let row: Option<MembershipRow> = sqlx::query_as(&sql)
                    .bind(icn.as_str())
                    .bind(web_id.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                row.map(Membership::try_from).transpose()
            }

            async fn upsert_membership(&mut self, m: &Membership) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO memberships (icn, web_id, role, created_at, updated_at, removed_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (icn, web_id) DO UPDATE SET role = excluded.role, created_at = excluded.created_at, updated_at = excluded.updated_at, removed_at = excluded.removed_at")
                    .bind(m.icn.as_str())
                    .bind(m.web_id.as_str())
                    .bind(m.role.as_str())
                    .bind(m.created_at)
                    .bind(m.updated_at)
                    .bind(m.removed_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn count_active_stcs(&mut self, icn: &Icn) -> Result<i64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE icn = $1 AND role = 'SITE_TECHNICAL_CONTACT' AND removed_at IS NULL")
                    .bind(icn.as_str())
                    .fetch_one(&mut *self.tx)
                    .await?;
                Ok(n)
            }

            async fn administrators(&mut self, icn: &Icn) -> Result<Vec<(Membership, Person)>, StoreError> {
                let sql = format!("{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND m.removed_at IS NULL AND m.role IN ('TECHNICAL_CONTACT', 'SITE_TECHNICAL_CONTACT') ORDER BY m.web_id");
                let rows: Vec<MemberViewRow> = sqlx::query_as(&sql).bind(icn.as_str()).fetch_all(&mut *self.tx).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    let v = MemberView::try_from(r)?;
                    if let Some(p) = v.person {
                        out.push((v.membership, p));
                    }
                }
                Ok(out)
            }

            async fn request_for_update(&mut self, id: AccessRequestId) -> Result<Option<AccessRequest>, StoreError> {
                let sql = format!("SELECT {REQUEST_COLS} FROM access_requests r WHERE r.id = $1{}", $for_update);
                let row: Option<RequestRow> = sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(&mut *self.tx).await?;
                row.map(AccessRequest::try_from).transpose()
            }

            async fn pending_request(&mut self, icn: &Icn, web_id: &WebId) -> Result<Option<AccessRequest>, StoreError> {
                let sql = format!("SELECT {REQUEST_COLS} FROM access_requests r WHERE r.icn = $1 AND r.web_id = $2 AND r.state = 'PENDING'{}", $for_update);
                let row: Option<RequestRow> = sqlx::query_as(&sql)
                    .bind(icn.as_str())
                    .bind(web_id.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                row.map(AccessRequest::try_from).transpose()
            }

            async fn insert_request(&mut self, r: &AccessRequest) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO access_requests (id, icn, web_id, country_code, requested_role, granted_role, state, decided_by, decision_reason, created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(r.id.to_string())
                    .bind(r.icn.as_str())
                    .bind(r.web_id.as_str())
                    .bind(r.country.as_str())
                    .bind(r.requested_role.as_str())
                    .bind(r.granted_role.map(|g| g.as_str()))
                    .bind(r.state.as_str())
                    .bind(r.decided_by.as_ref().map(|d| d.as_str()))
                    .bind(r.decision_reason.as_deref())
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .bind(r.expires_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn update_request(&mut self, r: &AccessRequest) -> Result<(), StoreError> {
                sqlx::query("UPDATE access_requests SET granted_role = $2, state = $3, decided_by = $4, decision_reason = $5, updated_at = $6 WHERE id = $1")
                    .bind(r.id.to_string())
                    .bind(r.granted_role.map(|g| g.as_str()))
                    .bind(r.state.as_str())
                    .bind(r.decided_by.as_ref().map(|d| d.as_str()))
                    .bind(r.decision_reason.as_deref())
                    .bind(r.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn verification(&mut self, web_id: &WebId) -> Result<Option<VerificationCode>, StoreError> {
                let sql = format!("SELECT {VERIFICATION_COLS} FROM verification_codes WHERE web_id = $1{}", $for_update);
                let row: Option<VerificationRow> = sqlx::query_as(&sql).bind(web_id.as_str()).fetch_optional(&mut *self.tx).await?;
                Ok(row.map(VerificationCode::from))
            }

            async fn put_verification(&mut self, c: &VerificationCode) -> Result<(), StoreError> {
                sqlx::query(&format!("INSERT INTO verification_codes ({VERIFICATION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (web_id) DO UPDATE SET email = excluded.email, code_hash = excluded.code_hash, salt = excluded.salt, created_at = excluded.created_at, expires_at = excluded.expires_at, wrong_attempts = excluded.wrong_attempts, window_start = excluded.window_start, sends_in_window = excluded.sends_in_window"))
                    .bind(c.web_id.as_str())
                    .bind(c.email.as_str())
                    .bind(&c.code_hash)
                    .bind(&c.salt)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(c.wrong_attempts)
                    .bind(c.window_start)
                    .bind(c.sends_in_window)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn delete_verification(&mut self, web_id: &WebId) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM verification_codes WHERE web_id = $1")
                    .bind(web_id.as_str())
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn upsert_contract(&mut self, c: &Contract) -> Result<(), StoreError> {
                sqlx::query(&format!("INSERT INTO contracts ({CONTRACT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (icn, contract_id) DO UPDATE SET product_ids = excluded.product_ids, starts_at = excluded.starts_at, ends_at = excluded.ends_at, includes_24x7 = excluded.includes_24x7, updated_at = excluded.updated_at"))
                    .bind(c.icn.as_str())
                    .bind(c.contract_id.as_str())
                    .bind(product_ids_json(c))
                    .bind(c.starts_at)
                    .bind(c.ends_at)
                    .bind(c.includes_24x7)
                    .bind(c.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn insert_audit(&mut self, e: &AuditRecord) -> Result<i64, StoreError> {
                let id: i64 = sqlx::query_scalar("INSERT INTO audit_events (at, actor, action, target_type, target_id, icn, before_json, after_json, reason, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id")
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.target_type)
                    .bind(&e.target_id)
                    .bind(e.icn.as_ref().map(|i| i.as_str()))
                    .bind(e.before_json.as_deref())
                    .bind(e.after_json.as_deref())
                    .bind(e.reason.as_deref())
                    .bind(e.trace_id.as_deref())
                    .fetch_one(&mut *self.tx)
                    .await?;
                Ok(id)
            }

            async fn enqueue_email(&mut self, m: &OutgoingEmail, now: Millis) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO outbox (kind, to_addr, subject, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)")
                    .bind(m.kind)
                    .bind(&m.to)
                    .bind(&m.subject)
                    .bind(&m.body)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn commit(mut self: Box<Self>, now: Millis) -> Result<Option<Revision>, StoreError> {
                // The keys the tables' triggers noted for what this transaction wrote.
                let noted: Vec<ChangeKeyRow> = sqlx::query_as("DELETE FROM change_pending RETURNING kind, icn, web_id")
                    .fetch_all(&mut *self.tx)
                    .await?;
                let mut keys = noted.into_iter().map(ChangeKey::try_from).collect::<Result<Vec<_>, _>>()?;
                if keys.is_empty() {
                    self.tx.commit().await?;
                    return Ok(None);
                }
                keys.sort();
                keys.dedup();
                // Last, so the head row is locked for as short a time as possible: it stays
                // locked until commit, which is what orders revisions by commit.
                let revision: i64 = sqlx::query_scalar("UPDATE feed_head SET revision = revision + 1 WHERE id = 1 RETURNING revision")
                    .fetch_one(&mut *self.tx)
                    .await?;
                for (seq, key) in keys.iter().enumerate() {
                    sqlx::query("INSERT INTO change_log (revision, seq, kind, icn, web_id, at) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(revision)
                        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                        .bind(key.kind())
                        .bind(key.icn().map(|i| i.as_str()))
                        .bind(key.web_id().map(|w| w.as_str()))
                        .bind(now)
                        .execute(&mut *self.tx)
                        .await?;
                }
                if !$notify.is_empty() {
                    // Delivered by PostgreSQL only when (and if) the transaction commits.
                    sqlx::query($notify).bind(revision.to_string()).execute(&mut *self.tx).await?;
                }
                self.tx.commit().await?;
                Ok(Some(revision))
            }
        }

        #[async_trait::async_trait]
        impl $crate::mail::OutboxSource for $store {
            async fn claim_due(&self, now: Millis, lease_until: Millis, limit: u32) -> Result<Vec<QueuedEmail>, OutboxError> {
                let sql = format!("UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3{}) RETURNING id, kind, to_addr, subject, body, attempts, created_at", $skip_locked);
                let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
                    .bind(now)
                    .bind(lease_until)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| OutboxError(e.to_string()))?;
                let mut out: Vec<QueuedEmail> = rows.into_iter().map(QueuedEmail::from).collect();
                out.sort_by_key(|m| m.id);
                Ok(out)
            }

            async fn mark_sent(&self, id: i64, now: Millis) -> Result<(), OutboxError> {
                sqlx::query("UPDATE outbox SET sent_at = $2, last_error = NULL WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| OutboxError(e.to_string()))?;
                Ok(())
            }

            async fn mark_failed(&self, id: i64, next_attempt_at: Millis, error: &str) -> Result<(), OutboxError> {
                sqlx::query("UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND sent_at IS NULL")
                    .bind(id)
                    .bind(next_attempt_at)
                    .bind(error)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| OutboxError(e.to_string()))?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                Self::migrator().run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn begin(&self) -> Result<Box<dyn $crate::store::WriteTx>, StoreError> {
                let tx = self.begin_write().await?;
                Ok(Box::new($tx { tx }))
            }

            async fn account(&self, icn: &Icn) -> Result<Option<Account>, StoreError> {
                let row: Option<AccountRow> = sqlx::query_as(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE icn = $1"))
                    .bind(icn.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Account::try_from).transpose()
            }

            async fn contracts(&self, icn: &Icn) -> Result<Vec<Contract>, StoreError> {
                let rows: Vec<ContractRow> = sqlx::query_as(&format!("SELECT {CONTRACT_COLS} FROM contracts WHERE icn = $1 ORDER BY contract_id"))
                    .bind(icn.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Contract::try_from).collect()
            }

            async fn check_facts(&self, icn: &Icn, web_id: &WebId) -> Result<CheckFacts, StoreError> {
                // Each part is read on its own, never inferred from another's absence: the cache
                // keeps every part under its own key, so a part it keeps must be one it read.
                let row: FactsRow = sqlx::query_as(CHECK_FACTS_SQL)
                    .bind(icn.as_str())
                    .bind(web_id.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                let contracts = match row.status {
                    Some(_) => self.contracts(icn).await?.into(),
                    None => Vec::new().into(),
                };
                row.into_facts(contracts)
            }

            async fn person(&self, web_id: &WebId) -> Result<Option<Person>, StoreError> {
                let row: Option<PersonRow> = sqlx::query_as("SELECT web_id, email, given_name, family_name, email_verified_at, created_at, updated_at FROM persons WHERE web_id = $1")
                    .bind(web_id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(Person::from))
            }

            async fn request_view(&self, id: AccessRequestId) -> Result<Option<AccessRequestView>, StoreError> {
                let sql = format!("{} WHERE r.id = $1", request_view_select());
                let row: Option<RequestViewRow> = sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(&self.pool).await?;
                row.map(AccessRequestView::try_from).transpose()
            }

            async fn list_requests(&self, icn: &Icn, state: Option<AccessRequestState>, before: Option<AccessRequestId>, limit: u32) -> Result<Page<AccessRequestView, AccessRequestId>, StoreError> {
                let sql = format!(
                    "{} WHERE r.icn = $1 AND ($2 IS NULL OR r.state = $2) AND ($3 IS NULL OR r.id < $3) ORDER BY r.id DESC LIMIT $4",
                    request_view_select()
                );
                let rows: Vec<RequestViewRow> = sqlx::query_as(&sql)
                    .bind(icn.as_str())
                    .bind(state.map(|s| s.as_str()))
                    .bind(before.map(|b| b.to_string()))
                    .bind(fetch_limit(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let mut items = rows.into_iter().map(AccessRequestView::try_from).collect::<Result<Vec<_>, _>>()?;
                let next = page_next(&mut items, limit, |v| v.request.id);
                Ok(Page { items, next })
            }

            async fn list_members(&self, icn: &Icn, after: Option<WebId>, limit: u32) -> Result<Page<MemberView, WebId>, StoreError> {
                let sql = format!("{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND m.removed_at IS NULL AND ($2 IS NULL OR m.web_id > $2) ORDER BY m.web_id LIMIT $3");
                let rows: Vec<MemberViewRow> = sqlx::query_as(&sql)
                    .bind(icn.as_str())
                    .bind(after.as_ref().map(|a| a.as_str()))
                    .bind(fetch_limit(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let mut items = rows.into_iter().map(MemberView::try_from).collect::<Result<Vec<_>, _>>()?;
                let next = page_next(&mut items, limit, |v| v.membership.web_id.clone());
                Ok(Page { items, next })
            }

            async fn site_technical_contacts(&self, icn: &Icn) -> Result<Vec<MemberView>, StoreError> {
                let sql = format!("{MEMBER_VIEW_SELECT} WHERE m.icn = $1 AND m.removed_at IS NULL AND m.role = 'SITE_TECHNICAL_CONTACT' ORDER BY m.web_id");
                let rows: Vec<MemberViewRow> = sqlx::query_as(&sql).bind(icn.as_str()).fetch_all(&self.pool).await?;
                rows.into_iter().map(MemberView::try_from).collect()
            }

            async fn memberships_of(&self, web_id: &WebId) -> Result<Vec<MemberView>, StoreError> {
                let sql = format!("{MEMBER_VIEW_SELECT} WHERE m.web_id = $1 AND m.removed_at IS NULL ORDER BY m.icn");
                let rows: Vec<MemberViewRow> = sqlx::query_as(&sql).bind(web_id.as_str()).fetch_all(&self.pool).await?;
                rows.into_iter().map(MemberView::try_from).collect()
            }

            async fn requests_of(&self, web_id: &WebId, limit: u32) -> Result<Vec<AccessRequestView>, StoreError> {
                let sql = format!("{} WHERE r.web_id = $1 ORDER BY r.id DESC LIMIT $2", request_view_select());
                let rows: Vec<RequestViewRow> = sqlx::query_as(&sql)
                    .bind(web_id.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(AccessRequestView::try_from).collect()
            }

            async fn list_audit(&self, icn: Option<&Icn>, before: Option<i64>, limit: u32) -> Result<Page<AuditRecord, i64>, StoreError> {
                let sql = format!("SELECT {AUDIT_COLS} FROM audit_events WHERE ($1 IS NULL OR icn = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3");
                let rows: Vec<AuditRow> = sqlx::query_as(&sql)
                    .bind(icn.map(|i| i.as_str()))
                    .bind(before)
                    .bind(fetch_limit(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let mut items: Vec<AuditRecord> = rows.into_iter().map(AuditRecord::from).collect();
                let next = page_next(&mut items, limit, |e| e.id);
                Ok(Page { items, next })
            }

            async fn changes_since(&self, after: Revision, limit: u32) -> Result<Vec<ChangeRecord>, StoreError> {
                let rows: Vec<ChangeRow> = sqlx::query_as("SELECT revision, kind, icn, web_id, at FROM change_log WHERE revision > $1 AND revision <= $1 + $2 ORDER BY revision, seq")
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(ChangeRecord::try_from).collect()
            }

            async fn feed_bounds(&self) -> Result<FeedBounds, StoreError> {
                let (head, trimmed_through): (i64, i64) = sqlx::query_as("SELECT revision, trimmed_through FROM feed_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(FeedBounds { head, trimmed_through })
            }

            async fn trim_changes(&self, before: Millis) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let upto: Option<i64> = sqlx::query_scalar("SELECT MAX(revision) FROM change_log WHERE at < $1")
                    .bind(before)
                    .fetch_one(&mut *tx)
                    .await?;
                let Some(upto) = upto else { return Ok(0) };
                let deleted = sqlx::query("DELETE FROM change_log WHERE revision <= $1").bind(upto).execute(&mut *tx).await?.rows_affected();
                sqlx::query("UPDATE feed_head SET trimmed_through = $1 WHERE id = 1 AND trimmed_through < $1").bind(upto).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(deleted)
            }

            async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
                self.listen().await
            }

            async fn overdue_requests(&self, now: Millis, limit: u32) -> Result<Vec<AccessRequestId>, StoreError> {
                let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM access_requests WHERE state = 'PENDING' AND expires_at <= $1 ORDER BY expires_at LIMIT $2")
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                ids.iter()
                    .map(|s| AccessRequestId::parse(s).map_err(|_| StoreError::Corrupt(format!("request id {s:?}"))))
                    .collect()
            }
        }
    };
}

/// Trims the extra row fetched by `fetch_limit` and returns the key to continue from.
pub(crate) fn page_next<T, K>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Option<K> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    }
}

pub(crate) use impl_sql_store;
