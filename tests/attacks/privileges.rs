//! Privilege escalation with valid tokens: operator and ticketing calls without their scope,
//! and administering an account one does not administer.

use entitlements::proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use super::{idp_app, mallory};
use crate::flow::{request, setup_account, verified_member};
use crate::support::*;

/// Privileges come from the token's `scope` (or `scp`) claim, spelled exactly.
async fn scope_escalation_is_refused(backend: Backend) {
    let (app, idp) = idp_app(backend).await;
    setup_account(&app).await;
    let person = app.person("mallory");
    let checker = app.checker();
    let mut lookalikes = Vec::new();
    for (claim, value) in [
        ("scope", json!("entitlements.admin2")),
        ("scope", json!("ENTITLEMENTS.ADMIN")),
        ("scope", json!("entitlements")),
        ("scope", json!("entitlements.admin.read")),
        ("roles", json!(["entitlements.admin"])),
        ("groups", json!(["entitlements.admin"])),
        ("entitlements.admin", json!(true)),
    ] {
        let mut c = mallory();
        c[claim] = value;
        lookalikes.push(idp.ed.sign(&c, |_| {}));
    }
    let operators: Vec<&str> = [person.as_str(), checker.as_str()]
        .into_iter()
        .chain(lookalikes.iter().map(String::as_str))
        .collect();
    for token in operators {
        for (rpc, r) in admin_calls(&app, token).await {
            let s = r.expect_err(rpc);
            assert_eq!(s.code(), Code::PermissionDenied, "{rpc}: {s:?}");
            assert_eq!(reason(&s), "ADMIN_SCOPE_REQUIRED", "{rpc}: {s:?}");
        }
    }

    // Asking about someone else, in bulk, listing their accounts or watching everyone's changes
    // takes the check scope.
    let check = pb::CheckEntitlementRequest {
        web_id: "stc1".into(),
        icn: ICN.into(),
        action: pb::Action::OpenServiceRequest as i32,
        ..Default::default()
    };
    let mut ent = app.entitlement();
    assert_status(
        ent.check_entitlement(authed(check.clone(), &person)).await,
        Code::PermissionDenied,
        "CHECK_SCOPE_REQUIRED",
    );
    // A batch answers each check on its own: every one is refused.
    let batch = ent
        .batch_check_entitlements(authed(
            pb::BatchCheckEntitlementsRequest {
                checks: vec![check.clone(), check],
                ..Default::default()
            },
            &person,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 2);
    for r in batch.results {
        match r.outcome {
            Some(pb::batch_check_result::Outcome::Error(e)) => {
                assert_eq!(
                    (e.code.as_str(), e.reason.as_str()),
                    ("PERMISSION_DENIED", "CHECK_SCOPE_REQUIRED")
                );
            }
            other => panic!("a person's batch check was answered: {other:?}"),
        }
    }
    // So does listing someone else's accounts.
    assert_status(
        ent.list_entitlements(authed(
            pb::ListEntitlementsRequest {
                web_id: "stc1".into(),
                ..Default::default()
            },
            &person,
        ))
        .await,
        Code::PermissionDenied,
        "CHECK_SCOPE_REQUIRED",
    );
    let watch = ent
        .watch_entitlement_changes(authed(
            pb::WatchEntitlementChangesRequest::default(),
            &person,
        ))
        .await;
    let refusal = match watch {
        Err(s) => s,
        Ok(stream) => stream
            .into_inner()
            .message()
            .await
            .expect_err("a person may not watch the feed"),
    };
    assert_eq!(refusal.code(), Code::PermissionDenied, "{refusal:?}");
    assert_eq!(reason(&refusal), "CHECK_SCOPE_REQUIRED");
}

fn unit<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(|_| ())
}

/// Every `AccountAdminService` call, named, as `token`.
async fn admin_calls(app: &TestApp, token: &str) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let mut admin = app.admin();
    let now = app.clock.now_ms();
    vec![
        (
            "CreateAccount",
            unit(
                admin
                    .create_account(authed(
                        pb::CreateAccountRequest {
                            request_id: String::new(),
                            icn: "7777777".into(),
                            company_name: "Mallory Ltd".into(),
                            country_code: COUNTRY.into(),
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "GetAccount",
            unit(
                admin
                    .get_account(authed(pb::GetAccountRequest { icn: ICN.into() }, token))
                    .await,
            ),
        ),
        (
            "SetAccountStatus",
            unit(
                admin
                    .set_account_status(authed(
                        pb::SetAccountStatusRequest {
                            icn: ICN.into(),
                            status: pb::AccountStatus::Suspended as i32,
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "AddSiteTechnicalContact",
            unit(
                admin
                    .add_site_technical_contact(authed(
                        pb::AddSiteTechnicalContactRequest {
                            request_id: String::new(),
                            icn: ICN.into(),
                            web_id: "mallory".into(),
                            email: "mallory@example.com".into(),
                            given_name: "Mal".into(),
                            family_name: "Lory".into(),
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "RemoveSiteTechnicalContact",
            unit(
                admin
                    .remove_site_technical_contact(authed(
                        pb::RemoveSiteTechnicalContactRequest {
                            icn: ICN.into(),
                            web_id: "stc1".into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "UpsertSupportContract",
            unit(
                admin
                    .upsert_support_contract(authed(
                        pb::UpsertSupportContractRequest {
                            request_id: String::new(),
                            icn: ICN.into(),
                            contract_id: "C-MAL".into(),
                            product_ids: vec![],
                            start_time: ts(now),
                            end_time: ts(now + 86_400_000),
                            includes_24x7: true,
                        },
                        token,
                    ))
                    .await,
            ),
        ),
        (
            "ListAuditEvents",
            unit(
                admin
                    .list_audit_events(authed(
                        pb::ListAuditEventsRequest {
                            icn: ICN.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await,
            ),
        ),
    ]
}

/// Administrators administer their own accounts only; members are not administrators.
async fn a_person_cannot_act_on_another_account(backend: Backend) {
    let (app, _idp) = idp_app(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "bob", pb::Role::AuthorizedUser).await;
    let pending = request(&app, "ana", pb::Role::TechnicalContact).await;
    let id = pending.access_request_id.clone();

    // Mallory is the verified STC of another account.
    let other = "7654321";
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: other.into(),
                company_name: "Mallory Ltd".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: other.into(),
                web_id: "mallory".into(),
                email: "mallory@example.com".into(),
                given_name: "Mal".into(),
                family_name: "Lory".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let code = app.verification_code("mallory@example.com", 1).await;
    let mallory = app.person("mallory");
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &mallory,
        ))
        .await
        .unwrap();

    // Bob is a member of the account, not an administrator.
    let bob = app.person("bob");
    for (who, token) in [("mallory", &mallory), ("bob", &bob)] {
        let mut access = app.access();
        let results = [
            (
                "ListMembers",
                access
                    .list_members(authed(
                        pb::ListMembersRequest {
                            icn: ICN.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "ListAccessRequests",
                access
                    .list_access_requests(authed(
                        pb::ListAccessRequestsRequest {
                            icn: ICN.into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "ApproveRequest",
                access
                    .approve_request(authed(
                        pb::ApproveRequestRequest {
                            request_id: String::new(),
                            access_request_id: id.clone(),
                            granted_role: 0,
                            expire_time: None,
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "DenyRequest",
                access
                    .deny_request(authed(
                        pb::DenyRequestRequest {
                            request_id: String::new(),
                            access_request_id: id.clone(),
                            reason: "no".into(),
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "UpdateMemberRole",
                access
                    .update_member_role(authed(
                        pb::UpdateMemberRoleRequest {
                            request_id: String::new(),
                            icn: ICN.into(),
                            web_id: if who == "bob" { "ana" } else { "bob" }.into(),
                            role: pb::Role::TechnicalContact as i32,
                            expire_time: None,
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "RemoveMember",
                access
                    .remove_member(authed(
                        pb::RemoveMemberRequest {
                            request_id: String::new(),
                            icn: ICN.into(),
                            web_id: "stc1".into(),
                            reason: "takeover".into(),
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
            (
                "CertifyMember",
                access
                    .certify_member(authed(
                        pb::CertifyMemberRequest {
                            request_id: String::new(),
                            icn: ICN.into(),
                            web_id: if who == "bob" { "ana" } else { "bob" }.into(),
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            ),
        ];
        for (rpc, r) in results {
            let s = r.expect_err(&format!("{who} {rpc}"));
            assert_eq!(s.code(), Code::PermissionDenied, "{who} {rpc}: {s:?}");
            assert_eq!(reason(&s), "NOT_AN_ADMINISTRATOR", "{who} {rpc}: {s:?}");
        }
    }
    assert_status(
        app.access()
            .withdraw_request(authed(
                pb::WithdrawRequestRequest {
                    access_request_id: id.clone(),
                    ..Default::default()
                },
                &mallory,
            ))
            .await,
        Code::PermissionDenied,
        "NOT_YOUR_REQUEST",
    );
    // Nothing changed: the request is still pending, and the account's STC still decides.
    let approved = crate::flow::approve(&app, &stc, &id).await.unwrap();
    assert_eq!(approved.state, pb::AccessRequestState::Approved as i32);
}

crate::both_backends!(
    scope_escalation_is_refused,
    a_person_cannot_act_on_another_account,
);
