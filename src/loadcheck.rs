//! `symbiose loadcheck`: drives a running server on 127.0.0.1 with concurrent clients and reports
//! throughput and latency percentiles, and every 5xx. Bounded in count; loopback only.
//!
//! Two modes: one GET path repeated ([`run`]), or a mix of reads and writes ([`run_mixed`]) that
//! afterwards reads back every write it made and counts the lost ones.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// What to send: `path` is fetched `requests` times by `concurrency` clients.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub base_url: String,
    pub path: String,
    pub requests: usize,
    pub concurrency: usize,
    /// Sent as `Authorization: Bearer` (a facilitator or admin key for the mixed mode).
    pub key: Option<String>,
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
    let client = http_client(plan.key.as_deref())?;
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
    Ok(LoadReport {
        requests: latencies.len(),
        concurrency,
        seconds,
        throughput_per_s: latencies.len() as f64 / seconds.max(1e-9),
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        status_5xx,
        errors,
    })
}

fn http_client(key: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .context("--key is not a valid header value")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()?)
}

/// The `p` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Latency summary of one kind of request.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn latency(mut values: Vec<f64>) -> Latency {
    values.sort_by(f64::total_cmp);
    Latency {
        count: values.len(),
        p50_ms: percentile(&values, 0.50),
        p99_ms: percentile(&values, 0.99),
        max_ms: values.last().copied().unwrap_or(0.0),
    }
}

/// What the mixed run did and what it found when reading its writes back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MixedReport {
    pub requests: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub throughput_per_s: f64,
    pub all: Latency,
    pub reads: Latency,
    pub writes: Latency,
    /// Count per HTTP status (and `error` for transport failures).
    pub statuses: std::collections::BTreeMap<String, usize>,
    pub status_5xx: usize,
    /// Requests without an HTTP answer (connection failures, or no answer within the 60 s timeout).
    pub errors: usize,
    /// Acknowledged writes (2xx) checked afterwards.
    pub writes_acknowledged: usize,
    /// Acknowledged writes that the read-back did not find (an actor, a resource or an address).
    pub lost_writes: usize,
}

/// Communes of the Côte-d'Or the generated actors are placed in (the demo's département).
const COMMUNES: [&str; 6] = ["21231", "21054", "21425", "21166", "21617", "21278"];

/// One client's acknowledged writes: its actors, with their resource count and last address.
#[derive(Debug, Default)]
struct Written {
    actors: Vec<String>,
    resources: HashMap<String, usize>,
    addresses: HashMap<String, String>,
}

/// A mix of reads (70 %: actor, resource and synergy lists, single actors) and writes (30 %:
/// create actors, declare resources, patch addresses), `requests` in all from `concurrency`
/// clients; then every acknowledged write is read back.
pub async fn run_mixed(plan: LoadPlan) -> anyhow::Result<MixedReport> {
    check_loopback(&plan.base_url)?;
    let client = http_client(plan.key.as_deref())?;
    let base = format!("{}/api/v1", plan.base_url.trim_end_matches('/'));
    let concurrency = plan.concurrency.max(1);
    let per_client = plan.requests.div_ceil(concurrency);
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let (client, base, run_id) = (client.clone(), base.clone(), run_id.clone());
        let count = per_client.min(plan.requests.saturating_sub(c * per_client));
        tasks.push(tokio::spawn(async move {
            mixed_client(client, base, run_id, c, count).await
        }));
    }
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    let mut statuses = std::collections::BTreeMap::new();
    let mut written = Vec::new();
    for task in tasks {
        let outcome = task.await?;
        reads.extend(outcome.reads);
        writes.extend(outcome.writes);
        for (status, n) in outcome.statuses {
            *statuses.entry(status).or_insert(0) += n;
        }
        written.push(outcome.written);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (writes_acknowledged, lost_writes) = read_back(&client, &base, &written).await?;
    let all: Vec<f64> = reads.iter().chain(writes.iter()).copied().collect();
    let requests = all.len();
    let status_5xx = statuses
        .iter()
        .filter(|(s, _)| s.starts_with('5'))
        .map(|(_, n)| n)
        .sum();
    let errors = statuses.get("error").copied().unwrap_or(0);
    Ok(MixedReport {
        requests,
        concurrency,
        seconds,
        throughput_per_s: requests as f64 / seconds.max(1e-9),
        all: latency(all),
        reads: latency(reads),
        writes: latency(writes),
        statuses,
        status_5xx,
        errors,
        writes_acknowledged,
        lost_writes,
    })
}

struct ClientOutcome {
    reads: Vec<f64>,
    writes: Vec<f64>,
    statuses: HashMap<String, usize>,
    written: Written,
}

async fn mixed_client(
    client: reqwest::Client,
    base: String,
    run_id: String,
    index: usize,
    count: usize,
) -> ClientOutcome {
    let mut rng = StdRng::seed_from_u64(index as u64);
    let mut out = ClientOutcome {
        reads: Vec::with_capacity(count),
        writes: Vec::new(),
        statuses: HashMap::new(),
        written: Written::default(),
    };
    for n in 0..count {
        let roll = rng.random_range(0..100);
        let own = (!out.written.actors.is_empty())
            .then(|| out.written.actors[rng.random_range(0..out.written.actors.len())].clone());
        let commune = COMMUNES[rng.random_range(0..COMMUNES.len())];
        let t = Instant::now();
        let (request, is_write) = match (roll, &own) {
            (0..10, _) | (10..25, None) => (
                client.post(format!("{base}/actors")).json(&json!({
                    "name": format!("loadcheck {run_id} {index}-{n}"),
                    "naf_code": "16.10A",
                    "commune_insee": commune,
                })),
                true,
            ),
            (10..20, Some(actor)) => (
                client
                    .post(format!("{base}/actors/{actor}/resources"))
                    .json(&json!({"kind": "offer", "category": "material", "label": "Sciure (loadcheck)",
                                  "ewc_code": "03 01 05", "quantity": {"value": 100, "unit": "t", "period": "year"}})),
                true,
            ),
            (20..25, Some(actor)) => (
                client
                    .patch(format!("{base}/actors/{actor}"))
                    .json(&json!({"address": format!("{n} rue du Test")})),
                true,
            ),
            (25..30, _) => (client.get(format!("{base}/synergies?territory=21&limit=20")), false),
            (30..60, _) => (client.get(format!("{base}/actors?territory=21")), false),
            (60..80, Some(actor)) => (client.get(format!("{base}/actors/{actor}")), false),
            _ => (client.get(format!("{base}/resources?territory=21&limit=20")), false),
        };
        let status = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if status.is_success() && is_write {
                    match roll {
                        0..10 => out
                            .written
                            .actors
                            .extend(body["id"].as_str().map(str::to_owned)),
                        10..20 if own.is_some() => {
                            if let Some(actor) = &own {
                                *out.written.resources.entry(actor.clone()).or_insert(0) += 1;
                            }
                        }
                        20..25 if own.is_some() => {
                            if let Some(actor) = &own {
                                out.written
                                    .addresses
                                    .insert(actor.clone(), format!("{n} rue du Test"));
                            }
                        }
                        _ => out
                            .written
                            .actors
                            .extend(body["id"].as_str().map(str::to_owned)),
                    }
                }
                status.as_u16().to_string()
            }
            Err(_) => "error".to_owned(),
        };
        *out.statuses.entry(status).or_insert(0) += 1;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if is_write {
            out.writes.push(ms);
        } else {
            out.reads.push(ms);
        }
    }
    out
}

/// Reads back every acknowledged write; returns (acknowledged, lost).
async fn read_back(
    client: &reqwest::Client,
    base: &str,
    written: &[Written],
) -> anyhow::Result<(usize, usize)> {
    let (mut acknowledged, mut lost) = (0, 0);
    for w in written {
        acknowledged += w.actors.len() + w.resources.values().sum::<usize>() + w.addresses.len();
        for actor in &w.actors {
            let reply = client.get(format!("{base}/actors/{actor}")).send().await?;
            if !reply.status().is_success() {
                lost += 1 + w.resources.get(actor).copied().unwrap_or(0);
                lost += usize::from(w.addresses.contains_key(actor));
                continue;
            }
            let body: serde_json::Value = reply.json().await?;
            if let Some(address) = w.addresses.get(actor)
                && body["address"].as_str() != Some(address.as_str())
            {
                lost += 1;
            }
            let expected = w.resources.get(actor).copied().unwrap_or(0);
            let listed: serde_json::Value = client
                .get(format!("{base}/actors/{actor}/resources?limit=500"))
                .send()
                .await?
                .json()
                .await?;
            let found = listed["items"].as_array().map_or(0, Vec::len);
            lost += expected.saturating_sub(found);
        }
    }
    Ok((acknowledged, lost))
}
