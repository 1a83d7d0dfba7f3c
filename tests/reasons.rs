//! Every published error reason is reached by a test: here, over gRPC, the ones no other test
//! names; and a census of the test sources that fails when a reason is reached by none.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entitlements::auth::dev::{DevKey, MintRequest};
use entitlements::domain::Reason;
use entitlements::proto::v1 as pb;
use sqlx::Connection;
use tonic::Code;

use crate::flow::{setup_account, verified_member};
use crate::support::*;

fn check_msg(icn: &str) -> pb::CheckEntitlementRequest {
    pb::CheckEntitlementRequest {
        web_id: "ana".into(),
        icn: icn.into(),
        action: pb::Action::OpenServiceRequest as i32,
        ..Default::default()
    }
}

async fn token_reasons_are_exact(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ent = app.entitlement();
    let ana = app.person("ana");
    let unauthenticated = |r: Result<_, tonic::Status>, why: &str| {
        assert_status(
            r.map(|_: tonic::Response<_>| ()),
            Code::Unauthenticated,
            why,
        );
    };
    unauthenticated(
        ent.check_entitlement(tonic::Request::new(check_msg(ICN)))
            .await,
        "TOKEN_MISSING",
    );
    let mut basic = tonic::Request::new(check_msg(ICN));
    basic
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    unauthenticated(
        ent.check_entitlement(basic).await,
        "AUTHORIZATION_HEADER_MALFORMED",
    );
    unauthenticated(
        ent.check_entitlement(authed(check_msg(ICN), "garbage"))
            .await,
        "TOKEN_MALFORMED",
    );
    // The signature of another token under this token's claims.
    let (head_and_claims, _) = ana.rsplit_once('.').unwrap();
    let other = app.person("ben");
    let (_, other_sig) = other.rsplit_once('.').unwrap();
    unauthenticated(
        ent.check_entitlement(authed(
            check_msg(ICN),
            &format!("{head_and_claims}.{other_sig}"),
        ))
        .await,
        "TOKEN_SIGNATURE_INVALID",
    );
    // alg "none": an unsigned token.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        head_and_claims.split_once('.').unwrap().1
    );
    unauthenticated(
        ent.check_entitlement(authed(check_msg(ICN), &unsigned))
            .await,
        "TOKEN_ALGORITHM_UNSUPPORTED",
    );
    // A key the service does not know.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = DevKey::load_or_create(stranger_dir.path()).unwrap();
    unauthenticated(
        ent.check_entitlement(authed(
            check_msg(ICN),
            &stranger.mint(&MintRequest::new("ana")).unwrap(),
        ))
        .await,
        "TOKEN_KEY_UNKNOWN",
    );
    let minted = |f: &dyn Fn(&mut MintRequest)| {
        let mut m = MintRequest::new("ana");
        f(&mut m);
        app.key.mint(&m).unwrap()
    };
    for (token, why) in [
        (
            minted(&|m| m.audience = "someone-else".into()),
            "TOKEN_AUDIENCE_MISMATCH",
        ),
        (
            minted(&|m| m.issuer = "https://evil.example".into()),
            "TOKEN_ISSUER_MISMATCH",
        ),
        (
            minted(&|m| m.email = Some("not an address".into())),
            "TOKEN_CLAIM_INVALID",
        ),
    ] {
        unauthenticated(
            ent.check_entitlement(authed(check_msg(ICN), &token)).await,
            why,
        );
    }
}

/// Corrupt data answers INTERNAL, and the cause (SQL, the bad value) stays in the logs.
async fn corrupt_data_is_internal_and_says_nothing_of_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let corrupt = "UPDATE contracts SET product_ids = 'not json'";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(corrupt).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(corrupt).execute(&mut c).await.unwrap();
        }
    }
    // Another replica, so nothing is cached.
    let cold = app.replica().await;
    let s = assert_status(
        cold.entitlement()
            .check_entitlement(authed(check_msg(ICN), &cold.checker()))
            .await,
        Code::Internal,
        "INTERNAL",
    );
    assert!(
        !s.message().contains("json") && !s.message().contains("product_ids"),
        "{s:?}"
    );
}

/// A change stream resumed from before what the change log still holds must start over; one
/// resumed from within the day the log keeps goes on.
async fn a_watch_from_a_forgotten_revision_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    // Two hours later, one more change: the log's retention (a day) is measured from it.
    app.clock.advance(2 * 3600 * 1000);
    let before_it = app.token_of_now().await;
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: "7654321".into(),
                company_name: "Later Corp".into(),
                country_code: "US".into(),
            },
            &app.operator(),
        ))
        .await
        .unwrap();
    // A day and an hour after the first changes, a replica starting up trims the change log.
    app.clock.advance(23 * 3600 * 1000);
    let later = app.replica().await;
    let watch = |from: String| pb::WatchEntitlementChangesRequest {
        consistency_token: from,
        icn: String::new(),
    };
    let start = later.token_of_now().await;
    eventually("the change log was trimmed", || {
        let later = &later;
        let from = token_at(&start, 0);
        async move {
            let r = later
                .entitlement()
                .watch_entitlement_changes(authed(watch(from), &later.checker()))
                .await;
            match r {
                Err(s) => reason(&s) == "CONSISTENCY_TOKEN_TOO_OLD",
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    matches!(stream.message().await, Err(s) if reason(&s) == "CONSISTENCY_TOKEN_TOO_OLD")
                }
            }
        }
    })
    .await;
    // The change made 23 hours ago is kept: a stream from just before it replays it.
    let mut stream = later
        .entitlement()
        .watch_entitlement_changes(authed(watch(before_it), &later.checker()))
        .await
        .expect("within the day the log keeps")
        .into_inner();
    let first = stream.message().await.expect("resumed").expect("open");
    assert!(
        first.changes.iter().any(|c| c.icn == "7654321"),
        "{first:?}"
    );
}

/// A code sent to an address the person no longer has proves nothing about the new one.
async fn a_code_for_an_old_address_is_superseded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    crate::flow::request(&app, "ana", pb::Role::AuthorizedUser).await;
    let old_code = app.verification_code("ana@example.com", 1).await;
    // The identity provider now gives her another address.
    let ana_new = app.token("ana", Some("ana.new@example.com"), &[]);
    assert_status(
        app.access()
            .verify_email(authed(
                pb::VerifyEmailRequest {
                    request_id: String::new(),
                    code: old_code,
                },
                &ana_new,
            ))
            .await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_SUPERSEDED",
    );
}

crate::both_backends!(
    a_code_for_an_old_address_is_superseded,
    token_reasons_are_exact,
    corrupt_data_is_internal_and_says_nothing_of_it,
    a_watch_from_a_forgotten_revision_is_refused,
);

/// Reasons reached only by unit tests (`src/**/tests*`), named there by their error variant.
const REACHED_IN_UNIT_TESTS: &[(&str, &str)] = &[
    ("JWKS_UNAVAILABLE", "AuthError::JwksUnavailable"),
    ("AUTH_MISCONFIGURED", "AuthError::Config"),
];

/// Reasons no test can provoke on demand against a healthy server, and why.
const NOT_PROVOKED: &[(&str, &str)] = &[(
    "CONCURRENT_UPDATE",
    "a PostgreSQL serialization failure between two transactions; mapped in one place (ServiceError::from(StoreError::Aborted))",
)];

fn sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_published_reason_is_reached_by_a_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tests = String::new();
    sources(&root.join("tests"), &mut tests);
    let mut unit = String::new();
    sources(&root.join("src"), &mut unit);
    let mut missing = Vec::new();
    for r in Reason::ALL {
        let text = r.as_str();
        // A census file naming every reason would reach them all: count only uses elsewhere.
        let named_in_a_test = tests.matches(&format!("\"{text}\"")).count()
            > usize::from(NOT_PROVOKED.iter().any(|(n, _)| *n == text))
                + usize::from(REACHED_IN_UNIT_TESTS.iter().any(|(n, _)| *n == text));
        let unit_variant = REACHED_IN_UNIT_TESTS
            .iter()
            .find(|(n, _)| *n == text)
            .is_some_and(|(_, variant)| unit.matches(variant).count() > 1);
        let excused = NOT_PROVOKED.iter().any(|(n, _)| *n == text);
        if !(named_in_a_test || unit_variant || excused) {
            missing.push(text);
        }
    }
    assert!(missing.is_empty(), "reasons no test reaches: {missing:?}");
}
