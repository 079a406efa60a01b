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
    /// Keyset cursor: list actors strictly after this (sort name, id).
    pub after: Option<(String, String)>,
    pub limit: i64,
    /// The reader sees non-consenting actors anonymised: `words` never match them (their name,
    /// SIRET and address are not theirs to search), and they sort by id under the empty name,
    /// before the others, so that their place in the list says nothing of their name.
    pub anonymised: bool,
}

impl ActorFilter {
    /// The key the list is sorted by, for a row: what the cursor must hold.
    pub fn sort_name<'a>(&self, row: &'a ActorRow) -> &'a str {
        if self.anonymised && !row.share_with_partners {
            ""
        } else {
            &row.name
        }
    }
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

/// One page of actors ordered by (name, id), the stable sort of the cursor; for an anonymising
/// reader, the non-consenting actors first by id, then the others by (name, id).
pub fn list(conn: &mut DbConnection, filter: &ActorFilter) -> Result<Vec<ActorRow>, DbError> {
    let base = || {
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
        query
    };
    if !filter.anonymised {
        let mut query = base();
        if let Some(after) = &filter.after {
            query = query.filter(after_name(after));
        }
        return Ok(query
            .order((actors::name.asc(), actors::id.asc()))
            .limit(filter.limit)
            .load(conn)?);
    }
    let mut rows = Vec::new();
    let in_hidden_part = filter
        .after
        .as_ref()
        .is_none_or(|(name, _)| name.is_empty());
    // Hidden actors are not searched by words at all.
    if in_hidden_part && filter.words.is_empty() {
        let mut query = base().filter(actors::share_with_partners.eq(false));
        if let Some((_, id)) = &filter.after {
            query = query.filter(actors::id.gt(id.clone()));
        }
        rows = query
            .order(actors::id.asc())
            .limit(filter.limit)
            .load(conn)?;
    }
    let left = filter.limit - rows.len() as i64;
    if left > 0 {
        let mut query = base().filter(actors::share_with_partners.eq(true));
        if let Some(after) = filter.after.as_ref().filter(|(name, _)| !name.is_empty()) {
            query = query.filter(after_name(after));
        }
        rows.extend(
            query
                .order((actors::name.asc(), actors::id.asc()))
                .limit(left)
                .load(conn)?,
        );
    }
    Ok(rows)
}

type Backend = <DbConnection as diesel::Connection>::Backend;

/// Rows strictly after `(name, id)` in (name, id) order.
fn after_name(
    (name, id): &(String, String),
) -> Box<dyn BoxableExpression<actors::table, Backend, SqlType = diesel::sql_types::Bool>> {
    Box::new(
        actors::name
            .gt(name.clone())
            .or(actors::name.eq(name.clone()).and(actors::id.gt(id.clone()))),
    )
}

pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A non-consenting actor as anonymisation needs it: where it is, and what names it in free text.
#[derive(Debug, Clone, Queryable)]
pub struct HiddenRow {
    pub id: String,
    pub name: String,
    pub naf_code: String,
    pub commune_insee: String,
    pub lat: f64,
    pub lng: f64,
    pub siret: Option<String>,
    pub address: Option<String>,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
}

/// The actors that did not consent to be shown to partners: among `ids`, or all of them (free
/// text may name any actor).
pub fn non_consenting(
    conn: &mut DbConnection,
    ids: Option<&[String]>,
) -> Result<Vec<HiddenRow>, diesel::result::Error> {
    let query = || {
        actors::table
            .filter(actors::share_with_partners.eq(false))
            .select((
                actors::id,
                actors::name,
                actors::naf_code,
                actors::commune_insee,
                actors::lat,
                actors::lng,
                actors::siret,
                actors::address,
                actors::contact_name,
                actors::contact_email,
                actors::contact_phone,
            ))
            .into_boxed()
    };
    let Some(ids) = ids else {
        return query().load::<HiddenRow>(conn);
    };
    let mut rows = Vec::new();
    for chunk in ids.chunks(400) {
        rows.extend(
            query()
                .filter(actors::id.eq_any(chunk))
                .load::<HiddenRow>(conn)?,
        );
    }
    Ok(rows)
}

/// What the detection reads of an actor (`detection::ActorInfo`), without the columns it does not.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = actors)]
pub struct ActorInput {
    pub id: String,
    pub name: String,
    pub naf_code: String,
    pub commune_insee: String,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub share_with_partners: bool,
}

/// Every actor as the detection reads it, in storage order.
pub fn detection_input(conn: &mut DbConnection) -> Result<Vec<ActorInput>, DbError> {
    Ok(actors::table.select(ActorInput::as_select()).load(conn)?)
}

/// The actors of `ids` that exist, as the detection reads them (a build after a few changes).
pub fn detection_input_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<ActorInput>, DbError> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        rows.extend(
            actors::table
                .filter(actors::id.eq_any(chunk))
                .select(ActorInput::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}
