//! Structured logs (tracing): pretty for people, JSON for log collectors.

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// What the program has allocated and not freed, MiB, as jemalloc counts it (`None` where the
/// binary does not allocate with jemalloc). For the logs of builds and views: what a build holds,
/// unlike the RSS, which also counts pages freed but not yet given back.
pub fn allocated_mib() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        jemalloc_mib(tikv_jemalloc_ctl::stats::allocated::read)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// What jemalloc keeps resident, MiB: the allocated memory, its own metadata and the freed pages
/// not yet given back. The process's RSS beyond it is the C allocator's (SQLite) and the binary.
pub fn jemalloc_resident_mib() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        jemalloc_mib(tikv_jemalloc_ctl::stats::resident::read)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// One of jemalloc's byte counts, MiB, read after refreshing the statistics (a snapshot refreshed
/// by advancing the epoch).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn jemalloc_mib(read: fn() -> Result<usize, tikv_jemalloc_ctl::Error>) -> Option<u64> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    Some(read().ok()? as u64 >> 20)
}
