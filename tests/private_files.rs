//! What the service writes to disk is its user's alone, whatever the umask: the data
//! directory, the SQLite database with its WAL and shared-memory files, the dev keys, the mail
//! directory and every delivered `.eml` (which holds a verification code).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use entitlements::auth::dev::{DevKey, MintRequest};
use entitlements::proto::v1 as pb;
use tonic::transport::Channel;

use crate::support::*;

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `entitlements serve --dev` with umask 000, so nothing but the service's own modes counts.
fn serve(data_dir: &Path, database_url: Option<&str>) -> (Served, std::net::SocketAddr) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 000; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_entitlements"))
        .args(["serve", "--dev", "--log-json", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd
        .env("RUST_LOG", "info")
        .env_remove("ENTITLEMENTS_DATABASE_URL")
        .env_remove("ENTITLEMENTS_MAIL_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start entitlements serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let message = v["message"].as_str().unwrap_or_default();
            if message.starts_with("listening on") {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server logs its address")
        .parse()
        .expect("an address");
    (Served(child), addr)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

async fn files_the_service_creates_are_private(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend, root.path()).await;
    // Not there yet: the service creates it.
    let data = root.path().join("data");
    let url = (backend == Backend::Postgres).then_some(db.url.as_str());
    let (_served, addr) = serve(&data, url);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let key = DevKey::load_or_create(&data).unwrap();
    let mut op = MintRequest::new(OPERATOR);
    op.scopes = vec!["entitlements.admin".into()];
    let op = key.mint(&op).unwrap();
    let mut admin = pb::account_admin_service_client::AccountAdminServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let created = admin
            .create_account(authed(
                pb::CreateAccountRequest {
                    request_id: String::new(),
                    icn: ICN.into(),
                    company_name: "Acme".into(),
                    country_code: COUNTRY.into(),
                },
                &op,
            ))
            .await;
        match created {
            Ok(_) => break,
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => panic!("create account: {s:?}"),
        }
    }
    admin
        .add_site_technical_contact(authed(
            pb::AddSiteTechnicalContactRequest {
                request_id: String::new(),
                icn: ICN.into(),
                web_id: "stc1".into(),
                email: "stc1@example.com".into(),
                given_name: "Sam".into(),
                family_name: "Stc".into(),
            },
            &op,
        ))
        .await
        .unwrap();
    let mail = data.join("mail");
    eventually("the code's email was delivered", || {
        let found = !eml_files(&mail).is_empty();
        async move { found }
    })
    .await;

    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&mail), 0o700, "mail directory");
    for file in ["dev-mail-key", "dev-signing-key.pem"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    for eml in eml_files(&mail) {
        assert_eq!(mode(&eml), 0o600, "{}", eml.display());
    }
    if backend == Backend::Sqlite {
        for file in [
            "entitlements.db",
            "entitlements.db-wal",
            "entitlements.db-shm",
        ] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
    }
}

crate::both_backends!(files_the_service_creates_are_private);
