//! Every request message of the three services: the first byte picks the message, the rest is
//! decoded by prost as tonic would, then validated by the very functions the handlers call
//! (`grpc::args`). A refusal must be INVALID_ARGUMENT naming a field; an accepted value must be
//! one its own parser accepts again, unchanged, and free text must be safe to show.
#![no_main]

use entitlements::domain::ids::is_unsafe_char;
use entitlements::domain::{
    AccessRequestId, ContractId, CountryCode, DomainAction, Email, EmailDomain, Icn, ParseError,
    ProductId, Role, WebId,
};
use entitlements::grpc::args;
use entitlements::proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A refusal: INVALID_ARGUMENT, with an ErrorInfo reason and a field violation naming a field.
fn refused(s: &Status) {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let details = s.get_error_details();
    let info = details.error_info().expect("an ErrorInfo");
    assert!(
        [
            "INVALID_ARGUMENT",
            "INVALID_PAGE_TOKEN",
            "INVALID_CONSISTENCY_TOKEN",
            "BATCH_TOO_LARGE"
        ]
        .contains(&info.reason.as_str()),
        "{info:?}"
    );
    let bad = details.bad_request().expect("a field violation");
    let field = &bad.field_violations.first().expect("one violation").field;
    assert!(!field.is_empty());
    assert!(s.message().starts_with(field.as_str()), "{s:?}");
}

/// An accepted identifier reads back as itself.
fn again<T: PartialEq + std::fmt::Debug + std::fmt::Display>(
    v: &T,
    parse: fn(&str) -> Result<T, ParseError>,
) {
    assert_eq!(parse(&v.to_string()).as_ref(), Ok(v));
}

/// Accepted free text: trimmed, bounded, no control/format/separator character (but `\n` in
/// multi-line text).
fn safe_text(t: &str, max_chars: usize, newlines: bool) {
    assert_eq!(t, t.trim());
    assert!(t.chars().count() <= max_chars);
    assert!(
        !t.chars()
            .any(|c| is_unsafe_char(c) && !(newlines && c == '\n')),
        "{t:?}"
    );
}

fn check(c: &entitlements::service::CheckRequest) {
    again(&c.web_id, WebId::parse);
    again(&c.icn, Icn::parse);
    if let Some(p) = &c.product {
        again(p, ProductId::parse);
    }
    assert!(c.severity.is_none_or(|s| (1..=4).contains(&s)));
}

fn run<M: Message + Default, T>(
    bytes: &[u8],
    validate: fn(&M) -> Result<T, Status>,
    accepted: impl FnOnce(T),
) {
    let Ok(m) = M::decode(bytes) else { return };
    match validate(&m) {
        Ok(v) => accepted(v),
        Err(s) => refused(&s),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 27 {
        0 => run(bytes, args::request_access, |a| {
            again(&a.icn, Icn::parse);
            again(&a.country, CountryCode::parse);
        }),
        1 => run(bytes, args::approve_request, |(id, _, _)| {
            again(&id, AccessRequestId::parse)
        }),
        2 => run(bytes, args::deny_request, |(id, reason)| {
            again(&id, AccessRequestId::parse);
            assert!(!reason.is_empty());
            safe_text(&reason, 1000, true);
        }),
        3 => run(bytes, args::withdraw_request, |(id, reason)| {
            again(&id, AccessRequestId::parse);
            safe_text(&reason, 1000, true);
        }),
        4 => run(bytes, args::verify_email, |code| {
            assert!(!code.is_empty());
            safe_text(&code, 64, false);
        }),
        5 => run(bytes, args::list_access_requests, |a| {
            again(&a.icn, Icn::parse);
            assert!((1..=500).contains(&a.limit));
        }),
        6 => run(bytes, args::list_members, |a| {
            again(&a.icn, Icn::parse);
            assert!((1..=500).contains(&a.limit));
            if let Some(w) = &a.after {
                again(w, WebId::parse);
            }
        }),
        7 => run(bytes, args::update_member_role, |(icn, web_id, _, _)| {
            again(&icn, Icn::parse);
            again(&web_id, WebId::parse);
        }),
        8 => run(bytes, args::remove_member, |(icn, web_id, reason)| {
            again(&icn, Icn::parse);
            again(&web_id, WebId::parse);
            safe_text(&reason, 1000, true);
        }),
        9 => run(bytes, args::create_account, |(icn, company, country)| {
            again(&icn, Icn::parse);
            assert!(!company.is_empty());
            safe_text(&company, 200, false);
            again(&country, CountryCode::parse);
        }),
        10 => run(bytes, args::get_account, |icn| again(&icn, Icn::parse)),
        11 => run(bytes, args::set_account_status, |(icn, _, reason)| {
            again(&icn, Icn::parse);
            safe_text(&reason, 1000, true);
        }),
        12 => run(bytes, args::add_site_technical_contact, |(icn, stc)| {
            again(&icn, Icn::parse);
            again(&stc.web_id, WebId::parse);
            again(&stc.email, Email::parse);
            safe_text(&stc.given_name, 200, false);
            safe_text(&stc.family_name, 200, false);
            // Every address accepted here is one the mail transport can address.
            assert!(entitlements::domain::ids::mail_recipient(stc.email.as_str()).is_ok());
        }),
        13 => run(
            bytes,
            args::remove_site_technical_contact,
            |(icn, web_id, reason)| {
                again(&icn, Icn::parse);
                again(&web_id, WebId::parse);
                safe_text(&reason, 1000, true);
            },
        ),
        14 => run(bytes, args::upsert_support_contract, |c| {
            again(&c.icn, Icn::parse);
            again(&c.contract_id, ContractId::parse);
            assert!(c.product_ids.len() <= args::MAX_PRODUCTS);
            c.product_ids
                .iter()
                .for_each(|p| again(p, ProductId::parse));
            // Years 1-9999, in milliseconds.
            let range = -62_135_596_800_000..=253_402_300_799_999;
            assert!(range.contains(&c.starts_at) && range.contains(&c.ends_at));
        }),
        15 => run(bytes, args::list_audit_events, |a| {
            if let Some(icn) = &a.icn {
                again(icn, Icn::parse);
            }
            assert!((1..=500).contains(&a.limit));
        }),
        16 => run(bytes, args::check_entitlement, |(c, _)| check(&c)),
        17 => run(bytes, args::batch_check_entitlements, |b| {
            assert!(b.checks.len() <= args::MAX_BATCH);
            for c in &b.checks {
                match c {
                    Ok((c, _)) => check(c),
                    Err(s) => {
                        refused(s);
                        assert!(s.message().starts_with("checks["), "{s:?}");
                    }
                }
            }
        }),
        18 => run(bytes, args::watch_token, |_| {}),
        19 => run(bytes, args::watch_icn, |icn| {
            if let Some(icn) = icn {
                again(&icn, Icn::parse);
            }
        }),
        20 => run(bytes, args::set_email_domain_policy, |(icn, domain, action, role)| {
            again(&icn, Icn::parse);
            again(&domain, EmailDomain::parse);
            // Only an automatic approval carries a role, and never above Authorized User.
            match action {
                DomainAction::AutoApprove => assert_eq!(role, Some(Role::AuthorizedUser)),
                _ => assert_eq!(role, None),
            }
        }),
        21 => run(bytes, args::delete_email_domain_policy, |(icn, domain)| {
            again(&icn, Icn::parse);
            again(&domain, EmailDomain::parse);
        }),
        22 => run(bytes, args::list_email_domain_policies, |(icn, limit, after)| {
            again(&icn, Icn::parse);
            assert!((1..=500).contains(&limit));
            if let Some(d) = &after {
                again(d, EmailDomain::parse);
            }
        }),
        23 => run(bytes, args::certify_member, |(icn, web_id)| {
            again(&icn, Icn::parse);
            again(&web_id, WebId::parse);
        }),
        // Every mutation's AIP-155 request_id goes through this one function.
        24 => run(
            bytes,
            |m: &pb::RequestAccessRequest| args::request_id(&m.request_id),
            |id| {
                if let Some(id) = id {
                    assert_eq!(id.len(), 36);
                    assert_eq!(id, id.to_ascii_lowercase());
                    assert_ne!(id, "00000000-0000-0000-0000-000000000000");
                    assert_eq!(args::request_id(&id).ok().flatten(), Some(id));
                }
            },
        ),
        25 => run(bytes, args::list_entitlements, |(l, _)| {
            again(&l.web_id, WebId::parse);
            assert!((1..=args::MAX_ENTITLEMENTS_PAGE).contains(&l.limit));
            if let Some(icn) = &l.after {
                again(icn, Icn::parse);
            }
            // A token given out for this list continues this very list, from the same place.
            let token = args::entitlements_page_token(&l, l.after.as_ref());
            let next = pb::ListEntitlementsRequest {
                web_id: l.web_id.to_string(),
                page_token: token,
                action: match l.action {
                    entitlements::domain::Action::OpenServiceRequest => 1,
                    entitlements::domain::Action::ViewSupportArea => 2,
                    entitlements::domain::Action::ManageUsers => 3,
                },
                ..Default::default()
            };
            let (back, _) = args::list_entitlements(&next).expect("its own token");
            assert_eq!(back.after, l.after);
        }),
        // The messages with few fields still decode (unknown fields are skipped).
        _ => {
            let _ = pb::SendVerificationEmailRequest::decode(bytes);
            let _ = pb::GetMyAccessRequest::decode(bytes);
        }
    }
});
