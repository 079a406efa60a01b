//! `symbiose loadcheck`: drives a running server on 127.0.0.1 with concurrent clients and reports
//! throughput and latency percentiles, and every 5xx. Bounded in count; loopback only by default.

use std::time::{Duration, Instant};

use anyhow::Context;

/// What to send: `path` is fetched `requests` times by `concurrency` clients.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub base_url: String,
    pub path: String,
    pub requests: usize,
    pub concurrency: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub requests: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub status_5xx: usize,
    pub errors: usize,
}

/// Refuses anything but a loopback address: this command must never load someone else's server.
fn check_loopback(base_url: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(base_url).context("--url is not a URL")?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
        Some(url::Host::Domain("localhost")) => Ok(()),
        _ => anyhow::bail!("--url must point at 127.0.0.1, [::1] or localhost"),
    }
}

pub async fn run(plan: LoadPlan) -> anyhow::Result<LoadReport> {
    check_loopback(&plan.base_url)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}{}", plan.base_url.trim_end_matches('/'), plan.path);
    let concurrency = plan.concurrency.max(1);
    let per_client = plan.requests.div_ceil(concurrency);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        let count = per_client.min(plan.requests.saturating_sub(c * per_client));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let (mut status_5xx, mut errors) = (0usize, 0usize);
            for _ in 0..count {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        if status.is_server_error() {
                            status_5xx += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, status_5xx, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(plan.requests);
    let (mut status_5xx, mut errors) = (0, 0);
    for task in tasks {
        let (l, s, e) = task.await?;
        latencies.extend(l);
        status_5xx += s;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    Ok(LoadReport {
        requests: latencies.len(),
        concurrency,
        seconds,
        throughput_per_s: latencies.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        status_5xx,
        errors,
    })
}
