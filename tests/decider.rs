//! Who decided a request: shown to the account's administrators and to operators, never to
//! the requester reading their own request (the outcome and the reason, yes).

use entitlements::proto::v1 as pb;

use crate::flow::{approve, request, setup_account};
use crate::support::*;

async fn list_as(app: &TestApp, token: &str) -> Vec<pb::AccessRequest> {
    app.access()
        .list_access_requests(authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                state: 0,
                page_size: 50,
                page_token: String::new(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_requests
}

async fn my_requests(app: &TestApp, who: &str) -> Vec<pb::AccessRequest> {
    app.access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, &app.person(who)))
        .await
        .unwrap()
        .into_inner()
        .access_requests
}

async fn the_requester_sees_the_decision_not_who_made_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let denied = request(&app, "ana", pb::Role::AuthorizedUser).await;
    let answer = app
        .access()
        .deny_request(authed(
            pb::DenyRequestRequest {
                request_id: String::new(),
                access_request_id: denied.access_request_id.clone(),
                reason: "not on our staff list".into(),
            },
            &stc,
        ))
        .await
        .unwrap()
        .into_inner()
        .access_request
        .unwrap();
    assert_eq!(answer.decided_by, "stc1", "the decider sees their own name");
    let approved = request(&app, "ben", pb::Role::AuthorizedUser).await;
    approve(&app, &stc, &approved.access_request_id)
        .await
        .unwrap();

    // The requesters: the outcome and the reason, no Web ID of the administrator.
    let ana = my_requests(&app, "ana").await;
    assert_eq!(ana.len(), 1);
    assert_eq!(ana[0].state, pb::AccessRequestState::Denied as i32);
    assert_eq!(ana[0].decision_reason, "not on our staff list");
    assert_eq!(ana[0].decided_by, "");
    let ben = my_requests(&app, "ben").await;
    assert_eq!(ben[0].state, pb::AccessRequestState::Approved as i32);
    assert_eq!(ben[0].decided_by, "");

    // A requester who withdrew sees their own name.
    let withdrawn = request(&app, "cyd", pb::Role::AuthorizedUser).await;
    app.access()
        .withdraw_request(authed(
            pb::WithdrawRequestRequest {
                request_id: String::new(),
                access_request_id: withdrawn.access_request_id,
                reason: String::new(),
            },
            &app.person("cyd"),
        ))
        .await
        .unwrap();
    assert_eq!(my_requests(&app, "cyd").await[0].decided_by, "cyd");

    // The account's administrators and operators still see who decided.
    for token in [stc.clone(), app.operator()] {
        let all = list_as(&app, &token).await;
        let by: Vec<&str> = all.iter().map(|r| r.decided_by.as_str()).collect();
        assert_eq!(by, ["cyd", "stc1", "stc1"]);
    }
    // Nor does the denial email name the administrator.
    let mail = app.wait_mail("ana@example.com", "denied", 1).await;
    assert!(!mail[0].contains("stc1"), "{}", mail[0]);
}

crate::both_backends!(the_requester_sees_the_decision_not_who_made_it);
