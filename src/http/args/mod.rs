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

mod entities;
mod search;

use serde_json::{Map, Number, Value};

use crate::domain::Reason;
use crate::domain::feed::Token;
use crate::service::CheckRequest;
pub use entities::action_name;
use entities::{Action_, Context, Freshness, Resource, Subject};
pub use search::{ResourceSearch, resource_search};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests;
