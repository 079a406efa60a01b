//! What changed in the database since a server last looked: one counter per kind of change, bumped
//! by triggers in each writer's transaction (migration `change_versions`), so writes made through
//! another server or the CLI are seen by every server following them (`detection::follow_changes`);
//! and the change feed of actors and resources ([`changed_since`]), from which a build reads only
//! the rows changed since the previous one.

use diesel::prelude::*;

use super::schema::{change_versions, data_changes, data_changes_state};
use super::{DbConnection, DbError};

/// The kind of change API keys bump (a counter's row, and the payload of its notification).
pub const KEYS: &str = "keys";

/// The counters, as read together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    /// Actors and resources: the detection's input.
    pub data: i64,
    /// Stored synergies: statuses, realised values.
    pub decisions: i64,
    /// API keys.
    pub keys: i64,
}

pub fn versions(conn: &mut DbConnection) -> Result<Versions, DbError> {
    let rows: Vec<(String, i64)> = change_versions::table
        .select((change_versions::kind, change_versions::version))
        .load(conn)?;
    let mut out = Versions::default();
    for (kind, version) in rows {
        match kind.as_str() {
            "data" => out.data = version,
            "decisions" => out.decisions = version,
            KEYS => out.keys = version,
            _ => {}
        }
    }
    Ok(out)
}

/// The actors and resources changed between two `data` versions, as the change feed records them
/// (migration `data_changes`): ids, sorted and distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    pub actors: Vec<String>,
    pub resources: Vec<String>,
}

impl Changed {
    pub fn len(&self) -> usize {
        self.actors.len() + self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rows changed in versions (`after`, `through`]: `None` when the feed no longer holds all of
/// them (pruned past `after`, or a counter gone back) or when more than `limit` rows changed —
/// reading every row then costs about as much as reading these.
pub fn changed_since(
    conn: &mut DbConnection,
    after: i64,
    through: i64,
    limit: usize,
) -> Result<Option<Changed>, DbError> {
    // A counter behind the previous build's: the database was replaced (a restored backup).
    if through < after {
        return Ok(None);
    }
    // A row changed many times is recorded each time: the cap on records is a few times the limit.
    let cap = limit.saturating_mul(4).saturating_add(1);
    let records: Vec<(String, String)> = data_changes::table
        .filter(data_changes::version.gt(after))
        .filter(data_changes::version.le(through))
        .select((data_changes::entity, data_changes::entity_id))
        .limit(i64::try_from(cap).unwrap_or(i64::MAX))
        .load(conn)?;
    // Read after the records: a prune that committed before them raised the horizon first.
    let horizon: i64 = data_changes_state::table
        .select(data_changes_state::pruned_through)
        .first(conn)?;
    if horizon > after || records.len() >= cap {
        return Ok(None);
    }
    let mut changed = Changed::default();
    for (entity, id) in records {
        match entity.as_str() {
            "actor" => changed.actors.push(id),
            _ => changed.resources.push(id),
        }
    }
    for ids in [&mut changed.actors, &mut changed.resources] {
        ids.sort_unstable();
        ids.dedup();
    }
    Ok((changed.len() <= limit).then_some(changed))
}

/// Runs a bulk write (an import), inside the caller's transaction, without recording its rows in
/// the change feed one by one: recording stops, `write` runs, and the horizon is raised to the
/// writes' last version before recording resumes, so every server reads every row after it (reading
/// a million records back, and pruning them, would cost more than that). Concurrent writers are
/// recorded as usual: they see recording on until this transaction commits, and on PostgreSQL their
/// versions come after its last.
pub fn unrecorded<T>(
    conn: &mut DbConnection,
    write: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    diesel::update(data_changes_state::table)
        .set(data_changes_state::recording.eq(false))
        .execute(conn)?;
    let written = write(conn)?;
    let latest = versions(conn)?.data;
    diesel::update(data_changes_state::table)
        .set(data_changes_state::recording.eq(true))
        .execute(conn)?;
    diesel::update(data_changes_state::table)
        .filter(data_changes_state::pruned_through.lt(latest))
        .set(data_changes_state::pruned_through.eq(latest))
        .execute(conn)?;
    Ok(written)
}

/// Versions of the feed kept behind the latest: a server whose last build is further behind reads
/// every row (so would one with that many changes to read).
pub const FEED_KEPT: i64 = 50_000;

/// Versions deleted per transaction: a SQLite writer waits for one step, not for the whole prune.
const PRUNE_STEP: i64 = 10_000;

/// Deletes the feed's records older than `FEED_KEPT` versions behind `latest`, once more than twice
/// that many are kept (the horizon goes first, in each step's transaction). How many were deleted.
pub fn prune(conn: &mut DbConnection, latest: i64) -> Result<usize, DbError> {
    let horizon: i64 = data_changes_state::table
        .select(data_changes_state::pruned_through)
        .first(conn)?;
    let target = latest - FEED_KEPT;
    if target - horizon < FEED_KEPT {
        return Ok(0);
    }
    let mut deleted = 0;
    let mut through = horizon;
    while through < target {
        through = (through + PRUNE_STEP).min(target);
        deleted += super::transaction(conn, |conn| -> Result<usize, DbError> {
            diesel::update(data_changes_state::table)
                .filter(data_changes_state::pruned_through.lt(through))
                .set(data_changes_state::pruned_through.eq(through))
                .execute(conn)?;
            Ok(
                diesel::delete(data_changes::table.filter(data_changes::version.le(through)))
                    .execute(conn)?,
            )
        })?;
    }
    Ok(deleted)
}
