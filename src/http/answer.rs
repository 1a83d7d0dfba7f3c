//! Domain answers -> AuthZEN response bodies. A decision's `context` carries why (the
//! DecisionReason's wire name without its `DECISION_REASON_` prefix) and what the gRPC
//! answer carries besides: the role, the contract, the next step, the highest severity, the
//! consistency token.

use serde::Serialize;

use super::args::ResourceSearch;
use super::error::ErrorBody;
use crate::clock::Millis;
use crate::domain::Revision;
use crate::domain::next_step::NextStep;
use crate::service::{AccountPage, CheckAnswer, Services};

#[derive(Debug, Serialize)]
pub struct DecisionOut {
    pub decision: bool,
    pub context: DecisionContext,
}

#[derive(Debug, Default, Serialize)]
pub struct DecisionContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
    /// What the person can do about a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<NextStepOut>,
    /// The highest severity the person may open a service request at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest_severity: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency_token: Option<String>,
    /// Why this evaluation of an `evaluations` request has no answer (its decision is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// The gRPC `NextStep` in JSON: enum values in lower case, as AuthZEN's own names are;
/// empty fields left out; times in RFC 3339 (UTC).
#[derive(Debug, Serialize)]
pub struct NextStepOut {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decider_group: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contact_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contract_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest_severity: Option<u8>,
}

fn next_step(s: &NextStep) -> NextStepOut {
    NextStepOut {
        kind: s.kind.as_str().to_ascii_lowercase(),
        decider_group: s.group.map(|g| g.as_str().to_ascii_lowercase()),
        contact_names: s.names.clone(),
        access_request_id: s.request.as_ref().map(ToString::to_string),
        start_time: s.since.and_then(rfc3339),
        end_time: s.until.and_then(rfc3339),
        contract_ids: s.contract_ids.iter().map(ToString::to_string).collect(),
        highest_severity: s.highest_severity,
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC, e.g. `2026-12-02T12:50:04.511Z`.
fn rfc3339(ms: Millis) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

pub fn decision(s: &Services, a: &CheckAnswer, revision: Revision) -> DecisionOut {
    let d = &a.decision;
    DecisionOut {
        decision: d.allowed,
        context: DecisionContext {
            reason: Some(d.reason.as_str()),
            role: d.role.map(|r| r.as_str()),
            contract_id: d.contract_id.as_ref().map(ToString::to_string),
            next_step: a.next_step.as_ref().map(next_step),
            highest_severity: a.highest_severity,
            consistency_token: Some(s.token(revision)),
            error: None,
        },
    }
}

/// An evaluation that failed on its own: closed, with the error in its context.
pub fn failed(error: ErrorBody) -> DecisionOut {
    DecisionOut {
        decision: false,
        context: DecisionContext {
            error: Some(error),
            ..DecisionContext::default()
        },
    }
}

/// The spec recommends leaving the top-level `decision` out when `evaluations` is given.
#[derive(Debug, Serialize)]
pub struct EvaluationsOut {
    pub evaluations: Vec<DecisionOut>,
}

/// The page first, as the spec recommends, so a reader can show progress.
#[derive(Debug, Serialize)]
pub struct SearchOut {
    pub page: PageOut,
    pub context: SearchContext,
    pub results: Vec<ResourceOut>,
}

#[derive(Debug, Serialize)]
pub struct PageOut {
    /// Empty on the last page.
    pub next_token: String,
    pub count: usize,
}

#[derive(Debug, Serialize)]
pub struct SearchContext {
    pub consistency_token: String,
}

#[derive(Debug, Serialize)]
pub struct ResourceOut {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

pub fn search(s: &Services, q: &ResourceSearch, page: &AccountPage) -> SearchOut {
    SearchOut {
        page: PageOut {
            next_token: page
                .next_after
                .as_ref()
                .map(|last| q.next_token(last))
                .unwrap_or_default(),
            count: page.accounts.len(),
        },
        context: SearchContext {
            consistency_token: s.token(page.revision),
        },
        results: page
            .accounts
            .iter()
            .map(|icn| ResourceOut {
                kind: "account",
                id: icn.to_string(),
            })
            .collect(),
    }
}

/// `GET /.well-known/authzen-configuration`: the endpoints this PDP serves under `base`.
#[derive(Debug, Serialize)]
pub struct Metadata {
    pub policy_decision_point: String,
    pub access_evaluation_endpoint: String,
    pub access_evaluations_endpoint: String,
    pub search_resource_endpoint: String,
}

pub fn metadata(base: &str) -> Metadata {
    Metadata {
        policy_decision_point: base.to_owned(),
        access_evaluation_endpoint: format!("{base}{}", super::EVALUATION),
        access_evaluations_endpoint: format!("{base}{}", super::EVALUATIONS),
        search_resource_endpoint: format!("{base}{}", super::SEARCH_RESOURCE),
    }
}
