/// Why a caller was not authenticated, or why the authenticator could not be built.
///
/// `Display` is for our logs and may name files or URLs; send callers only [`AuthError::reason`]
/// and [`AuthError::public_message`].
use crate::domain::Reason;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    MissingToken,
    #[error("the authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("malformed token: {0}")]
    MalformedToken(String),
    #[error("unsupported token algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    #[error("unsupported token type `{0}`")]
    UnsupportedType(String),
    #[error("no key in the JWKS matches the token")]
    UnknownKey,
    #[error("the token signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token issuer is not the configured one")]
    WrongIssuer,
    #[error("the token audience does not include this service")]
    WrongAudience,
    #[error("the token has no subject")]
    MissingSubject,
    #[error("the JWKS is unavailable: {0}")]
    JwksUnavailable(String),
    #[error("authentication is misconfigured: {0}")]
    Config(String),
}

impl AuthError {
    /// Stable machine-readable code, e.g. for `google.rpc.ErrorInfo.reason`.
    pub fn reason(&self) -> Reason {
        match self {
            Self::MissingToken => Reason::TokenMissing,
            Self::MalformedHeader => Reason::AuthorizationHeaderMalformed,
            Self::MalformedToken(_) => Reason::TokenMalformed,
            Self::UnsupportedAlgorithm(_) => Reason::TokenAlgorithmUnsupported,
            // Not a new reason: to the caller it is a token of the wrong shape, like `crit`.
            Self::UnsupportedType(_) => Reason::TokenMalformed,
            Self::UnknownKey => Reason::TokenKeyUnknown,
            Self::BadSignature => Reason::TokenSignatureInvalid,
            Self::Expired => Reason::TokenExpired,
            Self::NotYetValid => Reason::TokenNotYetValid,
            Self::WrongIssuer => Reason::TokenIssuerMismatch,
            Self::WrongAudience => Reason::TokenAudienceMismatch,
            Self::MissingSubject => Reason::TokenSubjectMissing,
            Self::JwksUnavailable(_) => Reason::JwksUnavailable,
            Self::Config(_) => Reason::AuthMisconfigured,
        }
    }

    /// Text safe to return to the caller. The details of `JwksUnavailable` and `Config` name
    /// internal files and URLs, so they stay in our logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::MissingToken => "missing bearer token in the authorization metadata".into(),
            Self::MalformedHeader => "authorization must be `Bearer <token>`".into(),
            // Our own wording about the caller's own token: nothing internal in it.
            Self::MalformedToken(detail) => format!("malformed token: {detail}"),
            Self::UnsupportedAlgorithm(alg) => {
                format!("token algorithm `{alg}` is not accepted (use RS256, ES256 or EdDSA)")
            }
            Self::UnsupportedType(typ) => {
                format!(
                    "token type `{typ}` is not accepted (use an access token: `JWT` or `at+jwt`)"
                )
            }
            Self::UnknownKey => "the token's signing key is not known to this service".into(),
            Self::BadSignature => "the token signature is invalid".into(),
            Self::Expired => "the token has expired".into(),
            Self::NotYetValid => "the token is not valid yet".into(),
            Self::WrongIssuer => {
                "the token was issued by an issuer this service does not trust".into()
            }
            Self::WrongAudience => "the token is not meant for this service".into(),
            Self::MissingSubject => "the token has no subject (`sub`)".into(),
            Self::JwksUnavailable(_) => {
                "the identity provider's keys are unavailable; try again later".into()
            }
            Self::Config(_) => "authentication is not available on this server".into(),
        }
    }

    /// True when the fault is ours rather than the caller's (maps to UNAVAILABLE/INTERNAL
    /// rather than UNAUTHENTICATED).
    pub fn is_server_side(&self) -> bool {
        matches!(self, Self::JwksUnavailable(_) | Self::Config(_))
    }
}

/// Maps the verifier's errors onto ours; the header's `alg` and key were already checked, so
/// algorithm and key errors here mean a key in the JWKS the crypto backend can't use.
pub(crate) fn from_jwt(err: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::InvalidSignature => AuthError::BadSignature,
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAudience => AuthError::WrongAudience,
        K::MissingRequiredClaim(c) => match c.as_str() {
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            "sub" => AuthError::MissingSubject,
            other => AuthError::MalformedToken(format!("missing required claim `{other}`")),
        },
        K::InvalidClaimFormat(c) => {
            AuthError::MalformedToken(format!("claim `{c}` has the wrong type"))
        }
        K::Json(_) => AuthError::MalformedToken("the claims do not have the expected shape".into()),
        K::InvalidAlgorithm
        | K::UnsupportedAlgorithm
        | K::MissingAlgorithm
        | K::InvalidEcdsaKey
        | K::InvalidEddsaKey
        | K::InvalidRsaKey(_)
        | K::InvalidKeyFormat => {
            tracing::warn!(error = %err, "a JWKS key could not be used to verify a token");
            AuthError::BadSignature
        }
        _ => AuthError::MalformedToken("not a well-formed JWS compact token".into()),
    }
}
