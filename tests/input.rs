//! Bad input gets INVALID_ARGUMENT (naming the field) or UNAUTHENTICATED, and writes nothing.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::setup_account;
use crate::support::*;

async fn audit_count(app: &TestApp) -> usize {
    app.audit_events("").await.len()
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let before = audit_count(&app).await;
    let ana = app.person("ana");
    let op = app.operator();
    let mut access = app.access();
    let mut admin = app.admin();
    let mut ent = app.entitlement();
    let ra = |icn: &str, country: &str, role: i32| pb::RequestAccessRequest {
        request_id: String::new(),
        icn: icn.into(),
        country_code: country.into(),
        requested_role: role,
    };
    let au = pb::Role::AuthorizedUser as i32;

    let cases: Vec<(
        &str,
        Result<tonic::Response<pb::RequestAccessResponse>, tonic::Status>,
    )> = vec![
        (
            "icn",
            access
                .request_access(authed(ra("12a4567", COUNTRY, au), &ana))
                .await,
        ),
        (
            "icn",
            access
                .request_access(authed(ra("12345678901", COUNTRY, au), &ana))
                .await,
        ),
        (
            "icn",
            access
                .request_access(authed(ra("", COUNTRY, au), &ana))
                .await,
        ),
        (
            "icn",
            access
                .request_access(authed(ra(" 1234567", COUNTRY, au), &ana))
                .await,
        ),
        (
            "country_code",
            access
                .request_access(authed(ra(ICN, "USA", au), &ana))
                .await,
        ),
        (
            "country_code",
            access.request_access(authed(ra(ICN, "", au), &ana)).await,
        ),
        (
            "requested_role",
            access
                .request_access(authed(ra(ICN, COUNTRY, 99), &ana))
                .await,
        ),
        (
            "requested_role",
            access
                .request_access(authed(ra(ICN, COUNTRY, -1), &ana))
                .await,
        ),
    ];
    for (field, r) in cases {
        let s = assert_status(r, Code::InvalidArgument, "");
        assert_eq!(field_violation(&s).as_deref(), Some(field), "{s:?}");
        assert!(
            s.message().contains(field),
            "message names the field: {}",
            s.message()
        );
    }

    let huge = "x".repeat(1 << 20);
    let r = admin
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: "555".into(),
                company_name: huge.clone(),
                country_code: "US".into(),
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("company_name")
    );
    let r = admin
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "big".into(),
                email: "big@example.com".into(),
                given_name: huge,
                family_name: String::new(),
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("given_name")
    );
    let r = admin
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                icn: ICN.into(),
                web_id: "big".into(),
                email: "not-an-email".into(),
                ..Default::default()
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("email")
    );
    let r = admin
        .upsert_support_contract(authed(
            pb::UpsertSupportContractRequest {
                icn: ICN.into(),
                contract_id: "C9".into(),
                start_time: ts(2000),
                end_time: ts(1000),
                ..Default::default()
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("end_time")
    );
    let r = admin
        .upsert_support_contract(authed(
            pb::UpsertSupportContractRequest {
                request_id: String::new(),
                icn: ICN.into(),
                contract_id: "C9".into(),
                product_ids: vec!["ok".into(), "bad id".into()],
                start_time: ts(1000),
                end_time: ts(2000),
                includes_24x7: false,
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("product_ids[1]")
    );
    let r = admin
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: 7,
                reason: String::new(),
            },
            &op,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("status")
    );

    let chk = |action: i32, severity: i32, icn: &str| pb::CheckEntitlementRequest {
        web_id: "ana".into(),
        icn: icn.into(),
        action,
        product_id: String::new(),
        severity,
        consistency_token: String::new(),
        consistency: 0,
    };
    let checker = app.checker();
    for (field, req) in [
        ("action", chk(42, 0, ICN)),
        ("action", chk(0, 0, ICN)),
        ("severity", chk(1, 5, ICN)),
        ("severity", chk(1, -1, ICN)),
        ("icn", chk(1, 0, "abc")),
    ] {
        let s = assert_status(
            ent.check_entitlement(authed(req, &checker)).await,
            Code::InvalidArgument,
            "",
        );
        assert_eq!(field_violation(&s).as_deref(), Some(field));
    }
    let r = access
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: "not-a-uuid".into(),
                granted_role: 0,
                expire_time: None,
            },
            &ana,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("access_request_id")
    );
    let r = access
        .list_members(authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                page_size: -5,
                page_token: String::new(),
            },
            &ana,
        ))
        .await;
    assert_eq!(
        field_violation(&assert_status(r, Code::InvalidArgument, "")).as_deref(),
        Some("page_size")
    );

    // Tokens: missing, malformed, wrong signature, expired, wrong audience.
    let msg = || ra(ICN, COUNTRY, au);
    assert_status(
        access.request_access(tonic::Request::new(msg())).await,
        Code::Unauthenticated,
        "",
    );
    for bad in ["garbage", "a.b.c", &format!("{ana}x")] {
        let s = assert_status(
            access.request_access(authed(msg(), bad)).await,
            Code::Unauthenticated,
            "",
        );
        assert!(!reason(&s).is_empty(), "ErrorInfo on {s:?}");
    }
    let mut raw = tonic::Request::new(msg());
    raw.metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_status(access.request_access(raw).await, Code::Unauthenticated, "");
    let mut wrong_aud = entitlements::auth::dev::MintRequest::new("ana");
    wrong_aud.audience = "someone-else".into();
    let s = assert_status(
        access
            .request_access(authed(msg(), &app.key.mint(&wrong_aud).unwrap()))
            .await,
        Code::Unauthenticated,
        "",
    );
    assert!(!reason(&s).is_empty());

    // Nothing above wrote anything.
    assert_eq!(
        audit_count(&app).await,
        before,
        "refused calls wrote no audit events"
    );
    let mine = access
        .get_my_access(authed(pb::GetMyAccessRequest {}, &ana))
        .await
        .unwrap()
        .into_inner();
    assert!(mine.access_requests.is_empty());
}

crate::both_backends!(bad_input_is_refused_and_writes_nothing);
