//! The shape `ctl` prints for a mutation's response: what changed and the consistency token
//! to read it back with, the same for every RPC that returns one.

use super::render::{self, Node, obj, opt};
use crate::proto::v1 as pb;

/// The responses that carry a membership and a consistency token.
pub(super) struct MembershipChange(Option<pb::Membership>, String);

macro_rules! membership_change_from {
    ($($t:ty),*) => {$(
        impl From<$t> for MembershipChange {
            fn from(r: $t) -> Self {
                MembershipChange(r.membership, r.consistency_token)
            }
        }
    )*};
}
membership_change_from!(
    pb::AddSiteTechnicalContactResponse,
    pb::RemoveSiteTechnicalContactResponse,
    pb::UpdateMemberRoleResponse,
    pb::RemoveMemberResponse,
    pb::CertifyMemberResponse
);

pub(super) fn membership_change(MembershipChange(membership, token): MembershipChange) -> Node {
    obj! {
        "membership" => opt(membership.as_ref(), render::membership),
        "consistency_token" => &token,
    }
}

pub(super) fn request_change(request: Option<&pb::AccessRequest>, token: &String) -> Node {
    obj! {
        "access_request" => opt(request, render::access_request),
        "consistency_token" => token,
    }
}
