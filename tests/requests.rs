//! The rules of RequestAccess, ApproveRequest, DenyRequest and WithdrawRequest.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{approve, reason_of, request, setup_account, verified_member};
use crate::support::*;

fn req_msg(icn: &str, country: &str, role: pb::Role) -> pb::RequestAccessRequest {
    pb::RequestAccessRequest {
        request_id: String::new(),
        icn: icn.into(),
        country_code: country.into(),
        requested_role: role as i32,
    }
}

async fn request_access_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let ana = app.person("ana");
    let mut access = app.access();

    // The ICN must exist with that country; the answer does not reveal which is wrong.
    assert_status(
        access
            .request_access(authed(
                req_msg("7654321", COUNTRY, pb::Role::AuthorizedUser),
                &ana,
            ))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_status(
        access
            .request_access(authed(req_msg(ICN, "DE", pb::Role::AuthorizedUser), &ana))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    // Only Authorized User or Technical Contact may be asked for.
    for role in [
        pb::Role::SiteTechnicalContact,
        pb::Role::ProvisionalCaller,
        pb::Role::Unspecified,
    ] {
        let s = assert_status(
            access
                .request_access(authed(req_msg(ICN, COUNTRY, role), &ana))
                .await,
            Code::InvalidArgument,
            "",
        );
        assert_eq!(field_violation(&s).as_deref(), Some("requested_role"));
    }
    // Lower-case country codes are the same country.
    let first = access
        .request_access(authed(req_msg(ICN, "us", pb::Role::TechnicalContact), &ana))
        .await
        .unwrap()
        .into_inner();
    let first = first.access_request.unwrap();
    // Asking again returns the same pending request, not a second one.
    let again = access
        .request_access(authed(
            req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
            &ana,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.access_request.unwrap().access_request_id,
        first.access_request_id
    );
    let list = access
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                ..Default::default()
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.access_requests.len(), 1, "no duplicate request");

    // An active member gets ALREADY_EXISTS.
    approve(&app, &stc, &first.access_request_id).await.unwrap();
    // Administrators were emailed once, not twice. The outbox delivers in order, so once the
    // approval's email (queued after both asks) is out, any duplicate would be out too.
    app.wait_mail("ana@example.com", "approved", 1).await;
    assert_eq!(
        app.mails_to("stc1@example.com")
            .iter()
            .filter(|m| m.contains(&first.access_request_id))
            .count(),
        1
    );
    assert_status(
        access
            .request_access(authed(
                req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
                &ana,
            ))
            .await,
        Code::AlreadyExists,
        "ALREADY_A_MEMBER",
    );

    // A token without an email claim cannot ask (nobody could tell them the outcome).
    let no_email = app.token("ghost", None, &[]);
    assert_status(
        access
            .request_access(authed(
                req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
                &no_email,
            ))
            .await,
        Code::FailedPrecondition,
        "EMAIL_CLAIM_REQUIRED",
    );

    // A suspended account takes no requests.
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: pb::AccountStatus::Suspended as i32,
                reason: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    assert_status(
        access
            .request_access(authed(
                req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
                &app.person("zed"),
            ))
            .await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );
}

async fn decision_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let mut access = app.access();
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let id = req.access_request_id.clone();

    // Only an administrator of that ICN...
    verified_member(&app, &stc, "user1", pb::Role::AuthorizedUser).await;
    assert_status(
        approve(&app, &app.person("user1"), &id).await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        approve(&app, &app.person("stranger"), &id).await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    // ...whose email is verified.
    let tc = request(&app, "tina", pb::Role::TechnicalContact).await;
    approve(&app, &stc, &tc.access_request_id).await.unwrap();
    assert_status(
        approve(&app, &app.person("tina"), &id).await,
        Code::PermissionDenied,
        "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
    );
    // Operators administer accounts but do not decide people's requests.
    assert_status(
        approve(&app, &app.operator(), &id).await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );

    // Never a higher role than requested, never STC.
    for role in [
        pb::Role::TechnicalContact,
        pb::Role::SiteTechnicalContact,
        pb::Role::ProvisionalCaller,
    ] {
        let r = access
            .approve_request(authed(
                pb::ApproveRequestRequest {
                    request_id: String::new(),
                    access_request_id: id.clone(),
                    granted_role: role as i32,
                    expire_time: None,
                },
                &stc,
            ))
            .await;
        let s = assert_status(r, Code::InvalidArgument, "");
        assert_eq!(field_violation(&s).as_deref(), Some("granted_role"));
    }
    // A denial needs a reason.
    let r = access
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.clone(),
                reason: "  ".into(),
            },
            &stc,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("reason")
    );
    // Unknown request.
    let missing = uuid::Uuid::now_v7().to_string();
    assert_status(
        approve(&app, &stc, &missing).await,
        Code::NotFound,
        "ACCESS_REQUEST_NOT_FOUND",
    );

    // A TC request may be granted as Authorized User.
    let tc2 = request(&app, "theo", pb::Role::TechnicalContact).await;
    let granted = access
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: tc2.access_request_id.clone(),
                granted_role: pb::Role::AuthorizedUser as i32,
                expire_time: None,
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_request
        .unwrap();
    assert_eq!(granted.granted_role, pb::Role::AuthorizedUser as i32);
    assert_eq!(granted.requested_role, pb::Role::TechnicalContact as i32);

    // Only a PENDING request can be decided.
    let denied = access
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.clone(),
                reason: "unknown person".into(),
            },
            &stc,
        ))
        .await
        .unwrap();
    let denied = denied.into_inner().access_request.unwrap();
    assert_eq!(denied.state, pb::AccessRequestState::Denied as i32);
    assert_eq!(denied.decision_reason, "unknown person");
    assert_status(
        approve(&app, &stc, &id).await,
        Code::FailedPrecondition,
        "REQUEST_NOT_PENDING",
    );
    let r = access
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.clone(),
                reason: "again".into(),
            },
            &stc,
        ))
        .await;
    assert_status(r, Code::FailedPrecondition, "REQUEST_NOT_PENDING");

    // Never one's own request: a requester an operator made STC meanwhile.
    let own = request(&app, "olga", pb::Role::AuthorizedUser).await;
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "olga".into(),
                email: "olga@example.com".into(),
                given_name: "Olga".into(),
                family_name: "O".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    let code = app.verification_code("olga@example.com", 1).await;
    access
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("olga"),
        ))
        .await
        .unwrap();
    assert_status(
        approve(&app, &app.person("olga"), &own.access_request_id).await,
        Code::PermissionDenied,
        "SELF_DECISION",
    );
}

async fn withdraw_and_expiry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let mut access = app.access();
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let w = |id: String, reason: &str| pb::WithdrawRequestRequest {
        request_id: String::new(),
        access_request_id: id,
        reason: reason.to_owned(),
    };
    let r = access
        .withdraw_request(authed(
            w(req.access_request_id.clone(), ""),
            &app.person("bob"),
        ))
        .await;
    assert_status(r, Code::PermissionDenied, "NOT_YOUR_REQUEST");
    let done = access
        .withdraw_request(authed(
            w(req.access_request_id.clone(), "found another way"),
            &app.person("ana"),
        ))
        .await
        .unwrap()
        .into_inner()
        .access_request
        .unwrap();
    assert_eq!(done.state, pb::AccessRequestState::Withdrawn as i32);
    assert_eq!(
        done.decision_reason, "found another way",
        "the reason given is kept"
    );
    assert_status(
        approve(&app, &stc, &req.access_request_id).await,
        Code::FailedPrecondition,
        "REQUEST_NOT_PENDING",
    );
    assert_eq!(
        reason_of(&app, "ana", pb::Action::OpenServiceRequest).await,
        pb::DecisionReason::NotAMember
    );

    // Undecided past the deadline (30 days by default): EXPIRED, never approvable.
    let late = request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.clock.advance(31 * 24 * 3600 * 1000);
    let s = assert_status(
        approve(&app, &stc, &late.access_request_id).await,
        Code::FailedPrecondition,
        "REQUEST_EXPIRED",
    );
    assert!(s.message().contains("expired"));
    let mine = access
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person("ana")))
        .await
        .unwrap()
        .into_inner();
    let state = mine
        .access_requests
        .iter()
        .find(|r| r.access_request_id == late.access_request_id)
        .unwrap()
        .state;
    assert_eq!(state, pb::AccessRequestState::Expired as i32);
    app.wait_mail("ana@example.com", "expired", 1).await;

    // The sweeper expires requests nobody touches, and keeps doing so.
    for who in ["carl", "dora"] {
        let idle = request(&app, who, pb::Role::AuthorizedUser).await;
        app.clock.advance(31 * 24 * 3600 * 1000);
        let id = idle.access_request_id.clone();
        eventually(&format!("the sweeper expires {who}'s idle request"), || {
            let mut access = app.access();
            let token = app.person(who);
            let id = id.clone();
            async move {
                let mine = access
                    .get_my_access(authed(pb::GetMyAccessRequest {}, &token))
                    .await
                    .unwrap()
                    .into_inner();
                mine.access_requests.iter().any(|r| {
                    r.access_request_id == id && r.state == pb::AccessRequestState::Expired as i32
                })
            }
        })
        .await;
    }
}

fn retry_after(s: &tonic::Status) -> std::time::Duration {
    use tonic_types::StatusExt;
    s.get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info")
}

/// A request/withdraw loop on one account: the administrators hear of the first request of the
/// day only, and the sixth request within 24 hours is refused with RetryInfo until the oldest
/// leaves the window (across replicas: the rule is read from the database).
async fn a_request_loop_is_limited_and_emails_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let admin_mails = |app: &TestApp| {
        app.mails_to("stc1@example.com")
            .iter()
            .filter(|m| m.contains("has asked for access"))
            .count()
    };
    let access = app.access();
    for turn in 0..5 {
        let r = request(&app, "ana", pb::Role::AuthorizedUser).await;
        app.clock.advance(60_000);
        access
            .clone()
            .withdraw_request(authed(
                pb::WithdrawRequestRequest {
                    request_id: String::new(),
                    access_request_id: r.access_request_id,
                    reason: String::new(),
                },
                &app.person("ana"),
            ))
            .await
            .unwrap_or_else(|e| panic!("withdraw {turn}: {e:?}"));
        app.clock.advance(60_000);
    }
    app.wait_mail("stc1@example.com", "has asked for access", 1)
        .await;
    let s = assert_status(
        access
            .clone()
            .request_access(authed(
                req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
                &app.person("ana"),
            ))
            .await,
        Code::ResourceExhausted,
        "ACCESS_REQUESTS_RATE_LIMITED",
    );
    // The first of the five leaves the window 24 hours after it was made (10 minutes ago).
    let wait = retry_after(&s).as_secs();
    assert!((23 * 3600..=24 * 3600 - 590).contains(&wait), "{wait}");
    // Another replica says the same: the count is the database's.
    let other = app.replica().await;
    assert_status(
        other
            .access()
            .request_access(authed(
                req_msg(ICN, COUNTRY, pb::Role::AuthorizedUser),
                &other.person("ana"),
            ))
            .await,
        Code::ResourceExhausted,
        "ACCESS_REQUESTS_RATE_LIMITED",
    );
    // Someone else is not held back, and their request is announced.
    request(&app, "ben", pb::Role::AuthorizedUser).await;
    app.wait_mail("stc1@example.com", "has asked for access", 2)
        .await;
    assert_eq!(admin_mails(&app), 2, "one email per person and day");
    // A day later ana may ask again, and the administrators hear of it again.
    app.clock.advance(24 * 3600 * 1000);
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.wait_mail("stc1@example.com", "has asked for access", 3)
        .await;
}

/// Per replica: a person may ask for a handful of accounts at once; a flood waits. Likewise
/// for one account across persons.
async fn request_access_is_rate_limited_per_person_and_account(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            request_limits: (4, 6),
            ..Default::default()
        },
    )
    .await;
    setup_account(&app).await;
    let op = app.operator();
    for i in 0..5 {
        app.admin()
            .create_account(authed(
                pb::CreateAccountRequest {
                    request_id: String::new(),
                    icn: format!("{}", 100 + i),
                    company_name: format!("Co {i}"),
                    country_code: COUNTRY.into(),
                },
                &op,
            ))
            .await
            .unwrap();
    }
    let ask = |icn: String, who: &str| {
        let token = app.person(who);
        let access = app.access();
        async move {
            let mut access = access;
            access
                .request_access(authed(
                    req_msg(&icn, COUNTRY, pb::Role::AuthorizedUser),
                    &token,
                ))
                .await
        }
    };
    for i in 0..4 {
        ask(format!("{}", 100 + i), "ana")
            .await
            .expect("a handful passes");
    }
    let s = assert_status(
        ask("104".into(), "ana").await,
        Code::ResourceExhausted,
        "ACCESS_REQUESTS_RATE_LIMITED",
    );
    let wait = retry_after(&s).as_secs();
    assert!(
        (1..=15 * 60).contains(&wait),
        "one more every 15 minutes: {wait}"
    );
    // One account, many persons: the account's own limit (6 an hour).
    for p in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        ask(ICN.into(), p)
            .await
            .expect("within the account's limit");
    }
    assert_status(
        ask(ICN.into(), "p7").await,
        Code::ResourceExhausted,
        "ACCESS_REQUESTS_RATE_LIMITED",
    );
}

crate::both_backends!(
    request_access_rules,
    decision_rules,
    withdraw_and_expiry,
    a_request_loop_is_limited_and_emails_once,
    request_access_is_rate_limited_per_person_and_account
);
