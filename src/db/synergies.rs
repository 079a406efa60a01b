//! What people decided about synergies. Candidates live in memory (`detection::Built`) and are
//! recomputed at will; a synergy gets a row here on its first decision (status change, note,
//! realised values: `db::lifecycle`), and from then on re-detection keeps that row in step (figures,
//! active/retired), never its status or history.

use std::collections::HashMap;

use diesel::prelude::*;

use super::models::SynergyRow;
use super::schema::synergies;
use super::{DbConnection, DbError};

/// What a detection run changed, against the previous build of this server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DetectionSummary {
    /// Synergies the previous build did not have (all of them on a server's first build).
    pub inserted: usize,
    /// Synergies whose score, quantity or distance changed.
    pub updated: usize,
    /// Synergies detected again as they were.
    pub unchanged: usize,
    /// Synergies of the previous build no longer detected.
    pub retired: usize,
}

/// The stored decisions after a detection: the status of each, and what the run did to them.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Synergy id → status, for every stored synergy (active or retired).
    pub statuses: HashMap<String, String>,
    /// Stored synergies detected again after they were retired (announced as `synergy.detected`).
    pub revived: usize,
    /// Stored synergies no longer detected, marked retired by this run.
    pub retired: usize,
}

/// What persistence reads back of a stored synergy: active, fingerprint, status, first detection.
type Known = (bool, i64, String, chrono::NaiveDateTime);

/// Rows written per transaction: short transactions never hold SQLite's write lock past other
/// writers' busy timeout.
const WRITE_CHUNK: usize = 400;

/// Keeps the stored decisions in step with a detection. `detected(id)` gives the stored form of
/// synergy `id` (with the fingerprint of its state) when the detection has it. A stored synergy
/// whose figures changed, or that comes back after it was retired, is rewritten (its status,
/// reason, history and realised values are never touched; one that comes back is announced as
/// `synergy.detected` with the status it kept); an active one no longer detected is retired. Reads
/// and writes only the stored decisions, never the candidates.
pub fn sync_decisions(
    conn: &mut DbConnection,
    detected: impl Fn(&str) -> Option<SynergyRow>,
) -> Result<Decisions, DbError> {
    let known: Vec<(String, Known)> = synergies::table
        .select((
            synergies::id,
            (
                synergies::active,
                synergies::fingerprint,
                synergies::status,
                synergies::first_detected_at,
            ),
        ))
        .load(conn)?;
    let mut decisions = Decisions {
        statuses: HashMap::with_capacity(known.len()),
        ..Decisions::default()
    };
    let (mut changed, mut retired) = (Vec::new(), Vec::new());
    for (id, (active, fingerprint, status, first_detected_at)) in known {
        match detected(&id) {
            Some(mut row) if !active || row.fingerprint != fingerprint => {
                // As stored, for the event of a synergy that comes back.
                row.status.clone_from(&status);
                row.first_detected_at = first_detected_at;
                changed.push((row, !active));
            }
            Some(_) => {}
            None if active => retired.push(id.clone()),
            None => {}
        }
        decisions.statuses.insert(id, status);
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
    decisions.revived = changed.iter().filter(|(_, revived)| *revived).count();
    let now = crate::db::now();
    for chunk in retired.chunks(WRITE_CHUNK) {
        super::transaction(conn, |conn| {
            diesel::update(synergies::table.filter(synergies::id.eq_any(chunk)))
                .set((
                    synergies::active.eq(false),
                    synergies::retired_at.eq(Some(now)),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })?;
    }
    decisions.retired = retired.len();
    Ok(decisions)
}

/// Whether a webhook subscription asks for `kind` (a build materialises what it would announce
/// only then).
pub fn subscribed(
    conn: &mut DbConnection,
    kind: crate::webhooks::EventType,
) -> Result<bool, DbError> {
    let wanted = format!("\"{}\"", kind.as_str());
    Ok(super::webhooks::subscribed_event_lists(conn)?
        .iter()
        .any(|list| list.contains(&wanted)))
}

/// Announces synergies that entered the detection (`synergy.detected`) or left it
/// (`synergy.retired`), in transactions of at most [`WRITE_CHUNK`] events, when some subscription
/// listens to that type.
pub fn announce(
    conn: &mut DbConnection,
    kind: crate::webhooks::EventType,
    rows: &[SynergyRow],
) -> Result<(), DbError> {
    if rows.is_empty() || !subscribed(conn, kind)? {
        return Ok(());
    }
    let event = match kind {
        crate::webhooks::EventType::SynergyRetired => crate::webhooks::events::synergy_retired,
        _ => crate::webhooks::events::synergy_detected,
    };
    for chunk in rows.chunks(WRITE_CHUNK) {
        super::transaction(conn, |conn| {
            crate::webhooks::publish_all(conn, chunk.iter().map(event).collect())
        })?;
    }
    Ok(())
}

/// The stored synergy: one somebody decided something about (retired ones included).
pub fn get(conn: &mut DbConnection, id: &str) -> Result<SynergyRow, DbError> {
    synergies::table
        .find(id)
        .select(SynergyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Synergy id → status of every stored synergy.
pub fn statuses(conn: &mut DbConnection) -> Result<HashMap<String, String>, DbError> {
    Ok(synergies::table
        .select((synergies::id, synergies::status))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// How many synergies are stored (those somebody decided something about).
pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(synergies::table.count().get_result(conn)?)
}
