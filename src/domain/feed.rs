//! The change feed's vocabulary: which facts a committed change touched, and at what revision.

use super::ids::{Icn, WebId};
use crate::clock::Millis;

/// Commit-ordered position in the change feed; what a consistency token carries.
pub type Revision = i64;

/// The facts a change touched, at the grain the check cache keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKey {
    /// Status or contracts of an account: every check on it.
    Account(Icn),
    /// A person's membership or requests on one account.
    Member(Icn, WebId),
    /// A person's email verification: every check of theirs.
    Person(WebId),
}

impl ChangeKey {
    pub fn kind(&self) -> &'static str {
        match self {
            ChangeKey::Account(_) => "ACCOUNT",
            ChangeKey::Member(..) => "MEMBER",
            ChangeKey::Person(_) => "PERSON",
        }
    }
    pub fn icn(&self) -> Option<&Icn> {
        match self {
            ChangeKey::Account(i) | ChangeKey::Member(i, _) => Some(i),
            ChangeKey::Person(_) => None,
        }
    }
    pub fn web_id(&self) -> Option<&WebId> {
        match self {
            ChangeKey::Member(_, w) | ChangeKey::Person(w) => Some(w),
            ChangeKey::Account(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub revision: Revision,
    pub key: ChangeKey,
    pub at: Millis,
}

/// Consistency tokens are opaque to callers: a version tag and the revision.
pub fn encode_token(r: Revision) -> String {
    format!("v1.{r}")
}

pub fn decode_token(s: &str) -> Option<Revision> {
    s.strip_prefix("v1.")?
        .parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_kind_account_and_person() {
        let icn = Icn::from_trusted("1".into());
        let ana = WebId::from_trusted("ana".into());
        let account = ChangeKey::Account(icn.clone());
        let member = ChangeKey::Member(icn.clone(), ana.clone());
        let person = ChangeKey::Person(ana.clone());
        assert_eq!(
            [account.kind(), member.kind(), person.kind()],
            ["ACCOUNT", "MEMBER", "PERSON"]
        );
        assert_eq!(account.icn(), Some(&icn));
        assert_eq!(member.icn(), Some(&icn));
        assert_eq!(person.icn(), None);
        assert_eq!(account.web_id(), None);
        assert_eq!(member.web_id(), Some(&ana));
        assert_eq!(person.web_id(), Some(&ana));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        assert_eq!(decode_token("42"), None);
        assert_eq!(decode_token("v1.-1"), None);
        assert_eq!(decode_token("v1.x"), None);
    }
}
