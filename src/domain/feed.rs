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

/// What a consistency token says: a revision of one database's change feed. Opaque to
/// callers; the database is named so that a token from another one is refused, not misread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub database: String,
    pub revision: Revision,
}

pub fn encode_token(database: &str, r: Revision) -> String {
    format!("v2.{database}.{r}")
}

pub fn decode_token(s: &str) -> Option<Token> {
    let (database, revision) = s.strip_prefix("v2.")?.split_once('.')?;
    let named = !database.is_empty()
        && database.len() <= 32
        && database.bytes().all(|b| b.is_ascii_alphanumeric());
    let revision = revision.parse::<Revision>().ok().filter(|r| *r >= 0)?;
    named.then(|| Token {
        database: database.to_owned(),
        revision,
    })
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
        let t = Token {
            database: "0f3a9c".into(),
            revision: 42,
        };
        assert_eq!(decode_token(&encode_token("0f3a9c", 42)), Some(t));
        assert_eq!(decode_token("42"), None);
        assert_eq!(decode_token("v2.ab12.-1"), None);
        assert_eq!(decode_token("v2.ab12.x"), None);
        assert_eq!(decode_token("v1.5"), None, "tokens that name no database");
        assert_eq!(decode_token("v2..5"), None);
        assert_eq!(decode_token("v2.a-b.5"), None);
        assert_eq!(decode_token(&format!("v2.{}.5", "a".repeat(33))), None);
    }
}
