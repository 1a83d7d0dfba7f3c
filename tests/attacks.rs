//! Attacks on identity and authorization, over real gRPC against a server started as in
//! production: tokens verified against an identity provider's JWKS file (`support::idp`),
//! not the dev key. The token attacks follow RFC 8725 (JWT Best Current Practices).

mod codes;
mod privileges;
mod rotation;
mod tokens;

use std::sync::Arc;

use entitlements::proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::support::*;

pub async fn idp_app(backend: Backend) -> (TestApp, Arc<Idp>) {
    let idp = Arc::new(Idp::new());
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            idp: Some(idp.clone()),
            ..AppOptions::default()
        },
    )
    .await;
    (app, idp)
}

/// A person's own call: needs a valid token and nothing else.
pub async fn whoami(app: &TestApp, token: &str) -> Result<String, tonic::Status> {
    app.access()
        .get_my_access(authed(pb::GetMyAccessRequest {}, token))
        .await
        .map(|r| r.into_inner().web_id)
}

#[track_caller]
pub fn refused(r: Result<String, tonic::Status>, why: &str, attack: &str) {
    match r {
        Ok(who) => panic!("{attack}: accepted as {who}"),
        Err(s) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{attack}: {s:?}");
            assert_eq!(reason(&s), why, "{attack}: {s:?}");
        }
    }
}

pub fn mallory() -> Value {
    let mut c = Idp::claims("mallory");
    c["email"] = json!("mallory@example.com");
    c
}
