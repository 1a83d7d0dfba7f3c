//! Guessing email verification codes.

use entitlements::proto::v1 as pb;
use tonic::Code;

use super::idp_app;
use crate::flow::{request, setup_account};
use crate::support::*;

/// Guessing a verification code: each code takes 5 wrong tries in all, even at once and from
/// several tokens (`MAX_WRONG_ATTEMPTS`, counted in the database under a row lock), and a
/// new code is sent at most every 60 s and 5 times an hour (`SendPolicy`): 25 guesses an
/// hour against 32^8 codes.
async fn verification_codes_cannot_be_guessed(backend: Backend) {
    let (app, _idp) = idp_app(backend).await;
    setup_account(&app).await;
    request(&app, "ana", pb::Role::AuthorizedUser).await;
    let code = app.verification_code("ana@example.com", 1).await;
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let app_access = app.access();
            let token = app.token("ana", Some("ana@example.com"), &[]);
            let guess = format!("WRONG{:03}", i);
            tokio::spawn(async move {
                let mut access = app_access;
                access
                    .verify_email(authed(
                        pb::VerifyEmailRequest {
                            request_id: String::new(),
                            code: guess,
                        },
                        &token,
                    ))
                    .await
            })
        })
        .collect();
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for g in guesses {
        let s = g.await.unwrap().expect_err("a wrong code");
        *answers.entry(reason(&s)).or_default() += 1;
    }
    assert_eq!(
        answers,
        [
            ("VERIFICATION_CODE_INVALID".to_owned(), 5),
            ("VERIFICATION_CODE_LOCKED".to_owned(), 15)
        ]
        .into(),
        "20 concurrent guesses"
    );
    assert_status(
        app.access()
            .verify_email(authed(
                pb::VerifyEmailRequest {
                    request_id: String::new(),
                    code,
                },
                &app.person("ana"),
            ))
            .await,
        Code::FailedPrecondition,
        "VERIFICATION_CODE_LOCKED",
    );
    assert_status(
        app.access()
            .send_verification_email(authed(
                pb::SendVerificationEmailRequest {
                    request_id: String::new(),
                },
                &app.person("ana"),
            ))
            .await,
        Code::ResourceExhausted,
        "VERIFICATION_EMAIL_RATE_LIMITED",
    );
}

crate::both_backends!(verification_codes_cannot_be_guessed);
