//! Synergies: ranked and explained substitution and pooling synergies of a territory, an actor or a
//! resource; ad-hoc matching; the territory's synergy graph (exports, allocation, chains, hubs).

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::{Page, PageParams, State, page_slice};
use crate::auth::Caller;
use crate::auth::anonymise::{ActorFacts, Anonymiser, anonymous_view};
use crate::db::{self, TerritoryScope};
use crate::detection::{Built, pooling_score};
use crate::matching::graph::{ChainParams, GraphActor, GraphEdge, SynergyGraph};
use crate::matching::pooling::PoolingGroup;
use crate::matching::{AdhocQuery, Synergy};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_synergies)
        .service(detect_now)
        .service(get_synergy)
        .service(actor_synergies)
        .service(resource_matches)
        .service(match_adhoc)
        .service(territory_graph)
        .service(territory_allocation)
        .service(territory_chains)
        .service(territory_hubs);
}

/// A substitution synergy with its status and the names of the parties.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubstitutionOut {
    /// Always `substitution`.
    pub kind: String,
    #[serde(flatten)]
    pub synergy: Synergy,
    /// Lifecycle status (`detected`, `proposed`…); absent for keyless public readers, for whom
    /// what facilitators decide about a synergy is not public.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub provider_name: String,
    pub receiver_name: String,
    pub offer_label: Option<String>,
    pub need_label: Option<String>,
}

/// A pooling group (shared need or shared outflow of ≥ 3 nearby actors) with its status and rank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolingOut {
    /// Always `pooling`.
    pub kind: String,
    #[serde(flatten)]
    pub group: PoolingGroup,
    /// Rank among synergies, on the scale of substitution scores (the same components and weights;
    /// docs/MATCHING.md).
    pub score: f64,
    /// Lifecycle status; absent for keyless public readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SynergyItem {
    Substitution(Box<SubstitutionOut>),
    Pooling(Box<PoolingOut>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SynergyKind {
    Substitution,
    Pooling,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SynergyQuery {
    /// Territory code at any level (`R27`, `21`, EPCI, commune, custom zone): synergies with a party in
    /// it, scored with its AFME priority. For `/resources/{id}/matches`, only the priority applies.
    pub territory: Option<String>,
    pub kind: Option<SynergyKind>,
    pub min_score: Option<f64>,
    /// Resource class prefix (`material/biomass`).
    pub class: Option<String>,
    /// `true`: only latent synergies; `false`: only declared ones.
    pub latent: Option<bool>,
    /// Latent receivers computed for one resource (`/resources/{id}/matches`, `/match`; 0–50, default
    /// 10). Lists are computed once for everyone (3 latent receivers per offer): refused there.
    pub max_latent: Option<usize>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl SynergyQuery {
    fn page(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.max_latent.is_some_and(|n| n > MAX_LATENT) {
            return Err(ApiError::field(
                "max_latent",
                format!("at most {MAX_LATENT}"),
            ));
        }
        check_min_score(self.min_score).map(|_| ())
    }

    /// The matching settings of a one-resource query: the configured ones with `max_latent`.
    fn settings(&self, state: &State) -> crate::matching::MatchingSettings {
        let mut settings = state.detection.settings.clone();
        if let Some(n) = self.max_latent {
            settings.query.max_latent = n;
        }
        settings
    }

    /// Whether a substitution synergy passes the filters, `score` being its score in this list
    /// (with the territory's priority applied).
    fn keeps_substitution(&self, s: &Synergy, score: f64) -> bool {
        self.kind != Some(SynergyKind::Pooling)
            && self.min_score.is_none_or(|m| score >= m)
            && self.class.as_deref().is_none_or(|c| s.class.starts_with(c))
            && self.latent.is_none_or(|l| s.latent == l)
    }

    fn keeps_pooling(&self, g: &PoolingGroup) -> bool {
        self.kind != Some(SynergyKind::Substitution)
            && self.latent != Some(true)
            && self.min_score.is_none_or(|m| pooling_score(g) >= m)
            && self.class.as_deref().is_none_or(|c| g.key.starts_with(c))
    }
}

/// The current detection (rebuilt first when actors or resources changed).
pub async fn current(state: &State) -> Result<Arc<Built>, ApiError> {
    build(state, false).await
}

/// The current detection, or (`fresh`) one that sees every write made so far.
async fn build(state: &State, fresh: bool) -> Result<Arc<Built>, ApiError> {
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
async fn fresh_for(state: &State, caller: &Caller) -> Result<Arc<Built>, ApiError> {
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
    let (_, scope) = super::territories::resolve(state, code).await?;
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

fn in_scope(
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

/// Whether a reader sees synergy statuses: keyless public readers do not (what facilitators decide
/// about a synergy is theirs and the parties'); key holders do.
fn shows_status(caller: &Caller) -> bool {
    !matches!(caller, Caller::Public)
}

fn substitution_out(built: &Built, s: &Synergy, show_status: bool) -> SubstitutionOut {
    let name = |id: &Uuid| {
        built
            .actors
            .get(id)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let label = |id: &Uuid| built.resources.get(id).map(|r| r.label.clone());
    SubstitutionOut {
        kind: "substitution".into(),
        status: show_status.then(|| built.status(&s.id)),
        provider_name: name(&s.provider_actor_id),
        receiver_name: name(&s.receiver_actor_id),
        offer_label: label(&s.offer_id),
        need_label: s.need_id.as_ref().and_then(label),
        synergy: s.clone(),
    }
}

fn pooling_out(built: &Built, g: &PoolingGroup, show_status: bool) -> PoolingOut {
    PoolingOut {
        kind: "pooling".into(),
        score: pooling_score(g),
        status: show_status.then(|| built.status(&g.id)),
        group: g.clone(),
    }
}

/// Sets the territorial-priority component of synergies from a territory's AFME account and
/// recomputes their score: a synergy in a family the territory imports or landfills a lot ranks
/// higher than an otherwise equal one.
pub struct Prioritiser {
    report: Option<crate::afme::priority::PriorityReport>,
    weights: crate::matching::ScoringWeights,
}

impl Prioritiser {
    pub fn neutral(state: &State) -> Prioritiser {
        Prioritiser {
            report: None,
            weights: state.detection.settings.weights.clone(),
        }
    }

    /// The priorities of a territory's latest account (neutral without one).
    pub async fn of_territory(state: &State, code: Option<&str>) -> Result<Prioritiser, ApiError> {
        let report = match code.map(str::trim).filter(|c| !c.is_empty()) {
            Some(code) => {
                Some(super::afme::priorities_for(state, code).await?).filter(|r| !r.neutral)
            }
            None => None,
        };
        Ok(Prioritiser {
            report,
            weights: state.detection.settings.weights.clone(),
        })
    }

    /// The AFME family of a synergy's resource: from its class, else from its EWC code.
    pub fn family(s: &Synergy) -> crate::afme::model::Family {
        crate::afme::families::FamilyTable::builtin()
            .family_for_resource(&s.class, s.ewc_code.as_deref())
    }

    /// The synergy's components with the territory's priority (unchanged without an account).
    fn components(&self, s: &Synergy) -> crate::matching::ScoreComponents {
        let mut components = s.components;
        if let Some(report) = &self.report {
            components.territorial_priority = report.priority(Self::family(s));
        }
        components
    }

    /// The synergy's score with the territory's priority.
    pub fn score(&self, s: &Synergy) -> f64 {
        match self.report {
            Some(_) => self.components(s).score(&self.weights),
            None => s.score,
        }
    }

    pub fn apply(&self, s: &Synergy) -> Synergy {
        let mut out = s.clone();
        if self.report.is_some() {
            out.components = self.components(s);
            out.score = out.components.score(&self.weights);
        }
        out
    }
}

/// A synergy a list keeps, before it is materialised: its index in the build and its score in the
/// list. Lists rank these light entries and build the full items of the requested page only.
#[derive(Debug, Clone, Copy)]
enum Ranked {
    Substitution(usize),
    Pooling(usize),
}

/// A page of synergies (substitution and pooling) touching a territory, ranked by score.
fn ranked_page(
    state: &State,
    caller: &Caller,
    built: &Built,
    query: &SynergyQuery,
    priority: &Prioritiser,
    keep_substitution: impl Fn(&Synergy) -> bool,
    keep_pooling: impl Fn(&PoolingGroup) -> bool,
) -> Result<Page<SynergyItem>, ApiError> {
    if query.max_latent.is_some() {
        return Err(ApiError::field(
            "max_latent",
            "only for one resource's matches (/resources/{id}/matches, /match): lists keep 3 latent receivers per offer",
        ));
    }
    let mut ranked: Vec<(f64, Uuid, Ranked)> = built
        .synergies
        .iter()
        .enumerate()
        .filter(|(_, s)| keep_substitution(s))
        .map(|(i, s)| (i, s, priority.score(s)))
        .filter(|(_, s, score)| query.keeps_substitution(s, *score))
        .map(|(i, s, score)| (score, s.id, Ranked::Substitution(i)))
        .chain(
            built
                .pooling
                .iter()
                .enumerate()
                .filter(|(_, g)| query.keeps_pooling(g) && keep_pooling(g))
                .map(|(i, g)| (pooling_score(g), g.id, Ranked::Pooling(i))),
        )
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let (range, next_cursor) = super::page_bounds(state, ranked.len(), &query.page())?;
    let show_status = shows_status(caller);
    let items = ranked[range]
        .iter()
        .map(|(_, _, entry)| match *entry {
            Ranked::Substitution(i) => SynergyItem::Substitution(Box::new(substitution_out(
                built,
                &priority.apply(&built.synergies[i]),
                show_status,
            ))),
            Ranked::Pooling(i) => {
                SynergyItem::Pooling(Box::new(pooling_out(built, &built.pooling[i], show_status)))
            }
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// Ranked synergies of a territory (any level), or of every territory without `territory`.
#[utoipa::path(tag = "synergies", params(SynergyQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[get("/synergies")]
pub async fn list_synergies(
    state: State,
    caller: Caller,
    query: ValidQuery<SynergyQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.check()?;
    query.territory = caller
        .list_territory(&state, query.territory.as_deref())
        .await?;
    let (scope, zone) = scope_of(&state, query.territory.as_deref()).await?;
    let priority = Prioritiser::of_territory(&state, query.territory.as_deref()).await?;
    let built = current_for(&state, &caller).await?;
    let page = ranked_page(
        &state,
        &caller,
        &built,
        &query,
        &priority,
        |s| {
            in_scope(&built, &s.provider_actor_id, &scope, zone.as_ref())
                || in_scope(&built, &s.receiver_actor_id, &scope, zone.as_ref())
        },
        |g| {
            g.members
                .iter()
                .any(|m| in_scope(&built, &m.actor_id, &scope, zone.as_ref()))
        },
    )?;
    Ok(HttpResponse::Ok().json(page))
}

/// Summary of a detection run.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectionOut {
    pub substitution: usize,
    pub pooling: usize,
    pub summary: db::synergies::DetectionSummary,
}

/// Run the detection now (it also runs by itself when data changed and synergies are read).
#[utoipa::path(tag = "synergies", responses((status = 200, body = DetectionOut)))]
#[post("/synergies/detect")]
pub async fn detect_now(state: State) -> Result<HttpResponse, ApiError> {
    state.detection.touch();
    let built = current(&state).await?;
    Ok(HttpResponse::Ok().json(DetectionOut {
        substitution: built.synergies.len(),
        pooling: built.pooling.len(),
        summary: built.summary,
    }))
}

/// One synergy of the current detection.
#[utoipa::path(tag = "synergies", responses((status = 200, body = SynergyItem), (status = 404, body = super::error::Problem)))]
#[get("/synergies/{id}")]
pub async fn get_synergy(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("synergy `{id}`"));
    let wanted = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let built = current_for(&state, &caller).await?;
    check_parties(&state, &caller, &built, wanted).await?;
    if let Some(s) = built.synergies.iter().find(|s| s.id == wanted) {
        return Ok(
            HttpResponse::Ok().json(SynergyItem::Substitution(Box::new(substitution_out(
                &built,
                s,
                shows_status(&caller),
            )))),
        );
    }
    if let Some(g) = built.pooling.iter().find(|g| g.id == wanted) {
        return Ok(
            HttpResponse::Ok().json(SynergyItem::Pooling(Box::new(pooling_out(
                &built,
                g,
                shows_status(&caller),
            )))),
        );
    }
    Err(not_found())
}

/// The actors of a synergy (its two parties, or a pooling group's members).
pub(crate) fn parties(built: &Built, id: Uuid) -> Vec<Uuid> {
    if let Some(s) = built.synergies.iter().find(|s| s.id == id) {
        return vec![s.provider_actor_id, s.receiver_actor_id];
    }
    built
        .pooling
        .iter()
        .find(|g| g.id == id)
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
#[utoipa::path(tag = "synergies", params(SynergyQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = super::error::Problem)))]
#[get("/actors/{id}/synergies")]
pub async fn actor_synergies(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: ValidQuery<SynergyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    query.check()?;
    let actor = super::actors::load_actor(&state, &caller, &id).await?;
    let actor_id = Uuid::parse_str(&actor.id).map_err(|e| ApiError::Internal(e.to_string()))?;
    let built = current_for(&state, &caller).await?;
    let page = ranked_page(
        &state,
        &caller,
        &built,
        &query,
        &Prioritiser::neutral(&state),
        |s| s.provider_actor_id == actor_id || s.receiver_actor_id == actor_id,
        |g| g.members.iter().any(|m| m.actor_id == actor_id),
    )?;
    Ok(HttpResponse::Ok().json(page))
}

/// Ranked receivers of an offer, or providers of a need (computed on the current snapshot); with
/// `territory`, scores carry that territory's AFME priority, as in its synergy list.
#[utoipa::path(tag = "synergies", params(SynergyQuery), responses((status = 200, body = Page<SubstitutionOut>), (status = 404, body = super::error::Problem)))]
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
    super::resources::load_resource(&state, &caller, &id).await?;
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
    let mut built = current_for(&state, &caller).await?;
    if !built.resources.contains_key(&wanted) {
        // Stored (load_resource found it) but newer than the build a read may be served from under
        // `max_staleness_ms`: wait for a build that sees it rather than contradict the 201.
        built = fresh_for(&state, &caller).await?;
    }
    if !built.resources.contains_key(&wanted) {
        return Err(not_found());
    }
    let found = crate::matching::matches_for_resource(
        &built.snapshot,
        wanted,
        &query.settings(&state),
        &crate::matching::NeutralPriority,
    )
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
        .map(|s| substitution_out(&built, s, show_status))
        .collect();
    Ok(HttpResponse::Ok().json(page_slice(&state, &items, &query.page())?))
}

/// "What can I do with this here?": ranked candidates for a resource described in the request,
/// nothing stored.
#[utoipa::path(tag = "synergies", request_body = AdhocQuery, params(SynergyQuery), responses((status = 200, body = Page<SubstitutionOut>), (status = 422, body = super::error::Problem)))]
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

/// A `min_score` filter: a number in [0, 1] (`NaN` is refused, not read as "no filter").
/// Largest `max_latent` a query may ask for.
const MAX_LATENT: usize = 50;

/// Whether actor `a` is the side of the synergy that holds the queried resource `wanted`.
fn own_side(s: &Synergy, a: &Uuid, wanted: Uuid) -> bool {
    (s.offer_id == wanted && *a == s.provider_actor_id)
        || (s.need_id == Some(wanted) && *a == s.receiver_actor_id)
}

fn check_min_score(min_score: Option<f64>) -> Result<Option<f64>, ApiError> {
    match min_score {
        Some(m) if !(0.0..=1.0).contains(&m) => {
            Err(ApiError::field("min_score", "must be between 0 and 1"))
        }
        other => Ok(other),
    }
}

/// The synergy graph of a territory: its actors and every synergy with a party in it.
/// For partners and public readers, actors that did not consent are anonymous in the graph itself
/// (ids, names, positions, distance bands), so every export and analysis shows the same view.
async fn territory_graph_of(
    state: &State,
    caller: &Caller,
    code: &str,
    min_score: Option<f64>,
) -> Result<SynergyGraph, ApiError> {
    let min_score = check_min_score(min_score)?;
    caller.check_territory(state, code).await?;
    let (scope, zone) = scope_of(state, Some(code)).await?;
    let built = current_for(state, caller).await?;
    let edges: Vec<GraphEdge> = built
        .synergies
        .iter()
        .filter(|s| min_score.is_none_or(|m| s.score >= m))
        .filter(|s| {
            in_scope(&built, &s.provider_actor_id, &scope, zone.as_ref())
                || in_scope(&built, &s.receiver_actor_id, &scope, zone.as_ref())
        })
        .map(|s| GraphEdge {
            synergy_id: s.id,
            offer_id: s.offer_id,
            need_id: s.need_id,
            from_actor: s.provider_actor_id,
            to_actor: s.receiver_actor_id,
            class: s.class.clone(),
            score: s.score,
            distance_km: s.distance_km,
            latent: s.latent,
            offer_quantity: built
                .resources
                .get(&s.offer_id)
                .and_then(|r| r.yearly_quantity),
            need_quantity: s
                .need_id
                .and_then(|n| built.resources.get(&n))
                .and_then(|r| r.yearly_quantity),
            base_unit: s
                .base_unit
                .map(|b| b.as_str().to_owned())
                .unwrap_or_default(),
        })
        .collect();
    let mut ids: HashSet<Uuid> = edges
        .iter()
        .flat_map(|e| [e.from_actor, e.to_actor])
        .collect();
    ids.extend(
        built
            .actors
            .values()
            .filter(|a| a.in_scope(&scope, zone.as_ref()))
            .map(|a| a.id),
    );
    let mut actors: Vec<GraphActor> = ids
        .iter()
        .filter_map(|id| built.actors.get(id))
        .map(|a| GraphActor {
            id: a.id,
            name: a.name.clone(),
            naf_code: Some(a.naf_code.clone()),
            lat: a.lat,
            lng: a.lng,
        })
        .collect();
    let mut edges = edges;
    if caller.anonymises() {
        let anonymiser = Anonymiser::from_actors(
            &state.reference,
            &state.settings.auth.anonymisation_secret,
            ids.iter()
                .filter_map(|id| built.actors.get(id))
                .map(|a| ActorFacts {
                    id: a.id,
                    name: &a.name,
                    naf_code: &a.naf_code,
                    commune: &a.commune,
                    lat: a.lat,
                    lng: a.lng,
                    share_with_partners: a.share_with_partners,
                    identifiers: &[],
                }),
        );
        anonymiser.graph(&mut actors, &mut edges);
    }
    SynergyGraph::build(actors, edges).map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// `json` (nodes/links, default), `graphml` (Gephi) or `geojson`.
    pub format: Option<String>,
    pub min_score: Option<f64>,
}

/// The territory's synergy graph as JSON `{nodes, links}`, GraphML or GeoJSON.
#[utoipa::path(tag = "graph", params(GraphQuery), responses((status = 200, description = "the graph in the requested format", content((crate::matching::graph::GraphJson = "application/json"), (String = "application/graphml+xml"), (crate::matching::graph::GeoJsonCollection = "application/geo+json"))), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
#[get("/territories/{code}/graph")]
pub async fn territory_graph(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = query
        .0
        .format
        .as_deref()
        .unwrap_or("json")
        .to_ascii_lowercase();
    if !matches!(format.as_str(), "json" | "graphml" | "geojson") {
        return Err(ApiError::field(
            "format",
            "must be json, graphml or geojson",
        ));
    }
    let graph = territory_graph_of(&state, &caller, &code, query.0.min_score).await?;
    Ok(match format.as_str() {
        "graphml" => HttpResponse::Ok()
            .content_type("application/graphml+xml; charset=utf-8")
            .body(graph.to_graphml()),
        "geojson" => HttpResponse::Ok()
            .content_type("application/geo+json")
            .json(graph.to_geojson()),
        _ => HttpResponse::Ok().json(graph.to_json()),
    })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphScoreQuery {
    pub min_score: Option<f64>,
    /// Chains: longest chain in hops (default 3, at most 6); hubs: how many (default 20).
    pub limit: Option<usize>,
}

/// Optimal allocation of limited offer quantities among competing needs (min-cost flow: maximises
/// Σ score × quantity), with the greedy value for comparison. Only the flows that receive a
/// quantity are listed, rounded (quantities to 1e-3 of their unit, shares and scores to 1e-4).
#[utoipa::path(tag = "graph", params(GraphScoreQuery), responses((status = 200, body = crate::matching::graph::Allocation), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}/allocation")]
pub async fn territory_allocation(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    let graph = territory_graph_of(&state, &caller, &code, query.0.min_score).await?;
    let allocation = web::block(move || graph.allocate().readable())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(allocation))
}

/// Chains A → B → C and loops (strongly connected groups of actors).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainsOut {
    pub chains: crate::matching::graph::ChainReport,
    pub loops: Vec<crate::matching::graph::ActorLoop>,
}

/// Chains of synergies through the territory and loops of actors.
#[utoipa::path(tag = "graph", params(GraphScoreQuery), responses((status = 200, body = ChainsOut), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}/chains")]
pub async fn territory_chains(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    let min_score = query.0.min_score.unwrap_or(0.0);
    let params = ChainParams {
        max_hops: query
            .0
            .limit
            .unwrap_or(3)
            .clamp(2, crate::matching::graph::MAX_CHAIN_HOPS),
        min_score,
        ..ChainParams::default()
    };
    let graph = territory_graph_of(&state, &caller, &code, Some(min_score)).await?;
    let out = web::block(move || ChainsOut {
        chains: graph.chains(&params),
        loops: graph.loops(min_score),
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(out))
}

/// Actors through which the most and best synergies pass.
#[utoipa::path(tag = "graph", params(GraphScoreQuery), responses((status = 200, body = Vec<crate::matching::graph::Hub>), (status = 404, body = super::error::Problem)))]
#[get("/territories/{code}/hubs")]
pub async fn territory_hubs(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    let graph = territory_graph_of(&state, &caller, &code, query.0.min_score).await?;
    Ok(HttpResponse::Ok().json(graph.hubs(query.0.limit.unwrap_or(20).clamp(1, 1000))))
}
