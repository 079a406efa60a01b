//! Synergy lifecycle storage: status changes with their history (one transaction each), notes,
//! realised values, and what the KPIs and the AFME impact read.
//!
//! A status change re-reads the current status inside its transaction after taking the row's
//! write lock (a no-op `UPDATE` first: SQLite takes the database write lock, PostgreSQL the row
//! lock), so two concurrent changes from the same status cannot both pass: the second one sees the
//! first one's result and is checked against it.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::models::{ActorRow, SynergyHistoryRow, SynergyNoteRow, SynergyRow};
use super::schema::{actors, synergies, synergy_history, synergy_notes};
use super::{DbConnection, DbError};
use crate::domain::lifecycle::{SynergyStatus, TransitionError, check_transition};

/// Bind parameters per `IN (…)` list.
const CHUNK: usize = 400;

/// A requested status change.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub to: SynergyStatus,
    pub reason: Option<String>,
    pub comment: Option<String>,
}

/// Realised values to store; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, AsChangeset)]
#[diesel(table_name = synergies)]
pub struct RealisedValues {
    #[diesel(column_name = realised_quantity)]
    pub quantity: Option<f64>,
    #[diesel(column_name = realised_diverted_t)]
    pub diverted_t: Option<f64>,
    #[diesel(column_name = realised_co2e_t)]
    pub co2e_t: Option<f64>,
}

impl RealisedValues {
    fn is_empty(&self) -> bool {
        self.quantity.is_none() && self.diverted_t.is_none() && self.co2e_t.is_none()
    }
}

/// What one `PATCH` changes, all in one transaction.
#[derive(Debug, Clone)]
pub struct LifecycleUpdate {
    pub changed_by: String,
    pub at: NaiveDateTime,
    pub status: Option<StatusChange>,
    /// Only allowed when the synergy is implemented, or becomes so with `status`.
    pub realised: Option<RealisedValues>,
    pub note: Option<String>,
}

/// The synergy after the update, with the history entry and note it wrote.
#[derive(Debug, Clone)]
pub struct Updated {
    pub row: SynergyRow,
    pub change: Option<SynergyHistoryRow>,
    pub note: Option<SynergyNoteRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("synergy not found")]
    NotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(
        "realised values can only be entered once the synergy is implemented (it is `{0}`): set status `implemented` first, or in the same request"
    )]
    NotImplemented(SynergyStatus),
    #[error("stored status `{0}` is not a lifecycle status")]
    UnknownStatus(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

fn load(conn: &mut DbConnection, id: &str) -> Result<Option<SynergyRow>, diesel::result::Error> {
    synergies::table
        .find(id)
        .select(SynergyRow::as_select())
        .first(conn)
        .optional()
}

fn exists(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(synergies::table.find(id))).get_result(conn)?)
}

/// Stores a detected synergy on its first decision (`candidate`, its form in the current
/// detection) unless it is stored already; false when there is nothing to store it from. Inside the
/// decision's transaction: two first decisions at once store it once (the second insert does
/// nothing) and then queue on the row lock.
fn materialise(
    conn: &mut DbConnection,
    id: &str,
    candidate: Option<&SynergyRow>,
) -> Result<bool, diesel::result::Error> {
    if diesel::select(diesel::dsl::exists(synergies::table.find(id))).get_result(conn)? {
        return Ok(true);
    }
    let Some(row) = candidate.filter(|row| row.id == id) else {
        return Ok(false);
    };
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(synergies::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Postgresql(c) => diesel::insert_into(synergies::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(true)
}

pub fn status_of(row: &SynergyRow) -> Result<SynergyStatus, LifecycleError> {
    SynergyStatus::parse(&row.status)
        .ok_or_else(|| LifecycleError::UnknownStatus(row.status.clone()))
}

/// Applies a status change, realised values and a note to synergy `id`: all or nothing. A synergy
/// not stored yet is stored from `candidate` (its form in the current detection) in the same
/// transaction.
pub fn apply(
    conn: &mut DbConnection,
    id: &str,
    candidate: Option<&SynergyRow>,
    update: &LifecycleUpdate,
) -> Result<Updated, LifecycleError> {
    super::transaction(conn, |conn| {
        if !materialise(conn, id, candidate)? {
            return Err(LifecycleError::NotFound);
        }
        // Take the write lock before reading the status (see the module comment).
        let locked = diesel::update(synergies::table.find(id))
            .set(synergies::status.eq(synergies::status))
            .execute(conn)?;
        if locked == 0 {
            return Err(LifecycleError::NotFound);
        }
        let row = load(conn, id)?.ok_or(LifecycleError::NotFound)?;
        let current = status_of(&row)?;
        let mut target = current;
        if let Some(change) = &update.status {
            check_transition(current, change.to, change.reason.as_deref())?;
            target = change.to;
        }
        if update.realised.is_some() && target != SynergyStatus::Implemented {
            return Err(LifecycleError::NotImplemented(target));
        }

        let mut change_row = None;
        if let Some(change) = &update.status {
            // History is read in `changed_at` order: keep it strictly increasing per synergy
            // even when two changes fall in the same microsecond.
            let last: Option<NaiveDateTime> = synergy_history::table
                .filter(synergy_history::synergy_id.eq(id))
                .order(synergy_history::changed_at.desc())
                .select(synergy_history::changed_at)
                .first(conn)
                .optional()?;
            let at = match last {
                Some(last) if last >= update.at => last + chrono::Duration::microseconds(1),
                _ => update.at,
            };
            diesel::update(synergies::table.find(id))
                .set((
                    synergies::status.eq(change.to.as_str()),
                    synergies::status_reason.eq(&change.reason),
                    synergies::status_changed_at.eq(Some(at)),
                ))
                .execute(conn)?;
            let entry = SynergyHistoryRow {
                id: Uuid::new_v4().to_string(),
                synergy_id: id.to_owned(),
                changed_by: update.changed_by.clone(),
                changed_at: at,
                from_status: current.as_str().to_owned(),
                to_status: change.to.as_str().to_owned(),
                comment: change.comment.clone(),
                reason: change.reason.clone(),
            };
            diesel::insert_into(synergy_history::table)
                .values(&entry)
                .execute(conn)?;
            crate::webhooks::publish(conn, crate::webhooks::events::status_changed(&row, &entry))?;
            change_row = Some(entry);
        }
        if let Some(realised) = update.realised.as_ref().filter(|r| !r.is_empty()) {
            diesel::update(synergies::table.find(id))
                .set(realised)
                .execute(conn)?;
        }
        let mut note_row = None;
        if let Some(text) = &update.note {
            let note = SynergyNoteRow {
                id: Uuid::new_v4().to_string(),
                synergy_id: id.to_owned(),
                author: update.changed_by.clone(),
                created_at: update.at,
                text: text.clone(),
            };
            diesel::insert_into(synergy_notes::table)
                .values(&note)
                .execute(conn)?;
            note_row = Some(note);
        }
        let row = load(conn, id)?.ok_or(LifecycleError::NotFound)?;
        Ok(Updated {
            row,
            change: change_row,
            note: note_row,
        })
    })
}

/// The stored synergy (retired ones included).
pub fn get(conn: &mut DbConnection, id: &str) -> Result<SynergyRow, DbError> {
    load(conn, id)?.ok_or(DbError::NotFound)
}

/// Status changes of a synergy, oldest first. `NotFound` for a synergy never stored (nobody decided
/// anything about it).
pub fn history(conn: &mut DbConnection, id: &str) -> Result<Vec<SynergyHistoryRow>, DbError> {
    if !exists(conn, id)? {
        return Err(DbError::NotFound);
    }
    Ok(synergy_history::table
        .filter(synergy_history::synergy_id.eq(id))
        .order((synergy_history::changed_at, synergy_history::id))
        .select(SynergyHistoryRow::as_select())
        .load(conn)?)
}

/// Notes of a synergy, oldest first. `NotFound` for a synergy never stored.
pub fn notes(conn: &mut DbConnection, id: &str) -> Result<Vec<SynergyNoteRow>, DbError> {
    if !exists(conn, id)? {
        return Err(DbError::NotFound);
    }
    Ok(synergy_notes::table
        .filter(synergy_notes::synergy_id.eq(id))
        .order((synergy_notes::created_at, synergy_notes::id))
        .select(SynergyNoteRow::as_select())
        .load(conn)?)
}

/// Adds a note to a synergy, storing it first from `candidate` when needed. `NotFound` for a
/// synergy neither stored nor detected.
pub fn add_note(
    conn: &mut DbConnection,
    id: &str,
    candidate: Option<&SynergyRow>,
    author: &str,
    text: &str,
    at: NaiveDateTime,
) -> Result<SynergyNoteRow, DbError> {
    super::transaction(conn, |conn| {
        if !materialise(conn, id, candidate)? {
            return Err(DbError::NotFound);
        }
        let note = SynergyNoteRow {
            id: Uuid::new_v4().to_string(),
            synergy_id: id.to_owned(),
            author: author.to_owned(),
            created_at: at,
            text: text.to_owned(),
        };
        diesel::insert_into(synergy_notes::table)
            .values(&note)
            .execute(conn)?;
        Ok(note)
    })
}

/// What the KPIs and the AFME impact read: every synergy that counts, the statuses each one went
/// through, and the actors taking part.
#[derive(Debug, Default)]
pub struct LifecycleData {
    /// Active synergies, and retired ones a facilitator moved past `detected` (an implemented
    /// synergy whose resource was later deleted still counts; a merely detected one that is no
    /// longer detected does not).
    pub synergies: Vec<SynergyRow>,
    /// Synergy id → every status of its history (from and to), in order.
    pub passed: HashMap<String, Vec<SynergyStatus>>,
    /// Actor id → row, for every provider, receiver and pooling member still stored.
    pub actors: HashMap<String, ActorRow>,
}

/// The actor ids of a pooling group's stored detail.
#[derive(Deserialize)]
struct PoolingMembers {
    #[serde(default)]
    members: Vec<PoolingMember>,
}

#[derive(Deserialize)]
struct PoolingMember {
    actor_id: String,
}

/// The actors taking part in a stored synergy: provider and receiver, or the pooling members.
pub fn parties(row: &SynergyRow) -> Vec<String> {
    let mut out: Vec<String> = [&row.provider_actor_id, &row.receiver_actor_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if row.kind == "pooling"
        && let Ok(group) = serde_json::from_str::<PoolingMembers>(&row.detail)
    {
        out.extend(group.members.into_iter().map(|m| m.actor_id));
    }
    out
}

pub fn lifecycle_data(conn: &mut DbConnection) -> Result<LifecycleData, DbError> {
    let rows: Vec<SynergyRow> = synergies::table
        .filter(
            synergies::active
                .eq(true)
                .or(synergies::status.ne(SynergyStatus::Detected.as_str())),
        )
        .order(synergies::id)
        .select(SynergyRow::as_select())
        .load(conn)?;
    let mut passed: HashMap<String, Vec<SynergyStatus>> = HashMap::new();
    let changes: Vec<(String, String, String)> = synergy_history::table
        .order((
            synergy_history::synergy_id,
            synergy_history::changed_at,
            synergy_history::id,
        ))
        .select((
            synergy_history::synergy_id,
            synergy_history::from_status,
            synergy_history::to_status,
        ))
        .load(conn)?;
    for (id, from, to) in changes {
        let entry = passed.entry(id).or_default();
        entry.extend(SynergyStatus::parse(&from));
        entry.extend(SynergyStatus::parse(&to));
    }
    let wanted: Vec<String> = rows
        .iter()
        .flat_map(parties)
        .collect::<HashSet<String>>()
        .into_iter()
        .collect();
    let mut actors = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(CHUNK) {
        let found: Vec<ActorRow> = actors::table
            .filter(actors::id.eq_any(chunk))
            .select(ActorRow::as_select())
            .load(conn)?;
        actors.extend(found.into_iter().map(|a| (a.id.clone(), a)));
    }
    Ok(LifecycleData {
        synergies: rows,
        passed,
        actors,
    })
}
