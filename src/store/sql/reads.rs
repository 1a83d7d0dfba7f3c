//! The `Store` itself: reads outside any transaction, and the entry points to the write
//! transaction, the change feed and the backend's own operations.

use async_trait::async_trait;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::{SqlStore, SqlTx, feed, fetch_limit, page_next, text};
use crate::clock::Millis;
use crate::domain::{
    AccessRequestId, AccessRequestState, AccessRequestView, Account, AuditRecord, ChangeRecord,
    CheckFacts, Contract, Icn, MemberView, Person, Revision, WebId,
};
use crate::mail::OutboxSource;
use crate::store::dialect::Dialect;
use crate::store::rows::{
    AccountRow, AuditRow, ChangeRow, ContractRow, FactsRow, MemberViewRow, PersonRow,
    RequestViewRow,
};
use crate::store::{ChangeSignal, FeedBounds, Page, Store, StoreError, WriteTx};

#[async_trait]
impl<D> Store for SqlStore<D>
where
    D: Dialect,
    Self: OutboxSource,
    SqlTx<D>: WriteTx,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    (String,): for<'r> FromRow<'r, D::Row>,
    (Option<i64>,): for<'r> FromRow<'r, D::Row>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
    AccountRow: for<'r> FromRow<'r, D::Row>,
    ContractRow: for<'r> FromRow<'r, D::Row>,
    FactsRow: for<'r> FromRow<'r, D::Row>,
    PersonRow: for<'r> FromRow<'r, D::Row>,
    RequestViewRow: for<'r> FromRow<'r, D::Row>,
    MemberViewRow: for<'r> FromRow<'r, D::Row>,
    AuditRow: for<'r> FromRow<'r, D::Row>,
    ChangeRow: for<'r> FromRow<'r, D::Row>,
{
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        D::migrate(&self.pool).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError> {
        let tx = D::begin_write(&self.pool).await?;
        Ok(Box::new(SqlTx { tx }))
    }

    async fn account(&self, icn: &Icn) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&text::account_by_icn(""))
            .bind(icn.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Account::try_from).transpose()
    }

    async fn contracts(&self, icn: &Icn) -> Result<Vec<Contract>, StoreError> {
        let rows: Vec<ContractRow> = sqlx::query_as(&text::contracts_of())
            .bind(icn.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Contract::try_from).collect()
    }

    async fn check_facts(&self, icn: &Icn, web_id: &WebId) -> Result<CheckFacts, StoreError> {
        // Each part is read on its own, never inferred from another's absence: the cache
        // keeps every part under its own key, so a part it keeps must be one it read.
        let row: FactsRow = sqlx::query_as(text::CHECK_FACTS)
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
        let row: Option<PersonRow> = sqlx::query_as(text::PERSON_BY_WEB_ID)
            .bind(web_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Person::from))
    }

    async fn request_view(
        &self,
        id: AccessRequestId,
    ) -> Result<Option<AccessRequestView>, StoreError> {
        let row: Option<RequestViewRow> = sqlx::query_as(&text::request_view_by_id())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(AccessRequestView::try_from).transpose()
    }

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
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .into_iter()
            .map(AccessRequestView::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page_next(&mut items, limit, |v| v.request.id);
        Ok(Page { items, next })
    }

    async fn list_members(
        &self,
        icn: &Icn,
        after: Option<WebId>,
        limit: u32,
    ) -> Result<Page<MemberView, WebId>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::active_members_page())
            .bind(icn.as_str())
            .bind(after.as_ref().map(|a| a.as_str()))
            .bind(fetch_limit(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .into_iter()
            .map(MemberView::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page_next(&mut items, limit, |v| v.membership.web_id.clone());
        Ok(Page { items, next })
    }

    async fn site_technical_contacts(&self, icn: &Icn) -> Result<Vec<MemberView>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::site_technical_contacts())
            .bind(icn.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(MemberView::try_from).collect()
    }

    async fn memberships_of(&self, web_id: &WebId) -> Result<Vec<MemberView>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::memberships_of())
            .bind(web_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(MemberView::try_from).collect()
    }

    async fn requests_of(
        &self,
        web_id: &WebId,
        limit: u32,
    ) -> Result<Vec<AccessRequestView>, StoreError> {
        let rows: Vec<RequestViewRow> = sqlx::query_as(&text::requests_of())
            .bind(web_id.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AccessRequestView::try_from).collect()
    }

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
            .fetch_all(&self.pool)
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

    async fn trim_changes(&self, before: Millis) -> Result<u64, StoreError> {
        feed::trim(&self.pool, before).await
    }

    async fn change_signal(&self) -> Result<Option<Box<dyn ChangeSignal>>, StoreError> {
        D::listen(&self.pool).await
    }

    async fn overdue_requests(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<AccessRequestId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(text::OVERDUE_REQUESTS)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        ids.iter()
            .map(|s| {
                AccessRequestId::parse(s)
                    .map_err(|_| StoreError::Corrupt(format!("request id {s:?}")))
            })
            .collect()
    }
}
