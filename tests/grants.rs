//! Time-boxed grants (issue 9): an approval or a role change with `expire_time`. The clock is
//! the injected ManualClock; nothing waits for time to pass.

use std::time::Duration;

use entitlements::proto::v1 as pb;
use pb::Action::*;
use pb::DecisionReason as R;
use tonic::Code;

use crate::flow::{check, reason_of, request, setup_account, verified_member};
use crate::support::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The clock's present, on a whole second (timestamps in these tests carry no fraction).
fn whole_second(app: &TestApp) -> i64 {
    let now = app.clock.now_ms();
    now - now.rem_euclid(1000)
}

async fn approve_until(
    app: &TestApp,
    admin: &str,
    id: &str,
    end: Option<prost_types::Timestamp>,
) -> Result<pb::AccessRequest, tonic::Status> {
    app.access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: id.into(),
                granted_role: 0,
                expire_time: end,
            },
            admin,
        ))
        .await
        .map(|r| r.into_inner().access_request.expect("access_request"))
}

async fn set_role_until(
    app: &TestApp,
    admin: &str,
    web_id: &str,
    role: pb::Role,
    end: Option<prost_types::Timestamp>,
) -> Result<pb::Membership, tonic::Status> {
    app.access()
        .update_member_role(authed(
            pb::UpdateMemberRoleRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: web_id.into(),
                role: role as i32,
                expire_time: end,
            },
            admin,
        ))
        .await
        .map(|r| r.into_inner().membership.expect("membership"))
}

async fn members(app: &TestApp, admin: &str) -> Vec<pb::Membership> {
    app.access()
        .list_members(authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                page_size: 100,
                page_token: String::new(),
            },
            admin,
        ))
        .await
        .expect("list members")
        .into_inner()
        .memberships
}

async fn my_memberships(app: &TestApp, who: &str) -> Vec<pb::Membership> {
    app.access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person(who)))
        .await
        .expect("my access")
        .into_inner()
        .memberships
}

/// The `membership.lapse` events of the account.
async fn lapse_events(app: &TestApp) -> Vec<pb::AuditEvent> {
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
        .filter(|e| e.action == "membership.lapse")
        .collect()
}

/// A verified member whose grant ends at `end` (ms).
async fn time_boxed_member(app: &TestApp, stc: &str, who: &str, end: i64) {
    let req = request(app, who, pb::Role::AuthorizedUser).await;
    approve_until(app, stc, &req.access_request_id, ts(end))
        .await
        .expect("approve with an end");
    let code = app
        .verification_code(&format!("{who}@example.com"), 1)
        .await;
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

/// GRANTED before the end, ACCESS_REVOKED from it on a warm cache and on a replica started
/// after it; the lapse is recorded once (two replicas sweep one database), audited by the
/// system, and emailed to the member and the administrators; re-granting works.
async fn a_time_boxed_grant_ends_at_its_instant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let end = whole_second(&app) + HOUR;
    time_boxed_member(&app, &stc, "ben", end).await;

    // Shown where memberships are.
    let listed = members(&app, &stc).await;
    let ben = listed
        .iter()
        .find(|m| m.web_id == "ben")
        .expect("ben listed");
    assert_eq!(ben.expire_time, ts(end));
    let stc1 = listed.iter().find(|m| m.web_id == "stc1").expect("stc1");
    assert_eq!(stc1.expire_time, None, "no end unless one was given");
    let mine = my_memberships(&app, "ben").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].expire_time, ts(end));
    app.wait_mail("ben@example.com", "Access ends:", 1).await;

    // A second replica, warmed (snapshot) before the end.
    let warm = app.replica().await;
    app.clock.set(end - 1);
    for server in [&app, &warm] {
        // Asked twice: the second answer comes from the cache.
        for _ in 0..2 {
            let r = check(server, "ben", OpenServiceRequest).await;
            assert!(r.allowed, "{r:?}");
            assert_eq!(r.reason, R::Granted as i32);
        }
    }

    // At the instant: revoked on both warm caches, whether or not a sweeper ran yet.
    app.clock.set(end);
    for server in [&app, &warm] {
        for action in [OpenServiceRequest, ViewSupportArea] {
            let r = check(server, "ben", action).await;
            assert!(!r.allowed);
            assert_eq!(r.reason, R::AccessRevoked as i32, "{action:?}");
            assert_eq!(r.role, 0, "no role after the end");
        }
    }

    // Recorded once, by the system, though both replicas sweep.
    eventually("the lapse is recorded", || async {
        !lapse_events(&app).await.is_empty()
    })
    .await;
    let member_mail = app.wait_mail("ben@example.com", "has now ended", 1).await;
    assert!(member_mail[0].contains("Acme Corp"));
    let admin_mail = app
        .wait_mail("stc1@example.com", "Web ID:     ben", 1)
        .await;
    assert!(admin_mail[0].contains("has ended"));
    // Several sweeps of both replicas later, still once.
    app.clock.advance(1000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = lapse_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].actor, "system");
    assert_eq!(events[0].target_id, format!("{ICN}/ben"));
    assert!(
        events[0]
            .after_json
            .contains(&format!("\"removed_at\":{end}"))
    );
    assert_eq!(
        app.mails_to("ben@example.com")
            .iter()
            .filter(|m| m.contains("has now ended"))
            .count(),
        1
    );
    assert_eq!(
        app.mails_to("stc1@example.com")
            .iter()
            .filter(|m| m.contains("Web ID:     ben"))
            .count(),
        1
    );

    // After the sweep: the same answer, on the warm caches and on a replica started now.
    let fresh = app.replica().await;
    for server in [&app, &warm, &fresh] {
        assert_eq!(
            reason_of(server, "ben", OpenServiceRequest).await,
            R::AccessRevoked
        );
    }
    assert!(members(&app, &stc).await.iter().all(|m| m.web_id != "ben"));
    assert!(my_memberships(&app, "ben").await.is_empty());

    // Re-granted after the lapse, this time without an end.
    let again = request(&app, "ben", pb::Role::AuthorizedUser).await;
    let token = app
        .access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: again.access_request_id.clone(),
                granted_role: 0,
                expire_time: None,
            },
            &stc,
        ))
        .await
        .expect("approve again")
        .into_inner()
        .consistency_token;
    app.clock.advance(400 * DAY);
    for server in [&app, &warm, &fresh] {
        let r = server
            .entitlement()
            .check_entitlement(authed(
                pb::CheckEntitlementRequest {
                    web_id: "ben".into(),
                    icn: ICN.into(),
                    action: OpenServiceRequest as i32,
                    product_id: String::new(),
                    severity: 0,
                    consistency_token: token.clone(),
                    consistency: 0,
                },
                &app.checker(),
            ))
            .await
            .expect("check")
            .into_inner();
        // The contract of the setup ended meanwhile: the membership itself is what counts.
        assert_eq!(r.role, pb::Role::AuthorizedUser as i32, "{r:?}");
        assert_ne!(r.reason, R::AccessRevoked as i32, "{r:?}");
    }
    let ben = members(&app, &stc).await;
    let ben = ben.iter().find(|m| m.web_id == "ben").expect("ben again");
    assert_eq!(ben.expire_time, None);
    assert_eq!(lapse_events(&app).await.len(), 1, "no second lapse");
}

/// An end not in the future, too far ahead or out of range is INVALID_ARGUMENT naming
/// `expire_time`, on both calls; nothing changes.
async fn invalid_expire_times_name_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let now = whole_second(&app);
    app.clock.set(now);
    let req = request(&app, "ben", pb::Role::AuthorizedUser).await;
    let out_of_range = Some(prost_types::Timestamp {
        seconds: 253_402_300_800,
        nanos: 0,
    });
    for bad in [ts(now), ts(now - HOUR), ts(now + 1097 * DAY), out_of_range] {
        let s = assert_status(
            approve_until(&app, &stc, &req.access_request_id, bad).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(
            field_violation(&s).as_deref(),
            Some("expire_time"),
            "{bad:?}"
        );
    }
    assert_eq!(reason_of(&app, "ben", ViewSupportArea).await, R::Granted);
    assert_eq!(
        reason_of(&app, "ben", OpenServiceRequest).await,
        R::RequestPending,
        "still pending"
    );
    // The cap itself is allowed.
    approve_until(&app, &stc, &req.access_request_id, ts(now + 1096 * DAY))
        .await
        .expect("an end 1096 days ahead");
    for bad in [ts(now), ts(now + 1097 * DAY)] {
        let s = assert_status(
            set_role_until(&app, &stc, "ben", pb::Role::TechnicalContact, bad).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(field_violation(&s).as_deref(), Some("expire_time"));
    }
    let ben = members(&app, &stc).await;
    let ben = ben.iter().find(|m| m.web_id == "ben").expect("ben");
    assert_eq!(ben.role, pb::Role::AuthorizedUser as i32, "unchanged");
    assert_eq!(ben.expire_time, ts(now + 1096 * DAY));
}

/// A role change sets, moves and clears the end; without `expire_time` it clears one.
async fn a_later_change_without_an_end_clears_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let now = whole_second(&app);
    app.clock.set(now);
    time_boxed_member(&app, &stc, "ben", now + HOUR).await;
    verified_member(&app, &stc, "cyd", pb::Role::AuthorizedUser).await;

    // Promoted without an end: the end goes.
    let m = set_role_until(&app, &stc, "ben", pb::Role::TechnicalContact, None)
        .await
        .expect("promote");
    assert_eq!(m.expire_time, None);
    app.wait_mail("ben@example.com", "never (no end date)", 1)
        .await;
    // The same role with an end only: not a no-op, the end is set.
    let m = set_role_until(
        &app,
        &stc,
        "cyd",
        pb::Role::AuthorizedUser,
        ts(now + 2 * HOUR),
    )
    .await
    .expect("end cyd");
    assert_eq!(m.expire_time, ts(now + 2 * HOUR));
    assert_eq!(m.role, pb::Role::AuthorizedUser as i32);
    // Moved later.
    let m = set_role_until(
        &app,
        &stc,
        "cyd",
        pb::Role::AuthorizedUser,
        ts(now + 3 * HOUR),
    )
    .await
    .expect("move cyd's end");
    assert_eq!(m.expire_time, ts(now + 3 * HOUR));

    app.clock.set(now + 2 * HOUR);
    assert_eq!(reason_of(&app, "ben", OpenServiceRequest).await, R::Granted);
    assert_eq!(reason_of(&app, "ben", ManageUsers).await, R::Granted);
    assert_eq!(reason_of(&app, "cyd", OpenServiceRequest).await, R::Granted);

    // An administrator's own grant ends their powers with it.
    let ben = app.person("ben");
    set_role_until(
        &app,
        &stc,
        "ben",
        pb::Role::TechnicalContact,
        ts(now + 3 * HOUR),
    )
    .await
    .expect("end ben");
    app.clock.set(now + 3 * HOUR);
    assert_eq!(
        reason_of(&app, "cyd", OpenServiceRequest).await,
        R::AccessRevoked
    );
    assert_eq!(reason_of(&app, "ben", ManageUsers).await, R::AccessRevoked);
    assert_status(
        app.access()
            .list_members(authed(
                pb::ListMembersRequest {
                    icn: ICN.into(),
                    page_size: 10,
                    page_token: String::new(),
                },
                &ben,
            ))
            .await,
        Code::PermissionDenied,
        "NOT_AN_ADMINISTRATOR",
    );
    // A lapsed member is no longer there to change.
    assert_status(
        set_role_until(&app, &stc, "cyd", pb::Role::AuthorizedUser, None).await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
    );
    eventually("both lapses are recorded", || async {
        lapse_events(&app).await.len() == 2
    })
    .await;
}

/// Right after an end passes, before or after the sweeper got to it: the person may ask again
/// and be approved, an operator may make them an STC (no end); every lapse is recorded once,
/// by the sweeper or on the way by the call that replaces the grant.
async fn in_the_sweep_window_a_lapse_is_recorded_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let now = whole_second(&app);
    app.clock.set(now);
    time_boxed_member(&app, &stc, "ben", now + HOUR).await;
    time_boxed_member(&app, &stc, "cyd", now + HOUR).await;
    app.clock.set(now + HOUR);
    // At once: no ALREADY_A_MEMBER, and the approval replaces the lapsed grant.
    let again = request(&app, "ben", pb::Role::AuthorizedUser).await;
    assert_eq!(again.state, pb::AccessRequestState::Pending as i32);
    approve_until(&app, &stc, &again.access_request_id, None)
        .await
        .expect("approve again");
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "cyd".into(),
                email: "cyd@example.com".into(),
                given_name: "Cyd".into(),
                family_name: "C".into(),
            },
            &app.operator(),
        ))
        .await
        .expect("cyd an STC");
    eventually("both lapses are recorded", || async {
        lapse_events(&app).await.len() >= 2
    })
    .await;
    // Several sweeps later, still once each.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut targets: Vec<String> = lapse_events(&app)
        .await
        .into_iter()
        .map(|e| e.target_id)
        .collect();
    targets.sort();
    assert_eq!(targets, vec![format!("{ICN}/ben"), format!("{ICN}/cyd")]);
    let listed = members(&app, &stc).await;
    for (who, role) in [
        ("ben", pb::Role::AuthorizedUser),
        ("cyd", pb::Role::SiteTechnicalContact),
    ] {
        let m = listed.iter().find(|m| m.web_id == who).expect(who);
        assert_eq!((m.role, m.expire_time), (role as i32, None), "{who}");
        assert_eq!(reason_of(&app, who, ViewSupportArea).await, R::Granted);
    }
}

/// `entitlements ctl approve|set-role --expire-time` (a child process, against the server).
async fn ctl_sets_and_clears_the_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ben", pb::Role::AuthorizedUser).await;
    let ctl = |args: Vec<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
        cmd.arg("ctl")
            .arg(format!("--server=http://{}", app.addr))
            .arg(format!("--token={stc}"))
            .arg("--output=json")
            .args(args);
        for var in ["ENTITLEMENTS_SERVER", "ENTITLEMENTS_TOKEN"] {
            cmd.env_remove(var);
        }
        cmd
    };
    // The server's clock is the machine's here (not moved), as ctl's `now` is.
    let out = tokio::task::spawn_blocking({
        let mut cmd = ctl(vec![
            "approve".into(),
            format!("--id={}", req.access_request_id),
            "--expire-time=now+1d".into(),
        ]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let end = members(&app, &stc)
        .await
        .into_iter()
        .find(|m| m.web_id == "ben")
        .and_then(|m| m.expire_time)
        .expect("an end");
    let ahead = end.seconds * 1000 - app.clock.now_ms();
    assert!((DAY - 60_000..=DAY + 60_000).contains(&ahead), "{ahead}");

    let out = tokio::task::spawn_blocking({
        let mut cmd = ctl(vec![
            "set-role".into(),
            format!("--icn={ICN}"),
            "--web-id=ben".into(),
            "--role=technical-contact".into(),
            "--expire-time=now+2d".into(),
        ]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"expire_time\":\""), "{json}");

    let out = tokio::task::spawn_blocking({
        let mut cmd = ctl(vec![
            "set-role".into(),
            format!("--icn={ICN}"),
            "--web-id=ben".into(),
            "--role=technical-contact".into(),
        ]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"expire_time\":null"), "cleared: {json}");

    // An end in the past: the server's INVALID_ARGUMENT, naming the field.
    let out = tokio::task::spawn_blocking({
        let mut cmd = ctl(vec![
            "set-role".into(),
            format!("--icn={ICN}"),
            "--web-id=ben".into(),
            "--role=technical-contact".into(),
            "--expire-time=now-1h".into(),
        ]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expire_time"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

crate::both_backends!(
    a_time_boxed_grant_ends_at_its_instant,
    invalid_expire_times_name_the_field,
    a_later_change_without_an_end_clears_it,
    in_the_sweep_window_a_lapse_is_recorded_once,
    ctl_sets_and_clears_the_end,
);
