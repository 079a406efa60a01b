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

/// One synergy of a detection run, as persistence first sees it: its id and the fingerprint of its
/// state. The full row (with its JSON detail) is only built when it must be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub id: String,
    pub fingerprint: i64,
}

/// What a detection run stored, and the status of every synergy it detected.
#[derive(Debug, Default)]
pub struct Persisted {
    pub summary: DetectionSummary,
    /// Synergy id → status (`detected` for new ones); exactly the active synergies after the run.
    pub statuses: HashMap<String, String>,
}

/// What persistence reads back of a stored synergy: active, fingerprint, status, first detection.
type Known = (bool, i64, String, chrono::NaiveDateTime);

/// Rows written per transaction: a first detection of a whole territory writes thousands, and one
/// long transaction would hold SQLite's write lock past other writers' busy timeout.
const WRITE_CHUNK: usize = 400;

/// Stores the current detection: new synergies are inserted, known ones whose fingerprint changed (or
/// that come back) are updated — their status is kept —, active ones no longer detected are retired.
/// New synergies and those that come back are published as `synergy.detected`.
/// Only ids, fingerprints and statuses are read back, and `row(i)` builds the full row of
/// `detected[i]` only for rows to write, so a re-detection after one new resource reads little and
/// writes a handful of rows; `last_detected_at` is the time of the detection that last changed the
/// row. Writes go in transactions of at most [`WRITE_CHUNK`] rows (each new synergy with its
/// `synergy.detected` event): an interrupted run leaves a consistent subset, completed by the next.
pub fn persist_detection(
    conn: &mut DbConnection,
    detected: &[Detected],
    row: impl Fn(usize) -> SynergyRow,
) -> Result<Persisted, DbError> {
    let mut known: HashMap<String, Known> = synergies::table
        .select((
            synergies::id,
            (
                synergies::active,
                synergies::fingerprint,
                synergies::status,
                synergies::first_detected_at,
            ),
        ))
        .load::<(String, Known)>(conn)?
        .into_iter()
        .collect();
    let mut summary = DetectionSummary::default();
    let mut statuses = HashMap::with_capacity(detected.len());
    let (mut changed, mut fresh) = (Vec::new(), Vec::new());
    for (i, d) in detected.iter().enumerate() {
        match known.remove(&d.id) {
            Some((active, fingerprint, status, first_detected_at)) => {
                if !active || fingerprint != d.fingerprint {
                    let mut changed_row = row(i);
                    // As stored, for the event of a synergy that comes back.
                    changed_row.status.clone_from(&status);
                    changed_row.first_detected_at = first_detected_at;
                    changed.push((changed_row, !active));
                }
                statuses.insert(d.id.clone(), status);
            }
            None => {
                fresh.push(row(i));
                statuses.insert(d.id.clone(), "detected".to_owned());
            }
        }
    }
    for chunk in changed.chunks(WRITE_CHUNK) {
        super::transaction(conn, |conn| {
            for (row, _) in chunk {
                diesel::update(synergies::table.find(&row.id))
                    .set((
                        synergies::score.eq(row.score),
                        synergies::distance_km.eq(row.distance_km),
                        synergies::quantity.eq(row.quantity),
                        synergies::base_unit.eq(&row.base_unit),
                        synergies::latent.eq(row.latent),
                        synergies::class.eq(&row.class),
                        synergies::detail.eq(&row.detail),
                        synergies::fingerprint.eq(row.fingerprint),
                        synergies::active.eq(true),
                        synergies::last_detected_at.eq(row.last_detected_at),
                        synergies::retired_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
            }
            // A synergy that comes back after it was retired is announced again.
            crate::webhooks::publish_all(
                conn,
                chunk
                    .iter()
                    .filter(|(_, revived)| *revived)
                    .map(|(row, _)| crate::webhooks::events::synergy_detected(row))
                    .collect(),
            )?;
            Ok::<_, DbError>(())
        })?;
    }
    summary.updated = changed.len();
    summary.unchanged = detected.len() - changed.len() - fresh.len();
    for chunk in fresh.chunks(WRITE_CHUNK) {
        super::transaction(conn, |conn| {
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
    // What is left of `known` was not detected this time.
    let retired: Vec<&str> = known
        .iter()
        .filter(|(_, (active, ..))| *active)
        .map(|(id, _)| id.as_str())
        .collect();
    let now = crate::db::now();
    for chunk in retired.chunks(WRITE_CHUNK) {
        super::transaction(conn, |conn| {
            diesel::update(synergies::table.filter(synergies::id.eq_any(chunk.to_vec())))
                .set((
                    synergies::active.eq(false),
                    synergies::retired_at.eq(Some(now)),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })?;
    }
    summary.retired = retired.len();
    Ok(Persisted { summary, statuses })
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<SynergyRow, DbError> {
    synergies::table
        .find(id)
        .select(SynergyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}
