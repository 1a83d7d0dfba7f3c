//! The command line of `entitlements ctl`: global options and one subcommand per RPC, with
//! flags named like the proto fields (kebab-case).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use prost_types::Timestamp;

use super::admin::AdminCommand;
use super::names::{parse_action, parse_domain_action, parse_role, parse_state};
use super::time::{now_secs, parse_time};
use crate::proto::v1 as pb;

pub(super) fn parse_time_arg(s: &str) -> Result<Timestamp, String> {
    parse_time(s, now_secs())
}

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The service's address: http://host:port, or https://host:port for TLS.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ENTITLEMENTS_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Bearer token (a JWT), sent as `authorization: Bearer <token>`.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ENTITLEMENTS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// How to print the response.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value_t = Output::Text
    )]
    pub output: Output,
    /// AIP-155 request id of a subcommand that changes something: a UUID (e.g. from
    /// `uuidgen`). Running the same command again with the same id changes nothing twice and
    /// prints the first answer, so a script may retry safely.
    #[arg(long, global = true, help_heading = "Global options")]
    pub request_id: Option<String>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// TLS for an `https://` server.
#[derive(Args, Debug, Default, Clone)]
pub struct TlsArgs {
    /// PEM CA certificate(s) to trust for an https:// server instead of the system's roots.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ENTITLEMENTS_CA_CERT"
    )]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for a server that requires one (mutual TLS; with --client-key).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ENTITLEMENTS_CLIENT_CERT"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ENTITLEMENTS_CLIENT_KEY"
    )]
    pub client_key: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Indented `field: value` lines.
    Text,
    /// One JSON object (proto field names, enums by name, RFC 3339 UTC timestamps).
    Json,
}

#[derive(Args, Debug)]
pub struct Page {
    /// Entries per page (0 = the server's default).
    #[arg(long, default_value_t = 0)]
    pub page_size: i32,
    /// `next_page_token` from the previous page.
    #[arg(long, default_value = "")]
    pub page_token: String,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// The AccountAdminService's subcommands (operators).
    #[command(flatten)]
    Admin(AdminCommand),
    /// AccessService.RequestAccess: the caller asks for access to an account.
    RequestAccess {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        country_code: String,
        /// authorized-user | technical-contact
        #[arg(
            long = "role",
            alias = "requested-role",
            value_name = "ROLE",
            value_parser = parse_role
        )]
        requested_role: pb::Role,
    },
    /// AccessService.ListAccessRequests (administrators, operators), newest first.
    ListRequests {
        #[arg(long)]
        icn: String,
        /// pending | approved | denied | withdrawn | expired (leave out for all).
        #[arg(long, value_parser = parse_state)]
        state: Option<pb::AccessRequestState>,
        #[command(flatten)]
        page: Page,
    },
    /// AccessService.ApproveRequest (administrators of the account).
    Approve {
        #[arg(
            long = "id",
            alias = "access-request-id",
            value_name = "ACCESS_REQUEST_ID"
        )]
        access_request_id: String,
        /// authorized-user | technical-contact (leave out for the requested role).
        #[arg(
            long = "role",
            alias = "granted-role",
            value_name = "ROLE",
            value_parser = parse_role
        )]
        granted_role: Option<pb::Role>,
        /// When the membership ends (same forms as --start of upsert-contract, e.g.
        /// 2027-01-31T00:00:00Z or now+90d); leave out for no end (clears an earlier end).
        #[arg(long = "expire-time", value_name = "TIME", value_parser = parse_time_arg)]
        expire_time: Option<Timestamp>,
    },
    /// AccessService.DenyRequest (administrators of the account).
    Deny {
        #[arg(
            long = "id",
            alias = "access-request-id",
            value_name = "ACCESS_REQUEST_ID"
        )]
        access_request_id: String,
        /// Shown to the requester.
        #[arg(long)]
        reason: String,
    },
    /// AccessService.WithdrawRequest: the requester takes back their pending request.
    Withdraw {
        #[arg(
            long = "id",
            alias = "access-request-id",
            value_name = "ACCESS_REQUEST_ID"
        )]
        access_request_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// AccessService.VerifyEmail with the code from the verification email.
    VerifyEmail {
        #[arg(long)]
        code: String,
    },
    /// AccessService.SendVerificationEmail: a fresh code for the caller.
    SendVerificationEmail,
    /// AccessService.GetMyAccess: the caller's memberships, requests and verification state.
    MyAccess,
    /// AccessService.ListMembers (administrators, operators).
    ListMembers {
        #[arg(long)]
        icn: String,
        #[command(flatten)]
        page: Page,
    },
    /// AccessService.UpdateMemberRole (administrators of the account).
    SetRole {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        web_id: String,
        /// authorized-user | technical-contact
        #[arg(long, value_parser = parse_role)]
        role: pb::Role,
        /// When the membership ends (e.g. 2027-01-31T00:00:00Z or now+90d); leave out for no
        /// end (clears an earlier end).
        #[arg(long = "expire-time", value_name = "TIME", value_parser = parse_time_arg)]
        expire_time: Option<Timestamp>,
    },
    /// AccessService.RemoveMember (administrators of the account).
    RemoveMember {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        web_id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// AccessService.SetEmailDomainPolicy (the account's STCs, operators): what happens to
    /// requests for access from addresses in exactly this domain.
    SetEmailDomainPolicy {
        #[arg(long)]
        icn: String,
        /// A DNS name such as example.com (matches that domain only, not its subdomains).
        #[arg(long)]
        domain: String,
        /// auto-approve | hold | refuse
        #[arg(long, value_parser = parse_domain_action)]
        action: pb::EmailDomainAction,
        /// For auto-approve: authorized-user (the default, and the only role granted
        /// automatically). Leave out for hold and refuse.
        #[arg(long, value_parser = parse_role)]
        role: Option<pb::Role>,
    },
    /// AccessService.DeleteEmailDomainPolicy (the account's STCs, operators): the domain's
    /// requests are held for an administrator again.
    DeleteEmailDomainPolicy {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        domain: String,
    },
    /// AccessService.ListEmailDomainPolicies (the account's STCs, operators).
    ListEmailDomainPolicies {
        #[arg(long)]
        icn: String,
        #[command(flatten)]
        page: Page,
    },
    /// AccessService.CertifyMember: confirm, after a contract renewal, that a member keeps
    /// their access (administrators of the account, not of themselves; operators). Members
    /// owing a confirmation show a recertify_time in list-members.
    CertifyMember {
        #[arg(long)]
        icn: String,
        #[arg(long)]
        web_id: String,
    },
    /// EntitlementService.ListEntitlements (the ticketing system, operators, the person
    /// themself): every account where the person may act, by ICN, with the products and
    /// severities covered, the role and the contracts' end.
    ListEntitlements {
        #[arg(long)]
        web_id: String,
        /// open-service-request (the default) | view-support-area | manage-users
        #[arg(long, value_parser = parse_action)]
        action: Option<pb::Action>,
        #[command(flatten)]
        page: Page,
        /// Follow next_page_token to the end and print every entry (from --page-token on).
        #[arg(long)]
        all: bool,
        /// From a mutation's response: read at least that change.
        #[arg(long, default_value = "")]
        consistency_token: String,
        /// Read the database instead of the replica's cache (no token needed).
        #[arg(long)]
        fully_consistent: bool,
    },
    /// EntitlementService.CheckEntitlement: may this person do this for this account?
    Check {
        #[arg(long)]
        web_id: String,
        #[arg(long)]
        icn: String,
        /// open-service-request | view-support-area | manage-users
        #[arg(long, value_parser = parse_action)]
        action: pb::Action,
        #[arg(long, default_value = "")]
        product_id: String,
        /// 1-4 (1 needs a 24x7 contract); 0 = not given.
        #[arg(long, default_value_t = 0)]
        severity: i32,
        /// From a mutation's response: read at least that change.
        #[arg(long, default_value = "")]
        consistency_token: String,
        /// Read the database instead of the replica's cache (no token needed).
        #[arg(long)]
        fully_consistent: bool,
    },
}

impl CtlCommand {
    /// Whether the subcommand's RPC changes something (and so takes `--request-id`).
    pub fn mutates(&self) -> bool {
        use CtlCommand as C;
        if let C::Admin(a) = self {
            return a.mutates();
        }
        matches!(
            self,
            C::RequestAccess { .. }
                | C::Approve { .. }
                | C::Deny { .. }
                | C::Withdraw { .. }
                | C::VerifyEmail { .. }
                | C::SendVerificationEmail
                | C::SetRole { .. }
                | C::RemoveMember { .. }
                | C::SetEmailDomainPolicy { .. }
                | C::DeleteEmailDomainPolicy { .. }
                | C::CertifyMember { .. }
        )
    }
}
