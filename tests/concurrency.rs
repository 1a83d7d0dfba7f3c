//! Two administrators deciding the same request at the same moment: exactly one wins.

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{request, setup_account, verified_member};
use crate::support::*;

async fn exactly_one_decision_wins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "tom", pb::Role::TechnicalContact).await;
    let tom = app.person("tom");
    const ROUNDS: usize = 25;
    let mut ids = Vec::new();
    for i in 0..ROUNDS {
        let who = format!("racer{i}");
        let req = request(&app, &who, pb::Role::AuthorizedUser).await;
        let id = req.access_request_id.clone();
        let (mut a, mut b) = (app.access(), app.access());
        let approve = authed(
            pb::ApproveRequestRequest {
                request_id: String::new(),
                access_request_id: id.clone(),
                granted_role: 0,
                expire_time: None,
            },
            &stc,
        );
        let deny = authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: id.clone(),
                reason: "race".into(),
            },
            &tom,
        );
        let (x, y) = tokio::join!(a.approve_request(approve), b.deny_request(deny));
        let wins = usize::from(x.is_ok()) + usize::from(y.is_ok());
        assert_eq!(
            wins, 1,
            "round {i}: exactly one decision wins ({x:?} / {y:?})"
        );
        for loser in [x.err(), y.err()].into_iter().flatten() {
            assert!(
                matches!(loser.code(), Code::FailedPrecondition | Code::Aborted),
                "{loser:?}"
            );
            if loser.code() == Code::FailedPrecondition {
                assert_eq!(reason(&loser), "REQUEST_NOT_PENDING");
            }
        }
        ids.push((id, who));
    }
    // The audit trail agrees: one decision event per request, matching the final state.
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .admin()
            .list_audit_events(authed(
                pb::ListAuditEventsRequest {
                    icn: ICN.into(),
                    page_size: 500,
                    page_token: token,
                },
                &app.operator(),
            ))
            .await
            .unwrap()
            .into_inner();
        events.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    for (id, who) in ids {
        let decisions: Vec<&pb::AuditEvent> = events
            .iter()
            .filter(|e| {
                e.target_id == id
                    && (e.action == "access_request.approve" || e.action == "access_request.deny")
            })
            .collect();
        assert_eq!(decisions.len(), 1, "one decision event for {id}");
        let mine = app
            .access()
            .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person(&who)))
            .await
            .unwrap()
            .into_inner();
        let state = mine.access_requests[0].state;
        let expected = if decisions[0].action == "access_request.approve" {
            pb::AccessRequestState::Approved
        } else {
            pb::AccessRequestState::Denied
        };
        assert_eq!(state, expected as i32);
        assert_eq!(
            !mine.memberships.is_empty(),
            expected == pb::AccessRequestState::Approved,
            "membership exists only when approved"
        );
    }
}

async fn concurrent_identical_requests_make_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let token = app.person("ana");
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut c = app.access();
        let t = token.clone();
        calls.push(tokio::spawn(async move {
            c.request_access(authed(
                pb::RequestAccessRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    country_code: COUNTRY.into(),
                    requested_role: pb::Role::AuthorizedUser as i32,
                },
                &t,
            ))
            .await
        }));
    }
    // Every twin is answered with the one open request, the losers of the race too (on
    // PostgreSQL they hit the unique index and read the winner's request): asking twice is
    // not an error.
    let mut ids = std::collections::HashSet::new();
    for c in calls {
        let r = c
            .await
            .unwrap()
            .expect("a twin call is answered with the open request");
        ids.insert(r.into_inner().access_request.unwrap().access_request_id);
    }
    assert_eq!(
        ids.len(),
        1,
        "one pending request, returned to every caller"
    );
    let list = app
        .access()
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                ..Default::default()
            },
            &stc,
        ))
        .await
        .unwrap();
    assert_eq!(list.into_inner().access_requests.len(), 1);
}

crate::both_backends!(
    exactly_one_decision_wins,
    concurrent_identical_requests_make_one
);
