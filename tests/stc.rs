//! Designating a Site Technical Contact who is already known: the operator's call makes them an
//! STC and nothing else. Their address, names and verification are their own.

use entitlements::proto::v1 as pb;

use crate::flow::{check, setup_account};
use crate::support::*;

const ICN2: &str = "7654321";

/// The finding: adding an existing STC to a second account with another address blanked
/// their names and revoked their verification, so they lost access on the first account too.
async fn an_stc_added_again_keeps_their_identity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // stc1 is a verified STC of ICN; their token's names are on record.
    let stc = setup_account(&app).await;
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICN2.into(),
                company_name: "Second Ltd".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let added = app
        .admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN2.into(),
                web_id: "stc1".into(),
                email: "sam@crm-copy.example.com".into(),
                given_name: String::new(),
                family_name: "Renamed".into(),
            },
            &op,
        ))
        .await
        .unwrap()
        .into_inner()
        .membership
        .unwrap();
    assert_eq!(added.role, pb::Role::SiteTechnicalContact as i32);
    assert_eq!(added.email, "stc1@example.com", "the address is kept");
    assert_eq!(
        (added.given_name.as_str(), added.family_name.as_str()),
        ("stc1-given", "stc1-family"),
        "the names are kept"
    );
    assert!(added.email_verified, "the verification is kept");

    // Still an administrator of the first account, and at once of the second.
    let on_first = check(&app, "stc1", pb::Action::ManageUsers).await;
    assert!(on_first.allowed, "{on_first:?}");
    let on_second = app
        .entitlement()
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: "stc1".into(),
                icn: ICN2.into(),
                action: pb::Action::ManageUsers as i32,
                ..Default::default()
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(on_second.allowed, "{on_second:?}");

    // What was not applied is in the audit trail, by the operator.
    let audit = app.audit_events(ICN2).await;
    let ignored = audit
        .iter()
        .find(|e| e.action == "person.identity_not_applied")
        .expect("the ignored details are audited");
    assert_eq!(ignored.actor, OPERATOR);
    assert_eq!(ignored.target_id, "stc1");
    assert!(ignored.after_json.contains("sam@crm-copy.example.com"));
    assert!(ignored.after_json.contains(r#"["email","family_name"]"#));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "membership.add_site_technical_contact")
    );

    // No code went to the operator's address: a later email to stc1 arrives, that one never.
    app.access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN2.into(),
                country_code: COUNTRY.into(),
                requested_role: pb::Role::AuthorizedUser as i32,
            },
            &app.person("ana"),
        ))
        .await
        .unwrap();
    app.wait_mail("stc1@example.com", "Second Ltd", 1).await;
    assert!(app.mails_to("sam@crm-copy.example.com").is_empty());
}

/// The same details again are no mismatch: nothing is audited but the designation.
async fn matching_details_are_not_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let add = pb::AddSiteTechnicalContactRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: "stc1".into(),
        email: "stc1@example.com".into(),
        given_name: "stc1-given".into(),
        family_name: "stc1-family".into(),
    };
    app.admin()
        .add_site_technical_contact(authed(add, &app.operator()))
        .await
        .unwrap();
    let audit = app.audit_events(ICN).await;
    assert!(
        !audit
            .iter()
            .any(|e| e.action == "person.identity_not_applied"),
        "{audit:?}"
    );
    // Already an STC: the call changes nothing, so it records nothing either.
    let designations = audit
        .iter()
        .filter(|e| e.action == "membership.add_site_technical_contact")
        .count();
    assert_eq!(designations, 1, "{audit:?}");
}

async fn add_stc(app: &TestApp, who: &str) -> pb::Membership {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: who.into(),
                email: format!("{who}@example.com"),
                given_name: String::new(),
                family_name: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .membership
        .unwrap()
}

/// An operator makes a Technical Contact an STC (the membership is kept, its time box goes) and
/// makes a removed STC one again (active again).
async fn an_operator_promotes_and_revives_stcs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = crate::flow::request(&app, "tom", pb::Role::TechnicalContact).await;
    app.access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: req.access_request_id,
                granted_role: 0,
                expire_time: ts(app.clock.now_ms() + 10 * 24 * 3_600_000),
            },
            &stc,
        ))
        .await
        .unwrap();
    let granted = app
        .access()
        .list_members(authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                ..Default::default()
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .memberships
        .into_iter()
        .find(|m| m.web_id == "tom")
        .expect("tom is a member");
    assert!(granted.expire_time.is_some());
    app.clock.advance(3_600_000);
    let promoted = add_stc(&app, "tom").await;
    assert_eq!(promoted.role, pb::Role::SiteTechnicalContact as i32);
    assert_eq!(
        promoted.expire_time, None,
        "an operator's designation has no end"
    );
    assert_eq!(
        promoted.create_time, granted.create_time,
        "the membership is kept"
    );
    let seconds = |m: &pb::Membership| m.update_time.as_ref().map(|t| t.seconds);
    assert!(seconds(&promoted) > seconds(&granted), "and marked changed");

    app.admin()
        .remove_site_technical_contact(authed(
            pb::RemoveSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "tom".into(),
                reason: "left".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    assert!(
        !check(&app, "tom", pb::Action::ViewSupportArea)
            .await
            .allowed
    );
    let again = add_stc(&app, "tom").await;
    assert_eq!(again.role, pb::Role::SiteTechnicalContact as i32);
    let seen = check(&app, "tom", pb::Action::ViewSupportArea).await;
    assert!(
        seen.allowed,
        "a removed STC designated again is active: {seen:?}"
    );
}

crate::both_backends!(
    an_stc_added_again_keeps_their_identity,
    matching_details_are_not_reported,
    an_operator_promotes_and_revives_stcs,
);
