//! What changed in the database since a server last looked: one counter per kind of change, bumped
//! by triggers in each writer's transaction (migration `change_versions`), so writes made through
//! another server or the CLI are seen by every server following them (`detection::follow_changes`).

use diesel::prelude::*;

use super::schema::change_versions;
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
