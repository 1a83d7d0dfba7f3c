//! Figures that age with the service clock, which the end-to-end suite (a real clock, a mail
//! worker that delivers at once) cannot hold still.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::clock::ManualClock;
use crate::domain::{CountryCode, Email, Icn, WebId};
use crate::service::NewStc;
use crate::service::testing::{LAGGARD, caller, on_postgres, on_sqlite, replica_on};

async fn the_oldest_due_email_ages_with_the_service_clock(url: &str) {
    let store = crate::store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let replica = replica_on(&store, Arc::new(clock.clone()), LAGGARD).await;
    let services = &replica.services;
    assert_eq!(
        services.stats().outbox_oldest_due_age_ms,
        None,
        "not sampled yet"
    );
    services.sample_ops().await;
    assert_eq!(
        services.stats().outbox_oldest_due_age_ms,
        Some(0),
        "nothing due"
    );
    // An STC is named: her verification code is queued, and no mail worker runs here.
    let operator = caller("op1", true, false);
    let icn = Icn::parse("1000001").unwrap();
    services
        .create_account(&operator, &icn, "Acme", &CountryCode::parse("US").unwrap())
        .await
        .unwrap();
    let stc = NewStc {
        web_id: WebId::parse("stc1").unwrap(),
        email: Email::parse("stc1@example.com").unwrap(),
        given_name: String::new(),
        family_name: String::new(),
    };
    services
        .add_site_technical_contact(&operator, &icn, stc)
        .await
        .unwrap();
    services.sample_ops().await;
    clock.advance(5_000);
    assert_eq!(services.stats().outbox_oldest_due_age_ms, Some(5_000));
}

#[tokio::test]
async fn sqlite_the_oldest_due_email_ages_with_the_service_clock() {
    on_sqlite(the_oldest_due_email_ages_with_the_service_clock).await;
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_the_oldest_due_email_ages_with_the_service_clock() {
    on_postgres(the_oldest_due_email_ages_with_the_service_clock).await;
}
