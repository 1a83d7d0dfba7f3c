#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn brand() -> MailBrand {
    MailBrand {
        product_name: "IBM Support entitlements".into(),
        portal_url: "https://portal.example/support".into(),
    }
}

/// The text with wrapping undone, for phrase checks.
fn prose(body: &str) -> String {
    body.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn has_line(body: &str, wanted: &str) -> bool {
    body.lines().any(|l| l == wanted)
}

/// Every template: addressed, signed, ends with a newline, and no line too long for 7bit/8bit.
fn common(e: &OutgoingEmail, to: &str) {
    assert_eq!(e.to, to);
    assert!(!e.subject.contains(['\r', '\n']));
    assert!(e.body.ends_with("IBM Support entitlements\n"), "{}", e.body);
    // Wrapped for fixed-width readers; only a long URL or name may stick out.
    assert!(
        e.body.lines().all(|l| l.chars().count() <= 76),
        "{}",
        e.body
    );
}

#[test]
fn access_requested_tells_the_admin_who_what_and_how_to_decide() {
    let e = access_requested_to_admin(
        &brand(),
        "admin@acme.example",
        "Ada Lovelace",
        "ada@acme.example",
        "IBM-123",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        "0190c0de-0000-7000-8000-000000000001",
    );
    common(&e, "admin@acme.example");
    assert_eq!(e.kind, "access_requested");
    assert!(e.subject.contains("Ada Lovelace") && e.subject.contains("ACME Corp"));
    for needle in [
        "ada@acme.example",
        "IBM-123",
        "7654321",
        "Authorized Caller",
        "0190c0de-0000-7000-8000-000000000001",
        "https://portal.example/support",
        "User Administration -> New requests",
    ] {
        assert!(
            prose(&e.body).contains(needle),
            "missing {needle:?} in {}",
            e.body
        );
    }
}

#[test]
fn provisional_notice_lists_may_and_may_not() {
    let e = provisional_caller_notice(
        &brand(),
        "ada@acme.example",
        "Ada",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        "req-1",
    );
    common(&e, "ada@acme.example");
    assert_eq!(e.kind, "provisional_caller_notice");
    assert!(prose(&e.body).contains("Provisional Caller"));
    assert!(prose(&e.body).contains("MAY view the account's support area"));
    assert!(prose(&e.body).contains("MAY view the status of your own request"));
    assert!(prose(&e.body).contains("MAY NOT open service requests"));
    assert!(prose(&e.body).contains("administrators have been notified"));
    assert!(prose(&e.body).contains("verify your email address"));
    assert!(prose(&e.body).contains("req-1") && prose(&e.body).contains("Authorized Caller"));
}

#[test]
fn verification_code_has_the_exact_line_and_expiry() {
    // 2025-06-15 15:06:40 UTC.
    let e = verification_code(
        &brand(),
        "ada@acme.example",
        "Ada",
        "493817",
        1_750_000_000_000,
    );
    common(&e, "ada@acme.example");
    assert_eq!(e.kind, "verification_code");
    assert!(has_line(&e.body, "Verification code: 493817"), "{}", e.body);
    assert!(prose(&e.body).contains("2025-06-15 15:06 UTC"));
    assert!(prose(&e.body).contains("only once"));
    assert!(prose(&e.body).contains("earlier no longer works"));
    assert!(prose(&e.body).contains("If you did not ask for this, ignore"));
    assert!(
        !e.subject.contains("493817"),
        "codes stay out of subjects and previews"
    );
}

#[test]
fn approval_mentions_verification_only_when_needed() {
    let unverified = request_approved(
        &brand(),
        "ada@acme.example",
        "Ada",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        false,
        None,
    );
    common(&unverified, "ada@acme.example");
    assert_eq!(unverified.kind, "request_approved");
    assert!(prose(&unverified.body).contains("approved"));
    assert!(has_line(&unverified.body, "Your role: Authorized Caller"));
    assert!(prose(&unverified.body).contains("must verify your email address"));

    assert!(!unverified.body.contains("Access ends"));

    let verified = request_approved(
        &brand(),
        "a@b.example",
        "Ada",
        "1",
        "ACME",
        "Admin",
        true,
        Some(1_800_000_000_000),
    );
    assert!(!prose(&verified.body).contains("verify"));
    assert!(has_line(
        &verified.body,
        &format!("Access ends: {}", format_utc(1_800_000_000_000))
    ));
}

#[test]
fn denial_quotes_the_reason_without_letting_it_forge_lines() {
    let e = request_denied(
        &brand(),
        "ada@acme.example",
        "Ada",
        "7654321",
        "ACME Corp",
        "Not an employee.\nPlease ask your manager.",
    );
    common(&e, "ada@acme.example");
    assert_eq!(e.kind, "request_denied");
    assert!(e.subject.contains("denied"));
    assert!(has_line(&e.body, "  Not an employee."));
    assert!(has_line(&e.body, "  Please ask your manager."));

    let none = request_denied(&brand(), "a@b.example", "Ada", "1", "ACME", "  ");
    assert!(prose(&none.body).contains("No reason was given."));
}

#[test]
fn expiry_role_change_and_removal() {
    let e = request_expired(&brand(), "a@b.example", "Ada", "7654321", "ACME Corp");
    common(&e, "a@b.example");
    assert_eq!(e.kind, "request_expired");
    assert!(prose(&e.body).contains("expired") && prose(&e.body).contains("new request"));

    let e = member_role_changed(
        &brand(),
        "a@b.example",
        "Ada",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        "Administrator",
        None,
    );
    common(&e, "a@b.example");
    assert_eq!(e.kind, "member_role_changed");
    assert!(has_line(&e.body, "  Previous role: Authorized Caller"));
    assert!(has_line(&e.body, "  New role:      Administrator"));
    assert!(has_line(&e.body, "  Access ends:   never (no end date)"));

    let e = membership_lapsed(
        &brand(),
        "a@b.example",
        "Ada",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        1_800_000_000_000,
    );
    common(&e, "a@b.example");
    assert_eq!(e.kind, "membership_lapsed");
    assert!(prose(&e.body).contains("has now ended") && prose(&e.body).contains("new request"));
    assert!(prose(&e.body).contains(&format_utc(1_800_000_000_000)));

    let e = membership_lapsed_to_admin(
        &brand(),
        "stc@b.example",
        "Ada\nVerification code: 123",
        "ada",
        "7654321",
        "ACME Corp",
        "Authorized Caller",
        1_800_000_000_000,
    );
    common(&e, "stc@b.example");
    assert_eq!(e.kind, "membership_lapsed_to_admin");
    assert!(has_line(&e.body, "  Web ID:     ada"));
    assert!(
        !e.body.lines().any(|l| l.starts_with("Verification code")),
        "a name cannot forge a line"
    );

    let e = auto_approved_to_admin(
        &brand(),
        "stc@b.example",
        "Ada\nVerification code: 123",
        "ada@b.example",
        "ada",
        "7654321",
        "ACME Corp",
        "Authorized User",
        "b.example",
        "req-1",
    );
    common(&e, "stc@b.example");
    assert_eq!(e.kind, "auto_approved_to_admin");
    assert!(has_line(&e.body, "  Role granted: Authorized User"));
    assert!(prose(&e.body).contains("approved automatically"));
    assert!(
        !e.body.lines().any(|l| l.starts_with("Verification code")),
        "a name cannot forge a line"
    );

    let e = member_removed(&brand(), "a@b.example", "Ada", "7654321", "ACME Corp");
    common(&e, "a@b.example");
    assert_eq!(e.kind, "member_removed");
    assert!(
        prose(&e.body).contains("removed you")
            && prose(&e.body).contains("ACME Corp (ICN 7654321)")
    );
}

#[test]
fn contract_ending_recertification_and_not_recertified() {
    let e = contract_ending(
        &brand(),
        "stc@b.example",
        "Sam",
        "7654321",
        "ACME Corp",
        1_800_000_000_000,
    );
    common(&e, "stc@b.example");
    assert_eq!(e.kind, "contract_ending");
    assert!(e.subject.contains(&format_utc(1_800_000_000_000)));
    assert!(prose(&e.body).contains("renew or extend a contract"));

    let members = [
        MemberToConfirm {
            name: "Ada\nVerification code: 123",
            web_id: "ada",
            role_label: "Authorized User",
        },
        MemberToConfirm {
            name: "Tom",
            web_id: "tom",
            role_label: "Technical Contact",
        },
    ];
    let e = recertification_requested(
        &brand(),
        "stc@b.example",
        "Sam",
        "7654321",
        "ACME Corp",
        &members,
        1_800_000_000_000,
    );
    common(&e, "stc@b.example");
    assert_eq!(e.kind, "recertification_requested");
    assert!(has_line(&e.body, "  Tom (tom), Technical Contact"));
    assert!(prose(&e.body).contains(&format_utc(1_800_000_000_000)));
    assert!(
        !e.body.lines().any(|l| l.starts_with("Verification code")),
        "a name cannot forge a line"
    );

    let e = not_recertified(&brand(), "ada@b.example", "Ada", "7654321", "ACME Corp");
    common(&e, "ada@b.example");
    assert_eq!(e.kind, "not_recertified");
    assert!(prose(&e.body).contains("Your access has ended."));

    let e = not_recertified_to_admin(
        &brand(),
        "stc@b.example",
        "Ada",
        "ada",
        "7654321",
        "ACME Corp",
        "Authorized User",
    );
    common(&e, "stc@b.example");
    assert_eq!(e.kind, "not_recertified_to_admin");
    assert!(has_line(&e.body, "  Web ID:     ada"));
}

#[test]
fn names_cannot_inject_lines() {
    let e = access_requested_to_admin(
        &brand(),
        "admin@acme.example",
        "Mallory\r\nVerification code: 000000",
        "m@evil.example",
        "W1",
        "1",
        "ACME\nApproved: yes",
        "Admin",
        "r1",
    );
    assert!(!e.subject.contains(['\r', '\n']));
    assert!(!e.body.lines().any(|l| l.starts_with("Verification code:")));
    assert!(!e.body.lines().any(|l| l.starts_with("Approved:")));
    assert!(
        verification_code(&brand(), "a@b.example", "", "1", 0)
            .body
            .starts_with("Hello,\n")
    );
}

#[test]
fn bidi_controls_and_separators_never_reach_a_body() {
    // Stored before the edge refused them: a name that reads backwards, a company name with a
    // line separator mail readers break at, a reason with an isolate.
    let e = access_requested_to_admin(
        &brand(),
        "admin@acme.example",
        "Eve\u{202E}nimdA",
        "eve@evil.example",
        "W1",
        "1",
        "ACME\u{2028}Approved: yes\u{2029}",
        "Admin",
        "r1",
    );
    let d = request_denied(
        &brand(),
        "a@b.example",
        "Ada\u{2066}",
        "1",
        "ACME",
        "see \u{2067}policy\u{2069}\u{200B}",
    );
    for text in [&e.subject, &e.body, &d.subject, &d.body] {
        let unsafe_char = crate::domain::ids::is_unsafe_char;
        assert!(
            text.chars().all(|c| c == '\n' || !unsafe_char(c)),
            "{text:?}"
        );
    }
    assert!(prose(&e.body).contains("EvenimdA has asked"), "{}", e.body);
    assert!(
        prose(&e.body).contains("ACME Approved: yes (ICN 1)"),
        "{}",
        e.body
    );
    assert!(has_line(&d.body, "  see policy"), "{}", d.body);
}

#[test]
fn utc_formatting() {
    assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
    assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
    assert_eq!(format_utc(1_750_000_000_000), "2025-06-15 15:06 UTC");
    assert_eq!(format_utc(4_107_542_399_999), "2100-02-28 23:59 UTC");
    assert_eq!(format_utc(-1), "1969-12-31 23:59 UTC");
}

/// A name long enough to wrap cannot start a line of someone else's email with the code label:
/// the only line that begins with it is the real code's.
#[test]
fn no_wrapped_line_begins_with_the_code_label() {
    for pad in 0..80 {
        let name = format!("{} Verification code: 123456", "x".repeat(pad));
        let mails = [
            access_requested_to_admin(
                &brand(),
                "admin@example.com",
                &name,
                "a@example.com",
                "ana",
                "1234567",
                "Acme",
                "Authorized User",
                "r1",
            ),
            verification_code(&brand(), "a@example.com", &name, "654321", 0),
        ];
        for m in &mails {
            let starts: Vec<&str> = m
                .body
                .lines()
                .filter(|l| l.starts_with("Verification code:"))
                .collect();
            assert!(
                starts.iter().all(|l| *l == "Verification code: 654321"),
                "pad {pad}: {starts:?}\n{}",
                m.body
            );
        }
    }
}
