//! `symbiose bench-service` at a small scale, against the debug binary: it completes and reports
//! every figure. Nothing here is timed.

use std::path::Path;
use std::time::Duration;

use symbiose::bench_service::{BenchPlan, SEED, render, run};

#[test]
fn bench_service_reports_every_figure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = BenchPlan {
        resources: 200,
        writes: 12,
        write_budget: Duration::from_secs(600),
        reads: 20,
        list_reads: 5,
        database_url: None,
        server_bin: env!("CARGO_BIN_EXE_symbiose").into(),
        config_dir: root.join("config"),
        reference_dir: root.join("../shared/reference"),
        // Small, so that the import is sent as several files.
        import_limit_bytes: 10_000,
        seed: SEED,
        server_log: None,
    };
    let report = actix_web::rt::System::new()
        .block_on(run(plan))
        .unwrap_or_else(|e| panic!("bench-service failed: {e:#}"));
    assert_eq!(report.backend, "sqlite");
    assert!(report.import.files >= 2, "{} file(s)", report.import.files);
    assert_eq!(report.import.rows, report.resources);
    assert_eq!(report.import.resources_created, report.resources);
    assert_eq!(report.import.actors_created, report.actors);
    assert_eq!(report.offers + report.needs, report.resources);
    assert!(report.first_detection.substitution > 0);
    assert_eq!(report.matches.count, 20);
    assert_eq!(report.resource_get.count, 20);
    assert_eq!(report.territory_list.count, 5);
    assert_eq!(report.territory_kpis.count, 5);
    assert_eq!(report.partner_list.count, 5);
    assert!(report.partner_first_list_ms > 0.0);
    assert_eq!(report.writes.done, 12);
    assert_eq!(report.writes.create_then_matches.count, 12);
    // One list read per ten writes.
    assert_eq!(report.writes.list_during_writes.count, 1);
    // Each new offer reached its actor's list within the budget.
    assert_eq!(report.writes.reached_others.count, 3);
    assert!(report.writes.reached_others.max_ms < 60_000.0);
    assert!(report.writes.partner_list_after_ms > 0.0);
    assert!(report.server_peak_rss_mib > 0.0);
    assert!(report.database_bytes > 0);
    let table = render(&report);
    for measure in [
        "import",
        "first detection",
        "incremental write",
        "/matches",
        "/synergies?territory=",
        "with a partner key",
        "list during the writes",
        "in its actor's synergy list",
        "then the territory list with a partner key",
        "peak RSS",
        "database size",
    ] {
        assert!(table.contains(measure), "{measure} missing from\n{table}");
    }
}
