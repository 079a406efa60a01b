//! Territories: the reference hierarchy (FR → région → département → EPCI → commune) and custom
//! zones (a named set of communes, stored in the database).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::{PageParams, State, page_slice};
use crate::auth::Caller;
use crate::db::{self, TerritoryScope, models::ZoneRow};
use crate::domain::validation::Violations;
use crate::reference::{TerritoryKind, TerritoryRef};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_zones)
        .service(create_zone)
        .service(get_territory)
        .service(children)
        .service(territory_actors)
        .service(delete_zone);
}

/// A territory with, for custom zones, its communes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerritoryOut {
    #[serde(flatten)]
    pub territory: TerritoryRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub communes: Option<Vec<String>>,
}

/// Resolves a territory code to its description and the actor scope it covers.
pub async fn resolve(
    state: &State,
    code: &str,
) -> Result<(TerritoryRef, TerritoryScope), ApiError> {
    let geo = &state.reference.geo;
    if let Some(t) = geo.territory(code) {
        let scope = match t.kind {
            TerritoryKind::Country => TerritoryScope::All,
            TerritoryKind::Region => {
                TerritoryScope::Region(t.code.trim_start_matches('R').to_owned())
            }
            TerritoryKind::Departement => TerritoryScope::Departement(t.code.clone()),
            TerritoryKind::Epci => TerritoryScope::Epci(t.code.clone()),
            TerritoryKind::Commune | TerritoryKind::Zone => TerritoryScope::Commune(t.code.clone()),
        };
        return Ok((t, scope));
    }
    let (zone, communes) = load_zone(state, code).await?;
    Ok((
        zone_ref(state, &zone, &communes),
        TerritoryScope::Zone(zone.code),
    ))
}

async fn load_zone(state: &State, code: &str) -> Result<(ZoneRow, Vec<String>), ApiError> {
    let owned = code.to_owned();
    let found = db::run(&state.pool, move |conn| {
        Ok(match db::zones::get(conn, &owned)? {
            Some(zone) => {
                let communes = db::zones::communes(conn, &owned)?;
                Some((zone, communes))
            }
            None => None,
        })
    })
    .await?;
    found.ok_or_else(|| ApiError::NotFound(format!("territory `{code}`")))
}

fn zone_ref(state: &State, zone: &ZoneRow, communes: &[String]) -> TerritoryRef {
    let members: Vec<_> = communes
        .iter()
        .filter_map(|c| state.reference.geo.commune(c))
        .collect();
    let population: u64 = members.iter().map(|c| c.population).sum();
    let weight: f64 = members.iter().map(|c| c.population.max(1) as f64).sum();
    let mean = |f: fn(&crate::reference::Commune) -> f64| {
        if weight > 0.0 {
            members
                .iter()
                .map(|c| f(c) * c.population.max(1) as f64)
                .sum::<f64>()
                / weight
        } else {
            0.0
        }
    };
    TerritoryRef {
        code: zone.code.clone(),
        kind: TerritoryKind::Zone,
        name: zone.name.clone(),
        parent: None,
        population,
        lat: mean(|c| c.lat),
        lng: mean(|c| c.lng),
    }
}

/// A territory of the hierarchy or a custom zone.
#[utoipa::path(tag = "territories", responses((status = 200, body = TerritoryOut), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}")]
pub async fn get_territory(
    state: State,
    caller: Caller,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    if let Some(t) = state.reference.geo.territory(&code) {
        return Ok(HttpResponse::Ok().json(TerritoryOut {
            territory: t,
            communes: None,
        }));
    }
    let (zone, communes) = load_zone(&state, &code).await?;
    let territory = zone_ref(&state, &zone, &communes);
    Ok(HttpResponse::Ok().json(TerritoryOut {
        territory,
        communes: Some(communes),
    }))
}

/// The territories one level down (for a zone: its communes).
#[utoipa::path(tag = "territories", params(PageParams), responses((status = 200, body = super::Page<TerritoryRef>), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}/children")]
pub async fn children(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    page: ValidQuery<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let geo = &state.reference.geo;
    let kids = match geo.territory(&code) {
        Some(t) => geo.children(&t),
        None => {
            let (_, communes) = load_zone(&state, &code).await?;
            communes.iter().filter_map(|c| geo.territory(c)).collect()
        }
    };
    Ok(HttpResponse::Ok().json(page_slice(&state, &kids, &page.0)?))
}

/// The actors located in a territory (same parameters as `GET /actors`).
#[utoipa::path(tag = "territories", params(super::actors::ActorQuery), responses((status = 200, body = super::Page<super::actors::ActorOut>), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}/actors")]
pub async fn territory_actors(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<super::actors::ActorQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.territory = Some(code.into_inner());
    super::actors::list_actors_page(&state, &caller, query).await
}

/// A custom zone as a client creates it: communes, or whole départements, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneInput {
    /// Letters, digits, `-` and `_`; must not be a code of the reference hierarchy.
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub communes: Vec<String>,
    #[serde(default)]
    pub departements: Vec<String>,
}

/// Custom zones, by code, a page at a time (`limit`, `cursor`).
#[utoipa::path(tag = "territories", params(PageParams), responses((status = 200, body = super::Page<TerritoryRef>), (status = 422, body = super::error::Problem)))]
#[get("/territories")]
pub async fn list_zones(
    state: State,
    caller: Caller,
    page: ValidQuery<PageParams>,
) -> Result<HttpResponse, ApiError> {
    super::check_limit(page.0.limit)?;
    // A scoped key sees the zones lying wholly in its territories, those it may open.
    let coverage = caller.coverage(&state).await?;
    let zones = db::run(&state.pool, |conn| {
        let zones = db::zones::list(conn)?;
        let mut out = Vec::with_capacity(zones.len());
        for z in zones {
            let communes = db::zones::communes(conn, &z.code)?;
            out.push((z, communes));
        }
        Ok(out)
    })
    .await?;
    let refs: Vec<TerritoryRef> = zones
        .iter()
        .filter(|(_, communes)| coverage.covers_all(&state.reference, communes))
        .map(|(z, c)| zone_ref(&state, z, c))
        .collect();
    Ok(HttpResponse::Ok().json(page_slice(&state, &refs, &page.0)?))
}

/// Create a custom zone.
#[utoipa::path(tag = "territories", request_body = ZoneInput, responses((status = 201, body = TerritoryOut), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[post("/territories")]
pub async fn create_zone(
    state: State,
    caller: Caller,
    body: ValidJson<ZoneInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let zone = validate_zone(&state, &input)?;
    let communes = zone_communes(&state, &input)?;
    // A scoped key draws zones inside its own territories only.
    let coverage = caller.coverage(&state).await?;
    if let Some(outside) = communes
        .iter()
        .find(|c| !coverage.covers_commune(&state.reference, c))
    {
        return Err(ApiError::Forbidden(format!(
            "commune `{outside}` is outside the territories of this key"
        )));
    }
    let (row, stored) = (zone.clone(), communes.clone());
    db::run(&state.pool, move |conn| {
        db::zones::insert(conn, &row, &stored)
    })
    .await?;
    let territory = zone_ref(&state, &zone, &communes);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/territories/{}", zone.code)))
        .json(TerritoryOut {
            territory,
            communes: Some(communes),
        }))
}

/// Delete a custom zone with its material flow account (reference territories cannot be deleted).
#[utoipa::path(tag = "territories", responses((status = 204), (status = 404, body = super::error::Problem)))]
#[delete("/territories/{code}")]
pub async fn delete_zone(
    state: State,
    caller: Caller,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = code.into_inner();
    if load_zone(&state, &code).await.is_ok() {
        caller.check_territory(&state, &code).await?;
    }
    let shown = code.clone();
    db::run(&state.pool, move |conn| db::zones::delete(conn, &code))
        .await
        .map_err(|e| match e {
            db::DbError::NotFound => ApiError::NotFound(format!("custom zone `{shown}`")),
            other => other.into(),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

fn validate_zone(state: &State, input: &ZoneInput) -> Result<ZoneRow, ApiError> {
    let mut v = Violations::new();
    let code = input.code.trim();
    if code.is_empty()
        || code.len() > 64
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        v.add("code", "must be 1–64 letters, digits, '-' or '_'");
    } else if state.reference.geo.territory(code).is_some() {
        v.add("code", "is already a code of the reference hierarchy");
    }
    if input.name.trim().is_empty() || input.name.chars().count() > 300 {
        v.add("name", "must be 1–300 characters");
    }
    if input.communes.is_empty() && input.departements.is_empty() {
        v.add(
            "communes",
            "a zone needs at least one commune or département",
        );
    }
    for (i, c) in input.communes.iter().enumerate() {
        if state.reference.geo.commune(c).is_none() {
            v.add(
                format!("communes[{i}]"),
                format!("`{c}` is not an INSEE commune code"),
            );
        }
    }
    for (i, d) in input.departements.iter().enumerate() {
        if state.reference.geo.communes_of_departement(d).is_empty() {
            v.add(
                format!("departements[{i}]"),
                format!("`{d}` is not a département code"),
            );
        }
    }
    v.finish(ZoneRow {
        code: code.to_owned(),
        name: input.name.trim().to_owned(),
        created_at: crate::db::now(),
    })
    .map_err(ApiError::Validation)
}

fn zone_communes(state: &State, input: &ZoneInput) -> Result<Vec<String>, ApiError> {
    let mut communes: Vec<String> = input.communes.clone();
    for d in &input.departements {
        communes.extend(state.reference.geo.communes_of_departement(d));
    }
    communes.sort();
    communes.dedup();
    Ok(communes)
}
