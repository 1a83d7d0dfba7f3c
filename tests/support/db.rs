//! A fresh database per test: a SQLite file in the test's temp dir, or a new PostgreSQL
//! database (dropped afterwards) on the server named by DATABASE_URL.

use std::path::Path;

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_PG.to_owned())
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg_name: Option<String>,
}

impl TestDb {
    /// A database this test made itself (its own server): nothing to drop afterwards.
    pub fn existing(backend: Backend, url: String) -> TestDb {
        TestDb {
            backend,
            url,
            pg_name: None,
        }
    }

    pub async fn create(backend: Backend, dir: &Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!(
                    "sqlite://{}",
                    dir.join("db").join("entitlements.db").display()
                ),
                pg_name: None,
            },
            Backend::Postgres => {
                let admin = admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin} ({e}). The suite runs every test on PostgreSQL too: \
                         start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), \
                         point DATABASE_URL at one, or set ENTITLEMENTS_SKIP_POSTGRES=1 to skip those tests knowingly."
                    )
                });
                let name = format!("ent_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let url = match admin.rfind('/') {
                    Some(i) => format!("{}/{name}", &admin[..i]),
                    None => panic!("DATABASE_URL has no database part: {admin}"),
                };
                TestDb {
                    backend,
                    url,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = admin_url();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}
