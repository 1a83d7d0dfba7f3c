//! Identifiers and values parsed once at the edge; past the edge they are known to be valid.

use std::fmt;

/// Why a value was refused; the transport layer adds the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// For values read back from our own database, which were validated on the way in.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// Customer number: 1-10 ASCII digits.
    Icn
);
string_newtype!(
    /// A person's login identity: the token's `sub`.
    WebId
);
string_newtype!(
    /// ISO 3166-1 alpha-2, upper case.
    CountryCode
);
string_newtype!(ContractId);
string_newtype!(ProductId);
string_newtype!(Email);

impl Icn {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return err("is required");
        }
        if s.len() > 10 {
            return err("must be at most 10 digits");
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return err("must contain only the digits 0-9");
        }
        Ok(Self(s.to_owned()))
    }
}

/// Printable, no control characters, bounded: shared by identifiers that come from other systems.
fn parse_token_like(s: &str, max: usize) -> Result<String, ParseError> {
    if s.is_empty() {
        return err("is required");
    }
    if s.len() > max {
        return err(format!("must be at most {max} bytes"));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return err("must not contain spaces or control characters");
    }
    Ok(s.to_owned())
}

impl WebId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_token_like(s, 255).map(Self)
    }
}

impl ContractId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_token_like(s, 64).map(Self)
    }
}

impl ProductId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_token_like(s, 64).map(Self)
    }
}

impl CountryCode {
    /// Accepts any case; stores upper case. Only the shape is checked (two letters).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return err("is required");
        }
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_alphabetic()) {
            return err("must be an ISO 3166-1 alpha-2 code such as US or DE");
        }
        Ok(Self(s.to_ascii_uppercase()))
    }
}

impl Email {
    /// A pragmatic check: one `@`, a non-empty local part, a dotted domain, no spaces.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return err("is required");
        }
        if s.len() > 254 {
            return err("must be at most 254 bytes");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return err("must be an email address");
        };
        let bad = local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        if bad {
            return err("must be an email address");
        }
        Ok(Self(s.to_owned()))
    }
}

/// Access request ids are UUIDv7: unique without coordination and ordered by creation time,
/// which makes them a stable key for paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessRequestId(uuid::Uuid);

impl AccessRequestId {
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7())
    }
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return err("is required");
        }
        uuid::Uuid::try_parse(s)
            .map(Self)
            .or_else(|_| err("must be an access request id (a UUID)"))
    }
}

impl fmt::Display for AccessRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Free text from a person (names, reasons): bounded and without control characters other
/// than newlines, so it is safe in emails and logs.
pub fn parse_text(s: &str, max_chars: usize, required: bool) -> Result<String, ParseError> {
    let t = s.trim();
    if required && t.is_empty() {
        return err("is required");
    }
    if t.chars().count() > max_chars {
        return err(format!("must be at most {max_chars} characters"));
    }
    if t.chars().any(|c| c.is_control() && c != '\n') {
        return err("must not contain control characters");
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icn_accepts_one_to_ten_digits() {
        assert!(Icn::parse("1").is_ok());
        assert!(Icn::parse("1234567").is_ok());
        assert!(Icn::parse("1234567890").is_ok());
        assert!(Icn::parse("").is_err());
        assert!(Icn::parse("12345678901").is_err());
        assert!(Icn::parse("12a4567").is_err());
        assert!(Icn::parse(" 1234567").is_err());
        assert!(Icn::parse("١٢٣").is_err());
    }

    #[test]
    fn country_is_two_letters_upper_cased() {
        assert_eq!(CountryCode::parse("us").map(|c| c.0), Ok("US".to_owned()));
        assert!(CountryCode::parse("USA").is_err());
        assert!(CountryCode::parse("U1").is_err());
        assert!(CountryCode::parse("").is_err());
    }

    #[test]
    fn email_shape() {
        assert!(Email::parse("ana@example.com").is_ok());
        assert!(
            Email::parse("a@b.c").is_ok(),
            "the shortest domain: three bytes"
        );
        assert!(Email::parse("ana@localhost").is_err());
        assert!(Email::parse("ana example.com").is_err());
        assert!(Email::parse("@example.com").is_err());
        assert!(Email::parse("ana@.c").is_err());
        for bad in [
            "",
            "ana",
            "ana@.example.com",
            "ana@example.com.",
            "ana@example\ncom",
            "<ana@example.com>",
            "ana@exa\u{7}mple.com",
        ] {
            let bad = bad.replace("\\n", "\n").replace("\\u{7}", "\u{7}");
            assert!(Email::parse(&bad).is_err(), "{bad:?}");
        }
        // At most 254 bytes in all.
        let domain = format!("{}.com", "d".repeat(240));
        assert_eq!(format!("abcdefghi@{domain}").len(), 254);
        assert!(
            Email::parse(&format!("abcdefghi@{domain}")).is_ok(),
            "254 bytes"
        );
        assert!(
            Email::parse(&format!("abcdefghij@{domain}")).is_err(),
            "255 bytes"
        );
    }

    #[test]
    fn web_id_rejects_spaces_and_huge_values() {
        assert!(WebId::parse("ana.lopez").is_ok());
        assert!(WebId::parse("ana lopez").is_err());
        assert!(WebId::parse(&"x".repeat(255)).is_ok(), "at the bound");
        assert!(WebId::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn text_is_bounded() {
        assert!(parse_text(&"x".repeat(1 << 20), 200, false).is_err());
        assert!(
            parse_text(&"x".repeat(200), 200, false).is_ok(),
            "at the bound"
        );
        assert_eq!(parse_text("  why  ", 200, true), Ok("why".to_owned()));
        assert!(parse_text("   ", 200, true).is_err());
        assert_eq!(
            parse_text("two\nlines", 200, true),
            Ok("two\nlines".to_owned())
        );
        assert!(parse_text("bell\u{7}", 200, true).is_err());
    }

    #[test]
    fn request_ids_print_as_they_parse() {
        let id = AccessRequestId::new_v7();
        assert_eq!(AccessRequestId::parse(&id.to_string()), Ok(id));
        assert!(AccessRequestId::parse("").is_err());
        assert!(AccessRequestId::parse("not-a-uuid").is_err());
    }
}
