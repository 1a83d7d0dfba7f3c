//! Access that follows the contract (issue 9): STCs are warned before the last contract in
//! force ends (once per end, across replicas; again after an extension), checks answer
//! NO_ACTIVE_CONTRACT after it; a renewal asks the administrators to confirm the members, and
//! whoever is not confirmed in time loses their access (STCs never). The clock is the injected
//! ManualClock.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use pb::Action::*;
use pb::DecisionReason as R;
use tonic::Code;

use crate::flow::{reason_of, setup_account, upsert_contract, verified_member};
use crate::support::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const WARNING: &str = "Support for Acme Corp";
const CONFIRM: &str = "Confirm who keeps access";

/// The end of the contract `setup_account` made, as stored (whole seconds).
fn first_end(start: i64) -> i64 {
    (start + 365 * DAY).div_euclid(1000) * 1000
}

async fn audit_events(app: &TestApp, action: &str) -> Vec<pb::AuditEvent> {
    app.admin()
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                icn: ICN.into(),
                page_size: 500,
                page_token: String::new(),
            },
            &app.operator(),
        ))
        .await
        .expect("audit")
        .into_inner()
        .audit_events
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

/// Waits until `n` events `action` are recorded (the sweeper's), and checks not more.
async fn wait_events(app: &TestApp, action: &str, n: usize) -> Vec<pb::AuditEvent> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let have = audit_events(app, action).await;
        if have.len() >= n {
            assert_eq!(have.len(), n, "{action}: {have:#?}");
            return have;
        }
        assert!(
            Instant::now() < deadline,
            "{n} x {action} expected, have {}",
            have.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Lets at least two sweeps (one a second) run on the wall clock: for "nothing more happens".
async fn two_sweeps() {
    tokio::time::sleep(Duration::from_millis(2200)).await;
}

fn count(app: &TestApp, to: &str, subject_starts: &str) -> usize {
    app.mails_to(to)
        .iter()
        .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with(subject_starts)))
        .count()
}

async fn add_stc(app: &TestApp, who: &str) {
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: who.into(),
                email: format!("{who}@example.com"),
                given_name: "Second".into(),
                family_name: "Stc".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("add stc");
}

async fn certify(
    app: &TestApp,
    by: &str,
    icn: &str,
    web_id: &str,
) -> Result<pb::Membership, tonic::Status> {
    app.access()
        .certify_member(authed(
            pb::CertifyMemberRequest {
                request_id: String::new(),
                icn: icn.into(),
                web_id: web_id.into(),
            },
            by,
        ))
        .await
        .map(|r| r.into_inner().membership.expect("membership"))
}

async fn members(app: &TestApp, by: &str) -> Vec<pb::Membership> {
    app.access()
        .list_members(authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                page_size: 100,
                page_token: String::new(),
            },
            by,
        ))
        .await
        .expect("list members")
        .into_inner()
        .memberships
}

fn recertify_time(listed: &[pb::Membership], who: &str) -> Option<prost_types::Timestamp> {
    listed
        .iter()
        .find(|m| m.web_id == who)
        .unwrap_or_else(|| panic!("{who} listed"))
        .recertify_time
}

/// The verified STC (not the unverified one, nor a TC) is warned 30 days before the end,
/// once although two replicas sweep; an extension (a renewal) warns again before the new end;
/// past the last end every check answers NO_ACTIVE_CONTRACT, for a member confirmed at the
/// renewal as for the STC.
async fn stcs_are_warned_once_per_contract_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now_ms();
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    add_stc(&app, "stc2").await;
    let replica = app.replica().await;
    let end = first_end(start);

    // A minute before the warning is due: nothing.
    app.clock.set(end - 30 * DAY - 60_000);
    two_sweeps().await;
    assert!(audit_events(&app, "contract.end_warning").await.is_empty());
    assert_eq!(count(&app, "stc1@example.com", WARNING), 0);

    app.clock.set(end - 30 * DAY);
    let warned = wait_events(&app, "contract.end_warning", 1).await;
    assert_eq!(warned[0].actor, "system");
    let after: serde_json::Value = serde_json::from_str(&warned[0].after_json).unwrap();
    assert_eq!(after["ends_at"], end);
    assert_eq!(
        after["site_technical_contacts"],
        serde_json::json!(["stc1"])
    );
    let mails = app.wait_mail("stc1@example.com", WARNING, 1).await;
    assert!(mails[0].contains("1234567"), "{}", mails[0]);
    // Verified STCs only: neither the TC nor the unverified STC.
    assert_eq!(count(&app, "tom@example.com", WARNING), 0);
    assert_eq!(count(&app, "stc2@example.com", WARNING), 0);
    // Later sweeps, on both replicas, send nothing more for this end.
    app.clock.advance(DAY);
    two_sweeps().await;
    assert_eq!(audit_events(&app, "contract.end_warning").await.len(), 1);
    assert_eq!(count(&app, "stc1@example.com", WARNING), 1);

    // Extended by 90 days: a renewal. Tom is confirmed; the new end is warned of in its time.
    let new_end = end + 90 * DAY;
    upsert_contract(&app, "C-ALL", &[], start - DAY, new_end, true).await;
    certify(&app, &stc, ICN, "tom").await.expect("certify tom");
    app.clock.set(new_end - 30 * DAY - 60_000);
    two_sweeps().await;
    assert_eq!(audit_events(&app, "contract.end_warning").await.len(), 1);
    // Five days late, as after an outage with no sweep: the warning still goes out.
    app.clock.set(new_end - 25 * DAY);
    let warned = wait_events(&app, "contract.end_warning", 2).await;
    let ends: Vec<i64> = warned
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.after_json).unwrap()["ends_at"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(ends.contains(&new_end) && ends.contains(&end), "{ends:?}");
    app.wait_mail("stc1@example.com", WARNING, 2).await;
    assert_eq!(count(&app, "stc1@example.com", WARNING), 2);

    // Still in force a millisecond before the end; from the end on, no contract is.
    app.clock.set(new_end - 1);
    assert_eq!(reason_of(&app, "tom", OpenServiceRequest).await, R::Granted);
    app.clock.set(new_end);
    assert_eq!(
        reason_of(&app, "tom", OpenServiceRequest).await,
        R::NoActiveContract
    );
    assert_eq!(
        reason_of(&app, "stc1", OpenServiceRequest).await,
        R::NoActiveContract
    );
    // Nothing left to warn of once every contract ended.
    two_sweeps().await;
    assert_eq!(audit_events(&app, "contract.end_warning").await.len(), 2);
    drop(replica);
}

/// A suspended account's STCs are not warned; a contract that only changes (same end) or a new
/// contract that ends earlier than another asks nothing and warns of the last end only.
async fn only_the_last_end_of_an_active_account_is_warned_of(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now_ms();
    let _stc = setup_account(&app).await;
    let end = first_end(start);
    // A second contract ending 10 days earlier does not bring the warning forward.
    upsert_contract(&app, "C-SHORT", &["db2"], start, end - 10 * DAY, false).await;
    app.clock.set(end - 40 * DAY);
    two_sweeps().await;
    assert!(audit_events(&app, "contract.end_warning").await.is_empty());
    // Suspended: nobody is warned (an operator suspended it on purpose).
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
        .expect("suspend");
    app.clock.set(end - 30 * DAY);
    two_sweeps().await;
    assert!(audit_events(&app, "contract.end_warning").await.is_empty());
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
        .expect("reactivate");
    // Reactivated inside the window: warned then.
    let warned = wait_events(&app, "contract.end_warning", 1).await;
    let after: serde_json::Value = serde_json::from_str(&warned[0].after_json).unwrap();
    assert_eq!(after["ends_at"], end);
    // Neither contract was renewed: nobody was asked to confirm members.
    assert!(
        audit_events(&app, "account.recertification_requested")
            .await
            .is_empty()
    );
}

/// A renewal asks the verified administrators to confirm the members (not the STCs); those
/// confirmed keep their access, the one not confirmed loses it at the deadline (once, across
/// replicas: audited by the system, emailed to them and the administrators), STCs are kept.
async fn unconfirmed_members_lose_access_at_the_deadline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now_ms();
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    verified_member(&app, &stc, "bob", pb::Role::AuthorizedUser).await;
    add_stc(&app, "stc2").await;
    let replica = app.replica().await;
    let end = first_end(start);

    // Not a renewal: the same end (another product list) and a new contract ask nothing.
    upsert_contract(&app, "C-ALL", &["db2"], start - DAY, end, true).await;
    upsert_contract(&app, "C-NEW", &[], start, end + DAY, false).await;
    assert!(
        audit_events(&app, "account.recertification_requested")
            .await
            .is_empty()
    );
    assert!(
        members(&app, &stc)
            .await
            .iter()
            .all(|m| m.recertify_time.is_none())
    );

    // The renewal.
    let asked_at = app.clock.now_ms();
    upsert_contract(&app, "C-ALL", &[], start - DAY, end + 365 * DAY, true).await;
    let due = asked_at + 30 * DAY;
    let asked = audit_events(&app, "account.recertification_requested").await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].actor, OPERATOR);
    let after: serde_json::Value = serde_json::from_str(&asked[0].after_json).unwrap();
    assert_eq!(after["members"], serde_json::json!(["ana", "bob", "tom"]));
    assert_eq!(after["recertify_by"], due);
    // The verified administrators are asked (the unverified STC is not: verified ones first).
    let mails = app.wait_mail("stc1@example.com", CONFIRM, 1).await;
    for who in ["ana", "bob", "tom"] {
        assert!(mails[0].contains(&format!("({who})")), "{}", mails[0]);
    }
    assert!(!mails[0].contains("(stc1)"), "{}", mails[0]);
    app.wait_mail("tom@example.com", CONFIRM, 1).await;
    assert_eq!(count(&app, "stc2@example.com", CONFIRM), 0);
    assert_eq!(count(&app, "ana@example.com", CONFIRM), 0);
    // Listed with the deadline; STCs owe nothing.
    let listed = members(&app, &stc).await;
    for who in ["ana", "bob", "tom"] {
        assert_eq!(
            recertify_time(&listed, who).map(|t| t.seconds),
            Some(due.div_euclid(1000)),
            "{who}"
        );
    }
    assert_eq!(recertify_time(&listed, "stc1"), None);
    assert_eq!(recertify_time(&listed, "stc2"), None);

    // The STC confirms ana, the TC confirms bob; nobody confirms tom.
    let ana = certify(&app, &stc, ICN, "ana").await.expect("certify ana");
    assert_eq!(ana.recertify_time, None);
    certify(&app, &app.person("tom"), ICN, "bob")
        .await
        .expect("tom certifies bob");
    // Again: nothing owed, nothing changes.
    certify(&app, &stc, ICN, "ana").await.expect("again");
    assert_eq!(audit_events(&app, "membership.recertify").await.len(), 2);
    let listed = members(&app, &stc).await;
    assert_eq!(recertify_time(&listed, "ana"), None);
    assert_eq!(recertify_time(&listed, "bob"), None);
    assert!(recertify_time(&listed, "tom").is_some());

    // A minute before the deadline everyone still has access.
    app.clock.set(due - 60_000);
    two_sweeps().await;
    assert!(
        audit_events(&app, "membership.not_recertified")
            .await
            .is_empty()
    );
    assert_eq!(reason_of(&app, "tom", OpenServiceRequest).await, R::Granted);

    app.clock.set(due);
    let removed = wait_events(&app, "membership.not_recertified", 1).await;
    assert_eq!(removed[0].actor, "system");
    assert_eq!(removed[0].target_id, format!("{ICN}/tom"));
    // The removal reaches every replica's cache within a feed round.
    eventually("tom's access revoked", || async {
        reason_of(&app, "tom", OpenServiceRequest).await == R::AccessRevoked
    })
    .await;
    for who in ["ana", "bob", "stc1"] {
        assert_eq!(
            reason_of(&app, who, OpenServiceRequest).await,
            R::Granted,
            "{who}"
        );
    }
    assert_eq!(
        reason_of(&app, "stc2", ViewSupportArea).await,
        R::Granted,
        "an unverified STC is kept too"
    );
    app.wait_mail("tom@example.com", "Your access has ended.", 1)
        .await;
    app.wait_mail("stc1@example.com", "Subject: Access of tom-given", 1)
        .await;
    // Once, whatever the sweeps of either replica do later.
    app.clock.advance(DAY);
    two_sweeps().await;
    assert_eq!(
        audit_events(&app, "membership.not_recertified").await.len(),
        1
    );
    assert_eq!(
        app.mails_to("tom@example.com")
            .iter()
            .filter(|m| m.contains("Your access has ended."))
            .count(),
        1
    );
    let listed = members(&app, &stc).await;
    assert!(listed.iter().all(|m| m.web_id != "tom"), "{listed:#?}");

    // Removed and approved again later: not held to the old question.
    verified_member_again(&app, &stc, "tom").await;
    assert_eq!(recertify_time(&members(&app, &stc).await, "tom"), None);

    // The same when an administrator removed the member while the question was open: the
    // new membership owes nothing.
    upsert_contract(&app, "C-ALL", &[], start - DAY, end + 730 * DAY, true).await;
    assert!(recertify_time(&members(&app, &stc).await, "tom").is_some());
    app.access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "tom".into(),
                reason: "moved on".into(),
            },
            &stc,
        ))
        .await
        .expect("remove tom");
    verified_member_again(&app, &stc, "tom").await;
    assert_eq!(recertify_time(&members(&app, &stc).await, "tom"), None);
    drop(replica);
}

/// Tom asks again and is approved (his email is verified already).
async fn verified_member_again(app: &TestApp, stc: &str, who: &str) {
    let req = crate::flow::request(app, who, pb::Role::AuthorizedUser).await;
    crate::flow::approve(app, stc, &req.access_request_id)
        .await
        .expect("approve");
    assert_eq!(reason_of(app, who, OpenServiceRequest).await, R::Granted);
}

/// CertifyMember: who may (exact reasons) and what it validates (named fields).
async fn certify_member_is_for_other_administrators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now_ms();
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    add_stc(&app, "stc2").await;
    upsert_contract(
        &app,
        "C-ALL",
        &[],
        start - DAY,
        first_end(start) + DAY,
        true,
    )
    .await;
    let (tom, ana, op) = (app.person("tom"), app.person("ana"), app.operator());

    // Fields, named.
    for (icn, web_id, field) in [
        ("", "ana", "icn"),
        ("12a", "ana", "icn"),
        (ICN, "", "web_id"),
        (ICN, "bad id with spaces", "web_id"),
    ] {
        let s = assert_status(
            certify(&app, &stc, icn, web_id).await,
            Code::InvalidArgument,
            "",
        );
        assert_eq!(field_violation(&s).as_deref(), Some(field), "{s:?}");
    }
    // Who.
    assert_status(
        certify(&app, &tom, ICN, "tom").await,
        Code::PermissionDenied,
        "SELF_MODIFICATION",
    );
    assert_status(
        certify(&app, &ana, ICN, "tom").await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        certify(&app, &app.person("stc2"), ICN, "ana").await,
        Code::PermissionDenied,
        "ADMINISTRATOR_EMAIL_NOT_VERIFIED",
    );
    assert_status(
        certify(&app, &app.person("stranger"), ICN, "ana").await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        certify(&app, &tom, "7654321", "ana").await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    assert_status(
        certify(&app, &op, "7654321", "ana").await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_status(
        certify(&app, &tom, ICN, "nobody").await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
    );
    // An STC owes nothing: confirming one changes nothing.
    let s = certify(&app, &tom, ICN, "stc1").await.expect("stc1");
    assert_eq!(s.recertify_time, None);
    // Another administrator confirms tom; an operator confirms ana, on a suspended account too.
    certify(&app, &stc, ICN, "tom")
        .await
        .expect("stc1 certifies tom");
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: pb::AccountStatus::Suspended as i32,
                reason: "audit".into(),
            },
            &op,
        ))
        .await
        .expect("suspend");
    assert_status(
        certify(&app, &stc, ICN, "ana").await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );
    certify(&app, &op, ICN, "ana").await.expect("operator");
    let events = audit_events(&app, "membership.recertify").await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().any(|e| e.actor == OPERATOR));
}

/// ctl: certify-member, and list-members shows recertify_time.
async fn ctl_certifies_and_shows_the_deadline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now_ms();
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    upsert_contract(
        &app,
        "C-ALL",
        &[],
        start - DAY,
        first_end(start) + DAY,
        true,
    )
    .await;
    let run = |args: Vec<String>| {
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
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let listed = run(vec!["list-members".into(), format!("--icn={ICN}")]).await;
    assert!(listed.contains("\"recertify_time\":\""), "{listed}");
    let done = run(vec![
        "certify-member".into(),
        format!("--icn={ICN}"),
        "--web-id=ana".into(),
    ])
    .await;
    assert!(done.contains("\"recertify_time\":null"), "{done}");
    let listed = run(vec!["list-members".into(), format!("--icn={ICN}")]).await;
    assert!(!listed.contains("\"recertify_time\":\""), "{listed}");
}

crate::both_backends!(
    stcs_are_warned_once_per_contract_end,
    only_the_last_end_of_an_active_account_is_warned_of,
    unconfirmed_members_lose_access_at_the_deadline,
    certify_member_is_for_other_administrators,
    ctl_certifies_and_shows_the_deadline,
);
