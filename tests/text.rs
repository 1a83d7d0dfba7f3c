//! Text that reaches people: controls, bidi and separator characters are refused where a
//! caller sends them (INVALID_ARGUMENT naming the field) and cleaned out of token claims,
//! which the person cannot correct.

use entitlements::auth::dev::MintRequest;
use entitlements::domain::ids::is_unsafe_char;
use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::setup_account;
use crate::support::*;

const RLO: &str = "\u{202E}";
const LSEP: &str = "\u{2028}";
const PSEP: &str = "\u{2029}";
const LRI: &str = "\u{2066}";

#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str) {
    let s = assert_status(r, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(field_violation(&s).as_deref(), Some(field), "{s:?}");
}

async fn unsafe_characters_are_refused_at_the_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let op = app.operator();
    let mut admin = app.admin();
    let account = |name: String| pb::CreateAccountRequest {
        request_id: String::new(),
        icn: "555".into(),
        company_name: name,
        country_code: COUNTRY.into(),
    };
    for bad in [
        format!("ACME{RLO}HG mbH"),
        format!("ACME{LSEP}Approved: yes"),
        format!("ACME{PSEP}Corp"),
        format!("{LRI}ACME"),
        "ACME\u{200B}".to_owned(),
        "ACME\nCorp".to_owned(),
    ] {
        refused(
            admin.create_account(authed(account(bad), &op)).await,
            "company_name",
        );
    }
    let stc_req =
        |given: &str, family: &str, web_id: &str, email: &str| pb::AddSiteTechnicalContactRequest {
            request_id: String::new(),
            icn: ICN.into(),
            web_id: web_id.into(),
            email: email.into(),
            given_name: given.into(),
            family_name: family.into(),
        };
    let cases = [
        (
            stc_req(&format!("Sam{LSEP}Admin"), "S", "new", "n@example.com"),
            "given_name",
        ),
        (
            stc_req("Sam", &format!("{RLO}S"), "new", "n@example.com"),
            "family_name",
        ),
        (
            stc_req("Sam", "S", &format!("new{RLO}"), "n@example.com"),
            "web_id",
        ),
        (
            stc_req("Sam", "S", "new", &format!("n{LRI}@example.com")),
            "email",
        ),
    ];
    for (req, field) in cases {
        refused(
            admin.add_site_technical_contact(authed(req, &op)).await,
            field,
        );
    }
    refused(
        admin
            .set_account_status(authed(
                pb::SetAccountStatusRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    status: pb::AccountStatus::Suspended as i32,
                    reason: format!("fraud{PSEP}suspected"),
                },
                &op,
            ))
            .await,
        "reason",
    );
    // A reason may run over lines, but not with separators or bidi controls.
    let req = crate::flow::request(&app, "ana", pb::Role::AuthorizedUser).await;
    let deny = |reason: String| pb::DenyRequestRequest {
        request_id: String::new(),
        access_request_id: req.access_request_id.clone(),
        reason,
    };
    refused(
        app.access()
            .deny_request(authed(deny(format!("no{RLO}sey")), &stc))
            .await,
        "reason",
    );
    app.access()
        .deny_request(authed(deny("not staff.\nAsk HR.".into()), &stc))
        .await
        .expect("newlines are fine in a reason");
}

async fn names_in_token_claims_are_cleaned_not_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let mut m = MintRequest::new("eve");
    m.email = Some("eve@example.com".into());
    m.given_name = Some(format!("Eve{RLO}nimdA"));
    m.family_name = Some(format!("{LRI}Doe{LSEP}Admin\t"));
    let eve = app.key.mint(&m).unwrap();
    // The person cannot fix their identity provider's profile: the call goes through.
    app.access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN.into(),
                country_code: COUNTRY.into(),
                requested_role: pb::Role::AuthorizedUser as i32,
            },
            &eve,
        ))
        .await
        .expect("a name with bidi controls does not lock the person out");
    let listed = app
        .access()
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                state: pb::AccessRequestState::Pending as i32,
                page_size: 10,
                page_token: String::new(),
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_requests;
    assert_eq!(listed[0].requester_given_name, "EvenimdA");
    assert_eq!(listed[0].requester_family_name, "Doe Admin");
    // Neither the administrators' email nor the requester's carries one.
    for to in ["stc1@example.com", "eve@example.com"] {
        for mail in app.wait_mail(to, "EvenimdA", 1).await {
            assert!(
                !mail
                    .chars()
                    .any(|c| is_unsafe_char(c) && c != '\r' && c != '\n'),
                "{mail:?}"
            );
        }
    }
}

/// An address the mail system refuses is refused where it is given, not queued and retried.
async fn undeliverable_addresses_are_refused_where_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let two = "a@b.example,c@d.example";
    refused(
        app.admin()
            .add_site_technical_contact(authed(
                pb::AddSiteTechnicalContactRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    web_id: "two".into(),
                    email: two.into(),
                    given_name: "T".into(),
                    family_name: "Wo".into(),
                },
                &app.operator(),
            ))
            .await,
        "email",
    );
    let token = app.token("two", Some(two), &[]);
    let s = assert_status(
        app.access()
            .send_verification_email(authed(
                pb::SendVerificationEmailRequest {
                    request_id: String::new(),
                },
                &token,
            ))
            .await,
        Code::Unauthenticated,
        "TOKEN_CLAIM_INVALID",
    );
    assert!(s.message().contains("email"), "{s:?}");
}

crate::both_backends!(
    undeliverable_addresses_are_refused_where_given,
    unsafe_characters_are_refused_at_the_edge,
    names_in_token_claims_are_cleaned_not_refused,
);
