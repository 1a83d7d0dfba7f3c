//! The published set of error reasons: every `google.rpc.ErrorInfo.reason` this service sends,
//! and nothing else. The wire contract lists the same set as the `ErrorReason` enum
//! (`proto/entitlement/v1/errors.proto`, each value there prefixed `ERROR_REASON_`), and
//! `docs/errors.md` says when each is sent; a unit test keeps the three in step.

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// One published error reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
        }

        impl Reason {
            /// Every reason, in the order the contract lists them.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The UPPER_SNAKE text sent as `ErrorInfo.reason`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)*
                }
            }
        }
    };
}

reasons! {
    // Bad input (INVALID_ARGUMENT, with the field named in a BadRequest violation).
    /// A field is missing, malformed or out of range.
    InvalidArgument = "INVALID_ARGUMENT",
    /// A `page_token` that this service did not issue.
    InvalidPageToken = "INVALID_PAGE_TOKEN",
    /// A `consistency_token` that this service did not issue.
    InvalidConsistencyToken = "INVALID_CONSISTENCY_TOKEN",
    /// More checks in one BatchCheckEntitlements than it takes.
    BatchTooLarge = "BATCH_TOO_LARGE",
    /// A verification code that is not the one sent.
    VerificationCodeInvalid = "VERIFICATION_CODE_INVALID",

    // Identity (UNAUTHENTICATED; UNAVAILABLE for the server-side ones).
    TokenMissing = "TOKEN_MISSING",
    AuthorizationHeaderMalformed = "AUTHORIZATION_HEADER_MALFORMED",
    TokenMalformed = "TOKEN_MALFORMED",
    TokenAlgorithmUnsupported = "TOKEN_ALGORITHM_UNSUPPORTED",
    TokenKeyUnknown = "TOKEN_KEY_UNKNOWN",
    TokenSignatureInvalid = "TOKEN_SIGNATURE_INVALID",
    TokenExpired = "TOKEN_EXPIRED",
    TokenNotYetValid = "TOKEN_NOT_YET_VALID",
    TokenIssuerMismatch = "TOKEN_ISSUER_MISMATCH",
    TokenAudienceMismatch = "TOKEN_AUDIENCE_MISMATCH",
    TokenSubjectMissing = "TOKEN_SUBJECT_MISSING",
    /// A claim (email, names) that is not acceptable.
    TokenClaimInvalid = "TOKEN_CLAIM_INVALID",
    /// The identity provider's keys could not be fetched (UNAVAILABLE).
    JwksUnavailable = "JWKS_UNAVAILABLE",
    /// Token verification is misconfigured on the server (UNAVAILABLE).
    AuthMisconfigured = "AUTH_MISCONFIGURED",

    // Authorization (PERMISSION_DENIED; the policy's refusals).
    AdminScopeRequired = "ADMIN_SCOPE_REQUIRED",
    CheckScopeRequired = "CHECK_SCOPE_REQUIRED",
    NotYourRequest = "NOT_YOUR_REQUEST",
    SelfDecision = "SELF_DECISION",
    NotAnAdministrator = "NOT_AN_ADMINISTRATOR",
    AdministratorEmailNotVerified = "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
    SelfModification = "SELF_MODIFICATION",
    SiteTechnicalContactProtected = "SITE_TECHNICAL_CONTACT_PROTECTED",
    /// Managing an account's email-domain policies as its TC: only STCs and operators may.
    SiteTechnicalContactRequired = "SITE_TECHNICAL_CONTACT_REQUIRED",

    // Not there (NOT_FOUND) or already there (ALREADY_EXISTS).
    AccountNotFound = "ACCOUNT_NOT_FOUND",
    AccessRequestNotFound = "ACCESS_REQUEST_NOT_FOUND",
    MemberNotFound = "MEMBER_NOT_FOUND",
    SiteTechnicalContactNotFound = "SITE_TECHNICAL_CONTACT_NOT_FOUND",
    AccountExists = "ACCOUNT_EXISTS",
    AlreadyAMember = "ALREADY_A_MEMBER",
    /// No email-domain policy for that domain on the account.
    EmailDomainPolicyNotFound = "EMAIL_DOMAIN_POLICY_NOT_FOUND",

    // The state does not allow it (FAILED_PRECONDITION).
    /// The token has no email claim, and the call is for a person with an address.
    EmailClaimRequired = "EMAIL_CLAIM_REQUIRED",
    AccountSuspended = "ACCOUNT_SUSPENDED",
    RequestNotPending = "REQUEST_NOT_PENDING",
    RequestExpired = "REQUEST_EXPIRED",
    LastSiteTechnicalContact = "LAST_SITE_TECHNICAL_CONTACT",
    /// RequestAccess from an address whose domain the account's policy refuses.
    EmailDomainRefused = "EMAIL_DOMAIN_REFUSED",
    NoVerificationPending = "NO_VERIFICATION_PENDING",
    EmailAlreadyVerified = "EMAIL_ALREADY_VERIFIED",
    VerificationCodeSuperseded = "VERIFICATION_CODE_SUPERSEDED",
    VerificationCodeExpired = "VERIFICATION_CODE_EXPIRED",
    VerificationCodeLocked = "VERIFICATION_CODE_LOCKED",
    /// Changes after the token were already forgotten: reload and watch from now.
    ConsistencyTokenTooOld = "CONSISTENCY_TOKEN_TOO_OLD",
    /// The token came from another database (another deployment, or before a restore).
    ConsistencyTokenForeign = "CONSISTENCY_TOKEN_FOREIGN",
    /// The token names a revision this database has not reached (after a restore from an
    /// older backup, or a made-up token).
    ConsistencyTokenAhead = "CONSISTENCY_TOKEN_AHEAD",
    /// A mutation's `request_id` that this caller already used for a different request.
    RequestIdReused = "REQUEST_ID_REUSED",

    // Try again (RESOURCE_EXHAUSTED with RetryInfo, ABORTED, UNAVAILABLE, INTERNAL).
    VerificationEmailRateLimited = "VERIFICATION_EMAIL_RATE_LIMITED",
    /// Too many requests for access, by this person or for this account (RetryInfo says when).
    AccessRequestsRateLimited = "ACCESS_REQUESTS_RATE_LIMITED",
    /// More calls in flight on this connection than `--concurrency-limit` (RetryInfo says when).
    TooManyCallsInFlight = "TOO_MANY_CALLS_IN_FLIGHT",
    /// A concurrent change won; the call is safe to retry.
    ConcurrentUpdate = "CONCURRENT_UPDATE",
    /// A retry whose `request_id` was applied, but whose first answer is not available (the
    /// first call is still finishing, or its server stopped before saving it): read the state.
    RequestAlreadyApplied = "REQUEST_ALREADY_APPLIED",
    /// The server is starting and not yet migrated.
    Starting = "STARTING",
    ShuttingDown = "SHUTTING_DOWN",
    /// The call did not finish within the server's deadline or the caller's `grpc-timeout`.
    DeadlineExceeded = "DEADLINE_EXCEEDED",
    DatabaseUnavailable = "DATABASE_UNAVAILABLE",
    /// The database answers but cannot store changes (disk full, read-only); nothing changed.
    DatabaseCannotWrite = "DATABASE_CANNOT_WRITE",
    /// A bug or corrupt data; the cause is logged, never sent.
    Internal = "INTERNAL",
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<super::policy::Refusal> for Reason {
    fn from(r: super::policy::Refusal) -> Self {
        use super::policy::Refusal as R;
        match r {
            R::AdminScopeRequired => Reason::AdminScopeRequired,
            R::CheckScopeRequired => Reason::CheckScopeRequired,
            R::EmailClaimRequired => Reason::EmailClaimRequired,
            R::AccountSuspended => Reason::AccountSuspended,
            R::NotYourRequest => Reason::NotYourRequest,
            R::SelfDecision => Reason::SelfDecision,
            R::NotAnAdministrator => Reason::NotAnAdministrator,
            R::AdministratorEmailNotVerified => Reason::AdministratorEmailNotVerified,
            R::SelfModification => Reason::SelfModification,
            R::SiteTechnicalContactProtected => Reason::SiteTechnicalContactProtected,
            R::SiteTechnicalContactRequired => Reason::SiteTechnicalContactRequired,
            R::EmailDomainRefused => Reason::EmailDomainRefused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Refusal;

    #[test]
    fn reasons_print_their_wire_text_and_are_distinct() {
        assert_eq!(
            Reason::NotAnAdministrator.to_string(),
            "NOT_AN_ADMINISTRATOR"
        );
        let texts: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts.len(), Reason::ALL.len());
        assert_eq!(
            Reason::from(Refusal::SelfDecision).as_str(),
            "SELF_DECISION"
        );
    }
}
