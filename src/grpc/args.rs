//! Request messages -> the typed arguments of their use cases: every field validated, errors
//! naming the field (INVALID_ARGUMENT). Pure: no caller, no store, no clock. The handlers call
//! these after authenticating the call, and the fuzz targets (`tests/fuzz`) call the very same
//! functions on arbitrary messages. Fields are checked in the order the handlers always
//! checked them, so the first bad field named stays the same.

use tonic::Status;

use super::convert::{self as cv, field, line, text};
use super::status::invalid_field;
use crate::clock::Millis;
use crate::domain::{
    AccessRequestId, AccessRequestState, AccountStatus, Contract, ContractId, CountryCode, Email,
    Icn, ProductId, Reason, Role, WebId,
};
use crate::domain::{DomainAction, EmailDomain};
use crate::proto::v1 as pb;
use crate::service::NewStc;

mod checks;
mod entitlements;

/// Page token kinds: a token from one list is refused by another.
pub const REQUESTS: &str = "requests";
pub const MEMBERS: &str = "members";
pub const AUDIT: &str = "audit";
pub use checks::{
    BatchCheck, batch_check_entitlements, check_entitlement, check_request, consistency_token,
    watch_icn, watch_token,
};
pub use entitlements::{
    ENTITLEMENTS, MAX_ENTITLEMENTS_PAGE, entitlements_page_token, list_entitlements,
};

pub const MAX_PRODUCTS: usize = 1000;
pub const MAX_BATCH: usize = 100;

pub struct RequestAccess {
    pub icn: Icn,
    pub country: CountryCode,
    pub role: Role,
}

pub fn request_access(m: &pb::RequestAccessRequest) -> Result<RequestAccess, Status> {
    Ok(RequestAccess {
        icn: field("icn", &m.icn, Icn::parse)?,
        country: field("country_code", &m.country_code, CountryCode::parse)?,
        role: cv::required_role("requested_role", m.requested_role)?,
    })
}

fn access_request_id(v: &str) -> Result<AccessRequestId, Status> {
    field("access_request_id", v, AccessRequestId::parse)
}

/// The request, the role granted (the requested one when unset) and the grant's end, if any.
pub fn approve_request(
    m: &pb::ApproveRequestRequest,
) -> Result<(AccessRequestId, Option<Role>, Option<Millis>), Status> {
    Ok((
        access_request_id(&m.access_request_id)?,
        cv::role("granted_role", m.granted_role)?,
        cv::optional_timestamp_in("expire_time", m.expire_time.as_ref())?,
    ))
}

/// The request and the reason (required).
pub fn deny_request(m: &pb::DenyRequestRequest) -> Result<(AccessRequestId, String), Status> {
    Ok((
        access_request_id(&m.access_request_id)?,
        text("reason", &m.reason, 1000, true)?,
    ))
}

/// The request and the reason (may be empty).
pub fn withdraw_request(
    m: &pb::WithdrawRequestRequest,
) -> Result<(AccessRequestId, String), Status> {
    Ok((
        access_request_id(&m.access_request_id)?,
        text("reason", &m.reason, 1000, false)?,
    ))
}

/// The code as typed; the service normalises it.
pub fn verify_email(m: &pb::VerifyEmailRequest) -> Result<String, Status> {
    line("code", &m.code, 64, true)
}

pub struct ListAccessRequests {
    pub icn: Icn,
    pub state: Option<AccessRequestState>,
    pub limit: u32,
    pub before: Option<AccessRequestId>,
}

pub fn list_access_requests(
    m: &pb::ListAccessRequestsRequest,
) -> Result<ListAccessRequests, Status> {
    Ok(ListAccessRequests {
        icn: field("icn", &m.icn, Icn::parse)?,
        state: cv::state("state", m.state)?,
        limit: cv::page_size(m.page_size)?,
        before: cv::page_token_in(REQUESTS, &m.page_token, |k| AccessRequestId::parse(k).ok())?,
    })
}

pub struct ListMembers {
    pub icn: Icn,
    pub limit: u32,
    pub after: Option<WebId>,
}

pub fn list_members(m: &pb::ListMembersRequest) -> Result<ListMembers, Status> {
    Ok(ListMembers {
        icn: field("icn", &m.icn, Icn::parse)?,
        limit: cv::page_size(m.page_size)?,
        after: cv::page_token_in(MEMBERS, &m.page_token, |k| WebId::parse(k).ok())?,
    })
}

/// Where the account's email-domain policies are paged.
pub const DOMAINS: &str = "email-domains";

/// The account, the domain, what happens to its requests, and the role an automatic approval
/// grants (only for AUTO_APPROVE).
pub fn set_email_domain_policy(
    m: &pb::SetEmailDomainPolicyRequest,
) -> Result<(Icn, EmailDomain, DomainAction, Option<Role>), Status> {
    let icn = field("icn", &m.icn, Icn::parse)?;
    let domain = field("domain", &m.domain, EmailDomain::parse)?;
    let action = cv::domain_action("action", m.action)?
        .ok_or_else(|| invalid_field("action", Reason::InvalidArgument, "is required"))?;
    let role = cv::role("role", m.role)?;
    let role = field("role", "", |_| {
        crate::domain::email_domain::check_role(action, role)
    })?;
    Ok((icn, domain, action, role))
}

/// The account and the domain whose policy goes.
pub fn delete_email_domain_policy(
    m: &pb::DeleteEmailDomainPolicyRequest,
) -> Result<(Icn, EmailDomain), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        field("domain", &m.domain, EmailDomain::parse)?,
    ))
}

/// The account, the page size and the last domain of the previous page.
pub fn list_email_domain_policies(
    m: &pb::ListEmailDomainPoliciesRequest,
) -> Result<(Icn, u32, Option<EmailDomain>), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        cv::page_size(m.page_size)?,
        cv::page_token_in(DOMAINS, &m.page_token, |k| EmailDomain::parse(k).ok())?,
    ))
}

/// The account and the member an administrator confirms after a renewal.
pub fn certify_member(m: &pb::CertifyMemberRequest) -> Result<(Icn, WebId), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        field("web_id", &m.web_id, WebId::parse)?,
    ))
}

/// The account, the person, the new role and the membership's end, if any.
pub fn update_member_role(
    m: &pb::UpdateMemberRoleRequest,
) -> Result<(Icn, WebId, Role, Option<Millis>), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        field("web_id", &m.web_id, WebId::parse)?,
        cv::required_role("role", m.role)?,
        cv::optional_timestamp_in("expire_time", m.expire_time.as_ref())?,
    ))
}

/// The account, the person and the reason (may be empty).
pub fn remove_member(m: &pb::RemoveMemberRequest) -> Result<(Icn, WebId, String), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        field("web_id", &m.web_id, WebId::parse)?,
        text("reason", &m.reason, 1000, false)?,
    ))
}

/// The account, its company name and its country.
pub fn create_account(m: &pb::CreateAccountRequest) -> Result<(Icn, String, CountryCode), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        line("company_name", &m.company_name, 200, true)?,
        field("country_code", &m.country_code, CountryCode::parse)?,
    ))
}

pub fn get_account(m: &pb::GetAccountRequest) -> Result<Icn, Status> {
    field("icn", &m.icn, Icn::parse)
}

/// The account, its new status and the reason (may be empty).
pub fn set_account_status(
    m: &pb::SetAccountStatusRequest,
) -> Result<(Icn, AccountStatus, String), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        cv::account_status("status", m.status)?,
        text("reason", &m.reason, 1000, false)?,
    ))
}

pub fn add_site_technical_contact(
    m: &pb::AddSiteTechnicalContactRequest,
) -> Result<(Icn, NewStc), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        NewStc {
            web_id: field("web_id", &m.web_id, WebId::parse)?,
            email: field("email", &m.email, Email::parse)?,
            given_name: line("given_name", &m.given_name, 200, false)?,
            family_name: line("family_name", &m.family_name, 200, false)?,
        },
    ))
}

/// The account, the person and the reason (may be empty).
pub fn remove_site_technical_contact(
    m: &pb::RemoveSiteTechnicalContactRequest,
) -> Result<(Icn, WebId, String), Status> {
    Ok((
        field("icn", &m.icn, Icn::parse)?,
        field("web_id", &m.web_id, WebId::parse)?,
        text("reason", &m.reason, 1000, false)?,
    ))
}

/// The contract as given (`updated_at` is set by the store).
pub fn upsert_support_contract(m: &pb::UpsertSupportContractRequest) -> Result<Contract, Status> {
    if m.product_ids.len() > MAX_PRODUCTS {
        return Err(invalid_field(
            "product_ids",
            Reason::InvalidArgument,
            "at most 1000 products",
        ));
    }
    let mut products = Vec::with_capacity(m.product_ids.len());
    for (i, p) in m.product_ids.iter().enumerate() {
        products.push(field(&format!("product_ids[{i}]"), p, ProductId::parse)?);
    }
    Ok(Contract {
        icn: field("icn", &m.icn, Icn::parse)?,
        contract_id: field("contract_id", &m.contract_id, ContractId::parse)?,
        product_ids: products,
        starts_at: cv::timestamp_in("start_time", m.start_time.as_ref())?,
        ends_at: cv::timestamp_in("end_time", m.end_time.as_ref())?,
        includes_24x7: m.includes_24x7,
        updated_at: 0,
    })
}

pub struct ListAuditEvents {
    /// None: every account's events.
    pub icn: Option<Icn>,
    pub limit: u32,
    /// Events before this id.
    pub before: Option<i64>,
}

pub fn list_audit_events(m: &pb::ListAuditEventsRequest) -> Result<ListAuditEvents, Status> {
    Ok(ListAuditEvents {
        icn: optional_icn(&m.icn)?,
        limit: cv::page_size(m.page_size)?,
        before: cv::page_token_in(AUDIT, &m.page_token, |k| k.parse::<i64>().ok())?,
    })
}

/// An `icn` field where empty means "every account".
fn optional_icn(v: &str) -> Result<Option<Icn>, Status> {
    match v {
        "" => Ok(None),
        i => field("icn", i, Icn::parse).map(Some),
    }
}

/// An AIP-155 `request_id`: empty for none, else a UUID in its 36-character hyphenated form
/// (any case, any version; the nil UUID is refused), returned lowercase so one id in two
/// spellings is one key.
pub fn request_id(v: &str) -> Result<Option<String>, Status> {
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid_field(
            "request_id",
            Reason::InvalidArgument,
            "must be a UUID such as 5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93 (36 characters), not the nil UUID",
        )
    };
    if v.len() != 36 {
        return Err(bad());
    }
    match uuid::Uuid::try_parse(v) {
        Ok(u) if !u.is_nil() => Ok(Some(u.hyphenated().to_string())),
        _ => Err(bad()),
    }
}
