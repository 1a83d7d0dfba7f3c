use tonic::{Request, Response, Status};

use super::args::{self, DOMAINS, MEMBERS, REQUESTS};
use super::convert as cv;
use super::{Api, svc};
use crate::proto::v1 as pb;
use crate::proto::v1::access_service_server::AccessService;

pub type AccessServer = pb::access_service_server::AccessServiceServer<Api>;

#[tonic::async_trait]
impl AccessService for Api {
    async fn request_access(
        &self,
        req: Request<pb::RequestAccessRequest>,
    ) -> Result<Response<pb::RequestAccessResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let args::RequestAccess { icn, country, role } = args::request_access(&m)?;
            let view = svc(s.request_access(&caller, &icn, &country, role).await)?;
            Ok(pb::RequestAccessResponse {
                access_request: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn approve_request(
        &self,
        req: Request<pb::ApproveRequestRequest>,
    ) -> Result<Response<pb::ApproveRequestResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (id, granted, expires_at) = args::approve_request(&m)?;
            let view = svc(s.approve_request(&caller, id, granted, expires_at).await)?;
            Ok(pb::ApproveRequestResponse {
                access_request: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn deny_request(
        &self,
        req: Request<pb::DenyRequestRequest>,
    ) -> Result<Response<pb::DenyRequestResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (id, reason) = args::deny_request(&m)?;
            let view = svc(s.deny_request(&caller, id, &reason).await)?;
            Ok(pb::DenyRequestResponse {
                access_request: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn withdraw_request(
        &self,
        req: Request<pb::WithdrawRequestRequest>,
    ) -> Result<Response<pb::WithdrawRequestResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (id, reason) = args::withdraw_request(&m)?;
            let view = svc(s.withdraw_request(&caller, id, &reason).await)?;
            Ok(pb::WithdrawRequestResponse {
                access_request: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let code = args::verify_email(&m)?;
            let verified = svc(s.verify_email(&caller, &code).await)?;
            Ok(pb::VerifyEmailResponse {
                email_verified: verified.value,
                consistency_token: s.token(verified.revision),
            })
        })
        .await
    }

    async fn send_verification_email(
        &self,
        req: Request<pb::SendVerificationEmailRequest>,
    ) -> Result<Response<pb::SendVerificationEmailResponse>, Status> {
        self.mutate(req, |caller, s, _m| async move {
            let (email, expires_at) = svc(s.send_verification_email(&caller).await)?;
            Ok(pb::SendVerificationEmailResponse {
                email,
                expire_time: cv::timestamp(expires_at),
            })
        })
        .await
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
            waiting_requests: mine.waiting.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_access_requests(
        &self,
        req: Request<pb::ListAccessRequestsRequest>,
    ) -> Result<Response<pb::ListAccessRequestsResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let args::ListAccessRequests {
            icn,
            state,
            limit,
            before,
        } = args::list_access_requests(req.get_ref())?;
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
        let args::ListMembers { icn, limit, after } = args::list_members(req.get_ref())?;
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
        self.mutate(req, |caller, s, m| async move {
            let (icn, web_id, role, expires_at) = args::update_member_role(&m)?;
            let view = svc(s
                .update_member_role(&caller, &icn, &web_id, role, expires_at)
                .await)?;
            Ok(pb::UpdateMemberRoleResponse {
                membership: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, web_id, reason) = args::remove_member(&m)?;
            let view = svc(s.remove_member(&caller, &icn, &web_id, &reason).await)?;
            Ok(pb::RemoveMemberResponse {
                membership: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }

    async fn set_email_domain_policy(
        &self,
        req: Request<pb::SetEmailDomainPolicyRequest>,
    ) -> Result<Response<pb::SetEmailDomainPolicyResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, domain, action, role) = args::set_email_domain_policy(&m)?;
            let rule = svc(s
                .set_email_domain_policy(&caller, &icn, domain, action, role)
                .await)?;
            Ok(pb::SetEmailDomainPolicyResponse {
                email_domain_policy: Some(rule.value.into()),
            })
        })
        .await
    }

    async fn delete_email_domain_policy(
        &self,
        req: Request<pb::DeleteEmailDomainPolicyRequest>,
    ) -> Result<Response<pb::DeleteEmailDomainPolicyResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, domain) = args::delete_email_domain_policy(&m)?;
            let rule = svc(s.delete_email_domain_policy(&caller, &icn, &domain).await)?;
            Ok(pb::DeleteEmailDomainPolicyResponse {
                email_domain_policy: Some(rule.value.into()),
            })
        })
        .await
    }

    async fn list_email_domain_policies(
        &self,
        req: Request<pb::ListEmailDomainPoliciesRequest>,
    ) -> Result<Response<pb::ListEmailDomainPoliciesResponse>, Status> {
        let (caller, s) = self.enter(&req).await?;
        let (icn, limit, after) = args::list_email_domain_policies(req.get_ref())?;
        let page = svc(s
            .list_email_domain_policies(&caller, &icn, after, limit)
            .await)?;
        Ok(Response::new(pb::ListEmailDomainPoliciesResponse {
            email_domain_policies: page.items.into_iter().map(Into::into).collect(),
            next_page_token: cv::page_token_out(DOMAINS, page.next.map(|d| d.to_string())),
        }))
    }

    async fn certify_member(
        &self,
        req: Request<pb::CertifyMemberRequest>,
    ) -> Result<Response<pb::CertifyMemberResponse>, Status> {
        self.mutate(req, |caller, s, m| async move {
            let (icn, web_id) = args::certify_member(&m)?;
            let view = svc(s.certify_member(&caller, &icn, &web_id).await)?;
            Ok(pb::CertifyMemberResponse {
                membership: Some(view.value.into()),
                consistency_token: s.token(view.revision),
            })
        })
        .await
    }
}
