//! The AuthZEN endpoints: decode, authenticate, call a use case, encode.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value};

use super::answer::{self, DecisionOut, EvaluationsOut};
use super::args::{self, Evaluation, Evaluations, FieldError, Semantic};
use super::{HttpApi, HttpError, json};
use crate::domain::{Reason, Revision};
use crate::service::{Caller, CheckAnswer, ServiceError, Services};

type Answer = Result<Response, HttpError>;
type Body = Result<Bytes, BytesRejection>;

pub async fn evaluation(State(api): State<HttpApi>, headers: HeaderMap, body: Body) -> Answer {
    let (caller, s) = api.enter(&headers).await?;
    let e = args::evaluation(&decode(&headers, body)?)?;
    let (d, revision) = check(s, &caller, &e).await?;
    Ok(json(StatusCode::OK, &answer::decision(s, &d, revision)))
}

pub async fn evaluations(State(api): State<HttpApi>, headers: HeaderMap, body: Body) -> Answer {
    let (caller, s) = api.enter(&headers).await?;
    match args::evaluations(&decode(&headers, body)?)? {
        Evaluations::Single(e) => {
            let (d, revision) = check(s, &caller, &e).await?;
            Ok(json(StatusCode::OK, &answer::decision(s, &d, revision)))
        }
        Evaluations::Many { semantic, items } => Ok(json(
            StatusCode::OK,
            &run(s, &caller, semantic, items).await,
        )),
    }
}

pub async fn search_resource(State(api): State<HttpApi>, headers: HeaderMap, body: Body) -> Answer {
    let (caller, s) = api.enter(&headers).await?;
    let q = args::resource_search(&decode(&headers, body)?)?;
    let at_least = s.honour(q.token.clone()).await?;
    let page = s.search_accounts(&caller, &q.search, at_least).await?;
    Ok(json(StatusCode::OK, &answer::search(s, &q, &page)))
}

/// Public, as the spec's metadata is: it names endpoints, nothing about anyone.
pub async fn metadata(State(api): State<HttpApi>, headers: HeaderMap, uri: Uri) -> Answer {
    let scheme = if api.tls { "https" } else { "http" };
    let base = format!("{scheme}://{}", authority(&headers, &uri)?);
    let mut response = json(StatusCode::OK, &answer::metadata(&base));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// The host the PEP asked (HTTP/2's `:authority`, else `Host`): the spec has a PEP compare
/// `policy_decision_point` with the identifier it derived the metadata URL from.
fn authority<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Result<&'a str, HttpError> {
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    host.filter(|h| !h.contains('@'))
        .filter(|h| h.parse::<axum::http::uri::Authority>().is_ok())
        .ok_or_else(|| {
            HttpError::field(
                StatusCode::BAD_REQUEST,
                Reason::InvalidArgument,
                "Host",
                "must name the host this server was asked as",
            )
        })
}

/// The spec's HTTPS binding: a JSON object body, sent as `application/json`.
fn decode(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, HttpError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(HttpError::field(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::InvalidArgument,
            "Content-Type",
            "must be application/json",
        ));
    }
    let bytes = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "is larger than this server takes (--max-message-bytes)".to_owned()
        } else {
            format!("could not be read ({e})")
        };
        HttpError::field(status, Reason::InvalidArgument, "body", &message)
    })?;
    Ok(args::body(&bytes)?)
}

async fn check(
    s: &Services,
    caller: &Caller,
    e: &Evaluation,
) -> Result<(CheckAnswer, Revision), ServiceError> {
    let at_least = s.honour(e.token.clone()).await?;
    s.check_entitlement(caller, &e.check, at_least).await
}

/// One item: its decision, or its own error with a closed decision (the spec's
/// Access Evaluations "Errors").
async fn one(s: &Services, caller: &Caller, item: Result<Evaluation, FieldError>) -> DecisionOut {
    let e = match item {
        Ok(e) => e,
        Err(e) => return answer::failed(HttpError::from(e).body),
    };
    match check(s, caller, &e).await {
        Ok((d, revision)) => answer::decision(s, &d, revision),
        Err(e) => answer::failed(HttpError::from(e).body),
    }
}

/// `execute_all` answers every item (concurrently, as BatchCheckEntitlements); the two
/// short-circuit semantics go in order and stop after the first deny (an error counts as
/// one) or the first permit, so the answer has no items after that one.
async fn run(
    s: &Services,
    caller: &Caller,
    semantic: Semantic,
    items: Vec<Result<Evaluation, FieldError>>,
) -> EvaluationsOut {
    let stop_at = match semantic {
        Semantic::ExecuteAll => {
            let all = items.into_iter().map(|item| one(s, caller, item));
            return EvaluationsOut {
                evaluations: futures_util::future::join_all(all).await,
            };
        }
        Semantic::DenyOnFirstDeny => false,
        Semantic::PermitOnFirstPermit => true,
    };
    let mut evaluations = Vec::with_capacity(items.len());
    for item in items {
        let d = one(s, caller, item).await;
        let last = d.decision == stop_at;
        evaluations.push(d);
        if last {
            break;
        }
    }
    EvaluationsOut { evaluations }
}
