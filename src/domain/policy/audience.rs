//! Who hears of what: the rules that pick, among an account's administrators and the
//! operators, who is written to about a pending request, a lapsed grant or contracts that end.

use crate::domain::access_request::Nudge;
use crate::domain::model::AccountStatus;
use crate::domain::role::Role;

/// One of an account's active administrators (STC or TC), as [`request_audience`] sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Administrator {
    pub role: Role,
    pub email_verified: bool,
}

/// Who is written to about a pending request: the administrators at these positions of the
/// list given, and whether the operators are too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    pub administrators: Vec<usize>,
    pub operators: bool,
}

/// Who hears of a pending request: `None` when it is made, else at its reminder or
/// escalation. Administrators of a suspended account cannot decide, so only operators hear.
pub fn request_audience(
    stage: Option<Nudge>,
    account: AccountStatus,
    admins: &[Administrator],
) -> Audience {
    let can_decide = admins.iter().any(|a| a.email_verified);
    if account != AccountStatus::Active {
        return Audience {
            administrators: Vec::new(),
            operators: true,
        };
    }
    let wanted = |a: &Administrator| match stage {
        None | Some(Nudge::Remind) => true,
        Some(Nudge::Escalate) => a.role == Role::SiteTechnicalContact,
    };
    let candidates: Vec<usize> = (0..admins.len()).filter(|&i| wanted(&admins[i])).collect();
    Audience {
        administrators: verified_else_all(admins, candidates),
        operators: !can_decide,
    }
}

/// Which of an account's administrators are told of something about it (a lapsed grant, as
/// much as a new request): those with a verified address, or all of them if none has one.
pub fn administrators_told(admins: &[Administrator]) -> Vec<usize> {
    verified_else_all(admins, (0..admins.len()).collect())
}

/// Which of an account's administrators are warned that its last contract in force is about to
/// end: its STCs (they deal with the contract), verified ones, else all of them; nobody while
/// the account is suspended (an operator suspended it: there is nothing for its people to renew).
pub fn contract_end_audience(account: AccountStatus, admins: &[Administrator]) -> Vec<usize> {
    if account != AccountStatus::Active {
        return Vec::new();
    }
    let stcs = (0..admins.len())
        .filter(|&i| admins[i].role == Role::SiteTechnicalContact)
        .collect();
    verified_else_all(admins, stcs)
}

/// Unverified administrators still hear when nobody verified would: verifying their address
/// is what lets them act.
fn verified_else_all(admins: &[Administrator], candidates: Vec<usize>) -> Vec<usize> {
    let verified: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| admins[i].email_verified)
        .collect();
    if verified.is_empty() {
        candidates
    } else {
        verified
    }
}
