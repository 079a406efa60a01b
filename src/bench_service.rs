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

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::resource::{ALL_MONTHS, ResourceKind};
use crate::matching::synth::{self, Commune};
use crate::matching::{SnapActor, SnapResource, Taxonomy};

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
// Generation

/// The synthetic dataset with what the CSV needs besides it.
pub struct Dataset {
    pub actors: Vec<SnapActor>,
    pub resources: Vec<SnapResource>,
    /// Commune INSEE code → département.
    departements: HashMap<String, String>,
}

impl Dataset {
    /// About `n` resources (never fewer) over the communes of `reference_dir/geo/fr_communes.csv`.
    pub fn generate(reference_dir: &Path, n: usize, seed: u64) -> anyhow::Result<Dataset> {
        let path = reference_dir.join("geo/fr_communes.csv");
        let communes = synth::load_communes_path(&path)
            .with_context(|| format!("reading the communes of {}", path.display()))?;
        Ok(Dataset::from_communes(&communes, n, seed)?)
    }

    pub fn from_communes(
        communes: &[Commune],
        n: usize,
        seed: u64,
    ) -> crate::matching::Result<Dataset> {
        let (actors, resources) = synth::generate(communes, n, seed)?;
        let departements = communes
            .iter()
            .map(|c| (c.insee.clone(), c.departement.clone()))
            .collect();
        Ok(Dataset {
            actors,
            resources,
            departements,
        })
    }

    fn departement(&self, actor: &SnapActor) -> &str {
        self.departements
            .get(&actor.commune)
            .map_or("", String::as_str)
    }

    /// `21` when it has actors (the demo's département), else the département with the most.
    pub fn busy_departement(&self) -> Option<String> {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for a in &self.actors {
            *count.entry(self.departement(a)).or_insert(0) += 1;
        }
        count.remove("");
        if count.contains_key("21") {
            return Some("21".into());
        }
        count
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(d, _)| d.to_owned())
    }

    /// Resources grouped by actor, in actor order (the generator writes an actor's consecutively).
    fn groups(&self) -> Vec<(usize, &[SnapResource])> {
        let index: HashMap<uuid::Uuid, usize> = self
            .actors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i))
            .collect();
        let mut out = Vec::with_capacity(self.actors.len());
        let mut start = 0;
        for end in 1..=self.resources.len() {
            if end == self.resources.len()
                || self.resources[end].actor_id != self.resources[start].actor_id
            {
                if let Some(&i) = index.get(&self.resources[start].actor_id) {
                    out.push((i, &self.resources[start..end]));
                }
                start = end;
            }
        }
        out
    }
}

/// The columns written, a subset of the import's (`import::COLUMNS`), in its order.
pub const CSV_COLUMNS: &[&str] = &[
    "actor_ref",
    "actor_name",
    "siret",
    "naf_code",
    "commune_insee",
    "lat",
    "lng",
    "share_with_partners",
    "kind",
    "category",
    "class",
    "label",
    "ewc_code",
    "accepted_ewc",
    "quantity",
    "unit",
    "period",
    "availability",
    "months",
    "temperature_c",
    "max_distance_km",
];

/// A Luhn-valid SIRET for actor number `i` (unique per actor).
fn siret(i: usize) -> String {
    crate::domain::actor::complete_siret(&format!("9{:012}", i % 1_000_000_000_000))
        .unwrap_or_default()
}

fn months_text(mask: u16) -> String {
    (0..12)
        .filter(|m| mask & (1 << m) != 0)
        .map(|m| (m + 1).to_string())
        .collect::<Vec<_>>()
        .join(";")
}

fn number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV rows of actor `i` and its resources.
fn actor_rows(
    tax: &Taxonomy,
    i: usize,
    actor: &SnapActor,
    resources: &[SnapResource],
    out: &mut csv::Writer<Vec<u8>>,
) -> anyhow::Result<()> {
    let siret = siret(i);
    for r in resources {
        let class = tax
            .get(&r.class)
            .with_context(|| format!("generated class `{}` is not in the taxonomy", r.class))?;
        let quantity = r.yearly_quantity.map(|q| q.max(0.1));
        let seasonal = r.months != 0 && r.months != ALL_MONTHS;
        out.write_record([
            format!("a{i}").as_str(),
            &actor.name,
            &siret,
            actor.naf_code.as_deref().unwrap_or(""),
            &actor.commune,
            &format!("{:.6}", actor.lat),
            &format!("{:.6}", actor.lng),
            if i.is_multiple_of(3) { "false" } else { "true" },
            r.kind.as_str(),
            class.category.as_str(),
            &r.class,
            &r.label,
            r.ewc_code.as_deref().unwrap_or(""),
            &r.accepted_ewc.join("|"),
            &number(quantity),
            if quantity.is_some() {
                r.base_unit.unwrap_or(class.base_unit).as_str()
            } else {
                ""
            },
            if quantity.is_some() { "year" } else { "" },
            if seasonal { "seasonal" } else { "" },
            &if seasonal {
                months_text(r.months)
            } else {
                String::new()
            },
            &number(r.temperature_c),
            &number(r.max_distance_km),
        ])?;
    }
    Ok(())
}

/// Writes the dataset as import CSV files in `dir`, each below `limit_bytes` (an actor's rows
/// stay in one file). Returns the files in order.
pub fn write_csv_files(
    data: &Dataset,
    dir: &Path,
    limit_bytes: usize,
) -> anyhow::Result<Vec<PathBuf>> {
    let tax = Taxonomy::builtin()?;
    let header = {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_COLUMNS)?;
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let mut files = Vec::new();
    let mut current: Option<(std::io::BufWriter<std::fs::File>, usize)> = None;
    for (i, resources) in data.groups() {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        actor_rows(&tax, i, &data.actors[i], resources, &mut w)?;
        let rows = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        if header.len() + rows.len() > limit_bytes {
            bail!(
                "the rows of one actor ({} bytes) do not fit in an import of {limit_bytes} bytes",
                rows.len()
            );
        }
        let full = current
            .as_ref()
            .is_some_and(|(_, size)| size + rows.len() > limit_bytes);
        if full && let Some((mut file, _)) = current.take() {
            file.flush()?;
        }
        if current.is_none() {
            let path = dir.join(format!("import-{:03}.csv", files.len() + 1));
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            file.write_all(&header)?;
            files.push(path);
            current = Some((file, header.len()));
        }
        if let Some((file, size)) = current.as_mut() {
            file.write_all(&rows)?;
            *size += rows.len();
        }
    }
    if let Some((mut file, _)) = current {
        file.flush()?;
    }
    Ok(files)
}

/// The JSON body of `POST /actors/{id}/resources` for a generated resource.
fn resource_body(tax: &Taxonomy, r: &SnapResource) -> Value {
    let category = tax
        .get(&r.class)
        .map_or("material", |c| c.category.as_str());
    let mut body = json!({
        "kind": r.kind.as_str(),
        "category": category,
        "class": r.class,
        "label": format!("{} (bench)", r.label),
        "accepted_ewc": r.accepted_ewc,
    });
    if let Some(code) = &r.ewc_code {
        body["ewc_code"] = json!(code);
    }
    if let (Some(q), Some(unit)) = (r.yearly_quantity, r.base_unit) {
        body["quantity"] = json!({"value": q.max(0.1), "unit": unit.as_str(), "period": "year"});
    }
    if r.months != 0 && r.months != ALL_MONTHS {
        let months: Vec<u8> = (0..12u8)
            .filter(|m| r.months & (1 << m) != 0)
            .map(|m| m + 1)
            .collect();
        body["availability"] = json!({"kind": "seasonal", "months": months});
    }
    if let Some(t) = r.temperature_c {
        body["temperature_c"] = json!(t);
    }
    if let Some(d) = r.max_distance_km {
        body["max_distance_km"] = json!(d);
    }
    body
}

// ---------------------------------------------------------------------------------------------
// The server and its database

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "symbiose-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway PostgreSQL database, dropped on drop.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `symbiose_bench_<uuid>` on the server of `admin_url`; returns it with its URL.
    fn create(admin_url: &str) -> anyhow::Result<(PgDatabase, String)> {
        use diesel::{Connection, RunQueryDsl};
        let name = format!("symbiose_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(admin_url)
            .with_context(|| format!("cannot connect to {}", redact(admin_url)))?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .with_context(|| format!("cannot create database {name}"))?;
        let db = PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        };
        // Same server and options (`?sslmode=…`), the new database.
        let (address, options) = match admin_url.split_once('?') {
            Some((address, options)) => (address, format!("?{options}")),
            None => (admin_url, String::new()),
        };
        let rest = address
            .strip_prefix("postgres://")
            .or_else(|| address.strip_prefix("postgresql://"))
            .context("--database-url must start with postgres://")?;
        let server = rest.split_once('/').map_or(rest, |(server, _)| server);
        let url = format!("postgres://{server}/{}{options}", db.name);
        Ok((db, url))
    }

    fn size_bytes(&self) -> anyhow::Result<u64> {
        use diesel::{Connection, RunQueryDsl};
        let mut admin = diesel::PgConnection::establish(&self.admin_url)?;
        let size: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "pg_database_size('{}')",
            self.name
        )))
        .get_result(&mut admin)?;
        Ok(u64::try_from(size).unwrap_or(0))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl};
        let dropped = diesel::PgConnection::establish(&self.admin_url)
            .map_err(|e| e.to_string())
            .and_then(|mut admin| {
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut admin)
                .map_err(|e| e.to_string())
            });
        if let Err(e) = dropped {
            eprintln!("bench-service: database {} not dropped: {e}", self.name);
        }
    }
}

/// The password of a URL, hidden for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The environment every child (keys, serve) runs with.
fn child_command(plan: &BenchPlan, database_url: &str, port: u16, log: &Path) -> Command {
    let mut cmd = Command::new(&plan.server_bin);
    cmd.arg("--config-dir")
        .arg(&plan.config_dir)
        .env("SYMBIOSE__DATABASE__URL", database_url)
        .env("SYMBIOSE__SERVER__HOST", "127.0.0.1")
        .env("SYMBIOSE__SERVER__PORT", port.to_string())
        .env("SYMBIOSE__REFERENCE__DIR", &plan.reference_dir)
        .env("SYMBIOSE__DEMO__ENABLED", "false")
        // One key drives every request: lift its rate limit for the measurement.
        .env("SYMBIOSE__AUTH__RATE_LIMIT_PER_SECOND", "1000000")
        .env("SYMBIOSE__AUTH__RATE_LIMIT_BURST", "1000000")
        // Warnings, and the detection's own timings (`detection rebuilt … total_ms`).
        .env(
            "SYMBIOSE__LOG__FILTER",
            "warn,symbiose::detection=info,symbiose::db::import=info",
        )
        .env("SYMBIOSE__LOG__FORMAT", "pretty")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        && let Ok(copy) = file.try_clone()
    {
        cmd.stdout(copy).stderr(file);
    }
    cmd
}

/// The server child: stopped (TERM, then KILL after 5 s) when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(plan: &BenchPlan, database_url: &str, port: u16, log: &Path) -> anyhow::Result<Self> {
        let mut cmd = child_command(plan, database_url, port, log);
        cmd.arg("serve");
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; the child dies with this process even on SIGKILL.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", plan.server_bin.display()))?;
        Ok(Server {
            child,
            log: log.to_owned(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }

    /// An error if the server has stopped.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server stopped ({status}); its log ends with:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// VmHWM of the server, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `keys create --role facilitator` against the bench database (it also applies the migrations).
fn create_key(
    plan: &BenchPlan,
    database_url: &str,
    port: u16,
    log: &Path,
    role: &str,
) -> anyhow::Result<String> {
    let output = child_command(plan, database_url, port, log)
        .args(["keys", "create", "--role", role, "--name", "bench-service"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {} keys create", plan.server_bin.display()))?;
    if !output.status.success() {
        bail!(
            "`keys create` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !key.starts_with("sym_") {
        bail!("`keys create` printed no key: `{key}`");
    }
    Ok(key)
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
        let what = format!("POST /api/v1/actors/{actor}/resources");
        let created = api
            .send(
                api.client
                    .post(format!("{}/api/v1/actors/{actor}/resources", api.base))
                    .json(&resource_body(&tax, template)),
                &what,
                201,
            )
            .await?;
        let body = created.json(&what)?;
        let id = body["id"]
            .as_str()
            .with_context(|| format!("{what}: no `id` in {}", excerpt(&created.body)))?;
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
    let writes = WriteFigures {
        requested: plan.writes,
        done,
        budget_seconds: plan.write_budget.as_secs_f64(),
        create_then_matches: Latency::of(pair),
        create: Latency::of(create),
        matches_after_create: Latency::of(after),
        list_during_writes: Latency::of(listed),
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
