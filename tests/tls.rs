//! TLS on the gRPC listener: who can connect, certificate rotation without a restart, mutual
//! TLS, plaintext health for probes, and `ctl` over https. The PKI is made per test (rcgen).

pub mod pki;

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use pb::entitlement_service_client::EntitlementServiceClient;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::*;
use pki::{Ca, SecretMount, files, handshake, served, write};

async fn spawn_tls(backend: Backend, tls: TestTls) -> TestApp {
    TestApp::spawn_with(
        backend,
        AppOptions {
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await
}

/// One real RPC: a check for somebody who is nobody's member.
async fn check(
    app: &TestApp,
    channel: Channel,
) -> Result<pb::CheckEntitlementResponse, tonic::Status> {
    let req = pb::CheckEntitlementRequest {
        web_id: "nobody".into(),
        icn: ICN.into(),
        action: pb::Action::OpenServiceRequest as i32,
        ..Default::default()
    };
    let r = EntitlementServiceClient::new(channel)
        .check_entitlement(authed(req, &app.checker()))
        .await?;
    Ok(r.into_inner())
}

/// The call failed in the connection: the server never answered it (a status the server
/// sent has no transport error as its source). The code the client makes of it depends on
/// where the connection broke (in the handshake; just after it, when a TLS 1.3 server rejects
/// the client's certificate; or a TLS alert read as an HTTP/2 frame), so it is not asserted.
#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, who: &str) {
    let e = r.expect_err(&format!("{who} is refused"));
    let transport = std::error::Error::source(&e)
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(transport, "{who}: {e:?}");
}

fn tls_channel(app: &TestApp, client: ClientTlsConfig) -> Channel {
    Channel::from_shared(format!("https://{}", app.addr))
        .unwrap()
        .tls_config(client)
        .unwrap()
        .connect_lazy()
}

async fn tls_serves_grpc_only_to_clients_that_trust_its_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let app = spawn_tls(backend, files(dir.path(), &ca, ca.client_config())).await;

    let r = check(&app, app.channel.clone())
        .await
        .expect("a check over TLS");
    assert!(!r.allowed);
    let h = handshake(app.addr, &ca, rustls::DEFAULT_VERSIONS)
        .await
        .unwrap();
    assert_eq!(h.version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(h.alpn.as_deref(), Some(&b"h2"[..]));
    let h = handshake(app.addr, &ca, &[&rustls::version::TLS12])
        .await
        .unwrap();
    assert_eq!(
        h.version,
        rustls::ProtocolVersion::TLSv1_2,
        "TLS 1.2 clients are served"
    );

    let plaintext = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_lazy();
    refused(check(&app, plaintext).await, "plaintext");

    let stranger = Ca::new("another CA");
    let r = check(&app, tls_channel(&app, stranger.client_config())).await;
    refused(r, "a client that does not trust the CA");
    assert!(
        handshake(app.addr, &stranger, rustls::DEFAULT_VERSIONS)
            .await
            .is_err()
    );

    // The server still serves after the failed handshakes.
    check(&app, app.channel.clone())
        .await
        .expect("still serving");
}

async fn a_rotated_certificate_reaches_new_connections(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let first = ca.server("first");
    let mut mount = SecretMount::new(dir.path(), &first);
    let app = spawn_tls(backend, mount.tls(ca.client_config())).await;
    assert_eq!(served(app.addr, &ca).await, first.der);
    let open = app.channel.clone();
    check(&app, open.clone()).await.unwrap();

    // cert-manager renews: a new key and certificate, swapped in by the symlink.
    let second = ca.server("second");
    assert_ne!(first.der, second.der);
    mount.publish(&second.cert, &second.key);
    eventually("new connections get the rotated certificate", || async {
        served(app.addr, &ca).await == second.der
    })
    .await;
    check(&app, open.clone())
        .await
        .expect("an open connection goes on");
    check(&app, tls_channel(&app, ca.client_config()))
        .await
        .expect("a new client trusts the rotated certificate");

    // A broken rotation (a certificate whose key is not there, then garbage): the server goes
    // on with the last good pair. What is asserted is an absence, so it is watched over 40
    // reload periods (50 ms each) rather than waited for.
    let third = ca.server("third");
    mount.publish(&third.cert, &second.key);
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        assert_eq!(
            served(app.addr, &ca).await,
            second.der,
            "a mismatched pair is never served"
        );
    }
    mount.publish("not a certificate", "not a key");
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        assert_eq!(
            served(app.addr, &ca).await,
            second.der,
            "garbage is never served"
        );
    }
    check(&app, tls_channel(&app, ca.client_config()))
        .await
        .unwrap();

    // And the next good pair is picked up: the reloader survived the bad ones.
    mount.publish(&third.cert, &third.key);
    eventually("the repaired rotation is served", || async {
        served(app.addr, &ca).await == third.der
    })
    .await;
}

async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let portal = ca.client("portal");
    let mut tls = files(
        dir.path(),
        &ca,
        ca.client_config().identity(portal.identity()),
    );
    tls.client_ca = Some(write(&dir.path().join("ca.crt"), &ca.pem));
    let app = spawn_tls(backend, tls).await;

    check(&app, app.channel.clone())
        .await
        .expect("a client with a certificate from the CA");
    let r = check(&app, tls_channel(&app, ca.client_config())).await;
    refused(r, "no client certificate");
    let stranger = Ca::new("another CA").client("stranger");
    let r = check(
        &app,
        tls_channel(&app, ca.client_config().identity(stranger.identity())),
    )
    .await;
    refused(r, "a client certificate from another CA");
    // The certificate admits, the token still decides: no token, no answer.
    let e = EntitlementServiceClient::new(app.channel.clone())
        .check_entitlement(pb::CheckEntitlementRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    // ctl presents its certificate with --client-cert/--client-key.
    let server = format!("--server=https://{}", app.addr);
    let ca_file = format!("--ca-cert={}", dir.path().join("ca.crt").display());
    let cert = write(&dir.path().join("portal.crt"), &portal.cert);
    let key = write(&dir.path().join("portal.key"), &portal.key);
    let out = ctl(&app, &[&server, &ca_file]).await;
    assert!(!out.status.success(), "ctl without a client certificate");
    let cert = format!("--client-cert={}", cert.display());
    let key = format!("--client-key={}", key.display());
    let out = ctl(&app, &[&server, &ca_file, &cert, &key]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn plaintext_health_answers_while_the_main_port_is_tls(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let app = TestApp::spawn_with(
        backend,
        AppOptions {
            tls: Some(files(dir.path(), &ca, ca.client_config())),
            health_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        },
    )
    .await;
    let health_addr = app.health_addr.expect("health listener");
    let probe = Channel::from_shared(format!("http://{health_addr}"))
        .unwrap()
        .connect_lazy();
    for service in ["", "entitlement.v1.EntitlementService", "liveness"] {
        let r = HealthClient::new(probe.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("plaintext health of {service:?}: {e:?}"));
        assert_eq!(
            r.into_inner().status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let e = check(&app, probe)
        .await
        .expect_err("the health port serves no API");
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    // The same statuses as the main listener, which speaks TLS only.
    let r = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
}

async fn ctl_speaks_tls_with_a_private_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("entitlements test CA");
    let app = spawn_tls(backend, files(dir.path(), &ca, ca.client_config())).await;
    let ca_file = write(&dir.path().join("ca.crt"), &ca.pem);
    let server = format!("--server=https://{}", app.addr);
    let out = ctl(
        &app,
        &[&server, &format!("--ca-cert={}", ca_file.display())],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("allowed: false"), "{stdout}");

    // Without the private CA the system's roots do not know the certificate.
    let out = ctl(&app, &[&server]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    // TLS flags on a plaintext URL are a mistake, said as such.
    let plain = format!("--server=http://{}", app.addr);
    let out = ctl(&app, &[&plain, &format!("--ca-cert={}", ca_file.display())]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("https://"),
        "{stderr}"
    );
}

async fn unusable_tls_files_stop_start_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(backend, dir.path()).await;
    let ca = Ca::new("entitlements test CA");
    let (a, b) = (ca.server("a"), ca.server("b"));
    let missing = TestTls {
        cert: dir.path().join("absent.crt"),
        key: write(&dir.path().join("a.key"), &a.key),
        client_ca: None,
        client: ca.client_config(),
    };
    let mismatched = TestTls {
        cert: write(&dir.path().join("b.crt"), &b.cert),
        ..missing.clone()
    };
    for (tls, want) in [
        (missing, "--tls-cert"),
        (mismatched, "do not make a usable pair"),
    ] {
        let opts = AppOptions {
            tls: Some(tls),
            ..Default::default()
        };
        let mail = MailKind::Dir(dir.path().join("mail"));
        let config = config(&db.url, dir.path(), &mail, &opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock = std::sync::Arc::new(entitlements::clock::SystemClock);
        let run = entitlements::run(config, listener, clock, std::future::pending());
        let r = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("start-up fails at once");
        let e = format!("{:#}", r.expect_err("refuses to start"));
        assert!(e.contains(want), "{e}");
    }
}

/// `entitlements ctl <global args> check ...` as a child process, with the checker's token.
async fn ctl(app: &TestApp, global: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_entitlements"));
    cmd.arg("ctl")
        .args(global)
        .arg(format!("--token={}", app.checker()));
    cmd.args([
        "check",
        "--web-id=nobody",
        "--icn",
        ICN,
        "--action=open-service-request",
    ]);
    for var in [
        "ENTITLEMENTS_SERVER",
        "ENTITLEMENTS_TOKEN",
        "ENTITLEMENTS_CA_CERT",
        "ENTITLEMENTS_CLIENT_CERT",
        "ENTITLEMENTS_CLIENT_KEY",
    ] {
        cmd.env_remove(var);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("ctl ends")
        .unwrap()
}

crate::both_backends!(
    tls_serves_grpc_only_to_clients_that_trust_its_ca,
    a_rotated_certificate_reaches_new_connections,
    mutual_tls_admits_only_clients_with_a_certificate_from_the_ca,
    plaintext_health_answers_while_the_main_port_is_tls,
    ctl_speaks_tls_with_a_private_ca,
    unusable_tls_files_stop_start_up
);
