//! Flags and `ENTITLEMENTS_*` environment variables, validated once into a `Config`.
//! Secrets (the SMTP URL's password, the mail key) are never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::dev::{DEV_ISSUER, DevKey};
use crate::auth::{AuthConfig, DEFAULT_AUDIENCE, JwksSource};
use crate::mail::{MailBrand, MailKeys, Mailbox, default_from};
use crate::private_fs;
use crate::service::{CacheCapacity, RequestLimits, ServiceConfig};
use crate::transport::{DEFAULT_RELOAD_EVERY, TlsSettings};

#[derive(clap::Args, Clone)]
pub struct DbArgs {
    /// `sqlite://path.db` or `postgres://...`; default: a SQLite file under --data-dir.
    #[arg(long, env = "ENTITLEMENTS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the default SQLite file, the dev key and the dev mail directory live.
    #[arg(long, env = "ENTITLEMENTS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    pub fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("entitlements.db").display()
            )
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    #[arg(long, env = "ENTITLEMENTS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// JWKS of the identity provider: a file path or an https:// URL.
    #[arg(long, env = "ENTITLEMENTS_AUTH_JWKS")]
    pub auth_jwks: Option<String>,
    /// The exact `iss` tokens must carry; required unless --dev (which defaults to entitlements-dev).
    #[arg(long, env = "ENTITLEMENTS_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    #[arg(long, env = "ENTITLEMENTS_AUTH_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    pub auth_audience: String,
    /// Write each email as a .eml file in this directory (dev default: <data-dir>/mail).
    #[arg(long, env = "ENTITLEMENTS_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Deliver email by SMTP: smtp://host:25, smtps://user:pass@host:465, smtp://host:587?tls=required.
    #[arg(long, env = "ENTITLEMENTS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of every email, e.g. "IBM Support <no-reply@example.com>".
    #[arg(long, env = "ENTITLEMENTS_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Key sealing the email waiting in the outbox: base64 of 32 random bytes
    /// (`openssl rand -base64 32`); several, comma-separated, during a rotation (the first
    /// seals, all open). Required outside --dev, where it defaults to <data-dir>/dev-mail-key.
    #[arg(long, env = "ENTITLEMENTS_MAIL_KEY", hide_env_values = true)]
    pub mail_key: Option<String>,
    /// How long an email claimed for delivery stays hidden from other deliveries: after a
    /// crash, its email goes out this long after the claim (e.g. `30s`, `2m`). Longer than
    /// delivering a batch of 20 takes, or a slow batch is sent twice.
    #[arg(long, env = "ENTITLEMENTS_MAIL_LEASE", default_value = "2m", value_parser = humantime::parse_duration)]
    pub mail_lease: Duration,
    /// Where people go to act on an email (shown in the emails).
    #[arg(
        long,
        env = "ENTITLEMENTS_PORTAL_URL",
        default_value = "https://www.ibm.com/mysupport"
    )]
    pub portal_url: String,
    /// Development mode: a local signing key under --data-dir, .eml files for email. Never in production.
    #[arg(long, env = "ENTITLEMENTS_DEV")]
    pub dev: bool,
    /// A pending request nobody has decided this long after it was made reminds the account's
    /// administrators (e.g. `72h`, `3d`, `90s`).
    #[arg(long, env = "ENTITLEMENTS_REMIND_AFTER", default_value = "72h", value_parser = humantime::parse_duration)]
    pub remind_after: Duration,
    /// ... then goes to its Site Technical Contacts (and to --operator-email where the account
    /// has no administrator with a verified email).
    #[arg(long, env = "ENTITLEMENTS_ESCALATE_AFTER", default_value = "7d", value_parser = humantime::parse_duration)]
    pub escalate_after: Duration,
    /// ... and expires this long after it was made; the requester is told what to do next.
    #[arg(long, env = "ENTITLEMENTS_EXPIRE_AFTER", default_value = "30d", value_parser = humantime::parse_duration)]
    pub expire_after: Duration,
    /// The operators' address: requests nobody on their account can decide, and accounts left
    /// without an administrator who can, are reported here.
    #[arg(long, env = "ENTITLEMENTS_OPERATOR_EMAIL")]
    pub operator_email: Option<String>,
    /// The Site Technical Contacts of an active account are warned this long before the last
    /// of its contracts in force ends (once per end instant; an extension warns again).
    #[arg(long, env = "ENTITLEMENTS_CONTRACT_WARNING", default_value = "30d", value_parser = humantime::parse_duration)]
    pub contract_warning: Duration,
    /// A renewed contract asks the account's administrators to confirm its members; members
    /// (other than STCs) not confirmed within this time lose their access.
    #[arg(long, env = "ENTITLEMENTS_RECERTIFY_WITHIN", default_value = "30d", value_parser = humantime::parse_duration)]
    pub recertify_within: Duration,
    /// How long a mutation's AIP-155 request_id holds: a retry with the same id within this
    /// time changes nothing twice and gets the first answer; later it is a new call.
    #[arg(long, env = "ENTITLEMENTS_REQUEST_ID_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub request_id_ttl: Duration,
    /// Per-call deadline (a shorter grpc-timeout from the client wins).
    #[arg(
        long,
        env = "ENTITLEMENTS_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub request_timeout_ms: u64,
    /// Calls in flight per connection before new ones are shed with RESOURCE_EXHAUSTED.
    #[arg(long, env = "ENTITLEMENTS_CONCURRENCY_LIMIT", default_value_t = 1024)]
    pub concurrency_limit: usize,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "ENTITLEMENTS_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Log JSON lines instead of human-readable text.
    #[arg(long, env = "ENTITLEMENTS_LOG_JSON")]
    pub log_json: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (off when not given).
    #[arg(long, env = "ENTITLEMENTS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the database's figures behind the metrics (outbox, pending requests, feed
    /// head) are read, in milliseconds.
    #[arg(long, env = "ENTITLEMENTS_METRICS_SAMPLE_MS", default_value_t = 10_000)]
    pub metrics_sample_ms: u64,
    /// Most accounts the check cache holds (loaded at start, then filled on demand).
    #[arg(long, env = "ENTITLEMENTS_CACHE_ACCOUNTS", default_value_t = CacheCapacity::default().accounts)]
    pub cache_accounts: usize,
    /// Most persons the check cache holds.
    #[arg(long, env = "ENTITLEMENTS_CACHE_PERSONS", default_value_t = CacheCapacity::default().persons)]
    pub cache_persons: usize,
    /// Most (account, person) pairs the check cache holds.
    #[arg(long, env = "ENTITLEMENTS_CACHE_MEMBERS", default_value_t = CacheCapacity::default().members)]
    pub cache_members: usize,
    /// RequestAccess calls one person may make per hour on one replica (also the burst).
    #[arg(long, env = "ENTITLEMENTS_ACCESS_REQUESTS_PER_PERSON_PER_HOUR", default_value_t = RequestLimits::default().per_person_per_hour)]
    pub access_requests_per_person_per_hour: u32,
    /// RequestAccess calls for one account per hour on one replica (also the burst).
    #[arg(long, env = "ENTITLEMENTS_ACCESS_REQUESTS_PER_ACCOUNT_PER_HOUR", default_value_t = RequestLimits::default().per_account_per_hour)]
    pub access_requests_per_account_per_hour: u32,
    /// Serve gRPC over TLS with this PEM certificate chain (with --tls-key); re-read when it changes.
    #[arg(long, env = "ENTITLEMENTS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "ENTITLEMENTS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by this PEM CA (mutual TLS; needs --tls-cert).
    #[arg(long, env = "ENTITLEMENTS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Also serve plaintext grpc.health.v1 (and nothing else) here, for probes that cannot speak TLS.
    #[arg(long, env = "ENTITLEMENTS_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
}

pub enum MailSetup {
    Smtp(String),
    Dir(PathBuf),
}

pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub auth: AuthConfig,
    pub dev_key: Option<DevKey>,
    pub mail: MailSetup,
    pub mail_from: Mailbox,
    pub mail_poll: Duration,
    pub mail_lease: Duration,
    pub service: ServiceConfig,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    pub max_message_bytes: usize,
    pub expiry_sweep: Duration,
    /// How often accounts are searched for ones nobody can administer.
    pub orphan_sweep: Duration,
    pub dev: bool,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_sample: Duration,
    /// TLS on the gRPC listener, if any.
    pub tls: Option<TlsSettings>,
    /// Where plaintext health is served besides the main listener, if anywhere.
    pub health_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let tls = self.tls()?;
        let (auth, dev_key) = match (&self.auth_jwks, self.dev) {
            // Dev mode writes every email, verification codes included, to files: with real
            // identities behind the tokens, anyone who can read the data directory could
            // verify any address.
            (Some(_), true) => {
                return Err(ConfigError(
                    "refusing to start: --dev (ENTITLEMENTS_DEV) together with --auth-jwks \
                     (ENTITLEMENTS_AUTH_JWKS). Dev mode writes every email, verification codes \
                     included, to files and is never for real identities: drop --dev to use the \
                     identity provider's JWKS, or drop --auth-jwks to try the service with the \
                     local dev key."
                        .to_owned(),
                ));
            }
            (Some(jwks), false) => {
                let source = JwksSource::parse(jwks)
                    .map_err(|e| ConfigError(format!("--auth-jwks: {e}")))?;
                // Without an issuer check, a token from any issuer whose keys share the JWKS
                // (several tenants or environments of one provider often do) would be accepted.
                let issuer = self
                    .auth_issuer
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ConfigError(
                            "refusing to start: no --auth-issuer (ENTITLEMENTS_AUTH_ISSUER). \
                             Give the identity provider's issuer, the exact `iss` of its tokens \
                             (e.g. https://idp.example.com), so tokens of other issuers are refused."
                                .to_owned(),
                        )
                    })?;
                (
                    AuthConfig {
                        issuer: Some(issuer.to_owned()),
                        audience: self.auth_audience.clone(),
                        ..AuthConfig::new(source)
                    },
                    None,
                )
            }
            (None, true) => {
                // Before the dev key goes in: the data directory is made private if it is new.
                private_fs::create_dir_all(&self.db.data_dir).map_err(|e| {
                    ConfigError(format!("cannot create {}: {e}", self.db.data_dir.display()))
                })?;
                let key = DevKey::load_or_create(&self.db.data_dir).map_err(|e| {
                    ConfigError(format!("dev key under {}: {e}", self.db.data_dir.display()))
                })?;
                (
                    AuthConfig {
                        issuer: Some(
                            self.auth_issuer
                                .clone()
                                .unwrap_or_else(|| DEV_ISSUER.to_owned()),
                        ),
                        audience: self.auth_audience.clone(),
                        ..AuthConfig::new(JwksSource::File(key.jwks_path()))
                    },
                    Some(key),
                )
            }
            (None, false) => {
                return Err(ConfigError(
                    "refusing to start: no --auth-jwks (ENTITLEMENTS_AUTH_JWKS) to verify tokens with. \
                     Give the identity provider's JWKS, or pass --dev to try the service with a local key."
                        .to_owned(),
                ));
            }
        };
        let mail = match (&self.smtp_url, &self.mail_dir) {
            (Some(url), _) => MailSetup::Smtp(url.clone()),
            (None, Some(dir)) => MailSetup::Dir(dir.clone()),
            (None, None) if self.dev => MailSetup::Dir(self.db.data_dir.join("mail")),
            (None, None) => {
                return Err(ConfigError(
                    "refusing to start: no way to send email. Give --smtp-url or --mail-dir."
                        .to_owned(),
                ));
            }
        };
        let mail_keys = match (&self.mail_key, self.dev) {
            (Some(spec), _) => {
                MailKeys::parse(spec).map_err(|e| ConfigError(format!("--mail-key: {e}")))?
            }
            (None, true) => MailKeys::load_or_create(&self.db.data_dir).map_err(|e| {
                ConfigError(format!(
                    "dev mail key under {}: {e}",
                    self.db.data_dir.display()
                ))
            })?,
            (None, false) => {
                return Err(ConfigError(
                    "refusing to start: no --mail-key (ENTITLEMENTS_MAIL_KEY) to seal queued email with, \
                     so verification codes would wait in the database in clear. Make one with \
                     `openssl rand -base64 32`, keep it with the other secrets, and give every \
                     replica the same."
                        .to_owned(),
                ));
            }
        };
        let mail_from = match &self.mail_from {
            Some(s) => s
                .parse()
                .map_err(|e| ConfigError(format!("--mail-from: {e}")))?,
            None => default_from(),
        };
        if self.max_message_bytes < 1024 {
            return Err(ConfigError(
                "--max-message-bytes must be at least 1024".to_owned(),
            ));
        }
        if !(self.remind_after < self.escalate_after && self.escalate_after < self.expire_after) {
            return Err(ConfigError(format!(
                "--remind-after ({}) must be shorter than --escalate-after ({}), and that shorter than --expire-after ({})",
                humantime::format_duration(self.remind_after),
                humantime::format_duration(self.escalate_after),
                humantime::format_duration(self.expire_after),
            )));
        }
        if self.recertify_within.is_zero() {
            return Err(ConfigError(
                "--recertify-within must be longer than zero".to_owned(),
            ));
        }
        if self.request_id_ttl.is_zero() {
            return Err(ConfigError(
                "--request-id-ttl must be longer than zero".to_owned(),
            ));
        }
        let operator_email = self
            .operator_email
            .as_deref()
            .map(crate::domain::Email::parse)
            .transpose()
            .map_err(|e| ConfigError(format!("--operator-email: {e}")))?;
        Ok(Config {
            listen: self.listen,
            database_url: self.db.url(),
            auth,
            dev_key,
            mail,
            mail_from,
            mail_poll: Duration::from_secs(1),
            mail_lease: self.mail_lease.max(Duration::from_secs(1)),
            service: ServiceConfig {
                request_ttl_ms: millis(self.expire_after),
                remind_after_ms: millis(self.remind_after),
                escalate_after_ms: millis(self.escalate_after),
                operator_email,
                contract_warning_ms: millis(self.contract_warning),
                recertify_within_ms: millis(self.recertify_within),
                request_id_ttl_ms: millis(self.request_id_ttl),
                brand: MailBrand {
                    portal_url: self.portal_url.clone(),
                    ..MailBrand::default()
                },
                limits: RequestLimits {
                    per_person_per_hour: self.access_requests_per_person_per_hour.max(1),
                    per_account_per_hour: self.access_requests_per_account_per_hour.max(1),
                },
                cache: CacheCapacity {
                    accounts: self.cache_accounts.max(1),
                    persons: self.cache_persons.max(1),
                    members: self.cache_members.max(1),
                },
                mail_keys: Arc::new(mail_keys),
                ..ServiceConfig::default()
            },
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            concurrency_limit: self.concurrency_limit.max(1),
            max_message_bytes: self.max_message_bytes,
            // Reminders, escalations and expiries are honoured within about a second.
            expiry_sweep: Duration::from_secs(1),
            orphan_sweep: Duration::from_secs(60),
            dev: self.dev,
            metrics_listen: self.metrics_listen,
            metrics_sample: Duration::from_millis(self.metrics_sample_ms.max(100)),
            tls,
            health_listen: self.health_listen,
        })
    }

    /// Both --tls-cert and --tls-key, or neither. clap checks this on the command line; this
    /// also covers a `ServeArgs` made in code. The files are read when the server starts.
    fn tls(&self) -> Result<Option<TlsSettings>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsSettings {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
                reload_every: DEFAULT_RELOAD_EVERY,
            })),
            (None, None) if self.tls_client_ca.is_some() => Err(ConfigError(
                "--tls-client-ca needs --tls-cert and --tls-key: client certificates are only asked for over TLS"
                    .to_owned(),
            )),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError(
                "--tls-cert needs --tls-key (ENTITLEMENTS_TLS_KEY): give both or neither".to_owned(),
            )),
            (None, Some(_)) => Err(ConfigError(
                "--tls-key needs --tls-cert (ENTITLEMENTS_TLS_CERT): give both or neither".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tls_tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn error_of(args: &[&str]) -> String {
        let cli =
            Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap();
        match cli.serve.into_config() {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn tls_needs_both_files_and_client_certificates_need_tls() {
        let e = error_of(&["--tls-cert", "tls.crt"]);
        assert!(e.contains("--tls-cert needs --tls-key"), "{e}");
        let e = error_of(&["--tls-key", "tls.key"]);
        assert!(e.contains("--tls-key needs --tls-cert"), "{e}");
        let e = error_of(&["--tls-client-ca", "ca.crt"]);
        assert!(e.contains("--tls-client-ca needs --tls-cert"), "{e}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    const TEST_MAIL_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        // Every production setting these tests do not look at is given (a mail key here).
        let mut argv = vec![
            "serve",
            "--data-dir",
            &data_dir,
            "--mail-dir",
            &data_dir,
            "--mail-key",
            TEST_MAIL_KEY,
        ];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().serve.into_config()
    }

    fn refusal(args: &[&str]) -> String {
        match config(args) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn production_needs_an_issuer() {
        for issuer in [None, Some(""), Some("  ")] {
            let mut args = vec!["--auth-jwks", "https://idp.example.com/jwks.json"];
            if let Some(issuer) = issuer {
                args.extend(["--auth-issuer", issuer]);
            }
            let why = refusal(&args);
            assert!(
                why.contains("--auth-issuer") && why.contains("ENTITLEMENTS_AUTH_ISSUER"),
                "{why}"
            );
        }
        let ok = config(&[
            "--auth-jwks",
            "https://idp.example.com/jwks.json",
            "--auth-issuer",
            " https://idp.example.com ",
        ]);
        assert_eq!(
            ok.unwrap().auth.issuer.as_deref(),
            Some("https://idp.example.com")
        );
    }

    /// The request delays read as human durations, must come in order, and the operators'
    /// address must be one mail can be sent to; each error names its flag.
    #[test]
    fn request_delays_and_the_operator_address_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let serve = |extra: &[&str]| {
            let mut argv = vec!["serve", "--dev", "--data-dir", &data_dir];
            argv.extend(extra);
            Cli::try_parse_from(argv).map(|c| c.serve.into_config())
        };
        let c = serve(&[]).unwrap().unwrap();
        assert_eq!(c.service.remind_after_ms, 72 * 3_600_000);
        assert_eq!(c.service.escalate_after_ms, 7 * 24 * 3_600_000);
        assert_eq!(c.service.request_ttl_ms, 30 * 24 * 3_600_000);
        assert_eq!(c.service.operator_email, None);
        let c = serve(&[
            "--remind-after",
            "5s",
            "--escalate-after",
            "10s",
            "--expire-after",
            "1m",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                c.service.remind_after_ms,
                c.service.escalate_after_ms,
                c.service.request_ttl_ms
            ),
            (5_000, 10_000, 60_000)
        );
        for (remind, escalate, expire) in
            [("7d", "7d", "30d"), ("1d", "7d", "7d"), ("8d", "7d", "30d")]
        {
            let why = serve(&[
                "--remind-after",
                remind,
                "--escalate-after",
                escalate,
                "--expire-after",
                expire,
            ])
            .unwrap()
            .err()
            .unwrap()
            .0;
            assert!(
                why.contains("--remind-after") && why.contains("--expire-after"),
                "{why}"
            );
        }
        assert!(
            serve(&["--remind-after", "soon"]).is_err(),
            "not a duration"
        );
        let why = serve(&["--operator-email", "ops at example"])
            .unwrap()
            .err()
            .unwrap()
            .0;
        assert!(why.contains("--operator-email"), "{why}");
        let c = serve(&["--operator-email", "ops@example.com"])
            .unwrap()
            .unwrap();
        assert_eq!(
            c.service.operator_email.unwrap().as_str(),
            "ops@example.com"
        );
    }

    /// Outside dev mode queued email (verification codes) would wait in the database in clear.
    #[test]
    fn production_needs_a_mail_key_and_dev_mode_keeps_one() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data").display().to_string();
        let production = |key: Option<&str>| {
            let mut argv = vec![
                "serve",
                "--data-dir",
                &data_dir,
                "--mail-dir",
                &data_dir,
                "--auth-jwks",
                "https://idp.example.com/jwks.json",
                "--auth-issuer",
                "https://idp.example.com",
            ];
            if let Some(key) = key {
                argv.extend(["--mail-key", key]);
            }
            Cli::try_parse_from(argv).unwrap().serve.into_config()
        };
        let why = production(None).err().unwrap().0;
        assert!(
            why.contains("--mail-key")
                && why.contains("ENTITLEMENTS_MAIL_KEY")
                && why.contains("openssl rand -base64 32"),
            "{why}"
        );
        let why = production(Some("too-short")).err().unwrap().0;
        assert!(why.starts_with("--mail-key:"), "{why}");
        assert!(production(Some(TEST_MAIL_KEY)).is_ok());

        let dev = Cli::try_parse_from(["serve", "--dev", "--data-dir", &data_dir])
            .unwrap()
            .serve
            .into_config();
        assert!(dev.is_ok());
        assert!(dir.path().join("data").join("dev-mail-key").exists());
    }

    #[test]
    fn dev_mode_refuses_a_real_jwks() {
        let why = refusal(&["--dev", "--auth-jwks", "https://idp.example.com/jwks.json"]);
        assert!(
            why.contains("--dev") && why.contains("--auth-jwks"),
            "{why}"
        );
        let why = refusal(&[
            "--dev",
            "--auth-jwks",
            "https://idp.example.com/jwks.json",
            "--auth-issuer",
            "https://idp.example.com",
        ]);
        assert!(
            why.contains("--dev") && why.contains("--auth-jwks"),
            "{why}"
        );
        // Dev mode alone still starts, with its own key and issuer.
        let dev = config(&["--dev"]).unwrap();
        assert!(dev.dev);
        assert_eq!(dev.auth.issuer.as_deref(), Some(DEV_ISSUER));
    }
}
