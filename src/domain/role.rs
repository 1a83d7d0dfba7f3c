use std::fmt;

/// Roles, lowest to highest; the derived order is the privilege order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    ProvisionalCaller,
    AuthorizedUser,
    TechnicalContact,
    SiteTechnicalContact,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProvisionalCaller => "PROVISIONAL_CALLER",
            Role::AuthorizedUser => "AUTHORIZED_USER",
            Role::TechnicalContact => "TECHNICAL_CONTACT",
            Role::SiteTechnicalContact => "SITE_TECHNICAL_CONTACT",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Some(match s {
            "PROVISIONAL_CALLER" => Role::ProvisionalCaller,
            "AUTHORIZED_USER" => Role::AuthorizedUser,
            "TECHNICAL_CONTACT" => Role::TechnicalContact,
            "SITE_TECHNICAL_CONTACT" => Role::SiteTechnicalContact,
            _ => return None,
        })
    }

    /// How a person reads it in an email.
    pub fn label(self) -> &'static str {
        match self {
            Role::ProvisionalCaller => "Provisional Caller",
            Role::AuthorizedUser => "Authorized User",
            Role::TechnicalContact => "Technical Contact",
            Role::SiteTechnicalContact => "Site Technical Contact",
        }
    }

    /// STCs and TCs administer an account.
    pub fn is_administrator(self) -> bool {
        self >= Role::TechnicalContact
    }

    /// The roles a person may ask for, and an administrator may grant or assign.
    pub fn is_self_service(self) -> bool {
        matches!(self, Role::AuthorizedUser | Role::TechnicalContact)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Role; 4] = [
        Role::ProvisionalCaller,
        Role::AuthorizedUser,
        Role::TechnicalContact,
        Role::SiteTechnicalContact,
    ];

    #[test]
    fn roles_round_trip_through_their_stored_names() {
        for r in ALL {
            assert_eq!(Role::from_db(r.as_str()), Some(r));
        }
        assert_eq!(Role::from_db("authorized_user"), None);
    }

    #[test]
    fn order_administrators_and_self_service() {
        assert!(ALL.windows(2).all(|w| w[0] < w[1]), "lowest to highest");
        let admins: Vec<Role> = ALL.into_iter().filter(|r| r.is_administrator()).collect();
        assert_eq!(admins, [Role::TechnicalContact, Role::SiteTechnicalContact]);
        let asked: Vec<Role> = ALL.into_iter().filter(|r| r.is_self_service()).collect();
        assert_eq!(asked, [Role::AuthorizedUser, Role::TechnicalContact]);
        assert_eq!(Role::AuthorizedUser.to_string(), "Authorized User");
        let labels: std::collections::HashSet<&str> = ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), 4);
    }
}
