//! ListEntitlements' arguments and its page tokens, which are tied to the request they page.

use tonic::Status;

use super::checks::consistency;
use super::consistency_token;
use crate::domain::feed::Token;
use crate::domain::{Action, Icn, WebId};
use crate::grpc::convert::{self as cv, field};
use crate::proto::v1 as pb;
use crate::service::ListEntitlements;

/// The kind of ListEntitlements' page tokens.
pub const ENTITLEMENTS: &str = "entitlements";

/// ListEntitlements answers a check per account it looks at: its pages are smaller.
pub const MAX_ENTITLEMENTS_PAGE: u32 = 200;

/// A page of a person's entitlements and the token its entries read at least. ACTION_UNSPECIFIED
/// asks for OPEN_SERVICE_REQUEST.
pub fn list_entitlements(
    m: &pb::ListEntitlementsRequest,
) -> Result<(ListEntitlements, Option<Token>), Status> {
    let web_id = field("web_id", &m.web_id, WebId::parse)?;
    let action = match m.action {
        0 => Action::OpenServiceRequest,
        v => cv::action("action", v)?,
    };
    let limit = cv::page_size_up_to(m.page_size, MAX_ENTITLEMENTS_PAGE)?;
    let after = cv::page_token_in(ENTITLEMENTS, &m.page_token, |k| {
        entitlements_position(k, &web_id, action)
    })?;
    let fully_consistent = consistency(
        "consistency",
        m.consistency,
        "consistency_token",
        &m.consistency_token,
    )?;
    let token = consistency_token("consistency_token", &m.consistency_token)?;
    let list = ListEntitlements {
        web_id,
        action,
        fully_consistent,
        after,
        limit,
    };
    Ok((list, token))
}

/// The token of the page after `next` of this list: tied to the person and the action asked,
/// so a token is refused by a list of anyone or anything else (AIP-158).
pub fn entitlements_page_token(list: &ListEntitlements, next: Option<&Icn>) -> String {
    let key = next.map(|icn| format!("{}:{icn}:{}", action_tag(list.action), list.web_id));
    cv::page_token_out(ENTITLEMENTS, key)
}

/// The ICN a token continues after, if the token is of this person's list for this action.
fn entitlements_position(key: &str, web_id: &WebId, action: Action) -> Option<Icn> {
    let mut parts = key.splitn(3, ':');
    let (tag, icn, who) = (parts.next()?, parts.next()?, parts.next()?);
    (tag == action_tag(action) && who == web_id.as_str())
        .then(|| Icn::parse(icn).ok())
        .flatten()
}

fn action_tag(a: Action) -> &'static str {
    match a {
        Action::OpenServiceRequest => "osr",
        Action::ViewSupportArea => "view",
        Action::ManageUsers => "manage",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test fails
mod tests {
    use super::*;

    fn ask(web_id: &str, action: i32, page_token: &str) -> Result<ListEntitlements, Status> {
        let m = pb::ListEntitlementsRequest {
            web_id: web_id.into(),
            action,
            page_token: page_token.into(),
            ..Default::default()
        };
        list_entitlements(&m).map(|(l, _)| l)
    }

    #[test]
    fn page_tokens_continue_only_the_list_they_came_from() {
        let first = ask("ana:x", 0, "").unwrap();
        assert_eq!(first.action, Action::OpenServiceRequest);
        assert_eq!(first.limit, 50);
        let icn = Icn::parse("0042").unwrap();
        let token = entitlements_page_token(&first, Some(&icn));
        let osr = pb::Action::OpenServiceRequest as i32;
        assert_eq!(ask("ana:x", osr, &token).unwrap().after, Some(icn));
        let view = pb::Action::ViewSupportArea as i32;
        for (who, action) in [("ana", osr), ("ana:y", osr), ("ana:x", view)] {
            let s = ask(who, action, &token).expect_err("refused");
            assert_eq!(s.code(), tonic::Code::InvalidArgument);
            assert!(s.message().starts_with("page_token"), "{s:?}");
        }
        assert_eq!(entitlements_page_token(&first, None), "");
    }
}
