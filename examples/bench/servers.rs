//! The servers under test run as child processes of the benchmark (the same executable in
//! another mode), pinned to one core when `taskset` exists, so the load generator and the
//! server don't share a core and both servers are measured the same way.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use entitlements::proto::v1 as pb;
use pb::access_service_server::{AccessService, AccessServiceServer};
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
    // BENCH_SERVER_LOG=1 shows it (on stderr, prefixed with the pid).
    let show = std::env::var_os("BENCH_SERVER_LOG").is_some();
    let pid = child.id();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("[{pid}] {line}");
            }
        }
    });
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
            next_step: None,
            highest_severity: 1,
        }))
    }
    async fn batch_check_entitlements(
        &self,
        _req: Request<pb::BatchCheckEntitlementsRequest>,
    ) -> Result<Response<pb::BatchCheckEntitlementsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn list_entitlements(
        &self,
        _req: Request<pb::ListEntitlementsRequest>,
    ) -> Result<Response<pb::ListEntitlementsResponse>, Status> {
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

/// The server settings of both baselines: the service's defaults (`--request-timeout-ms`,
/// `--concurrency-limit`, load shedding).
fn baseline_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(10))
        .concurrency_limit_per_connection(1024)
        .load_shed(true)
}

pub async fn serve_constant() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    baseline_builder()
        .add_service(EntitlementServiceServer::new(Constant))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

/// The service itself, as `entitlements serve` runs it (telemetry included).
pub async fn serve_real(args: entitlements::config::ServeArgs) -> anyhow::Result<()> {
    let _telemetry = entitlements::telemetry::init("entitlements-bench", false)?;
    let config = args.into_config()?;
    let _metrics = entitlements::telemetry::metrics::init(
        "entitlements-bench",
        config.metrics_listen.is_some(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    let clock = Arc::new(entitlements::clock::SystemClock);
    entitlements::run(config, listener, clock, std::future::pending()).await
}

/// The write-path baseline: a tonic server whose `RequestAccess` does one INSERT in its own
/// transaction on the service's database (same file, or same PostgreSQL database), into a
/// table of its own, with the service's connection settings (SQLite: WAL, synchronous=FULL,
/// `BEGIN IMMEDIATE`, 8 connections; PostgreSQL: 16 connections). Nothing else: no token
/// verification, no reads, no audit, no email.
#[derive(Clone)]
struct Insert {
    db: Arc<InsertDb>,
}

enum InsertDb {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl InsertDb {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        use std::str::FromStr;
        use std::time::Duration;
        if url.starts_with("sqlite:") {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS bench_insert_baseline (id INTEGER PRIMARY KEY AUTOINCREMENT, icn TEXT NOT NULL, country_code TEXT NOT NULL, requested_role INTEGER NOT NULL, created_at INTEGER NOT NULL)",
            )
            .execute(&pool)
            .await?;
            Ok(Self::Sqlite(pool))
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS bench_insert_baseline (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, icn TEXT NOT NULL, country_code TEXT NOT NULL, requested_role INTEGER NOT NULL, created_at BIGINT NOT NULL)",
            )
            .execute(&pool)
            .await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// One INSERT, in its own transaction; returns the new row's id.
    async fn insert(&self, r: &pb::RequestAccessRequest) -> Result<i64, sqlx::Error> {
        const SQL: &str = "INSERT INTO bench_insert_baseline (icn, country_code, requested_role, created_at) VALUES ($1, $2, $3, $4) RETURNING id";
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let id: i64 = sqlx::query_scalar(SQL)
                    .bind(&r.icn)
                    .bind(&r.country_code)
                    .bind(r.requested_role)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(SQL)
                    .bind(&r.icn)
                    .bind(&r.country_code)
                    .bind(r.requested_role)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
        }
    }
}

fn baseline_only<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("baseline"))
}

#[tonic::async_trait]
impl AccessService for Insert {
    async fn request_access(
        &self,
        req: Request<pb::RequestAccessRequest>,
    ) -> Result<Response<pb::RequestAccessResponse>, Status> {
        let r = req.into_inner();
        let id = self
            .db
            .insert(&r)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::RequestAccessResponse {
            access_request: Some(pb::AccessRequest {
                access_request_id: id.to_string(),
                icn: r.icn,
                requested_role: r.requested_role,
                ..Default::default()
            }),
            consistency_token: String::new(),
        }))
    }
    async fn approve_request(
        &self,
        _: Request<pb::ApproveRequestRequest>,
    ) -> Result<Response<pb::ApproveRequestResponse>, Status> {
        baseline_only()
    }
    async fn deny_request(
        &self,
        _: Request<pb::DenyRequestRequest>,
    ) -> Result<Response<pb::DenyRequestResponse>, Status> {
        baseline_only()
    }
    async fn withdraw_request(
        &self,
        _: Request<pb::WithdrawRequestRequest>,
    ) -> Result<Response<pb::WithdrawRequestResponse>, Status> {
        baseline_only()
    }
    async fn verify_email(
        &self,
        _: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        baseline_only()
    }
    async fn send_verification_email(
        &self,
        _: Request<pb::SendVerificationEmailRequest>,
    ) -> Result<Response<pb::SendVerificationEmailResponse>, Status> {
        baseline_only()
    }
    async fn get_my_access(
        &self,
        _: Request<pb::GetMyAccessRequest>,
    ) -> Result<Response<pb::GetMyAccessResponse>, Status> {
        baseline_only()
    }
    async fn list_access_requests(
        &self,
        _: Request<pb::ListAccessRequestsRequest>,
    ) -> Result<Response<pb::ListAccessRequestsResponse>, Status> {
        baseline_only()
    }
    async fn list_members(
        &self,
        _: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        baseline_only()
    }
    async fn update_member_role(
        &self,
        _: Request<pb::UpdateMemberRoleRequest>,
    ) -> Result<Response<pb::UpdateMemberRoleResponse>, Status> {
        baseline_only()
    }
    async fn remove_member(
        &self,
        _: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        baseline_only()
    }
    async fn set_email_domain_policy(
        &self,
        _: Request<pb::SetEmailDomainPolicyRequest>,
    ) -> Result<Response<pb::SetEmailDomainPolicyResponse>, Status> {
        baseline_only()
    }
    async fn delete_email_domain_policy(
        &self,
        _: Request<pb::DeleteEmailDomainPolicyRequest>,
    ) -> Result<Response<pb::DeleteEmailDomainPolicyResponse>, Status> {
        baseline_only()
    }
    async fn list_email_domain_policies(
        &self,
        _: Request<pb::ListEmailDomainPoliciesRequest>,
    ) -> Result<Response<pb::ListEmailDomainPoliciesResponse>, Status> {
        baseline_only()
    }
    async fn certify_member(
        &self,
        _: Request<pb::CertifyMemberRequest>,
    ) -> Result<Response<pb::CertifyMemberResponse>, Status> {
        baseline_only()
    }
}

/// The write-path baseline on `database_url`; creates its table before it says LISTENING.
pub async fn serve_insert(database_url: String) -> anyhow::Result<()> {
    let db = Arc::new(InsertDb::connect(&database_url).await?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    baseline_builder()
        .add_service(AccessServiceServer::new(Insert { db }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
