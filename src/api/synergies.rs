//! Synergies: ranked and explained substitution and pooling synergies of a territory, an actor or a
//! resource; ad-hoc matching. The territory's synergy graph (exports, allocation, chains, hubs) is in
//! `synergies/graph.rs`.

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
use crate::auth::anonymise::anonymous_view;
use crate::db::{self, TerritoryScope};
use crate::detection::{Brief, Built, Positions, Slot, pooling_score};
use crate::matching::pooling::PoolingGroup;
use crate::matching::{AdhocQuery, Synergy};
use crate::reference::Lang;

pub(crate) mod graph;
use graph::{territory_allocation, territory_chains, territory_graph, territory_hubs};

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
    /// What the members share, in the reader's language (`Accept-Language`): the need class's label,
    /// or the EWC code's label.
    pub label: String,
    /// The resource class of the key (the need class, or the EWC code's class) in the reader's
    /// language; `None` for an EWC code no class rule covers.
    pub class_label: Option<String>,
    /// The members with their names, in the order of `members` (anonymous labels for the actors a
    /// partner or keyless reader may not see).
    pub parties: Vec<ActorName>,
    /// One sentence: who, how close, what, and what they could do together.
    pub explanation_fr: String,
    pub explanation_en: String,
}

/// An actor's id with its name beside it (the gate rewrites `name` to the anonymous label for the
/// actors a partner or keyless reader may not see: `auth::anonymise`, `actor_id` beside `name`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorName {
    pub actor_id: Uuid,
    pub name: String,
}

/// What the service writes about a synergy in the reader's language: resource class and EWC labels.
pub struct Labels<'a> {
    pub state: &'a State,
    pub lang: Lang,
}

impl Labels<'_> {
    /// A resource class's label (`material/biomass/wood` → « Bois »); `None` for an unknown class.
    pub fn class(&self, class: &str) -> Option<String> {
        self.state
            .detection
            .taxonomy
            .get(class)
            .map(|c| self.lang.pick(&c.label_fr, &c.label_en).to_owned())
    }

    /// An EWC code's label in the reader's language.
    fn ewc(&self, code: &str, lang: Lang) -> Option<String> {
        self.state
            .reference
            .ewc
            .get(code)
            .map(|c| lang.pick(&c.label_fr, &c.label_en).to_owned())
    }

    fn class_in(&self, class: &str, lang: Lang) -> Option<String> {
        self.state
            .detection
            .taxonomy
            .get(class)
            .map(|c| lang.pick(&c.label_fr, &c.label_en).to_owned())
    }
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

/// The parameters of the synergy lists as documented: those of `SynergyQuery` but `max_latent`,
/// which lists refuse (they are computed once for everyone). Documentation only: the handlers read
/// `SynergyQuery`, so a list asked for `max_latent` says why it cannot.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SynergyListQuery {
    /// Territory code at any level (`R27`, `21`, EPCI, commune, custom zone): synergies with a party in
    /// it, scored with its AFME priority.
    pub territory: Option<String>,
    pub kind: Option<SynergyKind>,
    pub min_score: Option<f64>,
    /// Resource class prefix (`material/biomass`).
    pub class: Option<String>,
    /// `true`: only latent synergies; `false`: only declared ones.
    pub latent: Option<bool>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
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
        self.keeps(&s.class, s.latent, score)
    }

    fn keeps(&self, class: &str, latent: bool, score: f64) -> bool {
        self.kind != Some(SynergyKind::Pooling)
            && self.min_score.is_none_or(|m| score >= m)
            && self.class.as_deref().is_none_or(|c| class.starts_with(c))
            && self.latent.is_none_or(|l| latent == l)
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

/// The last build at once, and whether it sees every write ([`crate::detection::Detection::latest`]).
async fn latest(state: &State) -> Result<(Arc<Built>, bool), ApiError> {
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

fn pooling_out(
    built: &Built,
    g: &PoolingGroup,
    show_status: bool,
    labels: &Labels<'_>,
) -> PoolingOut {
    use crate::matching::pooling::PoolingKeyKind;
    let parties = g
        .members
        .iter()
        .map(|m| ActorName {
            actor_id: m.actor_id,
            name: built
                .actors
                .get(&m.actor_id)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
        })
        .collect();
    let class = match g.key_kind {
        PoolingKeyKind::NeedClass => Some(g.key.clone()),
        PoolingKeyKind::OfferEwc => labels
            .state
            .detection
            .taxonomy
            .class_of_ewc(&g.key)
            .map(|c| c.name.clone()),
    };
    let label_in = |lang: Lang| match g.key_kind {
        PoolingKeyKind::NeedClass => labels.class_in(&g.key, lang),
        PoolingKeyKind::OfferEwc => labels.ewc(&g.key, lang),
    };
    let label = label_in(labels.lang).unwrap_or_else(|| g.key.clone());
    let (explanation_fr, explanation_en) = pooling_explanations(
        g,
        &label_in(Lang::Fr).unwrap_or_else(|| g.key.clone()),
        &label_in(Lang::En).unwrap_or_else(|| g.key.clone()),
    );
    PoolingOut {
        kind: "pooling".into(),
        score: pooling_score(g),
        status: show_status.then(|| built.status(&g.id)),
        label,
        class_label: class.as_deref().and_then(|c| labels.class(c)),
        parties,
        explanation_fr,
        explanation_en,
        group: g.clone(),
    }
}

/// « 5 entreprises à moins de 6 km les unes des autres déclarent un besoin de bois (1200 t/an au
/// total) : achat groupé ou approvisionnement mutualisé possible. » and its English twin. The
/// distance is an upper bound of the distance between two members (twice the radius around the
/// centroid), so the sentence is true of every pair.
fn pooling_explanations(g: &PoolingGroup, label_fr: &str, label_en: &str) -> (String, String) {
    use crate::matching::pooling::PoolingKeyKind;
    let n = g.members.len();
    let km = (2.0 * g.radius_km).ceil().max(1.0);
    let total = g
        .total_yearly_quantity
        .zip(g.base_unit)
        .filter(|(q, _)| q.is_finite() && *q > 0.0);
    let decimals = |q: f64| if q < 10.0 { 1 } else { 0 };
    let total_fr = total
        .map(|(q, u)| {
            format!(
                " ({} {}/an au total)",
                Lang::Fr.number(q, decimals(q)),
                u.as_str()
            )
        })
        .unwrap_or_default();
    let total_en = total
        .map(|(q, u)| {
            format!(
                " ({} {}/year in total)",
                Lang::En.number(q, decimals(q)),
                u.as_str()
            )
        })
        .unwrap_or_default();
    let km_fr = Lang::Fr.number(km, 0);
    match g.key_kind {
        PoolingKeyKind::NeedClass => (
            format!(
                "{n} entreprises à moins de {km_fr} km les unes des autres déclarent un besoin {}{total_fr} : achat groupé ou approvisionnement mutualisé possible.",
                de_fr(label_fr)
            ),
            format!(
                "{n} companies less than {km_fr} km apart declare a need for {}{total_en}: joint purchasing or shared supply possible.",
                lower_first(label_en)
            ),
        ),
        PoolingKeyKind::OfferEwc => (
            format!(
                "{n} entreprises à moins de {km_fr} km les unes des autres produisent le déchet {} « {label_fr} »{total_fr} : collecte ou traitement mutualisé possible.",
                g.key
            ),
            format!(
                "{n} companies less than {km_fr} km apart produce the waste {} “{label_en}”{total_en}: shared collection or treatment possible.",
                g.key
            ),
        ),
    }
}

/// A label inside a sentence: its first letter in lower case, unless it starts an acronym (`CO2`).
fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(label.chars().skip(1)).collect()
        }
        _ => label.to_owned(),
    }
}

/// « de bois », « d’eau chaude »: the French preposition with elision before a vowel or a mute h.
fn de_fr(label: &str) -> String {
    let text = lower_first(label);
    let elides = text
        .chars()
        .next()
        .is_some_and(|c| "aeiouyéèêàâîôûh".contains(c));
    if elides {
        format!("d’{text}")
    } else {
        format!("de {text}")
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

    /// Whether scores are the build's own (no territorial account to weigh them).
    fn is_neutral(&self) -> bool {
        self.report.is_none()
    }

    /// The AFME family of a synergy's resource: from its class, else from its EWC code.
    pub fn family(s: &Synergy) -> crate::afme::model::Family {
        crate::afme::families::FamilyTable::builtin()
            .family_for_resource(&s.class, s.ewc_code.as_deref())
    }

    /// `score` of a synergy of `class` and `ewc_code` whose territorial priority was `was`, with
    /// the territory's priority instead: the score is a weighted mean, so only that term moves.
    /// Lists rank detected synergies by this value without materialising them, and show it.
    fn prioritised(&self, score: f64, was: f64, class: &str, ewc_code: Option<&str>) -> f64 {
        let Some(report) = &self.report else {
            return score;
        };
        let family =
            crate::afme::families::FamilyTable::builtin().family_for_resource(class, ewc_code);
        let total: f64 = self.weights.as_array().iter().sum();
        if total <= 0.0 {
            return score;
        }
        let moved = self.weights.territorial_priority
            * (crate::matching::score::clamp01(report.priority(family))
                - crate::matching::score::clamp01(was))
            / total;
        crate::matching::score::clamp01(score + moved)
    }

    /// The score of a detected synergy with the territory's priority (`brief` of a build whose
    /// territorial priority is neutral).
    fn score(&self, brief: &crate::detection::Brief<'_>) -> f64 {
        use crate::matching::TerritorialPriority as _;
        let mut buf = [0u8; 6];
        let neutral = crate::matching::NeutralPriority.priority(brief.class, None);
        self.prioritised(brief.score, neutral, brief.class, brief.ewc(&mut buf))
    }

    /// The synergy with the territory's priority in its components and score.
    pub fn apply(&self, s: &Synergy) -> Synergy {
        let mut out = s.clone();
        if let Some(report) = &self.report {
            out.score = self.prioritised(
                s.score,
                s.components.territorial_priority,
                &s.class,
                s.ewc_code.as_deref(),
            );
            out.components.territorial_priority = report.priority(Self::family(s));
        }
        out
    }
}

/// A synergy a list keeps, before it is materialised: its index in the build and its score in the
/// list. Lists rank these light entries and build the full items of the requested page only.
#[derive(Debug, Clone, Copy)]
enum Ranked {
    Substitution(u32),
    Pooling(usize),
}

/// Which synergies a list ranks: positions from the build's index (`None`: all), then the exact
/// filters of substitutions and pooling groups.
struct Selection<'a, S, P> {
    candidates: Option<&'a Positions>,
    substitution: S,
    pooling: P,
}

/// A page of synergies (substitution and pooling) touching a territory, ranked by score.
fn ranked_page(
    labels: &Labels<'_>,
    caller: &Caller,
    built: &Built,
    query: &SynergyQuery,
    priority: &Prioritiser,
    selection: Selection<impl Fn(&Brief<'_>) -> bool, impl Fn(&PoolingGroup) -> bool>,
) -> Result<Page<SynergyItem>, ApiError> {
    let Selection {
        candidates,
        substitution: keep_substitution,
        pooling: keep_pooling,
    } = selection;
    let state = labels.state;
    if query.max_latent.is_some() {
        return Err(ApiError::field(
            "max_latent",
            "only for one resource's matches (/resources/{id}/matches, /match): lists keep 3 latent receivers per offer",
        ));
    }
    // The territory's or actor's synergies from the build's index, else every one.
    let substitutions: Box<dyn Iterator<Item = u32>> = match candidates {
        Some(p) => Box::new(p.synergies.iter().copied()),
        None => Box::new(0..built.synergies.len() as u32),
    };
    let groups: Box<dyn Iterator<Item = usize>> = match candidates {
        Some(p) => Box::new(p.pooling.iter().map(|&i| i as usize)),
        None => Box::new(0..built.pooling.len()),
    };
    let substitutions = substitutions
        .filter_map(|i| Some((i, built.brief(i)?)))
        .filter(|(_, s)| keep_substitution(s))
        .map(|(i, s)| (i, s, priority.score(&s)))
        .filter(|(_, s, score)| query.keeps(s.class, s.latent, *score))
        .map(|(i, s, score)| (score, s.id, Ranked::Substitution(i)));
    let mut groups: Vec<(f64, Uuid, Ranked)> = groups
        .filter_map(|i| Some((i, built.pooling.get(i)?)))
        .filter(|(_, g)| query.keeps_pooling(g) && keep_pooling(g))
        .map(|(i, g)| (pooling_score(g), g.id, Ranked::Pooling(i)))
        .collect();
    let order = |a: &(f64, Uuid, Ranked), b: &(f64, Uuid, Ranked)| {
        b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
    };
    groups.sort_by(order);
    let ranked: Vec<(f64, Uuid, Ranked)> = if priority.is_neutral() {
        // The build keeps substitutions best first (score, then id: this order), and the index
        // gives positions in ascending order: merged with the few groups, the first items are the
        // page's, and a list reads O(page) synergies, not its territory's all.
        let (offset, limit) = super::page_window(state, &query.page())?;
        let wanted = offset.saturating_add(limit).saturating_add(1);
        let mut substitutions = substitutions.peekable();
        let mut groups = groups.into_iter().peekable();
        let mut out = Vec::with_capacity(wanted.min(1_024));
        while out.len() < wanted {
            let next = match (substitutions.peek(), groups.peek()) {
                (Some(s), Some(g)) if order(g, s).is_lt() => groups.next(),
                (Some(_), _) => substitutions.next(),
                (None, _) => groups.next(),
            };
            match next {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    } else {
        let mut all: Vec<(f64, Uuid, Ranked)> = substitutions.chain(groups).collect();
        all.sort_by(order);
        all
    };
    let (range, next_cursor) = super::page_bounds(state, ranked.len(), &query.page())?;
    let show_status = shows_status(caller);
    let items =
        ranked[range]
            .iter()
            .filter_map(|(_, _, entry)| match *entry {
                Ranked::Substitution(i) => Some(SynergyItem::Substitution(Box::new(
                    substitution_out(built, &priority.apply(&built.synergy_at(i)?), show_status),
                ))),
                Ranked::Pooling(i) => Some(SynergyItem::Pooling(Box::new(pooling_out(
                    built,
                    built.pooling.get(i)?,
                    show_status,
                    labels,
                )))),
            })
            .collect();
    Ok(Page { items, next_cursor })
}

/// Ranked synergies of a territory (any level), or of every territory without `territory`.
#[utoipa::path(tag = "synergies", params(SynergyListQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
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
    Ok(super::afme::in_lang(lang).json(page))
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
#[utoipa::path(tag = "synergies", responses((status = 200, body = SynergyItem), (status = 404, body = super::error::Problem)))]
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
            super::afme::in_lang(lang).json(SynergyItem::Pooling(Box::new(pooling_out(
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
    if let Some(Slot::Substitution(i)) = built.index.get(&id)
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
#[utoipa::path(tag = "synergies", params(SynergyListQuery), responses((status = 200, body = Page<SynergyItem>), (status = 404, body = super::error::Problem)))]
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
    let actor = super::actors::load_actor(&state, &caller, &id).await?;
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
    Ok(super::afme::in_lang(lang).json(page))
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
    let (row, actor) = super::resources::load_resource_with_actor(&state, &caller, &id).await?;
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
        let mut built = current_for(&state, &caller).await?;
        if !built.resources.contains_key(&wanted) {
            state.detection.touch();
            built = fresh_for(&state, &caller).await?;
        }
        built
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
