//! The `Store` itself: reads outside any transaction, and the entry points to the write
//! transaction, the change feed and the backend's own operations.

use async_trait::async_trait;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::{SqlStore, SqlTx, feed, fetch_limit, page_next, request_ids, snapshot, text};
use crate::clock::Millis;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AuditRecord,
    ChangeRecord, CheckFacts, Contract, DomainRule, EmailDomain, Icn, MemberView, Nudge, Person,
    Revision, WebId,
};
use crate::store::OutboxStore;
use crate::store::dialect::Dialect;
use crate::store::rows::{
    AccountRow, AuditRow, ChangeRow, ContractRow, DomainRuleRow, FactsRow, MemberViewRow,
    PersonRow, RequestRow, RequestViewRow, SnapshotAccountRow, SnapshotMemberRow,
};
use crate::store::{
    ChangeSignal, FeedBounds, OpsStats, Page, PoolStats, RequestClaim, RequestKey, SnapshotInfo,
    SnapshotLimits, SnapshotSink, Store, StoreError, WriteTx,
};

#[async_trait]
impl<D> Store for SqlStore<D>
where
    D: Dialect,
    Self: OutboxStore,
    SqlTx<D>: WriteTx,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'q> Vec<u8>: Encode<'q, D> + Type<D>,
    (String, Option<Vec<u8>>): for<'r> FromRow<'r, D::Row>,
    (String,): for<'r> FromRow<'r, D::Row>,
    (Option<i64>,): for<'r> FromRow<'r, D::Row>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
    (i64, Option<i64>): for<'r> FromRow<'r, D::Row>,
    (i64, i64, i64): for<'r> FromRow<'r, D::Row>,
    AccountRow: for<'r> FromRow<'r, D::Row>,
    ContractRow: for<'r> FromRow<'r, D::Row>,
    FactsRow: for<'r> FromRow<'r, D::Row>,
    PersonRow: for<'r> FromRow<'r, D::Row>,
    RequestViewRow: for<'r> FromRow<'r, D::Row>,
    RequestRow: for<'r> FromRow<'r, D::Row>,
    MemberViewRow: for<'r> FromRow<'r, D::Row>,
    DomainRuleRow: for<'r> FromRow<'r, D::Row>,
    AuditRow: for<'r> FromRow<'r, D::Row>,
    ChangeRow: for<'r> FromRow<'r, D::Row>,
    (String, Option<i64>): for<'r> FromRow<'r, D::Row>,
    (String, String): for<'r> FromRow<'r, D::Row>,
    (String, i64): for<'r> FromRow<'r, D::Row>,
    SnapshotAccountRow: for<'r> FromRow<'r, D::Row>,
    SnapshotMemberRow: for<'r> FromRow<'r, D::Row>,
{
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    fn pool_stats(&self) -> PoolStats {
        SqlStore::pool_stats(self)
    }

    async fn ops_stats(&self, now: Millis) -> Result<OpsStats, StoreError> {
        let mut conn = self.conn().await?;
        let (head, _): (i64, i64) = sqlx::query_as(text::FEED_BOUNDS)
            .fetch_one(&mut *conn)
            .await?;
        let (outbox_backlog, outbox_oldest_due): (i64, Option<i64>) =
            sqlx::query_as(text::OUTBOX_STATS)
                .fetch_one(&mut *conn)
                .await?;
        const DAY: Millis = 24 * 3600 * 1000;
        let (fresh, week, older): (i64, i64, i64) = sqlx::query_as(text::PENDING_BY_AGE)
            .bind(now - DAY)
            .bind(now - 7 * DAY)
            .fetch_one(&mut *conn)
            .await?;
        let (orphaned_accounts,): (i64,) = sqlx::query_as(text::COUNT_ORPHANS)
            .fetch_one(&mut *conn)
            .await?;
        Ok(OpsStats {
            head,
            outbox_backlog,
            outbox_oldest_due,
            pending_requests: [fresh, week, older],
            orphaned_accounts,
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        D::migrate(&self.pool).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "BEGIN", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "BEGIN", db.query.summary = "BEGIN"))]
    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError> {
        let tx = self.waited(D::begin_write(&self.pool)).await?;
        Ok(Box::new(SqlTx { tx }))
    }

    #[tracing::instrument(name = "SELECT accounts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "accounts", db.query.summary = "SELECT accounts"))]
    async fn account(&self, icn: &Icn) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&text::account_by_icn(""))
            .bind(icn.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(Account::try_from).transpose()
    }

    #[tracing::instrument(name = "SELECT contracts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "contracts", db.query.summary = "SELECT contracts"))]
    async fn contracts(&self, icn: &Icn) -> Result<Vec<Contract>, StoreError> {
        let rows: Vec<ContractRow> = sqlx::query_as(&text::contracts_of())
            .bind(icn.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.into_iter().map(Contract::try_from).collect()
    }

    #[tracing::instrument(name = "SELECT accounts persons memberships access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT accounts persons memberships access_requests"))]
    async fn check_facts(&self, icn: &Icn, web_id: &WebId) -> Result<CheckFacts, StoreError> {
        // Each part is read on its own, never inferred from another's absence: the cache
        // keeps every part under its own key, so a part it keeps must be one it read.
        let row: FactsRow = sqlx::query_as(text::CHECK_FACTS)
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .fetch_one(&mut *self.conn().await?)
            .await?;
        let contracts = match row.status {
            Some(_) => self.contracts(icn).await?.into(),
            None => Vec::new().into(),
        };
        row.into_facts(contracts)
    }

    #[tracing::instrument(name = "SELECT persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "persons", db.query.summary = "SELECT persons"))]
    async fn person(&self, web_id: &WebId) -> Result<Option<Person>, StoreError> {
        let row: Option<PersonRow> = sqlx::query_as(text::PERSON_BY_WEB_ID)
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(Person::from))
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn request_view(
        &self,
        id: AccessRequestId,
    ) -> Result<Option<AccessRequestView>, StoreError> {
        let row: Option<RequestViewRow> = sqlx::query_as(&text::request_view_by_id())
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(AccessRequestView::try_from).transpose()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn list_requests(
        &self,
        icn: &Icn,
        state: Option<AccessRequestState>,
        before: Option<AccessRequestId>,
        limit: u32,
    ) -> Result<Page<AccessRequestView, AccessRequestId>, StoreError> {
        let rows: Vec<RequestViewRow> = sqlx::query_as(&text::requests_page())
            .bind(icn.as_str())
            .bind(state.map(|s| s.as_str()))
            .bind(before.map(|b| b.to_string()))
            .bind(fetch_limit(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut items = rows
            .into_iter()
            .map(AccessRequestView::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page_next(&mut items, limit, |v| v.request.id);
        Ok(Page { items, next })
    }

    #[tracing::instrument(name = "SELECT memberships persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT memberships persons"))]
    async fn list_members(
        &self,
        icn: &Icn,
        after: Option<WebId>,
        limit: u32,
        now: Millis,
    ) -> Result<Page<MemberView, WebId>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::active_members_page())
            .bind(icn.as_str())
            .bind(after.as_ref().map(|a| a.as_str()))
            .bind(fetch_limit(limit))
            .bind(now)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut items = rows
            .into_iter()
            .map(MemberView::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page_next(&mut items, limit, |v| v.membership.web_id.clone());
        Ok(Page { items, next })
    }

    #[tracing::instrument(name = "SELECT email_domain_policies", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "email_domain_policies", db.query.summary = "SELECT email_domain_policies"))]
    async fn list_domain_rules(
        &self,
        icn: &Icn,
        after: Option<EmailDomain>,
        limit: u32,
    ) -> Result<Page<DomainRule, EmailDomain>, StoreError> {
        let rows: Vec<DomainRuleRow> = sqlx::query_as(&text::domain_rules_page())
            .bind(icn.as_str())
            .bind(after.as_ref().map(|a| a.as_str()))
            .bind(fetch_limit(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut items = rows
            .into_iter()
            .map(DomainRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page_next(&mut items, limit, |r| r.domain.clone());
        Ok(Page { items, next })
    }

    #[tracing::instrument(name = "SELECT memberships persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT memberships persons"))]
    #[tracing::instrument(name = "SELECT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "memberships", db.query.summary = "SELECT memberships"))]
    async fn administrators_of(
        &self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::administrators())
            .bind(icn.as_str())
            .bind(now)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.into_iter().map(MemberView::try_from).collect()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn pending_request_of(
        &self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<AccessRequest>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(&text::pending_request(""))
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(AccessRequest::try_from).transpose()
    }

    async fn site_technical_contacts(
        &self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::site_technical_contacts())
            .bind(icn.as_str())
            .bind(now)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.into_iter().map(MemberView::try_from).collect()
    }

    #[tracing::instrument(name = "SELECT accounts memberships access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT accounts memberships access_requests"))]
    async fn entitlement_candidates(
        &self,
        web_id: &WebId,
        after: Option<&Icn>,
        limit: u32,
    ) -> Result<Vec<(Icn, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(text::ENTITLEMENT_CANDIDATES)
            .bind(web_id.as_str())
            .bind(after.map(|a| a.as_str()))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(icn, name)| (Icn::from_trusted(icn), name))
            .collect())
    }

    #[tracing::instrument(name = "SELECT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "memberships", db.query.summary = "SELECT memberships"))]
    async fn memberships_of(
        &self,
        web_id: &WebId,
        now: Millis,
    ) -> Result<Vec<MemberView>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::memberships_of())
            .bind(web_id.as_str())
            .bind(now)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.into_iter().map(MemberView::try_from).collect()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn requests_of(
        &self,
        web_id: &WebId,
        limit: u32,
    ) -> Result<Vec<AccessRequestView>, StoreError> {
        let rows: Vec<RequestViewRow> = sqlx::query_as(&text::requests_of())
            .bind(web_id.as_str())
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.into_iter().map(AccessRequestView::try_from).collect()
    }

    #[tracing::instrument(name = "SELECT audit_events", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "audit_events", db.query.summary = "SELECT audit_events"))]
    async fn list_audit(
        &self,
        icn: Option<&Icn>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<AuditRecord, i64>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(text::AUDIT_PAGE)
            .bind(icn.map(|i| i.as_str()))
            .bind(before)
            .bind(fetch_limit(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut items: Vec<AuditRecord> = rows.into_iter().map(AuditRecord::from).collect();
        let next = page_next(&mut items, limit, |e| e.id);
        Ok(Page { items, next })
    }

    async fn changes_since(
        &self,
        after: Revision,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        feed::changes_since(&self.pool, after, limit).await
    }

    async fn feed_bounds(&self) -> Result<FeedBounds, StoreError> {
        feed::bounds(&self.pool).await
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        let (uid,): (String,) = sqlx::query_as(text::DATABASE_ID)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(uid)
    }

    #[tracing::instrument(name = "SELECT request_id_claims", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "request_id_claims", db.query.summary = "SELECT request_id_claims"))]
    async fn request_claim(
        &self,
        key: &RequestKey,
        since: Millis,
    ) -> Result<Option<RequestClaim>, StoreError> {
        request_ids::get(&self.pool, key, since).await
    }

    #[tracing::instrument(name = "UPDATE request_id_claims", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "request_id_claims", db.query.summary = "UPDATE request_id_claims"))]
    async fn save_request_answer(&self, key: &RequestKey, answer: &[u8]) -> Result<(), StoreError> {
        request_ids::save_answer(&self.pool, key, answer).await
    }

    async fn trim_request_claims(&self, before: Millis) -> Result<u64, StoreError> {
        request_ids::trim(&self.pool, before).await
    }

    async fn trim_changes(&self, before: Millis) -> Result<u64, StoreError> {
        feed::trim(&self.pool, before).await
    }

    #[tracing::instrument(name = "SELECT accounts contracts persons memberships access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT accounts contracts persons memberships access_requests"))]
    async fn snapshot(
        &self,
        limits: SnapshotLimits,
        sink: &mut dyn SnapshotSink,
    ) -> Result<SnapshotInfo, StoreError> {
        snapshot::load(&self.pool, limits, sink).await
    }

    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        D::listen(&self.pool).await
    }

    async fn lapsed_memberships(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, WebId)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(text::LAPSED_MEMBERSHIPS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(icn, web_id)| (Icn::from_trusted(icn), WebId::from_trusted(web_id)))
            .collect())
    }

    async fn due_contract_warnings(
        &self,
        now: Millis,
        warn_by: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, Millis)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(text::DUE_CONTRACT_WARNINGS)
            .bind(now)
            .bind(warn_by)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(icn, end)| (Icn::from_trusted(icn), end))
            .collect())
    }

    async fn due_recertifications(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Icn, WebId)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(text::DUE_RECERTIFICATIONS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(icn, web_id)| (Icn::from_trusted(icn), WebId::from_trusted(web_id)))
            .collect())
    }

    async fn overdue_requests(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<AccessRequestId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(text::OVERDUE_REQUESTS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        ids.iter()
            .map(|s| {
                AccessRequestId::parse(s)
                    .map_err(|_| StoreError::Corrupt(format!("request id {s:?}")))
            })
            .collect()
    }

    async fn due_nudges(
        &self,
        nudge: Nudge,
        made_by: Millis,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<AccessRequestId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(text::DUE_NUDGES)
            .bind(nudge.as_str())
            .bind(made_by)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        ids.iter()
            .map(|s| {
                AccessRequestId::parse(s)
                    .map_err(|_| StoreError::Corrupt(format!("request id {s:?}")))
            })
            .collect()
    }

    async fn orphans(
        &self,
        orphaned: bool,
        made_by: Millis,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<Icn>, StoreError> {
        let mut conn = self.conn().await?;
        let icns: Vec<String> = if orphaned {
            sqlx::query_scalar(text::UNREPORTED_ORPHANS)
                .bind(made_by)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
        } else {
            sqlx::query_scalar(text::ADOPTED_ORPHANS)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
        };
        Ok(icns.into_iter().map(Icn::from_trusted).collect())
    }
}
