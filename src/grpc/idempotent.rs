//! Mutations with an AIP-155 `request_id` (the semantics are in `service::request_ids`): the
//! transport looks for the first answer before running the call, names the request id and
//! the request's fingerprint on the caller so the write path claims it with the change, and
//! after the commit saves the encoded answer for the retries.

use std::future::Future;

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::{Api, args, svc};
use crate::domain::Reason;
use crate::proto::v1 as pb;
use crate::service::{Caller, ServiceError, Services};

/// A request message of a mutation.
pub trait Mutation: Message + Clone + Default + 'static {
    /// The gRPC method: a request id is the caller's for each method apart.
    const METHOD: &'static str;
    fn request_id(&self) -> &str;
    fn clear_request_id(&mut self);
}

macro_rules! mutations {
    ($($msg:ident => $method:literal,)*) => {
        $(impl Mutation for pb::$msg {
            const METHOD: &'static str = $method;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        })*
    };
}

mutations! {
    RequestAccessRequest => "RequestAccess",
    ApproveRequestRequest => "ApproveRequest",
    DenyRequestRequest => "DenyRequest",
    WithdrawRequestRequest => "WithdrawRequest",
    VerifyEmailRequest => "VerifyEmail",
    SendVerificationEmailRequest => "SendVerificationEmail",
    UpdateMemberRoleRequest => "UpdateMemberRole",
    RemoveMemberRequest => "RemoveMember",
    SetEmailDomainPolicyRequest => "SetEmailDomainPolicy",
    DeleteEmailDomainPolicyRequest => "DeleteEmailDomainPolicy",
    CertifyMemberRequest => "CertifyMember",
    CreateAccountRequest => "CreateAccount",
    SetAccountStatusRequest => "SetAccountStatus",
    AddSiteTechnicalContactRequest => "AddSiteTechnicalContact",
    RemoveSiteTechnicalContactRequest => "RemoveSiteTechnicalContact",
    UpsertSupportContractRequest => "UpsertSupportContract",
}

/// Identifies a request apart from its request id: SHA-256 of its encoding without the id
/// (prost writes the fields of these messages, which have no maps, in one order), in hex.
pub fn fingerprint<M: Mutation>(m: &M) -> String {
    let mut bare = m.clone();
    bare.clear_request_id();
    Sha256::digest(bare.encode_to_vec())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Api {
    /// Runs a mutation: authenticates it, and when it carries a `request_id`, answers a
    /// retry with the first answer instead of running it again.
    pub(super) async fn mutate<M, R, F, Fut>(
        &self,
        req: Request<M>,
        run: F,
    ) -> Result<Response<R>, Status>
    where
        M: Mutation,
        R: Message + Default,
        F: FnOnce(Caller, Services, M) -> Fut,
        Fut: Future<Output = Result<R, Status>>,
    {
        let (caller, s) = self.enter(&req).await?;
        let s = s.clone();
        let m = req.into_inner();
        let Some(id) = args::request_id(m.request_id())? else {
            return run(caller, s, m).await.map(Response::new);
        };
        let caller = caller.with_request_id(M::METHOD, id, fingerprint(&m));
        if let Some(first) = svc(s.first_answer(&caller).await)? {
            return replay(&first);
        }
        let result = run(caller.clone(), s.clone(), m).await;
        if caller.ticket().is_some_and(|t| t.claimed()) {
            if let Ok(answer) = &result {
                // Not saving costs only the retries: they are told the change was applied.
                if let Err(e) = s.save_answer(&caller, &answer.encode_to_vec()).await {
                    tracing::warn!(error = %e, method = M::METHOD, "saving a request_id's answer failed");
                }
            }
            return result.map(Response::new);
        }
        // This call claimed nothing: if a concurrent duplicate committed first (and this one
        // failed on its change, or on the claim), its answer is the answer.
        match (s.first_answer(&caller).await, result) {
            (Ok(Some(first)), _) => replay(&first),
            (
                Err(
                    e @ (ServiceError::FailedPrecondition {
                        reason: Reason::RequestIdReused,
                        ..
                    }
                    | ServiceError::Aborted {
                        reason: Reason::RequestAlreadyApplied,
                        ..
                    }),
                ),
                Err(_),
            ) => Err(super::status::from_service(e)),
            (_, result) => result.map(Response::new),
        }
    }
}

fn replay<R: Message + Default>(answer: &[u8]) -> Result<Response<R>, Status> {
    R::decode(answer).map(Response::new).map_err(|e| {
        super::status::from_service(ServiceError::Internal(format!(
            "a saved request_id answer does not decode: {e}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(request_id: &str, icn: &str) -> pb::RequestAccessRequest {
        pb::RequestAccessRequest {
            request_id: request_id.into(),
            icn: icn.into(),
            country_code: "US".into(),
            requested_role: pb::Role::AuthorizedUser as i32,
        }
    }

    #[test]
    fn the_fingerprint_is_of_the_request_without_its_id() {
        let a = fingerprint(&ask("5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93", "1"));
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(&ask("", "1")));
        assert_ne!(
            a,
            fingerprint(&ask("5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93", "2"))
        );
    }

    #[test]
    fn a_request_id_is_a_hyphenated_uuid_kept_lowercase() {
        assert_eq!(args::request_id("").ok(), Some(None));
        assert_eq!(
            args::request_id("5F0C8A1E-3B7D-4C2A-9E61-0D4B8F2A7C93").ok(),
            Some(Some("5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93".to_owned()))
        );
        for bad in [
            "x",
            "00000000-0000-0000-0000-000000000000",
            "5f0c8a1e3b7d4c2a9e610d4b8f2a7c93",
            "urn:uuid:5f0c8a1e-3b7d-4c2a-9e61-0d4b8f2a7c93",
        ] {
            assert!(args::request_id(bad).is_err(), "{bad}");
        }
    }
}
