//! The `symbiose` command: serve the API, migrate, import a CSV file, load the demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// jemalloc, not glibc's malloc. glibc gave each thread that allocates concurrently its own arena and
/// rarely returned their memory (3 GiB of RSS under load, capped at two arenas then); with two arenas,
/// a request thread could wait for an arena's lock held by the background rebuild, an idle-class
/// thread that the scheduler seldom runs while requests keep both cores busy. At 1M resources jemalloc
/// halved a resource's matches p50 and lowered the peak (docs/PERFORMANCE.md, sixth session).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (`_RJEM_MALLOC_CONF` in the environment overrides them).
/// Without a background thread an arena purges its freed pages only when a thread allocates in it
/// again: the arenas of a finished rebuild's threads kept a freed national build resident (over a
/// gigabyte at 1M resources). With it, freed pages go back to the system within about a second.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(transparent)]
pub struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe impl Sync for MallocConf {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());
use symbiose::config::Settings;
use symbiose::startup::Application;

#[derive(Parser)]
#[command(
    name = "symbiose",
    version,
    about = "Synergy matching for industrial and territorial ecology"
)]
struct Cli {
    /// Directory holding default.toml and the environment files.
    #[arg(
        long,
        global = true,
        default_value = "config",
        env = "SYMBIOSE_CONFIG_DIR"
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Load the illustrative Bourgogne demo dataset on first start.
        #[arg(long)]
        demo: bool,
    },
    /// Apply the pending database migrations.
    Migrate,
    /// Import actors and resources from a CSV file (all rows or none).
    Import { file: PathBuf },
    /// Load the illustrative Bourgogne demo dataset (once; a second run does nothing).
    Demo,
    /// Probe a running server's `/health/ready` on `server.port` (exit 0 when ready): the
    /// container healthcheck, since the runtime image has no curl.
    Health {
        /// Give up after this many seconds (connect, then the answer).
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Measure the receiver model by leave-one-case-out cross-validation on the case base (hit@1,
    /// hit@3, MRR against two baselines); with --fit, search its parameters first and print them.
    Evaluate {
        /// Fit the parameters (coordinate descent) and print them in the format of
        /// knowledge/receiver_model.toml before the report.
        #[arg(long)]
        fit: bool,
        /// Print one line per exchange: the true receiver's rank and the model's first three.
        #[arg(long)]
        trace: bool,
        /// Stand the true receiver by any activity of its division rather than its own class
        /// (robustness check).
        #[arg(long)]
        any_subclass: bool,
    },
    /// Measure the service end to end at national scale: generate RESOURCES resources over the
    /// real communes, start `serve` as a child on a fresh database (SQLite in a temp dir, or a
    /// throwaway PostgreSQL database), and time through HTTP the import, the first detection,
    /// reads, incremental writes; report peak RSS and database size. The server always stops.
    BenchService {
        #[arg(long, default_value_t = 10_000)]
        resources: usize,
        /// Incremental writes: create a resource, then read its matches.
        #[arg(long, default_value_t = 1000)]
        writes: usize,
        /// Stop the writes after this many seconds, whatever their count.
        #[arg(long, default_value_t = 300)]
        write_budget_secs: u64,
        /// Reads of a resource's matches, and of a resource.
        #[arg(long, default_value_t = 1000)]
        reads: usize,
        /// Reads of the territory's synergy list.
        #[arg(long, default_value_t = 200)]
        list_reads: usize,
        /// A PostgreSQL server (`postgres://user@host:port/db`): a throwaway database is created
        /// there and dropped at the end. Default: SQLite in a temporary directory.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = symbiose::bench_service::SEED)]
        seed: u64,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Keep the server's log in this file (its timings: `import stored`, `detection rebuilt`).
        #[arg(long)]
        server_log: Option<PathBuf>,
    },
    /// Manage API keys: create (prints the key once), list, revoke.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Measure a running server (loopback only): GET PATH REQUESTS times from CONCURRENCY clients,
    /// or with --mixed 70 % reads / 30 % writes, every acknowledged write read back afterwards.
    Loadcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value = "/api/v1/actors?territory=21")]
        path: String,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// API key sent as `Authorization: Bearer` (facilitator or admin for --mixed).
        #[arg(long, env = "SYMBIOSE_KEY")]
        key: Option<String>,
        /// Mixed reads and writes instead of one GET path.
        #[arg(long)]
        mixed: bool,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key and print it (only its SHA-256 is stored: it cannot be shown again).
    Create {
        #[arg(long, value_parser = ["admin", "facilitator", "partner"])]
        role: String,
        /// Limit the key to a territory (repeatable); none = national.
        #[arg(long = "territory")]
        territories: Vec<String>,
        /// Who holds the key (shown in histories and the audit log).
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id: running servers refuse it as soon as they see the change (at once on
    /// PostgreSQL, through its notification; within `database.change_poll_ms` otherwise).
    Revoke { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("symbiose: {e}");
            return ExitCode::from(2);
        }
    };
    symbiose::telemetry::init(&settings.log);
    let result = match cli.command {
        Command::BenchService {
            resources,
            writes,
            write_budget_secs,
            reads,
            list_reads,
            database_url,
            seed,
            json,
            server_log,
        } => bench_service(
            symbiose::bench_service::BenchPlan {
                resources,
                writes,
                write_budget: Duration::from_secs(write_budget_secs),
                reads,
                list_reads,
                database_url,
                server_bin: PathBuf::new(),
                config_dir: cli.config_dir,
                reference_dir: settings.reference.dir.clone(),
                import_limit_bytes: settings.server.import_limit_bytes,
                seed,
                server_log,
            },
            json,
        ),
        command => run(command, settings),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("symbiose: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    if let Command::Loadcheck {
        url,
        path,
        requests,
        concurrency,
        key,
        mixed,
    } = command
    {
        let plan = symbiose::loadcheck::LoadPlan {
            base_url: url,
            path,
            requests,
            concurrency,
            key,
        };
        let runtime = actix_web::rt::System::new();
        let report = if mixed {
            serde_json::to_string_pretty(&runtime.block_on(symbiose::loadcheck::run_mixed(plan))?)?
        } else {
            serde_json::to_string_pretty(&runtime.block_on(symbiose::loadcheck::run(plan))?)?
        };
        println!("{report}");
        return Ok(());
    }
    if let Command::Evaluate {
        fit,
        trace,
        any_subclass,
    } = command
    {
        return evaluate(&settings, fit, trace, any_subclass);
    }
    if let Command::Health { timeout } = command {
        return symbiose::cli::health(&settings.server, Duration::from_secs(timeout));
    }
    let demo_setting = settings.demo.enabled;
    let mut settings = settings;
    if matches!(command, Command::Serve { demo: true }) || demo_setting {
        // The demo is meant to be browsed: reads without a key (non-consenting actors anonymised).
        settings.auth.public_read = true;
    }
    let app = Application::prepare(settings)?;
    match command {
        Command::Migrate => {
            println!("migrations applied; database is up to date");
            Ok(())
        }
        Command::Import { file } => {
            let report = symbiose::cli::import_file(&app, &file)?;
            println!(
                "imported {} rows: {} actors, {} resources",
                report.rows, report.actors_created, report.resources_created
            );
            Ok(())
        }
        Command::Demo => {
            symbiose::cli::load_demo(&app)?;
            Ok(())
        }
        Command::Loadcheck { .. }
        | Command::Health { .. }
        | Command::Evaluate { .. }
        | Command::BenchService { .. } => Ok(()),
        Command::Keys { action } => symbiose::cli::keys(&app, action.into()),
        Command::Serve { demo } => {
            if demo || demo_setting {
                symbiose::cli::load_demo(&app)?;
            }
            let runtime = actix_web::rt::System::new();
            runtime.block_on(async {
                let (server, port) = app.serve()?;
                tracing::info!(port, "symbiose listening; API docs at /docs");
                server.await?;
                Ok(())
            })
        }
    }
}

/// `symbiose bench-service`: the server it starts is this binary.
fn bench_service(mut plan: symbiose::bench_service::BenchPlan, json: bool) -> anyhow::Result<()> {
    plan.server_bin = std::env::current_exe()?;
    let report = actix_web::rt::System::new().block_on(symbiose::bench_service::run(plan))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", symbiose::bench_service::render(&report));
    }
    Ok(())
}

/// `symbiose evaluate [--fit]`: reads the case base from the reference directory, needs no database.
fn evaluate(settings: &Settings, fit: bool, trace: bool, any_subclass: bool) -> anyhow::Result<()> {
    use symbiose::evaluate as eval;
    use symbiose::matching::evidence::EvidenceBase;
    use symbiose::matching::receiver_model::ModelParams;
    let dir = &settings.reference.dir;
    let reference = symbiose::reference::Reference::load(dir)?;
    let tax = symbiose::matching::Taxonomy::builtin()?;
    let evidence = EvidenceBase::load(&dir.join("cases/maestri_exchanges_part_a.csv"), &tax)?;
    println!("{}", eval::evidence_summary(&evidence));
    let mut params = ModelParams::builtin()?;
    if fit {
        let (best, _) = eval::fit(&reference, &evidence, params, &mut |l| eprintln!("{l}"))?;
        println!(
            "\nFitted parameters (knowledge/receiver_model.toml):\n\n{}",
            eval::params_toml(&best)
        );
        params = best;
    }
    let truth = if any_subclass {
        eval::Truth::AnyOfDivision
    } else {
        eval::Truth::OwnClass
    };
    let report = eval::evaluate(&reference, &evidence, params, true, truth)?;
    if trace {
        println!("{}\n", report.trace.join("\n"));
    }
    println!("{}", eval::render(&report));
    Ok(())
}

impl From<KeysAction> for symbiose::cli::KeysCommand {
    fn from(action: KeysAction) -> Self {
        match action {
            KeysAction::Create {
                role,
                territories,
                name,
            } => symbiose::cli::KeysCommand::Create {
                role,
                territories,
                name,
            },
            KeysAction::List => symbiose::cli::KeysCommand::List,
            KeysAction::Revoke { id } => symbiose::cli::KeysCommand::Revoke { id },
        }
    }
}
