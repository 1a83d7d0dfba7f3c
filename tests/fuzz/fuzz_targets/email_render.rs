//! Every email template with arbitrary names, company names, addresses, codes and reasons,
//! then the message the transport sends (`mail::build_message`, lettre's formatting).
//!
//! Inputs go in either raw (records written before the edge refused unsafe text) or through
//! the edge's validators first (`Email::parse`, `parse_line`, `parse_text`), as a call would.
//! Whatever goes in: one line of subject, no control, bidi or separator character anywhere,
//! the code's line as it should be, and a message whose header block is ours alone.
#![no_main]

use arbitrary::Arbitrary;
use entitlements::domain::Email;
use entitlements::domain::ids::{is_unsafe_char, parse_line, parse_text, sanitize_line};
use entitlements::mail::templates::{self as t, MailBrand};
use entitlements::mail::{MailContent, OutgoingEmail, QueuedEmail, build_message, default_from};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Through the edge's validators first, as a call's values are.
    validated: bool,
    to: String,
    name: String,
    requester_email: String,
    web_id: String,
    icn: String,
    company: String,
    role: String,
    other_role: String,
    request_id: String,
    code: String,
    reason: String,
    expires_at: i64,
    created_at: i64,
    id: i64,
    email_verified: bool,
    /// A time-boxed grant's end, if any.
    grant_ends: Option<i64>,
    /// Which note about a waiting request: reminder, escalation, operators.
    waiting_for: u8,
    administrators: u8,
}

const CODE_LINE: &str = "Verification code:";

/// What the templates make of a value: one line (`templates::flat`).
fn flat(s: &str) -> String {
    sanitize_line(s, usize::MAX)
}

fn check(mail: &OutgoingEmail, input: &Input, verification: bool) {
    assert!(
        !mail.subject.chars().any(is_unsafe_char),
        "{:?}",
        mail.subject
    );
    assert!(
        !mail.body.chars().any(|c| is_unsafe_char(c) && c != '\n'),
        "{:?}",
        mail.body
    );
    // The code's own line in the verification email, and a subject without the code; no other
    // line of any email begins with the code's label, however a person's words wrap.
    let own = format!("{CODE_LINE} {}", flat(&input.code));
    assert!(
        mail.body
            .lines()
            .filter(|l| l.starts_with(CODE_LINE))
            .all(|l| verification && l == own),
        "{:?}",
        mail.body
    );
    if verification {
        let own = format!("{CODE_LINE} {}", flat(&input.code));
        assert!(mail.body.lines().any(|l| l == own), "{:?}", mail.body);
        assert_eq!(
            mail.subject,
            "Your IBM Support entitlements verification code"
        );
    }

    let content = MailContent {
        to: mail.to.clone(),
        subject: mail.subject.clone(),
        body: mail.body.clone(),
    };
    let queued = QueuedEmail {
        id: input.id,
        kind: mail.kind.to_owned(),
        attempts: 1,
        created_at: input.created_at,
        content: Ok(content.clone()),
    };
    let accepted = Email::parse(&mail.to).is_ok();
    match build_message(&default_from(), &queued, &content) {
        Ok(message) => headers_are_ours(&message.formatted()),
        // What the edge accepts, the transport can always address.
        Err(e) => assert!(!accepted, "{:?} accepted but not addressable: {e}", mail.to),
    }
}

/// The header block: only the headers we set, each once, no line break but CRLF.
fn headers_are_ours(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let (head, _) = text.split_once("\r\n\r\n").expect("a header block");
    assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head:?}");
    let mut names = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (name, _) = line.split_once(':').expect("a header line");
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    let mut want = vec![
        "content-transfer-encoding",
        "content-type",
        "date",
        "from",
        "message-id",
        "mime-version",
        "subject",
        "to",
    ];
    want.sort();
    assert_eq!(names, want, "{head:?}");
}

fuzz_target!(|input: Input| {
    let mut i = input;
    if i.validated {
        let (Ok(_), Ok(name), Ok(company), Ok(reason), Ok(code)) = (
            Email::parse(&i.to),
            parse_line(&i.name, 200, false),
            parse_line(&i.company, 200, true),
            parse_text(&i.reason, 1000, false),
            parse_line(&i.code, 64, true),
        ) else {
            return;
        };
        (i.name, i.company, i.reason, i.code) = (name, company, reason, code);
    }
    let b = MailBrand::default();
    let to = i.to.as_str();
    let mails = [
        t::access_requested_to_admin(
            &b,
            to,
            &i.name,
            &i.requester_email,
            &i.web_id,
            &i.icn,
            &i.company,
            &i.role,
            &i.request_id,
        ),
        t::provisional_caller_notice(&b, to, &i.name, &i.icn, &i.company, &i.role, &i.request_id),
        t::request_approved(
            &b,
            to,
            &i.name,
            &i.icn,
            &i.company,
            &i.role,
            i.email_verified,
            i.grant_ends,
        ),
        t::request_denied(&b, to, &i.name, &i.icn, &i.company, &i.reason),
        t::request_expired(&b, to, &i.name, &i.icn, &i.company),
        t::member_role_changed(
            &b,
            to,
            &i.name,
            &i.icn,
            &i.company,
            &i.role,
            &i.other_role,
            i.grant_ends,
        ),
        t::request_waiting(
            &b,
            to,
            match i.waiting_for % 3 {
                0 => t::WaitingFor::Reminder,
                1 => t::WaitingFor::Escalation,
                _ => t::WaitingFor::Operators,
            },
            &t::WaitingRequest {
                requester_name: &i.name,
                requester_email: &i.requester_email,
                requester_web_id: &i.web_id,
                icn: &i.icn,
                company_name: &i.company,
                requested_role_label: &i.role,
                request_id: &i.request_id,
                made_at: i.created_at,
                expires_at: i.expires_at,
            },
        ),
        t::account_orphaned(&b, to, &i.icn, &i.company, usize::from(i.administrators)),
        t::membership_lapsed(&b, to, &i.name, &i.icn, &i.company, &i.role, i.expires_at),
        t::membership_lapsed_to_admin(
            &b,
            to,
            &i.name,
            &i.web_id,
            &i.icn,
            &i.company,
            &i.role,
            i.expires_at,
        ),
        t::auto_approved_to_admin(
            &b,
            to,
            &i.name,
            &i.requester_email,
            &i.web_id,
            &i.icn,
            &i.company,
            &i.role,
            &i.reason,
            &i.request_id,
        ),
        t::contract_ending(&b, to, &i.name, &i.icn, &i.company, i.expires_at),
        t::recertification_requested(
            &b,
            to,
            &i.name,
            &i.icn,
            &i.company,
            &[
                t::MemberToConfirm {
                    name: &i.name,
                    web_id: &i.web_id,
                    role_label: &i.role,
                },
                t::MemberToConfirm {
                    name: &i.other_role,
                    web_id: &i.request_id,
                    role_label: &i.role,
                },
            ],
            i.expires_at,
        ),
        t::not_recertified(&b, to, &i.name, &i.icn, &i.company),
        t::not_recertified_to_admin(&b, to, &i.name, &i.web_id, &i.icn, &i.company, &i.role),
        t::member_removed(&b, to, &i.name, &i.icn, &i.company),
    ];
    for m in &mails {
        check(m, &i, false);
    }
    let v = t::verification_code(&b, to, &i.name, &i.code, i.expires_at);
    check(&v, &i, true);
    let _ = t::format_utc(i.expires_at);
});
