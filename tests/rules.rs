//! One test per rule that the rest of the suite could lose without noticing: each fails when
//! its rule is deleted from the policy or the use case.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{approve, check, request, setup_account, verified_member};
use crate::support::*;

async fn add_stc(app: &TestApp, who: &str) {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: who.into(),
                email: format!("{who}@example.com"),
                given_name: "S".into(),
                family_name: "T".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("add stc");
}

async fn set_status(app: &TestApp, status: pb::AccountStatus) {
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: status as i32,
                reason: "test".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("set status");
}

fn set_role(web_id: &str, role: pb::Role) -> pb::UpdateMemberRoleRequest {
    pb::UpdateMemberRoleRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: web_id.into(),
        role: role as i32,
        expire_time: None,
    }
}

/// Administrators of a suspended account neither decide, read nor change anything on it;
/// operators still administer its members; reactivated, it works again.
async fn a_suspended_account_is_not_administered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let pending = request(&app, "ben", pb::Role::AuthorizedUser).await;
    set_status(&app, pb::AccountStatus::Suspended).await;
    let mut access = app.access();

    let suspended = |r| assert_status(r, Code::FailedPrecondition, "ACCOUNT_SUSPENDED");
    suspended(
        approve(&app, &stc, &pending.access_request_id)
            .await
            .map(|_| ()),
    );
    suspended(
        access
            .deny_request(authed(
                pb::DenyRequestRequest {
                    request_id: String::new(),
                    access_request_id: pending.access_request_id.clone(),
                    reason: "no".into(),
                },
                &stc,
            ))
            .await
            .map(|_| ()),
    );
    suspended(
        access
            .update_member_role(authed(set_role("ana", pb::Role::TechnicalContact), &stc))
            .await
            .map(|_| ()),
    );
    suspended(
        access
            .list_members(authed(
                pb::ListMembersRequest {
                    icn: ICN.into(),
                    ..Default::default()
                },
                &stc,
            ))
            .await
            .map(|_| ()),
    );
    // Operators administer members of any account, suspended or not.
    access
        .update_member_role(authed(
            set_role("ana", pb::Role::TechnicalContact),
            &app.operator(),
        ))
        .await
        .expect("an operator changes a member of a suspended account");

    set_status(&app, pb::AccountStatus::Active).await;
    approve(&app, &stc, &pending.access_request_id)
        .await
        .expect("approved once reactivated");
}

/// An STC or TC whose email is not verified administers nothing.
async fn an_unverified_administrator_changes_no_member(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let tom_req = request(&app, "tom", pb::Role::TechnicalContact).await;
    approve(&app, &stc, &tom_req.access_request_id)
        .await
        .expect("approve tom");
    let tom = app.person("tom");
    let mut access = app.access();
    let unverified = |r| {
        assert_status(
            r,
            Code::PermissionDenied,
            "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
        )
    };
    unverified(
        access
            .update_member_role(authed(set_role("ana", pb::Role::TechnicalContact), &tom))
            .await
            .map(|_| ()),
    );
    unverified(
        access
            .remove_member(authed(
                pb::RemoveMemberRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    web_id: "ana".into(),
                    reason: String::new(),
                },
                &tom,
            ))
            .await
            .map(|_| ()),
    );
    // Operators need no membership at all.
    access
        .update_member_role(authed(
            set_role("ana", pb::Role::TechnicalContact),
            &app.operator(),
        ))
        .await
        .expect("operators administer members");
}

/// Approving the request of someone who meanwhile became an STC keeps them an STC.
async fn an_approval_never_lowers_a_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    add_stc(&app, "ana").await;
    let approved = approve(&app, &stc, &req.access_request_id)
        .await
        .expect("approve");
    assert_eq!(approved.granted_role, pb::Role::AuthorizedUser as i32);
    let r = check(&app, "ana", pb::Action::ViewSupportArea).await;
    assert_eq!(r.role, pb::Role::SiteTechnicalContact as i32);
}

/// A new request is emailed to the verified administrators only, while there is one; to all of
/// them when none is verified.
async fn verified_administrators_hear_of_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    add_stc(&app, "stc2").await;
    let first = request(&app, "ana", pb::Role::AuthorizedUser).await;
    // The outbox delivers in order: once ana's own notice is out, the administrators' are.
    app.wait_mail("ana@example.com", "Provisional Caller", 1)
        .await;
    let about = |to: &str, id: &str| app.mails_to(to).iter().filter(|m| m.contains(id)).count();
    assert_eq!(about("stc1@example.com", &first.access_request_id), 1);
    assert_eq!(
        about("stc2@example.com", &first.access_request_id),
        0,
        "stc2 has not verified their email: stc1 has"
    );

    // With no verified administrator left, every administrator hears of it.
    app.admin()
        .remove_site_technical_contact(authed(
            pb::RemoveSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc1".into(),
                reason: String::new(),
            },
            &app.operator(),
        ))
        .await
        .expect("remove stc1");
    let second = request(&app, "ben", pb::Role::AuthorizedUser).await;
    app.wait_mail("ben@example.com", "Provisional Caller", 1)
        .await;
    assert_eq!(about("stc2@example.com", &second.access_request_id), 1);
    assert_eq!(about("stc1@example.com", &second.access_request_id), 0);
}

/// After its deadline a request is over, swept or not: asking again opens a new one, and the
/// old one can no longer be withdrawn.
async fn a_request_past_its_deadline_is_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let old = request(&app, "ana", pb::Role::AuthorizedUser).await;
    app.clock.advance(31 * 24 * 3600 * 1000);
    let new = request(&app, "ana", pb::Role::AuthorizedUser).await;
    assert_ne!(new.access_request_id, old.access_request_id);
    assert_eq!(new.state, pb::AccessRequestState::Pending as i32);
    let withdraw = app
        .access()
        .withdraw_request(authed(
            pb::WithdrawRequestRequest {
                request_id: String::new(),
                access_request_id: old.access_request_id,
                reason: String::new(),
            },
            &app.person("ana"),
        ))
        .await;
    let s = withdraw.expect_err("the old request is over");
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert!(
        ["REQUEST_EXPIRED", "REQUEST_NOT_PENDING"].contains(&reason(&s).as_str()),
        "{s:?}"
    );
}

/// A person without a service scope learns nothing about accounts they do not belong to:
/// unknown, suspended and foreign accounts answer alike. The ticketing system and operators
/// keep the precise reasons.
async fn a_person_cannot_enumerate_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let op = app.operator();
    let other = "7777777";
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: other.into(),
                company_name: "Other".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    request(&app, "ben", pb::Role::AuthorizedUser).await;
    set_status(&app, pb::AccountStatus::Suspended).await;
    let self_check = |icn: &str, who: &str| {
        let req = pb::CheckEntitlementRequest {
            web_id: who.into(),
            icn: icn.into(),
            action: pb::Action::ViewSupportArea as i32,
            product_id: String::new(),
            severity: 0,
            consistency_token: String::new(),
            consistency: 0,
        };
        (req, app.person(who))
    };
    let reason_for =
        |r: pb::CheckEntitlementResponse| pb::DecisionReason::try_from(r.reason).unwrap();
    use pb::DecisionReason as R;
    // ana belongs nowhere: unknown, suspended and foreign accounts look the same to her.
    for icn in ["7654321", ICN, other] {
        let (req, token) = self_check(icn, "ana");
        let r = app
            .entitlement()
            .check_entitlement(authed(req, &token))
            .await
            .unwrap();
        assert_eq!(reason_for(r.into_inner()), R::NotAMember, "{icn}");
    }
    // Her own pending request still speaks (she knows of it); a member of the suspended
    // account learns that it is suspended.
    let (req, token) = self_check(ICN, "ben");
    let r = app
        .entitlement()
        .check_entitlement(authed(req, &token))
        .await
        .unwrap();
    assert_eq!(reason_for(r.into_inner()), R::RequestPending);
    let (req, token) = self_check(ICN, "stc1");
    let r = app
        .entitlement()
        .check_entitlement(authed(req, &token))
        .await
        .unwrap();
    assert_eq!(reason_for(r.into_inner()), R::AccountSuspended);
    // The ticketing system keeps the precise reasons.
    for (icn, want) in [
        ("7654321", R::UnknownAccount),
        (ICN, R::AccountSuspended),
        (other, R::NotAMember),
    ] {
        let (req, _) = self_check(icn, "ana");
        let r = app
            .entitlement()
            .check_entitlement(authed(req, &app.checker()))
            .await
            .unwrap();
        assert_eq!(reason_for(r.into_inner()), want, "{icn}");
    }
    // Reading members: the same refusal for an unknown and a foreign account; operators are
    // told the account does not exist.
    let list = |icn: &str| pb::ListMembersRequest {
        icn: icn.into(),
        page_size: 0,
        page_token: String::new(),
    };
    for icn in ["7654321", other] {
        assert_status(
            app.access()
                .list_members(authed(list(icn), &app.person("ana")))
                .await,
            Code::PermissionDenied,
            "NOT_AN_ADMINISTRATOR",
        );
    }
    assert_status(
        app.access()
            .list_members(authed(list("7654321"), &op))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    // Changing a member of an account that does not exist: the same.
    assert_status(
        app.access()
            .remove_member(authed(
                pb::RemoveMemberRequest {
                    request_id: String::new(),
                    icn: "7654321".into(),
                    web_id: "ben".into(),
                    reason: String::new(),
                },
                &stc,
            ))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
}

crate::both_backends!(
    a_person_cannot_enumerate_accounts,
    a_suspended_account_is_not_administered,
    an_unverified_administrator_changes_no_member,
    an_approval_never_lowers_a_role,
    verified_administrators_hear_of_requests,
    a_request_past_its_deadline_is_over,
);
