//! Freshness across replicas: consistency tokens, the "new enemy" test, batch checks and
//! the change stream.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use rand::Rng;
use tonic::Code;

use crate::flow::{approve, request, setup_account, verified_member};
use crate::support::*;

fn check_req(web_id: &str, token: &str) -> pb::CheckEntitlementRequest {
    pb::CheckEntitlementRequest {
        web_id: web_id.into(),
        icn: ICN.into(),
        action: pb::Action::OpenServiceRequest as i32,
        product_id: String::new(),
        severity: 0,
        consistency_token: token.into(),
        consistency: 0,
    }
}

async fn check_on(app: &TestApp, web_id: &str, token: &str) -> pb::CheckEntitlementResponse {
    app.entitlement()
        .check_entitlement(authed(check_req(web_id, token), &app.checker()))
        .await
        .unwrap()
        .into_inner()
}

async fn set_status(app: &TestApp, status: pb::AccountStatus) -> String {
    app.admin()
        .set_account_status(authed(
            pb::SetAccountStatusRequest {
                request_id: String::new(),
                icn: ICN.into(),
                status: status as i32,
                reason: String::new(),
            },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner()
        .consistency_token
}

async fn remove(app: &TestApp, stc: &str, who: &str) -> String {
    app.access()
        .remove_member(authed(
            pb::RemoveMemberRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: who.into(),
                reason: String::new(),
            },
            stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .consistency_token
}

/// Re-admits a removed member; returns the approval's token. A day passes first: one person
/// may ask for one account only five times a day.
async fn readmit(app: &TestApp, stc: &str, who: &str) -> String {
    app.clock.advance(24 * 3600 * 1000);
    let req = request(app, who, pb::Role::AuthorizedUser).await;
    app.access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: req.access_request_id,
                granted_role: 0,
                expire_time: None,
            },
            stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .consistency_token
}

/// Zanzibar's "new enemy" problem: after a revocation, a check that carries the revocation's
/// token must never be answered from an older state, on any replica. Randomised across three
/// replicas, revoking and restoring through account status and membership.
async fn no_stale_allow_with_a_token_on_any_replica(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let stc = setup_account(&a).await;
    verified_member(&a, &stc, "ana", pb::Role::AuthorizedUser).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let replicas = [&a, &b, &c];
    // Warm every replica's cache with "allowed".
    for r in replicas {
        assert!(check_on(r, "ana", "").await.allowed);
    }
    let mut rng = rand::thread_rng();
    let mut stale = 0;
    let rounds = 30;
    for round in 0..rounds {
        let writer = replicas[rng.gen_range(0..3)];
        let by_status = rng.gen_bool(0.5);
        let revoked_token = if by_status {
            set_status(writer, pb::AccountStatus::Suspended).await
        } else {
            remove(writer, &stc, "ana").await
        };
        // Every replica, immediately, with the token: never allowed.
        for r in replicas {
            let d = check_on(r, "ana", &revoked_token).await;
            if d.allowed {
                stale += 1;
                eprintln!("round {round}: stale allow on a replica after revocation");
            }
            let expected = if by_status {
                pb::DecisionReason::AccountSuspended
            } else {
                pb::DecisionReason::AccessRevoked
            };
            assert_eq!(d.reason, expected as i32, "round {round}");
        }
        // Restore, and the restoration is read-your-writes too.
        let writer = replicas[rng.gen_range(0..3)];
        let restored = if by_status {
            set_status(writer, pb::AccountStatus::Active).await
        } else {
            readmit(writer, &stc, "ana").await
        };
        for r in replicas {
            assert!(
                check_on(r, "ana", &restored).await.allowed,
                "round {round}: restoration visible with its token"
            );
        }
    }
    assert_eq!(stale, 0, "stale allows with a consistency token");
}

/// Without a token, every replica sees a revocation within the feed's latency.
async fn revocation_reaches_every_replica_without_a_token(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let stc = setup_account(&a).await;
    verified_member(&a, &stc, "ana", pb::Role::AuthorizedUser).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let mut lags = Vec::new();
    for _ in 0..10 {
        for r in [&a, &b, &c] {
            assert!(check_on(r, "ana", "").await.allowed);
        }
        set_status(&a, pb::AccountStatus::Suspended).await;
        let start = Instant::now();
        for r in [&b, &c] {
            eventually("the revocation reaches the replica", || async {
                !check_on(r, "ana", "").await.allowed
            })
            .await;
        }
        lags.push(start.elapsed());
        set_status(&a, pb::AccountStatus::Active).await;
        for r in [&b, &c] {
            eventually("the restoration reaches the replica", || async {
                check_on(r, "ana", "").await.allowed
            })
            .await;
        }
    }
    lags.sort();
    eprintln!(
        "{backend:?}: revocation seen by all replicas: median {:?}, max {:?}",
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    // A bound far above the measured latency (tens of ms): only a broken feed fails it.
    assert!(lags[lags.len() - 1] < Duration::from_secs(2), "{lags:?}");
}

async fn tokens_are_validated_and_returned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let approved = app
        .access()
        .approve_request(authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: req.access_request_id,
                granted_role: 0,
                expire_time: None,
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner();
    let token = approved.consistency_token;
    assert!(token.starts_with("v2."), "{token}");
    let d = check_on(&app, "ana", &token).await;
    assert_eq!(d.reason, pb::DecisionReason::EmailNotVerified as i32);
    assert!(token_revision(&d.consistency_token) >= token_revision(&token));
    let r = app
        .entitlement()
        .check_entitlement(authed(check_req("ana", "garbage"), &app.checker()))
        .await;
    let s = assert_status(r, Code::InvalidArgument, "INVALID_CONSISTENCY_TOKEN");
    assert_eq!(field_violation(&s).as_deref(), Some("consistency_token"));
    // A token this database has not reached is refused, not read as something else, up to
    // the largest revision a token can name; so is a token of another database.
    for far in [token_revision(&token) + 1_000_000, i64::MAX] {
        let r = app
            .entitlement()
            .check_entitlement(authed(
                check_req("ana", &token_at(&token, far)),
                &app.checker(),
            ))
            .await;
        assert_status(r, Code::FailedPrecondition, "CONSISTENCY_TOKEN_AHEAD");
    }
    let elsewhere = TestApp::spawn(app.db.backend).await;
    let foreign = elsewhere.operator();
    let foreign_token = elsewhere
        .admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: "99".into(),
                company_name: "Elsewhere".into(),
                country_code: COUNTRY.into(),
            },
            &foreign,
        ))
        .await
        .unwrap()
        .into_inner()
        .consistency_token;
    let r = app
        .entitlement()
        .check_entitlement(authed(check_req("ana", &foreign_token), &app.checker()))
        .await;
    assert_status(r, Code::FailedPrecondition, "CONSISTENCY_TOKEN_FOREIGN");
    // A change stream from a token ahead of the database would skip every change up to it.
    let watch = app
        .entitlement()
        .watch_entitlement_changes(authed(
            pb::WatchEntitlementChangesRequest {
                consistency_token: token_at(&token, i64::MAX),
                icn: String::new(),
            },
            &app.checker(),
        ))
        .await;
    assert_status(
        watch.map(|_| ()),
        Code::FailedPrecondition,
        "CONSISTENCY_TOKEN_AHEAD",
    );
}

async fn batch_checks_answer_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let mut bad = check_req("bob", "");
    bad.icn = "12x".into();
    let mut view = check_req("stc1", "");
    view.action = pb::Action::ViewSupportArea as i32;
    let checks = vec![check_req("ana", ""), bad, check_req("nobody", ""), view];
    let r = app
        .entitlement()
        .batch_check_entitlements(authed(
            pb::BatchCheckEntitlementsRequest {
                checks,
                consistency_token: String::new(),
                consistency: 0,
            },
            &app.checker(),
        ))
        .await
        .unwrap()
        .into_inner();
    use pb::batch_check_result::Outcome;
    let outcomes: Vec<Outcome> = r.results.into_iter().map(|x| x.outcome.unwrap()).collect();
    assert_eq!(outcomes.len(), 4);
    match &outcomes[0] {
        Outcome::Response(d) => assert!(d.allowed),
        e => panic!("{e:?}"),
    }
    match &outcomes[1] {
        Outcome::Error(e) => {
            assert_eq!(e.code, "INVALID_ARGUMENT");
            assert_eq!(e.field, "checks[1].icn");
        }
        e => panic!("{e:?}"),
    }
    match &outcomes[2] {
        Outcome::Response(d) => assert_eq!(d.reason, pb::DecisionReason::NotAMember as i32),
        e => panic!("{e:?}"),
    }
    match &outcomes[3] {
        Outcome::Response(d) => assert_eq!(d.role, pb::Role::SiteTechnicalContact as i32),
        e => panic!("{e:?}"),
    }
    // A person without the scope gets per-check PERMISSION_DENIED for others, answers for themself.
    let mine = app
        .entitlement()
        .batch_check_entitlements(authed(
            pb::BatchCheckEntitlementsRequest {
                checks: vec![check_req("ana", ""), check_req("stc1", "")],
                consistency_token: String::new(),
                consistency: 0,
            },
            &app.person("ana"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        mine.results[0].outcome,
        Some(Outcome::Response(_))
    ));
    match &mine.results[1].outcome {
        Some(Outcome::Error(e)) => assert_eq!(
            (e.code.as_str(), e.reason.as_str()),
            ("PERMISSION_DENIED", "CHECK_SCOPE_REQUIRED")
        ),
        e => panic!("{e:?}"),
    }
    let too_many = vec![check_req("ana", ""); 101];
    let r = app
        .entitlement()
        .batch_check_entitlements(authed(
            pb::BatchCheckEntitlementsRequest {
                checks: too_many,
                consistency_token: String::new(),
                consistency: 0,
            },
            &app.checker(),
        ))
        .await;
    assert_status(r, Code::InvalidArgument, "BATCH_TOO_LARGE");
}

/// A change stream and the changes received but not yet looked at.
struct Watcher {
    stream: tonic::Streaming<pb::WatchEntitlementChangesResponse>,
    pending: std::collections::VecDeque<pb::EntitlementChange>,
}

impl Watcher {
    /// The next change matching `want` (skipping others), within a deadline.
    async fn next(
        &mut self,
        want: impl Fn(&pb::EntitlementChange) -> bool,
    ) -> pb::EntitlementChange {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            while let Some(c) = self.pending.pop_front() {
                if want(&c) {
                    return c;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.stream.message())
                .await
                .expect("a change in time")
                .unwrap()
                .expect("open stream");
            self.pending.extend(msg.changes);
        }
    }
}

async fn the_change_stream_is_resumable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let other = app.replica().await;
    let watch = |token: String, icn: &str| pb::WatchEntitlementChangesRequest {
        consistency_token: token,
        icn: icn.into(),
    };
    let stream = other
        .entitlement()
        .watch_entitlement_changes(authed(watch(String::new(), ""), &app.checker()))
        .await
        .unwrap()
        .into_inner();
    let mut stream = Watcher {
        stream,
        pending: Default::default(),
    };
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let c = stream
        .next(|c| c.web_id == "ana" && c.kind == pb::ChangeKind::Member as i32)
        .await;
    assert_eq!(c.icn, ICN);
    let resume_from = c.consistency_token.clone();
    drop(stream);
    // While disconnected: an approval and an account change.
    approve(&app, &stc, &req.access_request_id).await.unwrap();
    set_status(&app, pb::AccountStatus::Suspended).await;
    let resumed = other
        .entitlement()
        .watch_entitlement_changes(authed(watch(resume_from.clone(), ICN), &app.checker()))
        .await
        .unwrap()
        .into_inner();
    let mut resumed = Watcher {
        stream: resumed,
        pending: Default::default(),
    };
    let m = resumed
        .next(|c| c.kind == pb::ChangeKind::Member as i32)
        .await;
    assert_eq!(m.web_id, "ana");
    assert!(
        m.consistency_token != resume_from,
        "only changes after the token"
    );
    resumed
        .next(|c| c.kind == pb::ChangeKind::Account as i32 && c.icn == ICN)
        .await;
    // A person without the check scope may not watch.
    let r = app
        .entitlement()
        .watch_entitlement_changes(authed(watch(String::new(), ""), &app.person("ana")))
        .await;
    assert_status(r, Code::PermissionDenied, "CHECK_SCOPE_REQUIRED");
}

/// One change as a stream carries it: revision, kind, account, person.
type Seen = (i64, i32, String, String);

/// What `stream` carries until it has sent everything through revision `last`.
async fn changes_through(
    stream: &mut tonic::Streaming<pb::WatchEntitlementChangesResponse>,
    last: i64,
) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, stream.message())
            .await
            .expect("the stream reaches the last write in time")
            .unwrap()
            .expect("open stream");
        seen.extend(msg.changes.into_iter().map(|c| {
            (
                token_revision(&c.consistency_token),
                c.kind,
                c.icn,
                c.web_id,
            )
        }));
        if token_revision(&msg.consistency_token) >= last {
            return seen;
        }
    }
}

/// Watched while the changes are being made (a stream replays the log, then goes live, and
/// the two overlap), a stream carries every change once, in revision order: exactly what a
/// watch opened afterwards from the same token replays. A watch of one account carries that
/// account's changes and the persons', and no other account's.
async fn a_change_stream_carries_each_change_once_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    let other = app.replica().await;
    let start = app.token_of_now().await;
    let open = |icn: &'static str| {
        let (other, start) = (&other, start.clone());
        async move {
            other
                .entitlement()
                .watch_entitlement_changes(authed(
                    pb::WatchEntitlementChangesRequest {
                        consistency_token: start,
                        icn: icn.into(),
                    },
                    &other.checker(),
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let writes = {
        let (admin, op) = (app.admin(), app.operator());
        tokio::spawn(async move {
            let mut last = String::new();
            for i in 0..15 {
                let mut admin = admin.clone();
                last = admin
                    .create_account(authed(
                        pb::CreateAccountRequest {
                            request_id: String::new(),
                            icn: format!("20000{i:02}"),
                            company_name: format!("Company {i}"),
                            country_code: COUNTRY.into(),
                        },
                        &op,
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .consistency_token;
            }
            last
        })
    };
    let (mut all, mut one) = (open("").await, open(ICN).await);
    for who in ["ana", "ben", "cy"] {
        request(&app, who, pb::Role::AuthorizedUser).await;
    }
    let last_account = token_revision(&writes.await.unwrap());
    let last = last_account.max(token_revision(&app.token_of_now().await));
    let (got_all, got_one) = (
        changes_through(&mut all, last).await,
        changes_through(&mut one, last).await,
    );
    let (replayed_all, replayed_one) = (
        changes_through(&mut open("").await, last).await,
        changes_through(&mut open(ICN).await, last).await,
    );
    let upto = |v: Vec<Seen>| -> Vec<Seen> { v.into_iter().filter(|c| c.0 <= last).collect() };
    let (got_all, got_one) = (upto(got_all), upto(got_one));
    let (replayed_all, replayed_one) = (upto(replayed_all), upto(replayed_one));
    assert_eq!(got_all, replayed_all, "live and replayed streams differ");
    assert_eq!(
        got_one, replayed_one,
        "live and replayed streams of {ICN} differ"
    );
    for seen in [&got_all, &got_one] {
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "out of order or twice: {seen:?}"
        );
    }
    assert!(got_all.iter().any(|c| c.2 == "2000014"), "{got_all:?}");
    assert!(got_one.iter().any(|c| c.3 == "cy"), "{got_one:?}");
    assert!(
        got_one.iter().all(|c| c.2 == ICN || c.2.is_empty()),
        "another account's change in a watch of {ICN}: {got_one:?}"
    );
}

/// A fully consistent check reads the database: on a second replica, right after a removal
/// on the first, with no token to carry, it already answers ACCESS_REVOKED (deny as much as
/// allow: a re-grant shows at once too). The modes a token contradicts or lacks are refused.
async fn a_fully_consistent_check_needs_no_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let other = app.replica().await;
    let fully = |web_id: &str| pb::CheckEntitlementRequest {
        consistency: pb::Consistency::FullyConsistent as i32,
        ..check_req(web_id, "")
    };
    let ask = |app: &TestApp, r: pb::CheckEntitlementRequest| {
        let mut c = app.entitlement();
        let r = authed(r, &app.checker());
        async move { c.check_entitlement(r).await.map(|r| r.into_inner()) }
    };
    // The other replica's cache holds ana's allow.
    assert!(check_on(&other, "ana", "").await.allowed);
    // Three rounds: a person may ask five times a day, and becoming a member took one.
    for round in 0..3 {
        app.access()
            .remove_member(authed(
                pb::RemoveMemberRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    web_id: "ana".into(),
                    reason: format!("round {round}"),
                },
                &stc,
            ))
            .await
            .unwrap();
        let r = ask(&other, fully("ana")).await.unwrap();
        assert_eq!(
            (r.allowed, r.reason),
            (false, pb::DecisionReason::AccessRevoked as i32),
            "round {round}"
        );
        let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
        approve(&app, &stc, &req.access_request_id).await.unwrap();
        assert!(
            ask(&other, fully("ana")).await.unwrap().allowed,
            "round {round}"
        );
    }
    let token = app.token_of_now().await;
    let r = ask(
        &other,
        pb::CheckEntitlementRequest {
            consistency: pb::Consistency::MinimizeLatency as i32,
            ..check_req("ana", &token)
        },
    )
    .await;
    let s = assert_status(r, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(field_violation(&s).as_deref(), Some("consistency"));
    let r = ask(
        &other,
        pb::CheckEntitlementRequest {
            consistency: pb::Consistency::AtLeastAsFresh as i32,
            ..check_req("ana", "")
        },
    )
    .await;
    let s = assert_status(r, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(field_violation(&s).as_deref(), Some("consistency_token"));
    let r = ask(
        &other,
        pb::CheckEntitlementRequest {
            consistency: 9,
            ..check_req("ana", "")
        },
    )
    .await;
    let s = assert_status(r, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(field_violation(&s).as_deref(), Some("consistency"));
    // With its token, at-least-as-fresh is today's behaviour.
    let r = ask(
        &other,
        pb::CheckEntitlementRequest {
            consistency: pb::Consistency::AtLeastAsFresh as i32,
            ..check_req("ana", &token)
        },
    )
    .await
    .unwrap();
    assert!(r.allowed);
}

crate::both_backends!(
    a_fully_consistent_check_needs_no_token,
    no_stale_allow_with_a_token_on_any_replica,
    revocation_reaches_every_replica_without_a_token,
    tokens_are_validated_and_returned,
    batch_checks_answer_in_order,
    the_change_stream_is_resumable,
    a_change_stream_carries_each_change_once_in_order,
);

/// SIGTERM finishes calls in flight, but a change stream never finishes by itself: it must
/// end (UNAVAILABLE, resumable) so the server can stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_change_streams() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let watch = pb::WatchEntitlementChangesRequest {
        consistency_token: String::new(),
        icn: String::new(),
    };
    let mut stream = app
        .entitlement()
        .watch_entitlement_changes(authed(watch, &app.checker()))
        .await
        .unwrap()
        .into_inner();
    let reader = tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(s) => return Some(s),
            }
        }
    });
    // TestApp::shutdown asserts the server task ends within its deadline.
    app.shutdown().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the stream ends")
        .unwrap();
    if let Some(s) = ended {
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert_eq!(reason(&s), "SHUTTING_DOWN");
    }
}
