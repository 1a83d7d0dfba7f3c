use tonic::{Request, Response, Status};

use super::convert::{self as cv, field};
use super::{Api, svc};
use crate::domain::{Icn, ProductId, WebId};
use crate::proto::v1 as pb;
use crate::proto::v1::entitlement_service_server::EntitlementService;
use crate::service::CheckRequest;

pub type EntitlementServer = pb::entitlement_service_server::EntitlementServiceServer<Api>;

pub(crate) fn check_request(m: &pb::CheckEntitlementRequest) -> Result<CheckRequest, Status> {
    Ok(CheckRequest {
        web_id: field("web_id", &m.web_id, WebId::parse)?,
        icn: field("icn", &m.icn, Icn::parse)?,
        action: cv::action("action", m.action)?,
        product: if m.product_id.is_empty() {
            None
        } else {
            Some(field("product_id", &m.product_id, ProductId::parse)?)
        },
        severity: cv::severity("severity", m.severity)?,
    })
}

#[tonic::async_trait]
impl EntitlementService for Api {
    async fn check_entitlement(
        &self,
        req: Request<pb::CheckEntitlementRequest>,
    ) -> Result<Response<pb::CheckEntitlementResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let check = check_request(req.get_ref())?;
        let d = svc(s.check_entitlement(&caller, &check).await)?;
        Ok(Response::new(pb::CheckEntitlementResponse {
            allowed: d.allowed,
            reason: cv::reason_out(d.reason),
            role: cv::role_out(d.role),
            contract_id: d.contract_id.map(|c| c.to_string()).unwrap_or_default(),
        }))
    }
}
