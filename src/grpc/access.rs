use tonic::{Request, Response, Status};

use super::convert::{self as cv, field, line, text};
use super::{Api, svc};
use crate::domain::{AccessRequestId, CountryCode, Icn, WebId};
use crate::proto::v1 as pb;
use crate::proto::v1::access_service_server::AccessService;

pub type AccessServer = pb::access_service_server::AccessServiceServer<Api>;

const REQUESTS: &str = "requests";
const MEMBERS: &str = "members";

#[tonic::async_trait]
impl AccessService for Api {
    async fn request_access(
        &self,
        req: Request<pb::RequestAccessRequest>,
    ) -> Result<Response<pb::RequestAccessResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let country = field("country_code", &m.country_code, CountryCode::parse)?;
        let role = cv::required_role("requested_role", m.requested_role)?;
        let view = svc(s.request_access(&caller, &icn, &country, role).await)?;
        Ok(Response::new(pb::RequestAccessResponse {
            access_request: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn approve_request(
        &self,
        req: Request<pb::ApproveRequestRequest>,
    ) -> Result<Response<pb::ApproveRequestResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let id = field(
            "access_request_id",
            &m.access_request_id,
            AccessRequestId::parse,
        )?;
        let granted = cv::role("granted_role", m.granted_role)?;
        let expires_at = cv::optional_timestamp_in("expire_time", m.expire_time.as_ref())?;
        let view = svc(s.approve_request(&caller, id, granted, expires_at).await)?;
        Ok(Response::new(pb::ApproveRequestResponse {
            access_request: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn deny_request(
        &self,
        req: Request<pb::DenyRequestRequest>,
    ) -> Result<Response<pb::DenyRequestResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let id = field(
            "access_request_id",
            &m.access_request_id,
            AccessRequestId::parse,
        )?;
        let reason = text("reason", &m.reason, 1000, true)?;
        let view = svc(s.deny_request(&caller, id, &reason).await)?;
        Ok(Response::new(pb::DenyRequestResponse {
            access_request: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn withdraw_request(
        &self,
        req: Request<pb::WithdrawRequestRequest>,
    ) -> Result<Response<pb::WithdrawRequestResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let id = field(
            "access_request_id",
            &m.access_request_id,
            AccessRequestId::parse,
        )?;
        let reason = text("reason", &m.reason, 1000, false)?;
        let view = svc(s.withdraw_request(&caller, id, &reason).await)?;
        Ok(Response::new(pb::WithdrawRequestResponse {
            access_request: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let code = line("code", &req.into_inner().code, 64, true)?;
        let verified = svc(s.verify_email(&caller, &code).await)?;
        Ok(Response::new(pb::VerifyEmailResponse {
            email_verified: verified.value,
            consistency_token: s.token(verified.revision),
        }))
    }

    async fn send_verification_email(
        &self,
        req: Request<pb::SendVerificationEmailRequest>,
    ) -> Result<Response<pb::SendVerificationEmailResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let (email, expires_at) = svc(s.send_verification_email(&caller).await)?;
        Ok(Response::new(pb::SendVerificationEmailResponse {
            email,
            expire_time: cv::timestamp(expires_at),
        }))
    }

    async fn get_my_access(
        &self,
        req: Request<pb::GetMyAccessRequest>,
    ) -> Result<Response<pb::GetMyAccessResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let mine = svc(s.my_access(&caller).await)?;
        let email = mine.person.as_ref().map(|p| p.email.to_string());
        Ok(Response::new(pb::GetMyAccessResponse {
            web_id: caller.web_id.to_string(),
            email: email
                .or_else(|| caller.email.as_ref().map(|e| e.to_string()))
                .unwrap_or_default(),
            email_verified: mine.person.is_some_and(|p| p.email_verified()),
            memberships: mine.memberships.into_iter().map(Into::into).collect(),
            access_requests: mine.requests.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_access_requests(
        &self,
        req: Request<pb::ListAccessRequestsRequest>,
    ) -> Result<Response<pb::ListAccessRequestsResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let state = cv::state("state", m.state)?;
        let limit = cv::page_size(m.page_size)?;
        let before =
            cv::page_token_in(REQUESTS, &m.page_token, |k| AccessRequestId::parse(k).ok())?;
        let page = svc(s
            .list_access_requests(&caller, &icn, state, before, limit)
            .await)?;
        Ok(Response::new(pb::ListAccessRequestsResponse {
            access_requests: page.items.into_iter().map(Into::into).collect(),
            next_page_token: cv::page_token_out(REQUESTS, page.next.map(|id| id.to_string())),
        }))
    }

    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let limit = cv::page_size(m.page_size)?;
        let after = cv::page_token_in(MEMBERS, &m.page_token, |k| WebId::parse(k).ok())?;
        let page = svc(s.list_members(&caller, &icn, after, limit).await)?;
        Ok(Response::new(pb::ListMembersResponse {
            memberships: page.items.into_iter().map(Into::into).collect(),
            next_page_token: cv::page_token_out(MEMBERS, page.next.map(|w| w.to_string())),
        }))
    }

    async fn update_member_role(
        &self,
        req: Request<pb::UpdateMemberRoleRequest>,
    ) -> Result<Response<pb::UpdateMemberRoleResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let web_id = field("web_id", &m.web_id, WebId::parse)?;
        let role = cv::required_role("role", m.role)?;
        let expires_at = cv::optional_timestamp_in("expire_time", m.expire_time.as_ref())?;
        let view = svc(s
            .update_member_role(&caller, &icn, &web_id, role, expires_at)
            .await)?;
        Ok(Response::new(pb::UpdateMemberRoleResponse {
            membership: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let web_id = field("web_id", &m.web_id, WebId::parse)?;
        let reason = text("reason", &m.reason, 1000, false)?;
        let view = svc(s.remove_member(&caller, &icn, &web_id, &reason).await)?;
        Ok(Response::new(pb::RemoveMemberResponse {
            membership: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }

    async fn certify_member(
        &self,
        req: Request<pb::CertifyMemberRequest>,
    ) -> Result<Response<pb::CertifyMemberResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let m = req.into_inner();
        let icn = field("icn", &m.icn, Icn::parse)?;
        let web_id = field("web_id", &m.web_id, WebId::parse)?;
        let view = svc(s.certify_member(&caller, &icn, &web_id).await)?;
        Ok(Response::new(pb::CertifyMemberResponse {
            membership: Some(view.value.into()),
            consistency_token: s.token(view.revision),
        }))
    }
}
