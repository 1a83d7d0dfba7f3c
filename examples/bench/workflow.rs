//! Write-path capacity: complete access workflows per second against one INSERT per call.
//!
//! A flow is what a person and an administrator do through a portal: a fresh person (token
//! with an email claim) calls `RequestAccess` on a workflow account, the account's Site
//! Technical Contact (verified) calls `ApproveRequest`, and the person calls `VerifyEmail` with
//! the code the service emailed them, read from the `--mail-dir` files. The baseline is a
//! tonic server doing one INSERT per `RequestAccess` in its own transaction on the same
//! database (`servers::serve_insert`). Both are driven by the same closed-loop generator
//! (`in_flight` workers, each starting its next unit when the last one ends), interleaved over
//! the rounds.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entitlements::auth::dev::{DevKey, MintRequest};
use entitlements::proto::v1 as pb;
use pb::access_service_client::AccessServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::dataset::{self, Footprint};
use crate::servers::{self, Server};

/// How long a flow waits for its verification email before it counts as failed.
const MAIL_DEADLINE: Duration = Duration::from_secs(15);
/// How often the inbox reader looks at the mail directory.
const MAIL_POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct Params {
    /// Flows (or baseline calls) in flight, one measurement each.
    pub in_flight: Vec<usize>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
    /// Workflow accounts seeded (each with one verified STC); flow n asks account n % accounts.
    pub accounts: i64,
}

/// One closed-loop run: a unit is a whole flow (service) or one call (baseline).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunReport {
    /// Units completed without error inside the measured window.
    pub units: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// gRPC calls made by the measured units, per unit.
    pub calls_per_unit: f64,
    /// Units completed over the whole run (warm-up included), for the database footprint.
    pub total_units: u64,
    /// Server CPU per measured unit, in microseconds.
    pub cpu_us_per_unit: f64,
    /// Median time of each stage of the measured units (`Unit::STAGES`), in microseconds.
    pub stage_p50_us: [u64; MAX_STAGES],
}

pub const MAX_STAGES: usize = 4;

/// What one unit did: its gRPC calls and how long each stage took (microseconds).
pub struct Done {
    pub calls: u32,
    pub stages: [u32; MAX_STAGES],
}

fn us_since(t: Instant) -> u32 {
    u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// One row of the result table: a store and a concurrency, medians over the rounds.
#[derive(Debug, Clone)]
pub struct Row {
    pub store: String,
    pub in_flight: usize,
    pub flows: RunReport,
    pub inserts: RunReport,
    /// Per flow, over the run whose throughput was the median.
    pub revisions_per_flow: f64,
    pub audit_per_flow: f64,
    pub emails_per_flow: f64,
    pub errors: u64,
}

/// A unit of work for the generator.
pub trait Unit: Clone + Send + 'static {
    /// Names of the stages a unit reports the time of.
    const STAGES: &'static [&'static str];
    /// Does one unit.
    fn once(&mut self) -> impl Future<Output = anyhow::Result<Done>> + Send;
}

/// `in_flight` workers doing units back to back over `connections` HTTP/2 connections, for
/// `warmup` then `duration`; only units started in the measured window count for rate and
/// latency, but a failure counts as an error whenever it happens.
pub async fn closed_loop<U: Unit>(
    server: &Server,
    in_flight: usize,
    warmup: Duration,
    duration: Duration,
    make: impl Fn(Channel) -> U,
    connections: usize,
) -> anyhow::Result<RunReport> {
    let chans = crate::load::channels(&server.addr, connections.min(in_flight).max(1)).await?;
    let cpu_before = server.cpu_secs();
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    // The first failure of the run is shown; the others are counted.
    let shown = Arc::new(AtomicBool::new(false));
    for t in 0..in_flight.max(1) {
        let mut unit = make(chans[t % chans.len()].clone());
        let shown = shown.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut calls, mut total) = (Vec::new(), 0u64, 0u64, 0u64);
            let mut stages: [Vec<u32>; MAX_STAGES] = Default::default();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let r = unit.once().await;
                let done = Instant::now();
                total += 1;
                match r {
                    Ok(d) if now >= measure_from => {
                        calls += u64::from(d.calls);
                        lat.push(
                            u32::try_from(done.duration_since(now).as_micros()).unwrap_or(u32::MAX),
                        );
                        for (v, s) in stages.iter_mut().zip(d.stages) {
                            v.push(s);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !shown.swap(true, Ordering::Relaxed) {
                            eprintln!("    first failure of this run: {e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            (lat, errors, calls, total, stages)
        }));
    }
    let (mut all, mut errors, mut calls, mut total) = (Vec::new(), 0, 0, 0);
    let mut stages: [Vec<u32>; MAX_STAGES] = Default::default();
    for t in tasks {
        let (lat, e, c, n, s) = t.await?;
        all.extend(lat);
        errors += e;
        calls += c;
        total += n;
        for (all_s, s) in stages.iter_mut().zip(s) {
            all_s.extend(s);
        }
    }
    let mut stage_p50_us = [0u64; MAX_STAGES];
    for (p50, mut v) in stage_p50_us.iter_mut().zip(stages) {
        v.sort_unstable();
        *p50 = v.get(v.len() / 2).copied().unwrap_or(0).into();
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0) as u64
    };
    let units = all.len() as u64;
    let cpu_us_per_unit = match (cpu_before, server.cpu_secs()) {
        // Warm-up and the tail after the window are not counted: scale to the measured share.
        (Some(b), Some(a)) => {
            (a - b) * (duration.as_secs_f64() / elapsed) * 1e6 / (units.max(1) as f64)
        }
        _ => 0.0,
    };
    Ok(RunReport {
        units,
        errors,
        per_sec: units as f64 / duration.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        calls_per_unit: calls as f64 / (units.max(1) as f64),
        total_units: total,
        cpu_us_per_unit,
        stage_p50_us,
    })
}

/// Person numbers, unique across the whole benchmark run (each store has its own database).
static NEXT_PERSON: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
struct Flow {
    access: AccessServiceClient<Channel>,
    key: Arc<DevKey>,
    issuer: &'static str,
    /// `authorization` values of the workflow accounts' STCs, by account.
    stc: Arc<Vec<MetadataValue<tonic::metadata::Ascii>>>,
    inbox: Arc<Inbox>,
}

impl Unit for Flow {
    const STAGES: &'static [&'static str] = &["request", "approve", "mail wait", "verify"];

    async fn once(&mut self) -> anyhow::Result<Done> {
        let n = NEXT_PERSON.fetch_add(1, Ordering::Relaxed);
        let k = n % (self.stc.len() as u64);
        let web_id = format!("wf{n}");
        let email = format!("{web_id}@example.com");
        // A fresh person, as the identity provider would sign them in (Ed25519, ~20 µs to
        // sign, so minting stays off the load generator's critical path).
        let mut mint = MintRequest::new(web_id.clone());
        mint.issuer = self.issuer.to_owned();
        mint.email = Some(email.clone());
        mint.given_name = Some("Flow".into());
        mint.family_name = Some(format!("Person {n}"));
        let person: MetadataValue<_> = format!("Bearer {}", self.key.mint(&mint)?).parse()?;

        let mut stages = [0; MAX_STAGES];
        let t = Instant::now();
        let mut req = tonic::Request::new(pb::RequestAccessRequest {
            request_id: String::new(),
            icn: dataset::workflow_icn(k as i64),
            country_code: "US".into(),
            requested_role: pb::Role::AuthorizedUser as i32,
        });
        req.metadata_mut().insert("authorization", person.clone());
        let id = self
            .access
            .request_access(req)
            .await?
            .into_inner()
            .access_request
            .ok_or_else(|| anyhow::anyhow!("RequestAccess answered without a request"))?
            .access_request_id;
        stages[0] = us_since(t);

        let t = Instant::now();
        let mut req = tonic::Request::new(pb::ApproveRequestRequest {
            request_id: String::new(),
            access_request_id: id,
            granted_role: 0,
            expire_time: None,
        });
        let stc = self
            .stc
            .get(k as usize)
            .ok_or_else(|| anyhow::anyhow!("no STC for account {k}"))?;
        req.metadata_mut().insert("authorization", stc.clone());
        let approved = self.access.approve_request(req).await?.into_inner();
        anyhow::ensure!(
            approved
                .access_request
                .is_some_and(|r| r.state == pb::AccessRequestState::Approved as i32),
            "ApproveRequest did not approve"
        );
        stages[1] = us_since(t);

        let t = Instant::now();
        let code = self.inbox.code_for(&email, MAIL_DEADLINE).await?;
        stages[2] = us_since(t);

        let t = Instant::now();
        let mut req = tonic::Request::new(pb::VerifyEmailRequest {
            request_id: String::new(),
            code,
        });
        req.metadata_mut().insert("authorization", person);
        let verified = self.access.verify_email(req).await?.into_inner();
        anyhow::ensure!(verified.email_verified, "VerifyEmail did not verify");
        stages[3] = us_since(t);
        Ok(Done { calls: 3, stages })
    }
}

#[derive(Clone)]
struct InsertCall {
    access: AccessServiceClient<Channel>,
    auth: MetadataValue<tonic::metadata::Ascii>,
}

impl Unit for InsertCall {
    const STAGES: &'static [&'static str] = &["insert"];

    async fn once(&mut self) -> anyhow::Result<Done> {
        let mut req = tonic::Request::new(pb::RequestAccessRequest {
            request_id: String::new(),
            icn: dataset::workflow_icn(0),
            country_code: "US".into(),
            requested_role: pb::Role::AuthorizedUser as i32,
        });
        req.metadata_mut()
            .insert("authorization", self.auth.clone());
        let t = Instant::now();
        self.access.request_access(req).await?;
        let mut stages = [0; MAX_STAGES];
        stages[0] = us_since(t);
        Ok(Done { calls: 1, stages })
    }
}

/// Verification codes from the mail directory, as a person's mail client would see them: a
/// reader thread picks up each `.eml` file (the service writes them atomically), notes the
/// code it carries for its `To:` address and removes the file, so the directory stays small
/// however many flows run.
pub struct Inbox {
    codes: Mutex<HashMap<String, String>>,
    arrived: tokio::sync::Notify,
    stop: AtomicBool,
    read: AtomicU64,
}

impl Inbox {
    pub fn start(dir: PathBuf) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox {
            codes: Mutex::new(HashMap::new()),
            arrived: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
            read: AtomicU64::new(0),
        });
        let reader = inbox.clone();
        std::thread::spawn(move || {
            while !reader.stop.load(Ordering::Relaxed) {
                reader.scan(&dir);
                std::thread::sleep(MAIL_POLL);
            }
        });
        inbox
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Emails read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    fn scan(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut found = false;
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let Ok(mail) = std::fs::read_to_string(&path) else {
                continue;
            };
            let _ = std::fs::remove_file(&path);
            self.read.fetch_add(1, Ordering::Relaxed);
            if let (Some(to), Some(code)) = (recipient(&mail), code(&mail)) {
                self.codes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(to, code);
                found = true;
            }
        }
        if found {
            self.arrived.notify_waiters();
        }
    }

    /// The code emailed to `to`, waiting up to `deadline` for it.
    pub async fn code_for(&self, to: &str, deadline: Duration) -> anyhow::Result<String> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(code) = self
                .codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(to)
            {
                return Ok(code);
            }
            if tokio::time::timeout_at(until, arrived).await.is_err() {
                anyhow::bail!("no verification code for {to} within {deadline:?}");
            }
        }
    }
}

/// The address of the `To:` header (`addr` or `Name <addr>`), lower-cased.
fn recipient(mail: &str) -> Option<String> {
    let value = mail
        .lines()
        .take_while(|l| !l.trim_end().is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("To").then(|| v.trim().to_owned())
        })?;
    let addr = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.as_str(),
    };
    Some(addr.trim().to_ascii_lowercase())
}

fn code(mail: &str) -> Option<String> {
    mail.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix("Verification code: ")
            .map(|c| c.trim().to_owned())
    })
}

/// Tokens of the workflow accounts' STCs, one per account.
fn stc_tokens(
    key: &DevKey,
    issuer: &'static str,
    accounts: i64,
) -> anyhow::Result<Vec<MetadataValue<tonic::metadata::Ascii>>> {
    (0..accounts)
        .map(|k| {
            let web_id = dataset::workflow_stc(k);
            let mut mint = MintRequest::new(web_id.clone());
            mint.issuer = issuer.to_owned();
            mint.email = Some(format!("{web_id}@example.com"));
            mint.given_name = Some("Site".into());
            mint.family_name = Some(format!("Contact {k}"));
            Ok(format!("Bearer {}", key.mint(&mint)?).parse()?)
        })
        .collect()
}

/// The workflow section on one store: the service `service` is already running on `url`.
#[allow(clippy::too_many_arguments)]
pub async fn section(
    store: &str,
    url: &str,
    service: &Server,
    key: Arc<DevKey>,
    issuer: &'static str,
    mail_dir: &Path,
    p: &Params,
) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(p.accounts > 0, "the workflow needs --workflow-accounts > 0");
    let baseline = servers::spawn(
        "serve-insert",
        &["--database-url".into(), url.into()],
        Some(0),
    )?;
    let stc = Arc::new(stc_tokens(&key, issuer, p.accounts)?);
    let base_auth: MetadataValue<_> = {
        let mut mint = MintRequest::new("baseline-person");
        mint.issuer = issuer.to_owned();
        mint.email = Some("baseline-person@example.com".into());
        format!("Bearer {}", key.mint(&mint)?).parse()?
    };
    let inbox = Inbox::start(mail_dir.to_path_buf());
    // Per concurrency: the service's runs (with their database footprint), the baseline's.
    type Runs = (usize, Vec<(RunReport, Footprint)>, Vec<RunReport>);
    let mut per_c: Vec<Runs> = p
        .in_flight
        .iter()
        .map(|&c| (c, Vec::new(), Vec::new()))
        .collect();
    let result = async {
        for round in 1..=p.rounds.max(1) {
            for (c, flows, inserts) in per_c.iter_mut() {
                let c = *c;
                let b = closed_loop(
                    &baseline,
                    c,
                    p.warmup,
                    p.duration,
                    |ch| InsertCall {
                        access: AccessServiceClient::new(ch),
                        auth: base_auth.clone(),
                    },
                    p.connections,
                )
                .await?;
                let before = dataset::footprint(url).await?;
                let f = closed_loop(
                    service,
                    c,
                    p.warmup,
                    p.duration,
                    |ch| Flow {
                        access: AccessServiceClient::new(ch),
                        key: key.clone(),
                        issuer,
                        stc: stc.clone(),
                        inbox: inbox.clone(),
                    },
                    p.connections,
                )
                .await?;
                let after = dataset::footprint(url).await?;
                let n = f.total_units.max(1) as f64;
                let fp = Footprint {
                    revision: after.revision - before.revision,
                    audit_events: after.audit_events - before.audit_events,
                    emails: after.emails - before.emails,
                };
                println!(
                    "  workflow round {round}, {c:>2} in flight: baseline {:>7.1} inserts/s p50 {:>6} us p99 {:>6} us cpu {:>6.0} us/insert ({} calls, {} errors) | {store} {:>6.1} flows/s p50 {:>6} us p99 {:>6} us cpu {:>6.0} us/flow ({} flows, {} errors; per flow: {:.2} calls, {:.2} revisions, {:.2} audit events, {:.2} emails; p50 of {})",
                    b.per_sec,
                    b.p50_us,
                    b.p99_us,
                    b.cpu_us_per_unit,
                    b.units,
                    b.errors,
                    f.per_sec,
                    f.p50_us,
                    f.p99_us,
                    f.cpu_us_per_unit,
                    f.units,
                    f.errors,
                    f.calls_per_unit,
                    fp.revision as f64 / n,
                    fp.audit_events as f64 / n,
                    fp.emails as f64 / n,
                    stages(&f),
                );
                if f.units == 0 {
                    eprintln!(
                        "    no flow started in the measured window completed: counted as a failure"
                    );
                }
                inserts.push(b);
                flows.push((f, fp));
            }
        }
        anyhow::Ok(())
    }
    .await;
    inbox.stop();
    drop(baseline);
    result?;
    eprintln!(
        "  workflow: {} emails read from the mail directory",
        inbox.read()
    );
    Ok(per_c
        .into_iter()
        .map(|(c, mut flows, inserts)| {
            // A run in which no flow completed is as much a failure as an error.
            let errors = flows
                .iter()
                .map(|(f, _)| f.errors + u64::from(f.units == 0))
                .sum::<u64>()
                + inserts
                    .iter()
                    .map(|b| b.errors + u64::from(b.units == 0))
                    .sum::<u64>();
            flows.sort_by(|a, b| a.0.per_sec.total_cmp(&b.0.per_sec));
            let (f, fp) = flows[flows.len() / 2];
            let n = f.total_units.max(1) as f64;
            Row {
                store: store.to_owned(),
                in_flight: c,
                flows: f,
                inserts: median(&inserts),
                revisions_per_flow: fp.revision as f64 / n,
                audit_per_flow: fp.audit_events as f64 / n,
                emails_per_flow: fp.emails as f64 / n,
                errors,
            }
        })
        .collect())
}

fn median(rs: &[RunReport]) -> RunReport {
    let mut v = rs.to_vec();
    v.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The flow's stages, p50 each: "request 3.1 / approve 4.0 / mail wait 1.2 / verify 2.9 ms".
fn stages(f: &RunReport) -> String {
    let names = <Flow as Unit>::STAGES;
    let values: Vec<String> = f
        .stage_p50_us
        .iter()
        .take(names.len())
        .map(|us| format!("{:.1}", *us as f64 / 1e3))
        .collect();
    format!("{} ms", names.join(" / ") + " " + &values.join(" / "))
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1e3)
}

pub fn print_table(rows: &[Row], rounds: usize) {
    println!(
        "\nworkflow: RequestAccess -> ApproveRequest -> VerifyEmail per flow, vs one INSERT per call (median of {rounds} rounds)"
    );
    println!(
        "| store | in flight | flows/s | baseline inserts/s | flows/s ÷ inserts/s | gRPC calls/flow | write tx/flow (feed revisions) | audit events/flow | emails/flow | flow p50 | flow p99 | insert p50 | insert p99 | server CPU/flow | CPU/insert | errors | flow stages, p50 |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.3}x | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {:.2} ms | {:.2} ms | {} | {} |",
            r.store,
            r.in_flight,
            r.flows.per_sec,
            r.inserts.per_sec,
            r.flows.per_sec / r.inserts.per_sec.max(f64::MIN_POSITIVE),
            r.flows.calls_per_unit,
            r.revisions_per_flow,
            r.audit_per_flow,
            r.emails_per_flow,
            ms(r.flows.p50_us),
            ms(r.flows.p99_us),
            ms(r.inserts.p50_us),
            ms(r.inserts.p99_us),
            r.flows.cpu_us_per_unit / 1e3,
            r.inserts.cpu_us_per_unit / 1e3,
            r.errors,
            stages(&r.flows),
        );
    }
}
