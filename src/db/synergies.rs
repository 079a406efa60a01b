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
    pub updated: usize,
    pub retired: usize,
}

/// Stores the current detection: new synergies are inserted, known ones get their new score and
/// detail (their status is kept), active ones no longer detected are retired. One transaction.
pub fn persist_detection(
    conn: &mut DbConnection,
    detected: &[SynergyRow],
) -> Result<DetectionSummary, DbError> {
    conn.transaction(|conn| {
        let known: HashMap<String, bool> = synergies::table
            .select((synergies::id, synergies::active))
            .load::<(String, bool)>(conn)?
            .into_iter()
            .collect();
        let mut summary = DetectionSummary::default();
        let mut fresh = Vec::new();
        for row in detected {
            if known.contains_key(&row.id) {
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
                summary.updated += 1;
            } else {
                fresh.push(row.clone());
            }
        }
        for chunk in fresh.chunks(400) {
            match conn {
                DbConnection::Sqlite(c) => diesel::insert_into(synergies::table)
                    .values(chunk)
                    .execute(c)?,
                DbConnection::Postgresql(c) => diesel::insert_into(synergies::table)
                    .values(chunk)
                    .execute(c)?,
            };
        }
        summary.inserted = fresh.len();
        crate::webhooks::publish_all(
            conn,
            fresh
                .iter()
                .map(crate::webhooks::events::synergy_detected)
                .collect(),
        )?;
        let detected_ids: std::collections::HashSet<&str> =
            detected.iter().map(|r| r.id.as_str()).collect();
        let now = crate::db::now();
        for (id, active) in &known {
            if *active && !detected_ids.contains(id.as_str()) {
                diesel::update(synergies::table.find(id))
                    .set((
                        synergies::active.eq(false),
                        synergies::retired_at.eq(Some(now)),
                    ))
                    .execute(conn)?;
                summary.retired += 1;
            }
        }
        Ok(summary)
    })
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
