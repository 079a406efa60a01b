//! Persistence: one diesel `MultiConnection` over SQLite (embedded default) and PostgreSQL
//! (production), an r2d2 pool, embedded migrations per backend, and the repositories.
//! Every SQL statement of the service lives under this module.

pub mod actors;
pub mod afme;
pub mod changes;
pub mod import;
pub mod keys;
pub mod leases;
pub mod lifecycle;
pub mod models;
pub mod notify;
pub mod resources;
pub mod schema;
pub mod synergies;
pub mod webhooks;
pub mod zones;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<DbManager>;
pub type PooledDb = PooledConnection<DbManager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(String),
    #[error("migration error: {0}")]
    Migration(String),
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        DbError::Pool(err.to_string())
    }
}

/// Which backend a database URL names: `postgres://` / `postgresql://` for PostgreSQL, anything else
/// (a path, `sqlite://path`, `:memory:`) for SQLite. Chosen from the scheme rather than by trying each
/// backend in turn, because SQLite accepts any string as a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// r2d2 manager that opens the backend named by the URL and sets SQLite's per-connection pragmas
/// (foreign keys are off by default and cannot be set by a migration).
#[derive(Debug, Clone)]
pub struct DbManager {
    url: String,
    backend: Backend,
    busy_timeout_ms: u32,
}

impl DbManager {
    pub fn new(url: &str, busy_timeout_ms: u32) -> Self {
        let backend = Backend::of_url(url);
        let url = match backend {
            Backend::Sqlite => url.strip_prefix("sqlite://").unwrap_or(url).to_owned(),
            Backend::Postgres => url.to_owned(),
        };
        DbManager {
            url,
            backend,
            busy_timeout_ms,
        }
    }
}

impl DbManager {
    /// The URL without its password, for messages.
    fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut parsed) if self.backend == Backend::Postgres => {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("***"));
                }
                parsed.to_string()
            }
            _ => self.url.clone(),
        }
    }
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url)
                .map(DbConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL is a property of the file, set once by `connect` before the pool opens: setting
                // it here would make the pool's connections contend for the lock it takes.
                // A 32 MiB page cache (SQLite's default is 2 MiB): at a million resources a bulk
                // import updates ten indexes at random places, and the default cache made it
                // re-read the same pages from the file for every few rows. Temporary data in
                // memory: each multi-row insert of a transaction keeps a statement journal, which
                // SQLite otherwise writes to a temporary file. Checkpoints leave the writers'
                // path: a serving process checkpoints from its change follower (`checkpoint`),
                // and the limit of 100,000 pages (~400 MiB of WAL) only bounds other processes.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = MEMORY; \
                     PRAGMA wal_autocheckpoint = 100000;",
                    self.busy_timeout_ms
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Gives the C allocator's freed pages back to the system. SQLite allocates through it (the Rust
/// allocator is jemalloc), page by page: the pages an import's 256 MiB cache freed stayed resident
/// in glibc's heap between live allocations (measured at 1M resources: ~0.8 GiB resident beyond
/// what jemalloc held). Linux with glibc only; elsewhere a no-op.
pub(crate) fn return_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps no padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Each SQLite connection's page cache, in KiB (see `DbManager::connect`).
pub(crate) const CACHE_KIB: u32 = 32 * 1024;

/// Builds the pool, creating the SQLite file's directory when needed, and checks one connection.
pub fn connect(url: &str, pool_size: u32, busy_timeout_ms: u32) -> Result<DbPool, DbError> {
    let manager = DbManager::new(url, busy_timeout_ms);
    if manager.backend == Backend::Sqlite
        && manager.url != ":memory:"
        && let Some(parent) = std::path::Path::new(&manager.url).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbError::Pool(format!("cannot create {}: {e}", parent.display())))?;
    }
    // One connection first, alone: a wrong URL, a refused login or a read-only file fails here at
    // once with one clear message, instead of the pool retrying for its whole timeout and logging
    // every attempt. On SQLite it also switches the file to WAL before other connections exist.
    let mut first = manager.connect().map_err(|e| {
        DbError::Pool(format!(
            "cannot open the database {}: {e}",
            manager.redacted_url()
        ))
    })?;
    if let DbConnection::Sqlite(conn) = &mut first {
        conn.batch_execute("PRAGMA journal_mode = WAL;")
            .map_err(|e| {
                DbError::Pool(format!(
                    "the database {} cannot be written: {e}",
                    manager.redacted_url()
                ))
            })?;
    }
    drop(first);
    Pool::builder()
        .max_size(pool_size.max(1))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(DbError::from)
}

/// A write transaction. On SQLite it begins with `BEGIN IMMEDIATE`, taking the write lock at once:
/// a deferred transaction that reads and then writes fails with "database is locked" the moment
/// another writer has committed meanwhile (waiting cannot help it, so the busy timeout is not
/// used), whereas an immediate one queues for up to `database.busy_timeout_ms`. Writers then take
/// turns instead of failing. PostgreSQL's row locks need nothing of the kind. Inside another
/// transaction it is a savepoint, as `Connection::transaction` is.
pub fn transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Manager = <DbConnection as Connection>::TransactionManager;
    let nested = !matches!(
        Manager::transaction_manager_status_mut(conn).transaction_depth(),
        Ok(None)
    );
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(f);
    };
    if nested {
        return conn.transaction(f);
    }
    let _turn = WriterTurn::wait(sqlite)?;
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            Manager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// This process's SQLite write transactions on one database file take turns here before
/// `BEGIN IMMEDIATE`. SQLite's own busy handler polls, sleeping 1, 2, 5, 10… ms between tries, so a
/// writer that found the write lock held for a fraction of a millisecond (a lease renewal, another
/// request's insert) lost milliseconds; one queued on this lock takes its turn the moment the other
/// commits. Writers of other processes (the CLI, another server) still meet SQLite's busy timeout.
static SQLITE_TURNS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, Arc<parking_lot::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

thread_local! {
    /// This thread holds a writers' turn: a write on another connection inside it must not wait
    /// for it (it would wait for itself).
    static HOLDS_TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The file a SQLite connection writes to (empty for an in-memory database), and its busy timeout.
#[derive(QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    busy_timeout_ms: i64,
}

/// A turn among this process's writers of one SQLite file, released when dropped.
struct WriterTurn(Option<parking_lot::ArcMutexGuard<parking_lot::RawMutex, ()>>);

impl WriterTurn {
    fn wait(conn: &mut SqliteConnection) -> Result<WriterTurn, diesel::result::Error> {
        if HOLDS_TURN.get() {
            return Ok(WriterTurn(None));
        }
        let DatabaseFile {
            file,
            busy_timeout_ms,
        } = diesel::sql_query(
            "SELECT file, (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout_ms \
             FROM pragma_database_list WHERE name = 'main'",
        )
        .get_result::<DatabaseFile>(conn)?;
        let turn = SQLITE_TURNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(file)
            .or_default()
            .clone();
        // Past the connection's busy timeout, the transaction fails as SQLite's busy timeout would
        // have failed it ("database is locked", a 503).
        let wait = Duration::from_millis(u64::try_from(busy_timeout_ms).unwrap_or(0));
        let Some(guard) = turn.try_lock_arc_for(wait) else {
            return Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(String::from("database is locked")),
            ));
        };
        HOLDS_TURN.set(true);
        Ok(WriterTurn(Some(guard)))
    }
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            HOLDS_TURN.set(false);
        }
    }
}

/// Whether `err` says the database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's 53100
/// `disk_full` or a failed file extension).
pub fn is_storage_full(err: &diesel::result::Error) -> bool {
    let text = err.to_string().to_ascii_lowercase();
    text.contains("database or disk is full")
        || text.contains("no space left on device")
        || text.contains("could not extend file")
        || text.contains("disk full")
}

/// Whether the database can still grow: writes a row larger than a page and rolls it back
/// (`/health/ready`). A full disk then makes the service not ready instead of failing writes.
pub fn can_write(pool: &DbPool) -> bool {
    let Ok(mut conn) = pool.get() else {
        return false;
    };
    // Random hex, so that neither backend can compress it into the page it already has.
    let filler: String = (0..16 * 1024 / 16)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect();
    let probe = transaction(&mut conn, |conn| {
        diesel::sql_query(format!(
            "INSERT INTO storage_probe (id, filler) VALUES (1, '{filler}')"
        ))
        .execute(conn)?;
        // Never keep it: the probe only asks whether the database could grow.
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    });
    matches!(probe, Err(diesel::result::Error::RollbackTransaction))
}

/// Applies the pending migrations of the pool's backend; returns how many ran.
pub fn migrate(pool: &DbPool) -> Result<usize, DbError> {
    let mut conn = pool.get()?;
    let applied = match &mut *conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConnection::Postgresql(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    applied.map_err(|e| DbError::Migration(e.to_string()))
}

/// Copies what the SQLite write-ahead log holds back into the database file, as far as readers
/// allow (`PASSIVE`: never waits for them): called from a serving process's change follower, so
/// that no request pays for a checkpoint. Nothing to do on PostgreSQL.
pub fn checkpoint(conn: &mut DbConnection) -> Result<(), DbError> {
    if let DbConnection::Sqlite(c) = conn {
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
    }
    Ok(())
}

/// Whether the database answers (for `/health/ready`).
pub fn ping(pool: &DbPool) -> bool {
    pool.get()
        .ok()
        .is_some_and(|mut conn| diesel::sql_query("SELECT 1").execute(&mut *conn).is_ok())
}

/// Runs a blocking database closure on actix's blocking thread pool, never on the async executor.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(|e| DbError::Pool(e.to_string()))?
}

/// Maps a unique-constraint violation to `Conflict` with the given message.
pub(crate) fn conflict_on_unique(err: diesel::result::Error, message: &str) -> DbError {
    match err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => DbError::Conflict(message.to_owned()),
        other => DbError::Query(other),
    }
}

/// Narrows a boxed query that involves the `actors` table to the actors of a territory scope.
macro_rules! filter_by_scope {
    ($query:expr, $scope:expr) => {{
        use $crate::db::schema::{actors, zone_communes};
        match $scope {
            $crate::db::TerritoryScope::All => $query,
            $crate::db::TerritoryScope::Region(code) => {
                $query.filter(actors::region.eq(code.clone()))
            }
            $crate::db::TerritoryScope::Departement(code) => {
                $query.filter(actors::departement.eq(code.clone()))
            }
            $crate::db::TerritoryScope::Epci(code) => $query.filter(actors::epci.eq(code.clone())),
            $crate::db::TerritoryScope::Commune(code) => {
                $query.filter(actors::commune_insee.eq(code.clone()))
            }
            $crate::db::TerritoryScope::Zone(code) => $query.filter(
                actors::commune_insee.eq_any(
                    zone_communes::table
                        .filter(zone_communes::zone_code.eq(code.clone()))
                        .select(zone_communes::commune_insee),
                ),
            ),
        }
    }};
}
pub(crate) use filter_by_scope;

/// Which actors a territory covers, as the queries filter them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TerritoryScope {
    #[default]
    All,
    Region(String),
    Departement(String),
    Epci(String),
    Commune(String),
    /// A custom zone: the actors of its communes.
    Zone(String),
}

/// The current UTC time at the precision both backends store (PostgreSQL keeps microseconds), so a
/// value returned on create equals the one read back later.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn sqlite_pool(dir: &tempfile::TempDir, name: &str, busy_timeout_ms: u32) -> DbPool {
        let url = dir.path().join(name).to_string_lossy().into_owned();
        let pool = connect(&url, 2, busy_timeout_ms).expect("pool");
        let mut conn = pool.get().expect("connection");
        conn.batch_execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
            .expect("table");
        pool
    }

    fn insert(conn: &mut DbConnection, v: i32) -> Result<(), diesel::result::Error> {
        diesel::sql_query(format!("INSERT INTO t (v) VALUES ({v})"))
            .execute(conn)
            .map(|_| ())
    }

    /// The writers' turn is per database file: a transaction held open on one file does not stop
    /// another file's writers, and a thread inside a transaction can still write to another file.
    #[test]
    fn writers_take_turns_per_database_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (
            sqlite_pool(&dir, "a.db", 5_000),
            sqlite_pool(&dir, "b.db", 5_000),
        );
        let (written_b, wrote_b) = mpsc::channel();
        let b_writer = b.clone();
        let mut conn_a = a.get().expect("connection");
        let held = transaction(&mut conn_a, |conn| {
            insert(conn, 1)?;
            // Another thread writes to b while a's turn is held here…
            let other = std::thread::spawn(move || {
                let mut conn = b_writer.get().expect("connection");
                let done = transaction(&mut conn, |conn| insert(conn, 2));
                written_b.send(done.is_ok()).expect("send");
            });
            let other_wrote = wrote_b
                .recv_timeout(Duration::from_secs(2))
                .unwrap_or(false);
            other.join().expect("writer thread");
            // …and this thread writes to b inside a's transaction.
            let mut conn_b = b.get().expect("connection");
            transaction(&mut conn_b, |conn| insert(conn, 3))?;
            Ok::<bool, diesel::result::Error>(other_wrote)
        });
        assert_eq!(held.map_err(|e| e.to_string()), Ok(true));
    }

    /// A writer that cannot get its turn within the busy timeout fails as SQLite's busy timeout
    /// would ("database is locked", a 503 for the API), rather than waiting on.
    #[test]
    fn a_writer_that_waits_past_the_busy_timeout_is_told_the_database_is_locked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = sqlite_pool(&dir, "locked.db", 100);
        let (release, released) = mpsc::channel::<()>();
        let (started, start) = mpsc::channel::<()>();
        let holder_pool = pool.clone();
        let holder = std::thread::spawn(move || {
            let mut conn = holder_pool.get().expect("connection");
            transaction(&mut conn, |conn| {
                insert(conn, 1)?;
                started.send(()).expect("send");
                released.recv_timeout(Duration::from_secs(5)).unwrap_or(());
                Ok::<(), diesel::result::Error>(())
            })
        });
        start
            .recv_timeout(Duration::from_secs(5))
            .expect("holder started");
        let mut conn = pool.get().expect("connection");
        let waited = transaction(&mut conn, |conn| insert(conn, 2));
        release.send(()).expect("release");
        assert!(holder.join().expect("holder").is_ok());
        let error = waited.expect_err("the write must not pass a held turn");
        assert!(error.to_string().contains("database is locked"), "{error}");
    }
}
