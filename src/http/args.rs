//! AuthZEN request bodies -> the typed arguments of the check use case, every field validated
//! and every error naming its JSON field (`resource.id`, `evaluations[2].action.name`). Pure:
//! no caller, no store, no clock.
//!
//! Bad input comes in two kinds, which the spec's Access Evaluations "Errors" section tells
//! apart. A body without the information model's shape (not a JSON object, a required key
//! missing, a value of the wrong JSON type) is refused whole with HTTP 400, as the HTTPS
//! binding requires for an omitted required attribute. An evaluation that has the shape but
//! values this service cannot take (an ICN that is not one, an action it does not know) is a
//! [`Kind::Value`] error: inside `evaluations` it fails only its own item (`"decision": false`
//! with `context.error`), as one bad check fails only itself in BatchCheckEntitlements;
//! anywhere else it is a 400 too. Unknown keys are ignored, as the spec requires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Number, Value};
use sha2::{Digest as _, Sha256};

use crate::domain::feed::{Token, decode_token};
use crate::domain::{Action, Icn, ProductId, Reason, WebId};
use crate::service::{AccountSearch, CheckRequest};

/// Evaluations in one request, as BatchCheckEntitlements takes checks.
pub const MAX_EVALUATIONS: usize = 100;
/// Resource search page sizes, as the gRPC lists have them (AIP-158).
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not the information model's shape: the whole request is refused.
    Shape,
    /// The shape, but a value this service cannot take.
    Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: Reason,
    pub message: String,
    pub kind: Kind,
}

impl FieldError {
    fn shape(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: Reason::InvalidArgument,
            message: message.into(),
            kind: Kind::Shape,
        }
    }

    fn value(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Value,
            ..Self::shape(field, message)
        }
    }
}

type Parsed<T> = Result<T, FieldError>;

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The request body, which must be a JSON object.
pub fn body(bytes: &[u8]) -> Parsed<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FieldError::shape("body", "must be a JSON object")),
        Err(e) => Err(FieldError::shape("body", format!("is not JSON ({e})"))),
    }
}

/// A key's value; `null` counts as absent (the spec asks senders to omit nulls).
fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, field: &str) -> Parsed<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| FieldError::shape(field, "must be a JSON object"))
}

fn string<'a>(m: &'a Map<String, Value>, key: &str, prefix: &str) -> Parsed<Option<&'a str>> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::shape(join(prefix, key), "must be a string")),
    }
}

fn required_string<'a>(m: &'a Map<String, Value>, key: &str, prefix: &str) -> Parsed<&'a str> {
    string(m, key, prefix)?.ok_or_else(|| FieldError::shape(join(prefix, key), "is required"))
}

fn number<'a>(m: &'a Map<String, Value>, key: &str, prefix: &str) -> Parsed<Option<&'a Number>> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n)),
        Some(_) => Err(FieldError::shape(join(prefix, key), "must be a number")),
    }
}

/// A subject, checked for shape; `parse` checks its values.
#[derive(Clone)]
struct Subject<'a> {
    path: String,
    kind: &'a str,
    id: &'a str,
}

impl<'a> Subject<'a> {
    fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            kind: required_string(m, "type", &path)?,
            id: required_string(m, "id", &path)?,
            path,
        })
    }

    fn parse(&self) -> Parsed<WebId> {
        if self.kind != "user" {
            return Err(FieldError::value(
                join(&self.path, "type"),
                "must be \"user\"",
            ));
        }
        WebId::parse(self.id).map_err(|e| FieldError::value(join(&self.path, "id"), e.0))
    }
}

#[derive(Clone)]
struct Action_<'a> {
    path: String,
    name: &'a str,
}

impl<'a> Action_<'a> {
    fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            name: required_string(m, "name", &path)?,
            path,
        })
    }

    fn parse(&self) -> Parsed<Action> {
        match self.name {
            "open_service_request" => Ok(Action::OpenServiceRequest),
            "view_support_area" => Ok(Action::ViewSupportArea),
            "manage_users" => Ok(Action::ManageUsers),
            _ => Err(FieldError::value(
                join(&self.path, "name"),
                "must be open_service_request, view_support_area or manage_users",
            )),
        }
    }
}

/// An account and what a check asks of it beyond the action.
#[derive(Clone)]
struct Resource<'a> {
    path: String,
    kind: &'a str,
    id: Option<&'a str>,
    product: Option<&'a str>,
    severity: Option<&'a Number>,
}

struct Account {
    icn: Option<Icn>,
    product: Option<ProductId>,
    severity: Option<u8>,
}

impl<'a> Resource<'a> {
    /// `id_required`: an evaluation names its account; a search leaves `id` out.
    fn shape(v: &'a Value, path: String, id_required: bool) -> Parsed<Self> {
        let m = object(v, &path)?;
        let kind = required_string(m, "type", &path)?;
        let id = if id_required {
            Some(required_string(m, "id", &path)?)
        } else {
            None
        };
        let props = join(&path, "properties");
        let (product, severity) = match get(m, "properties") {
            None => (None, None),
            Some(p) => {
                let p = object(p, &props)?;
                (
                    string(p, "product_id", &props)?,
                    number(p, "severity", &props)?,
                )
            }
        };
        Ok(Self {
            path,
            kind,
            id,
            product,
            severity,
        })
    }

    fn parse(&self) -> Parsed<Account> {
        if self.kind != "account" {
            return Err(FieldError::value(
                join(&self.path, "type"),
                "must be \"account\"",
            ));
        }
        let props = join(&self.path, "properties");
        Ok(Account {
            icn: self
                .id
                .map(|id| {
                    Icn::parse(id).map_err(|e| FieldError::value(join(&self.path, "id"), e.0))
                })
                .transpose()?,
            product: self
                .product
                .map(|p| {
                    ProductId::parse(p)
                        .map_err(|e| FieldError::value(join(&props, "product_id"), e.0))
                })
                .transpose()?,
            severity: self
                .severity
                .map(|n| match n.as_u64() {
                    Some(s @ 1..=4) => u8::try_from(s)
                        .map_err(|_| FieldError::value(join(&props, "severity"), "must be 1-4")),
                    _ => Err(FieldError::value(
                        join(&props, "severity"),
                        "must be an integer 1-4",
                    )),
                })
                .transpose()?,
        })
    }
}

/// How fresh an answer must be: the request context's `consistency` and `consistency_token`,
/// the same choices as the gRPC `Consistency`.
#[derive(Clone, Default)]
struct Context<'a> {
    path: String,
    consistency: Option<&'a str>,
    token: Option<&'a str>,
}

/// What a check must read at least.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    pub fully_consistent: bool,
    pub token: Option<Token>,
}

impl<'a> Context<'a> {
    fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            consistency: string(m, "consistency", &path)?,
            token: string(m, "consistency_token", &path)?,
            path,
        })
    }

    fn parse(&self) -> Parsed<Freshness> {
        let name = join(&self.path, "consistency");
        let token_name = join(&self.path, "consistency_token");
        let token = self.token.filter(|t| !t.is_empty());
        let fully_consistent = match (self.consistency, token) {
            (None, _) | (Some("at_least_as_fresh"), Some(_)) => false,
            (Some("minimize_latency"), None) => false,
            (Some("minimize_latency"), Some(_)) => {
                return Err(FieldError::value(
                    name,
                    "minimize_latency takes no consistency_token; leave one of them out",
                ));
            }
            (Some("at_least_as_fresh"), None) => {
                return Err(FieldError::value(
                    token_name,
                    "is required with at_least_as_fresh",
                ));
            }
            (Some("fully_consistent"), _) => true,
            (Some(_), _) => {
                return Err(FieldError::value(
                    name,
                    "must be minimize_latency, at_least_as_fresh or fully_consistent",
                ));
            }
        };
        let token = token
            .map(|t| {
                decode_token(t).ok_or_else(|| FieldError {
                    reason: Reason::InvalidConsistencyToken,
                    ..FieldError::value(token_name, "is not a token this service gave out")
                })
            })
            .transpose()?;
        Ok(Freshness {
            fully_consistent,
            token,
        })
    }
}

/// One check and the token it must read at least.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub check: CheckRequest,
    pub token: Option<Token>,
}

/// The four entities of one evaluation, from the item or the request's defaults.
struct Entities<'a> {
    subject: Option<Subject<'a>>,
    action: Option<Action_<'a>>,
    resource: Option<Resource<'a>>,
    context: Option<Context<'a>>,
}

impl<'a> Entities<'a> {
    /// The entities of `m` (keys named under `prefix`), each checked for shape.
    fn shape(m: &'a Map<String, Value>, prefix: &str) -> Parsed<Self> {
        let at = |key: &str| join(prefix, key);
        Ok(Self {
            subject: get(m, "subject")
                .map(|v| Subject::shape(v, at("subject")))
                .transpose()?,
            action: get(m, "action")
                .map(|v| Action_::shape(v, at("action")))
                .transpose()?,
            resource: get(m, "resource")
                .map(|v| Resource::shape(v, at("resource"), true))
                .transpose()?,
            context: get(m, "context")
                .map(|v| Context::shape(v, at("context")))
                .transpose()?,
        })
    }

    /// Each entity given here, or else the default; the required ones must be somewhere.
    fn or(self, defaults: &Entities<'a>, prefix: &str) -> Parsed<Complete<'a>> {
        let missing = |key: &str| {
            FieldError::shape(
                join(prefix, key),
                "is required (in the evaluation or at the top level)",
            )
        };
        Ok(Complete {
            subject: self
                .subject
                .or_else(|| defaults.subject.clone())
                .ok_or_else(|| missing("subject"))?,
            action: self
                .action
                .or_else(|| defaults.action.clone())
                .ok_or_else(|| missing("action"))?,
            resource: self
                .resource
                .or_else(|| defaults.resource.clone())
                .ok_or_else(|| missing("resource"))?,
            context: self.context.or_else(|| defaults.context.clone()),
        })
    }

    /// Every value given checked, whether or not an evaluation uses it.
    fn check_values(&self) -> Parsed<()> {
        if let Some(s) = &self.subject {
            s.parse()?;
        }
        if let Some(a) = &self.action {
            a.parse()?;
        }
        if let Some(r) = &self.resource {
            r.parse()?;
        }
        if let Some(c) = &self.context {
            c.parse()?;
        }
        Ok(())
    }
}

/// One evaluation's entities, every required one present.
struct Complete<'a> {
    subject: Subject<'a>,
    action: Action_<'a>,
    resource: Resource<'a>,
    context: Option<Context<'a>>,
}

impl Complete<'_> {
    fn evaluation(&self) -> Parsed<Evaluation> {
        let web_id = self.subject.parse()?;
        let action = self.action.parse()?;
        let account = self.resource.parse()?;
        let freshness = match &self.context {
            Some(c) => c.parse()?,
            None => Freshness::default(),
        };
        Ok(Evaluation {
            check: CheckRequest {
                web_id,
                // The shape check made `id` required for evaluations.
                icn: account.icn.ok_or_else(|| {
                    FieldError::shape(join(&self.resource.path, "id"), "is required")
                })?,
                action,
                product: account.product,
                severity: account.severity,
                fully_consistent: freshness.fully_consistent,
            },
            token: freshness.token,
        })
    }
}

/// `POST /access/v1/evaluation`: subject, action and resource are required.
pub fn evaluation(m: &Map<String, Value>) -> Parsed<Evaluation> {
    let none = Entities {
        subject: None,
        action: None,
        resource: None,
        context: None,
    };
    Entities::shape(m, "")?.or(&none, "")?.evaluation()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(Debug)]
pub enum Evaluations {
    /// No `evaluations` (or an empty array): the request is one evaluation.
    Single(Evaluation),
    /// Each item, or why that item alone is refused.
    Many {
        semantic: Semantic,
        items: Vec<Parsed<Evaluation>>,
    },
}

fn semantic(m: &Map<String, Value>) -> Parsed<Semantic> {
    let Some(options) = get(m, "options") else {
        return Ok(Semantic::ExecuteAll);
    };
    let options = object(options, "options")?;
    match string(options, "evaluations_semantic", "options")? {
        None | Some("execute_all") => Ok(Semantic::ExecuteAll),
        Some("deny_on_first_deny") => Ok(Semantic::DenyOnFirstDeny),
        Some("permit_on_first_permit") => Ok(Semantic::PermitOnFirstPermit),
        Some(_) => Err(FieldError::value(
            "options.evaluations_semantic",
            "must be execute_all, deny_on_first_deny or permit_on_first_permit",
        )),
    }
}

/// `POST /access/v1/evaluations`: the top-level entities are defaults for each item.
pub fn evaluations(m: &Map<String, Value>) -> Parsed<Evaluations> {
    let list = match get(m, "evaluations") {
        None => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FieldError::shape("evaluations", "must be an array")),
    };
    if list.is_empty() {
        return evaluation(m).map(Evaluations::Single);
    }
    if list.len() > MAX_EVALUATIONS {
        return Err(FieldError {
            reason: Reason::BatchTooLarge,
            ..FieldError::shape("evaluations", "at most 100 evaluations per request")
        });
    }
    let semantic = semantic(m)?;
    let defaults = Entities::shape(m, "")?;
    defaults.check_values()?;
    let mut items = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let prefix = format!("evaluations[{i}]");
        let entities = Entities::shape(object(item, &prefix)?, &prefix)?.or(&defaults, &prefix)?;
        items.push(entities.evaluation());
    }
    // Shape errors surface above; only value errors stay with their item.
    debug_assert!(items.iter().all(|r| match r {
        Ok(_) => true,
        Err(e) => e.kind == Kind::Value,
    }));
    Ok(Evaluations::Many { semantic, items })
}

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

/// The wire name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::OpenServiceRequest => "open_service_request",
        Action::ViewSupportArea => "view_support_area",
        Action::ManageUsers => "manage_users",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
#[path = "args_tests.rs"]
mod tests;
