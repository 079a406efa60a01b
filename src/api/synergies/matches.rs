//! The matches of one resource (`GET /resources/{id}/matches`), computed on the current snapshot or,
//! for a resource the build does not see yet, as an ad-hoc query speaking for it; and ad-hoc
//! matching of a resource described in the request (`POST /match`).

use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::extract::{ValidJson, ValidQuery};
use crate::api::{Page, State, page_slice};
use crate::auth::Caller;
use crate::db;
use crate::matching::{AdhocQuery, Synergy};

use super::builds::{current, current_for, fresh_for, in_scope, latest, scope_of};
use super::output::{SubstitutionOut, shows_status, substitution_out};
use super::query::{SynergyKind, SynergyQuery};
use super::ranking::Prioritiser;

/// Ranked receivers of an offer, or providers of a need (computed on the current snapshot); with
/// `territory`, scores carry that territory's AFME priority, as in its synergy list.
#[utoipa::path(tag = "synergies", params(SynergyQuery), responses((status = 200, body = Page<SubstitutionOut>), (status = 404, body = crate::api::error::Problem)))]
#[get("/resources/{id}/matches")]
pub async fn resource_matches(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: ValidQuery<SynergyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    query.check()?;
    if query.kind == Some(SynergyKind::Pooling) {
        return Err(ApiError::field(
            "kind",
            "a resource's matches are substitutions; pooling groups are listed by /synergies?kind=pooling",
        ));
    }
    let (row, actor) =
        crate::api::resources::load_resource_with_actor(&state, &caller, &id).await?;
    // Scores carry the territorial priority of `territory` when one is named (neutral otherwise).
    let territory = query
        .territory
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(code) = territory {
        caller.check_territory(&state, code).await?;
    }
    let priority = Prioritiser::of_territory(&state, territory).await?;
    let (scope, zone) = scope_of(&state, territory).await?;
    let not_found = || ApiError::NotFound(format!("resource `{id}`"));
    let wanted = Uuid::parse_str(&id).map_err(|_| not_found())?;
    // The resource as stored is matched against the last build at once when that build does not
    // see every write (a resource just created or changed, here or through another server): as an
    // ad-hoc query speaking for it, which gives what the next build will give it (same ids, same
    // rules). That build runs in the background: a write costs its writer no full rebuild.
    let mut unbuilt = None;
    let built = if caller.anonymises() {
        // The anonymous view places hidden actors at their commune: read a build that has it.
        let built = current_for(&state, &caller).await?;
        if built.resources.contains_key(&wanted) {
            built
        } else {
            // Not kept while the fresh build is made (see `actor_synergies`).
            drop(built);
            state.detection.touch();
            fresh_for(&state, &caller).await?
        }
    } else {
        // With `max_staleness_ms = 0` every read sees every write: the build is brought up to date
        // first, and only a resource written through another server (not yet followed) is matched
        // as stored.
        let (built, up_to_date) = if state.detection.settings.max_staleness_ms == 0 {
            (current(&state).await?, true)
        } else {
            latest(&state).await?
        };
        if !up_to_date || !built.resources.contains_key(&wanted) {
            unbuilt = Some(stored_query(&row, &actor).ok_or_else(not_found)?);
        }
        built
    };
    let found = match &unbuilt {
        Some(adhoc) => crate::matching::match_adhoc(
            &built.snapshot,
            adhoc,
            &query.settings(&state),
            &crate::matching::NeutralPriority,
        ),
        None if built.resources.contains_key(&wanted) => crate::matching::matches_for_resource(
            &built.snapshot,
            wanted,
            &query.settings(&state),
            &crate::matching::NeutralPriority,
        ),
        None => return Err(not_found()),
    }
    .map_err(|e| match e {
        crate::matching::MatchingError::UnknownResource(_) => not_found(),
        other => ApiError::Internal(other.to_string()),
    })?;
    // With `territory`, only the partners located in it (the resource's own side is given).
    let partner_in_scope = |s: &Synergy| {
        territory.is_none()
            || [s.provider_actor_id, s.receiver_actor_id]
                .iter()
                .any(|a| in_scope(&built, a, &scope, zone.as_ref()) && !own_side(s, a, wanted))
    };
    let mut ranked: Vec<Synergy> = found
        .iter()
        .map(|s| priority.apply(s))
        .filter(|s| query.keeps_substitution(s, s.score) && partner_in_scope(s))
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    let show_status = shows_status(&caller);
    let items: Vec<SubstitutionOut> = ranked
        .iter()
        .map(|s| {
            let mut out = substitution_out(&built, s, show_status);
            if let Some(own) = unbuilt.as_ref().and_then(|q| q.stored.as_ref()) {
                // The build does not know the resource (nor, perhaps, its actor) yet.
                if own_side(s, &s.provider_actor_id, wanted) {
                    out.provider_name.clone_from(&own.actor_name);
                    out.offer_label = Some(row.label.clone());
                } else {
                    out.receiver_name.clone_from(&own.actor_name);
                    out.need_label = Some(row.label.clone());
                }
            }
            out
        })
        .collect();
    Ok(HttpResponse::Ok().json(page_slice(&state, &items, &query.page())?))
}

/// A stored resource as an ad-hoc query speaking for it (its ids, its actor's place and activity).
fn stored_query(
    row: &db::models::ResourceRow,
    actor: &db::models::ActorRow,
) -> Option<crate::matching::AdhocQuery> {
    Some(crate::matching::AdhocQuery {
        kind: crate::domain::resource::ResourceKind::parse(&row.kind)?,
        ewc_code: row.ewc_code.clone(),
        class: Some(row.class.clone()),
        accepted_ewc: serde_json::from_str(&row.accepted_ewc).unwrap_or_default(),
        hazardous: Some(row.hazardous),
        label: Some(row.label.clone()),
        quantity: None,
        unit: None,
        period: None,
        yearly_quantity: row.yearly_quantity,
        base_unit: row
            .base_unit
            .as_deref()
            .and_then(crate::domain::resource::BaseUnit::parse),
        lat: actor.lat,
        lng: actor.lng,
        max_distance_km: row.max_distance_km,
        temperature_c: row.temperature_c,
        months: u16::try_from(row.months).ok(),
        naf_code: Some(actor.naf_code.clone()),
        stored: Some(crate::matching::StoredParty {
            resource_id: Uuid::parse_str(&row.id).ok()?,
            actor_id: Uuid::parse_str(&actor.id).ok()?,
            actor_name: actor.name.clone(),
            commune: actor.commune_insee.clone(),
        }),
    })
}

/// "What can I do with this here?": ranked candidates for a resource described in the request,
/// nothing stored.
#[utoipa::path(tag = "synergies", request_body = AdhocQuery, params(SynergyQuery), responses((status = 200, body = Page<SubstitutionOut>), (status = 422, body = crate::api::error::Problem)))]
#[post("/match")]
pub async fn match_adhoc(
    state: State,
    caller: Caller,
    query: ValidQuery<SynergyQuery>,
    body: ValidJson<AdhocQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.check()?;
    query.territory = caller
        .list_territory(&state, query.territory.as_deref())
        .await?;
    let mut adhoc = body.0;
    if let Some(code) = adhoc.ewc_code.clone() {
        match state.reference.ewc.get(&code) {
            // The List of Waste decides what is hazardous, not the client.
            Some(entry) => {
                adhoc.ewc_code = Some(entry.code.clone());
                adhoc.hazardous = Some(entry.hazardous);
            }
            None => {
                return Err(ApiError::field(
                    "ewc_code",
                    format!("`{code}` is not a List of Waste code"),
                ));
            }
        }
    }
    if !(-90.0..=90.0).contains(&adhoc.lat) {
        return Err(ApiError::field("lat", "must be between -90 and 90"));
    }
    if !(-180.0..=180.0).contains(&adhoc.lng) {
        return Err(ApiError::field("lng", "must be between -180 and 180"));
    }
    let (scope, zone) = scope_of(&state, query.territory.as_deref()).await?;
    let built = current_for(&state, &caller).await?;
    let found = crate::matching::match_adhoc(
        &built.snapshot,
        &adhoc,
        &query.settings(&state),
        &crate::matching::NeutralPriority,
    )
    .map_err(|e| match e {
        crate::matching::MatchingError::InvalidQuery { field, message } => {
            ApiError::field(field, message)
        }
        crate::matching::MatchingError::UnknownClass(c) => {
            ApiError::field("class", format!("`{c}` is not a resource class"))
        }
        crate::matching::MatchingError::InvalidEwcCode(c) => {
            ApiError::field("ewc_code", format!("`{c}` is not a List of Waste code"))
        }
        other => ApiError::Internal(other.to_string()),
    })?;
    let items: Vec<SubstitutionOut> = found
        .iter()
        .filter(|s| query.keeps_substitution(s, s.score))
        .filter(|s| {
            let partner = if s.provider_actor_id.is_nil() {
                &s.receiver_actor_id
            } else {
                &s.provider_actor_id
            };
            in_scope(&built, partner, &scope, zone.as_ref())
        })
        .map(|s| substitution_out(&built, s, shows_status(&caller)))
        .collect();
    Ok(HttpResponse::Ok().json(page_slice(&state, &items, &query.page())?))
}

/// Whether actor `a` is the side of the synergy that holds the queried resource `wanted`.
fn own_side(s: &Synergy, a: &Uuid, wanted: Uuid) -> bool {
    (s.offer_id == wanted && *a == s.provider_actor_id)
        || (s.need_id == Some(wanted) && *a == s.receiver_actor_id)
}
