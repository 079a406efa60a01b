//! Actors: create, read, replace, patch, delete, list with filters and cursor pagination.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery, parse_json};
use super::{Page, State, check_limit, decode_cursor, paginate};
use crate::auth::Caller;
use crate::db::{self, actors::ActorFilter, models::ActorRow};
use crate::domain::actor::{ActorInput, Contact};
use crate::reference::text;
use crate::webhooks::EventType;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_actors)
        .service(create_actor)
        .service(get_actor)
        .service(replace_actor)
        .service(patch_actor)
        .service(delete_actor);
}

/// An actor as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorOut {
    pub id: String,
    pub name: String,
    pub siret: Option<String>,
    pub naf_code: String,
    pub naf_label: Option<String>,
    pub address: Option<String>,
    pub commune_insee: String,
    pub commune_name: Option<String>,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub contact: Contact,
    pub share_with_partners: bool,
    /// Demo data: illustrative, not a real declaration by this establishment.
    pub illustrative: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn actor_out(state: &State, row: ActorRow) -> ActorOut {
    ActorOut {
        naf_label: state
            .reference
            .naf
            .get(&row.naf_code)
            .map(|n| n.label_fr.clone()),
        commune_name: state
            .reference
            .geo
            .commune(&row.commune_insee)
            .map(|c| c.name.clone()),
        contact: Contact {
            name: row.contact_name,
            email: row.contact_email,
            phone: row.contact_phone,
        },
        id: row.id,
        name: row.name,
        siret: row.siret,
        naf_code: row.naf_code,
        address: row.address,
        commune_insee: row.commune_insee,
        departement: row.departement,
        region: row.region,
        epci: row.epci,
        lat: row.lat,
        lng: row.lng,
        share_with_partners: row.share_with_partners,
        illustrative: row.illustrative,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn input_of(row: &ActorRow) -> ActorInput {
    ActorInput {
        name: row.name.clone(),
        siret: row.siret.clone(),
        naf_code: row.naf_code.clone(),
        address: row.address.clone(),
        commune_insee: row.commune_insee.clone(),
        lat: Some(row.lat),
        lng: Some(row.lng),
        contact: Some(Contact {
            name: row.contact_name.clone(),
            email: row.contact_email.clone(),
            phone: row.contact_phone.clone(),
        }),
        share_with_partners: row.share_with_partners,
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ActorQuery {
    /// Territory code at any level (`R27`, `21`, EPCI SIREN, commune INSEE code, custom zone).
    pub territory: Option<String>,
    /// NAF code prefix (`10.5`, `16`).
    pub naf: Option<String>,
    /// Words in the name, address or SIRET (accents and case ignored). Partners and public readers
    /// search actors that consented only: the others' name, address and SIRET are not shown to them.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List actors, ordered by name (for partners and public readers, actors shown anonymous come
/// first, in an order that says nothing of their names).
#[utoipa::path(tag = "actors", params(ActorQuery), responses((status = 200, body = Page<ActorOut>), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[get("/actors")]
pub async fn list_actors(
    state: State,
    caller: Caller,
    query: ValidQuery<ActorQuery>,
) -> Result<HttpResponse, ApiError> {
    list_actors_page(&state, &caller, query.0).await
}

pub async fn list_actors_page(
    state: &State,
    caller: &Caller,
    query: ActorQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = check_limit(query.limit)?;
    let scope = match caller
        .list_territory(state, query.territory.as_deref())
        .await?
    {
        Some(code) => super::territories::resolve(state, &code).await?.1,
        None => db::TerritoryScope::All,
    };
    let after = match &query.cursor {
        Some(c) => {
            let key = decode_cursor(state, c)?;
            let (name, id) = key
                .split_once('\u{1f}')
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?;
            Some((name.to_owned(), id.to_owned()))
        }
        None => None,
    };
    let filter = ActorFilter {
        scope,
        naf_prefix: query
            .naf
            .as_deref()
            .map(|n| n.trim().to_uppercase())
            .filter(|n| !n.is_empty()),
        words: query.q.as_deref().map(text::words).unwrap_or_default(),
        after,
        limit: limit + 1,
        anonymised: caller.anonymises(),
    };
    let sorter = filter.clone();
    let rows = db::run(&state.pool, move |conn| db::actors::list(conn, &filter)).await?;
    let page = paginate(
        state,
        rows,
        limit,
        |r| format!("{}\u{1f}{}", sorter.sort_name(r), r.id),
        |r| actor_out(state, r),
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Create an actor.
#[utoipa::path(tag = "actors", request_body = ActorInput, responses((status = 201, body = ActorOut), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[post("/actors")]
pub async fn create_actor(
    state: State,
    caller: Caller,
    body: ValidJson<ActorInput>,
) -> Result<HttpResponse, ApiError> {
    let valid = body
        .0
        .validate(&state.reference)
        .map_err(ApiError::Validation)?;
    caller.check_commune(&state, &valid.commune_insee).await?;
    let now = crate::db::now();
    let row = ActorRow::from_valid(uuid::Uuid::new_v4().to_string(), &valid, false, now, now);
    let stored = row.clone();
    db::run(&state.pool, move |conn| db::actors::insert(conn, &stored)).await?;
    state.detection.touch();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/actors/{}", row.id)))
        .json(actor_out(&state, row)))
}

/// An actor the caller may see: 404 when there is none, 403 when it lies outside the caller's
/// territories.
pub async fn load_actor(state: &State, caller: &Caller, id: &str) -> Result<ActorRow, ApiError> {
    let owned = id.to_owned();
    let row = db::run(&state.pool, move |conn| db::actors::get(conn, &owned))
        .await
        .map_err(|e| match e {
            db::DbError::NotFound => ApiError::NotFound(format!("actor `{id}`")),
            other => other.into(),
        })?;
    caller.check_commune(state, &row.commune_insee).await?;
    Ok(row)
}

/// One actor.
#[utoipa::path(tag = "actors", responses((status = 200, body = ActorOut), (status = 404, body = super::error::Problem)))]
#[get("/actors/{id}")]
pub async fn get_actor(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = load_actor(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(actor_out(&state, row)))
}

async fn store_update(
    state: &State,
    caller: &Caller,
    existing: ActorRow,
    input: ActorInput,
) -> Result<HttpResponse, ApiError> {
    let valid = input
        .validate(&state.reference)
        .map_err(ApiError::Validation)?;
    // Moving an actor out of the caller's territories is as forbidden as creating it there.
    caller.check_commune(state, &valid.commune_insee).await?;
    let row = ActorRow::from_valid(
        existing.id.clone(),
        &valid,
        existing.illustrative,
        existing.created_at,
        crate::db::now(),
    );
    let stored = row.clone();
    db::run(&state.pool, move |conn| db::actors::update(conn, &stored)).await?;
    if crate::detection::affects_detection(&existing, &row) {
        state.detection.touch();
    }
    Ok(HttpResponse::Ok().json(actor_out(state, row)))
}

/// Replace an actor (every field; absent optional fields are cleared).
#[utoipa::path(tag = "actors", request_body = ActorInput, responses((status = 200, body = ActorOut), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[put("/actors/{id}")]
pub async fn replace_actor(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<ActorInput>,
) -> Result<HttpResponse, ApiError> {
    let existing = load_actor(&state, &caller, &id).await?;
    store_update(&state, &caller, existing, body.0).await
}

/// Change some fields of an actor (JSON merge patch, RFC 7396).
#[utoipa::path(tag = "actors", request_body = Object, responses((status = 200, body = ActorOut), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[patch("/actors/{id}")]
pub async fn patch_actor(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let existing = load_actor(&state, &caller, &id).await?;
    let mut current =
        serde_json::to_value(input_of(&existing)).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !body.0.is_object() {
        return Err(ApiError::field(
            "body",
            "a merge patch must be a JSON object",
        ));
    }
    // Moving the commune without new coordinates re-centres the actor on the new commune.
    if body.0.get("commune_insee").is_some()
        && body.0.get("lat").is_none()
        && body.0.get("lng").is_none()
    {
        current["lat"] = serde_json::Value::Null;
        current["lng"] = serde_json::Value::Null;
    }
    merge_patch(&mut current, &body.0);
    let bytes = serde_json::to_vec(&current).map_err(|e| ApiError::Internal(e.to_string()))?;
    let input: ActorInput = parse_json(&bytes)?;
    store_update(&state, &caller, existing, input).await
}

/// Delete an actor and its resources (409 if a resource of it is declared or deleted meanwhile).
#[utoipa::path(tag = "actors", responses((status = 204), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem)))]
#[delete("/actors/{id}")]
pub async fn delete_actor(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    load_actor(&state, &caller, &id).await?;
    // Its resources go with it: subscribers get a `resource.deleted` for each, written in the
    // deletion's transaction, as when a resource is deleted on its own.
    let owned = id.clone();
    let resources = db::run(&state.pool, move |conn| {
        db::resources::list(
            conn,
            &db::resources::ResourceFilter {
                actor_id: Some(owned),
                limit: i64::MAX,
                ..Default::default()
            },
        )
    })
    .await?;
    let expected: Vec<String> = resources.iter().map(|(r, _)| r.id.clone()).collect();
    let events = resources
        .iter()
        .map(|(r, _)| super::resources::webhook_event(&state, EventType::ResourceDeleted, r))
        .collect::<Result<Vec<_>, _>>()?;
    let owned = id.clone();
    db::run(&state.pool, move |conn| {
        db::actors::delete_with_events(conn, &owned, expected, events)
    })
    .await
    .map_err(|e| match e {
        db::DbError::NotFound => ApiError::NotFound(format!("actor `{id}`")),
        other => other.into(),
    })?;
    state.detection.touch();
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
