//! Identifiers and values parsed once at the edge; past the edge they are known to be valid.

use std::fmt;

use unicode_properties::general_category::{GeneralCategory, UnicodeGeneralCategory};

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

/// Characters that text from outside may not carry into records, emails and logs: controls
/// (general category Cc), invisible format characters (Cf: the bidi embeddings, overrides and
/// isolates U+202A-U+202E and U+2066-U+2069, zero-width characters, the BOM, ...) and the line
/// and paragraph separators U+2028/U+2029 (Zl, Zp), which mail readers may break lines at
/// although `\n` is not there. Bidi controls can make a name read as something else; line
/// breaks can forge a line of our own text.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Printable, no control characters, bounded: shared by identifiers that come from other systems.
fn parse_token_like(s: &str, max: usize) -> Result<String, ParseError> {
    if s.is_empty() {
        return err("is required");
    }
    if s.len() > max {
        return err(format!("must be at most {max} bytes"));
    }
    if s.chars().any(|c| is_unsafe_char(c) || c.is_whitespace()) {
        return err("must not contain spaces, control or formatting characters");
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
    /// An address the mail system can deliver to. lettre's `Address` parser decides, the one
    /// the mail transport uses for the recipient, so an address accepted here can never be
    /// refused there (it was: `a@b.example,c@d.example` passed a check of our own and then
    /// failed every delivery attempt). On top of it: a bound, a dotted domain (no intranet
    /// hosts), and no spaces or unsafe characters.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return err("is required");
        }
        if s.len() > 254 {
            return err("must be at most 254 bytes");
        }
        if s.chars().any(|c| c.is_whitespace() || is_unsafe_char(c)) {
            return err("must be an email address");
        }
        let Ok(address) = s.parse::<lettre::Address>() else {
            return err("must be an email address");
        };
        let domain = address.domain();
        if domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return err("must be an email address with a domain such as example.com");
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

/// One line of text from a caller (a name, a company name, a code): bounded, trimmed, and
/// without any character [`is_unsafe_char`] names, not even a newline.
pub fn parse_line(s: &str, max_chars: usize, required: bool) -> Result<String, ParseError> {
    checked_text(s, max_chars, required, |_| false)
}

/// Free text from a caller that may run over several lines (a reason): as [`parse_line`], but
/// `\n` separates lines. Emails quote such text line by line.
pub fn parse_text(s: &str, max_chars: usize, required: bool) -> Result<String, ParseError> {
    checked_text(s, max_chars, required, |c| c == '\n')
}

fn checked_text(
    s: &str,
    max_chars: usize,
    required: bool,
    allowed: impl Fn(char) -> bool,
) -> Result<String, ParseError> {
    let t = s.trim();
    if required && t.is_empty() {
        return err("is required");
    }
    if t.chars().count() > max_chars {
        return err(format!("must be at most {max_chars} characters"));
    }
    if t.chars().any(|c| is_unsafe_char(c) && !allowed(c)) {
        return err("must not contain control, formatting or line separator characters");
    }
    Ok(t.to_owned())
}

/// Text the caller cannot correct, made safe instead of refused: names in a token's claims come
/// from the identity provider's profile, which the person may not be able to edit, and refusing
/// the token would lock them out of everything. Invisible format characters are dropped, other
/// unsafe characters become spaces, runs of whitespace one space; at most `max_chars` remain.
pub fn sanitize_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c.general_category() {
            GeneralCategory::Format => continue,
            _ if is_unsafe_char(c) || c.is_whitespace() => ' ',
            _ => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end()
        .chars()
        .take(max_chars)
        .collect::<String>()
        .trim_end()
        .to_owned()
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
    fn email_is_what_the_mail_system_accepts() {
        for bad in [
            "a@b.example,c@d.example",
            "a@b.example;c@d.example",
            "Ana <ana@example.com>",
            "ana..lima@example.com",
            ".ana@example.com",
            "ana@-example.com",
            "ana@example.com\u{202E}",
            "\"ana\"\"@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        for ok in [
            "ana.lima+tag@example.com",
            "o'neil@example.co.uk",
            "ana@xn--mnchen-3ya.de",
            "ana@münchen.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok:?}");
        }
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
        // At most 254 bytes in all (in DNS labels of at most 63).
        let label = "d".repeat(60);
        let domain = format!("{label}.{label}.{label}.{}.com", "d".repeat(57));
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

    /// The characters of the finding, and their kin by general category.
    const UNSAFE: &[char] = &[
        '\u{2028}', '\u{2029}', // Zl, Zp
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
        '\u{202E}', // bidi embeddings, overrides
        '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', // bidi isolates
        '\u{200B}', '\u{200E}', '\u{FEFF}', '\u{AD}', // more Cf
        '\u{0}', '\u{7}', '\t', '\r', '\n', '\u{85}', '\u{9F}', // Cc
    ];

    #[test]
    fn lines_refuse_controls_formats_and_separators() {
        for &c in UNSAFE {
            let s = format!("Ana{c}Lima");
            assert!(parse_line(&s, 200, true).is_err(), "{c:?}");
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for ok in [
            "José Müller",
            "王小明",
            "Ana-María O'Neil",
            "Zoë  Smith",
            "ACME (Deutschland) GmbH",
        ] {
            assert_eq!(parse_line(ok, 200, true).as_deref(), Ok(ok));
        }
        assert_eq!(parse_line("  Ana  ", 200, true).as_deref(), Ok("Ana"));
    }

    #[test]
    fn multi_line_text_allows_newlines_only() {
        assert!(parse_text("one\ntwo", 200, true).is_ok());
        for &c in UNSAFE.iter().filter(|c| **c != '\n') {
            assert!(
                parse_text(&format!("one{c}two"), 200, true).is_err(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn identifiers_refuse_format_characters() {
        for id in ["ana\u{202E}", "\u{2066}ana", "a\u{200B}b"] {
            assert!(WebId::parse(id).is_err(), "{id:?}");
            assert!(ProductId::parse(id).is_err(), "{id:?}");
        }
        assert!(Email::parse("ana\u{202E}@example.com").is_err());
    }

    #[test]
    fn claim_names_are_cleaned_not_refused() {
        assert_eq!(sanitize_line("Eve\u{202E}nimdA", 200), "EvenimdA");
        assert_eq!(sanitize_line(" Ana\u{2028}\tLima\r\n", 200), "Ana Lima");
        assert_eq!(
            sanitize_line("\u{2066}Bob\u{2069}  Builder", 200),
            "Bob Builder"
        );
        assert_eq!(sanitize_line("José", 200), "José");
        assert_eq!(sanitize_line(&"é".repeat(300), 200), "é".repeat(200));
        assert_eq!(sanitize_line("ab  cd", 3), "ab");
        for &c in UNSAFE {
            let clean = sanitize_line(&format!("x{c}y"), 200);
            assert!(!clean.chars().any(is_unsafe_char), "{c:?} -> {clean:?}");
            assert!(parse_line(&clean, 200, true).is_ok(), "{clean:?}");
        }
    }

    #[test]
    fn request_ids_print_as_they_parse() {
        let id = AccessRequestId::new_v7();
        assert_eq!(AccessRequestId::parse(&id.to_string()), Ok(id));
        assert!(AccessRequestId::parse("").is_err());
        assert!(AccessRequestId::parse("not-a-uuid").is_err());
    }
}
