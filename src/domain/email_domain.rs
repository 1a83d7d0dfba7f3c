//! Email-domain policies (issue 9): per account, what happens to a request for access made
//! from an address in a listed domain. A domain matches exactly: a rule for `example.com`
//! covers `ana@example.com` and `ana@EXAMPLE.COM`, never `ana@eu.example.com` (list each
//! subdomain that should be covered). An unlisted domain is held for an administrator, as
//! every request was before.

use super::ids::ParseError;
use super::{Email, Icn, Role, WebId};
use crate::clock::Millis;

/// A DNS name, lowercase: at least two labels of 1-63 letters, digits or hyphens (not at a
/// label's start or end), 253 bytes at most. No wildcards, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailDomain(String);

impl EmailDomain {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = |m: &str| Err(ParseError(m.to_owned()));
        if s.is_empty() {
            return err("is required");
        }
        if s.len() > 253 {
            return err("must be at most 253 bytes");
        }
        if s.contains('*') {
            return err(
                "must be a domain name without wildcards: a rule matches exactly that domain",
            );
        }
        if s.contains('@') {
            return err("must be the domain only, without a local part or @");
        }
        let lower = s.to_ascii_lowercase();
        let labels: Vec<&str> = lower.split('.').collect();
        if labels.len() < 2 {
            return err("must be a domain name with at least two labels, such as example.com");
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return err(
                    "must be a DNS name: labels of 1-63 letters, digits or hyphens, separated by dots",
                );
            }
        }
        Ok(Self(lower))
    }

    /// The domain of an address, as rules are matched against it.
    pub fn of(email: &Email) -> Option<Self> {
        let (_, domain) = email.as_str().rsplit_once('@')?;
        Self::parse(domain).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a rule does with a request from its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainAction {
    /// Approved at once by the service, with the rule's role.
    AutoApprove,
    /// Held for an administrator (the default for unlisted domains).
    Hold,
    /// Refused (FAILED_PRECONDITION, EMAIL_DOMAIN_REFUSED); nothing is stored.
    Refuse,
}

impl DomainAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainAction::AutoApprove => "AUTO_APPROVE",
            DomainAction::Hold => "HOLD",
            DomainAction::Refuse => "REFUSE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AUTO_APPROVE" => Some(DomainAction::AutoApprove),
            "HOLD" => Some(DomainAction::Hold),
            "REFUSE" => Some(DomainAction::Refuse),
            _ => None,
        }
    }
}

/// The highest role an automatic approval grants: never above Authorized User.
pub const AUTO_APPROVE_MAX_ROLE: Role = Role::AuthorizedUser;

/// One account's rule for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule {
    pub icn: Icn,
    pub domain: EmailDomain,
    pub action: DomainAction,
    /// The role an automatic approval grants; None for HOLD and REFUSE.
    pub role: Option<Role>,
    pub created_by: WebId,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl DomainRule {
    /// The role a request for `requested` is granted under an AUTO_APPROVE rule: the rule's
    /// role, never above what was asked for nor above Authorized User.
    pub fn granted(&self, requested: Role) -> Role {
        self.role
            .unwrap_or(AUTO_APPROVE_MAX_ROLE)
            .min(AUTO_APPROVE_MAX_ROLE)
            .min(requested)
    }
}

/// Checks an action and role given together: AUTO_APPROVE grants Authorized User (unset means
/// that); HOLD and REFUSE take no role. Err names what is wrong with `role`.
pub fn check_role(action: DomainAction, role: Option<Role>) -> Result<Option<Role>, ParseError> {
    match (action, role) {
        (DomainAction::AutoApprove, None) => Ok(Some(AUTO_APPROVE_MAX_ROLE)),
        (DomainAction::AutoApprove, Some(r)) if r == AUTO_APPROVE_MAX_ROLE => Ok(Some(r)),
        (DomainAction::AutoApprove, Some(_)) => Err(ParseError(
            "an automatic approval grants ROLE_AUTHORIZED_USER only".to_owned(),
        )),
        (_, None) => Ok(None),
        (_, Some(_)) => Err(ParseError(
            "must be unset unless the action is EMAIL_DOMAIN_ACTION_AUTO_APPROVE".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_dns_names_lowercased() {
        assert_eq!(
            EmailDomain::parse("Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            EmailDomain::parse("eu.ex-ample.co.uk").unwrap().as_str(),
            "eu.ex-ample.co.uk"
        );
        for bad in [
            "",
            "com",
            "*.example.com",
            "a@example.com",
            "example..com",
            ".example.com",
            "example.com.",
            "-a.example.com",
            "a-.example.com",
            "ex ample.com",
            "exämple.com",
            "ex_ample.com",
        ] {
            assert!(EmailDomain::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EmailDomain::parse(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(EmailDomain::parse(&format!("{}.com", "a".repeat(63))).is_ok());
    }

    #[test]
    fn an_address_matches_its_exact_domain() {
        let e = Email::parse("Ana@Example.com").unwrap();
        assert_eq!(EmailDomain::of(&e).unwrap().as_str(), "example.com");
    }

    #[test]
    fn auto_approval_grants_authorized_user_at_most() {
        use DomainAction::*;
        assert_eq!(
            check_role(AutoApprove, None).unwrap(),
            Some(Role::AuthorizedUser)
        );
        assert!(check_role(AutoApprove, Some(Role::TechnicalContact)).is_err());
        assert!(check_role(AutoApprove, Some(Role::ProvisionalCaller)).is_err());
        assert!(check_role(Hold, Some(Role::AuthorizedUser)).is_err());
        assert_eq!(check_role(Refuse, None).unwrap(), None);
        for action in [AutoApprove, Hold, Refuse] {
            assert_eq!(DomainAction::parse(action.as_str()), Some(action));
        }
    }
}
