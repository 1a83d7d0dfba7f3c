//! PostgreSQL stopped for 30 s under steady load, on a server of the test's own.
//!
//! Expected, and asserted: every call answers either correctly or UNAVAILABLE (never a wrong
//! answer, never INTERNAL); health turns NOT_SERVING; within 5 s of the database's return the
//! same server serves again, without a restart; every write that was answered OK is there
//! afterwards. Cached checks answer only while the feed was read within its staleness bound
//! (1 s): after that nobody can say that no replica committed a change this one has not seen,
//! so checks go to the database and answer UNAVAILABLE like everything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::flow::{check, setup_account, verified_member};
use crate::support::pg_server::OwnPostgres;
use crate::support::*;

const OUTAGE: Duration = Duration::from_secs(30);
/// Within this long of the database accepting connections again, calls succeed.
const RECOVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Call {
    Check,
    Create(String),
}

#[derive(Debug)]
struct Outcome {
    at: Instant,
    call: Call,
    /// The decision reason of a check, "" for a write; or the refusal's code and reason.
    result: Result<String, (Code, String)>,
}

async fn status(channel: &tonic::transport::Channel) -> Option<i32> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

async fn wait_health(app: &TestApp, want: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    while status(&app.channel).await != Some(want as i32) {
        assert!(
            Instant::now() < deadline,
            "health did not turn {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks of a member who may open SRs, and new accounts, one after the other until `stop`.
fn steady_load(
    app: Arc<TestApp>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Outcome>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let r = crate::flow::check_as(
                &app,
                &app.checker(),
                "ana",
                pb::Action::OpenServiceRequest,
                "",
                0,
            )
            .await;
            out.push(Outcome {
                at: Instant::now(),
                call: Call::Check,
                result: r
                    .map(|r| format!("{:?}", pb::DecisionReason::try_from(r.reason).ok()))
                    .map_err(|s| (s.code(), reason(&s))),
            });
            n += 1;
            let icn = format!("{}", 5_000_000 + n);
            let r = app
                .admin()
                .create_account(authed(
                    pb::CreateAccountRequest {
                        request_id: String::new(),
                        icn: icn.clone(),
                        company_name: "Load".into(),
                        country_code: COUNTRY.into(),
                    },
                    &app.operator(),
                ))
                .await;
            if r.is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            out.push(Outcome {
                at: Instant::now(),
                call: Call::Create(icn),
                result: r.map(|_| String::new()).map_err(|s| (s.code(), reason(&s))),
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
async fn postgres_stopped_for_30_s_under_load() {
    let pg = Arc::new(
        tokio::task::spawn_blocking(OwnPostgres::start)
            .await
            .unwrap(),
    );
    let db = Arc::new(TestDb::existing(Backend::Postgres, pg.url()));
    let app = Arc::new(TestApp::spawn_on(db, AppOptions::default()).await);
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    assert!(
        check(&app, "ana", pb::Action::OpenServiceRequest)
            .await
            .allowed
    );

    let stop = Arc::new(AtomicBool::new(false));
    let accepted_writes = Arc::new(AtomicUsize::new(0));
    let load = steady_load(app.clone(), stop.clone(), accepted_writes.clone());
    // Load before the fault: the cache is warm and writes are flowing.
    eventually("writes flow before the fault", || {
        let n = accepted_writes.clone();
        async move { n.load(Ordering::Relaxed) >= 10 }
    })
    .await;

    let down = Instant::now();
    tokio::task::spawn_blocking({
        let pg = pg.clone();
        move || pg.stop()
    })
    .await
    .unwrap();
    wait_health(&app, ServingStatus::NotServing, Duration::from_secs(10)).await;
    let not_serving_after = down.elapsed();
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;

    tokio::task::spawn_blocking({
        let pg = pg.clone();
        move || pg.resume()
    })
    .await
    .unwrap();
    let back = Instant::now();
    wait_health(&app, ServingStatus::Serving, RECOVERY).await;
    // Serving means serving: a write and an uncached read go through, not only the probe.
    let deadline = back + RECOVERY;
    loop {
        let w = app
            .admin()
            .create_account(authed(
                pb::CreateAccountRequest {
                    request_id: String::new(),
                    icn: "4000001".into(),
                    company_name: "Back".into(),
                    country_code: COUNTRY.into(),
                },
                &app.operator(),
            ))
            .await;
        if w.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write within {RECOVERY:?} of the database's return: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_after = back.elapsed();
    let before = accepted_writes.load(Ordering::Relaxed);
    eventually("the load's own writes flow again", || {
        let n = accepted_writes.clone();
        async move { n.load(Ordering::Relaxed) >= before + 5 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = load.await.unwrap();

    // Never a wrong answer, never INTERNAL: right, or UNAVAILABLE.
    for o in &outcomes {
        match (&o.call, &o.result) {
            (Call::Check, Ok(r)) => assert_eq!(r, "Some(Granted)", "a wrong answer: {o:?}"),
            (_, Err((code, reason))) => assert!(
                *code == Code::Unavailable && reason == "DATABASE_UNAVAILABLE",
                "{o:?}"
            ),
            (Call::Create(_), Ok(_)) => {}
        }
    }
    // No accepted write lost: a fresh replica reads every account answered OK.
    let replica = app.replica().await;
    let accepted: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match (&o.call, &o.result) {
            (Call::Create(icn), Ok(_)) => Some(icn),
            _ => None,
        })
        .collect();
    for icn in &accepted {
        replica
            .admin()
            .get_account(authed(
                pb::GetAccountRequest {
                    icn: (*icn).clone(),
                },
                &app.operator(),
            ))
            .await
            .unwrap_or_else(|e| panic!("accepted account {icn} lost: {e:?}"));
    }
    let during = |o: &&Outcome| o.at > down && o.at < back;
    let in_outage: Vec<&Outcome> = outcomes.iter().filter(during).collect();
    let cached = in_outage
        .iter()
        .filter(|o| matches!((&o.call, &o.result), (Call::Check, Ok(_))))
        .collect::<Vec<_>>();
    let last_cached = cached.iter().map(|o| o.at - down).max().unwrap_or_default();
    assert!(
        in_outage.iter().any(|o| o.result.is_err()),
        "the load went on through the outage and was refused"
    );
    // The staleness bound is 1 s from the feed's last read; a wide margin for a busy machine.
    assert!(
        last_cached < Duration::from_secs(5),
        "cached checks went on {last_cached:?} into the outage"
    );
    println!(
        "outage {OUTAGE:?}: {} calls ({} accepted writes, all present), {} during the outage \
         ({} cached checks answered, the last {last_cached:?} in), NOT_SERVING after {not_serving_after:?}, \
         serving again {recovered_after:?} after the database's return",
        outcomes.len(),
        accepted.len(),
        in_outage.len(),
        cached.len(),
    );
}
