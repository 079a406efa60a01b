//! Matching engine benches on a national-scale synthetic dataset (real communes, weighted by population).
//!
//! `cargo bench --bench matching` prints a report (snapshot build, detection, candidates, query p50/p99,
//! peak RSS, digest of the candidates) for 10k and 100k resources, and 1M with `SYMBIOSE_BENCH_1M=1`, then
//! runs the criterion groups on 10k and 100k.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use symbiose::matching::synth::{Commune, generate, load_communes_path};
use symbiose::matching::{
    Candidate, Knowledge, MatchingSettings, NeutralPriority, SnapActor, SnapResource, Snapshot,
    Taxonomy, detect, matches_for_resource,
};
use uuid::Uuid;

const SEED: u64 = 20_240_501;

struct Reference {
    taxonomy: Taxonomy,
    knowledge: Knowledge,
    communes: Vec<Commune>,
}

fn reference() -> Reference {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    let taxonomy = Taxonomy::builtin().expect("embedded taxonomy");
    let knowledge = Knowledge::load(&root.join("cases/maestri_exchanges_part_a.csv"), &taxonomy)
        .expect("evidence base");
    let communes = load_communes_path(&root.join("geo/fr_communes.csv")).expect("communes");
    Reference {
        taxonomy,
        knowledge,
        communes,
    }
}

fn dataset(r: &Reference, n: usize) -> (Vec<SnapActor>, Vec<SnapResource>) {
    generate(&r.communes, n, SEED).expect("synthetic data")
}

fn query_ids(snap: &Snapshot, count: usize) -> Vec<Uuid> {
    let step = (snap.resources().len() / count).max(1);
    snap.resources()
        .iter()
        .step_by(step)
        .take(count)
        .map(|r| r.id)
        .collect()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU time of this process, seconds (the machine may be shared: wall time alone misleads).
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields 14 and 15 of /proc/self/stat (utime, stime) in clock ticks of 1/100 s.
    match (f.get(10), f.get(11)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// Digest of a detection's output (every field, in order): an optimisation must leave it unchanged.
/// std's hasher, so only runs built by one toolchain compare.
fn digest(candidates: &[Candidate]) -> u64 {
    let mut h = DefaultHasher::new();
    for c in candidates {
        (c.offer, c.target, c.latent, c.fit).hash(&mut h);
        (
            c.score.to_bits(),
            c.distance_km.to_bits(),
            c.fit_value.to_bits(),
        )
            .hash(&mut h);
    }
    h.finish()
}

fn label(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1_000)
    }
}

/// Settings, overridable with `SYMBIOSE_BENCH_SETTINGS='{"detection": {"neighbour_pool": 8}}'` (JSON).
fn settings() -> MatchingSettings {
    match std::env::var("SYMBIOSE_BENCH_SETTINGS") {
        Ok(json) => {
            serde_json::from_str(&json).expect("SYMBIOSE_BENCH_SETTINGS is MatchingSettings JSON")
        }
        Err(_) => MatchingSettings::default(),
    }
}

fn report(r: &Reference, sizes: &[usize]) {
    let settings = settings();
    println!(
        "\n{:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>16}",
        "size",
        "actors",
        "build_s",
        "cpu_s",
        "detect_s",
        "cpu_s",
        "candidates",
        "latent",
        "q_p50_ms",
        "q_p99_ms",
        "peak_MiB",
        "digest"
    );
    for &n in sizes {
        let (actors, resources) = dataset(r, n);
        let n_actors = actors.len();
        let (t, c) = (Instant::now(), cpu_s());
        let snap = Snapshot::build(actors, resources, &r.taxonomy, &r.knowledge);
        let (build, build_cpu) = (t.elapsed(), cpu_s() - c);
        let (t, c) = (Instant::now(), cpu_s());
        let candidates = detect(&snap, &settings, &NeutralPriority).expect("detect");
        let (detect_time, detect_cpu) = (t.elapsed(), cpu_s() - c);
        let latent = candidates.iter().filter(|c| c.latent).count();
        let ids = query_ids(&snap, 2_000);
        let mut times: Vec<Duration> = ids
            .iter()
            .map(|id| {
                let t = Instant::now();
                black_box(
                    matches_for_resource(&snap, *id, &settings, &NeutralPriority).expect("query"),
                );
                t.elapsed()
            })
            .collect();
        times.sort();
        let pct =
            |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
        println!(
            "{:>6} {:>8} {:>8.3} {:>8.2} {:>9.3} {:>9.2} {:>11} {:>9} {:>9.3} {:>9.3} {:>9.0} {:016x}",
            label(n),
            n_actors,
            build.as_secs_f64(),
            build_cpu,
            detect_time.as_secs_f64(),
            detect_cpu,
            candidates.len(),
            latent,
            pct(0.5),
            pct(0.99),
            peak_rss_mib().unwrap_or(f64::NAN),
            digest(&candidates),
        );
        drop(candidates);
        drop(snap);
    }
    println!();
}

fn benches(c: &mut Criterion, r: &Reference, sizes: &[usize]) {
    let settings = settings();
    for &n in sizes {
        let (actors, resources) = dataset(r, n);
        let mut group = c.benchmark_group("matching");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(if n > 10_000 { 20 } else { 5 }));
        group.bench_function(BenchmarkId::new("snapshot_build", label(n)), |b| {
            b.iter(|| Snapshot::build(actors.clone(), resources.clone(), &r.taxonomy, &r.knowledge))
        });
        let snap = Snapshot::build(actors.clone(), resources.clone(), &r.taxonomy, &r.knowledge);
        group.bench_function(BenchmarkId::new("detect", label(n)), |b| {
            b.iter(|| detect(&snap, &settings, &NeutralPriority).expect("detect"))
        });
        group.finish();
        let ids = query_ids(&snap, 1_000);
        let mut i = 0usize;
        c.bench_function(
            &format!("matching/matches_for_resource/{}", label(n)),
            |b| {
                b.iter(|| {
                    i = (i + 1) % ids.len();
                    matches_for_resource(&snap, ids[i], &settings, &NeutralPriority).expect("query")
                })
            },
        );
    }
}

fn main() {
    let real_run = std::env::args().any(|a| a == "--bench");
    let r = reference();
    if real_run {
        let mut sizes = vec![10_000, 100_000];
        if std::env::var("SYMBIOSE_BENCH_10K_ONLY").is_ok_and(|v| v == "1") {
            sizes.truncate(1);
        }
        if std::env::var("SYMBIOSE_BENCH_1M").is_ok_and(|v| v == "1") {
            sizes.push(1_000_000);
        }
        report(&r, &sizes);
        if std::env::var("SYMBIOSE_BENCH_REPORT_ONLY").is_ok_and(|v| v == "1") {
            return;
        }
    }
    let mut c = Criterion::default().configure_from_args();
    // `cargo test --benches` runs each bench once in test mode: keep that to the small size.
    let sizes: &[usize] = if real_run {
        &[10_000, 100_000]
    } else {
        &[10_000]
    };
    benches(&mut c, &r, sizes);
    c.final_summary();
}
