//! The synergy lists of a territory and of an actor, one synergy by id, a full detection on
//! demand; and who the parties of a synergy are, for the territorial check of keys.

use std::collections::HashSet;

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::extract::ValidQuery;
use crate::api::{Page, State};
use crate::auth::Caller;
use crate::db;
use crate::detection::{Brief, Built, Slot};
use crate::matching::pooling::PoolingGroup;
use crate::reference::Lang;

use super::builds::{build, current_for, fresh_for, in_scope, scope_of, territory_candidates};
use super::output::{Labels, SynergyItem, pooling_out, shows_status, substitution_out};
use super::query::{SynergyListQuery, SynergyQuery};
use super::ranking::{Prioritiser, Selection, ranked_page};

/// Ranked synergies of a territory (any level), or of every territory without `territory`.
#[utoipa::path(tag = "synergies", params(SynergyListQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem)))]
#[get("/synergies")]
pub async fn list_synergies(
    state: State,
    caller: Caller,
    query: ValidQuery<SynergyQuery>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.check()?;
    query.territory = caller
        .list_territory(&state, query.territory.as_deref())
        .await?;
    let (scope, zone) = scope_of(&state, query.territory.as_deref()).await?;
    let priority = Prioritiser::of_territory(&state, query.territory.as_deref()).await?;
    let built = current_for(&state, &caller).await?;
    let candidates = territory_candidates(&state, &built, &scope, zone.as_ref());
    let page = ranked_page(
        &Labels {
            state: &state,
            lang,
        },
        &caller,
        &built,
        &query,
        &priority,
        Selection {
            candidates: candidates.as_ref(),
            substitution: |s: &Brief<'_>| {
                in_scope(&built, &s.provider_actor_id, &scope, zone.as_ref())
                    || in_scope(&built, &s.receiver_actor_id, &scope, zone.as_ref())
            },
            pooling: |g: &PoolingGroup| {
                g.members
                    .iter()
                    .any(|m| in_scope(&built, &m.actor_id, &scope, zone.as_ref()))
            },
        },
    )?;
    Ok(crate::api::afme::in_lang(lang).json(page))
}

/// Summary of a detection run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectionOut {
    pub substitution: usize,
    pub pooling: usize,
    pub summary: db::synergies::DetectionSummary,
}

/// Run a full detection now: every offer matched again (the builds that follow writes, by
/// themselves when synergies are read, match again only the offers the writes reach).
#[utoipa::path(tag = "synergies", responses((status = 200, body = DetectionOut)))]
#[post("/synergies/detect")]
pub async fn detect_now(state: State) -> Result<HttpResponse, ApiError> {
    state.detection.rebuild_fully();
    // Now, whatever `max_staleness_ms` allows: the caller asked for this run.
    let built = build(&state, true).await?;
    Ok(HttpResponse::Ok().json(DetectionOut {
        substitution: built.synergies.len(),
        pooling: built.pooling.len(),
        summary: built.summary,
    }))
}

/// One synergy of the current detection.
#[utoipa::path(tag = "synergies", responses((status = 200, body = SynergyItem), (status = 404, body = crate::api::error::Problem)))]
#[get("/synergies/{id}")]
pub async fn get_synergy(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("synergy `{id}`"));
    let wanted = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let built = current_for(&state, &caller).await?;
    check_parties(&state, &caller, &built, wanted).await?;
    if let Some(s) = built.synergy(wanted) {
        return Ok(
            HttpResponse::Ok().json(SynergyItem::Substitution(Box::new(substitution_out(
                &built,
                &s,
                shows_status(&caller),
            )))),
        );
    }
    if let Some(g) = built.group(wanted) {
        return Ok(
            crate::api::afme::in_lang(lang).json(SynergyItem::Pooling(Box::new(pooling_out(
                &built,
                g,
                shows_status(&caller),
                &Labels {
                    state: &state,
                    lang,
                },
            )))),
        );
    }
    Err(not_found())
}

/// The actors of a synergy (its two parties, or a pooling group's members).
pub(crate) fn parties(built: &Built, id: Uuid) -> Vec<Uuid> {
    if let Some(Slot::Substitution(i)) = built.slot(&id)
        && let Some(s) = built.brief(i)
    {
        return vec![s.provider_actor_id, s.receiver_actor_id];
    }
    built
        .group(id)
        .map(|g| g.members.iter().map(|m| m.actor_id).collect())
        .unwrap_or_default()
}

/// 403 unless one of the synergy's actors lies within the caller's territories (a synergy that
/// crosses a border concerns the facilitators on both sides). Unknown synergies pass: the caller
/// answers 404 for them.
pub(crate) async fn check_parties(
    state: &State,
    caller: &Caller,
    built: &Built,
    id: Uuid,
) -> Result<(), ApiError> {
    let communes: Vec<String> = parties(built, id)
        .iter()
        .filter_map(|a| built.actors.get(a))
        .map(|a| a.commune.clone())
        .collect();
    if communes.is_empty() || caller.covers_communes(state, &communes).await? {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "synergy `{id}` has no actor in the territories of this key ({})",
            caller.territories().join(", ")
        )))
    }
}

/// Synergies of one actor, as provider, receiver or pooling member.
#[utoipa::path(tag = "synergies", params(SynergyListQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = crate::api::error::Problem)))]
#[get("/actors/{id}/synergies")]
pub async fn actor_synergies(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: ValidQuery<SynergyQuery>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    query.check()?;
    let actor = crate::api::actors::load_actor(&state, &caller, &id).await?;
    let actor_id = Uuid::parse_str(&actor.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    let built = current_for(&state, &caller).await?;
    // The actor's own list sees its writes: when the build does not have the actor's resources as
    // stored (one created or deleted a moment ago, within `max_staleness_ms`), it waits for one
    // that does.
    let stored = db::run(&state.pool, move |c| {
        db::resources::ids_of_actor(c, &actor.id)
    })
    .await?;
    let built = if knows_resources_of(&built, actor_id, &stored) {
        built
    } else {
        // Let go of the stale build first: the wait can last a rebuild, and a national build kept
        // meanwhile is one more in memory beside the current one and the one being made.
        drop(built);
        fresh_for(&state, &caller).await?
    };
    let page = ranked_page(
        &Labels {
            state: &state,
            lang,
        },
        &caller,
        &built,
        &query,
        &Prioritiser::neutral(&state),
        Selection {
            candidates: Some(&built.territories.of_actor(&actor_id)),
            substitution: |s: &Brief<'_>| {
                s.provider_actor_id == actor_id || s.receiver_actor_id == actor_id
            },
            pooling: |g: &PoolingGroup| g.members.iter().any(|m| m.actor_id == actor_id),
        },
    )?;
    Ok(crate::api::afme::in_lang(lang).json(page))
}

/// Whether `built` has exactly the resources `stored` of `actor`.
fn knows_resources_of(built: &Built, actor: Uuid, stored: &[String]) -> bool {
    let snapshot = &built.snapshot;
    let known: HashSet<Uuid> = snapshot
        .actor_index(actor)
        .map(|i| {
            snapshot
                .resources_of_actor(i)
                .iter()
                .map(|&r| snapshot.resource(r).id)
                .collect()
        })
        .unwrap_or_default();
    let stored: HashSet<Uuid> = stored
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    known == stored
}
