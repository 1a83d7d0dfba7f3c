//! Why not, and what next: every refusal's next step over gRPC, with the names, dates and
//! contracts a form shows, and what a person who does not belong to an account is not told.

use entitlements::proto::v1 as pb;
use pb::Action::{ManageUsers, OpenServiceRequest, ViewSupportArea};
use pb::NextStepKind as K;

use crate::flow::{approve, request, setup_account, upsert_contract, verified_member};
use crate::support::*;

const DAY: i64 = 86_400_000;
const OTHER_ICN: &str = "7654321";
/// The STC of `setup_account`, as a form shows them (the names of their token, which they
/// verified their email with).
const SAM: &str = "stc1-given stc1-family";

/// One check, read from the database (no cache lag to wait for).
async fn ask(
    app: &TestApp,
    token: &str,
    web_id: &str,
    icn: &str,
    (action, product, severity): (pb::Action, &str, i32),
) -> pb::CheckEntitlementResponse {
    app.entitlement()
        .check_entitlement(authed(
            pb::CheckEntitlementRequest {
                web_id: web_id.into(),
                icn: icn.into(),
                action: action as i32,
                product_id: product.into(),
                severity,
                consistency_token: String::new(),
                consistency: pb::Consistency::FullyConsistent as i32,
            },
            token,
        ))
        .await
        .expect("check")
        .into_inner()
}

fn open(product: &str, severity: i32) -> (pb::Action, &str, i32) {
    (OpenServiceRequest, product, severity)
}

fn plain(action: pb::Action) -> (pb::Action, &'static str, i32) {
    (action, "", 0)
}

/// The answer's step, which a refusal always has.
#[track_caller]
fn step(r: &pb::CheckEntitlementResponse, kind: K) -> pb::NextStep {
    assert!(!r.allowed, "{r:?}");
    let s = r.next_step.clone().expect("a refusal has a next step");
    assert_eq!(s.kind, kind as i32, "{r:?}");
    s
}

fn millis(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

fn group(s: &pb::NextStep) -> pb::DeciderGroup {
    pb::DeciderGroup::try_from(s.decider_group).expect("known group")
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

async fn deny(app: &TestApp, stc: &str, id: &str) -> i64 {
    let r = app
        .access()
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.into(),
                reason: "not on our staff list".into(),
            },
            stc,
        ))
        .await
        .expect("deny")
        .into_inner()
        .access_request
        .expect("access_request");
    millis(r.update_time.as_ref()).expect("update_time")
}

async fn remove(app: &TestApp, stc: &str, who: &str) {
    app.access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: who.into(),
                reason: "left".into(),
            },
            stc,
        ))
        .await
        .expect("remove");
}

/// The steps that come of who the person is: a stranger, a requester, a denied or removed
/// one, an unverified member, a member whose role is too low; and of a mistyped account.
async fn each_standing_has_its_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let checker = app.checker();

    // A mistyped customer number: the ticketing system is told to check it.
    let r = ask(&app, &checker, "zed", OTHER_ICN, plain(ViewSupportArea)).await;
    assert_eq!(r.reason, pb::DecisionReason::UnknownAccount as i32);
    step(&r, K::CheckAccountNumber);

    // A stranger may ask; the ticketing system is told who would decide.
    let r = ask(&app, &checker, "zed", ICN, open("", 0)).await;
    let s = step(&r, K::RequestAccess);
    assert_eq!(
        (group(&s), s.contact_names.clone()),
        (pb::DeciderGroup::Administrators, vec![SAM.to_owned()])
    );
    assert_eq!((s.start_time, r.highest_severity), (None, 0));

    // A pending request: with whom since when, until when; its requester sees the same.
    let pending = request(&app, "ana", pb::Role::AuthorizedUser).await;
    for token in [checker.clone(), app.person("ana")] {
        let r = ask(&app, &token, "ana", ICN, open("", 0)).await;
        let s = step(&r, K::WaitForDecision);
        assert_eq!(group(&s), pb::DeciderGroup::Administrators);
        assert_eq!(s.contact_names, [SAM]);
        assert_eq!(s.access_request_id, pending.access_request_id);
        assert_eq!(s.start_time, pending.create_time);
        assert_eq!(s.end_time, pending.expire_time);
    }

    // Denied: may ask again, and is told when the answer came.
    let ben = request(&app, "ben", pb::Role::AuthorizedUser).await;
    app.clock.advance(1000);
    let denied_at = deny(&app, &stc, &ben.access_request_id).await;
    let r = ask(&app, &checker, "ben", ICN, open("", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::RequestDenied as i32);
    let s = step(&r, K::RequestAccess);
    assert_eq!(millis(s.start_time.as_ref()), Some(denied_at));
    assert_eq!(s.contact_names, [SAM]);

    // Approved but not verified: verify the email.
    approve(&app, &stc, &pending.access_request_id)
        .await
        .expect("approve");
    let r = ask(&app, &app.person("ana"), "ana", ICN, open("", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::EmailNotVerified as i32);
    let s = step(&r, K::VerifyEmail);
    assert!(s.contact_names.is_empty() && s.contract_ids.is_empty());

    // An Authorized User who would manage users: ask an administrator for a higher role.
    verified_member(&app, &stc, "cy", pb::Role::AuthorizedUser).await;
    let r = ask(&app, &app.person("cy"), "cy", ICN, plain(ManageUsers)).await;
    assert_eq!(r.reason, pb::DecisionReason::RoleInsufficient as i32);
    let s = step(&r, K::AskForHigherRole);
    assert_eq!(group(&s), pb::DeciderGroup::Administrators);
    assert_eq!(s.contact_names, [SAM]);

    // Removed: may ask again, and is told when the access ended.
    app.clock.advance(1000);
    let removed_at = app.clock.now_ms();
    remove(&app, &stc, "cy").await;
    let r = ask(&app, &checker, "cy", ICN, open("", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::AccessRevoked as i32);
    let s = step(&r, K::RequestAccess);
    assert_eq!(millis(s.start_time.as_ref()), Some(removed_at));
}

/// The steps that come of the account: its contracts and its status.
async fn each_account_state_has_its_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let ana = app.person("ana");
    let now = app.clock.now_ms();

    // C-ALL covers everything 24x7: severity 1 may be opened; a grant has no step.
    let r = ask(&app, &ana, "ana", ICN, open("", 1)).await;
    assert!(r.allowed);
    assert_eq!((r.next_step, r.highest_severity), (None, 1));
    let r = ask(&app, &ana, "ana", ICN, plain(ViewSupportArea)).await;
    assert_eq!((r.next_step, r.highest_severity), (None, 0));

    // Without 24x7, a severity 1 case is offered at severity 2 under the covering contract.
    upsert_contract(&app, "C-ALL", &["P1"], now - DAY, now + 30 * DAY, false).await;
    let r = ask(&app, &ana, "ana", ICN, open("P1", 1)).await;
    assert_eq!(r.reason, pb::DecisionReason::SeverityNotCovered as i32);
    assert_eq!(r.highest_severity, 2);
    let s = step(&r, K::OpenAtLowerSeverity);
    assert_eq!(
        (s.highest_severity, s.contract_ids.clone()),
        (2, vec!["C-ALL".to_owned()])
    );
    let r = ask(&app, &ana, "ana", ICN, open("P1", 2)).await;
    assert!(r.allowed);
    assert_eq!((r.next_step, r.highest_severity), (None, 2));

    // Another product: the STCs, and which contracts are in force.
    upsert_contract(&app, "C-P3", &["P3"], now - DAY, now + 30 * DAY, true).await;
    let r = ask(&app, &ana, "ana", ICN, open("P2", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::ProductNotCovered as i32);
    assert_eq!(r.highest_severity, 0);
    let s = step(&r, K::ContactSiteTechnicalContact);
    assert_eq!(s.contact_names, [SAM]);
    let mut ids = s.contract_ids.clone();
    ids.sort();
    assert_eq!(ids, ["C-ALL", "C-P3"]);

    // Every contract ended: the STCs, and the one that ended last with its end.
    upsert_contract(&app, "C-ALL", &["P1"], now - 9 * DAY, now - 2 * DAY, false).await;
    upsert_contract(&app, "C-P3", &["P3"], now - 9 * DAY, now - DAY, true).await;
    let r = ask(&app, &ana, "ana", ICN, open("P1", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::NoActiveContract as i32);
    let s = step(&r, K::ContactSiteTechnicalContact);
    assert_eq!(s.contact_names, [SAM]);
    assert_eq!(s.contract_ids, ["C-P3"]);
    // As the contract was kept (to the second).
    assert_eq!(s.end_time, ts(now - DAY));

    // Suspended: only support can help, as the member and the ticketing system are told.
    set_status(&app, pb::AccountStatus::Suspended).await;
    for token in [ana.clone(), app.checker()] {
        let r = ask(&app, &token, "ana", ICN, plain(ViewSupportArea)).await;
        assert_eq!(r.reason, pb::DecisionReason::AccountSuspended as i32);
        let s = step(&r, K::ContactSupport);
        assert!(s.contact_names.is_empty() && s.contract_ids.is_empty());
    }

    // The batch carries the same steps.
    let checks = [("ana", ICN), ("zed", OTHER_ICN)]
        .map(|(who, icn)| pb::CheckEntitlementRequest {
            web_id: who.into(),
            icn: icn.into(),
            action: ViewSupportArea as i32,
            consistency: pb::Consistency::FullyConsistent as i32,
            ..Default::default()
        })
        .to_vec();
    let r = app
        .entitlement()
        .batch_check_entitlements(authed(
            pb::BatchCheckEntitlementsRequest {
                checks,
                ..Default::default()
            },
            &app.checker(),
        ))
        .await
        .expect("batch")
        .into_inner();
    let kinds: Vec<i32> = r
        .results
        .iter()
        .map(|r| match &r.outcome {
            Some(pb::batch_check_result::Outcome::Response(a)) => {
                a.next_step.as_ref().expect("a step").kind
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [K::ContactSupport as i32, K::CheckAccountNumber as i32]
    );
}

/// A person checking themself on an account they do not belong to learns only their own
/// history: no names, no contracts, nothing that tells an unknown or suspended account apart.
async fn a_stranger_learns_nothing_of_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let zed = app.person("zed");
    let ask_self = |icn: &'static str| {
        let (app, zed) = (&app, zed.clone());
        async move { ask(app, &zed, "zed", icn, open("", 1)).await }
    };
    let stranger = ask_self(ICN).await;
    let unknown = ask_self(OTHER_ICN).await;
    for r in [&stranger, &unknown] {
        assert_eq!(r.reason, pb::DecisionReason::NotAMember as i32);
        let s = step(r, K::RequestAccess);
        assert_eq!(
            s,
            pb::NextStep {
                kind: K::RequestAccess as i32,
                ..Default::default()
            }
        );
        assert_eq!(r.highest_severity, 0);
    }
    // What the ticketing system is told of the same person.
    let told = ask(&app, &app.checker(), "zed", ICN, open("", 1)).await;
    assert_eq!(step(&told, K::RequestAccess).contact_names, [SAM]);

    // Denied: the date of their own answer, and still nothing of the account.
    let r = request(&app, "zed", pb::Role::AuthorizedUser).await;
    let denied_at = deny(&app, &stc, &r.access_request_id).await;
    set_status(&app, pb::AccountStatus::Suspended).await;
    let r = ask_self(ICN).await;
    assert_eq!(r.reason, pb::DecisionReason::RequestDenied as i32);
    let s = step(&r, K::RequestAccess);
    assert_eq!(millis(s.start_time.as_ref()), Some(denied_at));
    assert_eq!(
        s,
        pb::NextStep {
            kind: K::RequestAccess as i32,
            start_time: s.start_time,
            ..Default::default()
        }
    );
}

/// A request nobody on the account can decide waits with support, and says so.
async fn a_request_nobody_can_decide_waits_with_support(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let pending = request(&app, "ana", pb::Role::AuthorizedUser).await;
    set_status(&app, pb::AccountStatus::Suspended).await;
    let r = ask(&app, &app.person("ana"), "ana", ICN, open("", 0)).await;
    assert_eq!(r.reason, pb::DecisionReason::RequestPending as i32);
    let s = step(&r, K::WaitForDecision);
    assert_eq!(group(&s), pb::DeciderGroup::Operators);
    assert!(s.contact_names.is_empty());
    assert_eq!(s.access_request_id, pending.access_request_id);
}

/// `ctl check` shows the step and the highest severity.
async fn ctl_check_shows_the_next_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
    cmd.arg("ctl")
        .arg(format!("--server=http://{}", app.addr))
        .arg(format!("--token={}", app.checker()))
        .arg("--output=json")
        .args(["check", "--web-id=zed", "--icn", ICN])
        .arg("--action=open-service-request");
    for var in ["ENTITLEMENTS_SERVER", "ENTITLEMENTS_TOKEN"] {
        cmd.env_remove(var);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["highest_severity"], 0, "{text}");
    let step = &json["next_step"];
    assert_eq!(step["kind"], "NEXT_STEP_KIND_REQUEST_ACCESS", "{text}");
    assert_eq!(
        step["decider_group"], "DECIDER_GROUP_ADMINISTRATORS",
        "{text}"
    );
    assert_eq!(step["contact_names"], serde_json::json!([SAM]), "{text}");
}

crate::both_backends!(
    each_standing_has_its_step,
    each_account_state_has_its_step,
    a_stranger_learns_nothing_of_the_account,
    a_request_nobody_can_decide_waits_with_support,
    ctl_check_shows_the_next_step,
);
