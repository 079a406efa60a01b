//! Bulk writes: a whole import in one transaction, in multi-row INSERTs, with the webhook events
//! the same writes made one by one would publish.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::models::{ActorRow, ResourceRow};
use super::schema::{actors, resources};
use super::{DbConnection, DbError, conflict_on_unique};
use crate::import::ImportErrors;
use crate::webhooks::EventType;

/// A bulk import's SQLite page cache, in KiB (see `store`).
const IMPORT_CACHE_KIB: u32 = 256 * 1024;

/// Rows per INSERT: 24 columns × 400 rows stays under SQLite's 32,766 bound parameters.
const CHUNK: usize = 400;

/// Which of these SIRETs are already stored.
pub fn existing_sirets(conn: &mut DbConnection, sirets: &[String]) -> Result<Vec<String>, DbError> {
    let mut found = Vec::new();
    for chunk in sirets.chunks(CHUNK) {
        let mut hits: Vec<Option<String>> = actors::table
            .filter(actors::siret.eq_any(chunk))
            .select(actors::siret)
            .load(conn)?;
        found.extend(hits.drain(..).flatten());
    }
    Ok(found)
}

/// Inserts the rows in chunks on a concrete connection (multi-row INSERT is per backend).
macro_rules! insert_chunks {
    ($conn:expr, $actors:expr, $resources:expr) => {{
        for chunk in $actors.chunks(CHUNK) {
            diesel::insert_into(actors::table)
                .values(chunk)
                .execute($conn)
                .map_err(|e| conflict_on_unique(e, "an actor with this SIRET already exists"))?;
        }
        for chunk in $resources.chunks(CHUNK) {
            diesel::insert_into(resources::table)
                .values(chunk)
                .execute($conn)?;
        }
        Ok(())
    }};
}

/// How the API shows a resource (`GET /api/v1/resources/{id}`): the `data` of its
/// `resource.created` event, as a single create publishes it.
pub type ResourceView<'a> = &'a dyn Fn(&ResourceRow) -> serde_json::Result<serde_json::Value>;

/// Stores actors and resources all or nothing, with one `resource.created` event per resource
/// (multi-row inserts too) in the same transaction: a partner portal learns of an imported resource
/// exactly as of one declared alone, and of none if the import rolls back.
pub fn store(
    conn: &mut DbConnection,
    actor_rows: &[ActorRow],
    resource_rows: &[ResourceRow],
    view: ResourceView<'_>,
) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        // A bulk write: every server reads every row after it, not a record per row.
        let inserted: Result<(), DbError> = super::changes::unrecorded(conn, |conn| match conn {
            DbConnection::Sqlite(c) => {
                // Random ids land all over the id and the actor indexes: past a few hundred
                // thousand rows the usual 32 MiB page cache re-read the same index pages for every
                // few rows. The import's connection gets 256 MiB while it inserts, and gives it
                // back (SQLite frees the pages past a lowered limit).
                c.batch_execute(&format!("PRAGMA cache_size = -{IMPORT_CACHE_KIB}"))?;
                let inserted = (|| insert_chunks!(c, actor_rows, resource_rows))();
                c.batch_execute(&format!("PRAGMA cache_size = -{}", super::CACHE_KIB))?;
                super::return_freed_pages();
                inserted
            }
            DbConnection::Postgresql(c) => insert_chunks!(c, actor_rows, resource_rows),
        });
        inserted?;
        // Rendering an event per resource costs memory: only when someone listens.
        let listened = super::webhooks::subscribed_event_lists(conn)?
            .iter()
            .any(|list| list.contains(EventType::ResourceCreated.as_str()));
        if !listened {
            return Ok(());
        }
        let mut events = Vec::with_capacity(resource_rows.len());
        for row in resource_rows {
            let data = view(row).map_err(|e| {
                DbError::Query(diesel::result::Error::SerializationError(Box::new(e)))
            })?;
            events.push(crate::webhooks::events::resource(
                EventType::ResourceCreated,
                data,
                &row.actor_id,
            ));
        }
        crate::webhooks::publish_all(conn, events)?;
        Ok(())
    })
}

/// What an import stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub rows: usize,
    pub actors_created: usize,
    pub resources_created: usize,
    /// The actors created, in file order, with their new ids and resources.
    pub actors: Vec<ImportedActorIds>,
}

/// Ids an import gave one actor of the file and its resources.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportedActorIds {
    /// The file's `actor_ref` (empty when rows were grouped by SIRET or by name and commune).
    pub actor_ref: String,
    /// Line of the actor's first row.
    pub line: u64,
    pub actor_id: String,
    pub resources: Vec<ImportedResourceId>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportedResourceId {
    /// Line of the file the resource came from.
    pub line: u64,
    pub resource_id: String,
}

#[derive(Debug)]
pub enum ApplyError {
    /// Rows that clash with what is stored (a SIRET already used).
    Rows(ImportErrors),
    Db(DbError),
}

impl From<DbError> for ApplyError {
    fn from(e: DbError) -> Self {
        ApplyError::Db(e)
    }
}

/// Namespace of the ids an import gives (UUID v5).
const IMPORT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5b7e_1c0d_93a4_4f62_8d1e_0b6a_2c49_e871);

/// The ids of the plan's actors, derived from what identifies each (reference, name, SIRET,
/// activity, commune) and its place in the file, so that the same file imported into two fresh
/// databases gives the same ids — hence the same synergy ids, scores and groups. An id already
/// taken (the same file imported again) is derived once more, until free.
fn imported_actor_ids(
    conn: &mut DbConnection,
    plan: &crate::import::ImportPlan,
) -> Result<Vec<uuid::Uuid>, DbError> {
    let mut ids: Vec<uuid::Uuid> = plan
        .actors
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let key = [
                a.actor_ref.as_str(),
                a.actor.name.as_str(),
                a.actor.siret.as_deref().unwrap_or(""),
                a.actor.naf_code.as_str(),
                a.actor.commune_insee.as_str(),
                &i.to_string(),
            ]
            .join("\u{1f}");
            uuid::Uuid::new_v5(&IMPORT_NAMESPACE, key.as_bytes())
        })
        .collect();
    let mut pending: Vec<usize> = (0..ids.len()).collect();
    while !pending.is_empty() {
        let wanted: Vec<String> = pending.iter().map(|&i| ids[i].to_string()).collect();
        let mut taken = std::collections::HashSet::new();
        for chunk in wanted.chunks(CHUNK) {
            let hits: Vec<String> = actors::table
                .filter(actors::id.eq_any(chunk))
                .select(actors::id)
                .load(conn)?;
            taken.extend(hits);
        }
        pending.retain(|&i| taken.contains(&ids[i].to_string()));
        for &i in &pending {
            ids[i] = uuid::Uuid::new_v5(&ids[i], b"again");
        }
    }
    Ok(ids)
}

/// Stores a validated import plan in one transaction, after checking SIRETs against the database;
/// `view` renders the `resource.created` events (see [`store`]).
pub fn apply(
    conn: &mut DbConnection,
    plan: &crate::import::ImportPlan,
    illustrative: bool,
    view: ResourceView<'_>,
) -> Result<ImportReport, ApplyError> {
    let started = std::time::Instant::now();
    let now = crate::db::now();
    let sirets: Vec<String> = plan
        .actors
        .iter()
        .filter_map(|a| a.actor.siret.clone())
        .collect();
    let taken = existing_sirets(conn, &sirets)?;
    if !taken.is_empty() {
        let errors = plan
            .actors
            .iter()
            .filter(|a| a.actor.siret.as_ref().is_some_and(|s| taken.contains(s)))
            .map(|a| crate::domain::validation::FieldError {
                field: "siret".into(),
                message: "an actor with this SIRET already exists".into(),
                row: Some(a.first_row),
            })
            .collect();
        return Err(ApplyError::Rows(ImportErrors::capped(errors)));
    }
    let mut actor_rows = Vec::with_capacity(plan.actors.len());
    let mut resource_rows = Vec::with_capacity(plan.resource_count());
    let mut ids = Vec::with_capacity(plan.actors.len());
    let actor_ids = imported_actor_ids(conn, plan)?;
    for (imported, actor_uuid) in plan.actors.iter().zip(actor_ids) {
        let actor_id = actor_uuid.to_string();
        let mut resources = Vec::with_capacity(imported.resources.len());
        for (ordinal, (line, r)) in imported.resources.iter().enumerate() {
            // The actor's id is new, so ids derived from it are too.
            let resource_id =
                uuid::Uuid::new_v5(&actor_uuid, format!("resource {ordinal}").as_bytes())
                    .to_string();
            resources.push(ImportedResourceId {
                line: *line,
                resource_id: resource_id.clone(),
            });
            resource_rows.push(ResourceRow::from_valid(
                resource_id,
                actor_id.clone(),
                r,
                now,
                now,
            ));
        }
        ids.push(ImportedActorIds {
            actor_ref: imported.actor_ref.clone(),
            line: imported.first_row,
            actor_id: actor_id.clone(),
            resources,
        });
        actor_rows.push(ActorRow::from_valid(
            actor_id,
            &imported.actor,
            illustrative,
            now,
            now,
        ));
    }
    let prepared_ms = started.elapsed().as_millis() as u64;
    store(conn, &actor_rows, &resource_rows, view)?;
    tracing::info!(
        actors = actor_rows.len(),
        resources = resource_rows.len(),
        prepared_ms,
        total_ms = started.elapsed().as_millis() as u64,
        "import stored"
    );
    Ok(ImportReport {
        rows: plan.rows,
        actors_created: actor_rows.len(),
        resources_created: resource_rows.len(),
        actors: ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(siret: &str) -> ActorRow {
        ActorRow::sawmill(Some(siret))
    }

    #[derive(QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cache_size: i64,
    }

    fn cache_kib(conn: &mut DbConnection) -> i64 {
        diesel::sql_query("SELECT cache_size FROM pragma_cache_size")
            .get_result::<CacheSize>(conn)
            .map(|c| -c.cache_size)
            .unwrap_or_default()
    }

    /// The import's larger page cache is the import's only: the connection goes back to the pool
    /// with the usual one, after an import that stored and after one that failed.
    #[test]
    fn an_import_gives_its_page_cache_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("import.db").to_string_lossy().into_owned();
        let pool = super::super::connect(&url, 1, 5_000).expect("pool");
        super::super::migrate(&pool).expect("migrations");
        let mut conn = pool.get().expect("connection");
        let no_view: ResourceView<'_> = &|_| Ok(serde_json::Value::Null);
        assert_eq!(cache_kib(&mut conn), i64::from(super::super::CACHE_KIB));
        store(&mut conn, &[actor("12345678900011")], &[], no_view).expect("stored");
        assert_eq!(cache_kib(&mut conn), i64::from(super::super::CACHE_KIB));
        let twice = store(&mut conn, &[actor("12345678900011")], &[], no_view);
        assert!(matches!(twice, Err(DbError::Conflict(_))), "{twice:?}");
        assert_eq!(cache_kib(&mut conn), i64::from(super::super::CACHE_KIB));
    }
}
