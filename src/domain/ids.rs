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
    /// An address the mail system can deliver to: [`mail_recipient`] decides, the function the
    /// mail transport addresses every message with, so an address accepted here can never be
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
        let recipient = mail_recipient(s)?;
        let domain = recipient.email.domain();
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

/// The one parser of recipient addresses, for `Email::parse` and the mail transport alike:
/// lettre's `Address`, and the same address read back by lettre's header parser, which is how
/// lettre addresses the SMTP envelope from the `To` header (it refuses some addresses the
/// `Address` parser takes, such as domain literals, and the message then has no recipient).
pub fn mail_recipient(s: &str) -> Result<lettre::message::Mailbox, ParseError> {
    let Ok(address) = s.parse::<lettre::Address>() else {
        return err("must be an email address");
    };
    let mailbox = lettre::message::Mailbox::new(None, address);
    let read_back = mailbox.to_string().parse::<lettre::message::Mailboxes>();
    match read_back.map(|m| m.into_iter().map(|m| m.email).collect::<Vec<_>>()) {
        Ok(emails) if emails == [mailbox.email.clone()] => Ok(mailbox),
        _ => err("must be an email address"),
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
mod tests;
