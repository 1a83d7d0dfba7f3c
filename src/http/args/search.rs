//! The resource search's request and its page tokens, which are bound to their search.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Number, Value};
use sha2::{Digest as _, Sha256};

use super::entities::{Action_, Context, Resource, Subject, action_name};
use super::{DEFAULT_LIMIT, FieldError, MAX_LIMIT, Parsed, get, number, object, string};
use crate::domain::feed::Token;
use crate::domain::{Icn, Reason};
use crate::service::AccountSearch;

/// `POST /access/v1/search/resource`: the accounts where the subject may do the action.
#[derive(Debug, Clone)]
pub struct ResourceSearch {
    pub search: AccountSearch,
    pub token: Option<Token>,
    /// `page.limit` as given, which the next page's token binds.
    pub raw_limit: String,
}

/// Page tokens of resource searches: a tag, the search's fingerprint and the position.
const SEARCH_TOKEN: &str = "authzen-resources";

/// What must stay the same from page to page (the spec: everything but the token).
fn fingerprint(q: &AccountSearch, raw_limit: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        q.web_id.as_str(),
        action_name(q.action),
        q.product.as_ref().map_or("", |p| p.as_str()),
        &q.severity.map_or(String::new(), |s| s.to_string()),
        raw_limit,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ResourceSearch {
    /// The token of the next page: this search, continued after `last`.
    pub fn next_token(&self, last: &Icn) -> String {
        let fp = fingerprint(&self.search, &self.raw_limit);
        URL_SAFE_NO_PAD.encode(format!("{SEARCH_TOKEN}:{fp}:{last}"))
    }
}

fn required<'a>(m: &'a Map<String, Value>, key: &str) -> Parsed<&'a Value> {
    get(m, key).ok_or_else(|| FieldError::shape(key, "is required"))
}

pub fn resource_search(m: &Map<String, Value>) -> Parsed<ResourceSearch> {
    let subject = Subject::shape(required(m, "subject")?, "subject".into())?;
    let action = Action_::shape(required(m, "action")?, "action".into())?;
    let resource = Resource::shape(required(m, "resource")?, "resource".into(), false)?;
    let context = get(m, "context")
        .map(|v| Context::shape(v, "context".into()))
        .transpose()?;
    let (limit, token) = match get(m, "page") {
        None => (None, None),
        Some(p) => {
            let p = object(p, "page")?;
            (number(p, "limit", "page")?, string(p, "token", "page")?)
        }
    };
    let account = resource.parse()?;
    let freshness = context.map(|c| c.parse()).transpose()?.unwrap_or_default();
    let limit_v = match limit.map(Number::as_u64) {
        None | Some(Some(0)) => DEFAULT_LIMIT,
        // Larger asks are served at the cap, as AIP-158 suggests, not refused.
        Some(Some(n)) => u32::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        Some(None) => {
            return Err(FieldError::value(
                "page.limit",
                "must be a non-negative integer",
            ));
        }
    };
    let mut out = ResourceSearch {
        search: AccountSearch {
            web_id: subject.parse()?,
            action: action.parse()?,
            product: account.product,
            severity: account.severity,
            fully_consistent: freshness.fully_consistent,
            after: None,
            limit: limit_v,
        },
        token: freshness.token,
        raw_limit: limit.map(Number::to_string).unwrap_or_default(),
    };
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        let fp = fingerprint(&out.search, &out.raw_limit);
        out.search.after = Some(search_position(t, &fp)?);
    }
    Ok(out)
}

fn search_position(token: &str, fingerprint: &str) -> Parsed<Icn> {
    let bad = |message: &str| FieldError {
        reason: Reason::InvalidPageToken,
        ..FieldError::value("page.token", message)
    };
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|r| String::from_utf8(r).ok())
        .ok_or_else(|| bad("is not a token this search gave out"))?;
    let mut parts = raw.splitn(3, ':');
    let (Some(SEARCH_TOKEN), Some(fp), Some(icn)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a token this search gave out"));
    };
    if fp != fingerprint {
        return Err(bad(
            "belongs to another search: subject, action, resource and page.limit must stay as in the first request",
        ));
    }
    Icn::parse(icn).map_err(|_| bad("is not a token this search gave out"))
}
