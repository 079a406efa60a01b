//! Detected synergies: persisted with stable ids so that statuses survive re-detection.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::SynergyRow;
use super::schema::synergies;
use super::{DbConnection, DbError};

/// What a detection run changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DetectionSummary {
    pub inserted: usize,
    /// Known synergies whose score, quantities or explanation changed, or that came back.
    pub updated: usize,
    /// Known synergies detected again as they were (not rewritten).
    pub unchanged: usize,
    pub retired: usize,
}

/// What persistence compares to decide whether a stored synergy changed.
type StoredState = (
    bool,
    f64,
    Option<f64>,
    Option<f64>,
    Option<String>,
    bool,
    String,
    String,
);

fn state_of(row: &SynergyRow) -> StoredState {
    (
        row.active,
        row.score,
        row.distance_km,
        row.quantity,
        row.base_unit.clone(),
        row.latent,
        row.class.clone(),
        row.detail.clone(),
    )
}

/// Rows written per transaction: a first detection of a whole territory writes thousands, and one
/// long transaction would hold SQLite's write lock past other writers' busy timeout.
const WRITE_CHUNK: usize = 400;

/// Stores the current detection: new synergies are inserted, known ones whose score, quantities or
/// detail changed (or that come back) are updated — their status is kept —, active ones no longer
/// detected are retired. Unchanged rows are not written, so a re-detection after one new resource
/// writes a handful of rows; `last_detected_at` is the time of the detection that last changed the
/// row. Writes go in transactions of at most [`WRITE_CHUNK`] rows (each new synergy with its
/// `synergy.detected` event): an interrupted run leaves a consistent subset, completed by the next.
pub fn persist_detection(
    conn: &mut DbConnection,
    detected: &[SynergyRow],
) -> Result<DetectionSummary, DbError> {
    let known: HashMap<String, StoredState> = synergies::table
        .select((
            synergies::id,
            (
                synergies::active,
                synergies::score,
                synergies::distance_km,
                synergies::quantity,
                synergies::base_unit,
                synergies::latent,
                synergies::class,
                synergies::detail,
            ),
        ))
        .load::<(String, StoredState)>(conn)?
        .into_iter()
        .collect();
    let mut summary = DetectionSummary::default();
    let (mut changed, mut fresh) = (Vec::new(), Vec::new());
    for row in detected {
        match known.get(&row.id) {
            Some(stored) if *stored == state_of(row) => {}
            Some(_) => changed.push(row),
            None => fresh.push(row.clone()),
        }
    }
    for chunk in changed.chunks(WRITE_CHUNK) {
        conn.transaction(|conn| {
            for row in chunk {
                diesel::update(synergies::table.find(&row.id))
                    .set((
                        synergies::score.eq(row.score),
                        synergies::distance_km.eq(row.distance_km),
                        synergies::quantity.eq(row.quantity),
                        synergies::base_unit.eq(&row.base_unit),
                        synergies::latent.eq(row.latent),
                        synergies::class.eq(&row.class),
                        synergies::detail.eq(&row.detail),
                        synergies::active.eq(true),
                        synergies::last_detected_at.eq(row.last_detected_at),
                        synergies::retired_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
            }
            Ok::<_, DbError>(())
        })?;
    }
    summary.updated = changed.len();
    summary.unchanged = detected.len() - changed.len() - fresh.len();
    for chunk in fresh.chunks(WRITE_CHUNK) {
        conn.transaction(|conn| {
            match conn {
                DbConnection::Sqlite(c) => diesel::insert_into(synergies::table)
                    .values(chunk)
                    .execute(c)?,
                DbConnection::Postgresql(c) => diesel::insert_into(synergies::table)
                    .values(chunk)
                    .execute(c)?,
            };
            crate::webhooks::publish_all(
                conn,
                chunk
                    .iter()
                    .map(crate::webhooks::events::synergy_detected)
                    .collect(),
            )
        })?;
    }
    summary.inserted = fresh.len();
    let detected_ids: std::collections::HashSet<&str> =
        detected.iter().map(|r| r.id.as_str()).collect();
    let retired: Vec<&String> = known
        .iter()
        .filter(|(id, (active, ..))| *active && !detected_ids.contains(id.as_str()))
        .map(|(id, _)| id)
        .collect();
    let now = crate::db::now();
    for chunk in retired.chunks(WRITE_CHUNK) {
        conn.transaction(|conn| {
            let ids: Vec<&str> = chunk.iter().map(|id| id.as_str()).collect();
            diesel::update(synergies::table.filter(synergies::id.eq_any(ids)))
                .set((
                    synergies::active.eq(false),
                    synergies::retired_at.eq(Some(now)),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })?;
    }
    summary.retired = retired.len();
    Ok(summary)
}

/// Statuses of the given synergies (id → status).
pub fn statuses(conn: &mut DbConnection) -> Result<HashMap<String, String>, DbError> {
    Ok(synergies::table
        .filter(synergies::active.eq(true))
        .select((synergies::id, synergies::status))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<SynergyRow, DbError> {
    synergies::table
        .find(id)
        .select(SynergyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}
