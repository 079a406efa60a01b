//! The service under measure: a child `serve` on a free loopback port, on a fresh SQLite file or a
//! throwaway PostgreSQL database, with a key made by `keys create`; guards stop the server and drop the
//! database on every way out.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::*;

/// A temporary directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> anyhow::Result<TempDir> {
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
pub(super) struct PgDatabase {
    pub(super) admin_url: String,
    pub(super) name: String,
}

impl PgDatabase {
    /// Creates `symbiose_bench_<uuid>` on the server of `admin_url`; returns it with its URL.
    pub(super) fn create(admin_url: &str) -> anyhow::Result<(PgDatabase, String)> {
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

    pub(super) fn size_bytes(&self) -> anyhow::Result<u64> {
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
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The environment every child (keys, serve) runs with.
pub(super) fn child_command(
    plan: &BenchPlan,
    database_url: &str,
    port: u16,
    log: &Path,
) -> Command {
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
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) log: PathBuf,
}

impl Server {
    pub(super) fn start(
        plan: &BenchPlan,
        database_url: &str,
        port: u16,
        log: &Path,
    ) -> anyhow::Result<Self> {
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

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log, for error messages.
    pub(super) fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }

    /// An error if the server has stopped.
    pub(super) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the server stopped ({status}); its log ends with:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// VmHWM of the server, in MiB.
    pub(super) fn peak_rss_mib(&self) -> f64 {
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

pub(super) fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `keys create --role facilitator` against the bench database (it also applies the migrations).
pub(super) fn create_key(
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
