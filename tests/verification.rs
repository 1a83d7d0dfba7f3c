//! Email verification codes: random, hashed, single-use, expiring, limited tries, rate-limited resends.

use entitlements::auth::dev::MintRequest;
use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{request, setup_account};
use crate::support::*;

async fn verify(app: &TestApp, who: &str, code: &str) -> Result<bool, tonic::Status> {
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code: code.into(),
            },
            &app.person(who),
        ))
        .await
        .map(|r| r.into_inner().email_verified)
}

async fn resend(
    app: &TestApp,
    who: &str,
) -> Result<pb::SendVerificationEmailResponse, tonic::Status> {
    app.access()
        .send_verification_email(authed(
            pb::SendVerificationEmailRequest {
                request_id: String::new(),
            },
            &app.person(who),
        ))
        .await
        .map(|r| r.into_inner())
}

async fn codes_die_after_five_wrong_tries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    let code = app.verification_code("ana@example.com", 1).await;
    assert_eq!(code.len(), 8);
    assert_status(
        verify(&app, "nobody", "ABCDEFGH").await,
        Code::FailedPrecondition,
        "NO_VERIFICATION_PENDING",
    );
    for left in (0..5).rev() {
        let s = assert_status(
            verify(&app, "ana", "WRONG234").await,
            Code::InvalidArgument,
            "VERIFICATION_CODE_INVALID",
        );
        assert_eq!(field_violation(&s).as_deref(), Some("code"));
        // The last wrong try says the code is spent, not "0 tries left".
        let want = if left > 0 {
            format!("{left} tries left")
        } else {
            "may no longer be used".to_owned()
        };
        assert!(s.message().contains(&want), "{}", s.message());
    }
    // The counter is durable and the right code no longer works.
    assert_status(
        verify(&app, "ana", &code).await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_LOCKED",
    );
    // A fresh code works (after the resend interval).
    app.clock.advance(61_000);
    resend(&app, "ana").await.unwrap();
    let fresh = app.verification_code("ana@example.com", 2).await;
    assert_ne!(fresh, code);
    // Codes are typed by hand: spaces and lower case don't cost a try.
    let typed = format!(" {} {} ", &fresh[..4].to_lowercase(), &fresh[4..]);
    assert!(verify(&app, "ana", &typed).await.unwrap());
}

async fn resends_replace_codes_and_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    let first = app.verification_code("ana@example.com", 1).await;
    // Too soon after the first code.
    let s = assert_status(
        resend(&app, "ana").await,
        Code::ResourceExhausted,
        "VERIFICATION_EMAIL_RATE_LIMITED",
    );
    use tonic_types::StatusExt;
    let retry = s
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(retry.as_secs() > 0 && retry.as_secs() <= 60, "{retry:?}");
    app.clock.advance(60_000);
    let r = resend(&app, "ana").await.unwrap();
    assert_eq!(r.email, "ana@example.com");
    let second = app.verification_code("ana@example.com", 2).await;
    assert_ne!(first, second);
    // The earlier code stopped working.
    assert_status(
        verify(&app, "ana", &first).await,
        Code::InvalidArgument,
        "VERIFICATION_CODE_INVALID",
    );
    assert!(verify(&app, "ana", &second).await.unwrap());
    // Verified people are told so instead of being sent codes.
    app.clock.advance(60_000);
    assert_status(
        resend(&app, "ana").await,
        Code::FailedPrecondition,
        "EMAIL_ALREADY_VERIFIED",
    );
}

async fn codes_expire_after_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    let code = app.verification_code("ana@example.com", 1).await;
    app.clock.advance(24 * 3600 * 1000);
    assert_status(
        verify(&app, "ana", &code).await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_EXPIRED",
    );
}

async fn a_new_email_address_must_be_verified_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    let code = app.verification_code("ana@example.com", 1).await;
    assert!(verify(&app, "ana", &code).await.unwrap());
    // The identity provider now says ana has another address.
    let moved = app.token("ana", Some("ana@new.example.com"), &[]);
    let mine = app
        .access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &moved))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.email_verified, "reading does not change the record");
    let sent = app
        .access()
        .send_verification_email(authed(
            pb::SendVerificationEmailRequest {
                request_id: String::new(),
            },
            &moved,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.email, "ana@new.example.com");
    let mine = app
        .access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &moved))
        .await
        .unwrap()
        .into_inner();
    assert!(!mine.email_verified);
    assert_eq!(mine.email, "ana@new.example.com");
}

/// The resend limit is the person's: alternating the token's address used to start a new
/// window on every change (10 of 10 sends went out).
async fn the_resend_limit_belongs_to_the_person_not_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.verification_code("ana@example.com", 1).await;
    let addresses = ["ana@other.example.com", "ana@example.com"];
    let mut sent = 1;
    let mut refused = 0;
    for i in 0..9 {
        app.clock.advance(61_000);
        let token = app.token("ana", Some(addresses[i % 2]), &[]);
        match app
            .access()
            .send_verification_email(authed(
                pb::SendVerificationEmailRequest {
                    request_id: String::new(),
                },
                &token,
            ))
            .await
        {
            Ok(r) => {
                assert_eq!(r.into_inner().email, addresses[i % 2]);
                sent += 1;
            }
            Err(s) => {
                assert_eq!(reason(&s), "VERIFICATION_EMAIL_RATE_LIMITED", "{s:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(
        (sent, refused),
        (5, 5),
        "five sends an hour, whatever the address"
    );
}

/// A commit that queues an email wakes the mail worker: the code arrives at once, not at the
/// worker's next poll (here an hour away; every second in production).
async fn a_queued_email_wakes_the_mail_worker(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            mail_poll: std::time::Duration::from_secs(3600),
            ..AppOptions::default()
        },
    )
    .await;
    // The first write of this server, so no earlier commit's wake can deliver it.
    resend(&app, "ana").await.unwrap();
    app.verification_code("ana@example.com", 1).await;
}

async fn add_stc(app: &TestApp, icn: &str, who: &str, email: &str) {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: icn.into(),
                web_id: who.into(),
                email: email.into(),
                given_name: String::new(),
                family_name: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
}

/// A refused VerifyEmail still keeps the record its token refreshed. The finding (reference
/// model): a code sent to an operator's stale address was refused as SUPERSEDED, the refresh
/// rolled back with the refusal, and the next code the service sent of itself (dee designated
/// STC of another account) went to the stale address again, where no code can ever verify.
async fn a_superseded_code_still_refreshes_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    // New to the service: the operator's (CRM) address is used, and gets the first code.
    add_stc(&app, ICN, "dee", "dee.crm@example.com").await;
    let stale = app.verification_code("dee.crm@example.com", 1).await;
    assert_status(
        verify(&app, "dee", &stale).await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_SUPERSEDED",
    );
    let mine = app
        .access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person("dee")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.email, "dee@example.com",
        "the token's address is on record"
    );
    assert!(!mine.email_verified);
    // Designated STC of a second account (past the resend gap): the code goes to her own
    // address, and it verifies.
    app.clock.advance(61_000);
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: "7654321".into(),
                company_name: "Second Ltd".into(),
                country_code: COUNTRY.into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    add_stc(&app, "7654321", "dee", "dee.crm@example.com").await;
    let code = app.verification_code("dee@example.com", 1).await;
    assert!(verify(&app, "dee", &code).await.unwrap());
    assert_eq!(app.mails_to("dee.crm@example.com").len(), 1);
}

/// The given name on record for `who`, an STC of ICN, as the operator reads it.
async fn stc_given_name(app: &TestApp, who: &str) -> String {
    app.admin()
        .get_account(authed(
            pb::GetAccountRequest { icn: ICN.into() },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .site_technical_contacts
        .into_iter()
        .find(|m| m.web_id == who)
        .expect("an STC")
        .given_name
}

/// An expired or locked code is refused, and the names the token brought are kept all the same.
async fn an_expired_or_locked_code_still_refreshes_the_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let crm = |who: &str| pb::AddSiteTechnicalContactRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: who.into(),
        email: format!("{who}@example.com"),
        given_name: "Crm".into(),
        family_name: "Copy".into(),
    };
    for who in ["dee", "eve"] {
        app.admin()
            .add_site_technical_contact(authed(crm(who), &app.operator()))
            .await
            .unwrap();
        assert_eq!(stc_given_name(&app, who).await, "Crm");
    }
    let dee_code = app.verification_code("dee@example.com", 1).await;
    let eve_code = app.verification_code("eve@example.com", 1).await;
    // eve's code is spent by wrong tries under a token without an email claim (no refresh).
    let bare = app.token("eve", None, &[]);
    for _ in 0..5 {
        let r = app
            .access()
            .verify_email(authed(
                pb::VerifyEmailRequest {
                    request_id: String::new(),
                    code: "WRONG234".into(),
                },
                &bare,
            ))
            .await;
        assert_status(r, Code::InvalidArgument, "VERIFICATION_CODE_INVALID");
    }
    assert_status(
        verify(&app, "eve", &eve_code).await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_LOCKED",
    );
    assert_eq!(stc_given_name(&app, "eve").await, "eve-given");
    app.clock.advance(24 * 3600 * 1000);
    assert_status(
        verify(&app, "dee", &dee_code).await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_EXPIRED",
    );
    assert_eq!(stc_given_name(&app, "dee").await, "dee-given");
}

/// A token refreshes the names on record only where it brings a name that differs: a new
/// given name, or a new family name alone; a token with the same names writes nothing, and
/// one without names keeps those on record.
async fn a_token_refreshes_only_the_names_it_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "fay".into(),
                email: "fay@example.com".into(),
                given_name: "Fay".into(),
                family_name: "Moss".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    // Each call comes a second later, so a write would move the record's update time.
    let call = |given: &'static str, family: &'static str| {
        let app = &app;
        async move {
            app.clock.advance(1000);
            let mut m = MintRequest::new("fay");
            m.email = Some("fay@example.com".into());
            m.given_name = Some(given.into());
            m.family_name = Some(family.into());
            let r = app
                .access()
                .verify_email(authed(
                    pb::VerifyEmailRequest {
                        request_id: String::new(),
                        code: "WRONG234".into(),
                    },
                    &app.key.mint(&m).unwrap(),
                ))
                .await;
            assert_status(r, Code::InvalidArgument, "VERIFICATION_CODE_INVALID");
            person_row(app, "fay").await
        }
    };
    let (given, family, first) = call("Fay", "Moss").await;
    assert_eq!((given.as_str(), family.as_str()), ("Fay", "Moss"));
    let (given, family, unchanged) = call("Fay", "Moss").await;
    assert_eq!((given.as_str(), family.as_str()), ("Fay", "Moss"));
    assert_eq!(unchanged, first, "the same names: nothing written");
    let (given, family, _) = call("Faye", "Moss").await;
    assert_eq!((given.as_str(), family.as_str()), ("Faye", "Moss"));
    let (given, family, _) = call("Faye", "Moss-Hill").await;
    assert_eq!((given.as_str(), family.as_str()), ("Faye", "Moss-Hill"));
    let (given, family, _) = call("", "").await;
    assert_eq!((given.as_str(), family.as_str()), ("Faye", "Moss-Hill"));
}

/// `who`'s names and update time as stored.
async fn person_row(app: &TestApp, who: &str) -> (String, String, i64) {
    use sqlx::Connection as _;
    let sql = "SELECT given_name, family_name, updated_at FROM persons WHERE web_id = $1";
    match app.db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(sql)
                .bind(who)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query_as(sql)
                .bind(who)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

crate::both_backends!(
    a_token_refreshes_only_the_names_it_changes,
    an_expired_or_locked_code_still_refreshes_the_names,
    a_superseded_code_still_refreshes_the_address,
    the_resend_limit_belongs_to_the_person_not_the_address,
    codes_die_after_five_wrong_tries,
    resends_replace_codes_and_are_rate_limited,
    codes_expire_after_a_day,
    a_new_email_address_must_be_verified_again,
    a_queued_email_wakes_the_mail_worker,
);
