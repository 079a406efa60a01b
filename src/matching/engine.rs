//! Candidate generation and ranking.
//!
//! For each offer, candidate needs come from the spatial indexes only (never an all-pairs scan): the
//! needs of related classes (same, ancestors, descendants, other heat bands), the needs that accept the
//! offer's EWC code, and the needs of nearby actors whose activity is a known receiver (pathways and
//! sector profiles). Each index yields at most `neighbour_pool` nearest points within
//! `min(offer max distance, class default)`, so the work per offer is bounded and a full detection is
//! `O(n log n)`. Nearby known receivers that declared no related need become **latent** candidates.
//!
//! Everything is deterministic: the snapshot orders actors and resources by content (space, then id),
//! threads work on contiguous chunks whose results are concatenated in order, and ties are broken by
//! index (compact candidates) or by id (synergies).

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::compat::{
    Fit, FitLevel, HEAT_PUMP_QUALITY, HeatPump, Rejection, accepts_code, best_rule, class_fit, fit,
    heat_pump, heat_rule, season_rule,
};
use super::knowledge::ReceiverRule;
use super::receiver_model::Basis;
use super::score::{
    ScoreComponents, TerritorialPriority, clamp01, distance_decay, heat_quality, km_en, km_fr,
    quantity_fit, regulatory_ease, time_overlap,
};
use super::snapshot::{
    Frontier, IndexedActor, IndexedResource, Snapshot, Tree, haversine_km, nearest_within,
};
use super::taxonomy::{ClassId, EwcCode, Taxonomy};
use super::{Impact, MatchingError, MatchingSettings, Result, SearchLimits};
use crate::domain::resource::{ALL_MONTHS, BaseUnit, Period, ResourceKind, Unit};

mod adhoc;
mod explain;
mod incremental;
pub use adhoc::match_adhoc;
use explain::explain;
pub use incremental::Carry;

/// Namespace of synergy ids (UUID v5 over the offer and need ids).
pub const SYNERGY_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_2a7e_8b3d_4c61_9e0a_6d2f_b8c4_1e73);

/// Stable id of a declared synergy: the same offer/need pair keeps its id across runs.
pub fn synergy_id(offer_id: Uuid, need_id: Uuid) -> Uuid {
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(offer_id.as_bytes());
    name[16..].copy_from_slice(need_id.as_bytes());
    Uuid::new_v5(&SYNERGY_NAMESPACE, &name)
}

/// Stable id of a latent synergy (offer and receiving actor).
pub fn latent_synergy_id(offer_id: Uuid, receiver_actor_id: Uuid) -> Uuid {
    let mut name = [0u8; 39];
    name[..16].copy_from_slice(offer_id.as_bytes());
    name[16..32].copy_from_slice(receiver_actor_id.as_bytes());
    name[32..].copy_from_slice(b"+latent");
    Uuid::new_v5(&SYNERGY_NAMESPACE, &name)
}

/// Compact candidate of a full detection (32 bytes), indexes into the snapshot. The score is the
/// materialised synergy's, bit for bit, so a build can rank candidates without materialising them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Offer's index in [`Snapshot::resources`].
    pub offer: u32,
    /// Need's index in [`Snapshot::resources`], or the receiving actor's index when `latent`.
    pub target: u32,
    pub score: f64,
    pub distance_km: f32,
    pub fit_value: f32,
    pub fit: FitLevel,
    pub latent: bool,
}

impl Candidate {
    pub fn need(&self) -> Option<u32> {
        (!self.latent).then_some(self.target)
    }

    pub fn provider_actor(&self, snap: &Snapshot) -> u32 {
        snap.resource(self.offer).actor
    }

    pub fn receiver_actor(&self, snap: &Snapshot) -> u32 {
        if self.latent {
            self.target
        } else {
            snap.resource(self.target).actor
        }
    }

    /// Exchangeable quantity per year (min of the known quantities).
    pub fn quantity(&self, snap: &Snapshot) -> Option<f64> {
        let offer = snap.resource(self.offer).yearly_quantity;
        let need = self.need().and_then(|n| snap.resource(n).yearly_quantity);
        quantity_fit(offer, need).exchangeable
    }

    /// The synergy's stable id.
    pub fn id(&self, snap: &Snapshot) -> Uuid {
        let offer = snap.resource(self.offer).id;
        if self.latent {
            latent_synergy_id(offer, snap.actor(self.target).id)
        } else {
            synergy_id(offer, snap.resource(self.target).id)
        }
    }
}

/// A set of candidates from [`detect`].
pub type CandidateSet = Vec<Candidate>;

/// A ranked, explained candidate exchange, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Synergy {
    /// Stable id: UUID v5 of (offer id, need id), or of (offer id, receiver actor id) when latent.
    pub id: Uuid,
    /// The offer; the nil UUID when the offer is an ad-hoc query.
    pub offer_id: Uuid,
    /// The need; `None` for a latent synergy; the nil UUID when the need is an ad-hoc query.
    pub need_id: Option<Uuid>,
    pub provider_actor_id: Uuid,
    pub receiver_actor_id: Uuid,
    /// Class of the offer.
    pub class: String,
    /// EWC code of the offer (six digits).
    pub ewc_code: Option<String>,
    /// The receiver declared no need: its activity is a known user.
    pub latent: bool,
    pub fit_level: FitLevel,
    /// Great-circle distance between the two sites.
    pub distance_km: f64,
    /// Exchangeable quantity per year: min(offer, need) when both are known, else the known one
    /// (an upper bound).
    pub quantity: Option<f64>,
    pub base_unit: Option<BaseUnit>,
    /// Share of the need covered (both quantities known).
    pub coverage: Option<f64>,
    pub score: f64,
    pub components: ScoreComponents,
    pub explanation_fr: String,
    pub explanation_en: String,
    pub impact: Option<Impact>,
    /// The offer is hazardous waste: the receiver must hold the authorisation (ICPE rubrique) to take
    /// that code.
    pub requires_authorisation: bool,
    /// The offer's heat is too cold for the need and would be raised by a heat pump.
    pub heat_pump: Option<HeatPump>,
}

/// A resource described in a request, matched against the snapshot without being stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdhocQuery {
    /// `offer`: "what can I do with this here?" (receivers); `need`: "who nearby has this?" (providers).
    pub kind: ResourceKind,
    /// EWC code; gives the class when `class` is absent.
    #[serde(default)]
    pub ewc_code: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    /// Codes accepted (need queries).
    #[serde(default)]
    pub accepted_ewc: Vec<String>,
    /// Whether the offered waste is hazardous; the API fills it from the List of Waste. Defaults to
    /// the `*` marker of `ewc_code`.
    #[serde(default)]
    pub hazardous: Option<bool>,
    #[serde(default)]
    pub label: Option<String>,
    /// Quantity as declared, with `unit` and `period` (default `year`).
    #[serde(default)]
    pub quantity: Option<f64>,
    #[serde(default)]
    pub unit: Option<Unit>,
    #[serde(default)]
    pub period: Option<Period>,
    /// Or directly a yearly quantity in `base_unit`.
    #[serde(default)]
    pub yearly_quantity: Option<f64>,
    #[serde(default)]
    pub base_unit: Option<BaseUnit>,
    pub lat: f64,
    pub lng: f64,
    #[serde(default)]
    pub max_distance_km: Option<f64>,
    #[serde(default)]
    pub temperature_c: Option<f64>,
    /// Months mask (bit 0 = January); all year when absent.
    #[serde(default)]
    pub months: Option<u16>,
    /// Activity of the asker (NAF), which lets pathways and profiles find providers for a need.
    #[serde(default)]
    pub naf_code: Option<String>,
    /// Set by the service (never read from a request) for a stored resource that the current build
    /// does not know yet: its ids and its actor's, so that the synergies carry the ids the next
    /// full build gives them and the actor's other resources are not its own partners.
    #[serde(skip)]
    pub stored: Option<StoredParty>,
}

/// Who an ad-hoc query speaks for when it is a stored resource (see [`AdhocQuery::stored`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredParty {
    pub resource_id: Uuid,
    pub actor_id: Uuid,
    pub actor_name: String,
    pub commune: String,
}

/// How far an offer's searches reach: its class's distance, or its own limit when shorter.
fn offer_radius(snap: &Snapshot, offer: &IndexedResource) -> f64 {
    let d = snap.taxonomy.class(offer.class).max_distance_km;
    offer.max_distance_km.map_or(d, |m| m.min(d))
}

/// One side of a pair: a resource and its actor (in the snapshot or built for an ad-hoc query).
#[derive(Clone, Copy)]
struct Party<'a> {
    res: &'a IndexedResource,
    actor: &'a IndexedActor,
    /// Actor index in the snapshot (`None` for an ad-hoc query).
    actor_index: Option<u32>,
    /// Territorial priority of the resource, computed once per party.
    priority: f64,
}

/// Full evaluation of one candidate.
#[derive(Debug, Clone, Copy)]
struct Assessment {
    fit: Fit,
    distance_km: f64,
    components: ScoreComponents,
    score: f64,
    coverage: Option<f64>,
    exchangeable: Option<f64>,
    rule: Option<ReceiverRule>,
    heat_pump: Option<HeatPump>,
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    settings: &'a MatchingSettings,
    priority: &'a dyn TerritorialPriority,
}

impl<'a> Ctx<'a> {
    fn class_default(&self, class: ClassId) -> f64 {
        self.snap.taxonomy.class(class).max_distance_km
    }

    /// A resource of the snapshot with its actor.
    fn party_of<'s>(&'s self, res: &'s IndexedResource) -> Party<'s> {
        Party {
            res,
            actor: self.snap.actor(res.actor),
            actor_index: Some(res.actor),
            priority: match res.kind {
                ResourceKind::Offer => self.priority(res),
                ResourceKind::Need => 0.5,
            },
        }
    }

    fn priority(&self, res: &IndexedResource) -> f64 {
        let mut buf = [0u8; 6];
        let code = res.ewc.map(|c| c.write_compact(&mut buf));
        clamp01(
            self.priority
                .priority(&self.snap.taxonomy.class(res.class).name, code),
        )
    }

    fn offer_radius(&self, offer: &IndexedResource) -> f64 {
        offer_radius(self.snap, offer)
    }

    fn assess_pair(&self, offer: Party, need: Party) -> Result<Assessment, Rejection> {
        let tax = &self.snap.taxonomy;
        if offer.actor_index.is_some() && offer.actor_index == need.actor_index {
            return Err(Rejection::SameActor);
        }
        let delta_t = self.settings.heat_delta_t_c;
        let (f, heat_pump) = match fit(tax, offer.res, need.res, delta_t) {
            Ok(f) => (f, None),
            Err(Rejection::Temperature) => {
                let hp = heat_pump(offer.res, need.res, delta_t).ok_or(Rejection::Temperature)?;
                season_rule(tax, offer.res, need.res)?;
                let f = class_fit(tax, offer.res, need.res).ok_or(Rejection::Class)?;
                // Below direct use: the fit of the same pair, less a fifth.
                let value = f.value * 0.8;
                (Fit { value, ..f }, Some(hp))
            }
            Err(e) => return Err(e),
        };
        let d = haversine_km(
            offer.actor.lat,
            offer.actor.lng,
            need.actor.lat,
            need.actor.lng,
        );
        let limit = [offer.res.max_distance_km, need.res.max_distance_km]
            .into_iter()
            .flatten()
            .fold(self.class_default(offer.res.class), f64::min);
        if d > limit {
            return Err(Rejection::Distance);
        }
        let heat_margin = match heat_pump {
            Some(_) => None,
            None => heat_rule(tax, offer.res, need.res, delta_t)?,
        };
        // A heat pump delivers more than the source gives: the source's heat plus the electricity.
        let offered = match (heat_pump, offer.res.yearly_quantity) {
            (Some(hp), Some(q)) => Some(q * hp.cop / (hp.cop - 1.0)),
            (_, q) => q,
        };
        let q = quantity_fit(offered, need.res.yearly_quantity);
        let quality = match (heat_pump, heat_margin) {
            (Some(_), _) => HEAT_PUMP_QUALITY,
            (None, Some(m)) => heat_quality(m),
            (None, None) if tax.is_heat(offer.res.class) && tax.is_heat(need.res.class) => 0.5,
            (None, None) if f.level == FitLevel::Code => 1.0,
            (None, None) => 0.7,
        };
        let heat_pump = heat_pump.map(|hp| HeatPump {
            electricity_mwh_per_year: q.exchangeable.map(|delivered| delivered / hp.cop),
            ..hp
        });
        let components = ScoreComponents {
            resource_fit: f.value,
            quantity_coverage: q.component,
            distance: distance_decay(d, tax.class(offer.res.class).decay_km),
            time_overlap: time_overlap(offer.res.months, need.res.months),
            quality,
            regulatory_risk: regulatory_ease(offer.res.ewc.is_some(), offer.res.hazardous),
            confidence: 1.0,
            territorial_priority: offer.priority,
        };
        Ok(Assessment {
            fit: f,
            distance_km: d,
            score: components.score(&self.settings.weights),
            components,
            coverage: q.coverage,
            exchangeable: q.exchangeable,
            rule: None,
            heat_pump,
        })
    }

    /// A latent receiver: no declared need; the receiver model gives the probability that its activity
    /// takes the offer. A hazardous offer qualifies too, with the regulatory component of hazardous
    /// waste (the receiver must hold the authorisation for the code).
    fn assess_latent(
        &self,
        offer: Party,
        rules: &[ReceiverRule],
        receiver: &IndexedActor,
    ) -> Option<Assessment> {
        let rule = *best_rule(rules, receiver.nace)?;
        let d = haversine_km(offer.actor.lat, offer.actor.lng, receiver.lat, receiver.lng);
        if d > self.offer_radius(offer.res) {
            return None;
        }
        let tax = &self.snap.taxonomy;
        let q = quantity_fit(offer.res.yearly_quantity, None);
        let components = ScoreComponents {
            resource_fit: rule.value,
            // Unknown on the receiver's side: below what a declared need of any size earns.
            quantity_coverage: 0.3,
            distance: distance_decay(d, tax.class(offer.res.class).decay_km),
            time_overlap: time_overlap(offer.res.months, ALL_MONTHS),
            quality: 0.5,
            regulatory_risk: regulatory_ease(offer.res.ewc.is_some(), offer.res.hazardous),
            confidence: self.settings.latent_confidence,
            territorial_priority: offer.priority,
        };
        Some(Assessment {
            fit: Fit {
                level: rule.level,
                value: rule.value,
            },
            distance_km: d,
            score: components.score(&self.settings.weights),
            components,
            coverage: None,
            exchangeable: q.exchangeable,
            rule: Some(rule),
            heat_pump: None,
        })
    }

    /// Whether an actor declared a need the offer relates to (then it is not a latent receiver).
    fn declares_related_need(&self, actor: u32, offer: &IndexedResource) -> bool {
        let tax = &self.snap.taxonomy;
        self.snap
            .resources_of_actor(actor)
            .iter()
            .map(|i| self.snap.resource(*i))
            .any(|n| {
                n.kind == ResourceKind::Need
                    && (tax.relation(offer.class, n.class).is_some() || accepts_code(offer, n))
            })
    }

    /// Whether an actor itself offers a resource of the offer's class: it has a surplus of it, so it is
    /// not a latent receiver (two sawmills do not trade sawdust).
    fn offers_the_same(&self, actor: u32, offer: &IndexedResource) -> bool {
        self.snap
            .resources_of_actor(actor)
            .iter()
            .map(|i| self.snap.resource(*i))
            .any(|r| r.kind == ResourceKind::Offer && r.class == offer.class)
    }

    /// Candidates of one offer, best first, at most `limits.max_results`.
    fn offer_candidates(
        &self,
        offer: Party,
        offer_index: u32,
        rules: &[ReceiverRule],
        scratch: &mut Scratch<'a>,
        limits: &SearchLimits,
    ) {
        let snap = self.snap;
        let pool = limits.neighbour_pool;
        let at = &offer.actor.xyz;
        let radius = self.offer_radius(offer.res);
        scratch.clear();
        let searches = &mut scratch.searches;
        searches.start_at(offer.actor_index, at);
        for (class, _) in snap.taxonomy.related(offer.res.class) {
            let tree = &snap.needs_by_class[class.index()];
            searches.nearest(tree, radius, pool, None, &mut scratch.needs);
        }
        if let Some(tree) = offer.res.ewc.and_then(|c| snap.needs_by_code.get(&c)) {
            searches.nearest(tree, radius, pool, None, &mut scratch.needs);
        }
        let actor_cap = limits.max_receiver_actors;
        // The budget counts divisions: the rules of the groups and classes a division's evidence names
        // come on top (they find its documented activities first, not other divisions).
        let mut divisions = 0;
        for rule in rules {
            if scratch.actors.len() >= actor_cap || divisions >= limits.max_receiver_rules {
                break;
            }
            if rule.key.len() == 2 {
                divisions += 1;
            }
            if let Some(tree) = snap.actors_by_nace.get(&rule.key) {
                let (pool, skip) = (limits.receiver_pool, offer.actor_index);
                searches.nearest(tree, radius, pool, skip, &mut scratch.actors);
            }
        }
        scratch.actors.sort_unstable();
        scratch.actors.dedup();
        for a in &scratch.actors {
            scratch.needs.extend(
                snap.resources_of_actor(*a)
                    .iter()
                    .filter(|i| snap.resource(**i).kind == ResourceKind::Need),
            );
        }
        scratch.needs.sort_unstable();
        scratch.needs.dedup();
        let min = self.settings.min_score;
        for n in &scratch.needs {
            let need = snap.resource(*n);
            let party = self.party_of(need);
            if let Ok(a) = self.assess_pair(offer, party)
                && a.score >= min
            {
                scratch.found.push(candidate(offer_index, *n, false, &a));
                scratch.receivers.push(need.actor);
            }
        }
        scratch.receivers.sort_unstable();
        if limits.max_latent > 0 {
            let first_latent = scratch.found.len();
            for a in &scratch.actors {
                if scratch.receivers.binary_search(a).is_ok()
                    || self.declares_related_need(*a, offer.res)
                    || self.offers_the_same(*a, offer.res)
                {
                    continue;
                }
                if let Some(x) = self.assess_latent(offer, rules, snap.actor(*a))
                    && x.score >= min
                {
                    scratch.found.push(candidate(offer_index, *a, true, &x));
                }
            }
            let latent = &mut scratch.found[first_latent..];
            latent.sort_by(rank);
            let keep = first_latent + latent.len().min(limits.max_latent);
            scratch.found.truncate(keep);
        }
        scratch.found.sort_by(rank);
        scratch.found.truncate(limits.max_results);
    }

    /// Providers of one need: (offer index, assessment), unsorted. Searched in order of likely fit
    /// (related classes, accepted codes, then what the receiver's activity is known to take) until
    /// `max_assessed` offers are collected.
    fn need_providers(
        &self,
        need: Party,
        scratch: &mut Scratch<'a>,
        limits: &SearchLimits,
    ) -> Vec<(u32, Assessment)> {
        let snap = self.snap;
        let tax = &snap.taxonomy;
        let pool = limits.neighbour_pool;
        let cap = limits.max_assessed;
        let at = &need.actor.xyz;
        let radius = |class: ClassId| {
            let d = self.class_default(class);
            need.res.max_distance_km.map_or(d, |m| m.min(d))
        };
        scratch.clear();
        let search = |tree: &'a Tree, class: ClassId, scratch: &mut Scratch<'a>| {
            if scratch.needs.len() < cap {
                let frontier = &mut scratch.searches.frontier;
                nearest_within(
                    tree,
                    at,
                    radius(class),
                    pool,
                    None,
                    frontier,
                    &mut scratch.needs,
                );
            }
        };
        let code_tree = |code: &EwcCode| snap.offers_by_code.get(code).map(|t| (t, *code));
        for (class, _) in tax.related(need.res.class) {
            search(&snap.offers_by_class[class.index()], *class, scratch);
        }
        let mut declared: Vec<EwcCode> = need
            .res
            .ewc
            .into_iter()
            .chain(need.res.accepted.iter().copied())
            .collect();
        declared.sort_unstable();
        for (tree, code) in declared.iter().filter_map(code_tree) {
            search(
                tree,
                tax.class_id_of_ewc(code).unwrap_or(need.res.class),
                scratch,
            );
        }
        scratch.needs.sort_unstable();
        scratch.needs.dedup();
        let min = self.settings.min_score;
        scratch
            .needs
            .iter()
            .filter_map(|o| {
                let offer = snap.resource(*o);
                let party = self.party_of(offer);
                self.assess_pair(party, need)
                    .ok()
                    .filter(|a| a.score >= min)
                    .map(|a| (*o, a))
            })
            .collect()
    }

    fn synergy(
        &self,
        offer: Party,
        need: Option<Party>,
        receiver: &IndexedActor,
        a: &Assessment,
    ) -> Synergy {
        self.synergy_told(offer, need, receiver, a, true)
    }

    /// [`Ctx::synergy`], with its two explanations written only when `told` (they are most of
    /// the cost of a synergy: reports that read its figures leave them empty).
    fn synergy_told(
        &self,
        offer: Party,
        need: Option<Party>,
        receiver: &IndexedActor,
        a: &Assessment,
        told: bool,
    ) -> Synergy {
        let snap = self.snap;
        let tax = &snap.taxonomy;
        let latent = need.is_none();
        let id = match need {
            Some(n) => synergy_id(offer.res.id, n.res.id),
            None => latent_synergy_id(offer.res.id, receiver.id),
        };
        let base_unit = offer
            .res
            .base_unit
            .or(need.and_then(|n| n.res.base_unit))
            .or(a.exchangeable.map(|_| tax.class(offer.res.class).base_unit));
        let impact = match (a.exchangeable, base_unit) {
            (Some(q), Some(unit)) => {
                Some(
                    snap.knowledge
                        .impacts
                        .impact(tax, offer.res.class, q, unit, a.distance_km),
                )
            }
            _ => None,
        };
        let (explanation_fr, explanation_en) = if told {
            explain(tax, offer, need, receiver, a)
        } else {
            (String::new(), String::new())
        };
        Synergy {
            id,
            offer_id: offer.res.id,
            need_id: need.map(|n| n.res.id),
            provider_actor_id: offer.actor.id,
            receiver_actor_id: receiver.id,
            class: tax.class(offer.res.class).name.clone(),
            ewc_code: offer.res.ewc.map(EwcCode::compact),
            latent,
            fit_level: a.fit.level,
            distance_km: a.distance_km,
            quantity: a.exchangeable,
            base_unit,
            coverage: a.coverage,
            score: a.score,
            components: a.components,
            explanation_fr,
            explanation_en,
            impact,
            requires_authorisation: offer.res.hazardous,
            heat_pump: a.heat_pump,
        }
    }

    /// Re-evaluates a candidate of the snapshot into a wire synergy (its texts only when `told`).
    fn materialise(&self, c: &Candidate, told: bool) -> Option<Synergy> {
        let snap = self.snap;
        let offer_res = snap.resource(c.offer);
        let offer = self.party_of(offer_res);
        let rules = snap.rules_of(c.offer);
        if c.latent {
            let receiver = snap.actor(c.target);
            let a = self.assess_latent(offer, rules, receiver)?;
            Some(self.synergy_told(offer, None, receiver, &a, told))
        } else {
            let n = snap.resource(c.target);
            let need = self.party_of(n);
            let a = self.assess_pair(offer, need).ok()?;
            Some(self.synergy_told(offer, Some(need), need.actor, &a, told))
        }
    }
}

#[derive(Default)]
struct Scratch<'t> {
    needs: Vec<u32>,
    actors: Vec<u32>,
    receivers: Vec<u32>,
    found: Vec<Candidate>,
    searches: SearchMemo<'t>,
}

/// Nearest-point searches already run from one site. The offers of an actor are consecutive in a
/// detection and share its site, and their searches often repeat (same tree, radius and pool, hence the
/// same answer, the walk being deterministic): they are replayed instead of walking the tree again.
#[derive(Default)]
struct SearchMemo<'t> {
    /// The site's actor (whose own points are skipped when asked) and position.
    site: Option<(Option<u32>, [u32; 3])>,
    /// (tree address, radius bits, pool) → range of `found`.
    done: Vec<((usize, u64, usize), std::ops::Range<usize>)>,
    found: Vec<u32>,
    frontier: Frontier<'t>,
}

impl<'t> SearchMemo<'t> {
    /// Forgets the searches of the previous site unless it is the same.
    fn start_at(&mut self, actor: Option<u32>, at: &[f32; 3]) {
        let site = Some((actor, at.map(f32::to_bits)));
        if self.site != site {
            self.site = site;
            self.done.clear();
            self.found.clear();
        }
    }

    /// Appends to `out` the points [`nearest_within`] finds from the site (`skip` must be the same for
    /// every search of one tree from one site).
    fn nearest(
        &mut self,
        tree: &'t Tree,
        radius_km: f64,
        pool: usize,
        skip: Option<u32>,
        out: &mut Vec<u32>,
    ) {
        let key = (std::ptr::from_ref(tree) as usize, radius_km.to_bits(), pool);
        let range = match self.done.iter().find(|(k, _)| *k == key) {
            Some((_, range)) => range.clone(),
            None => {
                let at = self.site.map_or([0.0; 3], |(_, at)| at.map(f32::from_bits));
                let start = self.found.len();
                let frontier = &mut self.frontier;
                nearest_within(tree, &at, radius_km, pool, skip, frontier, &mut self.found);
                self.done.push((key, start..self.found.len()));
                start..self.found.len()
            }
        };
        out.extend_from_slice(&self.found[range]);
    }
}

impl Scratch<'_> {
    fn clear(&mut self) {
        self.needs.clear();
        self.actors.clear();
        self.receivers.clear();
        self.found.clear();
    }
}

fn candidate(offer: u32, target: u32, latent: bool, a: &Assessment) -> Candidate {
    Candidate {
        offer,
        target,
        score: a.score,
        distance_km: a.distance_km as f32,
        fit_value: a.fit.value as f32,
        fit: a.fit.level,
        latent,
    }
}

/// Best first; declared before latent, then by indexes (a content-defined order, so deterministic).
fn rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.latent.cmp(&b.latent))
        .then_with(|| a.offer.cmp(&b.offer))
        .then_with(|| a.target.cmp(&b.target))
}

fn sort_synergies(v: &mut [Synergy]) {
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
}

/// Detects every candidate of the snapshot in compact form: for each offer (in snapshot order), its best
/// `settings.detection.max_results` receivers, best first. Runs on `settings.threads` threads.
pub fn detect(
    snap: &Snapshot,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<CandidateSet> {
    let offers: Vec<u32> = (0..snap.resources.len() as u32)
        .filter(|i| snap.resource(*i).kind == ResourceKind::Offer)
        .collect();
    detect_offers(snap, &offers, settings, priority)
}

/// [`detect`] for some offers of the snapshot only (indexes of offers, ascending): what each of them
/// gets in a full detection, in the same order. The rest of a detection after a change
/// ([`Carry::plan`]) comes from the previous one.
pub fn detect_offers(
    snap: &Snapshot,
    offers: &[u32],
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<CandidateSet> {
    settings.validate()?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    let threads = match settings.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, 64);
    let chunk = (offers.len() / (threads * 16)).clamp(64, 8192);
    let chunks: Vec<&[u32]> = offers.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    let run = || {
        let mut scratch = Scratch::default();
        let mut done: Vec<(usize, Vec<Candidate>)> = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(part) = chunks.get(i) else { break };
            let mut out = Vec::with_capacity(part.len() * settings.detection.max_results);
            for &o in *part {
                let res = snap.resource(o);
                let offer = ctx.party_of(res);
                ctx.offer_candidates(
                    offer,
                    o,
                    snap.rules_of(o),
                    &mut scratch,
                    &settings.detection,
                );
                out.extend_from_slice(&scratch.found);
            }
            done.push((i, out));
        }
        done
    };
    let mut parts: Vec<(usize, Vec<Candidate>)> = if threads == 1 || chunks.len() <= 1 {
        run()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(run)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    parts.sort_by_key(|(i, _)| *i);
    let total = parts.iter().map(|(_, v)| v.len()).sum();
    let mut all = Vec::with_capacity(total);
    for (_, v) in parts {
        all.extend(v);
    }
    Ok(all)
}

/// Turns one candidate of [`detect`] into a wire synergy (components, explanations, impact).
pub fn synergy_of(
    snap: &Snapshot,
    candidate: &Candidate,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Option<Synergy> {
    materialised(snap, candidate, settings, priority, true)
}

/// [`synergy_of`] without the two explanations (empty texts), for reports that read the figures
/// only (score, distance, quantity, impact): writing the sentences is most of a synergy's cost.
pub fn figures_of(
    snap: &Snapshot,
    candidate: &Candidate,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Option<Synergy> {
    materialised(snap, candidate, settings, priority, false)
}

fn materialised(
    snap: &Snapshot,
    candidate: &Candidate,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
    told: bool,
) -> Option<Synergy> {
    Ctx {
        snap,
        settings,
        priority,
    }
    .materialise(candidate, told)
}

/// Every candidate synergy of the snapshot, sorted by score (descending) then id.
pub fn detect_all(
    snap: &Snapshot,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<Vec<Synergy>> {
    let candidates = detect(snap, settings, priority)?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    let mut out: Vec<Synergy> = candidates
        .iter()
        .filter_map(|c| ctx.materialise(c, true))
        .collect();
    sort_synergies(&mut out);
    Ok(out)
}

/// Ranked receivers of an offer, or ranked providers of a need, best first (at most
/// `settings.query.max_results`).
pub fn matches_for_resource(
    snap: &Snapshot,
    resource_id: Uuid,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<Vec<Synergy>> {
    settings.validate()?;
    let index = snap
        .resource_index(resource_id)
        .ok_or(MatchingError::UnknownResource(resource_id))?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    let res = snap.resource(index);
    let party = ctx.party_of(res);
    let mut scratch = Scratch::default();
    let limits = &settings.query;
    let mut out: Vec<Synergy> = match res.kind {
        ResourceKind::Offer => {
            ctx.offer_candidates(party, index, snap.rules_of(index), &mut scratch, limits);
            let found = std::mem::take(&mut scratch.found);
            found
                .iter()
                .filter_map(|c| ctx.materialise(c, true))
                .collect()
        }
        ResourceKind::Need => {
            let mut found = ctx.need_providers(party, &mut scratch, limits);
            found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.0.cmp(&b.0)));
            found.truncate(limits.max_results);
            found
                .iter()
                .map(|(o, a)| {
                    let offer = snap.resource(*o);
                    let op = ctx.party_of(offer);
                    ctx.synergy(op, Some(party), party.actor, a)
                })
                .collect()
        }
    };
    sort_synergies(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests;
