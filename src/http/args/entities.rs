//! The information model's entities as this service takes them: each checked for shape
//! (`shape`: required keys, JSON types) apart from its values (`parse`), so that an
//! evaluation item can fail alone on a value while a shape error refuses the whole request.

use serde_json::{Number, Value};

use super::{FieldError, Parsed, get, join, number, object, required_string, string};
use crate::domain::feed::{Token, decode_token};
use crate::domain::{Action, Icn, ProductId, Reason, WebId};

/// A subject, checked for shape; `parse` checks its values.
#[derive(Clone)]
pub(super) struct Subject<'a> {
    path: String,
    kind: &'a str,
    id: &'a str,
}

impl<'a> Subject<'a> {
    pub(super) fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            kind: required_string(m, "type", &path)?,
            id: required_string(m, "id", &path)?,
            path,
        })
    }

    pub(super) fn parse(&self) -> Parsed<WebId> {
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
pub(super) struct Action_<'a> {
    path: String,
    name: &'a str,
}

impl<'a> Action_<'a> {
    pub(super) fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            name: required_string(m, "name", &path)?,
            path,
        })
    }

    pub(super) fn parse(&self) -> Parsed<Action> {
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
pub(super) struct Resource<'a> {
    pub(super) path: String,
    kind: &'a str,
    id: Option<&'a str>,
    product: Option<&'a str>,
    severity: Option<&'a Number>,
}

pub(super) struct Account {
    pub(super) icn: Option<Icn>,
    pub(super) product: Option<ProductId>,
    pub(super) severity: Option<u8>,
}

impl<'a> Resource<'a> {
    /// `id_required`: an evaluation names its account; a search leaves `id` out.
    pub(super) fn shape(v: &'a Value, path: String, id_required: bool) -> Parsed<Self> {
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

    pub(super) fn parse(&self) -> Parsed<Account> {
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
pub(super) struct Context<'a> {
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
    pub(super) fn shape(v: &'a Value, path: String) -> Parsed<Self> {
        let m = object(v, &path)?;
        Ok(Self {
            consistency: string(m, "consistency", &path)?,
            token: string(m, "consistency_token", &path)?,
            path,
        })
    }

    pub(super) fn parse(&self) -> Parsed<Freshness> {
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

/// The wire name of an action.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::OpenServiceRequest => "open_service_request",
        Action::ViewSupportArea => "view_support_area",
        Action::ManageUsers => "manage_users",
    }
}
