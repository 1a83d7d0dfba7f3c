//! Plays operations against the real servers over gRPC and reads back what they answered.

use std::time::Duration;

use entitlements::proto::v1 as pb;
use tonic::{Code, Response, Status};

use super::ops::{
    ACTING_PEOPLE, Actor, CONTRACT_IDS, COUNTRIES, DOMAINS, DomainAct, Grant, ICNS, Ms, Op, PEOPLE,
    PRODUCT_LISTS, WRONG_COUNTRY, email,
};
use crate::support::{TestApp, authed, reason};

/// An access request id no server ever issued.
pub const UNKNOWN_REQUEST: &str = "00000000-0000-7000-8000-000000000000";
/// Never a valid code: the service's alphabet has no O.
pub const WRONG_CODE: &str = "WRONGCOD";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Done,
    RequestId(String),
    /// (web_id, role)
    Members(Vec<(String, i32)>),
    /// (request id, state), as listed.
    Requests(Vec<(String, i32)>),
}

#[derive(Debug, Clone)]
pub struct Got {
    pub answer: Result<Detail, (Code, String)>,
    pub token: Option<String>,
}

/// The tokens of everyone in the universe, minted once per history.
pub struct Tokens {
    people: Vec<String>,
    operator: String,
    pub checker: String,
}

impl Tokens {
    pub fn new(app: &TestApp) -> Self {
        Self {
            people: PEOPLE[..ACTING_PEOPLE]
                .iter()
                .map(|p| app.person(p))
                .collect(),
            operator: app.operator(),
            checker: app.checker(),
        }
    }
    pub fn of(&self, a: Actor) -> &str {
        match a {
            Actor::Person(p) => &self.people[p],
            Actor::Operator => &self.operator,
            Actor::Checker => &self.checker,
            Actor::Admin(_) => unreachable!("drawn administrators are made concrete before play"),
        }
    }
}

fn ts(ms: Ms) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    })
}

/// Calls until the answer is not "lost a race, retry" (the sweeper and the mail worker write
/// concurrently); a few tries, with a short backoff.
async fn retry<T, F>(mut call: F) -> Result<Response<T>, Status>
where
    F: AsyncFnMut() -> Result<Response<T>, Status>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(s) if matches!(s.code(), Code::Aborted | Code::Unavailable) && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            r => return r,
        }
    }
}

fn got<T>(r: Result<Response<T>, Status>, f: impl FnOnce(T) -> (Detail, String)) -> Got {
    match r {
        Ok(r) => {
            let (detail, token) = f(r.into_inner());
            Got {
                answer: Ok(detail),
                token: Some(token).filter(|t| !t.is_empty()),
            }
        }
        Err(s) => Got {
            answer: Err((s.code(), reason(&s))),
            token: None,
        },
    }
}

fn done<T>(r: Result<Response<T>, Status>, token: impl FnOnce(&T) -> &str) -> Got {
    got(r, |m| {
        let t = token(&m).to_owned();
        (Detail::Done, t)
    })
}

fn role(tc: bool) -> i32 {
    if tc {
        pb::Role::TechnicalContact as i32
    } else {
        pb::Role::AuthorizedUser as i32
    }
}

/// Plays one operation. `request` is the id the operation names (if any); `code` is the
/// verification code to type.
pub async fn play(app: &TestApp, t: &Tokens, op: &Op, request: &str, code: &str, now: Ms) -> Got {
    let (mut admin, mut access) = (app.admin(), app.access());
    match *op {
        Op::Advance(_) => Got {
            answer: Ok(Detail::Done),
            token: None,
        },
        Op::CreateAccount { by, icn } => {
            let m = pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                company_name: format!("Company {icn}"),
                country_code: COUNTRIES[icn].into(),
            };
            let r = retry(async || admin.create_account(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::SetStatus { by, icn, suspend } => {
            let status = if suspend {
                pb::AccountStatus::Suspended
            } else {
                pb::AccountStatus::Active
            };
            let m = pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                status: status as i32,
                reason: "model".into(),
            };
            let r =
                retry(async || admin.set_account_status(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::AddStc {
            by,
            icn,
            person,
            alt_email,
        } => {
            let m = pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                web_id: PEOPLE[person].into(),
                email: email(person, alt_email),
                given_name: format!("{}-given", PEOPLE[person]),
                family_name: format!("{}-family", PEOPLE[person]),
            };
            let r = retry(async || {
                admin
                    .add_site_technical_contact(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            done(r, |m| &m.consistency_token)
        }
        Op::RemoveStc { by, icn, person } => {
            let m = pb::RemoveSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                web_id: PEOPLE[person].into(),
                reason: "model".into(),
            };
            let r = retry(async || {
                admin
                    .remove_site_technical_contact(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            done(r, |m| &m.consistency_token)
        }
        Op::UpsertContract {
            by,
            icn,
            contract,
            products,
            start,
            end,
            x24,
        } => {
            let m = pb::UpsertSupportContractRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                contract_id: CONTRACT_IDS[contract].into(),
                product_ids: PRODUCT_LISTS[products]
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                start_time: ts(now + start),
                end_time: ts(now + end),
                includes_24x7: x24,
            };
            let r = retry(async || {
                admin
                    .upsert_support_contract(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            done(r, |m| &m.consistency_token)
        }
        Op::RequestAccess {
            by,
            icn,
            right_country,
            tc,
        } => {
            let m = pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                country_code: if right_country {
                    COUNTRIES[icn]
                } else {
                    WRONG_COUNTRY
                }
                .into(),
                requested_role: role(tc),
            };
            let r = retry(async || access.request_access(authed(m.clone(), t.of(by))).await).await;
            got(r, |m| {
                let id = m
                    .access_request
                    .map(|r| r.access_request_id)
                    .unwrap_or_default();
                (Detail::RequestId(id), m.consistency_token)
            })
        }
        Op::Approve {
            by, grant, expire, ..
        } => {
            let granted_role = match grant {
                Grant::Requested => pb::Role::Unspecified as i32,
                Grant::AuthorizedUser => role(false),
                Grant::TechnicalContact => role(true),
            };
            let m = pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: request.into(),
                granted_role,
                expire_time: expire.and_then(|e| ts(now + e)),
            };
            let r = retry(async || access.approve_request(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::Deny { by, .. } => {
            let m = pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: request.into(),
                reason: "no".into(),
            };
            let r = retry(async || access.deny_request(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::Withdraw { by, .. } => {
            let m = pb::WithdrawRequestRequest {
                request_id: String::new(),
                access_request_id: request.into(),
                reason: String::new(),
            };
            let r =
                retry(async || access.withdraw_request(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::UpdateRole {
            by,
            icn,
            person,
            tc,
            expire,
        } => {
            let m = pb::UpdateMemberRoleRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                web_id: PEOPLE[person].into(),
                role: role(tc),
                expire_time: expire.and_then(|e| ts(now + e)),
            };
            let r =
                retry(async || access.update_member_role(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::RemoveMember { by, icn, person } => {
            let m = pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                web_id: PEOPLE[person].into(),
                reason: "model".into(),
            };
            let r = retry(async || access.remove_member(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::Certify { by, icn, person } => {
            let m = pb::CertifyMemberRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                web_id: PEOPLE[person].into(),
            };
            let r = retry(async || access.certify_member(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::VerifyEmail { by, .. } => {
            let m = pb::VerifyEmailRequest {
                request_id: String::new(),
                code: code.into(),
            };
            let r = retry(async || access.verify_email(authed(m.clone(), t.of(by))).await).await;
            done(r, |m| &m.consistency_token)
        }
        Op::SendVerification { by } => {
            let m = pb::SendVerificationEmailRequest {
                request_id: String::new(),
            };
            let r = retry(async || {
                access
                    .send_verification_email(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            got(r, |_| (Detail::Done, String::new()))
        }
        Op::ListMembers { by, icn } => {
            let m = pb::ListMembersRequest {
                icn: ICNS[icn].into(),
                page_size: 100,
                page_token: String::new(),
            };
            let r = retry(async || access.list_members(authed(m.clone(), t.of(by))).await).await;
            got(r, |m| {
                let list = m
                    .memberships
                    .into_iter()
                    .map(|m| (m.web_id, m.role))
                    .collect();
                (Detail::Members(list), String::new())
            })
        }
        Op::ListRequests { by, icn } => {
            let m = pb::ListAccessRequestsRequest {
                icn: ICNS[icn].into(),
                state: 0,
                page_size: 100,
                page_token: String::new(),
            };
            let r = retry(async || {
                access
                    .list_access_requests(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            got(r, |m| {
                let list = m
                    .access_requests
                    .into_iter()
                    .map(|r| (r.access_request_id, r.state))
                    .collect();
                (Detail::Requests(list), String::new())
            })
        }
        Op::SetDomainRule {
            by,
            icn,
            domain,
            action,
        } => {
            let action = match action {
                DomainAct::AutoApprove => pb::EmailDomainAction::AutoApprove,
                DomainAct::Hold => pb::EmailDomainAction::Hold,
                DomainAct::Refuse => pb::EmailDomainAction::Refuse,
            };
            let m = pb::SetEmailDomainPolicyRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                domain: DOMAINS[domain].into(),
                action: action as i32,
                role: 0,
            };
            let r = retry(async || {
                access
                    .set_email_domain_policy(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            got(r, |_| (Detail::Done, String::new()))
        }
        Op::DeleteDomainRule { by, icn, domain } => {
            let m = pb::DeleteEmailDomainPolicyRequest {
                request_id: String::new(),
                icn: ICNS[icn].into(),
                domain: DOMAINS[domain].into(),
            };
            let r = retry(async || {
                access
                    .delete_email_domain_policy(authed(m.clone(), t.of(by)))
                    .await
            })
            .await;
            got(r, |_| (Detail::Done, String::new()))
        }
    }
}
