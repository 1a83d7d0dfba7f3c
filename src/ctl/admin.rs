//! `ctl`'s subcommands of the AccountAdminService: accounts, their site technical contacts
//! and contracts, and the audit trail.

use clap::Subcommand;
use prost_types::Timestamp;

use super::args::{Page, parse_time_arg};
use super::changes::membership_change;
use super::client::Client;
use super::names::parse_status;
use super::render::{self, Node, list, obj, opt};
use crate::proto::v1 as pb;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// AccountAdminService.CreateAccount (operator).
    CreateAccount {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        company_name: String,
        /// ISO 3166-1 alpha-2, e.g. DE.
        #[arg(long)]
        country_code: String,
    },
    /// AccountAdminService.GetAccount (operator): the account, its contracts and its STCs.
    GetAccount {
        #[arg(long)]
        icn: String,
    },
    /// AccountAdminService.SetAccountStatus (operator).
    SetAccountStatus {
        #[arg(long)]
        icn: String,
        /// active | suspended
        #[arg(long, value_parser = parse_status)]
        status: pb::AccountStatus,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// AccountAdminService.AddSiteTechnicalContact (operator); emails the STC a verification code.
    AddStc {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        web_id: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        given_name: String,
        #[arg(long, default_value = "")]
        family_name: String,
    },
    /// AccountAdminService.RemoveSiteTechnicalContact (operator).
    RemoveStc {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        web_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// AccountAdminService.UpsertSupportContract (operator).
    UpsertContract {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        contract_id: String,
        /// Repeatable; none means every product.
        #[arg(long = "product-id", alias = "product-ids", value_name = "PRODUCT_ID")]
        product_ids: Vec<String>,
        /// RFC 3339 (2025-01-31T00:00:00Z, ...+02:00), now, now-1d, now+12h.
        #[arg(
            long = "start",
            alias = "start-time",
            value_name = "TIME",
            value_parser = parse_time_arg
        )]
        start_time: Timestamp,
        /// Same forms as --start, e.g. now+365d.
        #[arg(
            long = "end",
            alias = "end-time",
            value_name = "TIME",
            value_parser = parse_time_arg
        )]
        end_time: Timestamp,
        /// The contract includes 24x7 support (needed for severity 1).
        #[arg(long = "24x7", alias = "includes-24x7")]
        includes_24x7: bool,
    },
    /// AccountAdminService.ListAuditEvents (operator), newest first.
    Audit {
        /// Leave out for every account.
        #[arg(long, default_value = "")]
        icn: String,
        #[command(flatten)]
        page: Page,
    },
}

impl AdminCommand {
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            AdminCommand::GetAccount { .. } | AdminCommand::Audit { .. }
        )
    }
}

/// One AccountAdminService call: the request from the flags, the response as a [`Node`].
pub(super) async fn call(
    c: &Client,
    command: AdminCommand,
    request_id: String,
) -> Result<Node, tonic::Status> {
    use AdminCommand as C;
    Ok(match command {
        C::CreateAccount {
            icn,
            company_name,
            country_code,
        } => {
            let msg = pb::CreateAccountRequest {
                request_id,
                icn,
                company_name,
                country_code,
            };
            let r = c.admin().create_account(c.req(msg)).await?.into_inner();
            obj! {
                "account" => opt(r.account.as_ref(), render::account),
                "consistency_token" => &r.consistency_token,
            }
        }
        C::GetAccount { icn } => {
            let msg = pb::GetAccountRequest { icn };
            let r = c.admin().get_account(c.req(msg)).await?.into_inner();
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
                request_id,
                icn,
                status: status.into(),
                reason,
            };
            let r = c.admin().set_account_status(c.req(msg)).await?;
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
                request_id,
                icn,
                web_id,
                email,
                given_name,
                family_name,
            };
            let r = c.admin().add_site_technical_contact(c.req(msg)).await?;
            membership_change(r.into_inner().into())
        }
        C::RemoveStc {
            icn,
            web_id,
            reason,
        } => {
            let msg = pb::RemoveSiteTechnicalContactRequest {
                request_id,
                icn,
                web_id,
                reason,
            };
            let r = c.admin().remove_site_technical_contact(c.req(msg)).await?;
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
                request_id,
                icn,
                contract_id,
                product_ids,
                start_time: Some(start_time),
                end_time: Some(end_time),
                includes_24x7,
            };
            let r = c.admin().upsert_support_contract(c.req(msg)).await?;
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
            let r = c.admin().list_audit_events(c.req(msg)).await?.into_inner();
            obj! {
                "audit_events" => list(&r.audit_events, render::audit_event),
                "next_page_token" => &r.next_page_token,
            }
        }
    })
}
