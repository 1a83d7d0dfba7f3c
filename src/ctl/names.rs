//! Names on the command line and in the output: proto enum values from what a person types
//! (`authorized-user`, `AUTHORIZED_USER` or `ROLE_AUTHORIZED_USER`), enum numbers back to their
//! proto names, and gRPC codes as their canonical UPPER_SNAKE names.

use tonic::Code;

use crate::proto::v1::{AccessRequestState, AccountStatus, Action, EmailDomainAction, Role};

/// `authorized-user` -> `ROLE_AUTHORIZED_USER`, then the generated `from_str_name`.
/// `*_UNSPECIFIED` is refused: an unset value is said by leaving the flag out.
fn parse_enum<E>(
    s: &str,
    prefix: &str,
    from_str_name: fn(&str) -> Option<E>,
    accepted: &[&str],
) -> Result<E, String> {
    let upper = s.trim().to_ascii_uppercase().replace('-', "_");
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    if full.ends_with("_UNSPECIFIED") {
        return Err(format!("expected one of: {}", accepted.join(", ")));
    }
    from_str_name(&full).ok_or_else(|| format!("expected one of: {}", accepted.join(", ")))
}

pub fn parse_role(s: &str) -> Result<Role, String> {
    parse_enum(
        s,
        "ROLE_",
        Role::from_str_name,
        &[
            "authorized-user",
            "technical-contact",
            "provisional-caller",
            "site-technical-contact",
        ],
    )
}

pub fn parse_state(s: &str) -> Result<AccessRequestState, String> {
    parse_enum(
        s,
        "ACCESS_REQUEST_STATE_",
        AccessRequestState::from_str_name,
        &["pending", "approved", "denied", "withdrawn", "expired"],
    )
}

pub fn parse_status(s: &str) -> Result<AccountStatus, String> {
    parse_enum(
        s,
        "ACCOUNT_STATUS_",
        AccountStatus::from_str_name,
        &["active", "suspended"],
    )
}

pub fn parse_action(s: &str) -> Result<Action, String> {
    parse_enum(
        s,
        "ACTION_",
        Action::from_str_name,
        &["open-service-request", "view-support-area", "manage-users"],
    )
}

pub fn parse_domain_action(s: &str) -> Result<EmailDomainAction, String> {
    parse_enum(
        s,
        "EMAIL_DOMAIN_ACTION_",
        EmailDomainAction::from_str_name,
        &["auto-approve", "hold", "refuse"],
    )
}

/// The proto name of an enum number, or the number itself when this build does not know it.
pub fn enum_name<E: TryFrom<i32>>(value: i32, as_str_name: fn(&E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| as_str_name(&e).to_owned())
}

/// `NOT_FOUND`, as in the gRPC spec and `grpcurl`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn parses_enum_spellings() {
        for s in [
            "authorized-user",
            "AUTHORIZED_USER",
            "Authorized_User",
            "ROLE_AUTHORIZED_USER",
            "role-authorized-user",
        ] {
            assert_eq!(parse_role(s), Ok(Role::AuthorizedUser), "{s}");
        }
        assert_eq!(parse_role("technical-contact"), Ok(Role::TechnicalContact));
        assert_eq!(parse_state("pending"), Ok(AccessRequestState::Pending));
        assert_eq!(
            parse_state("ACCESS_REQUEST_STATE_EXPIRED"),
            Ok(AccessRequestState::Expired)
        );
        assert_eq!(parse_status("suspended"), Ok(AccountStatus::Suspended));
        assert_eq!(
            parse_action("open-service-request"),
            Ok(Action::OpenServiceRequest)
        );
        assert_eq!(parse_action("manage-users"), Ok(Action::ManageUsers));
    }

    #[test]
    fn rejects_unknown_and_unspecified() {
        assert!(parse_role("admin").is_err());
        assert!(parse_role("unspecified").is_err());
        assert!(parse_role("ROLE_UNSPECIFIED").is_err());
        assert!(parse_state("").is_err());
        assert!(parse_action("open service request").is_err());
        let msg = parse_status("closed").unwrap_err();
        assert!(msg.contains("active, suspended"), "{msg}");
    }

    #[test]
    fn names_enum_numbers() {
        assert_eq!(
            enum_name(1, AccessRequestState::as_str_name),
            "ACCESS_REQUEST_STATE_PENDING"
        );
        assert_eq!(enum_name(0, Role::as_str_name), "ROLE_UNSPECIFIED");
        assert_eq!(enum_name(99, Role::as_str_name), "99");
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }
}
