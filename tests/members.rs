//! Administrators and members; operators and STCs; paging.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{reason_of, setup_account, verified_member};
use crate::support::*;

fn set_role(web_id: &str, role: pb::Role) -> pb::UpdateMemberRoleRequest {
    pb::UpdateMemberRoleRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: web_id.into(),
        role: role as i32,
        expire_time: None,
    }
}

fn remove(web_id: &str) -> pb::RemoveMemberRequest {
    pb::RemoveMemberRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: web_id.into(),
        reason: "test".into(),
    }
}

async fn member_administration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let mut access = app.access();
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    let tom = app.person("tom");

    // A TC may change an AU to TC and back, but never touch an STC.
    let m = access
        .update_member_role(authed(set_role("ana", pb::Role::TechnicalContact), &tom))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        m.membership.unwrap().role,
        pb::Role::TechnicalContact as i32
    );
    app.wait_mail("ana@example.com", "Technical Contact", 1)
        .await;
    access
        .update_member_role(authed(set_role("ana", pb::Role::AuthorizedUser), &tom))
        .await
        .unwrap();
    assert_status(
        access
            .update_member_role(authed(set_role("stc1", pb::Role::AuthorizedUser), &tom))
            .await,
        Code::PermissionDenied,
        "SITE_TECHNICAL_CONTACT_PROTECTED",
    );
    assert_status(
        access.remove_member(authed(remove("stc1"), &tom)).await,
        Code::PermissionDenied,
        "SITE_TECHNICAL_CONTACT_PROTECTED",
    );
    // Nobody but an operator makes an STC.
    let s = assert_status(
        access
            .update_member_role(authed(
                set_role("ana", pb::Role::SiteTechnicalContact),
                &stc,
            ))
            .await,
        Code::InvalidArgument,
        "",
    );
    assert_eq!(field_violation(&s).as_deref(), Some("role"));
    // An Authorized User administers nothing.
    assert_status(
        access
            .update_member_role(authed(
                set_role("tom", pb::Role::AuthorizedUser),
                &app.person("ana"),
            ))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        access
            .remove_member(authed(remove("tom"), &app.person("ana")))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    // Administrators don't change themselves.
    assert_status(
        access
            .update_member_role(authed(set_role("tom", pb::Role::AuthorizedUser), &tom))
            .await,
        Code::PermissionDenied,
        "SELF_MODIFICATION",
    );
    // Removing: the member's checks say ACCESS_REVOKED; removing again is NOT_FOUND.
    let removed = access
        .remove_member(authed(remove("ana"), &tom))
        .await
        .unwrap()
        .into_inner()
        .membership
        .unwrap();
    assert_eq!(removed.web_id, "ana");
    assert_eq!(
        reason_of(&app, "ana", pb::Action::OpenServiceRequest).await,
        pb::DecisionReason::AccessRevoked
    );
    assert_status(
        access.remove_member(authed(remove("ana"), &tom)).await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
    );
    // Lists are for administrators.
    let list = pb::ListMembersRequest {
        icn: ICN.into(),
        page_size: 0,
        page_token: String::new(),
    };
    assert_status(
        access
            .list_members(authed(list.clone(), &app.person("ana")))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    let members = access
        .list_members(authed(list, &tom))
        .await
        .unwrap()
        .into_inner()
        .memberships;
    let ids: Vec<&str> = members.iter().map(|m| m.web_id.as_str()).collect();
    assert_eq!(ids, ["stc1", "tom"]);
}

async fn site_technical_contacts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let op = app.operator();
    let mut admin = app.admin();
    let rm = |w: &str| pb::RemoveSiteTechnicalContactRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: w.into(),
        reason: "left".into(),
    };
    // Never the last STC.
    assert_status(
        admin
            .remove_site_technical_contact(authed(rm("stc1"), &op))
            .await,
        Code::FailedPrecondition,
        "LAST_SITE_TECHNICAL_CONTACT",
    );
    // Only operators.
    let add = pb::AddSiteTechnicalContactRequest {
        request_id: String::new(),
        icn: ICN.into(),
        web_id: "stc2".into(),
        email: "stc2@example.com".into(),
        given_name: "S".into(),
        family_name: "Two".into(),
    };
    assert_status(
        admin
            .add_site_technical_contact(authed(add.clone(), &app.person("stc1")))
            .await,
        Code::PermissionDenied,
        "ADMIN_SCOPE_REQUIRED",
    );
    let added = admin
        .add_site_technical_contact(authed(add.clone(), &op))
        .await
        .unwrap()
        .into_inner()
        .membership
        .unwrap();
    assert_eq!(added.role, pb::Role::SiteTechnicalContact as i32);
    assert!(!added.email_verified);
    app.verification_code("stc2@example.com", 1).await;
    // Adding twice changes nothing.
    admin
        .add_site_technical_contact(authed(add, &op))
        .await
        .unwrap();
    let acct = admin
        .get_account(authed(pb::GetAccountRequest { icn: ICN.into() }, &op))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acct.site_technical_contacts.len(), 2);
    assert_eq!(acct.contracts.len(), 1);
    admin
        .remove_site_technical_contact(authed(rm("stc1"), &op))
        .await
        .unwrap();
    assert_status(
        admin
            .remove_site_technical_contact(authed(rm("stc2"), &op))
            .await,
        Code::FailedPrecondition,
        "LAST_SITE_TECHNICAL_CONTACT",
    );
    assert_status(
        admin
            .remove_site_technical_contact(authed(rm("stc1"), &op))
            .await,
        Code::NotFound,
        "SITE_TECHNICAL_CONTACT_NOT_FOUND",
    );
    assert_eq!(
        reason_of(&app, "stc1", pb::Action::ManageUsers).await,
        pb::DecisionReason::AccessRevoked
    );
    // Account admin rules.
    let dup = pb::CreateAccountRequest {
        request_id: String::new(),
        icn: ICN.into(),
        company_name: "Again".into(),
        country_code: "US".into(),
    };
    assert_status(
        admin.create_account(authed(dup, &op)).await,
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
    );
    assert_status(
        admin
            .get_account(authed(pb::GetAccountRequest { icn: "42".into() }, &op))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
}

async fn lists_are_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    for i in 0..5 {
        crate::flow::request(&app, &format!("p{i}"), pb::Role::AuthorizedUser).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .access()
            .list_access_requests(authed(
                pb::ListAccessRequestsRequest {
                    icn: ICN.into(),
                    state: 0,
                    page_size: 2,
                    page_token: token.clone(),
                },
                &stc,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.access_requests.len() <= 2);
        seen.extend(page.access_requests.into_iter().map(|r| r.web_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        ["p4", "p3", "p2", "p1", "p0"],
        "newest first, each once"
    );
    let bad = app
        .access()
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                state: 0,
                page_size: 2,
                page_token: "garbage".into(),
            },
            &stc,
        ))
        .await;
    assert_status(bad, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    let audit = app
        .admin()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                icn: ICN.into(),
                page_size: 3,
                page_token: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.audit_events.len(), 3);
    assert!(!audit.next_page_token.is_empty());
    assert!(audit.audit_events[0].audit_event_id > audit.audit_events[1].audit_event_id);
}

crate::both_backends!(
    member_administration,
    site_technical_contacts,
    lists_are_paged
);
