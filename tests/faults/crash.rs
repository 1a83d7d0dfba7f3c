//! `kill -9` at random points of a write-heavy run, restart, repeat.
//!
//! A client drives the whole workflow for a dozen people (RequestAccess -> ApproveRequest ->
//! VerifyEmail) and creates accounts, while another task kills the server process with SIGKILL
//! at random moments and starts it again on the same database and data directory. The client
//! behaves as a real one must: a call that ended without an answer from the service (the
//! process died) is retried until the service answers; an answer of the service's own is
//! final. The run ends with one more kill, and a cold server then must agree with the model of
//! what was accepted: every request approved once and only once, every person a verified
//! Authorized User who may open service requests, every account there, every email that was
//! due delivered (at least once, and at most once per crash beyond that).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use tokio::sync::Mutex;

use crate::support::*;

const PEOPLE: usize = 30;
const KILLS: usize = 8;

struct Process {
    child: Option<Child>,
    addr: SocketAddr,
    url: String,
    data: PathBuf,
}

impl Process {
    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_entitlements"))
            .args(["serve", "--dev", "--listen", &self.addr.to_string()])
            .args(["--database-url", &self.url])
            // A claim of a killed process ends soon: its emails go out within the test.
            .args(["--mail-lease", "2s"])
            .arg("--data-dir")
            .arg(&self.data)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start entitlements serve");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(Instant::now() < deadline, "the server did not listen again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An answer the service did not give: the connection broke or the process was starting.
fn unanswered(s: &tonic::Status) -> bool {
    matches!(
        reason(s).as_str(),
        "" | "STARTING" | "DATABASE_UNAVAILABLE" | "SHUTTING_DOWN"
    )
}

/// Calls that ended without an answer and were sent again, over the whole run.
static RETRIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Retries `f` until the service itself answers (polling, with a deadline).
async fn answered<T, F, Fut>(what: &str, mut f: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match f().await {
            Err(s) if unanswered(&s) => {
                RETRIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert!(
                    Instant::now() < deadline,
                    "{what}: no answer in 90 s: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

fn who(i: usize) -> String {
    format!("crash{i}")
}

/// The newest verification code emailed to `to`, waiting for it through restarts.
async fn code_for(app: &TestApp, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(code) = newest_code(&app.mail_dir(), to) {
            return code;
        }
        assert!(Instant::now() < deadline, "no verification code for {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Each person's whole flow, and an account each, every call retried until answered.
async fn workload(app: &TestApp, stc: &str) -> BTreeMap<String, String> {
    let mut requests = BTreeMap::new();
    for i in 0..PEOPLE {
        let person = who(i);
        let token = app.person(&person);
        let icn = format!("{}", 7_000_000 + i);
        let created = answered("CreateAccount", || {
            let mut c = app.admin();
            let r = authed(
                pb::CreateAccountRequest {
                    request_id: String::new(),
                    icn: icn.clone(),
                    company_name: "Crash Corp".into(),
                    country_code: COUNTRY.into(),
                },
                &app.operator(),
            );
            async move { c.create_account(r).await }
        })
        .await;
        // Already there: the first attempt was stored before the process died.
        if let Err(s) = created {
            assert_eq!(reason(&s), "ACCOUNT_EXISTS", "{s:?}");
        }
        let request = answered("RequestAccess", || {
            let mut c = app.access();
            let r = authed(
                pb::RequestAccessRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    country_code: COUNTRY.into(),
                    requested_role: pb::Role::AuthorizedUser as i32,
                },
                &token,
            );
            async move { c.request_access(r).await }
        })
        .await
        .expect("request access")
        .into_inner()
        .access_request
        .expect("request");
        let id = request.access_request_id.clone();
        let approved = answered("ApproveRequest", || {
            let mut c = app.access();
            let r = authed(
                pb::ApproveRequestRequest {
                    request_id: String::new(),
                    access_request_id: id.clone(),
                    granted_role: 0,
                    expire_time: None,
                },
                stc,
            );
            async move { c.approve_request(r).await }
        })
        .await;
        if let Err(s) = approved {
            assert_eq!(reason(&s), "REQUEST_NOT_PENDING", "{s:?}");
        }
        let code = code_for(app, &format!("{person}@example.com")).await;
        let verified = answered("VerifyEmail", || {
            let mut c = app.access();
            let r = authed(
                pb::VerifyEmailRequest {
                    request_id: String::new(),
                    code: code.clone(),
                },
                &token,
            );
            async move { c.verify_email(r).await }
        })
        .await;
        if let Err(s) = verified {
            assert_eq!(reason(&s), "EMAIL_ALREADY_VERIFIED", "{s:?}");
        }
        requests.insert(person, id);
    }
    requests
}

async fn kill_9_at_random_points_loses_nothing(backend: Backend) {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let db = Arc::new(TestDb::create(backend, data.path()).await);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let process = Arc::new(Mutex::new(Process {
        child: None,
        addr: port,
        url: db.url.clone(),
        data: data.path().to_path_buf(),
    }));
    process.lock().await.start();
    process.lock().await.wait_listening().await;
    let app = TestApp::attach(port, db.clone(), data.clone()).await;
    let stc = crate::flow::setup_account(&app).await;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    println!("kill -9 schedule seed: {seed}");
    let killer = tokio::spawn({
        let process = process.clone();
        async move {
            let mut x = u64::from(seed) | 1;
            for _ in 0..KILLS {
                // xorshift: a schedule that differs run to run, printed for a rerun.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                tokio::time::sleep(Duration::from_millis(100 + x % 500)).await;
                let mut p = process.lock().await;
                p.kill();
                p.start();
                p.wait_listening().await;
            }
        }
    });
    let requests = workload(&app, &stc).await;
    killer.await.unwrap();
    {
        // A last crash: what follows is read from a cold server, from the disk alone.
        let mut p = process.lock().await;
        p.kill();
        p.start();
        p.wait_listening().await;
    }

    let list = answered("ListAccessRequests", || {
        let mut c = app.access();
        let r = authed(
            pb::ListAccessRequestsRequest {
                icn: ICN.into(),
                page_size: 500,
                ..Default::default()
            },
            &stc,
        );
        async move { c.list_access_requests(r).await }
    })
    .await
    .unwrap()
    .into_inner()
    .access_requests;
    assert_eq!(
        list.len(),
        PEOPLE,
        "one request per person, none twice: {list:#?}"
    );
    for r in &list {
        assert_eq!(requests.get(&r.web_id), Some(&r.access_request_id), "{r:?}");
        assert_eq!(r.state, pb::AccessRequestState::Approved as i32, "{r:?}");
    }
    let members = answered("ListMembers", || {
        let mut c = app.access();
        let r = authed(
            pb::ListMembersRequest {
                icn: ICN.into(),
                page_size: 500,
                ..Default::default()
            },
            &stc,
        );
        async move { c.list_members(r).await }
    })
    .await
    .unwrap()
    .into_inner()
    .memberships;
    assert_eq!(members.len(), PEOPLE + 1, "{members:#?}");
    let checker = app.checker();
    for i in 0..PEOPLE {
        let person = who(i);
        let m = members.iter().find(|m| m.web_id == who(i)).expect("member");
        assert_eq!(m.role, pb::Role::AuthorizedUser as i32, "{m:?}");
        assert!(m.email_verified, "{m:?}");
        let answer = answered("CheckEntitlement", || {
            crate::flow::check_as(
                &app,
                &checker,
                &person,
                pb::Action::OpenServiceRequest,
                "",
                0,
            )
        })
        .await
        .unwrap();
        assert!(answer.allowed, "{}: {answer:?}", who(i));
        let account = answered("GetAccount", || {
            let mut c = app.admin();
            let r = authed(
                pb::GetAccountRequest {
                    icn: format!("{}", 7_000_000 + i),
                },
                &app.operator(),
            );
            async move { c.get_account(r).await }
        })
        .await;
        assert!(account.is_ok(), "{account:?}");
    }
    // Every email that was due arrives, at least once and at most once more per crash.
    let most = 1 + KILLS + 1;
    let mut extra = 0;
    for i in 0..PEOPLE {
        let person = who(i);
        let id = &requests[&person];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let to_admin = app
                .mails_to("stc1@example.com")
                .iter()
                .filter(|m| m.contains(id.as_str()))
                .count();
            let codes = app
                .mails_to(&format!("{person}@example.com"))
                .iter()
                .filter(|m| m.contains("Verification code: "))
                .count();
            assert!(
                to_admin <= most && codes <= most,
                "{person}: {to_admin} / {codes} copies"
            );
            if to_admin >= 1 && codes >= 1 {
                extra += to_admin + codes - 2;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{person}: an email that was due is missing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "{backend:?}: {} kills, {} calls retried after a crash (all crash runs of this test process), {PEOPLE} flows and accounts complete, \
         nothing lost, {extra} emails delivered twice (at-least-once)",
        KILLS + 1,
        RETRIED.load(std::sync::atomic::Ordering::Relaxed)
    );
}

crate::both_backends!(kill_9_at_random_points_loses_nothing);
