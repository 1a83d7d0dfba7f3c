use std::pin::Pin;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use super::args;
use super::convert as cv;
use super::{Api, svc};
use crate::domain::{ChangeKey, ChangeRecord, Contract, Revision};
use crate::proto::v1 as pb;
use crate::proto::v1::entitlement_service_server::EntitlementService;
use crate::service::{CheckAnswer, Entitlement, Services, WatchBatch};

pub type EntitlementServer = pb::entitlement_service_server::EntitlementServiceServer<Api>;

fn response(s: &Services, a: CheckAnswer, revision: Revision) -> pb::CheckEntitlementResponse {
    let d = a.decision;
    pb::CheckEntitlementResponse {
        allowed: d.allowed,
        reason: cv::reason_out(d.reason),
        role: cv::role_out(d.role),
        contract_id: d.contract_id.map(|c| c.to_string()).unwrap_or_default(),
        consistency_token: s.token(revision),
        next_step: a.next_step.map(pb::NextStep::from),
        highest_severity: a.highest_severity.map_or(0, i32::from),
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

fn entitlement(e: Entitlement) -> pb::Entitlement {
    let mut out = pb::Entitlement {
        icn: e.icn.to_string(),
        company_name: e.company_name,
        role: cv::role_out(e.role),
        ..Default::default()
    };
    out.highest_severity = e.highest_severity.map_or(0, i32::from);
    if let Some(c) = e.coverage {
        out.all_products = c.all_products;
        out.product_ids = c.product_ids.iter().map(|p| p.to_string()).collect();
        out.contract_end_time = cv::timestamp(c.ends_at);
        out.contracts = c.contracts.into_iter().map(contract_coverage).collect();
    }
    out
}

fn contract_coverage(c: Contract) -> pb::ContractCoverage {
    pb::ContractCoverage {
        all_products: c.covers_every_product(),
        highest_severity: i32::from(crate::domain::decision::highest_severity(&c)),
        contract_id: c.contract_id.to_string(),
        product_ids: c.product_ids.iter().map(|p| p.to_string()).collect(),
        includes_24x7: c.includes_24x7,
        end_time: cv::timestamp(c.ends_at),
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
        let (check, at_least) = args::check_entitlement(req.get_ref())?;
        let at_least = svc(s.honour(at_least).await)?;
        let (d, revision) = svc(s.check_entitlement(&caller, &check, at_least).await)?;
        Ok(Response::new(response(s, d, revision)))
    }

    async fn batch_check_entitlements(
        &self,
        req: Request<pb::BatchCheckEntitlementsRequest>,
    ) -> Result<Response<pb::BatchCheckEntitlementsResponse>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let batch = args::batch_check_entitlements(req.get_ref())?;
        let batch_token = svc(s.honour(batch.token).await)?;
        let answers = futures_util::future::join_all(batch.checks.into_iter().map(|c| {
            let (caller, s) = (&caller, s);
            async move {
                let (check, own) = c?;
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

    async fn list_entitlements(
        &self,
        req: Request<pb::ListEntitlementsRequest>,
    ) -> Result<Response<pb::ListEntitlementsResponse>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let (list, at_least) = args::list_entitlements(req.get_ref())?;
        let at_least = svc(s.honour(at_least).await)?;
        let page = svc(s.list_entitlements(&caller, &list, at_least).await)?;
        Ok(Response::new(pb::ListEntitlementsResponse {
            next_page_token: args::entitlements_page_token(&list, page.next.as_ref()),
            entitlements: page.entitlements.into_iter().map(entitlement).collect(),
            consistency_token: s.token(page.revision),
        }))
    }

    type WatchEntitlementChangesStream = WatchStream;

    async fn watch_entitlement_changes(
        &self,
        req: Request<pb::WatchEntitlementChangesRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (caller, s) = self.enter_read(&req).await?;
        let from = args::watch_token(req.get_ref())?;
        let from = svc(s.honour(from).await)?;
        let icn = args::watch_icn(req.get_ref())?;
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
