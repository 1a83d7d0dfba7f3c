//! The servers under test run as child processes of the benchmark (the same executable in
//! another mode), pinned to one core when `taskset` exists, so the load generator and the
//! server don't share a core and both servers are measured the same way.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use entitlements::proto::v1 as pb;
use pb::entitlement_service_server::{EntitlementService, EntitlementServiceServer};
use tonic::{Request, Response, Status};

pub struct Server {
    pub addr: String,
    child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server process has used so far, in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// Resident memory of the server process, in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this executable in `mode` with `args`; it prints `LISTENING <addr>` once serving.
pub fn spawn(mode: &str, args: &[String], core: Option<usize>) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let mut cmd = match core.filter(|_| has_taskset()) {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(&exe);
            cmd
        }
        None => Command::new(&exe),
    };
    cmd.arg(mode)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            anyhow::bail!("{mode} exited before serving")
        };
        if let Some(a) = line?.strip_prefix("LISTENING ") {
            break a.to_owned();
        }
    };
    // Keep draining the child's output: a closed pipe would fail its log writes.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        addr: format!("http://{addr}"),
        child,
    })
}

pub fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins the calling process (the load generator) to `core`.
pub fn pin_self(core: usize) {
    if has_taskset() {
        let _ = Command::new("taskset")
            .args([
                "-a",
                "-cp",
                &core.to_string(),
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .status();
    }
}

/// The baseline: a tonic server that answers every check with a constant, with the same
/// server settings as the service (timeout, concurrency limit, load shedding).
#[derive(Clone)]
struct Constant;

#[tonic::async_trait]
impl EntitlementService for Constant {
    async fn check_entitlement(
        &self,
        _req: Request<pb::CheckEntitlementRequest>,
    ) -> Result<Response<pb::CheckEntitlementResponse>, Status> {
        Ok(Response::new(pb::CheckEntitlementResponse {
            allowed: true,
            reason: pb::DecisionReason::Granted as i32,
            role: pb::Role::AuthorizedUser as i32,
            contract_id: "C0".into(),
            consistency_token: "v1.0".into(),
        }))
    }
    async fn batch_check_entitlements(
        &self,
        _req: Request<pb::BatchCheckEntitlementsRequest>,
    ) -> Result<Response<pb::BatchCheckEntitlementsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    type WatchEntitlementChangesStream =
        tokio_stream::Empty<Result<pb::WatchEntitlementChangesResponse, Status>>;
    async fn watch_entitlement_changes(
        &self,
        _req: Request<pb::WatchEntitlementChangesRequest>,
    ) -> Result<Response<Self::WatchEntitlementChangesStream>, Status> {
        Err(Status::unimplemented("baseline"))
    }
}

pub async fn serve_constant() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(10))
        .concurrency_limit_per_connection(1024)
        .load_shed(true)
        .add_service(EntitlementServiceServer::new(Constant))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

/// The service itself, as `entitlements serve` runs it (telemetry included).
pub async fn serve_real(args: entitlements::config::ServeArgs) -> anyhow::Result<()> {
    let _telemetry = entitlements::telemetry::init("entitlements-bench", false)?;
    let config = args.into_config()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    let clock = Arc::new(entitlements::clock::SystemClock);
    entitlements::run(config, listener, clock, std::future::pending()).await
}
