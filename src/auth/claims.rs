//! The parts of a token we read ourselves: the `authorization` header, the JOSE header (to
//! pick a key and refuse algorithms before any crypto), and the claims that become a
//! [`Principal`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::{AuthError, Principal};

/// Real tokens are a few KiB at most; the cap bounds the work an anonymous caller can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_WEB_ID_CHARS: usize = 255;

/// The token in `Bearer <token>`; the scheme is case-insensitive (RFC 7235).
pub(crate) fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedHeader);
    }
    // The token's characters are checked on a cache miss only (`parse_header`): a cached token
    // passed that check when it was verified, and this function runs on every call.
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken("the token is too long".into()));
    }
    Ok(token)
}

/// What we need from the JOSE header before verifying.
pub(crate) struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    typ: Option<String>,
}

pub(crate) fn parse_header(token: &str) -> Result<TokenHeader, AuthError> {
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(AuthError::MalformedToken(
            "a JWT is base64url parts joined by dots".into(),
        ));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::MalformedToken("the header is not base64url".into()))?;
    let raw: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::MalformedToken("the header is not a JOSE header".into()))?;
    // A `crit` header names extensions the issuer requires us to understand; we understand none.
    if raw.crit.is_some() {
        return Err(AuthError::MalformedToken(
            "critical header extensions are not supported".into(),
        ));
    }
    if let Some(typ) = raw.typ.as_deref()
        && !is_access_token_type(typ)
    {
        return Err(AuthError::UnsupportedType(printable(typ, 32)));
    }
    let alg = match raw.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => return Err(AuthError::UnsupportedAlgorithm(printable(other, 16))),
    };
    Ok(TokenHeader { alg, kid: raw.kid })
}

/// RFC 8725 3.11: a JWT of another kind (a security event, a DPoP proof, an ID token typed as
/// such) signed by the same provider must not pass for an access token. `typ` is a media type
/// compared case-insensitively, with `application/` implied when it has no `/` (RFC 7515 4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    let typ = typ.trim().to_ascii_lowercase();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    // `JWT` (RFC 7519 5.1) is what most providers send; `at+jwt` is RFC 9068's access token.
    matches!(typ, "jwt" | "at+jwt")
}

/// The caller's `alg` ends up in our answer and logs; keep it short and inert.
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_scopes(self) -> Vec<String> {
        match self {
            Self::One(s) => s.split_whitespace().map(str::to_owned).collect(),
            Self::Many(v) => v
                .into_iter()
                .flat_map(|s| Self::One(s).into_scopes())
                .collect(),
        }
    }
}

/// Claims as the verifier deserializes them, before it checks the registered claims: so even
/// `exp` is optional here, letting the verifier report it as missing.
#[derive(Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    // `scope` is the OAuth form; some providers (Azure, Okta) send `scp`, as array or string.
    #[serde(default)]
    scope: Option<OneOrMany>,
    #[serde(default)]
    scp: Option<OneOrMany>,
}

impl Claims {
    pub(crate) fn into_principal(self) -> Result<Principal, AuthError> {
        let exp = self
            .exp
            .ok_or_else(|| AuthError::MalformedToken("missing required claim `exp`".into()))?;
        let web_id = self.sub.unwrap_or_default();
        if web_id.trim().is_empty() {
            return Err(AuthError::MissingSubject);
        }
        if web_id.chars().count() > MAX_WEB_ID_CHARS {
            return Err(AuthError::MalformedToken(
                "the subject is longer than 255 characters".into(),
            ));
        }
        if web_id.chars().any(char::is_control) {
            return Err(AuthError::MalformedToken(
                "the subject contains control characters".into(),
            ));
        }
        let mut scopes: Vec<String> = self
            .scope
            .into_iter()
            .chain(self.scp)
            .flat_map(OneOrMany::into_scopes)
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        let mut given_name = non_empty(self.given_name);
        let family_name = non_empty(self.family_name);
        // Providers that only send the display name `name` still let us greet the person.
        if given_name.is_none() && family_name.is_none() {
            given_name = non_empty(self.name);
        }
        Ok(Principal {
            web_id,
            email: non_empty(self.email),
            given_name,
            family_name,
            scopes,
            expires_at: exp.floor() as i64,
        })
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer   abc  ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("  ")), Err(AuthError::MissingToken));
        assert_eq!(
            bearer_token(Some("Basic abc")),
            Err(AuthError::MalformedHeader)
        );
        assert_eq!(
            bearer_token(Some("Bearer")),
            Err(AuthError::MalformedHeader)
        );
        assert_eq!(
            bearer_token(Some("abc.def.ghi")),
            Err(AuthError::MalformedHeader)
        );
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "https://id.example/alice", "exp": 10,
            "scope": "entitlements.check  other",
            "scp": ["entitlements.admin", "other"],
            "name": "Alice Example",
        }))
        .unwrap();
        let p = claims.into_principal().unwrap();
        assert_eq!(
            p.scopes,
            ["entitlements.admin", "entitlements.check", "other"]
        );
        assert!(p.has_scope(crate::auth::SCOPE_CHECK));
        assert_eq!(p.given_name.as_deref(), Some("Alice Example"));
        assert_eq!(p.expires_at, 10);

        let claims: Claims =
            serde_json::from_value(serde_json::json!({"sub": "x", "exp": 1, "scp": "a b"}))
                .unwrap();
        assert_eq!(claims.into_principal().unwrap().scopes, ["a", "b"]);
    }

    #[test]
    fn subject_rules() {
        let too_long = "a".repeat(256);
        let longest = "a".repeat(255);
        for (sub, ok) in [
            (longest.as_str(), true),
            ("", false),
            ("  ", false),
            (too_long.as_str(), false),
            ("a\nb", false),
        ] {
            let claims: Claims =
                serde_json::from_value(serde_json::json!({"sub": sub, "exp": 1})).unwrap();
            assert_eq!(claims.into_principal().is_ok(), ok, "{sub:?}");
        }
        let claims: Claims = serde_json::from_value(serde_json::json!({"exp": 1})).unwrap();
        assert_eq!(claims.into_principal(), Err(AuthError::MissingSubject));
    }

    #[test]
    fn header_algorithms() {
        let enc = |h: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(h));
        let ok = parse_header(&enc(r#"{"alg":"EdDSA","kid":"k1"}"#)).unwrap();
        assert_eq!((ok.alg, ok.kid.as_deref()), (Algorithm::EdDSA, Some("k1")));
        for alg in ["none", "HS256", "RS512", "PS256", "ES384"] {
            let err = parse_header(&enc(&format!(r#"{{"alg":"{alg}"}}"#))).err();
            assert_eq!(err, Some(AuthError::UnsupportedAlgorithm(alg.into())));
        }
        assert!(matches!(
            parse_header(&enc(r#"{"alg":"RS256","crit":["b64"]}"#)),
            Err(AuthError::MalformedToken(_))
        ));
        for typ in [
            "JWT",
            "jwt",
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "application/JWT",
        ] {
            let h = enc(&format!(r#"{{"alg":"EdDSA","typ":"{typ}"}}"#));
            assert!(parse_header(&h).is_ok(), "{typ}");
        }
        for typ in [
            "secevent+jwt",
            "dpop+jwt",
            "JOSE",
            "at+jwt2",
            "text/jwt",
            "application/",
        ] {
            let h = enc(&format!(r#"{{"alg":"EdDSA","typ":"{typ}"}}"#));
            assert_eq!(
                parse_header(&h).err(),
                Some(AuthError::UnsupportedType(typ.into())),
                "{typ}"
            );
        }
        assert!(matches!(
            parse_header(&enc(r#"{"alg":"EdDSA","typ":7}"#)),
            Err(AuthError::MalformedToken(_))
        ));
        assert!(matches!(
            parse_header("a.b"),
            Err(AuthError::MalformedToken(_))
        ));
        for junk in ["!!.b.c", "a b.c.d", "a+b.c/d.e="] {
            assert!(
                matches!(parse_header(junk), Err(AuthError::MalformedToken(_))),
                "{junk}"
            );
        }
    }

    #[test]
    fn tokens_up_to_16_kib_are_read() {
        let at_bound = "a".repeat(16 * 1024);
        assert_eq!(
            bearer_token(Some(&format!("Bearer {at_bound}"))),
            Ok(at_bound.as_str())
        );
        let past = "a".repeat(16 * 1024 + 1);
        assert!(matches!(
            bearer_token(Some(&format!("Bearer {past}"))),
            Err(AuthError::MalformedToken(_))
        ));
    }

    #[test]
    fn the_display_name_stands_in_only_when_both_names_are_missing() {
        let principal = |claims: serde_json::Value| {
            serde_json::from_value::<Claims>(claims)
                .unwrap()
                .into_principal()
                .unwrap()
        };
        let p = principal(serde_json::json!({
            "sub": "x", "exp": 1, "given_name": "Ann", "name": "Ann Example",
        }));
        assert_eq!(
            (p.given_name.as_deref(), p.family_name.as_deref()),
            (Some("Ann"), None)
        );
        let p = principal(serde_json::json!({
            "sub": "x", "exp": 1, "family_name": "Example", "name": "Ann Example",
        }));
        assert_eq!(
            (p.given_name.as_deref(), p.family_name.as_deref()),
            (None, Some("Example"))
        );
    }
}
