//! `entitlements ctl`: a small gRPC client for trying the service from a shell, one subcommand
//! per RPC, with flags named like the proto fields.

mod args;
mod names;
pub(crate) mod render;
mod time;

use std::time::Duration;

use anyhow::{Context, anyhow};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use crate::proto::v1 as pb;
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::account_admin_service_client::AccountAdminServiceClient;
use crate::proto::v1::entitlement_service_client::EntitlementServiceClient;
pub use args::{CtlArgs, CtlCommand, Output, Page};
use names::code_name;
use render::{Node, list, obj, opt};

/// Runs one subcommand and prints its response to stdout. A gRPC error comes back as an error
/// reading `<CODE> <ErrorInfo.reason>: <message>` plus any field violations.
pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let auth = match &args.token {
        Some(t) if !t.trim().is_empty() => Some(
            MetadataValue::try_from(format!("Bearer {}", t.trim()))
                .map_err(|_| anyhow!("--token: not a valid header value"))?,
        ),
        _ => None,
    };
    let channel = connect(&args.server).await?;
    let ctl = Ctl { channel, auth };
    let node = ctl.call(args.command).await.map_err(describe_status)?;
    match args.output {
        Output::Text => print!("{}", render::text(&node)),
        Output::Json => println!("{}", render::json(&node)),
    }
    Ok(())
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    let url = if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    };
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("--server {server}: not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// `NOT_FOUND ACCOUNT_NOT_FOUND: no account 123`, then one line per field violation.
fn describe_status(status: tonic::Status) -> anyhow::Error {
    let details = status.get_error_details();
    let mut msg = code_name(status.code()).to_owned();
    if let Some(info) = details.error_info() {
        msg.push(' ');
        msg.push_str(&info.reason);
    }
    msg.push_str(": ");
    msg.push_str(status.message());
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            msg.push_str(&format!("\n  field {}: {}", v.field, v.description));
        }
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        msg.push_str(&format!("\n  retry after {} ms", delay.as_millis()));
    }
    anyhow!(msg)
}

struct Ctl {
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
}

impl Ctl {
    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(auth) = &self.auth {
            req.metadata_mut().insert("authorization", auth.clone());
        }
        req
    }

    fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    fn admin(&self) -> AccountAdminServiceClient<Channel> {
        AccountAdminServiceClient::new(self.channel.clone())
    }

    async fn call(&self, command: CtlCommand) -> Result<Node, tonic::Status> {
        use CtlCommand as C;
        Ok(match command {
            C::CreateAccount {
                icn,
                company_name,
                country_code,
            } => {
                let msg = pb::CreateAccountRequest {
                    icn,
                    company_name,
                    country_code,
                };
                let r = self
                    .admin()
                    .create_account(self.req(msg))
                    .await?
                    .into_inner();
                obj! {
                    "account" => opt(r.account.as_ref(), render::account),
                    "consistency_token" => &r.consistency_token,
                }
            }
            C::GetAccount { icn } => {
                let msg = pb::GetAccountRequest { icn };
                let r = self.admin().get_account(self.req(msg)).await?.into_inner();
                obj! {
                    "account" => opt(r.account.as_ref(), render::account),
                    "contracts" => list(&r.contracts, render::contract),
                    "site_technical_contacts" => list(&r.site_technical_contacts, render::membership),
                }
            }
            C::SetAccountStatus {
                icn,
                status,
                reason,
            } => {
                let msg = pb::SetAccountStatusRequest {
                    icn,
                    status: status.into(),
                    reason,
                };
                let r = self.admin().set_account_status(self.req(msg)).await?;
                let r = r.into_inner();
                obj! {
                    "account" => opt(r.account.as_ref(), render::account),
                    "consistency_token" => &r.consistency_token,
                }
            }
            C::AddStc {
                icn,
                web_id,
                email,
                given_name,
                family_name,
            } => {
                let msg = pb::AddSiteTechnicalContactRequest {
                    icn,
                    web_id,
                    email,
                    given_name,
                    family_name,
                };
                let r = self
                    .admin()
                    .add_site_technical_contact(self.req(msg))
                    .await?;
                membership_change(r.into_inner().into())
            }
            C::RemoveStc {
                icn,
                web_id,
                reason,
            } => {
                let msg = pb::RemoveSiteTechnicalContactRequest {
                    icn,
                    web_id,
                    reason,
                };
                let r = self
                    .admin()
                    .remove_site_technical_contact(self.req(msg))
                    .await?;
                membership_change(r.into_inner().into())
            }
            C::UpsertContract {
                icn,
                contract_id,
                product_ids,
                start_time,
                end_time,
                includes_24x7,
            } => {
                let msg = pb::UpsertSupportContractRequest {
                    icn,
                    contract_id,
                    product_ids,
                    start_time: Some(start_time),
                    end_time: Some(end_time),
                    includes_24x7,
                };
                let r = self.admin().upsert_support_contract(self.req(msg)).await?;
                let r = r.into_inner();
                obj! {
                    "contract" => opt(r.contract.as_ref(), render::contract),
                    "consistency_token" => &r.consistency_token,
                }
            }
            C::Audit { icn, page } => {
                let msg = pb::ListAuditEventsRequest {
                    icn,
                    page_size: page.page_size,
                    page_token: page.page_token,
                };
                let r = self
                    .admin()
                    .list_audit_events(self.req(msg))
                    .await?
                    .into_inner();
                obj! {
                    "audit_events" => list(&r.audit_events, render::audit_event),
                    "next_page_token" => &r.next_page_token,
                }
            }
            C::RequestAccess {
                icn,
                country_code,
                requested_role,
            } => {
                let msg = pb::RequestAccessRequest {
                    icn,
                    country_code,
                    requested_role: requested_role.into(),
                };
                let r = self
                    .access()
                    .request_access(self.req(msg))
                    .await?
                    .into_inner();
                request_change(r.access_request.as_ref(), &r.consistency_token)
            }
            C::ListRequests { icn, state, page } => {
                let msg = pb::ListAccessRequestsRequest {
                    icn,
                    state: state.map_or(0, Into::into),
                    page_size: page.page_size,
                    page_token: page.page_token,
                };
                let r = self.access().list_access_requests(self.req(msg)).await?;
                let r = r.into_inner();
                obj! {
                    "access_requests" => list(&r.access_requests, render::access_request),
                    "next_page_token" => &r.next_page_token,
                }
            }
            C::Approve {
                access_request_id,
                granted_role,
            } => {
                let msg = pb::ApproveRequestRequest {
                    access_request_id,
                    granted_role: granted_role.map_or(0, Into::into),
                };
                let r = self
                    .access()
                    .approve_request(self.req(msg))
                    .await?
                    .into_inner();
                request_change(r.access_request.as_ref(), &r.consistency_token)
            }
            C::Deny {
                access_request_id,
                reason,
            } => {
                let msg = pb::DenyRequestRequest {
                    access_request_id,
                    reason,
                };
                let r = self
                    .access()
                    .deny_request(self.req(msg))
                    .await?
                    .into_inner();
                request_change(r.access_request.as_ref(), &r.consistency_token)
            }
            C::Withdraw {
                access_request_id,
                reason,
            } => {
                let msg = pb::WithdrawRequestRequest {
                    access_request_id,
                    reason,
                };
                let r = self
                    .access()
                    .withdraw_request(self.req(msg))
                    .await?
                    .into_inner();
                request_change(r.access_request.as_ref(), &r.consistency_token)
            }
            C::VerifyEmail { code } => {
                let msg = pb::VerifyEmailRequest { code };
                let r = self
                    .access()
                    .verify_email(self.req(msg))
                    .await?
                    .into_inner();
                obj! {
                    "email_verified" => r.email_verified,
                    "consistency_token" => &r.consistency_token,
                }
            }
            C::SendVerificationEmail => {
                let msg = pb::SendVerificationEmailRequest {};
                let r = self.access().send_verification_email(self.req(msg)).await?;
                let r = r.into_inner();
                obj! {
                    "email" => &r.email,
                    "expire_time" => render::timestamp(r.expire_time.as_ref()),
                }
            }
            C::MyAccess => {
                let msg = pb::GetMyAccessRequest {};
                let r = self
                    .access()
                    .get_my_access(self.req(msg))
                    .await?
                    .into_inner();
                obj! {
                    "web_id" => &r.web_id,
                    "email" => &r.email,
                    "email_verified" => r.email_verified,
                    "memberships" => list(&r.memberships, render::membership),
                    "access_requests" => list(&r.access_requests, render::access_request),
                }
            }
            C::ListMembers { icn, page } => {
                let msg = pb::ListMembersRequest {
                    icn,
                    page_size: page.page_size,
                    page_token: page.page_token,
                };
                let r = self
                    .access()
                    .list_members(self.req(msg))
                    .await?
                    .into_inner();
                obj! {
                    "memberships" => list(&r.memberships, render::membership),
                    "next_page_token" => &r.next_page_token,
                }
            }
            C::SetRole { icn, web_id, role } => {
                let msg = pb::UpdateMemberRoleRequest {
                    icn,
                    web_id,
                    role: role.into(),
                };
                let r = self.access().update_member_role(self.req(msg)).await?;
                membership_change(r.into_inner().into())
            }
            C::RemoveMember {
                icn,
                web_id,
                reason,
            } => {
                let msg = pb::RemoveMemberRequest {
                    icn,
                    web_id,
                    reason,
                };
                let r = self.access().remove_member(self.req(msg)).await?;
                membership_change(r.into_inner().into())
            }
            C::Check {
                web_id,
                icn,
                action,
                product_id,
                severity,
                consistency_token,
            } => {
                let msg = pb::CheckEntitlementRequest {
                    web_id,
                    icn,
                    action: action.into(),
                    product_id,
                    severity,
                    consistency_token,
                };
                let mut client = EntitlementServiceClient::new(self.channel.clone());
                let r = client.check_entitlement(self.req(msg)).await?.into_inner();
                obj! {
                    "allowed" => r.allowed,
                    "reason" => render::decision_reason(r.reason),
                    "role" => render::role(r.role),
                    "contract_id" => &r.contract_id,
                }
            }
        })
    }
}

/// The responses that carry a membership and a consistency token.
struct MembershipChange(Option<pb::Membership>, String);

macro_rules! membership_change_from {
    ($($t:ty),*) => {$(
        impl From<$t> for MembershipChange {
            fn from(r: $t) -> Self {
                MembershipChange(r.membership, r.consistency_token)
            }
        }
    )*};
}
membership_change_from!(
    pb::AddSiteTechnicalContactResponse,
    pb::RemoveSiteTechnicalContactResponse,
    pb::UpdateMemberRoleResponse,
    pb::RemoveMemberResponse
);

fn membership_change(MembershipChange(membership, token): MembershipChange) -> Node {
    obj! {
        "membership" => opt(membership.as_ref(), render::membership),
        "consistency_token" => &token,
    }
}

fn request_change(request: Option<&pb::AccessRequest>, token: &String) -> Node {
    obj! {
        "access_request" => opt(request, render::access_request),
        "consistency_token" => token,
    }
}
