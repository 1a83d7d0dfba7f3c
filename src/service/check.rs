//! CheckEntitlement: the hot path. Authorization is a few comparisons; the answer is the
//! pure `decide` over facts read from the store.

use super::{Caller, ServiceError, ServiceResult, Services};
use crate::domain::decision::CheckInput;
use crate::domain::{Action, Decision, Icn, ProductId, WebId, decide};

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub web_id: WebId,
    pub icn: Icn,
    pub action: Action,
    pub product: Option<ProductId>,
    /// 1-4, None when not given.
    pub severity: Option<u8>,
}

impl Services {
    pub async fn check_entitlement(
        &self,
        caller: &Caller,
        req: &CheckRequest,
    ) -> ServiceResult<Decision> {
        // The ticketing system (and operators) may ask about anyone; a person only about themself.
        if !(caller.checker || caller.operator || caller.web_id == req.web_id) {
            return Err(ServiceError::denied(
                "CHECK_SCOPE_REQUIRED",
                "checking another person's entitlement needs the entitlements.check scope",
            ));
        }
        let facts = self.store().check_facts(&req.icn, &req.web_id).await?;
        let input = CheckInput {
            action: req.action,
            product: req.product.as_ref(),
            severity: req.severity,
        };
        Ok(decide(&facts, &input, self.now()))
    }
}
