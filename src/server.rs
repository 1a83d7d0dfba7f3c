//! The tonic server: health, reflection, limits, per-call spans, graceful shutdown. The
//! database comes up behind it: health says NOT_SERVING until it is migrated and answering.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OnceCell, watch};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::telemetry::rpc::RpcLayer;
use crate::transport::CurrentTls;

use crate::clock::SharedClock;
use crate::config::{Config, MailSetup};
use crate::grpc::{AccessServer, AdminServer, Api, EntitlementServer};
use crate::mail::MailTransport;
use crate::service::{Services, spawn_expiry_sweeper};
use crate::store::{self, SharedStore, StoreError};

const SERVICE_NAMES: [&str; 3] = [
    "entitlement.v1.AccessService",
    "entitlement.v1.EntitlementService",
    "entitlement.v1.AccountAdminService",
];

/// A largest token plus 16 KiB for the rest of a call's metadata (trace context, user agent,
/// gRPC's own headers), as HPACK counts it.
const MAX_HEADER_LIST_BYTES: u32 = crate::auth::MAX_TOKEN_LEN as u32 + 16 * 1024;
const REFLECTION_METHOD: &str = "grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/// The health service name that is SERVING whenever the process answers.
pub const LIVENESS: &str = "liveness";

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// The sockets the service answers on, bound by the caller (so a test can bind port 0 and
/// know the port).
pub struct Listeners {
    pub grpc: TcpListener,
    /// The AuthZEN HTTP door (`--http-listen`).
    pub http: Option<TcpListener>,
    /// Plaintext `grpc.health.v1` beside a TLS main port (`--health-listen`).
    pub health: Option<TcpListener>,
}

/// Runs the whole service on `listener` (and on `--http-listen` and `--health-listen`, bound
/// here) until
/// `shutdown` resolves; in-flight calls finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http = match config.http_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} for HTTP (--http-listen)"))?,
        ),
        None => None,
    };
    let health = match config.health_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} for health (--health-listen)"))?,
        ),
        None => None,
    };
    let listeners = Listeners {
        grpc: listener,
        http,
        health,
    };
    serve(config, listeners, clock, shutdown).await
}

/// As [`run`], on listeners the caller bound.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = listeners.grpc;
    // Before anything else: a certificate that cannot be served is a start-up error.
    let tls = match config.tls.clone() {
        Some(settings) => Some(CurrentTls::load(settings).await?),
        None => None,
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    set_health(&reporter, ServingStatus::NotServing).await;
    // For liveness probes: the process answers. Readiness (the services above) also needs the
    // database and a loaded cache; a database outage must not get every replica restarted.
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let auth = crate::auth::Authenticator::new(config.auth.clone())
        .await
        .context("loading the token verification keys")?;
    let cell = Arc::new(OnceCell::new());
    let http_api = crate::http::HttpApi::new(cell.clone(), auth.clone(), tls.is_some());
    let api = Api::new(cell.clone(), auth);
    let max = config.max_message_bytes;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let metrics_listener = match config.metrics_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} for metrics"))?,
        ),
        None => None,
    };
    let health_listener = listeners.health;
    let health_addr = match &health_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let mut methods = crate::telemetry::rpc::methods_of(&[
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ]);
    methods.push(REFLECTION_METHOD.to_owned());
    let rpc_layer = RpcLayer::new(methods.iter().map(String::as_str));
    let health_task = health_listener.map(|l| {
        let (health, rpc_layer, stop) = (health.clone(), rpc_layer.clone(), stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::transport::serve_health(l, health, rpc_layer, stop).await {
                tracing::error!(error = %e, "the health listener stopped");
            }
        })
    });
    let http_task = listeners.http.map(|l| {
        let router = crate::http::router(
            http_api,
            crate::http::Limits {
                max_body_bytes: config.max_message_bytes,
                concurrency: config.concurrency_limit,
                timeout: config.request_timeout,
            },
        );
        let tls = tls.as_ref().map(|(current, _)| current.clone());
        let stop = stop_rx.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Ok(a) = l.local_addr() {
            tracing::info!(http = %a, "AuthZEN Authorization API at {scheme}://{a}/access/v1/");
        }
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(l, tls, router, stop).await {
                tracing::error!(error = %e, "the HTTP listener stopped");
            }
        })
    });
    let router = Server::builder()
        // Above the token cap, so an oversized token is answered TOKEN_MALFORMED; at hyper's
        // default (16 KiB for all metadata together) the transport answered first, with an
        // HTTP 431 that clients see as UNKNOWN with no reason.
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(rpc_layer)
        // Ours rather than tonic's limit and load shedding, whose refusal carries no ErrorInfo;
        // inside the RPC layer so shed calls are counted and traced like any other answer.
        .layer(crate::grpc::ConnectionLimitLayer::new(
            config.concurrency_limit,
        ))
        .layer(crate::grpc::DeadlineLayer::new(config.request_timeout))
        .add_service(health)
        .add_service(reflection)
        .add_service(
            AccessServer::new(api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            EntitlementServer::new(api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            AdminServer::new(api)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );

    let stop_for_server = stop_tx.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing calls in flight");
        let _ = stop_for_server.send(true);
    };
    let scheme = match &tls {
        Some((current, _)) if current.mutual() => "TLS, client certificates required",
        Some(_) => "TLS",
        None => "plaintext",
    };
    let mut reloader_task = None;
    let mut server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match tls {
            // TCP_NODELAY: without it a response that spans two segments waits for the
            // client's delayed ACK (seen: a 40-check batch took about 44 ms on loopback, a
            // 20-check one 1.3 ms).
            None => Box::pin(router.serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            )),
            Some((current, reloader)) => {
                reloader_task = Some(crate::transport::spawn_reloader(reloader, stop_rx.clone()));
                let incoming = crate::transport::tls_incoming(listener, current, stop_rx.clone());
                Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
            }
        };
    tracing::info!(%addr, scheme, "listening on {addr} ({scheme}); NOT_SERVING until the database answers and the cache is loaded");
    if let Some(a) = health_addr {
        tracing::info!(health = %a, "plaintext health (grpc.health.v1 only) on {a}");
    }
    let dev = config.dev;
    if config.dev {
        tracing::warn!(
            "DEV MODE: tokens are signed by a local key and email goes to files. Never use --dev in production."
        );
    }

    let metrics_task = metrics_listener.map(|l| {
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::telemetry::metrics::serve(l, stop).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        })
    });
    let backend = start_backend(config, clock, cell, reporter.clone(), stop_rx.clone());
    let tasks = tokio::select! {
        r = &mut server => { r.context("gRPC server failed")?; let _ = stop_tx.send(true); return Ok(()) }
        b = backend => b?,
    };
    tracing::info!(%addr, dev, scheme, "entitlements serving gRPC on {addr} ({scheme})");
    let served = server.await;
    let _ = stop_tx.send(true);
    let listeners = metrics_task
        .into_iter()
        .chain(health_task)
        .chain(http_task)
        .chain(reloader_task);
    for t in tasks.into_iter().chain(listeners) {
        // Background tasks stop at the signal; the mail worker finishes the message in hand.
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    served.context("gRPC server failed")
}

/// Connects (retrying while the database is down), migrates, and starts the background work.
async fn start_backend(
    config: Config,
    clock: SharedClock,
    cell: Arc<OnceCell<Services>>,
    reporter: HealthReporter,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut delay = Duration::from_millis(200);
    let store: SharedStore = loop {
        match connect_and_migrate(&config.database_url).await {
            Ok(s) => break s,
            Err(StoreError::Config(m)) => anyhow::bail!("database: {m}"),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "database not ready");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return Ok(Vec::new()),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    };
    tracing::info!(backend = store.backend(), "database migrated and answering");
    let transport = match &config.mail {
        MailSetup::Smtp(url) => MailTransport::from_smtp_url(url).context("--smtp-url")?,
        MailSetup::Dir(dir) => MailTransport::dir(dir).context("--mail-dir")?,
    };
    let wake = Arc::new(Notify::new());
    let mut delay = Duration::from_millis(200);
    let (services, feed_task) = loop {
        match Services::start(
            store.clone(),
            clock.clone(),
            config.service.clone(),
            wake.clone(),
            stop.clone(),
        )
        .await
        {
            Ok(started) => break started,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "loading the cache failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return Ok(Vec::new()),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    };
    let _ = cell.set(services.clone());
    let mut tasks = vec![feed_task];
    tasks.push(crate::service::spawn_feed_trimmer(
        store.clone(),
        clock.clone(),
        stop.clone(),
    ));
    let worker = crate::mail::MailWorker::new(
        Arc::new(services.clone()),
        Arc::new(transport),
        config.mail_from.clone(),
        clock,
    )
    .with_config(crate::mail::WorkerConfig {
        poll_interval: config.mail_poll,
        lease_ms: i64::try_from(config.mail_lease.as_millis()).unwrap_or(i64::MAX),
        ..Default::default()
    });
    tasks.push(worker.spawn(wake, stop.clone()));
    tasks.push(spawn_expiry_sweeper(
        services.clone(),
        config.expiry_sweep,
        config.orphan_sweep,
        stop.clone(),
    ));
    tasks.push(crate::service::spawn_ops_sampler(
        services.clone(),
        config.metrics_sample,
        stop.clone(),
    ));
    let observers = crate::telemetry::metrics::observe_service(&services);
    let mut until_stop = stop.clone();
    tasks.push(tokio::spawn(async move {
        // The callbacks stay registered while their handles live: until the server stops.
        let _observers = observers;
        let _ = until_stop.wait_for(|s| *s).await;
    }));
    tasks.push(spawn_health_monitor(store, reporter.clone(), stop));
    set_health(&reporter, ServingStatus::Serving).await;
    Ok(tasks)
}

async fn connect_and_migrate(url: &str) -> Result<SharedStore, StoreError> {
    let store = store::connect(url).await?;
    store.migrate().await?;
    store.ping().await?;
    Ok(store)
}

/// Health follows the database: a replica whose database stopped answering says NOT_SERVING.
fn spawn_health_monitor(
    store: SharedStore,
    reporter: HealthReporter,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut serving = true;
        loop {
            // Every second: one trivial query per replica, and a database that comes back is
            // served again within about a second (the runbook promises five).
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            let ok = tokio::time::timeout(Duration::from_secs(3), store.ping())
                .await
                .is_ok_and(|r| r.is_ok());
            if ok != serving {
                serving = ok;
                tracing::warn!(serving, "database health changed");
                set_health(
                    &reporter,
                    if ok {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    },
                )
                .await;
            }
        }
    })
}
