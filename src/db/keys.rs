//! API keys, stored as the SHA-256 of the key (never the key itself), and the audit log of writes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{api_keys, audit_log};
use super::{DbConnection, DbError};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    /// JSON list of territory codes; `[]` = national.
    pub territories: String,
    pub key_hash: String,
    /// The first characters of the key, so people can tell their keys apart.
    pub key_prefix: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &ApiKeyRow) -> Result<(), DbError> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The key whose hash is `hash`, unless it was revoked.
pub fn find_active(conn: &mut DbConnection, hash: &str) -> Result<Option<ApiKeyRow>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(hash))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<ApiKeyRow>, DbError> {
    Ok(api_keys::table
        .select(ApiKeyRow::as_select())
        .order((api_keys::created_at, api_keys::id))
        .load(conn)?)
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<ApiKeyRow, DbError> {
    api_keys::table
        .find(id)
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// Revokes a key (idempotent: the first revocation time is kept) and returns it. Its webhook
/// subscriptions are paused in the same transaction: a revoked partner must stop receiving data at
/// once, not when its receiver happens to fail. (The API and `symbiose keys revoke` both come here.)
pub fn revoke(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> Result<ApiKeyRow, DbError> {
    super::transaction(conn, |conn| {
        diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(Some(at)))
        .execute(conn)?;
        let row = get(conn, id)?;
        super::webhooks::pause_for_revoked_key(conn, id, at)?;
        Ok(row)
    })
}

/// Whether the key `id` is missing or revoked.
pub fn is_revoked(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    let found: Option<Option<NaiveDateTime>> = api_keys::table
        .find(id)
        .select(api_keys::revoked_at)
        .first(conn)
        .optional()?;
    Ok(!matches!(found, Some(None)))
}

/// The ids of the revoked keys (few: keys are revoked by hand).
pub fn revoked_ids(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::revoked_at.is_not_null())
        .select(api_keys::id)
        .load(conn)?)
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub at: NaiveDateTime,
    pub key_id: Option<String>,
    pub key_name: String,
    pub method: String,
    /// The route pattern, e.g. `/api/v1/actors/{id}`.
    pub route: String,
    pub path: String,
    pub entity_id: Option<String>,
    pub status: i32,
    pub request_id: Option<String>,
}

/// Stores audit rows in one statement (the caller bounds how many: ten values a row); a multi-row
/// INSERT is built per backend.
pub fn record_all(conn: &mut DbConnection, rows: &[AuditRow]) -> Result<(), DbError> {
    let insert = diesel::insert_into(audit_log::table).values(rows);
    match conn {
        DbConnection::Sqlite(c) => insert.execute(c)?,
        DbConnection::Postgresql(c) => insert.execute(c)?,
    };
    Ok(())
}

/// The newest entries first, before `before` (an `(at, id)` keyset cursor) when given.
pub fn audit_page(
    conn: &mut DbConnection,
    key_id: Option<&str>,
    before: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut query = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(key) = key_id {
        query = query.filter(audit_log::key_id.eq(key.to_owned()));
    }
    if let Some((at, id)) = before {
        query = query.filter(
            audit_log::at
                .lt(at)
                .or(audit_log::at.eq(at).and(audit_log::id.lt(id))),
        );
    }
    Ok(query
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .load(conn)?)
}
