//! Email-domain policies (issue 9): who keeps them, what RequestAccess does under each action,
//! what is audited and emailed, and how the fields are checked.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{check, reason_of, setup_account, verified_member};
use crate::support::*;

const OTHER_ICN: &str = "7654321";

fn set(
    domain: &str,
    action: pb::EmailDomainAction,
    role: pb::Role,
) -> pb::SetEmailDomainPolicyRequest {
    pb::SetEmailDomainPolicyRequest {
        request_id: String::new(),
        icn: ICN.into(),
        domain: domain.into(),
        action: action as i32,
        role: role as i32,
    }
}

fn delete(domain: &str) -> pb::DeleteEmailDomainPolicyRequest {
    pb::DeleteEmailDomainPolicyRequest {
        request_id: String::new(),
        icn: ICN.into(),
        domain: domain.into(),
    }
}

fn list(icn: &str, page_size: i32, page_token: &str) -> pb::ListEmailDomainPoliciesRequest {
    pb::ListEmailDomainPoliciesRequest {
        icn: icn.into(),
        page_size,
        page_token: page_token.into(),
    }
}

/// A person whose token carries `email`.
fn person_at(app: &TestApp, sub: &str, email: &str) -> String {
    app.token(sub, Some(email), &[])
}

async fn ask(
    app: &TestApp,
    token: &str,
    role: pb::Role,
) -> Result<pb::AccessRequest, tonic::Status> {
    app.access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN.into(),
                country_code: COUNTRY.into(),
                requested_role: role as i32,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().access_request.expect("access_request"))
}

async fn email_domain_actions(backend: Backend) {
    use pb::Action::*;
    use pb::DecisionReason as R;
    use pb::EmailDomainAction as A;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    let mut access = app.access();

    // An STC approves partner.example automatically (given in any case, kept lowercase; the
    // role defaults to Authorized User), holds hold.example and refuses bad.example.
    let p = access
        .set_email_domain_policy(authed(
            set("Partner.EXAMPLE", A::AutoApprove, pb::Role::Unspecified),
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .email_domain_policy
        .unwrap();
    assert_eq!(p.domain, "partner.example");
    assert_eq!(p.action, A::AutoApprove as i32);
    assert_eq!(p.role, pb::Role::AuthorizedUser as i32);
    assert_eq!(p.created_by, "stc1");
    access
        .set_email_domain_policy(authed(
            set("hold.example", A::Hold, pb::Role::Unspecified),
            &stc,
        ))
        .await
        .unwrap();
    access
        .set_email_domain_policy(authed(
            set("bad.example", A::Refuse, pb::Role::Unspecified),
            &app.operator(),
        ))
        .await
        .unwrap();

    // AUTO_APPROVE, on a warm cache: zoe is checked (a non-member) before she asks.
    assert_eq!(
        reason_of(&app, "zoe", OpenServiceRequest).await,
        R::NotAMember
    );
    let zoe = person_at(&app, "zoe", "zoe@partner.example");
    // She asks to be a Technical Contact; an automatic approval grants Authorized User at most.
    let r = ask(&app, &zoe, pb::Role::TechnicalContact).await.unwrap();
    assert_eq!(r.state, pb::AccessRequestState::Approved as i32);
    assert_eq!(r.granted_role, pb::Role::AuthorizedUser as i32);
    let c = check(&app, "zoe", ViewSupportArea).await;
    assert!(c.allowed, "{c:?}");
    assert_eq!(c.role, pb::Role::AuthorizedUser as i32);
    // Still to verify her address before opening service requests, as after any approval.
    assert_eq!(
        reason_of(&app, "zoe", OpenServiceRequest).await,
        R::EmailNotVerified
    );
    let approved = app
        .wait_mail("zoe@partner.example", "Access approved", 1)
        .await;
    assert!(approved[0].contains("Authorized User"));
    let code = app.verification_code("zoe@partner.example", 1).await;
    access
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &zoe,
        ))
        .await
        .unwrap();
    assert_eq!(reason_of(&app, "zoe", OpenServiceRequest).await, R::Granted);
    // The administrators are told it happened automatically, not asked to decide.
    for admin in ["stc1@example.com", "tom@example.com"] {
        let told = app.wait_mail(admin, "approved automatically", 1).await;
        assert!(told[0].contains("zoe@partner.example") && told[0].contains("partner.example"));
        assert!(
            !app.mails_to(admin)
                .iter()
                .any(|m| m.contains(&r.access_request_id) && m.contains("has asked for access"))
        );
    }
    // Audited as the system's decision, naming the rule.
    let events = app.audit_events(ICN).await;
    let of = |action: &str| {
        events
            .iter()
            .find(|e| e.action == action && e.target_id == r.access_request_id)
            .unwrap_or_else(|| panic!("{action} for {}: {events:?}", r.access_request_id))
            .clone()
    };
    let created = of("access_request.create");
    assert_eq!(created.actor, "zoe");
    assert!(created.reason.contains("partner.example"), "{created:?}");
    let decided = of("access_request.approve");
    assert_eq!(decided.actor, "system");
    assert!(
        decided.reason.contains("email-domain policy")
            && decided.reason.contains("partner.example"),
        "{decided:?}"
    );
    let set_event = events
        .iter()
        .find(|e| {
            e.action == "email_domain_policy.set" && e.target_id == format!("{ICN}/partner.example")
        })
        .expect("policy set audited");
    assert_eq!(set_event.actor, "stc1");
    // An administrator reading the request sees "system" decided it.
    let listed = access
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                state: 0,
                page_size: 50,
                page_token: String::new(),
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_requests;
    let seen = listed
        .iter()
        .find(|x| x.access_request_id == r.access_request_id)
        .unwrap();
    assert_eq!(seen.decided_by, "system");

    // A subdomain is not the domain: held.
    let eu = person_at(&app, "eve", "eve@eu.partner.example");
    assert_eq!(
        ask(&app, &eu, pb::Role::AuthorizedUser)
            .await
            .unwrap()
            .state,
        pb::AccessRequestState::Pending as i32
    );
    // HOLD and an unlisted domain: today's behaviour, the administrators decide.
    for (who, email) in [("yan", "yan@hold.example"), ("xia", "xia@other.example")] {
        let t = person_at(&app, who, email);
        let r = ask(&app, &t, pb::Role::AuthorizedUser).await.unwrap();
        assert_eq!(r.state, pb::AccessRequestState::Pending as i32);
        app.wait_mail("stc1@example.com", &r.access_request_id, 1)
            .await;
        assert_eq!(
            reason_of(&app, who, OpenServiceRequest).await,
            R::RequestPending
        );
    }

    // REFUSE: FAILED_PRECONDITION, and nothing is stored (no request, no person record).
    let wes = person_at(&app, "wes", "wes@Bad.Example");
    assert_status(
        ask(&app, &wes, pb::Role::AuthorizedUser).await,
        Code::FailedPrecondition,
        "EMAIL_DOMAIN_REFUSED",
    );
    let mine = access
        .get_my_access(authed(pb::GetMyAccessRequest {}, &wes))
        .await
        .unwrap()
        .into_inner();
    assert!(
        mine.access_requests.is_empty() && mine.memberships.is_empty(),
        "{mine:?}"
    );
    assert!(!mine.email_verified);
    assert_eq!(
        reason_of(&app, "wes", OpenServiceRequest).await,
        R::NotAMember
    );
    assert!(
        app.mails_to("wes@Bad.Example").is_empty() && app.mails_to("wes@bad.example").is_empty()
    );
    // Refused for an account that does not exist in that country is still ACCOUNT_NOT_FOUND.
    let s = app
        .access()
        .request_access(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN.into(),
                country_code: "DE".into(),
                requested_role: pb::Role::AuthorizedUser as i32,
            },
            &wes,
        ))
        .await;
    assert_status(s, Code::NotFound, "ACCOUNT_NOT_FOUND");

    // Setting the same again changes nothing; moving a domain to another action does.
    let again = access
        .set_email_domain_policy(authed(
            set("partner.example", A::AutoApprove, pb::Role::AuthorizedUser),
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .email_domain_policy
        .unwrap();
    assert_eq!(again.created_by, "stc1");
    // The list, by domain, in pages.
    let page = access
        .list_email_domain_policies(authed(list(ICN, 2, ""), &stc))
        .await
        .unwrap()
        .into_inner();
    let domains: Vec<&str> = page
        .email_domain_policies
        .iter()
        .map(|p| p.domain.as_str())
        .collect();
    assert_eq!(domains, ["bad.example", "hold.example"]);
    let rest = access
        .list_email_domain_policies(authed(list(ICN, 2, &page.next_page_token), &stc))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.email_domain_policies.len(), 1);
    assert_eq!(rest.email_domain_policies[0].domain, "partner.example");
    assert!(rest.next_page_token.is_empty());

    // Deleted, the domain is held again; deleting what is not there is NOT_FOUND.
    let gone = access
        .delete_email_domain_policy(authed(delete("PARTNER.example"), &stc))
        .await
        .unwrap()
        .into_inner()
        .email_domain_policy
        .unwrap();
    assert_eq!(gone.action, A::AutoApprove as i32);
    assert!(
        app.audit_events(ICN)
            .await
            .iter()
            .any(|e| e.action == "email_domain_policy.delete" && e.actor == "stc1")
    );
    let una = person_at(&app, "una", "una@partner.example");
    assert_eq!(
        ask(&app, &una, pb::Role::AuthorizedUser)
            .await
            .unwrap()
            .state,
        pb::AccessRequestState::Pending as i32
    );
    assert_status(
        access
            .delete_email_domain_policy(authed(delete("partner.example"), &stc))
            .await,
        Code::NotFound,
        "EMAIL_DOMAIN_POLICY_NOT_FOUND",
    );
}

async fn verified_stc(app: &TestApp, icn: &str, web_id: &str) -> String {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: icn.into(),
                web_id: web_id.into(),
                email: format!("{web_id}@example.com"),
                given_name: "S".into(),
                family_name: "T".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("add stc");
    let token = app.person(web_id);
    let code = app
        .verification_code(&format!("{web_id}@example.com"), 1)
        .await;
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &token,
        ))
        .await
        .expect("verify");
    token
}

async fn who_manages_email_domains(backend: Backend) {
    use pb::EmailDomainAction as A;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: OTHER_ICN.into(),
                company_name: "Other".into(),
                country_code: COUNTRY.into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    let other_stc = verified_stc(&app, OTHER_ICN, "stc2").await;
    // An STC who has not verified their address yet.
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc3".into(),
                email: "stc3@example.com".into(),
                given_name: "S".into(),
                family_name: "T".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    let mut access = app.access();
    let hold = || set("x.example", A::Hold, pb::Role::Unspecified);

    // Operators and the account's verified STCs may set, list and delete.
    for token in [app.operator(), stc.clone()] {
        access
            .set_email_domain_policy(authed(hold(), &token))
            .await
            .unwrap();
        access
            .list_email_domain_policies(authed(list(ICN, 0, ""), &token))
            .await
            .unwrap();
        access
            .delete_email_domain_policy(authed(delete("x.example"), &token))
            .await
            .unwrap();
    }
    // Everyone else, with the exact reason.
    let refusals = [
        (
            app.person("tom"),
            Code::PermissionDenied,
            "SITE_TECHNICAL_CONTACT_REQUIRED",
        ),
        (
            app.person("ana"),
            Code::PermissionDenied,
            "NOT_AN_ADMINISTRATOR",
        ),
        (
            other_stc.clone(),
            Code::PermissionDenied,
            "NOT_AN_ADMINISTRATOR",
        ),
        (
            app.person("pat"),
            Code::PermissionDenied,
            "NOT_AN_ADMINISTRATOR",
        ),
        (
            app.checker(),
            Code::PermissionDenied,
            "NOT_AN_ADMINISTRATOR",
        ),
        (
            app.person("stc3"),
            Code::PermissionDenied,
            "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
        ),
    ];
    for (token, code, why) in &refusals {
        assert_status(
            access.set_email_domain_policy(authed(hold(), token)).await,
            *code,
            why,
        );
        assert_status(
            access
                .list_email_domain_policies(authed(list(ICN, 0, ""), token))
                .await,
            *code,
            why,
        );
        assert_status(
            access
                .delete_email_domain_policy(authed(delete("x.example"), token))
                .await,
            *code,
            why,
        );
    }
    // The other account's STC keeps their own account's list.
    access
        .set_email_domain_policy(authed(
            pb::SetEmailDomainPolicyRequest {
                icn: OTHER_ICN.into(),
                ..hold()
            },
            &other_stc,
        ))
        .await
        .unwrap();
    // An account that does not exist: NOT_FOUND to operators, as any foreign account to others.
    let ghost = || pb::SetEmailDomainPolicyRequest {
        icn: "5555555".into(),
        ..hold()
    };
    assert_status(
        access
            .set_email_domain_policy(authed(ghost(), &app.operator()))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_status(
        access.set_email_domain_policy(authed(ghost(), &stc)).await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        access
            .list_email_domain_policies(authed(list("5555555", 0, ""), &stc))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    // A suspended account: its STCs keep nothing; operators still may.
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: pb::AccountStatus::Suspended as i32,
                reason: "test".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    assert_status(
        access.set_email_domain_policy(authed(hold(), &stc)).await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );
    access
        .set_email_domain_policy(authed(hold(), &app.operator()))
        .await
        .unwrap();
    // Nothing refused was written.
    let events = app.audit_events(ICN).await;
    let sets: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "email_domain_policy.set")
        .map(|e| e.actor.as_str())
        .collect();
    assert_eq!(sets, [OPERATOR, "stc1", OPERATOR], "newest first");
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str, why: &str) {
    let s = assert_status(r, Code::InvalidArgument, why);
    assert_eq!(field_violation(&s).as_deref(), Some(field), "{s:?}");
}

async fn email_domain_fields_are_validated(backend: Backend) {
    use pb::EmailDomainAction as A;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let mut access = app.access();
    let ok = set("good.example", A::Hold, pb::Role::Unspecified);
    invalid(
        access
            .set_email_domain_policy(authed(
                pb::SetEmailDomainPolicyRequest {
                    icn: "12a".into(),
                    ..ok.clone()
                },
                &stc,
            ))
            .await,
        "icn",
        "INVALID_ARGUMENT",
    );
    for domain in [
        "",
        "*.example.com",
        "ana@example.com",
        "com",
        "exa mple.com",
        "-x.example",
        "a..example",
        "x_y.example",
    ] {
        invalid(
            access
                .set_email_domain_policy(authed(
                    pb::SetEmailDomainPolicyRequest {
                        domain: domain.into(),
                        ..ok.clone()
                    },
                    &stc,
                ))
                .await,
            "domain",
            "INVALID_ARGUMENT",
        );
        invalid(
            access
                .delete_email_domain_policy(authed(delete(domain), &stc))
                .await,
            "domain",
            "INVALID_ARGUMENT",
        );
    }
    for action in [0, 99] {
        invalid(
            access
                .set_email_domain_policy(authed(
                    pb::SetEmailDomainPolicyRequest {
                        action,
                        ..ok.clone()
                    },
                    &stc,
                ))
                .await,
            "action",
            "INVALID_ARGUMENT",
        );
    }
    // Nothing above Authorized User is granted automatically; HOLD and REFUSE take no role.
    for (action, role) in [
        (A::AutoApprove, pb::Role::TechnicalContact),
        (A::AutoApprove, pb::Role::SiteTechnicalContact),
        (A::AutoApprove, pb::Role::ProvisionalCaller),
        (A::Hold, pb::Role::AuthorizedUser),
        (A::Refuse, pb::Role::AuthorizedUser),
    ] {
        invalid(
            access
                .set_email_domain_policy(authed(set("good.example", action, role), &stc))
                .await,
            "role",
            "INVALID_ARGUMENT",
        );
    }
    invalid(
        access
            .set_email_domain_policy(authed(
                pb::SetEmailDomainPolicyRequest {
                    role: 42,
                    ..ok.clone()
                },
                &stc,
            ))
            .await,
        "role",
        "INVALID_ARGUMENT",
    );
    invalid(
        access
            .list_email_domain_policies(authed(list(ICN, -1, ""), &stc))
            .await,
        "page_size",
        "INVALID_ARGUMENT",
    );
    invalid(
        access
            .list_email_domain_policies(authed(list(ICN, 0, "bogus"), &stc))
            .await,
        "page_token",
        "INVALID_PAGE_TOKEN",
    );
    // None of it was stored.
    let all = access
        .list_email_domain_policies(authed(list(ICN, 0, ""), &stc))
        .await
        .unwrap()
        .into_inner();
    assert!(all.email_domain_policies.is_empty());
}

/// `entitlements ctl set-|list-|delete-email-domain-policy` (a child process, against the server).
async fn ctl_keeps_email_domain_policies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
        cmd.arg("ctl")
            .arg(format!("--server=http://{}", app.addr))
            .arg(format!("--token={stc}"))
            .arg("--output=json")
            .args(args);
        for var in ["ENTITLEMENTS_SERVER", "ENTITLEMENTS_TOKEN"] {
            cmd.env_remove(var);
        }
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let icn = format!("--icn={ICN}");
    let (ok, out, err) = run(&[
        "set-email-domain-policy",
        &icn,
        "--domain=Partner.Example",
        "--action=auto-approve",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("\"domain\":\"partner.example\"") && out.contains("ROLE_AUTHORIZED_USER"),
        "{out}"
    );
    let (ok, _, err) = run(&[
        "set-email-domain-policy",
        &icn,
        "--domain=bad.example",
        "--action=refuse",
    ])
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["list-email-domain-policies", &icn]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("EMAIL_DOMAIN_ACTION_REFUSE")
            && out.contains("EMAIL_DOMAIN_ACTION_AUTO_APPROVE"),
        "{out}"
    );
    let (ok, _, err) = run(&[
        "delete-email-domain-policy",
        &icn,
        "--domain=partner.example",
    ])
    .await;
    assert!(ok, "{err}");
    // A role for HOLD: the server's INVALID_ARGUMENT, naming the field.
    let (ok, _, err) = run(&[
        "set-email-domain-policy",
        &icn,
        "--domain=x.example",
        "--action=hold",
        "--role=authorized-user",
    ])
    .await;
    assert!(!ok && err.contains("role"), "{err}");
    let (_, out, _) = run(&["list-email-domain-policies", &icn]).await;
    assert!(
        out.contains("bad.example") && !out.contains("partner.example"),
        "{out}"
    );
}

/// Setting a domain's policy again changes it in place: the new action and role, a new update
/// time, who first set it and when kept; setting what is already set writes and audits nothing.
async fn a_policy_set_again_changes_in_place(backend: Backend) {
    use pb::EmailDomainAction as A;
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let put = |action: A, role: pb::Role| {
        let (app, stc) = (&app, &stc);
        async move {
            app.access()
                .set_email_domain_policy(authed(set("partner.example", action, role), stc))
                .await
                .unwrap()
                .into_inner()
                .email_domain_policy
                .expect("email_domain_policy")
        }
    };
    let first = put(A::AutoApprove, pb::Role::Unspecified).await;
    assert_eq!(first.role, pb::Role::AuthorizedUser as i32, "{first:?}");
    app.clock.advance(60_000);
    let held = put(A::Hold, pb::Role::Unspecified).await;
    assert_eq!(
        (held.action, held.role),
        (A::Hold as i32, pb::Role::Unspecified as i32),
        "{held:?}"
    );
    assert_eq!(
        (&held.created_by, held.create_time),
        (&first.created_by, first.create_time),
        "who first set it, and when, are kept"
    );
    let seconds = |p: &pb::EmailDomainPolicy| p.update_time.as_ref().map(|t| t.seconds);
    assert_eq!(
        seconds(&held),
        seconds(&first).map(|s| s + 60),
        "{held:?} / {first:?}"
    );
    // Between two actions without a role, only the action changes.
    app.clock.advance(60_000);
    let refused = put(A::Refuse, pb::Role::Unspecified).await;
    assert_eq!(refused.action, A::Refuse as i32, "{refused:?}");
    let listed = app
        .access()
        .list_email_domain_policies(authed(list(ICN, 10, ""), &stc))
        .await
        .unwrap()
        .into_inner()
        .email_domain_policies;
    assert_eq!(listed, vec![refused.clone()]);
    // Each change is audited with the policy before and after it.
    let sets: Vec<(serde_json::Value, serde_json::Value)> = app
        .audit_events(ICN)
        .await
        .into_iter()
        .filter(|e| e.action == "email_domain_policy.set")
        .map(|e| {
            let json = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
            (json(&e.before_json), json(&e.after_json))
        })
        .collect();
    let hold_to_refuse = sets
        .iter()
        .find(|(_, after)| after["action"] == "REFUSE")
        .unwrap_or_else(|| panic!("{sets:?}"));
    assert_eq!(hold_to_refuse.0["action"], "HOLD", "{sets:?}");
    assert_eq!(hold_to_refuse.1["domain"], "partner.example", "{sets:?}");
    assert!(
        sets.iter()
            .any(|(_, after)| after["action"] == "AUTO_APPROVE"
                && after["role"] == "AUTHORIZED_USER"),
        "{sets:?}"
    );
    // The same again: the policy as it was, and no new audit event.
    let events = app.audit_events(ICN).await.len();
    app.clock.advance(60_000);
    let again = put(A::Refuse, pb::Role::Unspecified).await;
    assert_eq!(again, refused);
    assert_eq!(
        app.audit_events(ICN).await.len(),
        events,
        "setting what is set is not audited"
    );
}

crate::both_backends!(
    a_policy_set_again_changes_in_place,
    ctl_keeps_email_domain_policies,
    email_domain_actions,
    who_manages_email_domains,
    email_domain_fields_are_validated
);
