//! `entitlements ctl`: a small gRPC client for trying the service from a shell, one subcommand
//! per RPC, with flags named like the proto fields.

mod admin;
mod args;
mod changes;
mod client;
mod entitlements;
pub(crate) mod names;
pub(crate) mod render;
mod time;

use crate::proto::v1 as pb;
pub use args::{CtlArgs, CtlCommand, Output, Page, TlsArgs};
use changes::{membership_change, request_change};
use client::{Client, describe_status};
use render::{Node, list, obj, opt};

/// Runs one subcommand and prints its response to stdout. A gRPC error comes back as an error
/// reading `<CODE> <ErrorInfo.reason>: <message>` plus any field violations.
pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let request_id = args.request_id.unwrap_or_default();
    if !request_id.is_empty() && !args.command.mutates() {
        anyhow::bail!("--request-id is for the subcommands that change something");
    }
    let client = Client::connect(&args.server, args.token.as_deref(), &args.tls).await?;
    let node = call(&client, args.command, request_id)
        .await
        .map_err(describe_status)?;
    match args.output {
        Output::Text => print!("{}", render::text(&node)),
        Output::Json => println!("{}", render::json(&node)),
    }
    Ok(())
}

/// One RPC: the request from the flags, the response as a [`Node`]. A mutation carries
/// `request_id` (empty: none).
async fn call(c: &Client, command: CtlCommand, request_id: String) -> Result<Node, tonic::Status> {
    use CtlCommand as C;
    Ok(match command {
        C::Admin(command) => admin::call(c, command, request_id).await?,
        C::RequestAccess {
            icn,
            country_code,
            requested_role,
        } => {
            let msg = pb::RequestAccessRequest {
                request_id,
                icn,
                country_code,
                requested_role: requested_role.into(),
            };
            let r = c.access().request_access(c.req(msg)).await?.into_inner();
            request_change(r.access_request.as_ref(), &r.consistency_token)
        }
        C::ListRequests { icn, state, page } => {
            let msg = pb::ListAccessRequestsRequest {
                icn,
                state: state.map_or(0, Into::into),
                page_size: page.page_size,
                page_token: page.page_token,
            };
            let r = c.access().list_access_requests(c.req(msg)).await?;
            let r = r.into_inner();
            obj! {
                "access_requests" => list(&r.access_requests, render::access_request),
                "next_page_token" => &r.next_page_token,
            }
        }
        C::Approve {
            access_request_id,
            granted_role,
            expire_time,
        } => {
            let msg = pb::ApproveRequestRequest {
                request_id,
                access_request_id,
                granted_role: granted_role.map_or(0, Into::into),
                expire_time,
            };
            let r = c.access().approve_request(c.req(msg)).await?.into_inner();
            request_change(r.access_request.as_ref(), &r.consistency_token)
        }
        C::Deny {
            access_request_id,
            reason,
        } => {
            let msg = pb::DenyRequestRequest {
                request_id,
                access_request_id,
                reason,
            };
            let r = c.access().deny_request(c.req(msg)).await?.into_inner();
            request_change(r.access_request.as_ref(), &r.consistency_token)
        }
        C::Withdraw {
            access_request_id,
            reason,
        } => {
            let msg = pb::WithdrawRequestRequest {
                request_id,
                access_request_id,
                reason,
            };
            let r = c.access().withdraw_request(c.req(msg)).await?.into_inner();
            request_change(r.access_request.as_ref(), &r.consistency_token)
        }
        C::VerifyEmail { code } => {
            let msg = pb::VerifyEmailRequest { code, request_id };
            let r = c.access().verify_email(c.req(msg)).await?.into_inner();
            obj! {
                "email_verified" => r.email_verified,
                "consistency_token" => &r.consistency_token,
            }
        }
        C::SendVerificationEmail => {
            let msg = pb::SendVerificationEmailRequest { request_id };
            let r = c.access().send_verification_email(c.req(msg)).await?;
            let r = r.into_inner();
            obj! {
                "email" => &r.email,
                "expire_time" => render::timestamp(r.expire_time.as_ref()),
            }
        }
        C::MyAccess => {
            let msg = pb::GetMyAccessRequest {};
            let r = c.access().get_my_access(c.req(msg)).await?.into_inner();
            obj! {
                "web_id" => &r.web_id,
                "email" => &r.email,
                "email_verified" => r.email_verified,
                "memberships" => list(&r.memberships, render::membership),
                "access_requests" => list(&r.access_requests, render::access_request),
                "waiting_requests" => list(&r.waiting_requests, render::waiting_request),
            }
        }
        C::ListMembers { icn, page } => {
            let msg = pb::ListMembersRequest {
                icn,
                page_size: page.page_size,
                page_token: page.page_token,
            };
            let r = c.access().list_members(c.req(msg)).await?.into_inner();
            obj! {
                "memberships" => list(&r.memberships, render::membership),
                "next_page_token" => &r.next_page_token,
            }
        }
        C::SetRole {
            icn,
            web_id,
            role,
            expire_time,
        } => {
            let msg = pb::UpdateMemberRoleRequest {
                request_id,
                icn,
                web_id,
                role: role.into(),
                expire_time,
            };
            let r = c.access().update_member_role(c.req(msg)).await?;
            membership_change(r.into_inner().into())
        }
        C::RemoveMember {
            icn,
            web_id,
            reason,
        } => {
            let msg = pb::RemoveMemberRequest {
                request_id,
                icn,
                web_id,
                reason,
            };
            let r = c.access().remove_member(c.req(msg)).await?;
            membership_change(r.into_inner().into())
        }
        C::SetEmailDomainPolicy {
            icn,
            domain,
            action,
            role,
        } => {
            let msg = pb::SetEmailDomainPolicyRequest {
                request_id,
                icn,
                domain,
                action: action.into(),
                role: role.map_or(0, Into::into),
            };
            let r = c.access().set_email_domain_policy(c.req(msg)).await?;
            let r = r.into_inner();
            obj! {
                "email_domain_policy" => opt(r.email_domain_policy.as_ref(), render::email_domain_policy),
            }
        }
        C::DeleteEmailDomainPolicy { icn, domain } => {
            let msg = pb::DeleteEmailDomainPolicyRequest {
                icn,
                domain,
                request_id,
            };
            let r = c.access().delete_email_domain_policy(c.req(msg)).await?;
            let r = r.into_inner();
            obj! {
                "email_domain_policy" => opt(r.email_domain_policy.as_ref(), render::email_domain_policy),
            }
        }
        C::ListEmailDomainPolicies { icn, page } => {
            let msg = pb::ListEmailDomainPoliciesRequest {
                icn,
                page_size: page.page_size,
                page_token: page.page_token,
            };
            let r = c
                .access()
                .list_email_domain_policies(c.req(msg))
                .await?
                .into_inner();
            obj! {
                "email_domain_policies" => list(&r.email_domain_policies, render::email_domain_policy),
                "next_page_token" => &r.next_page_token,
            }
        }
        C::CertifyMember { icn, web_id } => {
            let msg = pb::CertifyMemberRequest {
                icn,
                web_id,
                request_id,
            };
            let r = c.access().certify_member(c.req(msg)).await?;
            membership_change(r.into_inner().into())
        }
        C::ListEntitlements {
            web_id,
            action,
            page,
            all,
            consistency_token,
            fully_consistent,
        } => {
            let msg = pb::ListEntitlementsRequest {
                web_id,
                action: action.map_or(0, Into::into),
                page_size: page.page_size,
                page_token: page.page_token,
                consistency_token,
                consistency: consistency(fully_consistent),
            };
            entitlements::list_all(c, msg, all).await?
        }
        C::Check {
            web_id,
            icn,
            action,
            product_id,
            severity,
            consistency_token,
            fully_consistent,
        } => {
            let msg = pb::CheckEntitlementRequest {
                web_id,
                icn,
                action: action.into(),
                product_id,
                severity,
                consistency_token,
                consistency: consistency(fully_consistent),
            };
            let r = c.entitlement().check_entitlement(c.req(msg)).await?;
            let r = r.into_inner();
            obj! {
                "allowed" => r.allowed,
                "reason" => render::decision_reason(r.reason),
                "role" => render::role(r.role),
                "contract_id" => &r.contract_id,
                "highest_severity" => i64::from(r.highest_severity),
                "next_step" => render::opt(r.next_step.as_ref(), render::next_step),
            }
        }
    })
}

fn consistency(fully_consistent: bool) -> i32 {
    if fully_consistent {
        pb::Consistency::FullyConsistent as i32
    } else {
        pb::Consistency::Unspecified as i32
    }
}
