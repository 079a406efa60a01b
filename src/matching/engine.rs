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
use super::knowledge::{NaceKey, ReceiverRule};
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
use crate::domain::resource::{ALL_MONTHS, BaseUnit, Period, ResourceKind, Unit, yearly_amount};

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
        let d = self.class_default(offer.class);
        offer.max_distance_km.map_or(d, |m| m.min(d))
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
    settings.validate()?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    let offers: Vec<u32> = (0..snap.resources.len() as u32)
        .filter(|i| snap.resource(*i).kind == ResourceKind::Offer)
        .collect();
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
    Ctx {
        snap,
        settings,
        priority,
    }
    .materialise(candidate, true)
}

/// [`synergy_of`] without the two explanations (empty texts), for reports that read the figures
/// only (score, distance, quantity, impact): writing the sentences is most of a synergy's cost.
pub fn figures_of(
    snap: &Snapshot,
    candidate: &Candidate,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Option<Synergy> {
    Ctx {
        snap,
        settings,
        priority,
    }
    .materialise(candidate, false)
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

impl AdhocQuery {
    fn to_resource(
        &self,
        snap: &Snapshot,
    ) -> Result<(IndexedResource, IndexedActor, Vec<ReceiverRule>)> {
        let tax = &snap.taxonomy;
        let invalid = |field: &'static str, message: &str| MatchingError::InvalidQuery {
            field,
            message: message.into(),
        };
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(invalid("lat", "must be within [-90, 90]"));
        }
        if !(self.lng.is_finite() && (-180.0..=180.0).contains(&self.lng)) {
            return Err(invalid("lng", "must be within [-180, 180]"));
        }
        let ewc = match self
            .ewc_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => Some(
                EwcCode::parse(c)
                    .ok_or_else(|| invalid("ewc_code", "expected six digits such as 10 01 02"))?,
            ),
            None => None,
        };
        let class = match (self.class.as_deref(), ewc) {
            (Some(c), _) => tax
                .id(c)
                .ok_or_else(|| MatchingError::UnknownClass(c.to_owned()))?,
            (None, Some(code)) => tax
                .class_id_of_ewc(code)
                .ok_or_else(|| invalid("ewc_code", "no class for this code"))?,
            (None, None) => return Err(invalid("class", "give a class or an EWC code")),
        };
        let accepted = self
            .accepted_ewc
            .iter()
            .map(|c| {
                EwcCode::parse(c).ok_or_else(|| invalid("accepted_ewc", "expected six-digit codes"))
            })
            .collect::<Result<Vec<_>>>()?;
        let (yearly_quantity, base_unit) = match (self.quantity, self.unit, self.yearly_quantity) {
            (Some(q), Some(unit), _) => {
                let (v, b) = yearly_amount(q, unit, self.period.unwrap_or(Period::Year));
                (Some(v), Some(b))
            }
            (Some(_), None, _) => return Err(invalid("unit", "required with quantity")),
            (None, _, Some(y)) => (Some(y), self.base_unit),
            (None, _, None) => (None, self.base_unit),
        };
        if yearly_quantity.is_some_and(|q| !q.is_finite() || q < 0.0) {
            return Err(invalid("quantity", "must be a non-negative number"));
        }
        if self
            .max_distance_km
            .is_some_and(|d| !d.is_finite() || d <= 0.0)
        {
            return Err(invalid("max_distance_km", "must be positive"));
        }
        let months = self.months.map_or(ALL_MONTHS, |m| {
            if m & ALL_MONTHS == 0 {
                ALL_MONTHS
            } else {
                m & ALL_MONTHS
            }
        });
        let hazardous = self.hazardous.unwrap_or_else(|| {
            self.ewc_code
                .as_deref()
                .is_some_and(|c| c.trim_end().ends_with('*'))
        });
        let label = self
            .label
            .clone()
            .unwrap_or_else(|| tax.class(class).label_fr.clone());
        let stored = self.stored.clone().unwrap_or_default();
        let res = IndexedResource {
            id: stored.resource_id,
            actor: u32::MAX,
            kind: self.kind,
            class,
            ewc,
            accepted: accepted.into_boxed_slice(),
            hazardous,
            yearly_quantity,
            base_unit,
            months,
            temperature_c: self.temperature_c.filter(|t| t.is_finite()),
            max_distance_km: self.max_distance_km,
            label,
        };
        let actor = IndexedActor::new(
            stored.actor_id,
            // No name for a plain query: the sentences then speak of "your resource".
            stored.actor_name,
            self.naf_code.clone(),
            self.lat,
            self.lng,
            stored.commune,
        );
        let rules = match self.kind {
            ResourceKind::Offer => {
                let provider = actor.nace.map(NaceKey::division);
                snap.knowledge.receiver_rules(tax, ewc, class, provider)
            }
            ResourceKind::Need => Vec::new(),
        };
        Ok((res, actor, rules))
    }
}

/// Ranked candidates for a resource described in the request (nothing stored). The query side has the
/// nil UUID as resource and actor id.
pub fn match_adhoc(
    snap: &Snapshot,
    query: &AdhocQuery,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<Vec<Synergy>> {
    settings.validate()?;
    let (res, built_actor, rules) = query.to_resource(snap)?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    // A stored resource of an actor the snapshot knows is never matched with that actor's other
    // resources; the actor is taken as stored now (it may have moved since the snapshot).
    let actor_index = query
        .stored
        .as_ref()
        .and_then(|s| snap.actor_index(s.actor_id));
    let actor = &built_actor;
    let party = Party {
        res: &res,
        actor,
        actor_index,
        priority: ctx.priority(&res),
    };
    let mut scratch = Scratch::default();
    let limits = &settings.query;
    let mut out: Vec<Synergy> = match query.kind {
        ResourceKind::Offer => {
            ctx.offer_candidates(party, u32::MAX, &rules, &mut scratch, limits);
            let found = std::mem::take(&mut scratch.found);
            found
                .iter()
                .filter_map(|c| {
                    if c.latent {
                        let receiver = snap.actor(c.target);
                        let a = ctx.assess_latent(party, &rules, receiver)?;
                        Some(ctx.synergy(party, None, receiver, &a))
                    } else {
                        let n = snap.resource(c.target);
                        let need = ctx.party_of(n);
                        let a = ctx.assess_pair(party, need).ok()?;
                        Some(ctx.synergy(party, Some(need), need.actor, &a))
                    }
                })
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
                    ctx.synergy(op, Some(party), actor, a)
                })
                .collect()
        }
    };
    sort_synergies(&mut out);
    Ok(out)
}

/// "de Lafarge", "d’Établissement anonyme…", "d’Arcelor".
fn de(name: &str) -> String {
    let elides = name
        .chars()
        .next()
        .is_some_and(|c| "aeiouyhàâäéèêëîïôöùûüAEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜ".contains(c));
    if elides {
        format!("d’{name}")
    } else {
        format!("de {name}")
    }
}

/// One-line explanations, French and English.
fn explain(
    tax: &Taxonomy,
    offer: Party,
    need: Option<Party>,
    receiver: &IndexedActor,
    a: &Assessment,
) -> (String, String) {
    let code = offer.res.ewc.map(|c| format!(" ({c})")).unwrap_or_default();
    let class = tax.class(offer.res.class);
    let declared = offer.res.label.trim();
    let (label_fr, label_en) = if declared.is_empty() {
        (class.label_fr.as_str(), class.label_en.as_str())
    } else {
        (declared, declared)
    };
    // "Cendres (10 01 02) de Lafarge" / "Fly ash (10 01 02) from Lafarge"; an ad-hoc query's resource
    // has no provider name.
    let provider = offer.actor.name.trim();
    let (from_fr, from_en) = if provider.is_empty() {
        (String::new(), String::new())
    } else {
        (format!(" {}", de(provider)), format!(" from {provider}"))
    };
    let subject_fr = format!("{label_fr}{code}{from_fr}");
    let subject_en = format!("{label_en}{code}{from_en}");
    let who = receiver.name.as_str();
    let (dfr, den) = (km_fr(a.distance_km), km_en(a.distance_km));
    let Some(need) = need else {
        let naf = receiver.naf_code.as_deref().unwrap_or("?");
        let pct = a.rule.map_or(a.fit.value, |r| r.probability) * 100.0;
        let pct_fr = format!("{pct:.0} %");
        let n = a.rule.map_or(0.0, |r| r.exchanges).round();
        let (kfr, ken) = match a.rule.map(|r| (r.level, r.basis)) {
            Some((FitLevel::Pathway, basis)) => {
                let (on_fr, on_en) = match basis {
                    Basis::Provider => (
                        "pour ce type de déchet venant de la même activité",
                        "for this kind of waste from the same activity",
                    ),
                    Basis::Code => ("pour ce code", "for this code"),
                    Basis::Subchapter => ("pour ce sous-chapitre", "for this subchapter"),
                    Basis::Chapter => ("pour ce chapitre", "for this chapter"),
                    Basis::Class | Basis::ParentClass | Basis::Prior => (
                        "pour cette famille de ressources",
                        "for this family of resources",
                    ),
                };
                (
                    format!("activité receveuse documentée, {n} échange(s) {on_fr}"),
                    format!("a documented receiving activity, {n} exchange(s) {on_en}"),
                )
            }
            Some((FitLevel::Profile, _)) => (
                "ressource listée parmi les intrants de son secteur".to_owned(),
                "listed among its sector's inputs".to_owned(),
            ),
            _ => (
                "activité qui reçoit souvent des ressources de cette catégorie".to_owned(),
                "an activity that often takes resources of this category".to_owned(),
            ),
        };
        // The probability is the division's (the fit may be raised for a documented class within it).
        let division = a
            .rule
            .map(|r| r.key.division().to_string())
            .unwrap_or_default();
        let (scope_fr, scope_en) = (
            format!("la division {division} :"),
            format!("division {division}:"),
        );
        let mut fr = format!(
            "{subject_fr} : pourrait intéresser {who} (activité {naf}, {kfr} ; probabilité estimée pour {scope_fr} {pct_fr}) à {dfr}"
        );
        let mut en = format!(
            "{subject_en} could interest {who} (activity {naf}, {ken}; estimated probability for {scope_en} {pct:.0} %) at {den}"
        );
        if offer.res.hazardous {
            fr.push_str(
                " ; déchet dangereux : le receveur doit détenir l’autorisation ICPE pour ce code (rubriques 2770, 2790 ou 3510 à 3560)",
            );
            en.push_str(
                "; hazardous waste: the receiver must hold the permit for this code (French ICPE rubriques 2770, 2790 or 3510–3560)",
            );
        }
        return (fr, en);
    };
    let need_label = need.res.label.trim();
    let (nfr, nen) = if need_label.is_empty() || need_label.eq_ignore_ascii_case(declared) {
        (String::new(), String::new())
    } else {
        (format!(" ({need_label})"), format!(" ({need_label})"))
    };
    let (mut fr, mut en) = match a.coverage {
        Some(c) => {
            let pct = (c * 100.0).round();
            (
                format!(
                    "{subject_fr} : couvre {pct} % du besoin {}{nfr} à {dfr}",
                    de(who)
                ),
                format!("{subject_en} covers {pct} % of {who}'s need{nen} at {den}"),
            )
        }
        None => (
            format!(
                "{subject_fr} : peut répondre au besoin {}{nfr} à {dfr}",
                de(who)
            ),
            format!("{subject_en} could meet {who}'s need{nen} at {den}"),
        ),
    };
    let (why_fr, why_en) = match a.fit.level {
        FitLevel::Code => ("code déchet accepté", "accepted waste code"),
        FitLevel::ParentClass => ("classe voisine", "related class"),
        _ => ("", ""),
    };
    if !why_fr.is_empty() {
        fr.push_str(&format!(" ; {why_fr}"));
        en.push_str(&format!("; {why_en}"));
    }
    if let (Some(to), Some(tn)) = (offer.res.temperature_c, need.res.temperature_c) {
        fr.push_str(&format!(" ; chaleur à {to:.0} °C pour {tn:.0} °C requis"));
        en.push_str(&format!("; heat at {to:.0} °C for {tn:.0} °C required"));
    }
    if let Some(hp) = a.heat_pump {
        let cop_fr = format!("{:.1}", hp.cop).replace('.', ",");
        let elec = hp
            .electricity_mwh_per_year
            .map(|e| {
                (
                    format!(", {e:.0} MWh/an d’électricité"),
                    format!(", {e:.0} MWh/yr of electricity"),
                )
            })
            .unwrap_or_default();
        fr.push_str(&format!(
            " ; via une pompe à chaleur : relèvement de {:.0} K, COP {cop_fr}{}",
            hp.lift_k, elec.0
        ));
        en.push_str(&format!(
            "; through a heat pump: {:.0} K lift, COP {:.1}{}",
            hp.lift_k, hp.cop, elec.1
        ));
    }
    if offer.res.hazardous {
        fr.push_str(" ; déchet dangereux : autorisation ICPE du receveur requise pour ce code");
        en.push_str("; hazardous waste: the receiver needs the permit for this code");
    }
    (fr, en)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::knowledge::Knowledge;
    use crate::matching::score::NeutralPriority;
    use crate::matching::snapshot::{SnapActor, SnapResource};
    use crate::matching::taxonomy::Taxonomy;
    use std::path::Path;

    const LAT: f64 = 47.32;
    const LNG: f64 = 5.04;

    #[derive(Default)]
    struct World {
        actors: Vec<SnapActor>,
        resources: Vec<SnapResource>,
        next: u128,
    }

    impl World {
        fn id(&mut self) -> Uuid {
            self.next += 1;
            Uuid::from_u128(self.next * 7919)
        }

        /// An actor `east` and `north` km from the origin.
        fn actor(&mut self, name: &str, naf: &str, east: f64, north: f64) -> Uuid {
            let id = self.id();
            self.actors.push(SnapActor {
                id,
                name: name.into(),
                naf_code: Some(naf.into()),
                lat: LAT + north / 111.2,
                lng: LNG + east / (111.2 * LAT.to_radians().cos()),
                commune: "21231".into(),
            });
            id
        }

        fn add(
            &mut self,
            actor: Uuid,
            kind: ResourceKind,
            class: &str,
            code: Option<&str>,
            qty: Option<f64>,
            label: &str,
        ) -> &mut SnapResource {
            let id = self.id();
            let tax = Taxonomy::builtin().expect("taxonomy");
            let unit = tax.get(class).map(|c| c.base_unit);
            self.resources.push(SnapResource {
                id,
                actor_id: actor,
                kind,
                class: class.into(),
                ewc_code: code.map(Into::into),
                accepted_ewc: vec![],
                hazardous: false,
                yearly_quantity: qty,
                base_unit: unit,
                months: 0,
                temperature_c: None,
                max_distance_km: None,
                label: label.into(),
            });
            self.resources.last_mut().expect("just pushed")
        }

        fn snapshot(&self) -> Snapshot {
            let t = Taxonomy::builtin().expect("taxonomy");
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/reference/cases/maestri_exchanges_part_a.csv"
            );
            let k = Knowledge::load(Path::new(path), &t).expect("knowledge");
            let snap = Snapshot::build(self.actors.clone(), self.resources.clone(), &t, &k);
            assert!(snap.skipped().is_empty(), "{:?}", snap.skipped());
            snap
        }
    }

    fn matches(snap: &Snapshot, id: Uuid) -> Vec<Synergy> {
        matches_for_resource(snap, id, &MatchingSettings::default(), &NeutralPriority)
            .expect("matches")
    }

    fn receivers(found: &[Synergy], snap: &Snapshot) -> Vec<String> {
        found
            .iter()
            .map(|s| {
                snap.actors()[snap.actor_index(s.receiver_actor_id).expect("actor") as usize]
                    .name
                    .clone()
            })
            .collect()
    }

    /// Fly ash from a power plant: a cement works that accepts the code, a brick works needing ash but
    /// farther, a concrete plant needing aggregates (profile level).
    fn fly_ash_world() -> (World, Uuid) {
        let mut w = World::default();
        let plant = w.actor("Centrale", "35.11Z", 0.0, 0.0);
        let cement = w.actor("Cimenterie", "23.51Z", 20.0, 0.0);
        let bricks = w.actor("Briqueterie", "23.32Z", 0.0, 60.0);
        let concrete = w.actor("Béton", "23.63Z", -15.0, 0.0);
        let offer = w
            .add(
                plant,
                ResourceKind::Offer,
                "material/mineral/ash",
                Some("100102"),
                Some(1000.0),
                "Cendres volantes",
            )
            .id;
        w.add(
            cement,
            ResourceKind::Need,
            "material/mineral/ash",
            None,
            Some(800.0),
            "Ajouts cimentiers",
        )
        .accepted_ewc = vec!["10 01 02".into()];
        w.add(
            bricks,
            ResourceKind::Need,
            "material/mineral/ash",
            None,
            Some(5000.0),
            "Dégraissant",
        );
        w.add(
            concrete,
            ResourceKind::Need,
            "material/mineral/aggregates",
            None,
            Some(500.0),
            "Sables",
        );
        (w, offer)
    }

    #[test]
    fn the_right_partner_ranks_first_with_an_explanation() {
        let (w, offer) = fly_ash_world();
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        // The concrete plant needs aggregates, not ash: it comes last, as a latent receiver of its
        // activity (fly ash → division 23 is documented), below the brick works' declared need.
        assert_eq!(
            receivers(&found, &snap),
            ["Cimenterie", "Briqueterie", "Béton"]
        );
        let best = &found[0];
        assert_eq!(best.fit_level, FitLevel::Code);
        assert!(!best.latent);
        assert_eq!(best.quantity, Some(800.0));
        assert_eq!(best.coverage, Some(1.0));
        assert!(
            (best.distance_km - 20.0).abs() < 0.5,
            "{}",
            best.distance_km
        );
        assert!(best.score > found[1].score && (0.0..=1.0).contains(&best.score));
        assert!(
            best.explanation_fr.starts_with("Cendres volantes (10 01 02) de Centrale : couvre 100 % du besoin de Cimenterie (Ajouts cimentiers) à 20 km"),
            "{}",
            best.explanation_fr
        );
        assert!(
            best.explanation_en
                .contains("covers 100 % of Cimenterie's need"),
            "{}",
            best.explanation_en
        );
        assert_eq!(best.id, synergy_id(offer, best.need_id.expect("declared")));
        let impact = best.impact.as_ref().expect("impact");
        assert!(impact.co2e_avoided_t > impact.transport_co2e_t && impact.net_co2e_t > 0.0);
        assert_eq!(found[1].fit_level, FitLevel::SameClass);
        assert_eq!(found[2].fit_level, FitLevel::Pathway);
        assert!(found[2].latent && found[2].need_id.is_none());
        // The same synergy seen from the need's side has the same id and score.
        let from_need = matches(&snap, best.need_id.expect("need"));
        let same = from_need
            .iter()
            .find(|s| s.id == best.id)
            .expect("found from the need side");
        assert!((same.score - best.score).abs() < 1e-12);
    }

    #[test]
    fn distance_rules_change_the_outcome() {
        let mut w = World::default();
        let sawmill = w.actor("Scierie", "16.10A", 0.0, 0.0);
        let near = w.actor("Chaufferie proche", "35.30Z", 10.0, 0.0);
        let far = w.actor("Chaufferie lointaine", "35.30Z", 90.0, 0.0);
        let too_far = w.actor("Chaufferie hors rayon", "35.30Z", 0.0, 200.0);
        let picky = w.actor("Chaufferie exigeante", "35.30Z", 0.0, 12.0);
        let offer = w
            .add(
                sawmill,
                ResourceKind::Offer,
                "material/biomass/wood",
                Some("030105"),
                Some(500.0),
                "Sciure",
            )
            .id;
        for a in [far, near, too_far] {
            w.add(
                a,
                ResourceKind::Need,
                "material/biomass/wood",
                None,
                Some(500.0),
                "Plaquettes",
            );
        }
        w.add(
            picky,
            ResourceKind::Need,
            "material/biomass/wood",
            None,
            Some(500.0),
            "Plaquettes",
        )
        .max_distance_km = Some(5.0);
        let snap = w.snapshot();
        let names = receivers(&matches(&snap, offer), &snap);
        assert_eq!(names, ["Chaufferie proche", "Chaufferie lointaine"]);
    }

    #[test]
    fn quantity_rules_change_the_outcome() {
        let mut w = World::default();
        let dairy = w.actor("Laiterie", "10.51A", 0.0, 0.0);
        let small = w.actor("Petit élevage", "01.41Z", 8.0, 0.0);
        let sized = w.actor("Élevage à la taille", "01.41Z", -8.0, 0.0);
        let huge = w.actor("Grand élevage", "01.41Z", 0.0, 8.0);
        let offer = w
            .add(
                dairy,
                ResourceKind::Offer,
                "material/biomass/food",
                Some("020501"),
                Some(100.0),
                "Lactosérum",
            )
            .id;
        w.add(
            small,
            ResourceKind::Need,
            "material/biomass/food",
            None,
            Some(10.0),
            "Aliment",
        );
        w.add(
            sized,
            ResourceKind::Need,
            "material/biomass/food",
            None,
            Some(100.0),
            "Aliment",
        );
        w.add(
            huge,
            ResourceKind::Need,
            "material/biomass/food",
            None,
            Some(5000.0),
            "Aliment",
        );
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        assert_eq!(
            receivers(&found, &snap),
            ["Élevage à la taille", "Petit élevage", "Grand élevage"]
        );
        assert_eq!(found[2].coverage, Some(0.02));
        assert_eq!(found[2].quantity, Some(100.0));
    }

    #[test]
    fn temperature_rule_changes_the_outcome() {
        let mut w = World::default();
        let dc = w.actor("Data center", "63.11Z", 0.0, 0.0);
        let pool = w.actor("Piscine", "93.11Z", 1.0, 0.0);
        let network = w.actor("Réseau de chaleur", "35.30Z", 0.0, 1.5);
        let offer = w.add(
            dc,
            ResourceKind::Offer,
            "energy/heat/low_temperature",
            None,
            Some(2000.0),
            "Chaleur fatale",
        );
        offer.temperature_c = Some(60.0);
        let offer = offer.id;
        w.add(
            pool,
            ResourceKind::Need,
            "energy/heat/low_temperature",
            None,
            Some(800.0),
            "Chauffage bassin",
        )
        .temperature_c = Some(45.0);
        w.add(
            network,
            ResourceKind::Need,
            "energy/heat/low_temperature",
            None,
            Some(800.0),
            "Retour réseau",
        )
        .temperature_c = Some(55.0);
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        // 60 °C serves the pool directly; the network's 55 °C + ΔT 10 needs a heat pump (5 K lift),
        // which ranks below direct use.
        assert_eq!(receivers(&found, &snap), ["Piscine", "Réseau de chaleur"]);
        assert!(found[0].heat_pump.is_none());
        assert!(
            found[0]
                .explanation_fr
                .contains("chaleur à 60 °C pour 45 °C requis"),
            "{}",
            found[0].explanation_fr
        );
        let hp = found[1].heat_pump.expect("heat pump variant");
        assert!((hp.lift_k - 5.0).abs() < 1e-9);
        // Carnot 338.15 K / 5 K × 0.5.
        assert!((hp.cop - 338.15 / 5.0 * 0.5).abs() < 1e-6, "{hp:?}");
        // The exchangeable heat is the need's 800 MWh; the pump's electricity is that over the COP.
        let e = hp.electricity_mwh_per_year.expect("electricity");
        assert!((e - 800.0 / hp.cop).abs() < 1e-6, "{e}");
        assert!(
            found[1].explanation_en.contains("heat pump"),
            "{}",
            found[1].explanation_en
        );
        let lax = MatchingSettings {
            heat_delta_t_c: 3.0,
            ..MatchingSettings::default()
        };
        let found = matches_for_resource(&snap, offer, &lax, &NeutralPriority).expect("matches");
        assert_eq!(receivers(&found, &snap), ["Piscine", "Réseau de chaleur"]);
    }

    #[test]
    fn hazardous_wastes_only_go_to_receivers_accepting_the_code() {
        let mut w = World::default();
        let garage = w.actor("Garage", "45.20A", 0.0, 0.0);
        let generic = w.actor("Collecteur", "38.12Z", 5.0, 0.0);
        let regenerator = w.actor("Régénérateur", "38.22Z", 30.0, 0.0);
        let refinery = w.actor("Raffinerie", "19.20Z", 3.0, 0.0);
        let offer = w.add(
            garage,
            ResourceKind::Offer,
            "material/oil/mineral_oil",
            Some("130205*"),
            Some(12.0),
            "Huiles moteur usagées",
        );
        offer.hazardous = true;
        let offer = offer.id;
        w.add(
            generic,
            ResourceKind::Need,
            "material/oil/mineral_oil",
            None,
            Some(100.0),
            "Huiles",
        );
        w.add(
            regenerator,
            ResourceKind::Need,
            "material/oil",
            None,
            Some(100.0),
            "Huiles à régénérer",
        )
        .accepted_ewc = vec!["130205".into()];
        let _ = refinery;
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        let declared: Vec<&Synergy> = found.iter().filter(|s| !s.latent).collect();
        assert_eq!(declared.len(), 1);
        assert_eq!(
            snap.actor_index(declared[0].receiver_actor_id)
                .map(|i| snap.actor(i).name.as_str()),
            Some("Régénérateur")
        );
        assert!(declared[0].components.regulatory_risk < 0.5);
        // The refinery declared nothing: a latent receiver, flagged, with the permit in the sentence.
        let latent: Vec<&Synergy> = found.iter().filter(|s| s.latent).collect();
        assert!(!latent.is_empty());
        assert!(found.iter().all(|s| s.requires_authorisation));
        assert!(
            latent[0].explanation_fr.contains("autorisation ICPE"),
            "{}",
            latent[0].explanation_fr
        );
        assert!(latent.iter().all(|s| s.components.regulatory_risk < 0.5));
        // The collector's need for oils does not accept the code: never matched as a declared need.
        assert!(found.iter().all(|s| {
            snap.actor_index(s.receiver_actor_id)
                .map(|i| snap.actor(i).name.as_str())
                != Some("Collecteur")
        }));
    }

    #[test]
    fn latent_synergies_appear_and_rank_below_equal_declared_ones() {
        let mut w = World::default();
        let sawmill = w.actor("Scierie", "16.10A", 0.0, 0.0);
        let silent = w.actor("Panneaux silencieux", "16.21Z", 12.0, 0.0);
        let declared = w.actor("Panneaux déclarés", "16.21Z", 0.0, 12.0);
        let offer = w
            .add(
                sawmill,
                ResourceKind::Offer,
                "material/biomass/wood",
                Some("030105"),
                Some(300.0),
                "Sciure",
            )
            .id;
        // Declared, but in another class: the need is not matched; the actor is a latent receiver
        // like its silent neighbour (same activity, same evidence, same fit).
        w.add(
            declared,
            ResourceKind::Need,
            "material/biomass/agricultural",
            None,
            None,
            "Fibres",
        );
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|s| s.latent && s.need_id.is_none()));
        assert!(
            (found[0].components.resource_fit - found[1].components.resource_fit).abs() < 1e-12
        );
        // A declared wood need ranks above the latent receiver of equal distance.
        w.add(
            declared,
            ResourceKind::Need,
            "material/biomass/wood",
            None,
            None,
            "Copeaux",
        );
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        assert_eq!(
            receivers(&found, &snap),
            ["Panneaux déclarés", "Panneaux silencieux"]
        );
        let (d, l) = (&found[0], &found[1]);
        assert!(!d.latent && l.latent);
        assert_eq!(d.fit_level, FitLevel::SameClass);
        assert!(l.components.confidence < d.components.confidence);
        assert!(d.score > l.score);
        assert_eq!(l.need_id, None);
        assert_eq!(l.id, latent_synergy_id(offer, silent));
        assert!(
            l.explanation_fr
                .contains("pourrait intéresser Panneaux silencieux (activité 16.21Z"),
            "{}",
            l.explanation_fr
        );
        assert!(
            l.explanation_en
                .contains("could interest Panneaux silencieux (activity 16.21Z"),
            "{}",
            l.explanation_en
        );
        // Once the silent panel maker declares a wood need, it is no longer latent.
        w.add(
            silent,
            ResourceKind::Need,
            "material/biomass/wood",
            None,
            Some(200.0),
            "Sciure",
        );
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        assert!(found.iter().all(|s| !s.latent));
        assert_eq!(receivers(&found, &snap)[0], "Panneaux silencieux");
        // Disabled by settings.
        let none = MatchingSettings {
            query: SearchLimits {
                max_latent: 0,
                ..SearchLimits::query()
            },
            ..MatchingSettings::default()
        };
        let (w2, offer2) = fly_ash_world();
        let snap2 = w2.snapshot();
        assert!(
            matches_for_resource(&snap2, offer2, &none, &NeutralPriority)
                .expect("ok")
                .iter()
                .all(|s| !s.latent)
        );
    }

    #[test]
    fn base_units_must_agree() {
        let mut w = World::default();
        let a = w.actor("A", "10.51A", 0.0, 0.0);
        let b = w.actor("B", "01.41Z", 5.0, 0.0);
        let offer = w
            .add(
                a,
                ResourceKind::Offer,
                "material/biomass/food",
                None,
                Some(100.0),
                "Lactosérum",
            )
            .id;
        w.add(
            b,
            ResourceKind::Need,
            "material/biomass/food",
            None,
            Some(100.0),
            "Aliment",
        )
        .base_unit = Some(BaseUnit::Megawatthour);
        let snap = w.snapshot();
        assert!(matches(&snap, offer).iter().all(|s| s.need_id.is_none()));
    }

    #[test]
    fn detection_is_deterministic_and_ids_are_stable() {
        let (mut w, _) = fly_ash_world();
        let snap = w.snapshot();
        let settings = MatchingSettings {
            threads: 2,
            ..MatchingSettings::default()
        };
        let a = detect_all(&snap, &settings, &NeutralPriority).expect("detect");
        assert!(a.len() >= 3);
        assert!(a.windows(2).all(|p| p[0].score >= p[1].score));
        w.actors.reverse();
        w.resources.reverse();
        let b = detect_all(&w.snapshot(), &settings, &NeutralPriority).expect("detect");
        assert_eq!(a, b);
        let compact = detect(&snap, &settings, &NeutralPriority).expect("detect");
        assert_eq!(compact.len(), a.len());
        let c = compact[0];
        assert_eq!(c.provider_actor(&snap), snap.resource(c.offer).actor);
        assert!(a.iter().any(|s| s.id == c.id(&snap)));
        let s = synergy_of(&snap, &c, &settings, &NeutralPriority).expect("materialise");
        assert_eq!(s.id, c.id(&snap));
    }

    #[test]
    fn territorial_priority_is_pluggable() {
        let (w, offer) = fly_ash_world();
        let snap = w.snapshot();
        let settings = MatchingSettings::default();
        let high = |class: &str, code: Option<&str>| {
            if class.ends_with("ash") && code == Some("100102") {
                1.0
            } else {
                0.0
            }
        };
        let a = matches_for_resource(&snap, offer, &settings, &high).expect("ok");
        let b = matches_for_resource(&snap, offer, &settings, &NeutralPriority).expect("ok");
        assert_eq!(a[0].components.territorial_priority, 1.0);
        assert!(a[0].score > b[0].score);
    }

    #[test]
    fn adhoc_queries() {
        let (w, _) = fly_ash_world();
        let snap = w.snapshot();
        let settings = MatchingSettings::default();
        let q = AdhocQuery {
            kind: ResourceKind::Offer,
            ewc_code: Some("10 01 02".into()),
            class: None,
            accepted_ewc: vec![],
            hazardous: None,
            label: Some("Cendres".into()),
            quantity: Some(10.0),
            unit: Some(Unit::Tonne),
            period: Some(Period::Week),
            yearly_quantity: None,
            base_unit: None,
            lat: LAT,
            lng: LNG + 0.01,
            max_distance_km: None,
            temperature_c: None,
            months: None,
            naf_code: None,
            stored: None,
        };
        let found = match_adhoc(&snap, &q, &settings, &NeutralPriority).expect("adhoc");
        assert_eq!(receivers(&found, &snap)[0], "Cimenterie");
        assert_eq!(found[0].offer_id, Uuid::nil());
        assert_eq!(found[0].quantity, Some(520.0));
        let need = AdhocQuery {
            kind: ResourceKind::Need,
            ewc_code: None,
            class: Some("material/mineral/ash".into()),
            ..q.clone()
        };
        let providers = match_adhoc(&snap, &need, &settings, &NeutralPriority).expect("adhoc need");
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].need_id, Some(Uuid::nil()));
        let bad = AdhocQuery {
            lat: 123.0,
            ..q.clone()
        };
        assert!(matches!(
            match_adhoc(&snap, &bad, &settings, &NeutralPriority),
            Err(MatchingError::InvalidQuery { field: "lat", .. })
        ));
        let nothing = AdhocQuery {
            ewc_code: None,
            ..q
        };
        assert!(match_adhoc(&snap, &nothing, &settings, &NeutralPriority).is_err());
        assert!(matches!(
            matches_for_resource(&snap, Uuid::from_u128(1), &settings, &NeutralPriority),
            Err(MatchingError::UnknownResource(_))
        ));
    }

    #[test]
    fn an_unrelated_declared_need_is_not_matched_the_actor_is_latent() {
        // Steel slag and a cement works that declared a need for gypsum: slag → cement is documented
        // (10 02 02 → 23.51), which says the cement works may take slag, not that slag is gypsum.
        let mut w = World::default();
        let steel = w.actor("Aciérie", "24.10Z", 0.0, 0.0);
        let cement = w.actor("Cimenterie", "23.51Z", 30.0, 0.0);
        let offer = w
            .add(
                steel,
                ResourceKind::Offer,
                "material/mineral/slag",
                Some("100202"),
                Some(10_000.0),
                "Laitier",
            )
            .id;
        w.add(
            cement,
            ResourceKind::Need,
            "material/mineral/gypsum",
            None,
            Some(2000.0),
            "Gypse",
        );
        let snap = w.snapshot();
        let found = matches(&snap, offer);
        assert_eq!(found.len(), 1);
        assert!(found[0].latent);
        assert_eq!(found[0].need_id, None);
        assert_eq!(found[0].fit_level, FitLevel::Pathway);
        assert!(
            found[0]
                .explanation_fr
                .contains("activité receveuse documentée"),
            "{}",
            found[0].explanation_fr
        );
    }
}
