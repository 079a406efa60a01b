//! `symbiose bench-service`: national-scale figures of the service as a client meets it.
//!
//! It generates N resources over the real communes (the seeded synthetic dataset of the engine
//! benches, `matching::synth`, written as the import CSV of docs/IMPORT.md), starts the service
//! itself as a child process (`serve` on a free loopback port, on a fresh SQLite file or a
//! throwaway PostgreSQL database, with a facilitator key made by `keys create`), and measures
//! through HTTP only: the import, the first detection, incremental writes (a new resource, then
//! its matches), a resource's matches, a territory's synergy list, a plain resource read; then the
//! server's peak RSS and the database size. The server is stopped, and the throwaway database
//! dropped, on every way out (guards), and the server dies with this process (`PR_SET_PDEATHSIG`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;

use crate::domain::resource::ResourceKind;
use crate::matching::Taxonomy;

mod dataset;
mod server;
use dataset::*;
pub use dataset::{CSV_COLUMNS, Dataset, write_csv_files};
use server::*;

/// New offers whose way into the others' lists is timed, one after the other.
const REACH_WRITES: usize = 3;

/// The seed of `benches/matching.rs`: the same N gives the same actors and resources as the
/// engine's report, so the service's figures can be read against the engine's.
pub const SEED: u64 = 20_240_501;

/// What to measure and where.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Resources to generate (the actors follow, about 3.4 resources each).
    pub resources: usize,
    /// Incremental writes (create a resource, then read its matches).
    pub writes: usize,
    /// Stop the writes after this long even if fewer than `writes` were made.
    pub write_budget: Duration,
    /// Reads of `/resources/{id}/matches` and of `/resources/{id}`.
    pub reads: usize,
    /// Reads of the territory's synergy list.
    pub list_reads: usize,
    /// `postgres://…` of a server where a throwaway database is created; `None`: SQLite in a
    /// temporary directory.
    pub database_url: Option<String>,
    /// The `symbiose` binary to start (`std::env::current_exe()` for the command).
    pub server_bin: PathBuf,
    /// Passed to the server as `--config-dir`.
    pub config_dir: PathBuf,
    /// The reference data (communes) for the generator, and for the server.
    pub reference_dir: PathBuf,
    /// Largest CSV body the server accepts (`server.import_limit_bytes`): the file is split in
    /// several imports below it, never within an actor.
    pub import_limit_bytes: usize,
    pub seed: u64,
    /// Where to keep the server's log; `None`: in the temporary directory, removed at the end.
    pub server_log: Option<PathBuf>,
}

/// p50 / p99 / max of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut values: Vec<f64>) -> Latency {
        values.sort_by(f64::total_cmp);
        let at = |p: f64| {
            if values.is_empty() {
                return 0.0;
            }
            let i = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i]
        };
        Latency {
            count: values.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: values.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportFigures {
    pub files: usize,
    pub bytes: u64,
    pub rows: usize,
    pub actors_created: usize,
    pub resources_created: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionFigures {
    pub seconds: f64,
    pub substitution: u64,
    pub pooling: u64,
    /// The answer's `summary` (inserted, updated, unchanged, retired).
    pub summary: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteFigures {
    pub requested: usize,
    /// Writes made before the budget ran out.
    pub done: usize,
    pub budget_seconds: f64,
    /// Create, then matches, one after the other.
    pub create_then_matches: Latency,
    pub create: Latency,
    pub matches_after_create: Latency,
    /// The territory's synergy list read after every tenth write: what a facilitator meets while
    /// a portal writes (a read that waited for a rebuild shows in the maximum).
    pub list_during_writes: Latency,
    /// After the writes: a new offer, then the time until its actor's synergy list holds it — until
    /// the build that holds it is made in the background, which is what a write costs the others
    /// (its counterparts see it then). One per write, in sequence; a write not seen within
    /// `write_budget` counts as the budget.
    pub reached_others: Latency,
    /// Then the territory's list with the partner key: the build that holds the last of those
    /// offers is not the one whose anonymous view partners read before the writes.
    pub partner_list_after_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub backend: String,
    pub resources: usize,
    pub actors: usize,
    pub offers: usize,
    pub needs: usize,
    pub seed: u64,
    pub generation_seconds: f64,
    pub server_start_seconds: f64,
    pub import: ImportFigures,
    pub first_detection: DetectionFigures,
    pub matches: Latency,
    /// Mean number of matches in an answer (first page, default limit).
    pub matches_mean_items: f64,
    pub territory: String,
    pub territory_list: Latency,
    /// `GET /territories/{territory}/kpis` (at most 20 reads: it reads every synergy of the
    /// territory).
    pub territory_kpis: Latency,
    /// The territory's list read with a partner key: the first read after a build computes the
    /// build's anonymous view (hidden actors at their commune centroid), then reads reuse it.
    pub partner_first_list_ms: f64,
    pub partner_list: Latency,
    pub resource_get: Latency,
    pub writes: WriteFigures,
    /// VmHWM of the server after the first detection, and at the end.
    pub server_peak_rss_mib_after_detection: f64,
    pub server_peak_rss_mib: f64,
    pub database_bytes: u64,
    pub total_seconds: f64,
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Api {
    client: reqwest::Client,
    base: String,
}

/// An answer: status, body, and the time until the whole body arrived.
struct Answer {
    body: actix_web::web::Bytes,
    ms: f64,
}

impl Answer {
    fn json(&self, what: &str) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("{what}: the answer is not JSON"))
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(400).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

impl Api {
    fn new(port: u16, key: &str) -> anyhow::Result<Api> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .context("the key is not a header value")?,
        );
        Ok(Api {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .timeout(Duration::from_secs(600))
                .build()?,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Sends, reads the whole body, and fails on any status but `expect`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
        expect: u16,
    ) -> anyhow::Result<Answer> {
        let start = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("{what}: no answer"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{what}: the answer was cut"))?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if status.as_u16() != expect {
            bail!("{what}: {status} (expected {expect}): {}", excerpt(&body));
        }
        Ok(Answer { body, ms })
    }

    /// Creates a copy of `template` on `actor`: the answer, and the new resource's id.
    async fn create_copy(
        &self,
        tax: &Taxonomy,
        actor: &str,
        template: &crate::matching::SnapResource,
    ) -> anyhow::Result<(Answer, String)> {
        let what = format!("POST /api/v1/actors/{actor}/resources");
        let created = self
            .send(
                self.client
                    .post(format!("{}/api/v1/actors/{actor}/resources", self.base))
                    .json(&resource_body(tax, template)),
                &what,
                201,
            )
            .await?;
        let id = created.json(&what)?["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{what}: no `id` in {}", excerpt(&created.body)))?;
        Ok((created, id))
    }

    async fn get(&self, path: &str, what: &str) -> anyhow::Result<Answer> {
        self.send(self.client.get(format!("{}{path}", self.base)), what, 200)
            .await
    }
}

async fn wait_ready(api: &Api, server: &mut Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let url = format!("{}/health/ready", api.base);
    loop {
        server.check_alive()?;
        if let Ok(r) = api
            .client
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the server did not become ready in 300 s; its log ends with:\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn progress(start: Instant, message: impl std::fmt::Display) {
    eprintln!(
        "bench-service [{:7.1} s] {message}",
        start.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// The run

/// Generates, starts the server, measures, stops the server (also on error) and drops the
/// throwaway database.
pub async fn run(plan: BenchPlan) -> anyhow::Result<BenchReport> {
    let start = Instant::now();
    if plan.resources == 0 {
        bail!("--resources must be at least 1");
    }
    let dir = TempDir::new()?;
    let t = Instant::now();
    let data = Dataset::generate(&plan.reference_dir, plan.resources, plan.seed)?;
    let files = write_csv_files(&data, &dir.0, plan.import_limit_bytes)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let generation_seconds = t.elapsed().as_secs_f64();
    let offers = data
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Offer)
        .count();
    progress(
        start,
        format_args!(
            "generated {} resources ({offers} offers) of {} actors: {} CSV file(s), {:.1} MB",
            data.resources.len(),
            data.actors.len(),
            files.len(),
            bytes as f64 / 1e6
        ),
    );

    // Field order matters: the server is dropped (stopped) before the database.
    let (pg, database_url, backend) = match &plan.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let (db, url) = PgDatabase::create(url)?;
            progress(start, format_args!("created database {}", db.name));
            (Some(db), url, "postgresql")
        }
        Some(other) => bail!(
            "--database-url must be a postgres:// URL (SQLite is used by default): {}",
            redact(other)
        ),
        None => (
            None,
            dir.0.join("bench.db").to_string_lossy().into_owned(),
            "sqlite",
        ),
    };
    let outcome = measure(
        &plan,
        &dir.0,
        &database_url,
        pg.as_ref(),
        &data,
        &files,
        start,
    )
    .await;
    drop(pg);
    let mut report = outcome?;
    report.backend = backend.into();
    report.generation_seconds = generation_seconds;
    report.import.bytes = bytes;
    report.offers = offers;
    report.needs = data.resources.len() - offers;
    report.total_seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

async fn measure(
    plan: &BenchPlan,
    dir: &Path,
    database_url: &str,
    pg: Option<&PgDatabase>,
    data: &Dataset,
    files: &[PathBuf],
    start: Instant,
) -> anyhow::Result<BenchReport> {
    let port = free_port()?;
    let log = plan
        .server_log
        .clone()
        .unwrap_or_else(|| dir.join("server.log"));
    let key = create_key(plan, database_url, port, &log, "facilitator")?;
    let partner_key = create_key(plan, database_url, port, &log, "partner")?;
    let t = Instant::now();
    let mut server = Server::start(plan, database_url, port, &log)?;
    let api = Api::new(port, &key)?;
    let partner = Api::new(port, &partner_key)?;
    wait_ready(&api, &mut server).await?;
    let server_start_seconds = t.elapsed().as_secs_f64();
    progress(
        start,
        format_args!(
            "server {} ready on port {port} in {server_start_seconds:.1} s",
            server.pid()
        ),
    );
    let outcome = phases(plan, &api, &partner, &mut server, data, files, start).await;
    let outcome = match outcome {
        Ok(mut report) => {
            report.server_start_seconds = server_start_seconds;
            report.server_peak_rss_mib = server.peak_rss_mib();
            report.database_bytes = match pg {
                Some(db) => db.size_bytes()?,
                None => {
                    let wal = format!("{database_url}-wal");
                    [Path::new(database_url), Path::new(&wal)]
                        .iter()
                        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                        .sum()
                }
            };
            Ok(report)
        }
        Err(e) => {
            let alive = server.check_alive();
            Err(match alive {
                Ok(()) => e.context(format!("server log ends with:\n{}", server.log_tail())),
                Err(stopped) => e.context(stopped.to_string()),
            })
        }
    };
    let problems = tail(&log, 10_000)
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("panicked"))
        .count();
    if problems > 0 {
        progress(
            start,
            format_args!("the server log has {problems} WARN/ERROR/panic line(s)"),
        );
    }
    drop(server);
    outcome
}

async fn phases(
    plan: &BenchPlan,
    api: &Api,
    partner: &Api,
    server: &mut Server,
    data: &Dataset,
    files: &[PathBuf],
    start: Instant,
) -> anyhow::Result<BenchReport> {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed);

    // Import, file after file.
    let t = Instant::now();
    let (mut rows, mut actors_created, mut resources_created) = (0, 0, 0);
    let mut actor_ids = Vec::new();
    let mut resource_ids = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let body =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let what = format!("POST /api/v1/import (file {} of {})", n + 1, files.len());
        let answer = api
            .send(
                api.client
                    .post(format!("{}/api/v1/import", api.base))
                    .header(reqwest::header::CONTENT_TYPE, "text/csv")
                    .timeout(Duration::from_secs(3600))
                    .body(body),
                &what,
                201,
            )
            .await?;
        let report = answer.json(&what)?;
        let count = |k: &str| report[k].as_u64().unwrap_or(0) as usize;
        rows += count("rows");
        actors_created += count("actors_created");
        resources_created += count("resources_created");
        for actor in report["actors"].as_array().into_iter().flatten() {
            actor_ids.extend(actor["actor_id"].as_str().map(str::to_owned));
            for r in actor["resources"].as_array().into_iter().flatten() {
                resource_ids.extend(r["resource_id"].as_str().map(str::to_owned));
            }
        }
    }
    let import_seconds = t.elapsed().as_secs_f64();
    progress(
        start,
        format_args!(
            "imported {rows} rows ({actors_created} actors, {resources_created} resources) in {import_seconds:.1} s"
        ),
    );
    if resource_ids.len() != data.resources.len() || actor_ids.is_empty() {
        bail!(
            "the import answered {} resource ids for {} rows sent",
            resource_ids.len(),
            data.resources.len()
        );
    }

    // First detection.
    let what = "POST /api/v1/synergies/detect";
    let answer = api
        .send(
            api.client
                .post(format!("{}/api/v1/synergies/detect", api.base))
                .timeout(Duration::from_secs(3600)),
            what,
            200,
        )
        .await?;
    let detection = answer.json(what)?;
    let first_detection = DetectionFigures {
        seconds: answer.ms / 1000.0,
        substitution: detection["substitution"].as_u64().unwrap_or(0),
        pooling: detection["pooling"].as_u64().unwrap_or(0),
        summary: detection["summary"].clone(),
    };
    let rss_after_detection = server.peak_rss_mib();
    progress(
        start,
        format_args!(
            "first detection in {:.1} s: {} substitution, {} pooling; server peak RSS {rss_after_detection:.0} MiB",
            first_detection.seconds, first_detection.substitution, first_detection.pooling
        ),
    );

    // A resource's matches.
    let mut times = Vec::with_capacity(plan.reads);
    let mut items = 0usize;
    for _ in 0..plan.reads {
        let id = &resource_ids[rng.random_range(0..resource_ids.len())];
        let what = format!("GET /api/v1/resources/{id}/matches");
        let answer = api
            .get(&format!("/api/v1/resources/{id}/matches"), &what)
            .await?;
        items += answer.json(&what)?["items"].as_array().map_or(0, Vec::len);
        times.push(answer.ms);
    }
    let matches = Latency::of(times);
    let matches_mean_items = items as f64 / plan.reads.max(1) as f64;
    progress(
        start,
        format_args!(
            "matches: p50 {:.2} ms, p99 {:.2} ms ({matches_mean_items:.1} items on average)",
            matches.p50_ms, matches.p99_ms
        ),
    );

    // A territory's list.
    let territory = data
        .busy_departement()
        .context("no actor has a département")?;
    let path = format!("/api/v1/synergies?territory={territory}&limit=20");
    let mut times = Vec::with_capacity(plan.list_reads);
    for _ in 0..plan.list_reads {
        times.push(api.get(&path, &format!("GET {path}")).await?.ms);
    }
    let territory_list = Latency::of(times);
    progress(
        start,
        format_args!(
            "territory {territory} list: p50 {:.2} ms, p99 {:.2} ms",
            territory_list.p50_ms, territory_list.p99_ms
        ),
    );

    // The same list for a partner: the first read computes the build's anonymous view.
    let what = format!("GET {path} (partner)");
    let partner_first_list_ms = partner.get(&path, &what).await?.ms;
    let mut times = Vec::with_capacity(plan.list_reads);
    for _ in 0..plan.list_reads {
        times.push(partner.get(&path, &what).await?.ms);
    }
    let partner_list = Latency::of(times);
    progress(
        start,
        format_args!(
            "territory {territory} list as a partner: first {partner_first_list_ms:.0} ms, then p50 {:.2} ms, p99 {:.2} ms",
            partner_list.p50_ms, partner_list.p99_ms
        ),
    );

    // A territory's lifecycle KPIs (the console's home).
    let path = format!("/api/v1/territories/{territory}/kpis");
    let mut times = Vec::with_capacity(plan.list_reads.min(20));
    for _ in 0..plan.list_reads.min(20) {
        times.push(api.get(&path, &format!("GET {path}")).await?.ms);
    }
    let territory_kpis = Latency::of(times);
    progress(
        start,
        format_args!(
            "territory {territory} KPIs: p50 {:.1} ms, p99 {:.1} ms",
            territory_kpis.p50_ms, territory_kpis.p99_ms
        ),
    );

    // A plain resource.
    let mut times = Vec::with_capacity(plan.reads);
    for _ in 0..plan.reads {
        let id = &resource_ids[rng.random_range(0..resource_ids.len())];
        let path = format!("/api/v1/resources/{id}");
        times.push(api.get(&path, &format!("GET {path}")).await?.ms);
    }
    let resource_get = Latency::of(times);

    // Incremental writes: a new resource of an existing actor, then its matches.
    let tax = Taxonomy::builtin()?;
    let (mut create, mut after, mut pair) = (Vec::new(), Vec::new(), Vec::new());
    let mut listed = Vec::new();
    let list_path = format!("/api/v1/synergies?territory={territory}&limit=20");
    let t = Instant::now();
    for written in 0..plan.writes {
        if t.elapsed() > plan.write_budget {
            break;
        }
        let actor = &actor_ids[rng.random_range(0..actor_ids.len())];
        let template = &data.resources[rng.random_range(0..data.resources.len())];
        let (created, id) = api.create_copy(&tax, actor, template).await?;
        let path = format!("/api/v1/resources/{id}/matches");
        let read = api.get(&path, &format!("GET {path}")).await?;
        create.push(created.ms);
        after.push(read.ms);
        pair.push(created.ms + read.ms);
        if written % 10 == 9 {
            listed.push(api.get(&list_path, &format!("GET {list_path}")).await?.ms);
        }
    }
    let done = pair.len();

    // A write reaching the others: a new offer (one whose matches are not empty), then the actor's
    // synergy list read until a synergy of that offer is in it.
    let mut reached = Vec::new();
    for _ in 0..REACH_WRITES {
        let mut offer = None;
        for _ in 0..50 {
            let actor = &actor_ids[rng.random_range(0..actor_ids.len())];
            let template = &data.resources[rng.random_range(0..data.resources.len())];
            if template.kind != ResourceKind::Offer {
                continue;
            }
            let (_, id) = api.create_copy(&tax, actor, template).await?;
            let at = Instant::now();
            let path = format!("/api/v1/resources/{id}/matches");
            let matches = api.get(&path, &format!("GET {path}")).await?;
            if matches.json(&path)?["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty())
            {
                offer = Some((actor.clone(), id, at));
                break;
            }
        }
        let Some((actor, id, at)) = offer else {
            bail!("no new offer with matches in 50 tries");
        };
        let path = format!("/api/v1/actors/{actor}/synergies?limit=500");
        loop {
            let list = api.get(&path, &format!("GET {path}")).await?.json(&path)?;
            let holds = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["offer_id"].as_str() == Some(id.as_str()));
            if holds || at.elapsed() > plan.write_budget {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reached.push(at.elapsed().as_secs_f64() * 1e3);
    }
    let reached_others = Latency::of(reached);
    let partner_path = format!("/api/v1/synergies?territory={territory}&limit=20");
    let what = format!("GET {partner_path} (partner, after the writes)");
    let partner_list_after_ms = partner.get(&partner_path, &what).await?.ms;
    progress(
        start,
        format_args!(
            "a new offer reached its actor's synergy list after p50 {:.0} ms, max {:.0} ms",
            reached_others.p50_ms, reached_others.max_ms
        ),
    );

    let writes = WriteFigures {
        requested: plan.writes,
        done,
        budget_seconds: plan.write_budget.as_secs_f64(),
        create_then_matches: Latency::of(pair),
        create: Latency::of(create),
        matches_after_create: Latency::of(after),
        list_during_writes: Latency::of(listed),
        reached_others,
        partner_list_after_ms,
    };
    progress(
        start,
        format_args!(
            "{done} of {} writes in {:.1} s: create + matches p50 {:.1} ms, p99 {:.1} ms",
            plan.writes,
            t.elapsed().as_secs_f64(),
            writes.create_then_matches.p50_ms,
            writes.create_then_matches.p99_ms
        ),
    );
    server.check_alive()?;

    Ok(BenchReport {
        backend: String::new(),
        resources: data.resources.len(),
        actors: data.actors.len(),
        offers: 0,
        needs: 0,
        seed: plan.seed,
        generation_seconds: 0.0,
        server_start_seconds: 0.0,
        import: ImportFigures {
            files: files.len(),
            bytes: 0,
            rows,
            actors_created,
            resources_created,
            seconds: import_seconds,
        },
        first_detection,
        matches,
        matches_mean_items,
        territory,
        territory_list,
        territory_kpis,
        partner_first_list_ms,
        partner_list,
        resource_get,
        writes,
        server_peak_rss_mib_after_detection: rss_after_detection,
        server_peak_rss_mib: 0.0,
        database_bytes: 0,
        total_seconds: 0.0,
    })
}

// ---------------------------------------------------------------------------------------------
// Output

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(l: &Latency) -> String {
    format!("{:.2} ms / {:.2} ms", l.p50_ms, l.p99_ms)
}

/// The report as a Markdown table.
pub fn render(r: &BenchReport) -> String {
    let rows: Vec<(String, String)> = vec![
        (
            format!(
                "import ({} file(s), {:.1} MB, {} rows)",
                r.import.files,
                r.import.bytes as f64 / 1e6,
                thousands(r.import.rows as u64)
            ),
            format!("{:.1} s", r.import.seconds),
        ),
        (
            format!(
                "first detection ({} substitution, {} pooling)",
                thousands(r.first_detection.substitution),
                thousands(r.first_detection.pooling)
            ),
            format!("{:.1} s", r.first_detection.seconds),
        ),
        (
            format!(
                "incremental write: create + its matches, p50 / p99 ({} of {} writes{})",
                r.writes.done,
                r.writes.requested,
                if r.writes.done < r.writes.requested {
                    format!(", stopped by the {:.0} s budget", r.writes.budget_seconds)
                } else {
                    String::new()
                }
            ),
            ms(&r.writes.create_then_matches),
        ),
        ("  create alone, p50 / p99".into(), ms(&r.writes.create)),
        (
            "  matches after the write, p50 / p99".into(),
            ms(&r.writes.matches_after_create),
        ),
        (
            format!(
                "  territory list during the writes, p50 / p99 / max ({} reads, one per 10 writes)",
                r.writes.list_during_writes.count
            ),
            format!(
                "{:.2} ms / {:.2} ms / {:.0} ms",
                r.writes.list_during_writes.p50_ms,
                r.writes.list_during_writes.p99_ms,
                r.writes.list_during_writes.max_ms
            ),
        ),
        (
            format!(
                "  a new offer in its actor's synergy list (the background build), p50 / max ({} writes)",
                r.writes.reached_others.count
            ),
            format!(
                "{:.0} ms / {:.0} ms",
                r.writes.reached_others.p50_ms, r.writes.reached_others.max_ms
            ),
        ),
        (
            "  then the territory list with a partner key (the new build's anonymous view)".into(),
            format!("{:.0} ms", r.writes.partner_list_after_ms),
        ),
        (
            format!(
                "`GET /resources/{{id}}/matches`, p50 / p99 ({} reads, {:.1} items on average)",
                r.matches.count, r.matches_mean_items
            ),
            ms(&r.matches),
        ),
        (
            format!(
                "`GET /synergies?territory={}&limit=20`, p50 / p99 ({} reads)",
                r.territory, r.territory_list.count
            ),
            ms(&r.territory_list),
        ),
        (
            "  the same list with a partner key: first read after a build (its anonymous view)"
                .into(),
            format!("{:.0} ms", r.partner_first_list_ms),
        ),
        (
            format!(
                "  the same list with a partner key, p50 / p99 ({} further reads)",
                r.partner_list.count
            ),
            ms(&r.partner_list),
        ),
        (
            format!(
                "`GET /territories/{}/kpis`, p50 / p99 ({} reads)",
                r.territory, r.territory_kpis.count
            ),
            ms(&r.territory_kpis),
        ),
        (
            format!(
                "`GET /resources/{{id}}`, p50 / p99 ({} reads)",
                r.resource_get.count
            ),
            ms(&r.resource_get),
        ),
        (
            "server peak RSS (after the first detection)".into(),
            format!(
                "{:.0} MiB ({:.0} MiB)",
                r.server_peak_rss_mib, r.server_peak_rss_mib_after_detection
            ),
        ),
        (
            format!("database size ({})", r.backend),
            format!("{:.1} MiB", r.database_bytes as f64 / 1_048_576.0),
        ),
        (
            "server start; whole run".into(),
            format!("{:.1} s; {:.1} s", r.server_start_seconds, r.total_seconds),
        ),
    ];
    let mut out = format!(
        "symbiose bench-service: {} resources ({} offers, {} needs) of {} actors, {}, seed {}\n\n| measure | value |\n|---|---|\n",
        thousands(r.resources as u64),
        thousands(r.offers as u64),
        thousands(r.needs as u64),
        thousands(r.actors as u64),
        r.backend,
        r.seed
    );
    for (k, v) in rows {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference")
    }

    #[test]
    fn generated_csv_is_a_valid_import_split_below_the_limit() {
        let data = Dataset::generate(&reference_dir(), 300, SEED).expect("dataset");
        assert!(data.resources.len() >= 300 && data.resources.len() < 320);
        let dir = TempDir::new().expect("temp dir");
        let files = write_csv_files(&data, &dir.0, 12_000).expect("csv");
        assert!(files.len() >= 2, "{} file(s)", files.len());
        // The columns are the import's, in its order.
        let known: Vec<&str> = crate::import::COLUMNS
            .iter()
            .copied()
            .filter(|c| CSV_COLUMNS.contains(c))
            .collect();
        assert_eq!(known, CSV_COLUMNS);
        let reference = crate::reference::Reference::load(&reference_dir()).expect("reference");
        let tax = Taxonomy::builtin().expect("taxonomy");
        let (mut rows, mut actors, mut resources) = (0, 0, 0);
        for file in &files {
            assert!(std::fs::metadata(file).expect("file").len() <= 12_000);
            let text = std::fs::read_to_string(file).expect("read");
            assert_eq!(text.lines().next(), Some(CSV_COLUMNS.join(",").as_str()));
            let plan = crate::import::plan(text.as_bytes(), &reference, &tax)
                .unwrap_or_else(|e| panic!("{:?}", &e.errors[..e.errors.len().min(5)]));
            rows += plan.rows;
            actors += plan.actors.len();
            resources += plan.resource_count();
        }
        assert_eq!(rows, data.resources.len());
        assert_eq!(resources, data.resources.len());
        assert_eq!(actors, data.actors.len());
        assert!(data.busy_departement().is_some());
    }

    #[test]
    fn latency_percentiles_by_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (l.count, l.p50_ms, l.p99_ms, l.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(Vec::new()).count, 0);
    }
}
