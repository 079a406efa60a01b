//! The detection a request reads: the current build, one that sees every write, the anonymous view
//! of partners and public readers; and the territory a list is scoped to.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::web;
use uuid::Uuid;

use crate::api::State;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::auth::anonymise::anonymous_view;
use crate::db::{self, TerritoryScope};
use crate::detection::{Built, Positions};

/// The current detection (rebuilt first when actors or resources changed).
pub async fn current(state: &State) -> Result<Arc<Built>, ApiError> {
    build(state, false).await
}

/// The last build at once, and whether it sees every write ([`crate::detection::Detection::latest`]).
pub(super) async fn latest(state: &State) -> Result<(Arc<Built>, bool), ApiError> {
    // Once a first build exists this never waits: no hop to a blocking thread.
    if let Some(latest) = state.detection.latest_at_once(&state.pool) {
        return Ok(latest);
    }
    let detection = state.detection.clone();
    let pool = state.pool.clone();
    actix_web::web::block(move || {
        detection.latest(&pool).map_err(|e| match e {
            crate::detection::DetectionError::Db(db) => db,
            other => db::DbError::Pool(other.to_string()),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::from)
}

/// The current detection, or (`fresh`) one that sees every write made so far.
pub(super) async fn build(state: &State, fresh: bool) -> Result<Arc<Built>, ApiError> {
    // A build that needs no rebuild first is answered here; only a rebuild goes to a blocking thread.
    let at_once = if fresh {
        state.detection.fresh_at_once()
    } else {
        state.detection.current_at_once(&state.pool)
    };
    if let Some(built) = at_once {
        return Ok(built);
    }
    let detection = state.detection.clone();
    let pool = state.pool.clone();
    actix_web::web::block(move || {
        let built = if fresh {
            detection.fresh(&pool)
        } else {
            detection.current(&pool)
        };
        built.map_err(|e| match e {
            crate::detection::DetectionError::Db(db) => db,
            other => db::DbError::Pool(other.to_string()),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::from)
}

/// The detection as `caller` may see it: for partners and public readers, recomputed with every
/// non-consenting actor at its commune centroid (`auth::anonymise::anonymous_view`), so that no
/// score, distance, impact, rank or pooling figure depends on where such an actor really is.
pub async fn current_for(state: &State, caller: &Caller) -> Result<Arc<Built>, ApiError> {
    view_for(state, caller, current(state).await?).await
}

/// [`current_for`] from a build that sees every write made so far.
pub(super) async fn fresh_for(state: &State, caller: &Caller) -> Result<Arc<Built>, ApiError> {
    view_for(state, caller, build(state, true).await?).await
}

async fn view_for(
    state: &State,
    caller: &Caller,
    built: Arc<Built>,
) -> Result<Arc<Built>, ApiError> {
    if !caller.anonymises() {
        return Ok(built);
    }
    let (detection, reference) = (state.detection.clone(), state.reference.clone());
    web::block(move || anonymous_view(&built, &detection, &reference))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A territory's scope, with its communes when it is a custom zone.
pub(crate) async fn scope_of(
    state: &State,
    code: Option<&str>,
) -> Result<(TerritoryScope, Option<HashSet<String>>), ApiError> {
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok((TerritoryScope::All, None));
    };
    let (_, scope) = crate::api::territories::resolve(state, code).await?;
    let communes = match &scope {
        TerritoryScope::Zone(zone) => {
            let zone = zone.clone();
            Some(
                db::run(&state.pool, move |conn| db::zones::communes(conn, &zone))
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        _ => None,
    };
    Ok((scope, communes))
}

/// The synergies a territory list looks at: those with a party in the territory's départements
/// (the build's index), `None` for the whole country.
pub(crate) fn territory_candidates(
    state: &State,
    built: &Built,
    scope: &TerritoryScope,
    zone: Option<&HashSet<String>>,
) -> Option<Positions> {
    use crate::reference::geo::TerritoryKind;
    let geo = &state.reference.geo;
    let departements = match scope {
        TerritoryScope::All => return None,
        TerritoryScope::Region(code) => geo.departements_of(TerritoryKind::Region, code),
        TerritoryScope::Departement(code) => vec![code.clone()],
        TerritoryScope::Epci(code) => geo.departements_of(TerritoryKind::Epci, code),
        TerritoryScope::Commune(code) => geo.departements_of(TerritoryKind::Commune, code),
        TerritoryScope::Zone(_) => {
            let mut out: Vec<String> = zone
                .into_iter()
                .flatten()
                .filter_map(|c| geo.commune(c))
                .map(|c| c.departement.clone())
                .collect();
            out.sort();
            out.dedup();
            out
        }
    };
    Some(
        built
            .territories
            .of_departements(departements.iter().map(String::as_str)),
    )
}

pub(super) fn in_scope(
    built: &Built,
    actor: &Uuid,
    scope: &TerritoryScope,
    zone: Option<&HashSet<String>>,
) -> bool {
    built
        .actors
        .get(actor)
        .is_some_and(|a| a.in_scope(scope, zone))
}
