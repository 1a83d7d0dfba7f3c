//! The check cache never answers differently from the database: a warm replica says what a
//! cold one says, deny as much as allow.

use entitlements::proto::v1 as pb;

use crate::flow::{request, setup_account, verified_member};
use crate::support::*;

/// An ICN that no account has: the ticketing system's typo.
const TYPO: &str = "7654321";

fn all_checks() -> Vec<pb::CheckEntitlementRequest> {
    let mut out = Vec::new();
    for web_id in ["ana", "ben", "nobody"] {
        for icn in [ICN, TYPO] {
            for action in [
                pb::Action::OpenServiceRequest,
                pb::Action::ViewSupportArea,
                pb::Action::ManageUsers,
            ] {
                out.push(pb::CheckEntitlementRequest {
                    web_id: web_id.into(),
                    icn: icn.into(),
                    action: action as i32,
                    product_id: String::new(),
                    severity: 0,
                    consistency_token: String::new(),
                    consistency: 0,
                });
            }
        }
    }
    out
}

async fn answer(app: &TestApp, c: &pb::CheckEntitlementRequest) -> (bool, i32) {
    let r = app
        .entitlement()
        .check_entitlement(authed(c.clone(), &app.checker()))
        .await
        .expect("check")
        .into_inner();
    (r.allowed, r.reason)
}

async fn answers(app: &TestApp) -> Vec<(bool, i32)> {
    let mut out = Vec::new();
    for c in all_checks() {
        out.push(answer(app, &c).await);
    }
    out
}

fn one(web_id: &str, icn: &str) -> pb::CheckEntitlementRequest {
    all_checks()
        .into_iter()
        .find(|c| c.web_id == web_id && c.icn == icn)
        .expect("a check")
}

/// The typo sequence: a check against an ICN that does not exist must not change what checks
/// of the same person on their real account answer, before or after they were cached.
async fn a_check_on_an_unknown_account_changes_no_other_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    request(&app, "ben", pb::Role::AuthorizedUser).await;
    let granted = (true, pb::DecisionReason::Granted as i32);
    let pending = (false, pb::DecisionReason::RequestPending as i32);
    let unknown = (false, pb::DecisionReason::UnknownAccount as i32);

    // Her real answer is cached, then the typo is checked: the real answer stays.
    assert_eq!(answer(&app, &one("ana", ICN)).await, granted);
    assert_eq!(answer(&app, &one("ana", TYPO)).await, unknown);
    assert_eq!(answer(&app, &one("ana", ICN)).await, granted);
    // The typo first, while nothing about ben is cached; then his real answer.
    assert_eq!(answer(&app, &one("ben", TYPO)).await, unknown);
    assert_eq!(answer(&app, &one("ben", ICN)).await, pending);
    assert_eq!(answer(&app, &one("ben", TYPO)).await, unknown);
    assert_eq!(answer(&app, &one("ben", ICN)).await, pending);

    // Every answer of this warm replica equals a cold replica's, twice over (cold, then warm).
    let warm = answers(&app).await;
    let cold = app.replica().await;
    assert_eq!(answers(&cold).await, warm, "cold replica vs warm replica");
    assert_eq!(answers(&cold).await, warm, "the same replica once warm");
}

crate::both_backends!(a_check_on_an_unknown_account_changes_no_other_answer);
