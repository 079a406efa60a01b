//! Resources: storage and filtered, keyset-paginated listing across actors.

use diesel::prelude::*;

use super::actors::escape_like;
use super::models::{ActorRow, ResourceRow};
use super::schema::{actors, resources};
use super::{DbConnection, DbError, TerritoryScope};

#[derive(Debug, Default, Clone)]
pub struct ResourceFilter {
    pub actor_id: Option<String>,
    pub kind: Option<String>,
    pub category: Option<String>,
    /// Six-digit EWC code prefix (`10`, `1001`).
    pub ewc_prefix: Option<String>,
    /// Resource class prefix (`material/biomass`).
    pub class_prefix: Option<String>,
    pub scope: TerritoryScope,
    /// Keyset cursor: resources with an id strictly greater.
    pub after: Option<String>,
    pub limit: i64,
}

pub fn insert(conn: &mut DbConnection, row: &ResourceRow) -> Result<(), DbError> {
    diesel::insert_into(resources::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<ResourceRow, DbError> {
    resources::table
        .find(id)
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// A resource with its actor, in one query.
pub fn get_with_actor(
    conn: &mut DbConnection,
    id: &str,
) -> Result<(ResourceRow, ActorRow), DbError> {
    resources::table
        .find(id)
        .inner_join(actors::table)
        .select((ResourceRow::as_select(), ActorRow::as_select()))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

pub fn update(conn: &mut DbConnection, row: &ResourceRow) -> Result<(), DbError> {
    let n = diesel::update(resources::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    if n == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Ids of an actor's resources, in id order.
pub fn ids_of_actor(conn: &mut DbConnection, actor_id: &str) -> Result<Vec<String>, DbError> {
    Ok(resources::table
        .filter(resources::actor_id.eq(actor_id))
        .select(resources::id)
        .order(resources::id)
        .load(conn)?)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    let n = diesel::delete(resources::table.find(id)).execute(conn)?;
    if n == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// One page of resources ordered by id, with their actors.
pub fn list(
    conn: &mut DbConnection,
    filter: &ResourceFilter,
) -> Result<Vec<(ResourceRow, ActorRow)>, DbError> {
    let mut query = resources::table
        .inner_join(actors::table)
        .select((ResourceRow::as_select(), ActorRow::as_select()))
        .into_boxed();
    if let Some(actor) = &filter.actor_id {
        query = query.filter(resources::actor_id.eq(actor.clone()));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(resources::kind.eq(kind.clone()));
    }
    if let Some(category) = &filter.category {
        query = query.filter(resources::category.eq(category.clone()));
    }
    if let Some(prefix) = &filter.ewc_prefix {
        query = query.filter(
            resources::ewc_code
                .like(format!("{}%", escape_like(prefix)))
                .escape('\\'),
        );
    }
    if let Some(prefix) = &filter.class_prefix {
        query = query.filter(
            resources::class
                .like(format!("{}%", escape_like(prefix)))
                .escape('\\'),
        );
    }
    query = super::filter_by_scope!(query, &filter.scope);
    if let Some(after) = &filter.after {
        query = query.filter(resources::id.gt(after.clone()));
    }
    Ok(query
        .order(resources::id.asc())
        .limit(filter.limit)
        .load(conn)?)
}

/// What the detection reads of a resource (`detection::build`), without the columns it does not.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = resources)]
pub struct ResourceInput {
    pub id: String,
    pub actor_id: String,
    pub kind: String,
    pub class: String,
    pub label: String,
    pub ewc_code: Option<String>,
    pub hazardous: bool,
    pub accepted_ewc: String,
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<String>,
    pub months: i32,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
}

/// The resources of `ids` that exist, as the detection reads them (a build after a few changes).
pub fn detection_input_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<ResourceInput>, DbError> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        rows.extend(
            resources::table
                .filter(resources::id.eq_any(chunk))
                .select(ResourceInput::as_select())
                .load(conn)?,
        );
    }
    Ok(rows)
}

/// How many resources are stored (a capacity for [`each_detection_input`]'s caller).
pub fn count(conn: &mut DbConnection) -> Result<usize, DbError> {
    let n: i64 = resources::table.count().get_result(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Every resource as the detection reads it, in storage order (the detection sorts by id), handed
/// to `each` row by row: the rows are read once, and collecting them first held ~250 MB more at a
/// million resources.
pub fn each_detection_input(
    conn: &mut DbConnection,
    mut each: impl FnMut(ResourceInput),
) -> Result<(), DbError> {
    let rows = resources::table
        .select(ResourceInput::as_select())
        .load_iter::<ResourceInput, diesel::connection::DefaultLoadingMode>(conn)?;
    for row in rows {
        each(row?);
    }
    Ok(())
}
