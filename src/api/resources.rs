//! Resources (offers and needs) under their actor, and the cross-actor resource list.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actors::{load_actor, merge_patch};
use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery, parse_json};
use super::{Page, State, check_limit, decode_cursor, paginate};
use crate::auth::Caller;
use crate::db::{self, models::ResourceRow, resources::ResourceFilter};
use crate::domain::resource::{
    Availability, AvailabilityKind, Category, Period, PhysicalState, Quantity, ResourceInput,
    ResourceKind, Unit,
};
use crate::webhooks::EventType;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_for_actor)
        .service(create_resource)
        .service(list_resources)
        .service(get_resource)
        .service(replace_resource)
        .service(patch_resource)
        .service(delete_resource);
}

/// A resource as the API shows it: as declared, plus what the service derives (class, hazardous
/// flag, yearly amount in a base unit).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceOut {
    pub id: String,
    pub actor_id: String,
    pub kind: ResourceKind,
    pub category: Category,
    pub class: String,
    pub label: String,
    pub description: Option<String>,
    pub ewc_code: Option<String>,
    pub ewc_label: Option<String>,
    /// Derived from the EWC code (`*` entries of the List of Waste).
    pub hazardous: bool,
    pub accepted_ewc: Vec<String>,
    pub quantity: Option<Quantity>,
    /// The quantity per year in `base_unit` (t, m3, MWh or unit).
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<String>,
    pub availability: Availability,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
    pub physical_state: Option<PhysicalState>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Rows were validated on the way in; a value that no longer parses (an old spelling) shows as the
/// first variant rather than failing the whole list.
pub fn resource_out(state: &State, row: ResourceRow) -> ResourceOut {
    let input = input_of(&row);
    ResourceOut {
        ewc_label: row
            .ewc_code
            .as_deref()
            .and_then(|c| state.reference.ewc.get(c))
            .map(|e| e.label_fr.clone()),
        id: row.id,
        actor_id: row.actor_id,
        kind: input.kind,
        category: input.category,
        class: row.class,
        label: row.label,
        description: row.description,
        ewc_code: row.ewc_code,
        hazardous: row.hazardous,
        accepted_ewc: input.accepted_ewc,
        quantity: input.quantity,
        yearly_quantity: row.yearly_quantity,
        base_unit: row.base_unit,
        availability: input.availability.unwrap_or_default(),
        temperature_c: row.temperature_c,
        max_distance_km: row.max_distance_km,
        physical_state: input.physical_state,
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
    }
}

/// The client's view of a stored resource, for merge patches.
fn input_of(row: &ResourceRow) -> ResourceInput {
    let quantity = match (
        row.quantity_value,
        row.quantity_unit.as_deref(),
        row.quantity_period.as_deref(),
    ) {
        (Some(value), Some(unit), Some(period)) => Unit::parse(unit)
            .zip(Period::parse(period))
            .map(|(unit, period)| Quantity {
                value,
                unit,
                period,
            }),
        _ => None,
    };
    let kind = AvailabilityKind::parse(&row.availability).unwrap_or(AvailabilityKind::Continuous);
    let months = (1..=12u8)
        .filter(|m| row.months & (1 << (m - 1)) != 0)
        .collect();
    ResourceInput {
        kind: ResourceKind::parse(&row.kind).unwrap_or(ResourceKind::Offer),
        category: Category::parse(&row.category).unwrap_or(Category::Material),
        class: Some(row.class.clone()),
        label: row.label.clone(),
        description: row.description.clone(),
        ewc_code: row.ewc_code.clone(),
        accepted_ewc: serde_json::from_str(&row.accepted_ewc).unwrap_or_default(),
        quantity,
        availability: Some(Availability {
            kind,
            months: if kind == AvailabilityKind::Seasonal {
                months
            } else {
                Vec::new()
            },
            from: row.available_from,
            until: row.available_until,
        }),
        temperature_c: row.temperature_c,
        max_distance_km: row.max_distance_km,
        physical_state: row.physical_state.as_deref().and_then(PhysicalState::parse),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceQuery {
    pub kind: Option<ResourceKind>,
    pub category: Option<Category>,
    /// EWC code prefix (`10`, `10 01`, `100102`).
    pub ewc: Option<String>,
    /// Resource class prefix (`material/biomass`).
    pub class: Option<String>,
    /// Territory code at any level.
    pub territory: Option<String>,
    pub actor: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

async fn list_page(state: &State, query: ResourceQuery) -> Result<HttpResponse, ApiError> {
    let limit = check_limit(query.limit)?;
    let scope = match query
        .territory
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(code) => super::territories::resolve(state, code).await?.1,
        None => db::TerritoryScope::All,
    };
    let ewc_prefix = query
        .ewc
        .as_deref()
        .map(crate::reference::ewc::normalise_code)
        .filter(|p| !p.is_empty());
    if let Some(p) = &ewc_prefix
        && (p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::field(
            "ewc",
            "must be up to six digits of a List of Waste code",
        ));
    }
    let filter = ResourceFilter {
        actor_id: query.actor,
        kind: query.kind.map(|k| k.as_str().to_owned()),
        category: query.category.map(|c| c.as_str().to_owned()),
        ewc_prefix,
        class_prefix: query.class.filter(|c| !c.is_empty()),
        scope,
        after: query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(state, c))
            .transpose()?,
        limit: limit + 1,
    };
    let rows = db::run(&state.pool, move |conn| db::resources::list(conn, &filter)).await?;
    let page: Page<ResourceOut> = paginate(
        state,
        rows,
        limit,
        |(r, _)| r.id.clone(),
        |(r, _)| resource_out(state, r),
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Resources across actors, filtered.
#[utoipa::path(tag = "resources", params(ResourceQuery), responses((status = 200, body = Page<ResourceOut>), (status = 422, body = super::error::Problem)))]
#[get("/resources")]
pub async fn list_resources(
    state: State,
    caller: Caller,
    query: ValidQuery<ResourceQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.territory = caller
        .list_territory(&state, query.territory.as_deref())
        .await?;
    list_page(&state, query).await
}

/// The resources of one actor.
#[utoipa::path(tag = "resources", params(ResourceQuery), responses((status = 200, body = Page<ResourceOut>), (status = 404, body = super::error::Problem)))]
#[get("/actors/{id}/resources")]
pub async fn list_for_actor(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: ValidQuery<ResourceQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = load_actor(&state, &caller, &id).await?;
    let mut query = query.0;
    query.actor = Some(actor.id);
    list_page(&state, query).await
}

/// Declare a resource (offer or need) of an actor.
#[utoipa::path(tag = "resources", request_body = ResourceInput, responses((status = 201, body = ResourceOut), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[post("/actors/{id}/resources")]
pub async fn create_resource(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<ResourceInput>,
) -> Result<HttpResponse, ApiError> {
    let actor = load_actor(&state, &caller, &id).await?;
    let valid = body
        .0
        .validate(&state.reference, state.classifier.as_ref())
        .map_err(ApiError::Validation)?;
    let now = crate::db::now();
    let row = ResourceRow::from_valid(uuid::Uuid::new_v4().to_string(), actor.id, &valid, now, now);
    let stored = row.clone();
    let event = webhook_event(&state, EventType::ResourceCreated, &row)?;
    db::run(&state.pool, move |conn| {
        db::transaction(conn, |conn| {
            db::resources::insert(conn, &stored)?;
            Ok(crate::webhooks::publish(conn, event)?)
        })
    })
    .await?;
    state.detection.touch();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/resources/{}", row.id)))
        .json(resource_out(&state, row)))
}

/// The webhook event of a write: the resource as this API shows it.
pub(crate) fn webhook_event(
    state: &State,
    kind: EventType,
    row: &ResourceRow,
) -> Result<crate::webhooks::Event, ApiError> {
    let out = serde_json::to_value(resource_out(state, row.clone()))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(crate::webhooks::events::resource(kind, out, &row.actor_id))
}

/// A resource whose actor the caller may see (404, or 403 outside the caller's territories).
pub async fn load_resource(
    state: &State,
    caller: &Caller,
    id: &str,
) -> Result<ResourceRow, ApiError> {
    Ok(load_resource_with_actor(state, caller, id).await?.0)
}

/// [`load_resource`] with the resource's actor, read in the same query (one round trip).
pub async fn load_resource_with_actor(
    state: &State,
    caller: &Caller,
    id: &str,
) -> Result<(ResourceRow, crate::db::models::ActorRow), ApiError> {
    let owned = id.to_owned();
    let (row, actor) = db::run(&state.pool, move |conn| {
        db::resources::get_with_actor(conn, &owned)
    })
    .await
    .map_err(|e| match e {
        db::DbError::NotFound => ApiError::NotFound(format!("resource `{id}`")),
        other => other.into(),
    })?;
    caller.check_commune(state, &actor.commune_insee).await?;
    Ok((row, actor))
}

/// One resource.
#[utoipa::path(tag = "resources", responses((status = 200, body = ResourceOut), (status = 404, body = super::error::Problem)))]
#[get("/resources/{id}")]
pub async fn get_resource(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = load_resource(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(resource_out(&state, row)))
}

async fn store_update(
    state: &State,
    existing: ResourceRow,
    input: ResourceInput,
) -> Result<HttpResponse, ApiError> {
    let valid = input
        .validate(&state.reference, state.classifier.as_ref())
        .map_err(ApiError::Validation)?;
    let row = ResourceRow::from_valid(
        existing.id.clone(),
        existing.actor_id.clone(),
        &valid,
        existing.created_at,
        crate::db::now(),
    );
    let stored = row.clone();
    let event = webhook_event(state, EventType::ResourceUpdated, &row)?;
    db::run(&state.pool, move |conn| {
        db::transaction(conn, |conn| {
            db::resources::update(conn, &stored)?;
            Ok(crate::webhooks::publish(conn, event)?)
        })
    })
    .await?;
    state.detection.touch();
    Ok(HttpResponse::Ok().json(resource_out(state, row)))
}

/// Replace a resource.
#[utoipa::path(tag = "resources", request_body = ResourceInput, responses((status = 200, body = ResourceOut), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[put("/resources/{id}")]
pub async fn replace_resource(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<ResourceInput>,
) -> Result<HttpResponse, ApiError> {
    let existing = load_resource(&state, &caller, &id).await?;
    store_update(&state, existing, body.0).await
}

/// Change some fields of a resource (JSON merge patch, RFC 7396).
#[utoipa::path(tag = "resources", request_body = Object, responses((status = 200, body = ResourceOut), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[patch("/resources/{id}")]
pub async fn patch_resource(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let existing = load_resource(&state, &caller, &id).await?;
    if !body.0.is_object() {
        return Err(ApiError::field(
            "body",
            "a merge patch must be a JSON object",
        ));
    }
    let mut current =
        serde_json::to_value(input_of(&existing)).map_err(|e| ApiError::Internal(e.to_string()))?;
    // A new EWC code re-derives the class unless the patch sets one.
    if body.0.get("ewc_code").is_some() && body.0.get("class").is_none() {
        current["class"] = serde_json::Value::Null;
    }
    merge_patch(&mut current, &body.0);
    let bytes = serde_json::to_vec(&current).map_err(|e| ApiError::Internal(e.to_string()))?;
    let input: ResourceInput = parse_json(&bytes)?;
    store_update(&state, existing, input).await
}

/// Delete a resource.
#[utoipa::path(tag = "resources", responses((status = 204), (status = 404, body = super::error::Problem)))]
#[delete("/resources/{id}")]
pub async fn delete_resource(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let existing = load_resource(&state, &caller, &id).await?;
    let event = webhook_event(&state, EventType::ResourceDeleted, &existing)?;
    db::run(&state.pool, move |conn| {
        db::transaction(conn, |conn| {
            db::resources::delete(conn, &existing.id)?;
            Ok(crate::webhooks::publish(conn, event)?)
        })
    })
    .await
    .map_err(|e| match e {
        db::DbError::NotFound => ApiError::NotFound(format!("resource `{id}`")),
        other => other.into(),
    })?;
    state.detection.touch();
    Ok(HttpResponse::NoContent().finish())
}
