//! Persistence: one diesel `MultiConnection` over SQLite (embedded default) and PostgreSQL
//! (production), an r2d2 pool, embedded migrations per backend, and the repositories.
//! Every SQL statement of the service lives under this module.

pub mod actors;
pub mod afme;
pub mod import;
pub mod keys;
pub mod lifecycle;
pub mod models;
pub mod resources;
pub mod schema;
pub mod synergies;
pub mod webhooks;
pub mod zones;

use std::time::Duration;

use diesel::connection::SimpleConnection;
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
                // busy_timeout first: switching to WAL takes a lock that other new connections contend for.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
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
    Pool::builder()
        .max_size(pool_size.max(1))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(DbError::from)
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
