use tonic::{Request, Response, Status};

use super::args::{self, AUDIT};
use super::convert as cv;
use super::{Api, svc};
use crate::proto::v1 as pb;
use crate::proto::v1::account_admin_service_server::AccountAdminService;

pub type AdminServer = pb::account_admin_service_server::AccountAdminServiceServer<Api>;

#[tonic::async_trait]
impl AccountAdminService for Api {
    async fn create_account(
        &self,
        req: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, company, country) = args::create_account(&m)?;
            let account = svc(s.create_account(&caller, &icn, &company, &country).await)?;
            Ok(pb::CreateAccountResponse {
                account: Some(account.value.into()),
                consistency_token: s.token(account.revision),
            })
        })
        .await
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let icn = args::get_account(req.get_ref())?;
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
        self.mutate(req, |caller, s, m| async move {
            let (icn, status, reason) = args::set_account_status(&m)?;
            let account = svc(s.set_account_status(&caller, &icn, status, &reason).await)?;
            Ok(pb::SetAccountStatusResponse {
                account: Some(account.value.into()),
                consistency_token: s.token(account.revision),
            })
        })
        .await
    }

    async fn add_site_technical_contact(
        &self,
        req: Request<pb::AddSiteTechnicalContactRequest>,
    ) -> Result<Response<pb::AddSiteTechnicalContactResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, stc) = args::add_site_technical_contact(&m)?;
            let view = svc(s.add_site_technical_contact(&caller, &icn, stc).await)?;
            Ok(pb::AddSiteTechnicalContactResponse {
                membership: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn remove_site_technical_contact(
        &self,
        req: Request<pb::RemoveSiteTechnicalContactRequest>,
    ) -> Result<Response<pb::RemoveSiteTechnicalContactResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, web_id, reason) = args::remove_site_technical_contact(&m)?;
            let view = svc(s
                .remove_site_technical_contact(&caller, &icn, &web_id, &reason)
                .await)?;
            Ok(pb::RemoveSiteTechnicalContactResponse {
                membership: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn upsert_support_contract(
        &self,
        req: Request<pb::UpsertSupportContractRequest>,
    ) -> Result<Response<pb::UpsertSupportContractResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let contract = args::upsert_support_contract(&m)?;
            let contract = svc(s.upsert_contract(&caller, contract).await)?;
            Ok(pb::UpsertSupportContractResponse {
                contract: Some(contract.value.into()),
                consistency_token: s.token(contract.revision),
            })
        })
        .await
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let args::ListAuditEvents { icn, limit, before } = args::list_audit_events(req.get_ref())?;
        let page = svc(s
            .list_audit_events(&caller, icn.as_ref(), before, limit)
            .await)?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: page.items.into_iter().map(Into::into).collect(),
            next_page_token: cv::page_token_out(AUDIT, page.next.map(|id| id.to_string())),
        }))
    }
}
