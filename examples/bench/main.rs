//! CheckEntitlement benchmark: the service against a constant-answer tonic server, measured in
//! the same run, by the same load generator, on the same machine. See docs/benchmarks.md.
//!
//!     cargo run --release --example bench                 # full: 100k accounts, 1M memberships, both stores
//!     cargo run --example bench -- --smoke                # CI: small data, short runs

/// The same allocator as the `entitlements` binary, for both servers under test.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod dataset;
mod load;
mod servers;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use entitlements::proto::v1 as pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use dataset::Shape;
use load::{Load, Report};

const RSA_PEM: &str = include_str!("../../src/auth/testdata/rsa2048-test-only.pem");
const ISSUER: &str = "bench-idp";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand)]
enum Mode {
    /// (internal) the service, as a child process
    ServeReal(Box<entitlements::config::ServeArgs>),
    /// (internal) the constant-answer baseline, as a child process
    ServeConstant,
}

#[derive(clap::Args, Clone)]
struct Opts {
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
    store: String,
    #[arg(long, default_value_t = 100_000)]
    accounts: i64,
    #[arg(long, default_value_t = 1_000_000)]
    members: i64,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Rounds of (baseline, service) runs, interleaved; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Revocation samples across three replicas on PostgreSQL (0 skips).
    #[arg(long, default_value_t = 50)]
    revocations: usize,
    /// Small and short, for CI: 1k accounts, 10k memberships, 2 s runs, 10 revocations.
    #[arg(long)]
    smoke: bool,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_admin_url: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.mode {
        Some(Mode::ServeReal(args)) => rt.block_on(servers::serve_real(*args)),
        Some(Mode::ServeConstant) => rt.block_on(servers::serve_constant()),
        None => rt.block_on(drive(cli.opts)),
    }
}

fn token(scope: &str, sub: &str) -> anyhow::Result<String> {
    let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench-rsa".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({ "sub": sub, "iss": ISSUER, "aud": "entitlements", "iat": now, "exp": now + 3600, "scope": scope });
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

fn write_jwks(path: &std::path::Path) -> anyhow::Result<()> {
    let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes())?;
    let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(
        &key,
        Algorithm::RS256,
    )?)?;
    jwk["kid"] = json!("bench-rsa");
    jwk["use"] = json!("sig");
    std::fs::write(path, serde_json::to_vec(&json!({ "keys": [jwk] }))?)?;
    Ok(())
}

struct Run {
    name: String,
    report: Report,
    /// The baseline measured in the same rounds.
    base: Report,
    rss_mib: Option<f64>,
    warm: Option<Duration>,
}

async fn drive(mut o: Opts) -> anyhow::Result<()> {
    if o.smoke {
        (
            o.accounts,
            o.members,
            o.warmup_secs,
            o.duration_secs,
            o.revocations,
        ) = (1_000, 10_000, 1, 2, 10);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    servers::pin_self(1);
    let shape = Shape {
        accounts: o.accounts,
        members: o.members,
    };
    let load = Load {
        connections: o.connections,
        in_flight: o.in_flight,
        warmup: Duration::from_secs(o.warmup_secs),
        duration: Duration::from_secs(o.duration_secs),
    };
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    write_jwks(&jwks)?;
    let checker = token("entitlements.check", "ticketing")?;
    let operator = token("entitlements.admin", "operator")?;
    println!(
        "machine: {} cores; load: {} connections, {} in flight, {}s warm-up, {}s measured; data: {} accounts, {} memberships; taskset: {}",
        cores,
        load.connections,
        load.in_flight,
        o.warmup_secs,
        o.duration_secs,
        shape.accounts,
        shape.members,
        servers::has_taskset()
    );

    // The baseline stays up for the whole run: each service measurement is paired with a
    // baseline measurement taken right before it, so both see the same machine load.
    let constant = servers::spawn("serve-constant", &[], Some(0))?;
    let mut runs = Vec::new();
    let mut failed = false;
    for store in ["sqlite", "postgres"] {
        if o.store != "both" && o.store != store {
            continue;
        }
        let url = match store {
            "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            _ => dataset::fresh_postgres(&o.postgres_admin_url, "entitlements_bench").await?,
        };
        let seeded = Instant::now();
        let st = entitlements::store::connect(&url).await?;
        st.migrate().await?;
        drop(st);
        match store {
            "sqlite" => dataset::seed_sqlite(&url, shape).await?,
            _ => dataset::seed_postgres(&url, shape).await?,
        }
        println!("{store}: seeded in {:.1}s", seeded.elapsed().as_secs_f64());
        let args = serve_args(&url, &jwks, dir.path());
        let server = servers::spawn("serve-real", &args, Some(0))?;
        wait_serving(&server.addr).await?;
        let t = Instant::now();
        let allowed = load::warm_all(&server.addr, &checker, shape).await?;
        let warm = t.elapsed();
        if allowed != shape.members as u64 {
            eprintln!(
                "{store}: only {allowed} of {} memberships were allowed",
                shape.members
            );
            failed = true;
        }
        let rss = server.rss_mib();
        let (mut base, mut real) = (Vec::new(), Vec::new());
        for round in 1..=o.rounds.max(1) {
            eprintln!("  round {round}: measuring the baseline");
            let b = measured(&constant, &checker, shape, load).await?;
            eprintln!(
                "  round {round}: measuring {store} (server pid {})",
                server.pid()
            );
            let r = measured(&server, &checker, shape, load).await?;
            failed |= r.errors > 0;
            println!(
                "  round {round}: baseline {:>7.0}/s p99 {:>5} us cpu {:>5.1} us/call ({} calls) | {store} {:>7.0}/s p99 {:>5} us cpu {:>5.1} us/call ({} calls)",
                b.per_sec,
                b.p99_us,
                b.cpu_us_per_call,
                b.calls,
                r.per_sec,
                r.p99_us,
                r.cpu_us_per_call,
                r.calls
            );
            base.push(b);
            real.push(r);
        }
        let run = Run {
            name: format!("entitlements on {store}"),
            report: median(&real),
            base: median(&base),
            rss_mib: rss,
            warm: Some(warm),
        };
        print_run(&run);
        runs.push(run);
        if store == "postgres" && o.revocations > 0 {
            revocation(
                server,
                &url,
                &jwks,
                dir.path(),
                &checker,
                &operator,
                shape,
                o.revocations,
            )
            .await?;
        } else {
            drop(server);
        }
        if store == "postgres" {
            dataset::drop_postgres(&o.postgres_admin_url, "entitlements_bench").await?;
        }
    }
    drop(constant);
    println!("\nsummary (targets: throughput >= 0.85x baseline, p99 <= 1.2x baseline)");
    for r in &runs {
        let tput = r.report.per_sec / r.base.per_sec;
        let p99 = r.report.p99_us as f64 / r.base.p99_us.max(1) as f64;
        println!(
            "  {:<28} {:>9.0} calls/s  {:.2}x  p99 {:.2}x  {}",
            r.name,
            r.report.per_sec,
            tput,
            p99,
            if tput >= 0.85 && p99 <= 1.2 {
                "meets targets"
            } else {
                "MISSES targets"
            }
        );
    }
    anyhow::ensure!(!failed, "the benchmark saw errors or wrong answers");
    Ok(())
}

fn serve_args(url: &str, jwks: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    use base64::Engine;
    // Outside dev mode the server seals queued email with a key it is given.
    let mail_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    [
        "--mail-key",
        &mail_key,
        "--database-url",
        url,
        "--auth-jwks",
        &jwks.display().to_string(),
        "--auth-issuer",
        ISSUER,
        "--mail-dir",
        &dir.join("mail").display().to_string(),
        "--data-dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn print_run(r: &Run) {
    println!(
        "{} (median of rounds): {:.0} calls/s = {:.2}x baseline ({:.0}/s); p50 {} us; p99 {} us = {:.2}x baseline ({} us); server CPU {:.1} us/call vs {:.1}; errors {}; server RSS with a full cache {}; {}",
        r.name,
        r.report.per_sec,
        r.report.per_sec / r.base.per_sec,
        r.base.per_sec,
        r.report.p50_us,
        r.report.p99_us,
        r.report.p99_us as f64 / r.base.p99_us.max(1) as f64,
        r.base.p99_us,
        r.report.cpu_us_per_call,
        r.base.cpu_us_per_call,
        r.report.errors,
        r.rss_mib
            .map(|m| format!("{m:.0} MiB"))
            .unwrap_or_else(|| "?".into()),
        r.warm
            .map(|w| format!("cache warmed in {:.1}s", w.as_secs_f64()))
            .unwrap_or_default(),
    );
}

/// Runs the load against `server`, also measuring the server's CPU time per call: the
/// throughput of both servers can be capped by the load generator (one core), CPU per call
/// is not.
async fn measured(
    server: &servers::Server,
    token: &str,
    shape: Shape,
    load: Load,
) -> anyhow::Result<Report> {
    let before = server.cpu_secs();
    let t = Instant::now();
    let mut r = load::run(&server.addr, token, shape, load).await?;
    let elapsed = t.elapsed().as_secs_f64();
    if let (Some(b), Some(a)) = (before, server.cpu_secs()) {
        // The warm-up calls are not counted; scale the CPU to the measured share of the run.
        let measured_share = load.duration.as_secs_f64() / elapsed;
        r.cpu_us_per_call = (a - b) * measured_share * 1e6 / (r.calls.max(1) as f64);
    }
    Ok(r)
}

/// The round with the median throughput (its latencies come with it).
fn median(rs: &[Report]) -> Report {
    let mut v = rs.to_vec();
    v.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    v[v.len() / 2]
}

async fn wait_serving(addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    loop {
        if let Ok(ch) = tonic::transport::Channel::from_shared(addr.to_owned())?
            .connect()
            .await
        {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
            let req = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            if h.check(req)
                .await
                .is_ok_and(|r| r.into_inner().status == serving)
            {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{addr} did not become SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three replicas on one PostgreSQL: after an operator suspends an account through one
/// replica, how long until every replica denies (no consistency token)?
#[allow(clippy::too_many_arguments)]
async fn revocation(
    first: servers::Server,
    url: &str,
    jwks: &std::path::Path,
    dir: &std::path::Path,
    checker: &str,
    operator: &str,
    shape: Shape,
    samples: usize,
) -> anyhow::Result<()> {
    let args = serve_args(url, jwks, dir);
    let others = [
        servers::spawn("serve-real", &args, None)?,
        servers::spawn("serve-real", &args, None)?,
    ];
    for s in &others {
        wait_serving(&s.addr).await?;
    }
    let mut admin = pb::account_admin_service_client::AccountAdminServiceClient::new(
        tonic::transport::Channel::from_shared(first.addr.clone())?
            .connect()
            .await?,
    );
    let mut checkers = Vec::new();
    for s in std::iter::once(&first).chain(others.iter()) {
        checkers.push(
            pb::entitlement_service_client::EntitlementServiceClient::new(
                tonic::transport::Channel::from_shared(s.addr.clone())?
                    .connect()
                    .await?,
            ),
        );
    }
    let mut lags = Vec::new();
    for i in 0..samples {
        let m = (i as i64 * 7_919) % shape.members;
        let (icn, _) = shape.member(m);
        let set = |status: pb::AccountStatus| pb::SetAccountStatusRequest {
            icn: icn.clone(),
            status: status as i32,
            reason: "bench".into(),
        };
        // Every replica has the member cached as allowed.
        for c in checkers.iter_mut() {
            let d = c
                .check_entitlement(authed(load::request(shape, m), checker)?)
                .await?
                .into_inner();
            anyhow::ensure!(d.allowed, "member {m} not allowed before the revocation");
        }
        admin
            .set_account_status(authed(set(pb::AccountStatus::Suspended), operator)?)
            .await?;
        let t0 = Instant::now();
        let mut seen = vec![false; checkers.len()];
        while seen.iter().any(|s| !s) {
            for (k, c) in checkers.iter_mut().enumerate() {
                if !seen[k]
                    && !c
                        .check_entitlement(authed(load::request(shape, m), checker)?)
                        .await?
                        .into_inner()
                        .allowed
                {
                    seen[k] = true;
                }
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(10),
                "revocation not seen within 10 s"
            );
        }
        lags.push(t0.elapsed());
        admin
            .set_account_status(authed(set(pb::AccountStatus::Active), operator)?)
            .await?;
        for c in checkers.iter_mut() {
            let t1 = Instant::now();
            while !c
                .check_entitlement(authed(load::request(shape, m), checker)?)
                .await?
                .into_inner()
                .allowed
            {
                anyhow::ensure!(
                    t1.elapsed() < Duration::from_secs(10),
                    "restoration not seen"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "revocation seen by all 3 replicas (PostgreSQL, no token, {} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 100 ms)",
        lags.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lags[lags.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

fn authed<T>(m: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(r)
}
