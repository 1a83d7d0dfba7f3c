//! The whole flow of the source document, over real gRPC.

use entitlements::proto::v1 as pb;

use crate::support::*;

/// Operator creates the account, a contract and an STC; the STC verifies their email.
/// Returns the STC's token.
pub async fn setup_account(app: &TestApp) -> String {
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICN.into(),
                company_name: "Acme Corp".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .expect("create account");
    let now = app.clock.now_ms();
    upsert_contract(
        app,
        "C-ALL",
        &[],
        now - 86_400_000,
        now + 365 * 86_400_000,
        true,
    )
    .await;
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc1".into(),
                email: "stc1@example.com".into(),
                given_name: "Sam".into(),
                family_name: "Stc".into(),
            },
            &op,
        ))
        .await
        .expect("add stc");
    let stc = app.person("stc1");
    let code = app.verification_code("stc1@example.com", 1).await;
    let r = app
        .access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &stc,
        ))
        .await
        .expect("verify stc");
    assert!(r.into_inner().email_verified);
    stc
}

pub async fn upsert_contract(
    app: &TestApp,
    id: &str,
    products: &[&str],
    start: i64,
    end: i64,
    x24: bool,
) {
    app.admin()
        .upsert_support_contract(authed(
            pb::UpsertSupportContractRequest {
                request_id: String::new(),
                icn: ICN.into(),
                contract_id: id.into(),
                product_ids: products.iter().map(|p| (*p).to_owned()).collect(),
                start_time: ts(start),
                end_time: ts(end),
                includes_24x7: x24,
            },
            &app.operator(),
        ))
        .await
        .expect("upsert contract");
}

pub async fn request(app: &TestApp, who: &str, role: pb::Role) -> pb::AccessRequest {
    app.access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN.into(),
                country_code: COUNTRY.into(),
                requested_role: role as i32,
            },
            &app.person(who),
        ))
        .await
        .expect("request access")
        .into_inner()
        .access_request
        .expect("access_request")
}

pub async fn approve(
    app: &TestApp,
    admin_token: &str,
    id: &str,
) -> Result<pb::AccessRequest, tonic::Status> {
    app.access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: id.into(),
                granted_role: 0,
                expire_time: None,
            },
            admin_token,
        ))
        .await
        .map(|r| r.into_inner().access_request.expect("access_request"))
}

pub async fn check_as(
    app: &TestApp,
    token: &str,
    web_id: &str,
    action: pb::Action,
    product: &str,
    severity: i32,
) -> Result<pb::CheckEntitlementResponse, tonic::Status> {
    app.entitlement()
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: web_id.into(),
                icn: ICN.into(),
                action: action as i32,
                product_id: product.into(),
                severity,
                consistency_token: String::new(),
                consistency: 0,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

pub async fn check(
    app: &TestApp,
    web_id: &str,
    action: pb::Action,
) -> pb::CheckEntitlementResponse {
    check_as(app, &app.checker(), web_id, action, "", 0)
        .await
        .expect("check")
}

pub async fn reason_of(app: &TestApp, web_id: &str, action: pb::Action) -> pb::DecisionReason {
    let r = check(app, web_id, action).await;
    pb::DecisionReason::try_from(r.reason).expect("known reason")
}

/// A member with a verified email and the given role.
pub async fn verified_member(app: &TestApp, stc: &str, who: &str, role: pb::Role) {
    let req = request(app, who, role).await;
    approve(app, stc, &req.access_request_id)
        .await
        .expect("approve");
    let email = format!("{who}@example.com");
    let code = app.verification_code(&email, 1).await;
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person(who),
        ))
        .await
        .expect("verify");
}

async fn whole_flow(backend: Backend) {
    use pb::Action::*;
    use pb::DecisionReason as R;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;

    // 3-5: a person asks; administrators are emailed; the requester is a Provisional Caller.
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    assert_eq!(req.state, pb::AccessRequestState::Pending as i32);
    assert_eq!(req.requested_role, pb::Role::AuthorizedUser as i32);
    assert_eq!(req.icn, ICN);
    assert_eq!(req.web_id, "ana");
    let admin_mail = app
        .wait_mail("stc1@example.com", &req.access_request_id, 1)
        .await;
    assert!(
        admin_mail[0].contains("ana@example.com"),
        "admin email names the requester"
    );
    assert!(
        admin_mail[0].contains("https://portal.example.com"),
        "and links to the portal the service was configured with (--portal-url)"
    );
    let notice = app
        .wait_mail("ana@example.com", "Provisional Caller", 1)
        .await;
    assert!(notice[0].contains(ICN));
    let r = check(&app, "ana", ViewSupportArea).await;
    assert!(r.allowed);
    assert_eq!(r.role, pb::Role::ProvisionalCaller as i32);
    assert_eq!(
        reason_of(&app, "ana", OpenServiceRequest).await,
        R::RequestPending
    );

    // 7: an administrator lists pending requests and approves.
    let list = app
        .access()
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                state: pb::AccessRequestState::Pending as i32,
                page_size: 0,
                page_token: String::new(),
            },
            &stc,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.access_requests.len(), 1);
    assert_eq!(
        list.access_requests[0].access_request_id,
        req.access_request_id
    );
    assert_eq!(list.access_requests[0].requester_email, "ana@example.com");
    let approved = approve(&app, &stc, &req.access_request_id)
        .await
        .expect("approve");
    assert_eq!(approved.state, pb::AccessRequestState::Approved as i32);
    assert_eq!(approved.granted_role, pb::Role::AuthorizedUser as i32);
    assert_eq!(approved.decided_by, "stc1");
    app.wait_mail("ana@example.com", "approved", 1).await;

    // 6, 8: approved but unverified may not open SRs; after verifying, they may.
    assert_eq!(
        reason_of(&app, "ana", OpenServiceRequest).await,
        R::EmailNotVerified
    );
    let code = app.verification_code("ana@example.com", 1).await;
    let v = app
        .access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code: code.clone(),
            },
            &app.person("ana"),
        ))
        .await
        .unwrap();
    assert!(v.into_inner().email_verified);
    let r = check_as(&app, &app.checker(), "ana", OpenServiceRequest, "db2", 1)
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.reason, R::Granted as i32);
    assert_eq!(r.role, pb::Role::AuthorizedUser as i32);
    assert_eq!(r.contract_id, "C-ALL");
    // A person may check themself without a scope.
    let own = check_as(&app, &app.person("ana"), "ana", OpenServiceRequest, "", 0)
        .await
        .unwrap();
    assert!(own.allowed);

    // The code was single-use.
    let again = app
        .access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("ana"),
        ))
        .await;
    assert_status(
        again,
        tonic::Code::FailedPrecondition,
        "EMAIL_ALREADY_VERIFIED",
    );

    // "My agreements".
    let mine = app
        .access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person("ana")))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.email_verified);
    assert_eq!(mine.email, "ana@example.com");
    assert_eq!(mine.memberships.len(), 1);
    assert_eq!(mine.memberships[0].role, pb::Role::AuthorizedUser as i32);
    assert_eq!(mine.memberships[0].company_name, "Acme Corp");
    assert_eq!(mine.access_requests.len(), 1);

    // 9: later, administrators change the role or remove the member.
    let m = app
        .access()
        .update_member_role(authed(
            pb::UpdateMemberRoleRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "ana".into(),
                role: pb::Role::TechnicalContact as i32,
                expire_time: None,
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .membership
        .unwrap();
    assert_eq!(m.role, pb::Role::TechnicalContact as i32);
    assert!(check(&app, "ana", ManageUsers).await.allowed);
    app.access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "ana".into(),
                reason: "left".into(),
            },
            &stc,
        ))
        .await
        .unwrap();
    assert_eq!(
        reason_of(&app, "ana", OpenServiceRequest).await,
        R::AccessRevoked
    );
    app.wait_mail("ana@example.com", "removed", 1).await;

    // The audit trail recorded each change with its actor.
    let audit = app.audit_events(ICN).await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    for expected in [
        ("account.create", OPERATOR),
        ("contract.create", OPERATOR),
        ("membership.add_site_technical_contact", OPERATOR),
        ("access_request.create", "ana"),
        ("access_request.approve", "stc1"),
        ("membership.update_role", "stc1"),
        ("membership.remove", "stc1"),
    ] {
        assert!(
            actions.contains(&expected),
            "audit has {expected:?}: {actions:?}"
        );
    }
    let removal = audit
        .iter()
        .find(|e| e.action == "membership.remove")
        .unwrap();
    assert_eq!(removal.reason, "left");
    assert!(removal.before_json.contains("TECHNICAL_CONTACT"));
    assert!(removal.after_json.contains("removed_at"));
    // Each event holds what changed: the new state after, the old one before.
    let (before, after) = (false, true);
    let json = |action: &str, after: bool| -> serde_json::Value {
        let e = audit.iter().find(|e| e.action == action).unwrap();
        let side = if after { &e.after_json } else { &e.before_json };
        serde_json::from_str(side).unwrap_or(serde_json::Value::Null)
    };
    assert_eq!(json("account.create", after)["status"], "ACTIVE");
    assert_eq!(json("account.create", after)["icn"], ICN);
    assert_eq!(json("account.create", before), serde_json::Value::Null);
    assert!(json("contract.create", after)["contract_id"].is_string());
    assert_eq!(json("access_request.create", after)["state"], "PENDING");
    assert_eq!(json("access_request.create", after)["web_id"], "ana");
    assert_eq!(json("access_request.approve", before)["state"], "PENDING");
    assert_eq!(json("access_request.approve", after)["state"], "APPROVED");
    assert_eq!(json("access_request.approve", after)["decided_by"], "stc1");
    let stc_added = json("membership.add_site_technical_contact", after);
    assert_eq!(stc_added["role"], "SITE_TECHNICAL_CONTACT");
    assert_eq!(stc_added["web_id"], "stc1");
    let created = audit.iter().find(|e| e.action == "account.create").unwrap();
    assert_eq!(created.reason, "", "no reason given, none recorded");
    // A person's events belong to no account: the operator's unfiltered list has them.
    let everything = app.audit_events("").await;
    let verified = everything
        .iter()
        .find(|e| e.action == "person.verify_email" && e.target_id == "ana")
        .unwrap_or_else(|| panic!("{everything:?}"));
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    let (was, is) = (json(&verified.before_json), json(&verified.after_json));
    assert_eq!(
        (&was["email_verified"], &is["email_verified"]),
        (&false.into(), &true.into())
    );
    assert_eq!(is["email"], "ana@example.com");
}

/// Every decision reason is reachable through the API.
async fn every_reason_is_reachable(backend: Backend) {
    use pb::Action::*;
    use pb::DecisionReason as R;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let checker = app.checker();
    let unknown = app
        .entitlement()
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: "x".into(),
                icn: "999".into(),
                action: OpenServiceRequest as i32,
                ..Default::default()
            },
            &checker,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown.reason, R::UnknownAccount as i32);
    assert_eq!(
        reason_of(&app, "nobody", OpenServiceRequest).await,
        R::NotAMember
    );

    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    assert_eq!(reason_of(&app, "ana", OpenServiceRequest).await, R::Granted);
    assert_eq!(
        reason_of(&app, "ana", ManageUsers).await,
        R::RoleInsufficient
    );

    // Contracts: product lists, 24x7, and time.
    let now = app.clock.now_ms();
    upsert_contract(&app, "C-ALL", &["db2"], now - 1000, now + 10_000, false).await;
    let r = |p: &'static str, s: i32| {
        let app = &app;
        let checker = checker.clone();
        async move {
            check_as(app, &checker, "ana", OpenServiceRequest, p, s)
                .await
                .unwrap()
                .reason
        }
    };
    assert_eq!(r("mq", 3).await, R::ProductNotCovered as i32);
    assert_eq!(r("db2", 1).await, R::SeverityNotCovered as i32);
    assert_eq!(r("db2", 2).await, R::Granted as i32);
    app.clock.advance(10_000);
    assert_eq!(
        r("db2", 2).await,
        R::NoActiveContract as i32,
        "a contract that ends ends access at that instant"
    );

    let bob = request(&app, "bob", pb::Role::AuthorizedUser).await;
    assert_eq!(
        reason_of(&app, "bob", OpenServiceRequest).await,
        R::RequestPending
    );
    app.access()
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: bob.access_request_id,
                reason: "not staff".into(),
            },
            &stc,
        ))
        .await
        .unwrap();
    assert_eq!(
        reason_of(&app, "bob", OpenServiceRequest).await,
        R::RequestDenied
    );
    app.wait_mail("bob@example.com", "not staff", 1).await;

    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: pb::AccountStatus::Suspended as i32,
                reason: "unpaid".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    for a in [OpenServiceRequest, ViewSupportArea, ManageUsers] {
        let d = check(&app, "ana", a).await;
        assert!(!d.allowed);
        assert_eq!(d.reason, R::AccountSuspended as i32);
    }
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: pb::AccountStatus::Active as i32,
                reason: "paid".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    assert_eq!(reason_of(&app, "ana", ViewSupportArea).await, R::Granted);

    // A TC whose email is not verified may not manage users.
    let tc = request(&app, "tina", pb::Role::TechnicalContact).await;
    approve(&app, &stc, &tc.access_request_id).await.unwrap();
    assert_eq!(
        reason_of(&app, "tina", ManageUsers).await,
        R::EmailNotVerified
    );
}

crate::both_backends!(whole_flow, every_reason_is_reachable);
