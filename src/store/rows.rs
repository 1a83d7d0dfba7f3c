//! Rows as both databases return them (plain integers and text), and their conversion into
//! domain types. A value that does not convert is reported as corrupt, never guessed.

use std::sync::Arc;

use sqlx::FromRow;

use super::StoreError;
use crate::domain::verification::VerificationCode;
use crate::domain::{
    AccessRequest, AccessRequestId, AccessRequestState, AccessRequestView, Account, AccountStatus,
    AuditRecord, CheckFacts, Contract, ContractId, CountryCode, Email, Icn, LatestRequest,
    MemberStatus, MemberView, Membership, Person, ProductId, Role, WebId,
};
use crate::domain::{ChangeKey, ChangeRecord, DomainAction, DomainRule, EmailDomain};
use crate::mail::StoredEmail;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    Role::from_db(s).ok_or_else(|| corrupt("role", s))
}

#[derive(FromRow)]
pub(crate) struct AccountRow {
    pub icn: String,
    pub company_name: String,
    pub country_code: String,
    pub status: String,
    pub status_reason: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            status: AccountStatus::from_db(&r.status)
                .ok_or_else(|| corrupt("status", &r.status))?,
            icn: Icn::from_trusted(r.icn),
            company_name: r.company_name,
            country: CountryCode::from_trusted(r.country_code),
            status_reason: r.status_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct PersonRow {
    pub web_id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<PersonRow> for Person {
    fn from(r: PersonRow) -> Self {
        Person {
            web_id: WebId::from_trusted(r.web_id),
            email: Email::from_trusted(r.email),
            given_name: r.given_name,
            family_name: r.family_name,
            email_verified_at: r.email_verified_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct MembershipRow {
    pub icn: String,
    pub web_id: String,
    pub role: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub removed_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;
    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            role: role(&r.role)?,
            icn: Icn::from_trusted(r.icn),
            web_id: WebId::from_trusted(r.web_id),
            created_at: r.created_at,
            updated_at: r.updated_at,
            removed_at: r.removed_at,
            expires_at: r.expires_at,
        })
    }
}

/// A membership joined with its person (which always exists: a foreign key) and account.
#[derive(FromRow)]
pub(crate) struct MemberViewRow {
    #[sqlx(flatten)]
    pub membership: MembershipRow,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub email_verified_at: Option<i64>,
    pub p_created_at: i64,
    pub p_updated_at: i64,
    pub company_name: String,
    pub recertify_by: Option<i64>,
}

impl TryFrom<MemberViewRow> for MemberView {
    type Error = StoreError;
    fn try_from(r: MemberViewRow) -> Result<Self, StoreError> {
        let person = Person {
            web_id: WebId::from_trusted(r.membership.web_id.clone()),
            email: Email::from_trusted(r.email),
            given_name: r.given_name,
            family_name: r.family_name,
            email_verified_at: r.email_verified_at,
            created_at: r.p_created_at,
            updated_at: r.p_updated_at,
        };
        Ok(MemberView {
            membership: r.membership.try_into()?,
            person: Some(person),
            company_name: r.company_name,
            recertify_by: r.recertify_by,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct RequestRow {
    pub id: String,
    pub icn: String,
    pub web_id: String,
    pub country_code: String,
    pub requested_role: String,
    pub granted_role: Option<String>,
    pub state: String,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

impl TryFrom<RequestRow> for AccessRequest {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> Result<Self, StoreError> {
        Ok(AccessRequest {
            id: AccessRequestId::parse(&r.id).map_err(|_| corrupt("request id", &r.id))?,
            requested_role: role(&r.requested_role)?,
            granted_role: r.granted_role.as_deref().map(role).transpose()?,
            state: AccessRequestState::from_db(&r.state)
                .ok_or_else(|| corrupt("state", &r.state))?,
            icn: Icn::from_trusted(r.icn),
            web_id: WebId::from_trusted(r.web_id),
            country: CountryCode::from_trusted(r.country_code),
            decided_by: r.decided_by.map(WebId::from_trusted),
            decision_reason: r.decision_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct RequestViewRow {
    #[sqlx(flatten)]
    pub request: RequestRow,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email_verified_at: Option<i64>,
    pub p_created_at: Option<i64>,
    pub p_updated_at: Option<i64>,
    pub company_name: Option<String>,
}

impl TryFrom<RequestViewRow> for AccessRequestView {
    type Error = StoreError;
    fn try_from(r: RequestViewRow) -> Result<Self, StoreError> {
        let requester = r.email.map(|email| Person {
            web_id: WebId::from_trusted(r.request.web_id.clone()),
            email: Email::from_trusted(email),
            given_name: r.given_name.unwrap_or_default(),
            family_name: r.family_name.unwrap_or_default(),
            email_verified_at: r.email_verified_at,
            created_at: r.p_created_at.unwrap_or_default(),
            updated_at: r.p_updated_at.unwrap_or_default(),
        });
        Ok(AccessRequestView {
            request: r.request.try_into()?,
            requester,
            company_name: r.company_name.unwrap_or_default(),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct ContractRow {
    pub icn: String,
    pub contract_id: String,
    pub product_ids: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub includes_24x7: bool,
    pub updated_at: i64,
}

impl TryFrom<ContractRow> for Contract {
    type Error = StoreError;
    fn try_from(r: ContractRow) -> Result<Self, StoreError> {
        let products: Vec<String> = serde_json::from_str(&r.product_ids)
            .map_err(|_| corrupt("product_ids", &r.product_ids))?;
        Ok(Contract {
            icn: Icn::from_trusted(r.icn),
            contract_id: ContractId::from_trusted(r.contract_id),
            product_ids: products.into_iter().map(ProductId::from_trusted).collect(),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            includes_24x7: r.includes_24x7,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) fn product_ids_json(c: &Contract) -> String {
    let ids: Vec<&str> = c.product_ids.iter().map(|p| p.as_str()).collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned())
}

#[derive(FromRow)]
pub(crate) struct VerificationRow {
    pub web_id: String,
    pub email: String,
    pub code_hash: String,
    pub salt: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub wrong_attempts: i64,
    pub window_start: i64,
    pub sends_in_window: i64,
}

impl From<VerificationRow> for VerificationCode {
    fn from(r: VerificationRow) -> Self {
        VerificationCode {
            web_id: WebId::from_trusted(r.web_id),
            email: Email::from_trusted(r.email),
            code_hash: r.code_hash,
            salt: r.salt,
            created_at: r.created_at,
            expires_at: r.expires_at,
            wrong_attempts: r.wrong_attempts,
            window_start: r.window_start,
            sends_in_window: r.sends_in_window,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub icn: Option<String>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            icn: r.icn.map(Icn::from_trusted),
            before_json: r.before_json,
            after_json: r.after_json,
            reason: r.reason,
            trace_id: r.trace_id,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct FactsRow {
    pub status: Option<String>,
    pub role: Option<String>,
    pub removed_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub email_verified_at: Option<i64>,
    pub req_state: Option<String>,
    pub req_updated_at: Option<i64>,
    pub req_expires_at: Option<i64>,
}

impl FactsRow {
    pub(crate) fn into_facts(self, contracts: Arc<[Contract]>) -> Result<CheckFacts, StoreError> {
        let account_status = self
            .status
            .map(|s| AccountStatus::from_db(&s).ok_or_else(|| corrupt("status", &s)))
            .transpose()?;
        let (membership, latest_request) = member_facts(
            self.role.as_deref(),
            self.removed_at,
            self.expires_at,
            self.req_state.as_deref(),
            self.req_updated_at,
            self.req_expires_at,
        )?;
        Ok(CheckFacts {
            account_status,
            membership,
            latest_request,
            email_verified: self.email_verified_at.is_some(),
            contracts,
        })
    }
}

/// The member part of the facts: the membership row and the latest request, each if present.
fn member_facts(
    role_text: Option<&str>,
    removed_at: Option<i64>,
    expires_at: Option<i64>,
    req_state: Option<&str>,
    req_updated_at: Option<i64>,
    req_expires_at: Option<i64>,
) -> Result<(Option<MemberStatus>, Option<LatestRequest>), StoreError> {
    let membership = role_text
        .map(|r| {
            role(r).map(|role| MemberStatus {
                role,
                removed_at,
                expires_at,
            })
        })
        .transpose()?;
    let latest_request = match (req_state, req_updated_at, req_expires_at) {
        (Some(s), Some(changed_at), Some(expires_at)) => Some(LatestRequest {
            state: AccessRequestState::from_db(s).ok_or_else(|| corrupt("state", s))?,
            changed_at,
            expires_at,
        }),
        _ => None,
    };
    Ok((membership, latest_request))
}

/// One account of a cache snapshot with one of its contracts (none: all contract columns
/// NULL), in (ICN, contract id) order, so an account's rows arrive together.
#[derive(FromRow)]
pub(crate) struct SnapshotAccountRow {
    pub icn: String,
    pub status: String,
    pub contract_id: Option<String>,
    pub product_ids: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub includes_24x7: Option<bool>,
    pub updated_at: Option<i64>,
}

impl SnapshotAccountRow {
    pub(crate) fn status(&self) -> Result<AccountStatus, StoreError> {
        AccountStatus::from_db(&self.status).ok_or_else(|| corrupt("status", &self.status))
    }

    /// The contract on this row, if any.
    pub(crate) fn contract(&self) -> Option<Result<Contract, StoreError>> {
        let contract_id = self.contract_id.clone()?;
        let row = ContractRow {
            icn: self.icn.clone(),
            contract_id,
            product_ids: self.product_ids.clone().unwrap_or_default(),
            starts_at: self.starts_at.unwrap_or_default(),
            ends_at: self.ends_at.unwrap_or_default(),
            includes_24x7: self.includes_24x7.unwrap_or_default(),
            updated_at: self.updated_at.unwrap_or_default(),
        };
        Some(Contract::try_from(row))
    }
}

/// One (account, person) pair of a cache snapshot: a membership, a request, or both.
#[derive(FromRow)]
pub(crate) struct SnapshotMemberRow {
    pub icn: String,
    pub web_id: String,
    pub role: Option<String>,
    pub removed_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub req_state: Option<String>,
    pub req_updated_at: Option<i64>,
    pub req_expires_at: Option<i64>,
}

impl SnapshotMemberRow {
    pub(crate) fn facts(
        &self,
    ) -> Result<(Option<MemberStatus>, Option<LatestRequest>), StoreError> {
        member_facts(
            self.role.as_deref(),
            self.removed_at,
            self.expires_at,
            self.req_state.as_deref(),
            self.req_updated_at,
            self.req_expires_at,
        )
    }
}

#[derive(FromRow)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: i64,
}

impl From<OutboxRow> for StoredEmail {
    fn from(r: OutboxRow) -> Self {
        StoredEmail {
            id: r.id,
            to: r.to_addr,
            subject: r.subject,
            body: r.body,
            kind: r.kind,
            attempts: i32::try_from(r.attempts).unwrap_or(i32::MAX),
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct ChangeRow {
    pub revision: i64,
    pub kind: String,
    pub icn: Option<String>,
    pub web_id: Option<String>,
    pub at: i64,
}

/// A key as the tables' triggers note it (`change_pending`).
#[derive(FromRow)]
pub(crate) struct ChangeKeyRow {
    pub kind: String,
    pub icn: Option<String>,
    pub web_id: Option<String>,
}

fn change_key(
    kind: &str,
    icn: Option<String>,
    web_id: Option<String>,
) -> Result<ChangeKey, StoreError> {
    let icn = icn.map(Icn::from_trusted);
    let web = web_id.map(WebId::from_trusted);
    match (kind, icn, web) {
        ("ACCOUNT", Some(i), _) => Ok(ChangeKey::Account(i)),
        ("MEMBER", Some(i), Some(w)) => Ok(ChangeKey::Member(i, w)),
        ("PERSON", _, Some(w)) => Ok(ChangeKey::Person(w)),
        _ => Err(corrupt("change kind", kind)),
    }
}

impl TryFrom<ChangeKeyRow> for ChangeKey {
    type Error = StoreError;
    fn try_from(r: ChangeKeyRow) -> Result<Self, StoreError> {
        change_key(&r.kind, r.icn, r.web_id)
    }
}

impl TryFrom<ChangeRow> for ChangeRecord {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> Result<Self, StoreError> {
        Ok(ChangeRecord {
            revision: r.revision,
            key: change_key(&r.kind, r.icn, r.web_id)?,
            at: r.at,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct DomainRuleRow {
    pub icn: String,
    pub domain: String,
    pub action: String,
    pub role: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<DomainRuleRow> for DomainRule {
    type Error = StoreError;
    fn try_from(r: DomainRuleRow) -> Result<Self, StoreError> {
        Ok(DomainRule {
            action: DomainAction::parse(&r.action)
                .ok_or_else(|| corrupt("domain action", &r.action))?,
            role: r.role.as_deref().map(role).transpose()?,
            domain: EmailDomain::parse(&r.domain)
                .map_err(|_| corrupt("email domain", &r.domain))?,
            icn: Icn::from_trusted(r.icn),
            created_by: WebId::from_trusted(r.created_by),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}
