use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use entitlements::auth::dev::{DEV_ISSUER, DevKey, MintRequest};
use entitlements::clock::SystemClock;
use entitlements::config::{DbArgs, ServeArgs};

/// glibc malloc fragments under the cache's many small entries and the per-call request
/// buffers; mimalloc keeps the hot path's allocations cheap (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "entitlements",
    version,
    about = "gRPC entitlement service: who may open a support request for which customer account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Print a token signed by the dev key (the one `serve --dev` uses).
    DevToken {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        /// Repeatable: entitlements.check, entitlements.admin.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
        #[arg(
            long,
            env = "ENTITLEMENTS_AUTH_AUDIENCE",
            default_value = "entitlements"
        )]
        audience: String,
        #[arg(long, env = "ENTITLEMENTS_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
    },
    /// Call the service: one subcommand per RPC (try `entitlements ctl --help`).
    Ctl(entitlements::ctl::CtlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let telemetry = entitlements::telemetry::init("entitlements", args.log_json)?;
            let config = args.into_config()?;
            let metrics = entitlements::telemetry::metrics::init(
                "entitlements",
                config.metrics_listen.is_some(),
            )?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
            let result =
                entitlements::run(config, listener, Arc::new(SystemClock), shutdown_signal()).await;
            drop(metrics);
            telemetry.shutdown();
            result
        }
        Command::Migrate(db) => {
            let store = entitlements::store::connect(&db.url()).await?;
            store.migrate().await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::DevToken {
            sub,
            email,
            given_name,
            family_name,
            scopes,
            ttl_secs,
            audience,
            data_dir,
        } => {
            let key = DevKey::load_or_create(&data_dir)?;
            let token = key.mint(&MintRequest {
                sub,
                email,
                given_name,
                family_name,
                scopes,
                issuer: DEV_ISSUER.to_owned(),
                audience,
                ttl_secs,
            })?;
            println!("{token}");
            Ok(())
        }
        Command::Ctl(args) => entitlements::ctl::run(args).await,
    }
}

/// SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
