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
        "_@[.]",
        "ana@[192.0.2.1]",
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
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', // bidi embeddings, overrides
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
