use tonic::{Request, Response, Status};

use super::convert::{self as cv, field, line, text};
use super::{Api, svc};
use crate::domain::{Contract, ContractId, CountryCode, Email, Icn, ProductId, Reason, WebId};
use crate::proto::v1 as pb;
use crate::proto::v1::account_admin_service_server::AccountAdminService;
use crate::service::NewStc;

pub type AdminServer = pb::account_admin_service_server::AccountAdminServiceServer<Api>;

const AUDIT: &str = "audit";
const MAX_PRODUCTS: usize = 1000;

#[tonic::async_trait]
impl AccountAdminService for Api {
    async fn create_account(
        &self,
        req: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let company = line("company_name", &m.company_name, 200, true)?;
        let country = field("country_code", &m.country_code, CountryCode::parse)?;
        let account = svc(s.create_account(&caller, &icn, &company, &country).await)?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(account.value.into()),
            consistency_token: s.token(account.revision),
        }))
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let icn = field("icn", &req.get_ref().icn, Icn::parse)?;
        let (account, contracts, stcs) = svc(s.get_account(&caller, &icn).await)?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account.into()),
            contracts: contracts.into_iter().map(Into::into).collect(),
            site_technical_contacts: stcs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn set_account_status(
        &self,
        req: Request<pb::SetAccountStatusRequest>,
    ) -> Result<Response<pb::SetAccountStatusResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let status = cv::account_status("status", m.status)?;
        let reason = text("reason", &m.reason, 1000, false)?;
        let account = svc(s.set_account_status(&caller, &icn, status, &reason).await)?;
        Ok(Response::new(pb::SetAccountStatusResponse {
            account: Some(account.value.into()),
            consistency_token: s.token(account.revision),
        }))
    }

    async fn add_site_technical_contact(
        &self,
        req: Request<pb::AddSiteTechnicalContactRequest>,
    ) -> Result<Response<pb::AddSiteTechnicalContactResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let stc = NewStc {
            web_id: field("web_id", &m.web_id, WebId::parse)?,
            email: field("email", &m.email, Email::parse)?,
            given_name: line("given_name", &m.given_name, 200, false)?,
            family_name: line("family_name", &m.family_name, 200, false)?,
        };
        let view = svc(s.add_site_technical_contact(&caller, &icn, stc).await)?;
        Ok(Response::new(pb::AddSiteTechnicalContactResponse {
            membership: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn remove_site_technical_contact(
        &self,
        req: Request<pb::RemoveSiteTechnicalContactRequest>,
    ) -> Result<Response<pb::RemoveSiteTechnicalContactResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let web_id = field("web_id", &m.web_id, WebId::parse)?;
        let reason = text("reason", &m.reason, 1000, false)?;
        let view = svc(s
            .remove_site_technical_contact(&caller, &icn, &web_id, &reason)
            .await)?;
        Ok(Response::new(pb::RemoveSiteTechnicalContactResponse {
            membership: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn upsert_support_contract(
        &self,
        req: Request<pb::UpsertSupportContractRequest>,
    ) -> Result<Response<pb::UpsertSupportContractResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        if m.product_ids.len() > MAX_PRODUCTS {
            return Err(super::status::invalid_field(
                "product_ids",
                Reason::InvalidArgument,
                "at most 1000 products",
            ));
        }
        let mut products = Vec::with_capacity(m.product_ids.len());
        for (i, p) in m.product_ids.iter().enumerate() {
            products.push(field(&format!("product_ids[{i}]"), p, ProductId::parse)?);
        }
        let contract = Contract {
            icn: field("icn", &m.icn, Icn::parse)?,
            contract_id: field("contract_id", &m.contract_id, ContractId::parse)?,
            product_ids: products,
            starts_at: cv::timestamp_in("start_time", m.start_time.as_ref())?,
            ends_at: cv::timestamp_in("end_time", m.end_time.as_ref())?,
            includes_24x7: m.includes_24x7,
            updated_at: 0,
        };
        let contract = svc(s.upsert_contract(&caller, contract).await)?;
        Ok(Response::new(pb::UpsertSupportContractResponse {
            contract: Some(contract.value.into()),
            consistency_token: s.token(contract.revision),
        }))
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = if m.icn.is_empty() {
            None
        } else {
            Some(field("icn", &m.icn, Icn::parse)?)
        };
        let limit = cv::page_size(m.page_size)?;
        let before = cv::page_token_in(AUDIT, &m.page_token, |k| k.parse::<i64>().ok())?;
        let page = svc(s
            .list_audit_events(&caller, icn.as_ref(), before, limit)
            .await)?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: page.items.into_iter().map(Into::into).collect(),
            next_page_token: cv::page_token_out(AUDIT, page.next.map(|id| id.to_string())),
        }))
    }
}
