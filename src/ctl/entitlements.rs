//! `ctl list-entitlements`: one page, or with `--all` every page from the token given on.

use super::client::Client;
use super::render::{self, Node, list, obj};
use crate::proto::v1 as pb;

/// The page asked for, or (`all`) every entry of the pages from it to the end, with the last
/// page's consistency token.
pub(super) async fn list_all(
    c: &Client,
    mut msg: pb::ListEntitlementsRequest,
    all: bool,
) -> Result<Node, tonic::Status> {
    let mut entitlements = Vec::new();
    loop {
        let r = c
            .entitlement()
            .list_entitlements(c.req(msg.clone()))
            .await?
            .into_inner();
        entitlements.extend(r.entitlements);
        if !all || r.next_page_token.is_empty() {
            return Ok(obj! {
                "entitlements" => list(&entitlements, entitlement),
                "next_page_token" => &r.next_page_token,
                "consistency_token" => &r.consistency_token,
            });
        }
        msg.page_token = r.next_page_token;
    }
}

fn entitlement(e: &pb::Entitlement) -> Node {
    obj! {
        "icn" => &e.icn,
        "company_name" => &e.company_name,
        "role" => render::role(e.role),
        "contracts" => list(&e.contracts, coverage),
        "all_products" => e.all_products,
        "product_ids" => &e.product_ids,
        "highest_severity" => i64::from(e.highest_severity),
        "contract_end_time" => render::timestamp(e.contract_end_time.as_ref()),
    }
}

fn coverage(c: &pb::ContractCoverage) -> Node {
    obj! {
        "contract_id" => &c.contract_id,
        "product_ids" => &c.product_ids,
        "all_products" => c.all_products,
        "includes_24x7" => c.includes_24x7,
        "highest_severity" => i64::from(c.highest_severity),
        "end_time" => render::timestamp(c.end_time.as_ref()),
    }
}
