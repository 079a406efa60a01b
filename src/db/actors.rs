//! Actors: storage, keyset-paginated listing with territory / NAF / text filters.

use diesel::prelude::*;

use super::models::ActorRow;
use super::schema::actors;
use super::{DbConnection, DbError, TerritoryScope, conflict_on_unique};

const DUPLICATE_SIRET: &str = "an actor with this SIRET already exists";

#[derive(Debug, Default, Clone)]
pub struct ActorFilter {
    pub scope: TerritoryScope,
    /// NAF code prefix, as stored (`23.5`, `16.10`).
    pub naf_prefix: Option<String>,
    /// Folded words that must all appear in the actor's search text.
    pub words: Vec<String>,
    /// Keyset cursor: list actors strictly after this (name, id).
    pub after: Option<(String, String)>,
    pub limit: i64,
}

pub fn insert(conn: &mut DbConnection, row: &ActorRow) -> Result<(), DbError> {
    diesel::insert_into(actors::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
        .map_err(|e| conflict_on_unique(e, DUPLICATE_SIRET))
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<ActorRow, DbError> {
    actors::table
        .find(id)
        .select(ActorRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

pub fn update(conn: &mut DbConnection, row: &ActorRow) -> Result<(), DbError> {
    let n = diesel::update(actors::table.find(&row.id))
        .set(row)
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, DUPLICATE_SIRET))?;
    if n == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes an actor; its resources go with it (foreign key ON DELETE CASCADE).
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    let n = diesel::delete(actors::table.find(id)).execute(conn)?;
    if n == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes an actor (its resources go with it) and records `events` in the same transaction —
/// before the deletion, since routing and anonymisation read the actor's commune and consent.
/// Answers a conflict when the actor's resources are no longer `expected` (one was declared or
/// deleted since the events were built), so that no resource leaves without its event.
pub fn delete_with_events(
    conn: &mut DbConnection,
    id: &str,
    mut expected: Vec<String>,
    events: Vec<crate::webhooks::Event>,
) -> Result<(), DbError> {
    expected.sort();
    super::transaction(conn, |conn| {
        if super::resources::ids_of_actor(conn, id)? != expected {
            return Err(DbError::Conflict(format!(
                "the resources of actor `{id}` changed during its deletion; retry"
            )));
        }
        crate::webhooks::publish_all(conn, events)?;
        delete(conn, id)
    })
}

pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(actors::table.count().get_result(conn)?)
}

pub fn siret_exists(conn: &mut DbConnection, siret: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        actors::table.filter(actors::siret.eq(siret)),
    ))
    .get_result(conn)?)
}

/// One page of actors ordered by (name, id), the stable sort of the cursor.
pub fn list(conn: &mut DbConnection, filter: &ActorFilter) -> Result<Vec<ActorRow>, DbError> {
    let mut query = actors::table.select(ActorRow::as_select()).into_boxed();
    query = super::filter_by_scope!(query, &filter.scope);
    if let Some(prefix) = &filter.naf_prefix {
        query = query.filter(
            actors::naf_code
                .like(format!("{}%", escape_like(prefix)))
                .escape('\\'),
        );
    }
    for word in &filter.words {
        query = query.filter(
            actors::search_text
                .like(format!("%{}%", escape_like(word)))
                .escape('\\'),
        );
    }
    if let Some((name, id)) = &filter.after {
        query = query.filter(
            actors::name
                .gt(name.clone())
                .or(actors::name.eq(name.clone()).and(actors::id.gt(id.clone()))),
        );
    }
    Ok(query
        .order((actors::name.asc(), actors::id.asc()))
        .limit(filter.limit)
        .load(conn)?)
}

pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An actor as anonymisation needs it: (id, name, NAF code, commune, lat, lng).
pub type PlaceFacts = (String, String, String, String, f64, f64);

/// Among `ids`, the actors that did not consent to be shown to partners.
pub fn non_consenting(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<PlaceFacts>, diesel::result::Error> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(400) {
        rows.extend(
            actors::table
                .filter(actors::id.eq_any(chunk))
                .filter(actors::share_with_partners.eq(false))
                .select((
                    actors::id,
                    actors::name,
                    actors::naf_code,
                    actors::commune_insee,
                    actors::lat,
                    actors::lng,
                ))
                .load::<PlaceFacts>(conn)?,
        );
    }
    Ok(rows)
}
