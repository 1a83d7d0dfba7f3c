//! A restart keeps every state and every undelivered email.

use entitlements::proto::v1 as pb;

use crate::flow::{approve, request, setup_account};
use crate::support::smtp_sink::SmtpSink;
use crate::support::*;

async fn restart_keeps_state_and_undelivered_email(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            mail: Some(MailKind::Smtp(sink.url())),
            ..Default::default()
        },
    )
    .await;
    // The STC verifies via SMTP-delivered mail.
    let op = app.operator();
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: ICN.into(),
                company_name: "Acme".into(),
                country_code: COUNTRY.into(),
            },
            &op,
        ))
        .await
        .unwrap();
    app.admin()
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc1".into(),
                email: "stc1@example.com".into(),
                given_name: "S".into(),
                family_name: "T".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let mail = sink
        .wait_for(
            |m| m.to.iter().any(|t| t.contains("stc1@example.com")),
            std::time::Duration::from_secs(15),
        )
        .await
        .expect("verification email by SMTP");
    let code = mail
        .body()
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("Verification code: "))
        .expect("code line")
        .trim()
        .to_owned();
    app.access()
        .verify_email(authed(
            pb::VerifyEmailRequest {
                request_id: String::new(),
                code,
            },
            &app.person("stc1"),
        ))
        .await
        .unwrap();

    // The relay starts failing: the next emails stay in the outbox.
    sink.set_failing(true);
    let req = request(&app, "ana", pb::Role::AuthorizedUser).await;
    eventually("a delivery attempt was refused", || async {
        sink.mail_commands() > 1
    })
    .await;
    let delivered_before = sink.messages().len();

    // Restart with a working relay: state is intact and the queued emails arrive.
    let app = app.restart(None).await;
    sink.set_failing(false);
    // Backoff is on the service clock; move it past the first retry delay.
    app.clock.advance(10 * 60 * 1000);
    let got = sink
        .wait_for(
            |m| {
                m.to.iter().any(|t| t.contains("stc1@example.com"))
                    && m.body().contains(&req.access_request_id)
            },
            std::time::Duration::from_secs(15),
        )
        .await;
    assert!(
        got.is_some(),
        "the administrator's email survived the restart"
    );
    sink.wait_for(
        |m| {
            m.to.iter().any(|t| t.contains("ana@example.com"))
                && m.body().contains("Verification code: ")
        },
        std::time::Duration::from_secs(15),
    )
    .await
    .expect("the requester's code survived the restart");
    assert!(sink.messages().len() > delivered_before);

    let stc = app.person("stc1");
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
    assert_eq!(
        list.into_inner().access_requests[0].access_request_id,
        req.access_request_id
    );
    approve(&app, &stc, &req.access_request_id)
        .await
        .expect("the STC is still verified after the restart");
}

async fn restart_keeps_everything_on_the_dev_mail_dir(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stc = setup_account(&app).await;
    let req = request(&app, "ana", pb::Role::TechnicalContact).await;
    let app = app.restart(None).await;
    let approved = approve(&app, &stc, &req.access_request_id).await.unwrap();
    assert_eq!(approved.granted_role, pb::Role::TechnicalContact as i32);
    let acct = app
        .admin()
        .get_account(authed(
            pb::GetAccountRequest { icn: ICN.into() },
            &app.operator(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acct.account.unwrap().company_name, "Acme Corp");
    assert_eq!(acct.contracts.len(), 1);
}

crate::both_backends!(
    restart_keeps_state_and_undelivered_email,
    restart_keeps_everything_on_the_dev_mail_dir
);
