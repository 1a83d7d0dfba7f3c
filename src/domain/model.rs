//! The records of the domain, as the service reasons about them.

use super::ids::{ContractId, CountryCode, Email, Icn, ProductId, WebId};
use super::role::Role;
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Suspended => "SUSPENDED",
        }
    }
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(AccountStatus::Active),
            "SUSPENDED" => Some(AccountStatus::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub icn: Icn,
    pub company_name: String,
    pub country: CountryCode,
    pub status: AccountStatus,
    pub status_reason: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A person known to the service: from their token's claims, or as given by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub web_id: WebId,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    /// Verification belongs to the person and to the address: a new address must be verified again.
    pub email_verified_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Person {
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.given_name, self.family_name);
        let full = full.trim();
        if full.is_empty() {
            self.web_id.to_string()
        } else {
            full.to_owned()
        }
    }
}

/// A membership row. A removed membership is kept (with `removed_at`) so a check can say
/// ACCESS_REVOKED rather than NOT_A_MEMBER. A time-boxed one (`expires_at`) lapses at that
/// instant, whether or not the sweeper has recorded it yet (it then sets `removed_at` to
/// the same instant): everything that asks whether a membership is active asks as of a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub icn: Icn,
    pub web_id: WebId,
    pub role: Role,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub removed_at: Option<Millis>,
    /// Exclusive, like a contract's end: from this instant the membership has lapsed.
    pub expires_at: Option<Millis>,
}

impl Membership {
    /// Active at `now`: neither removed nor lapsed.
    pub fn is_active_at(&self, now: Millis) -> bool {
        ended_at(self.removed_at, self.expires_at, now).is_none()
    }

    /// Lapsed at `now` (its end passed) but not yet recorded as ended: the sweeper's work.
    pub fn lapse_due(&self, now: Millis) -> bool {
        self.removed_at.is_none() && self.expires_at.is_some_and(|e| e <= now)
    }
}

/// When a membership ended as of `now`: its removal, else its end if that has passed.
pub fn ended_at(
    removed_at: Option<Millis>,
    expires_at: Option<Millis>,
    now: Millis,
) -> Option<Millis> {
    removed_at.or(expires_at.filter(|&e| e <= now))
}

/// How far ahead an approval or a role change may put a membership's end: about three years
/// (1096 days). Further is almost surely a typo for "no end", which is said by leaving it out.
pub const MAX_GRANT_AHEAD_MS: Millis = 1096 * 24 * 3600 * 1000;

/// Checks an end given to a membership at `now`: in the future, at most
/// [`MAX_GRANT_AHEAD_MS`] ahead. The error says what is wrong with it.
pub fn check_expire_time(now: Millis, expires_at: Millis) -> Result<(), &'static str> {
    if expires_at <= now {
        Err("must be in the future")
    } else if expires_at - now > MAX_GRANT_AHEAD_MS {
        Err("must be at most 1096 days (about three years) ahead; leave it out for no end")
    } else {
        Ok(())
    }
}

/// A membership with the person and account it joins, for lists and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub membership: Membership,
    pub person: Option<Person>,
    pub company_name: String,
    /// The deadline by which an administrator must confirm this member after a renewal of the
    /// account's contract, else they lose their access; None when nothing is owed.
    pub recertify_by: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub icn: Icn,
    pub contract_id: ContractId,
    /// Empty covers every product.
    pub product_ids: Vec<ProductId>,
    pub starts_at: Millis,
    /// Exclusive: at `ends_at` the contract no longer covers anything.
    pub ends_at: Millis,
    pub includes_24x7: bool,
    pub updated_at: Millis,
}

impl Contract {
    pub fn in_force_at(&self, now: Millis) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn covers(&self, product: Option<&ProductId>) -> bool {
        match product {
            None => true,
            Some(p) => self.covers_every_product() || self.product_ids.contains(p),
        }
    }

    /// A contract that names no product covers them all.
    pub fn covers_every_product(&self) -> bool {
        self.product_ids.is_empty()
    }
}

/// An audit event as written; the store assigns its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub icn: Option<Icn>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
}

/// An access request with the requester and account it names, for answers and lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequestView {
    pub request: super::access_request::AccessRequest,
    pub requester: Option<Person>,
    pub company_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_status_round_trips() {
        for s in [AccountStatus::Active, AccountStatus::Suspended] {
            assert_eq!(AccountStatus::from_db(s.as_str()), Some(s));
        }
        assert_eq!(AccountStatus::from_db("active"), None);
    }

    #[test]
    fn a_contract_is_in_force_from_its_start_until_before_its_end() {
        let c = Contract {
            icn: Icn::from_trusted("1".into()),
            contract_id: ContractId::from_trusted("C".into()),
            product_ids: vec![ProductId::from_trusted("db2".into())],
            starts_at: 10,
            ends_at: 20,
            includes_24x7: false,
            updated_at: 0,
        };
        assert!(!c.in_force_at(9) && c.in_force_at(10) && c.in_force_at(19));
        assert!(!c.in_force_at(20));
        assert!(c.covers(None) && c.covers(Some(&ProductId::from_trusted("db2".into()))));
        assert!(!c.covers(Some(&ProductId::from_trusted("mq".into()))));
        let all = Contract {
            product_ids: Vec::new(),
            ..c
        };
        assert!(all.covers(Some(&ProductId::from_trusted("mq".into()))));
    }

    #[test]
    fn a_person_is_named_by_their_names_or_else_their_web_id() {
        let mut p = Person {
            web_id: WebId::from_trusted("ana".into()),
            email: Email::from_trusted("ana@example.com".into()),
            given_name: "Ana".into(),
            family_name: "Lima".into(),
            email_verified_at: None,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(p.display_name(), "Ana Lima");
        assert!(!p.email_verified());
        p.email_verified_at = Some(1);
        assert!(p.email_verified());
        p.given_name.clear();
        p.family_name.clear();
        assert_eq!(p.display_name(), "ana");
        let m = Membership {
            icn: Icn::from_trusted("1".into()),
            web_id: p.web_id.clone(),
            role: Role::AuthorizedUser,
            created_at: 0,
            updated_at: 0,
            removed_at: None,
            expires_at: None,
        };
        assert!(m.is_active_at(0));
        assert!(
            !Membership {
                removed_at: Some(1),
                ..m.clone()
            }
            .is_active_at(0)
        );
        let boxed = Membership {
            expires_at: Some(10),
            ..m
        };
        assert!(boxed.is_active_at(9) && !boxed.lapse_due(9));
        assert!(!boxed.is_active_at(10) && boxed.lapse_due(10));
        let recorded = Membership {
            removed_at: Some(10),
            ..boxed
        };
        assert!(!recorded.is_active_at(11) && !recorded.lapse_due(11));
    }

    #[test]
    fn an_end_must_be_in_the_future_and_at_most_about_three_years_ahead() {
        assert!(check_expire_time(100, 100).is_err());
        assert!(check_expire_time(100, 99).is_err());
        assert!(check_expire_time(100, 101).is_ok());
        assert!(check_expire_time(100, 100 + MAX_GRANT_AHEAD_MS).is_ok());
        assert!(check_expire_time(100, 101 + MAX_GRANT_AHEAD_MS).is_err());
    }
}
