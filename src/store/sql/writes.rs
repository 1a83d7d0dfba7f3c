//! The write transaction. Reads named `*_for_update` take the dialect's row lock, so two
//! transactions deciding on the same row serialise on PostgreSQL.

use async_trait::async_trait;
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use super::{SqlTx, feed, request_ids, text};
use crate::clock::Millis;
use crate::domain::verification::VerificationCode;
use crate::domain::{
    AccessRequest, AccessRequestId, Account, AuditRecord, Contract, DomainRule, EmailDomain, Icn,
    MemberView, Membership, Nudge, Person, Revision, WebId,
};
use crate::mail::SealedEmail;
use crate::store::dialect::Dialect;
use crate::store::rows::{
    AccountRow, ChangeKeyRow, ContractRow, DomainRuleRow, MemberViewRow, MembershipRow, PersonRow,
    RequestRow, VerificationRow, product_ids_json,
};
use crate::store::{RequestKey, StoreError, WriteTx};

#[async_trait]
impl<D> WriteTx for SqlTx<D>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Type<D>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    (String, i64): for<'r> FromRow<'r, D::Row>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
    ContractRow: for<'r> FromRow<'r, D::Row>,
    AccountRow: for<'r> FromRow<'r, D::Row>,
    PersonRow: for<'r> FromRow<'r, D::Row>,
    MembershipRow: for<'r> FromRow<'r, D::Row>,
    MemberViewRow: for<'r> FromRow<'r, D::Row>,
    RequestRow: for<'r> FromRow<'r, D::Row>,
    VerificationRow: for<'r> FromRow<'r, D::Row>,
    DomainRuleRow: for<'r> FromRow<'r, D::Row>,
    ChangeKeyRow: for<'r> FromRow<'r, D::Row>,
{
    #[tracing::instrument(name = "SELECT accounts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "accounts", db.query.summary = "SELECT accounts"))]
    async fn account_for_update(&mut self, icn: &Icn) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&text::account_by_icn(D::LOCK_ROWS))
            .bind(icn.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(Account::try_from).transpose()
    }

    #[tracing::instrument(name = "INSERT accounts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "accounts", db.query.summary = "INSERT accounts"))]
    async fn insert_account(&mut self, a: &Account) -> Result<(), StoreError> {
        sqlx::query(&text::insert_account())
            .bind(a.icn.as_str())
            .bind(a.company_name.as_str())
            .bind(a.country.as_str())
            .bind(a.status.as_str())
            .bind(a.status_reason.as_str())
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "UPDATE accounts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "accounts", db.query.summary = "UPDATE accounts"))]
    async fn update_account(&mut self, a: &Account) -> Result<(), StoreError> {
        sqlx::query(text::UPDATE_ACCOUNT)
            .bind(a.icn.as_str())
            .bind(a.company_name.as_str())
            .bind(a.status.as_str())
            .bind(a.status_reason.as_str())
            .bind(a.updated_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "SELECT persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "persons", db.query.summary = "SELECT persons"))]
    async fn person(&mut self, web_id: &WebId) -> Result<Option<Person>, StoreError> {
        let row: Option<PersonRow> = sqlx::query_as(text::PERSON_BY_WEB_ID)
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(Person::from))
    }

    #[tracing::instrument(name = "INSERT persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "persons", db.query.summary = "INSERT persons"))]
    async fn upsert_person(&mut self, p: &Person) -> Result<(), StoreError> {
        sqlx::query(text::UPSERT_PERSON)
            .bind(p.web_id.as_str())
            .bind(p.email.as_str())
            .bind(p.given_name.as_str())
            .bind(p.family_name.as_str())
            .bind(p.email_verified_at)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "SELECT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "memberships", db.query.summary = "SELECT memberships"))]
    async fn membership_for_update(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<Membership>, StoreError> {
        let row: Option<MembershipRow> = sqlx::query_as(&text::membership(D::LOCK_ROWS))
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(Membership::try_from).transpose()
    }

    #[tracing::instrument(name = "INSERT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "memberships", db.query.summary = "INSERT memberships"))]
    async fn upsert_membership(&mut self, m: &Membership) -> Result<(), StoreError> {
        sqlx::query(text::UPSERT_MEMBERSHIP)
            .bind(m.icn.as_str())
            .bind(m.web_id.as_str())
            .bind(m.role.as_str())
            .bind(m.created_at)
            .bind(m.updated_at)
            .bind(m.removed_at)
            .bind(m.expires_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "SELECT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "memberships", db.query.summary = "SELECT memberships"))]
    async fn count_active_stcs(&mut self, icn: &Icn) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(text::COUNT_ACTIVE_STCS)
            .bind(icn.as_str())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(n)
    }

    #[tracing::instrument(name = "SELECT memberships persons", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.query.summary = "SELECT memberships persons"))]
    async fn administrators(
        &mut self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<(Membership, Person)>, StoreError> {
        let rows: Vec<MemberViewRow> = sqlx::query_as(&text::administrators())
            .bind(icn.as_str())
            .bind(now)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let v = MemberView::try_from(r)?;
            if let Some(p) = v.person {
                out.push((v.membership, p));
            }
        }
        Ok(out)
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn request(&mut self, id: AccessRequestId) -> Result<Option<AccessRequest>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(&text::request_by_id(""))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(AccessRequest::try_from).transpose()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn request_for_update(
        &mut self,
        id: AccessRequestId,
    ) -> Result<Option<AccessRequest>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(&text::request_by_id(D::LOCK_ROWS))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(AccessRequest::try_from).transpose()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn pending_request(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<AccessRequest>, StoreError> {
        let row: Option<RequestRow> = sqlx::query_as(&text::pending_request(D::LOCK_ROWS))
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(AccessRequest::try_from).transpose()
    }

    #[tracing::instrument(name = "SELECT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "access_requests", db.query.summary = "SELECT access_requests"))]
    async fn request_times(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
        after: Millis,
    ) -> Result<Vec<Millis>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(text::REQUEST_TIMES)
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .bind(after)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    #[tracing::instrument(name = "INSERT access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "access_requests", db.query.summary = "INSERT access_requests"))]
    async fn insert_request(&mut self, r: &AccessRequest) -> Result<(), StoreError> {
        sqlx::query(text::INSERT_REQUEST)
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

    #[tracing::instrument(name = "INSERT request_nudges", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "request_nudges", db.query.summary = "INSERT request_nudges"))]
    async fn record_nudge(
        &mut self,
        id: AccessRequestId,
        nudge: Nudge,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(text::RECORD_NUDGE)
            .bind(id.to_string())
            .bind(nudge.as_str())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "orphan_reports", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.collection.name = "orphan_reports", db.query.summary = "orphan_reports"))]
    async fn mark_orphan(
        &mut self,
        icn: &Icn,
        orphaned: bool,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = if orphaned {
            sqlx::query(text::RECORD_ORPHAN)
                .bind(icn.as_str())
                .bind(now)
                .execute(&mut *self.tx)
                .await?
        } else {
            sqlx::query(text::CLEAR_ORPHAN)
                .bind(icn.as_str())
                .execute(&mut *self.tx)
                .await?
        };
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "SELECT request_nudges", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "request_nudges", db.query.summary = "SELECT request_nudges"))]
    async fn nudges(&mut self, id: AccessRequestId) -> Result<Vec<(Nudge, Millis)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(text::NUDGES_OF)
            .bind(id.to_string())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.into_iter()
            .map(|(stage, at)| {
                Nudge::ALL
                    .into_iter()
                    .find(|n| n.as_str() == stage)
                    .map(|n| (n, at))
                    .ok_or_else(|| StoreError::Corrupt(format!("nudge stage {stage:?}")))
            })
            .collect()
    }

    #[tracing::instrument(name = "SELECT email_domain_policies", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "email_domain_policies", db.query.summary = "SELECT email_domain_policies"))]
    async fn domain_rule(
        &mut self,
        icn: &Icn,
        domain: &EmailDomain,
    ) -> Result<Option<DomainRule>, StoreError> {
        let row: Option<DomainRuleRow> = sqlx::query_as(&text::domain_rule())
            .bind(icn.as_str())
            .bind(domain.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(DomainRule::try_from).transpose()
    }

    #[tracing::instrument(name = "INSERT email_domain_policies", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "email_domain_policies", db.query.summary = "INSERT email_domain_policies"))]
    async fn upsert_domain_rule(&mut self, r: &DomainRule) -> Result<(), StoreError> {
        sqlx::query(&text::upsert_domain_rule())
            .bind(r.icn.as_str())
            .bind(r.domain.as_str())
            .bind(r.action.as_str())
            .bind(r.role.map(|g| g.as_str()))
            .bind(r.created_by.as_str())
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "DELETE email_domain_policies", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "DELETE", db.collection.name = "email_domain_policies", db.query.summary = "DELETE email_domain_policies"))]
    async fn delete_domain_rule(
        &mut self,
        icn: &Icn,
        domain: &EmailDomain,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(text::DELETE_DOMAIN_RULE)
            .bind(icn.as_str())
            .bind(domain.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "UPDATE access_requests", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "access_requests", db.query.summary = "UPDATE access_requests"))]
    async fn update_request(&mut self, r: &AccessRequest) -> Result<(), StoreError> {
        sqlx::query(text::UPDATE_REQUEST)
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

    #[tracing::instrument(name = "SELECT verification_codes", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "verification_codes", db.query.summary = "SELECT verification_codes"))]
    async fn verification(
        &mut self,
        web_id: &WebId,
    ) -> Result<Option<VerificationCode>, StoreError> {
        let row: Option<VerificationRow> = sqlx::query_as(&text::verification(D::LOCK_ROWS))
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(VerificationCode::from))
    }

    #[tracing::instrument(name = "INSERT verification_codes", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "verification_codes", db.query.summary = "INSERT verification_codes"))]
    async fn put_verification(&mut self, c: &VerificationCode) -> Result<(), StoreError> {
        sqlx::query(&text::upsert_verification())
            .bind(c.web_id.as_str())
            .bind(c.email.as_str())
            .bind(c.code_hash.as_str())
            .bind(c.salt.as_str())
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.wrong_attempts)
            .bind(c.window_start)
            .bind(c.sends_in_window)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "DELETE verification_codes", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "DELETE", db.collection.name = "verification_codes", db.query.summary = "DELETE verification_codes"))]
    async fn delete_verification(&mut self, web_id: &WebId) -> Result<(), StoreError> {
        sqlx::query(text::DELETE_VERIFICATION)
            .bind(web_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "INSERT contracts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "contracts", db.query.summary = "INSERT contracts"))]
    async fn upsert_contract(&mut self, c: &Contract) -> Result<(), StoreError> {
        sqlx::query(&text::upsert_contract())
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

    #[tracing::instrument(name = "SELECT contracts", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "contracts", db.query.summary = "SELECT contracts"))]
    async fn contracts(&mut self, icn: &Icn) -> Result<Vec<Contract>, StoreError> {
        let rows: Vec<ContractRow> = sqlx::query_as(&text::contracts_of())
            .bind(icn.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.into_iter().map(Contract::try_from).collect()
    }

    #[tracing::instrument(name = "INSERT contract_end_warnings", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "contract_end_warnings", db.query.summary = "INSERT contract_end_warnings"))]
    async fn record_contract_warning(
        &mut self,
        icn: &Icn,
        ends_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(text::RECORD_CONTRACT_WARNING)
            .bind(icn.as_str())
            .bind(ends_at)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "SELECT memberships", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "memberships", db.query.summary = "SELECT memberships"))]
    async fn active_memberships(
        &mut self,
        icn: &Icn,
        now: Millis,
    ) -> Result<Vec<Membership>, StoreError> {
        let rows: Vec<MembershipRow> = sqlx::query_as(&text::active_memberships())
            .bind(icn.as_str())
            .bind(now)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    #[tracing::instrument(name = "INSERT member_recertifications", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "member_recertifications", db.query.summary = "INSERT member_recertifications"))]
    async fn ask_recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
        asked_at: Millis,
        due_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(text::ASK_RECERTIFICATION)
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .bind(asked_at)
            .bind(due_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "SELECT member_recertifications", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "SELECT", db.collection.name = "member_recertifications", db.query.summary = "SELECT member_recertifications"))]
    async fn recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<Option<(Millis, Millis)>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(text::RECERTIFICATION)
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row)
    }

    #[tracing::instrument(name = "DELETE member_recertifications", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "DELETE", db.collection.name = "member_recertifications", db.query.summary = "DELETE member_recertifications"))]
    async fn delete_recertification(
        &mut self,
        icn: &Icn,
        web_id: &WebId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(text::DELETE_RECERTIFICATION)
            .bind(icn.as_str())
            .bind(web_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "INSERT request_id_claims", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "request_id_claims", db.query.summary = "INSERT request_id_claims"))]
    async fn claim_request(
        &mut self,
        key: &RequestKey,
        fingerprint: &str,
        now: Millis,
        expired_before: Millis,
    ) -> Result<(), StoreError> {
        request_ids::insert::<D>(&mut *self.tx, key, fingerprint, now, expired_before).await
    }

    #[tracing::instrument(name = "INSERT audit_events", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "audit_events", db.query.summary = "INSERT audit_events"))]
    async fn insert_audit(&mut self, e: &AuditRecord) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(text::INSERT_AUDIT)
            .bind(e.at)
            .bind(e.actor.as_str())
            .bind(e.action.as_str())
            .bind(e.target_type.as_str())
            .bind(e.target_id.as_str())
            .bind(e.icn.as_ref().map(|i| i.as_str()))
            .bind(e.before_json.as_deref())
            .bind(e.after_json.as_deref())
            .bind(e.reason.as_deref())
            .bind(e.trace_id.as_deref())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(id)
    }

    #[tracing::instrument(name = "INSERT outbox", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "INSERT", db.collection.name = "outbox", db.query.summary = "INSERT outbox"))]
    async fn enqueue_email(&mut self, m: &SealedEmail, now: Millis) -> Result<(), StoreError> {
        sqlx::query(text::ENQUEUE_EMAIL)
            .bind(m.kind)
            .bind(m.sealed.as_str())
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "UPDATE outbox", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "UPDATE", db.collection.name = "outbox", db.query.summary = "UPDATE outbox"))]
    async fn fail_email(&mut self, id: i64, now: Millis, error: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(text::FAIL_EMAIL)
            .bind(id)
            .bind(now)
            .bind(error)
            .execute(&mut *self.tx)
            .await?;
        Ok(D::rows_affected(&done) > 0)
    }

    #[tracing::instrument(name = "COMMIT", skip_all, fields(otel.kind = "client", db.system.name = D::SYSTEM_NAME, db.operation.name = "COMMIT", db.query.summary = "COMMIT"))]
    async fn commit(self: Box<Self>, now: Millis) -> Result<Option<Revision>, StoreError> {
        feed::commit(self.tx, now).await
    }
}
