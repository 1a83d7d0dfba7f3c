//! The load generator: `connections` HTTP/2 connections, `in_flight` calls outstanding in
//! total, every call with the bearer token, for a fixed time after a warm-up.

use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use pb::entitlement_service_client::EntitlementServiceClient;
use rand::Rng;
use tonic::transport::Channel;

use crate::dataset::Shape;

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub in_flight: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub calls: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Server CPU time per measured call (warm-up included in neither), in microseconds.
    pub cpu_us_per_call: f64,
}

pub async fn channels(addr: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Channel::from_shared(addr.to_owned())?.connect().await?);
    }
    Ok(out)
}

pub fn request(shape: Shape, i: i64) -> pb::CheckEntitlementRequest {
    let (icn, web_id) = shape.member(i);
    pb::CheckEntitlementRequest {
        web_id,
        icn,
        action: pb::Action::OpenServiceRequest as i32,
        product_id: "db2".into(),
        severity: 2,
        consistency_token: String::new(),
        consistency: 0,
    }
}

/// Drives CheckEntitlement over uniformly random memberships of `shape`.
pub async fn run(addr: &str, token: &str, shape: Shape, load: Load) -> anyhow::Result<Report> {
    let chans = channels(addr, load.connections).await?;
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let mut tasks = Vec::new();
    for t in 0..load.in_flight {
        let mut client = EntitlementServiceClient::new(chans[t % chans.len()].clone());
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let mut req = tonic::Request::new(request(shape, rng.gen_range(0..shape.members)));
                req.metadata_mut().insert("authorization", auth.clone());
                let r = client.check_entitlement(req).await;
                let done = Instant::now();
                if now >= measure_from {
                    match r {
                        Ok(resp) if resp.get_ref().allowed => {
                            lat.push(
                                u32::try_from(done.duration_since(now).as_micros())
                                    .unwrap_or(u32::MAX),
                            );
                        }
                        _ => errors += 1,
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0) as u64
    };
    Ok(Report {
        calls: all.len() as u64,
        errors,
        per_sec: all.len() as f64 / load.duration.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us_per_call: 0.0,
    })
}

/// Checks every membership once through BatchCheckEntitlements, so the timed run meets a
/// full cache (and the memory reading is the full cache's).
pub async fn warm_all(addr: &str, token: &str, shape: Shape) -> anyhow::Result<u64> {
    let chans = channels(addr, 4).await?;
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let chunks: Vec<i64> = (0..shape.members).step_by(100).collect();
    let mut tasks = Vec::new();
    for (w, chunk) in chunks.chunks(chunks.len().div_ceil(16).max(1)).enumerate() {
        let mut client = EntitlementServiceClient::new(chans[w % chans.len()].clone());
        let auth = auth.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0u64;
            for start in chunk {
                let checks = (start..(start + 100).min(shape.members)).map(|i| request(shape, i)).collect();
                let mut req = tonic::Request::new(pb::BatchCheckEntitlementsRequest { checks, consistency_token: String::new(), consistency: 0 });
                req.metadata_mut().insert("authorization", auth.clone());
                let r = client.batch_check_entitlements(req).await?.into_inner();
                allowed += r
                    .results
                    .iter()
                    .filter(|x| matches!(&x.outcome, Some(pb::batch_check_result::Outcome::Response(d)) if d.allowed))
                    .count() as u64;
            }
            anyhow::Ok(allowed)
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await??;
    }
    Ok(allowed)
}
