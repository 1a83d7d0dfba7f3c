use std::pin::Pin;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use super::convert::{self as cv, field};
use super::{Api, svc};
use crate::domain::feed::{Token, decode_token};
use crate::domain::{ChangeKey, ChangeRecord, Decision, Icn, ProductId, Reason, Revision, WebId};
use crate::proto::v1 as pb;
use crate::proto::v1::entitlement_service_server::EntitlementService;
use crate::service::{CheckRequest, Services, WatchBatch};

pub type EntitlementServer = pb::entitlement_service_server::EntitlementServiceServer<Api>;

pub const MAX_BATCH: usize = 100;

/// Parses one check; `prefix` names the field's place in a batch (e.g. "checks[3].").
fn check_request(m: &pb::CheckEntitlementRequest, prefix: &str) -> Result<CheckRequest, Status> {
    let f = |name: &str| format!("{prefix}{name}");
    Ok(CheckRequest {
        web_id: field(&f("web_id"), &m.web_id, WebId::parse)?,
        icn: field(&f("icn"), &m.icn, Icn::parse)?,
        action: cv::action(&f("action"), m.action)?,
        product: match m.product_id.as_str() {
            "" => None,
            p => Some(field(&f("product_id"), p, ProductId::parse)?),
        },
        severity: cv::severity(&f("severity"), m.severity)?,
    })
}

fn token(name: &str, s: &str) -> Result<Option<Token>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    decode_token(s).map(Some).ok_or_else(|| {
        super::status::invalid_field(
            name,
            Reason::InvalidConsistencyToken,
            "is not a token this service gave out",
        )
    })
}

fn response(s: &Services, d: Decision, revision: Revision) -> pb::CheckEntitlementResponse {
    pb::CheckEntitlementResponse {
        allowed: d.allowed,
        reason: cv::reason_out(d.reason),
        role: cv::role_out(d.role),
        contract_id: d.contract_id.map(|c| c.to_string()).unwrap_or_default(),
        consistency_token: s.token(revision),
    }
}

fn check_error(s: &Status) -> pb::CheckError {
    let details = s.get_error_details();
    pb::CheckError {
        code: crate::telemetry::rpc::code_name(s.code()).to_owned(),
        reason: details
            .error_info()
            .map(|i| i.reason.clone())
            .unwrap_or_default(),
        message: s.message().to_owned(),
        field: details
            .bad_request()
            .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
            .unwrap_or_default(),
    }
}

fn change(s: &Services, c: ChangeRecord) -> pb::EntitlementChange {
    let (kind, icn, web_id) = match c.key {
        ChangeKey::Account(i) => (pb::ChangeKind::Account, i.to_string(), String::new()),
        ChangeKey::Member(i, w) => (pb::ChangeKind::Member, i.to_string(), w.to_string()),
        ChangeKey::Person(w) => (pb::ChangeKind::Person, String::new(), w.to_string()),
    };
    pb::EntitlementChange {
        consistency_token: s.token(c.revision),
        kind: kind as i32,
        icn,
        web_id,
        change_time: cv::timestamp(c.at),
    }
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchEntitlementChangesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EntitlementService for Api {
    async fn check_entitlement(
        &self,
        req: Request<pb::CheckEntitlementRequest>,
    ) -> Result<Response<pb::CheckEntitlementResponse>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let check = check_request(req.get_ref(), "")?;
        let at_least = token("consistency_token", &req.get_ref().consistency_token)?;
        let at_least = svc(s.honour(at_least).await)?;
        let (d, revision) = svc(s.check_entitlement(&caller, &check, at_least).await)?;
        Ok(Response::new(response(s, d, revision)))
    }

    async fn batch_check_entitlements(
        &self,
        req: Request<pb::BatchCheckEntitlementsRequest>,
    ) -> Result<Response<pb::BatchCheckEntitlementsResponse>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let m = req.into_inner();
        if m.checks.len() > MAX_BATCH {
            return Err(super::status::invalid_field(
                "checks",
                Reason::BatchTooLarge,
                "at most 100 checks per call",
            ));
        }
        let batch_token = token("consistency_token", &m.consistency_token)?;
        let batch_token = svc(s.honour(batch_token).await)?;
        let answers = futures_util::future::join_all(m.checks.iter().enumerate().map(|(i, c)| {
            let (caller, s) = (&caller, s);
            async move {
                let prefix = format!("checks[{i}].");
                let check = check_request(c, &prefix)?;
                let own = token(&format!("{prefix}consistency_token"), &c.consistency_token)?;
                let own = svc(s.honour(own).await)?;
                let at_least = own.max(batch_token);
                svc(s.check_entitlement(caller, &check, at_least).await)
            }
        }))
        .await;
        let mut through = s.applied_revision().max(batch_token.unwrap_or(0));
        let results = answers
            .into_iter()
            .map(|a| pb::BatchCheckResult {
                outcome: Some(match a {
                    Ok((d, r)) => {
                        through = through.max(r);
                        pb::batch_check_result::Outcome::Response(response(s, d, r))
                    }
                    Err(e) => pb::batch_check_result::Outcome::Error(check_error(&e)),
                }),
            })
            .collect();
        Ok(Response::new(pb::BatchCheckEntitlementsResponse {
            results,
            consistency_token: s.token(through),
        }))
    }

    type WatchEntitlementChangesStream = WatchStream;

    async fn watch_entitlement_changes(
        &self,
        req: Request<pb::WatchEntitlementChangesRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let m = req.into_inner();
        let from = token("consistency_token", &m.consistency_token)?;
        let from = svc(s.honour(from).await)?;
        let icn = match m.icn.as_str() {
            "" => None,
            i => Some(field("icn", i, Icn::parse)?),
        };
        let rx = svc(s.watch_changes(&caller, from, icn).await)?;
        let s = s.clone();
        let stream = ReceiverStream::new(rx).map(move |item| {
            item.map(
                |WatchBatch { changes, through }| pb::WatchEntitlementChangesResponse {
                    changes: changes.into_iter().map(|c| change(&s, c)).collect(),
                    consistency_token: s.token(through),
                },
            )
            .map_err(super::status::from_service)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
