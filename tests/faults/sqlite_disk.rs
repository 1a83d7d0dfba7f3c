//! SQLite on a directory that is read-only at start, or that fills up while serving: a clear
//! error at start or per call, never a crash, never a half-stored change, and service again
//! once there is room, without a restart.
//!
//! The directory is a small tmpfs mounted in a mount namespace of the server's own (`unshare
//! -m`), so the test needs no privileges beyond what creating a namespace takes, and the root
//! user's licence to write anywhere does not hide the fault. The test reaches the server's
//! view of the directory through `/proc/<pid>/root`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use tonic::Code;

use crate::flow::{check, setup_account, verified_member};
use crate::support::*;

struct Confined {
    child: Child,
    stderr: Arc<std::sync::Mutex<String>>,
    addr: Option<std::net::SocketAddr>,
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `entitlements serve --dev` with its database in `mnt/db/`, on a tmpfs of `size` mounted at
/// `mnt` in a namespace of its own, read-only when `read_only`.
fn serve_confined(data_dir: &Path, mnt: &Path, size: &str, read_only: bool) -> Confined {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let script = r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && mkdir -p "$2/db" \
        && if [ "$3" = ro ]; then mount -o remount,ro "$2"; fi && shift 3 && exec "$@""#;
    let url = format!("sqlite://{}/db/entitlements.db", mnt.display());
    let mut child = Command::new("unshare")
        .args(if root {
            ["-m", "--propagation", "private"].as_slice()
        } else {
            ["-rm", "--propagation", "private"].as_slice()
        })
        .args(["sh", "-c", script, "sh", size])
        .arg(mnt)
        .arg(if read_only { "ro" } else { "rw" })
        .arg(env!("CARGO_BIN_EXE_entitlements"))
        .args(["serve", "--dev", "--log-json", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &url])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs the server in a mount namespace of its own");
    let stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn({
        let stderr = stderr.clone();
        move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = stderr.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let log = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            // Warnings and errors join stderr: what a failed assertion shows.
            if matches!(v["level"].as_str(), Some("WARN" | "ERROR")) {
                let mut s = log.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
            if v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening on"))
            {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .and_then(|a| a.parse().ok());
    Confined {
        child,
        stderr,
        addr,
    }
}

fn wait_exit(c: &mut Confined, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = c.child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "the server neither served nor stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_read_only_database_directory_is_a_clear_error_at_start() {
    let data = tempfile::tempdir().unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let mut c = serve_confined(data.path(), mnt.path(), "4m", true);
    let status = wait_exit(&mut c, Duration::from_secs(60));
    // Exit code 1 is an error the program reported; a panic would be 101, a signal none.
    assert_eq!(status.code(), Some(1), "{status:?}");
    let stderr = c.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("Read-only file system")
            && stderr.contains(&mnt.path().display().to_string()),
        "the error names the cause and the place: {stderr}"
    );
}

async fn create(app: &TestApp, icn: &str) -> Result<(), tonic::Status> {
    app.admin()
        .create_account(authed(
            pb::CreateAccountRequest {
                request_id: String::new(),
                icn: icn.into(),
                company_name: "Filler Corp".into(),
                country_code: COUNTRY.into(),
            },
            &app.operator(),
        ))
        .await
        .map(|_| ())
}

fn cannot_write(c: &Confined, r: Result<(), tonic::Status>) {
    if !matches!(&r, Err(s) if s.code() == Code::Unavailable) {
        eprintln!("server log:\n{}", c.stderr.lock().unwrap());
    }
    assert_status(r, Code::Unavailable, "DATABASE_CANNOT_WRITE");
}

/// Fills the file system the server sees at `mnt` until it has no room left.
fn fill(pid: u32, mnt: &Path) -> PathBuf {
    let path = PathBuf::from(format!("/proc/{pid}/root{}/filler", mnt.display()));
    let mut f = std::fs::File::create(&path).expect("a file on the server's tmpfs");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
            return path;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_recovers_without_a_restart() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mnt = tempfile::tempdir().unwrap();
    let mut c = serve_confined(data.path(), mnt.path(), "16m", false);
    let addr = c
        .addr
        .unwrap_or_else(|| panic!("the server did not start: {}", c.stderr.lock().unwrap()));
    let url = format!("sqlite://{}/db/entitlements.db", mnt.path().display());
    let db = Arc::new(TestDb::existing(Backend::Sqlite, url));
    let app = TestApp::attach(addr, db, data.clone()).await;
    let stc = setup_account(&app).await;
    verified_member(&app, &stc, "ana", pb::Role::AuthorizedUser).await;
    let mut accepted = vec![];
    for n in 0..5 {
        let icn = format!("{}", 6_000_000 + n);
        create(&app, &icn)
            .await
            .expect("a write while there is room");
        accepted.push(icn);
    }

    let filler = fill(c.child.id(), mnt.path());
    // SQLite may still find room in pages it already has: write until the disk says no.
    let mut refused = None;
    for n in 100..2100 {
        let icn = format!("{}", 6_000_000 + n);
        match create(&app, &icn).await {
            Ok(()) => accepted.push(icn),
            Err(s) => {
                refused = Some(s);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses a write");
    cannot_write(&c, Err(refused));
    // Reads go on, and the answers are right.
    assert!(
        check(&app, "ana", pb::Action::OpenServiceRequest)
            .await
            .allowed
    );
    cannot_write(&c, create(&app, "6999999").await);
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );

    std::fs::remove_file(&filler).unwrap();
    eventually("writes go through once there is room", || {
        let app = &app;
        async move { create(app, "6999998").await.is_ok() }
    })
    .await;
    accepted.push("6999998".into());
    // Nothing accepted was lost, and the refused write left nothing behind.
    for icn in &accepted {
        app.admin()
            .get_account(authed(
                pb::GetAccountRequest { icn: icn.clone() },
                &app.operator(),
            ))
            .await
            .unwrap_or_else(|e| panic!("accepted account {icn} lost: {e:?}"));
    }
    let gone = app
        .admin()
        .get_account(authed(
            pb::GetAccountRequest {
                icn: "6999999".into(),
            },
            &app.operator(),
        ))
        .await;
    assert_status(gone, Code::NotFound, "ACCOUNT_NOT_FOUND");
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
}
