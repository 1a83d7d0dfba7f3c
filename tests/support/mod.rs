//! Test harness: the real server on a loopback port 0, a real SQLite file or a fresh
//! PostgreSQL database, real tokens from the dev key, and the mail directory or an SMTP sink.

#![allow(dead_code)]

pub mod db;
pub mod idp;
pub mod pg_server;
pub mod smtp_sink;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entitlements::auth::dev::{DevKey, MintRequest};
pub use entitlements::clock::Clock;
use entitlements::clock::{ManualClock, SystemClock};
use entitlements::config::{Config, DbArgs, MailSetup, ServeArgs};
use entitlements::proto::v1 as pb;
use pb::access_service_client::AccessServiceClient;
use pb::account_admin_service_client::AccountAdminServiceClient;
use pb::entitlement_service_client::EntitlementServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub use db::{Backend, TestDb};
pub use idp::{IDP_ISSUER, Idp, IdpKey, now_secs};

pub const ICN: &str = "1234567";
pub const COUNTRY: &str = "US";
pub const OPERATOR: &str = "op1";
pub const CHECKER: &str = "ticketing";

/// One running server and what it needs.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// Where the AuthZEN HTTP door answers, when [`AppOptions::http`] asked for it.
    pub http_addr: Option<std::net::SocketAddr>,
    /// Where plaintext health answers, when [`AppOptions::health_listen`] asked for it (port 0
    /// there becomes a known port here).
    pub health_addr: Option<std::net::SocketAddr>,
    pub channel: Channel,
    pub clock: ManualClock,
    pub data_dir: Arc<tempfile::TempDir>,
    pub db: Arc<TestDb>,
    pub key: Arc<DevKey>,
    /// When set, the server verifies tokens against this provider's JWKS file (not dev mode)
    /// and [`TestApp::token`] mints with its key.
    pub idp: Option<Arc<Idp>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub mail: MailKind,
}

#[derive(Clone)]
pub enum MailKind {
    Dir(PathBuf),
    Smtp(String),
}

pub struct AppOptions {
    pub mail: Option<MailKind>,
    pub request_ttl_hours: u64,
    /// `--remind-after` and `--escalate-after` (72 h and 7 d, as by default).
    pub remind_after: Duration,
    pub escalate_after: Duration,
    /// `--operator-email`.
    pub operator_email: Option<String>,
    /// `--contract-warning` and `--recertify-within` (30 d each, as by default).
    pub contract_warning: Duration,
    pub recertify_within: Duration,
    pub max_message_bytes: usize,
    /// RequestAccess per person and per account per hour (the suite's default: no limit).
    pub request_limits: (u32, u32),
    /// The server-side deadline of every call.
    pub request_timeout_ms: u64,
    /// Serve as in production, with this provider's JWKS file (read again every 50 ms) and
    /// issuer [`IDP_ISSUER`], instead of dev mode.
    pub idp: Option<Arc<Idp>>,
    /// Serve TLS (the files are re-read every 50 ms); the harness's channel uses `client`.
    pub tls: Option<TestTls>,
    /// `--health-listen`.
    pub health_listen: Option<std::net::SocketAddr>,
    /// `--concurrency-limit` (the default when `None`).
    pub concurrency_limit: Option<usize>,
    /// How often the mail worker looks for due email when no commit wakes it.
    pub mail_poll: Duration,
    /// `--http-listen 127.0.0.1:0`: serve the AuthZEN HTTP door too.
    pub http: bool,
}

/// The server's TLS files, and how the harness's own channel reaches it.
#[derive(Clone)]
pub struct TestTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client: tonic::transport::ClientTlsConfig,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            mail: None,
            request_ttl_hours: 720,
            remind_after: Duration::from_secs(72 * 3600),
            escalate_after: Duration::from_secs(7 * 24 * 3600),
            operator_email: None,
            contract_warning: Duration::from_secs(30 * 24 * 3600),
            recertify_within: Duration::from_secs(30 * 24 * 3600),
            max_message_bytes: 4 * 1024 * 1024,
            request_limits: (1_000_000, 1_000_000),
            request_timeout_ms: 30_000,
            idp: None,
            tls: None,
            health_listen: None,
            concurrency_limit: None,
            mail_poll: Duration::from_millis(50),
            http: false,
        }
    }
}

impl TestApp {
    /// The audit trail of `icn` ("": every event), as an operator reads it.
    pub async fn audit_events(&self, icn: &str) -> Vec<pb::AuditEvent> {
        self.admin()
            .list_audit_events(authed(
                pb::ListAuditEventsRequest {
                    icn: icn.into(),
                    page_size: 500,
                    page_token: String::new(),
                },
                &self.operator(),
            ))
            .await
            .unwrap()
            .into_inner()
            .audit_events
    }

    /// One number the database knows (`SELECT COUNT(*) ...`), over a connection of its own.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection as _;
        match self.db.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.db.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, AppOptions::default()).await
    }

    pub async fn spawn_with(backend: Backend, opts: AppOptions) -> TestApp {
        let data_dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let db = Arc::new(TestDb::create(backend, data_dir.path()).await);
        let clock = ManualClock::new(SystemClock.now_ms());
        let mail = opts
            .mail
            .clone()
            .unwrap_or_else(|| MailKind::Dir(data_dir.path().join("mail")));
        Self::start(db, data_dir, clock, mail, &opts).await
    }

    /// A server on a database the test made (e.g. on its own PostgreSQL server).
    pub async fn spawn_on(db: Arc<TestDb>, opts: AppOptions) -> TestApp {
        let data_dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let clock = ManualClock::new(SystemClock.now_ms());
        let mail = MailKind::Dir(data_dir.path().join("mail"));
        Self::start(db, data_dir, clock, mail, &opts).await
    }

    async fn start(
        db: Arc<TestDb>,
        data_dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        mail: MailKind,
        opts: &AppOptions,
    ) -> TestApp {
        let mut config = config(&db.url, data_dir.path(), &mail, opts);
        config.mail_poll = opts.mail_poll;
        config.expiry_sweep = Duration::from_millis(100);
        config.orphan_sweep = Duration::from_millis(100);
        if opts.idp.is_some() {
            config.auth.refresh_every = Duration::from_millis(50);
        }
        if let Some(tls) = &mut config.tls {
            tls.reload_every = Duration::from_millis(50);
        }
        let key = Arc::new(DevKey::load_or_create(data_dir.path()).expect("dev key"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Bound here, as `serve` binds --http-listen, so that port 0 becomes a known port.
        let http = match config.http_listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.expect("bind HTTP")),
            None => None,
        };
        let http_addr = http.as_ref().map(|l| l.local_addr().expect("HTTP addr"));
        let health = match config.health_listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.expect("bind health")),
            None => None,
        };
        let health_addr = health
            .as_ref()
            .map(|l| l.local_addr().expect("health addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(entitlements::server::serve(
            config,
            entitlements::Listeners {
                grpc: listener,
                http,
                health,
            },
            Arc::new(clock.clone()),
            async move {
                let _ = stopped.await;
            },
        ));
        let channel = match &opts.tls {
            None => Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect_lazy(),
            Some(tls) => Channel::from_shared(format!("https://{addr}"))
                .expect("uri")
                .tls_config(tls.client.clone())
                .expect("client TLS config")
                .connect_lazy(),
        };
        let app = TestApp {
            addr,
            http_addr,
            health_addr,
            channel,
            clock,
            data_dir,
            db,
            key,
            idp: opts.idp.clone(),
            stop: Some(stop),
            handle: Some(handle),
            mail,
        };
        app.wait_serving().await;
        app
    }

    /// A server this test did not start in-process (a child process) at `addr`, on `db`,
    /// signing tokens with the dev key under `data_dir` and writing mail there.
    pub async fn attach(
        addr: std::net::SocketAddr,
        db: Arc<TestDb>,
        data_dir: Arc<tempfile::TempDir>,
    ) -> TestApp {
        let key = Arc::new(DevKey::load_or_create(data_dir.path()).expect("dev key"));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let mail = MailKind::Dir(data_dir.path().join("mail"));
        let app = TestApp {
            addr,
            http_addr: None,
            health_addr: None,
            channel,
            clock: ManualClock::new(SystemClock.now_ms()),
            data_dir,
            db,
            key,
            idp: None,
            stop: None,
            handle: None,
            mail,
        };
        app.wait_serving().await;
        app
    }

    /// Another replica: its own server on the same database, keys, mail directory and clock.
    pub async fn replica(&self) -> TestApp {
        Self::start(
            self.db.clone(),
            self.data_dir.clone(),
            self.clock.clone(),
            self.mail.clone(),
            &self.same_identity(),
        )
        .await
    }

    fn same_identity(&self) -> AppOptions {
        AppOptions {
            idp: self.idp.clone(),
            ..AppOptions::default()
        }
    }

    /// Stops this server (gracefully) and starts another on the same data and database.
    pub async fn restart(mut self, mail: Option<MailKind>) -> TestApp {
        self.shutdown().await;
        let mail = mail.unwrap_or_else(|| self.mail.clone());
        Self::start(
            self.db.clone(),
            self.data_dir.clone(),
            self.clock.clone(),
            mail,
            &self.same_identity(),
        )
        .await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            let r = tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("server stops in time");
            r.expect("server task").expect("server exits cleanly");
        }
    }

    async fn wait_serving(&self) {
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
            if r.is_ok_and(|r| r.into_inner().status == serving) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not become SERVING within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A consistency token of this server's database at its present revision.
    pub async fn token_of_now(&self) -> String {
        self.entitlement()
            .check_entitlement(authed(
                pb::CheckEntitlementRequest {
                    web_id: "nobody".into(),
                    icn: ICN.into(),
                    action: pb::Action::ViewSupportArea as i32,
                    product_id: String::new(),
                    severity: 0,
                    consistency_token: String::new(),
                    consistency: 0,
                },
                &self.checker(),
            ))
            .await
            .expect("check")
            .into_inner()
            .consistency_token
    }

    pub fn token(&self, sub: &str, email: Option<&str>, scopes: &[&str]) -> String {
        let mut req = MintRequest::new(sub);
        req.email = email.map(str::to_owned);
        req.given_name = Some(format!("{sub}-given"));
        req.family_name = Some(format!("{sub}-family"));
        req.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        match &self.idp {
            Some(idp) => idp.mint(&req),
            None => self.key.mint(&req).expect("mint"),
        }
    }

    /// A person with an email claim `<sub>@example.com`.
    pub fn person(&self, sub: &str) -> String {
        self.token(sub, Some(&format!("{sub}@example.com")), &[])
    }
    pub fn operator(&self) -> String {
        self.token(OPERATOR, None, &["entitlements.admin"])
    }
    pub fn checker(&self) -> String {
        self.token(CHECKER, None, &["entitlements.check"])
    }

    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }
    pub fn admin(&self) -> AccountAdminServiceClient<Channel> {
        AccountAdminServiceClient::new(self.channel.clone())
    }
    pub fn entitlement(&self) -> EntitlementServiceClient<Channel> {
        EntitlementServiceClient::new(self.channel.clone())
    }

    pub fn mail_dir(&self) -> PathBuf {
        match &self.mail {
            MailKind::Dir(d) => d.clone(),
            MailKind::Smtp(_) => self.data_dir.path().join("mail"),
        }
    }

    /// Emails delivered to `to` so far, as raw .eml text.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        read_mails(&self.mail_dir())
            .into_iter()
            .filter(|m| header_has(m, "To", to))
            .collect()
    }

    /// Waits (polling, with a deadline) until `to` has at least `n` emails whose text contains `needle`.
    pub async fn wait_mail(&self, to: &str, needle: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<String> = self
                .mails_to(to)
                .into_iter()
                .filter(|m| m.contains(needle))
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {n} email(s) to {to} containing {needle:?}; have: {:#?}",
                self.mails_to(to)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The newest verification code emailed to `to`, once at least `nth` have arrived.
    pub async fn verification_code(&self, to: &str, nth: usize) -> String {
        self.wait_mail(to, "Verification code: ", nth).await;
        newest_code(&self.mail_dir(), to).expect("a verification code")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The configuration the harness starts servers with.
/// `--mail-key` of servers run as in production: 32 bytes, base64.
pub const TEST_MAIL_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn config(url: &str, data_dir: &Path, mail: &MailKind, opts: &AppOptions) -> Config {
    let args = ServeArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        db: DbArgs {
            database_url: Some(url.to_owned()),
            data_dir: data_dir.to_path_buf(),
        },
        auth_jwks: opts
            .idp
            .as_ref()
            .map(|idp| idp.jwks_path().display().to_string()),
        auth_issuer: opts.idp.as_ref().map(|_| IDP_ISSUER.to_owned()),
        auth_audience: "entitlements".to_owned(),
        mail_dir: match mail {
            MailKind::Dir(d) => Some(d.clone()),
            MailKind::Smtp(_) => None,
        },
        smtp_url: match mail {
            MailKind::Smtp(u) => Some(u.clone()),
            MailKind::Dir(_) => None,
        },
        mail_from: None,
        mail_lease: Duration::from_secs(120),
        // Dev mode keeps its own under the data directory; production is given one, the same
        // for every replica and restart of a test.
        mail_key: opts.idp.is_some().then(|| TEST_MAIL_KEY.to_owned()),
        portal_url: "https://portal.example.com".to_owned(),
        dev: opts.idp.is_none(),
        remind_after: opts.remind_after,
        escalate_after: opts.escalate_after,
        expire_after: Duration::from_secs(opts.request_ttl_hours * 3600),
        operator_email: opts.operator_email.clone(),
        contract_warning: opts.contract_warning,
        recertify_within: opts.recertify_within,
        request_id_ttl: Duration::from_secs(24 * 3600),
        request_timeout_ms: opts.request_timeout_ms,
        concurrency_limit: opts.concurrency_limit.unwrap_or(1024),
        max_message_bytes: opts.max_message_bytes,
        log_json: false,
        metrics_listen: None,
        metrics_sample_ms: 10_000,
        cache_accounts: 200_000,
        cache_persons: 1_500_000,
        cache_members: 1_500_000,
        access_requests_per_person_per_hour: opts.request_limits.0,
        access_requests_per_account_per_hour: opts.request_limits.1,
        tls_cert: opts.tls.as_ref().map(|t| t.cert.clone()),
        tls_key: opts.tls.as_ref().map(|t| t.key.clone()),
        tls_client_ca: opts.tls.as_ref().and_then(|t| t.client_ca.clone()),
        health_listen: opts.health_listen,
        http_listen: opts.http.then(|| "127.0.0.1:0".parse().expect("addr")),
    };
    let c = args.into_config().expect("config");
    assert!(matches!(c.mail, MailSetup::Dir(_) | MailSetup::Smtp(_)));
    c
}

/// The .eml files in `dir`, in delivery (file name) order.
pub fn read_mails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// The newest code sent to `to`, by the outbox order encoded in the file names.
pub fn newest_code(dir: &Path, to: &str) -> Option<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return None;
    };
    let mut files: Vec<(i64, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            let id: i64 = stem.rsplit('-').next()?.parse().ok()?;
            Some((id, std::fs::read_to_string(&p).ok()?))
        })
        .filter(|(_, m)| header_has(m, "To", to) && m.contains("Verification code: "))
        .collect();
    files.sort();
    let (_, m) = files.pop()?;
    m.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix("Verification code: ")
            .map(|c| c.trim().to_owned())
    })
}

pub fn header(mail: &str, name: &str) -> Option<String> {
    mail.lines()
        .take_while(|l| !l.is_empty() && *l != "\r")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
}

fn header_has(mail: &str, name: &str, needle: &str) -> bool {
    header(mail, name).is_some_and(|v| v.contains(needle))
}

pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    r
}

/// The ErrorInfo reason of a status.
pub fn reason(s: &Status) -> String {
    use tonic_types::StatusExt;
    s.get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

pub fn field_violation(s: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    s.get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
}

#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, why: &str) -> Status {
    let s = r.expect_err(&format!("expected {code:?} {why}"));
    assert_eq!(s.code(), code, "{}: {s:?}", why);
    if !why.is_empty() {
        assert_eq!(reason(&s), why, "ErrorInfo reason of {s:?}");
    }
    s
}

/// Waits for a condition with a deadline (never a fixed sleep as synchronisation).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: 0,
    })
}

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(skip_postgres, ignore = "ENTITLEMENTS_SKIP_POSTGRES=1: not run on PostgreSQL")]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The revision a consistency token names (tokens are `v2.<database>.<revision>`).
pub fn token_revision(token: &str) -> i64 {
    token
        .rsplit_once('.')
        .expect("a token")
        .1
        .parse()
        .expect("a revision")
}

/// `token` with its revision replaced: the same database, another point of its history.
pub fn token_at(token: &str, revision: i64) -> String {
    format!("{}.{revision}", token.rsplit_once('.').expect("a token").0)
}
