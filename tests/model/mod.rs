//! Reference-model testing, the way Zanzibar-style systems prove their answers: proptest
//! draws random histories of calls by random actors (some of whom may not do what they try)
//! over a small universe, plays each against a real server and a second replica on the same
//! database, and after every step asks every check of the universe on both replicas and
//! compares each answer with an independent in-memory model of the rules (`reference.rs`,
//! `operators.rs`, `workflow.rs`: no service code): allowed, reason, role, the next step's
//! kind and the highest severity (issue 10; the step's names and dates are tests/next_steps.rs's
//! business, not the model's). Every mutation's success or failure, gRPC
//! code and ErrorInfo reason is compared too, and the lists' contents. Each person's
//! ListEntitlements is compared with the same model answers (`checks::lists`): exactly the
//! accounts whose check allows, with the check's role, products and severity 1. At the end of a history
//! a cold replica must answer exactly as the warm ones, and the verification emails sent must
//! be the model's. `known.rs` keeps the short histories of divergences found so far.
//!
//! How it reads the servers: the first replica is asked with the last mutation's consistency
//! token, the unknown ICN in a batch of its own first (see `checks::compare`); the second
//! replica with that token and the one the first answered with. After a clock move the
//! checks come at once (a deadline must hold before the sweeper runs), then the runner waits
//! for the sweeper to record the expiries and the lapses of time-boxed grants, so that no
//! later call races it; at the end each lapse must have been recorded exactly once.
//!
//! The model follows the TARGET semantics:
//! 1. a pending request past its deadline counts as EXPIRED from that instant, in checks and
//!    when decided (REQUEST_EXPIRED), whether or not the sweeper has recorded it yet;
//! 2. an administrator is an active STC or TC with a verified email on an ACTIVE account: on
//!    a suspended account their decisions, member changes and reads answer
//!    FAILED_PRECONDITION ACCOUNT_SUSPENDED (after the checks of who they are); operators
//!    keep their powers;
//! 3. a check's answer never depends on the checks asked before it;
//! 4. a time-boxed grant (ApproveRequest / UpdateMemberRole with `expire_time`) answers
//!    ACCESS_REVOKED from its end instant, swept or not, and is no longer listed;
//! 5. a renewal (an existing contract's end moved later, active account) asks for the
//!    recertification of every active member but the STCs within 30 days; CertifyMember (an
//!    administrator, not of themself, or an operator) confirms; the sweeper removes the
//!    unconfirmed at the deadline (ACCESS_REVOKED, no longer listed), each once. That removal
//!    is the sweeper's, not the decision's: after a clock move that crosses a deadline the
//!    runner waits for it on both replicas before the checks.
//!
//! Knobs (environment): ENTITLEMENTS_MODEL_CASES (histories per backend, default 6),
//! ENTITLEMENTS_MODEL_STEPS (most random steps per history, default 40; at least half that),
//! ENTITLEMENTS_MODEL_SHRINK_ITERS / ENTITLEMENTS_MODEL_SHRINK_SECS (bound shrinking),
//! ENTITLEMENTS_MODEL_SURVEY=1 (do not fail: tally every divergence over all histories),
//! ENTITLEMENTS_MODEL_FOCUS=<text> (only divergences whose kind contains the text count;
//! to shrink one known divergence at a time), ENTITLEMENTS_MODEL_VERBOSE=1 (print every
//! history played).
//! Shrunk failures are saved in tests/model/regressions.txt and replayed first.
//!
//! Run: `cargo test --test e2e model -- --nocapture` (prints a summary line per backend);
//! a long survey: `ENTITLEMENTS_MODEL_CASES=200 ENTITLEMENTS_MODEL_SURVEY=1 cargo test
//! --test e2e model::sqlite -- --nocapture`.

mod checks;
mod exec;
mod known;
mod operators;
mod ops;
mod reference;
mod report;
mod waits;
mod workflow;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};

use crate::support::{Backend, Clock, TestApp};
use exec::Tokens;
use ops::Op;
use reference::Model;
use report::{Divergence, check_divergence, expect_text, fail_at, merge, rpc_name, same_answer};

/// Whether a divergence of this kind counts (see ENTITLEMENTS_MODEL_FOCUS).
fn focused(kind: &str) -> bool {
    std::env::var("ENTITLEMENTS_MODEL_FOCUS").map_or(true, |f| kind.contains(&f))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Stats {
    histories: u64,
    steps: u64,
    checks: u64,
    divergent_checks: u64,
    divergent_histories: u64,
    kinds: BTreeMap<String, u64>,
    /// The first history that showed each kind, when surveying.
    examples: BTreeMap<String, String>,
}

#[test]
fn sqlite() {
    run(Backend::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
fn postgres() {
    run(Backend::Postgres);
}

#[test]
fn known_sqlite() {
    known(Backend::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL"
)]
fn known_postgres() {
    known(Backend::Postgres);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Plays the hand-kept histories of `known.rs`; reports every one that diverges.
fn known(backend: Backend) {
    let stats = Mutex::new(Stats::default());
    let rt = runtime();
    let failures: Vec<String> = known::histories()
        .into_iter()
        .filter_map(|(name, focus, history)| {
            let outcome = rt.block_on(play(backend, &history, &stats, false, &|k| {
                k.contains(focus)
            }));
            let d = outcome.err()?;
            let about = d.kinds.iter().any(|k| k.contains(focus));
            about.then(|| format!("--- {name}\n{}", d.text))
        })
        .collect();
    rt.shutdown_timeout(Duration::from_secs(5));
    assert!(
        failures.is_empty(),
        "{} known histories diverge from the model:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn run(backend: Backend) {
    let cases = env_or("ENTITLEMENTS_MODEL_CASES", 6) as u32;
    let max_steps = env_or("ENTITLEMENTS_MODEL_STEPS", 40).max(1) as usize;
    let survey = std::env::var("ENTITLEMENTS_MODEL_SURVEY").is_ok_and(|v| v == "1");
    let config = Config {
        cases,
        max_shrink_iters: env_or("ENTITLEMENTS_MODEL_SHRINK_ITERS", 200) as u32,
        max_shrink_time: 1000 * env_or("ENTITLEMENTS_MODEL_SHRINK_SECS", 60) as u32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/model/regressions.txt",
        ))),
        ..Config::default()
    };
    let stats = Mutex::new(Stats::default());
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&ops::history(max_steps.div_ceil(2), max_steps), |history| {
        let rt = runtime();
        let outcome = rt.block_on(play(backend, &history, &stats, survey, &focused));
        rt.shutdown_timeout(Duration::from_secs(5));
        let mut s = stats.lock().expect("stats");
        s.histories += 1;
        match outcome {
            Ok(()) => Ok(()),
            // A divergence out of focus ends its history unremarked.
            Err(d) if !d.kinds.iter().any(|k| focused(k)) => Ok(()),
            Err(d) => {
                s.divergent_histories += 1;
                for k in &d.kinds {
                    *s.kinds.entry(k.clone()).or_default() += 1;
                    s.examples
                        .entry(k.clone())
                        .or_insert_with(|| d.text.clone());
                }
                if survey {
                    Ok(())
                } else {
                    Err(TestCaseError::fail(d.text))
                }
            }
        }
    });
    let s = stats.into_inner().expect("stats");
    println!(
        "model summary [{backend:?}]: {} histories (incl. shrinking), {} steps, {} checks compared, {} divergent checks, {} histories diverged, {:.1} s",
        s.histories,
        s.steps,
        s.checks,
        s.divergent_checks,
        s.divergent_histories,
        started.elapsed().as_secs_f64()
    );
    for (kind, n) in &s.kinds {
        println!("  {n:>5} x {kind}");
    }
    if survey {
        for (kind, text) in &s.examples {
            println!("\n=== first history showing: {kind}\n{text}");
        }
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, _)) => panic!("{why}"),
        Err(TestError::Abort(why)) => panic!("model test aborted: {why}"),
    }
}

/// Plays one history; Err at the first divergence (or, when surveying, at the first
/// divergent mutation, after recording every divergent check on the way).
async fn play(
    backend: Backend,
    history: &[Op],
    stats: &Mutex<Stats>,
    survey: bool,
    focus: &dyn Fn(&str) -> bool,
) -> Result<(), Divergence> {
    let app = TestApp::spawn(backend).await;
    let replica = app.replica().await;
    let tokens = Tokens::new(&app);
    let mut model = Model::new(app.clock.now_ms());
    let mut ids: Vec<String> = Vec::new();
    let (mut token, mut seen) = (String::new(), String::new());
    let mut found = Divergence {
        kinds: Vec::new(),
        text: String::new(),
    };
    // What was played: each drawn operation as it was made concrete, for the story.
    let mut shown = history.to_vec();
    for (i, drawn) in history.iter().enumerate() {
        let op = &model.concrete(drawn);
        shown[i] = op.clone();
        let request = match op {
            Op::Approve { req, .. } | Op::Deny { req, .. } | Op::Withdraw { req, .. } => {
                model.resolve(*req)
            }
            _ => None,
        };
        let request = request.map_or(exec::UNKNOWN_REQUEST.to_owned(), |r| ids[r].clone());
        let code = match op {
            Op::VerifyEmail {
                by,
                right_code: true,
            } => match model.live_code(*by) {
                Some((to, nth)) => match waits::nth_code(&app, &to, nth).await {
                    Ok(c) => c,
                    Err(e) => {
                        return Err(fail_at(
                            backend,
                            &shown,
                            i,
                            &e,
                            &model,
                            "verification email missing".into(),
                        ));
                    }
                },
                None => exec::WRONG_CODE.to_owned(),
            },
            _ => exec::WRONG_CODE.to_owned(),
        };
        let now = model.now;
        let removed_before: usize = model.unrecertified.values().sum();
        let want = model.step(op);
        if let Op::Advance(ms) = op {
            app.clock.advance(*ms);
        }
        let got = exec::play(&app, &tokens, op, &request, &code, now).await;
        stats.lock().expect("stats").steps += 1;
        if !same_answer(&want, &got.answer, &mut ids) {
            let answer = match &got.answer {
                Ok(d) => format!("OK {d:?}"),
                Err((c, r)) => format!("{c:?} {r}"),
            };
            let what = format!("  model:  {}\n  server: {answer}", expect_text(&want));
            let kind = format!(
                "{}: model {} / server {answer}",
                rpc_name(op),
                expect_text(&want)
            );
            return Err(fail_at(backend, &shown, i, &what, &model, kind));
        }
        if let Some(t) = got.token {
            token = t;
        }
        // Members not recertified in time are removed by the sweeper (within about a second
        // of the deadline, not at its instant): wait for it, and for both replicas to have
        // followed, before the checks.
        if model.unrecertified.values().sum::<usize>() > removed_before {
            if let Err(e) = waits::wait_unrecertified(&app, &tokens, &model.unrecertified).await {
                return Err(fail_at(
                    backend,
                    &shown,
                    i,
                    &e,
                    &model,
                    "sweeper too slow".into(),
                ));
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let (a, _, _) = checks::compare(
                    &app,
                    &tokens.checker,
                    &model,
                    (&token, ""),
                    "replica 1",
                    true,
                )
                .await;
                let (b, _, _) = checks::compare(
                    &replica,
                    &tokens.checker,
                    &model,
                    (&token, ""),
                    "replica 2",
                    false,
                )
                .await;
                if (a.is_empty() && b.is_empty()) || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Both replicas, the second no older than what the first answered from.
        let (mut wrong, n, through) = checks::compare(
            &app,
            &tokens.checker,
            &model,
            (&token, ""),
            "replica 1",
            true,
        )
        .await;
        seen = through;
        let (more, m, _) = checks::compare(
            &replica,
            &tokens.checker,
            &model,
            (&token, &seen),
            "replica 2",
            false,
        )
        .await;
        wrong.extend(more);
        wrong.retain(|m| focus(&m.kind));
        {
            let mut s = stats.lock().expect("stats");
            s.checks += (n + m) as u64;
            s.divergent_checks += wrong.len() as u64;
        }
        if !wrong.is_empty() {
            let d = check_divergence(backend, &shown, i, &wrong, &model);
            if !survey {
                return Err(d);
            }
            merge(&mut found, d);
        }
        if matches!(op, Op::Advance(_)) {
            // Let the sweeper record the lapses of time-boxed grants, too.
            if let Err(e) = waits::wait_lapses(&app, &tokens, &model.lapses).await {
                return Err(fail_at(
                    backend,
                    &shown,
                    i,
                    &e,
                    &model,
                    "sweeper too slow".into(),
                ));
            }
            // Let the sweeper record the expiries before the next step, so no call races it.
            for icn in 0..2 {
                let due: Vec<String> = model
                    .overdue()
                    .into_iter()
                    .filter(|&r| model.requests[r].icn == icn)
                    .map(|r| ids[r].clone())
                    .collect();
                if due.is_empty() {
                    continue;
                }
                if let Err(e) = waits::wait_swept(&app, &tokens, icn, &due).await {
                    return Err(fail_at(
                        backend,
                        &shown,
                        i,
                        &e,
                        &model,
                        "sweeper too slow".into(),
                    ));
                }
            }
        }
    }
    let end = history.len();
    let cold = replica.replica().await;
    let (mut wrong, n, _) = checks::compare(
        &cold,
        &tokens.checker,
        &model,
        (&token, &seen),
        "cold replica",
        false,
    )
    .await;
    stats.lock().expect("stats").checks += n as u64;
    wrong.retain(|m| focus(&m.kind));
    if !wrong.is_empty() {
        let d = check_divergence(backend, &shown, end, &wrong, &model);
        if !survey {
            return Err(d);
        }
        merge(&mut found, d);
    }
    // Each removal for want of recertification recorded exactly once.
    match waits::unrecertified_recorded(&app, &tokens).await {
        Ok(got) if got == model.unrecertified => {}
        Ok(got) => {
            return Err(fail_at(
                backend,
                &shown,
                end,
                &format!(
                    "  model: not recertified {:?}\n  server: {got:?}",
                    model.unrecertified
                ),
                &model,
                "not recertified recorded".into(),
            ));
        }
        Err(e) => {
            return Err(fail_at(
                backend,
                &shown,
                end,
                &e,
                &model,
                "not recertified recorded".into(),
            ));
        }
    }
    // Each lapse recorded exactly once (two replicas sweep the same database).
    match waits::lapses_recorded(&app, &tokens).await {
        Ok(got) if got == model.lapses => {}
        Ok(got) => {
            let what = format!(
                "  model: lapses recorded {:?}\n  server: {got:?}",
                model.lapses
            );
            return Err(fail_at(
                backend,
                &shown,
                end,
                &what,
                &model,
                "lapses recorded".into(),
            ));
        }
        Err(e) => {
            return Err(fail_at(
                backend,
                &shown,
                end,
                &e,
                &model,
                "lapses recorded".into(),
            ));
        }
    }
    for (to, want) in model.codes_sent.clone() {
        let n = waits::codes_sent(&app, &to, want).await;
        if n != want {
            let what = format!("  model: {want} verification email(s) to {to}\n  server: {n}");
            return Err(fail_at(
                backend,
                &shown,
                end,
                &what,
                &model,
                "verification emails sent".into(),
            ));
        }
    }
    if std::env::var("ENTITLEMENTS_MODEL_VERBOSE").is_ok_and(|v| v == "1") {
        let played = report::history_text(&shown, shown.len());
        println!(
            "history played ({} divergence kinds):\n{played}",
            found.kinds.len()
        );
    }
    if found.kinds.is_empty() {
        Ok(())
    } else {
        Err(found)
    }
}
