//! The synergy graph: actors as nodes, candidate exchanges (synergies) as directed edges, provider →
//! receiver, on a petgraph `DiGraph`.
//!
//! What a facilitator asks of the graph, and what answers it here:
//! - **allocation** ([`SynergyGraph::allocate`]): an offer rarely covers every need it matches and a need
//!   is often matched by several offers; ranking synergies one by one then promises the same tonnes twice.
//!   The global allocation splits each offer's limited yearly quantity among competing needs so that the
//!   total value Σ score × quantity is maximal, exactly, by min-cost flow (petgraph 0.8 has no min-cost
//!   flow, so a cost-scaling solver is written here);
//! - **chains** A → B → C ([`SynergyGraph::chains`]) and **loops** ([`SynergyGraph::loops`], strongly
//!   connected components): cascades and closed loops are what makes a territory a *symbiosis* rather
//!   than a set of bilateral deals;
//! - **hubs** ([`SynergyGraph::hubs`]): the actors most synergies depend on, who should be met first;
//! - **exports** for tools facilitators already use: JSON nodes/links (d3), GraphML (Gephi), GeoJSON (QGIS,
//!   web maps).
//!
//! The module takes its own plain input types ([`GraphActor`], [`GraphEdge`]) so that it does not depend
//! on how candidates are generated or scored; the caller converts. Display names are exported exactly as
//! given, so anonymisation is the caller's job (replace `name` before building the graph).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------
// Input types
// ---------------------------------------------------------------------------------------------------

/// An actor (site) as the graph sees it. `name` is exported as given: anonymise before building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphActor {
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    pub lat: f64,
    pub lng: f64,
}

/// One candidate exchange: (part of) offer `offer_id` of `from_actor` going to `to_actor`, to meet its need
/// `need_id` (absent for latent synergies, where the receiver declared no need).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphEdge {
    pub synergy_id: Uuid,
    pub offer_id: Uuid,
    pub need_id: Option<Uuid>,
    pub from_actor: Uuid,
    pub to_actor: Uuid,
    /// Resource class of the exchanged resource (taxonomy path).
    pub class: String,
    /// Synergy score in [0, 1].
    pub score: f64,
    pub distance_km: f64,
    pub latent: bool,
    /// Yearly amount the offer makes available, in `base_unit`.
    pub offer_quantity: Option<f64>,
    /// Yearly amount the need wants, in `base_unit`.
    pub need_quantity: Option<f64>,
    /// Base unit of both quantities (`t`, `m3`, `MWh`, `unit`): each unit is a separate commodity.
    pub base_unit: String,
}

impl GraphEdge {
    /// The most this synergy could carry per year: the smaller of the known offer and need quantities
    /// (one of them when only one is known), `None` when neither is known.
    pub fn potential_quantity(&self) -> Option<f64> {
        match (
            valid_quantity(self.offer_quantity),
            valid_quantity(self.need_quantity),
        ) {
            (Some(o), Some(n)) => Some(o.min(n)),
            (Some(q), None) | (None, Some(q)) => Some(q),
            (None, None) => None,
        }
    }
}

/// A quantity usable in computations: finite and strictly positive.
fn valid_quantity(q: Option<f64>) -> Option<f64> {
    q.filter(|q| q.is_finite() && *q > 0.0)
}

/// Why a graph cannot be built. These reveal inconsistent input (a bug upstream), so building fails
/// instead of silently producing a graph whose exports would be invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    #[error("actor {0} appears more than once")]
    DuplicateActor(Uuid),
    #[error("actor {actor_id} has invalid coordinates (lat {lat}, lng {lng})")]
    InvalidCoordinates { actor_id: Uuid, lat: f64, lng: f64 },
    #[error("synergy {0} appears more than once")]
    DuplicateSynergy(Uuid),
    #[error("synergy {synergy_id} refers to unknown actor {actor_id}")]
    UnknownActor { synergy_id: Uuid, actor_id: Uuid },
    #[error("synergy {synergy_id}: {reason}")]
    InvalidEdge {
        synergy_id: Uuid,
        reason: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------------
// The graph
// ---------------------------------------------------------------------------------------------------

/// Actors and candidate exchanges as a directed multigraph (several synergies may link the same two
/// actors). Nodes are inserted in actor-id order and edges in synergy-id order, so node and edge indices
/// — and with them every traversal and every output — are deterministic for a given input set.
#[derive(Debug, Clone)]
pub struct SynergyGraph {
    graph: DiGraph<GraphActor, GraphEdge>,
    nodes: HashMap<Uuid, NodeIndex>,
}

impl SynergyGraph {
    /// Builds the graph. Fails on duplicate ids, edges to unknown actors, coordinates out of range, a
    /// score outside [0, 1] or a negative/non-finite distance.
    pub fn build(
        mut actors: Vec<GraphActor>,
        mut edges: Vec<GraphEdge>,
    ) -> Result<Self, GraphError> {
        actors.sort_by_key(|a| a.id);
        edges.sort_by_key(|e| e.synergy_id);

        let mut graph = DiGraph::with_capacity(actors.len(), edges.len());
        let mut nodes = HashMap::with_capacity(actors.len());
        for actor in actors {
            let coordinates_ok = actor.lat.is_finite()
                && actor.lng.is_finite()
                && (-90.0..=90.0).contains(&actor.lat)
                && (-180.0..=180.0).contains(&actor.lng);
            if !coordinates_ok {
                return Err(GraphError::InvalidCoordinates {
                    actor_id: actor.id,
                    lat: actor.lat,
                    lng: actor.lng,
                });
            }
            let id = actor.id;
            if nodes.contains_key(&id) {
                return Err(GraphError::DuplicateActor(id));
            }
            let index = graph.add_node(actor);
            nodes.insert(id, index);
        }

        let mut previous: Option<Uuid> = None;
        for edge in edges {
            if previous == Some(edge.synergy_id) {
                return Err(GraphError::DuplicateSynergy(edge.synergy_id));
            }
            previous = Some(edge.synergy_id);
            if !(edge.score.is_finite() && (0.0..=1.0).contains(&edge.score)) {
                return Err(GraphError::InvalidEdge {
                    synergy_id: edge.synergy_id,
                    reason: "score must be a number in [0, 1]",
                });
            }
            if !(edge.distance_km.is_finite() && edge.distance_km >= 0.0) {
                return Err(GraphError::InvalidEdge {
                    synergy_id: edge.synergy_id,
                    reason: "distance must be a non-negative number",
                });
            }
            let lookup = |actor_id: Uuid| {
                nodes
                    .get(&actor_id)
                    .copied()
                    .ok_or(GraphError::UnknownActor {
                        synergy_id: edge.synergy_id,
                        actor_id,
                    })
            };
            let from = lookup(edge.from_actor)?;
            let to = lookup(edge.to_actor)?;
            graph.add_edge(from, to, edge);
        }
        Ok(Self { graph, nodes })
    }

    /// The underlying petgraph graph, for analyses not provided here.
    pub fn graph(&self) -> &DiGraph<GraphActor, GraphEdge> {
        &self.graph
    }

    pub fn actor_count(&self) -> usize {
        self.graph.node_count()
    }

    pub fn synergy_count(&self) -> usize {
        self.graph.edge_count()
    }

    pub fn actor(&self, id: Uuid) -> Option<&GraphActor> {
        self.nodes.get(&id).map(|&index| &self.graph[index])
    }

    /// Edges between two distinct actors: self-loops (an actor reusing its own outflow) carry nothing
    /// between actors, so chains, loops and hubs ignore them; exports and allocation keep them.
    fn between_actors(
        &self,
    ) -> impl Iterator<Item = petgraph::graph::EdgeReference<'_, GraphEdge>> {
        self.graph
            .edge_references()
            .filter(|e| e.source() != e.target())
    }
}

// ---------------------------------------------------------------------------------------------------
// Allocation: min-cost flow by cost scaling
// ---------------------------------------------------------------------------------------------------

/// Why a synergy takes no part in the allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationExclusion {
    /// Latent synergy: the receiver declared no need, so there is no quantity to cap what it takes and
    /// the exchange is a hypothesis, not a claim on the offer.
    Latent,
    /// Not latent but without a need id: inconsistent input, treated like a latent synergy.
    NoNeed,
    /// Empty base unit: the commodity is unknown.
    UnknownUnit,
    /// The offer's yearly quantity is unknown (or not a positive number).
    UnknownOfferQuantity,
    /// The need's yearly quantity is unknown (or not a positive number).
    UnknownNeedQuantity,
    /// Score rounds to zero: routing quantity through it adds no value.
    NoValue,
}

/// The quantity given to one synergy by the allocation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SynergyAllocation {
    pub synergy_id: Uuid,
    pub offer_id: Uuid,
    pub need_id: Uuid,
    pub base_unit: String,
    pub score: f64,
    /// Yearly quantity allocated, in `base_unit` (0 when the synergy loses to better uses).
    pub allocated: f64,
    /// `allocated` / the offer's yearly quantity, in [0, 1].
    pub share_of_offer: f64,
    /// `allocated` / the need's yearly quantity, in [0, 1].
    pub share_of_need: f64,
    /// `score` × `allocated`.
    pub value: f64,
}

/// A synergy left out of the allocation, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExcludedSynergy {
    pub synergy_id: Uuid,
    pub reason: AllocationExclusion,
}

/// Allocation figures of one commodity (base unit).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitAllocation {
    pub base_unit: String,
    pub offers: usize,
    pub needs: usize,
    pub synergies: usize,
    pub allocated: f64,
    pub value: f64,
    pub greedy_allocated: f64,
    pub greedy_value: f64,
    /// False only if a component was too large for the exact solver (over a million offers and needs
    /// linked together); its synergies then get the greedy allocation, and this is logged.
    pub exact: bool,
}

/// Global allocation of offer quantities to needs, maximising Σ score × quantity per commodity.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Allocation {
    /// Every synergy that took part, sorted by value (descending) then synergy id. The API lists
    /// only those that receive a quantity, rounded (see [`Allocation::readable`]).
    pub per_synergy: Vec<SynergyAllocation>,
    /// Synergies left out, sorted by synergy id.
    pub excluded: Vec<ExcludedSynergy>,
    /// One entry per base unit, sorted by unit.
    pub by_unit: Vec<UnitAllocation>,
    /// Σ score × allocated over all units. Mixing units only makes sense to compare with
    /// `greedy_value`; per-unit figures are in `by_unit`.
    pub total_value: f64,
    pub total_allocated_by_unit: BTreeMap<String, f64>,
    /// Value of the greedy pass (highest score first) on the same synergies, for comparison: never more
    /// than `total_value`.
    pub greedy_value: f64,
}

impl Allocation {
    /// The allocation as a reader wants it: only the flows that receive a quantity, and figures
    /// rounded to what they mean — quantities and values to 1e-3 of their unit (no
    /// `156000.0000000855`), shares and scores to 1e-4.
    pub fn readable(mut self) -> Allocation {
        let r = |x: f64, d: i32| crate::reference::lang::round_to(x, d);
        self.per_synergy.retain(|p| r(p.allocated, 3) > 0.0);
        for p in &mut self.per_synergy {
            p.allocated = r(p.allocated, 3);
            p.value = r(p.value, 3);
            p.score = r(p.score, 4);
            p.share_of_offer = r(p.share_of_offer, 4);
            p.share_of_need = r(p.share_of_need, 4);
        }
        for u in &mut self.by_unit {
            u.allocated = r(u.allocated, 3);
            u.value = r(u.value, 3);
            u.greedy_allocated = r(u.greedy_allocated, 3);
            u.greedy_value = r(u.greedy_value, 3);
        }
        self.total_value = r(self.total_value, 3);
        self.greedy_value = r(self.greedy_value, 3);
        for v in self.total_allocated_by_unit.values_mut() {
            *v = r(*v, 3);
        }
        self
    }
}

/// Scores are turned into integer costs (micro-score units) so that the solver works in exact integer
/// arithmetic; scores closer than 1e-6 count as equal.
const COST_SCALE: f64 = 1_000_000.0;

/// One synergy eligible for allocation.
#[derive(Debug, Clone)]
struct FlowCandidate {
    synergy_id: Uuid,
    offer_id: Uuid,
    need_id: Uuid,
    score: f64,
    cost: i64,
    offer_quantity: f64,
    need_quantity: f64,
}

impl SynergyGraph {
    /// Allocates limited offer quantities among competing needs, maximising Σ score × quantity, exactly
    /// (min-cost flow), separately for each base unit (tonnes never mix with MWh).
    ///
    /// Network per unit and per connected component of offers and needs: each offer supplies its yearly
    /// quantity, to its needs (one arc per synergy, cost −score) or to "unused" (cost 0); each need
    /// takes up to its yearly quantity. The minimum-cost flow maximises value, not the quantity moved:
    /// a low-score synergy is not used merely because it adds tonnes (see `solve_component`).
    ///
    /// Left out (listed in `excluded`): latent synergies (no declared need to cap them), synergies whose
    /// offer or need quantity is unknown (no capacity to share) and zero-score synergies. When the edges
    /// of one offer disagree on its quantity, the smallest is used (likewise for needs).
    pub fn allocate(&self) -> Allocation {
        let mut excluded = Vec::new();
        let mut by_commodity: BTreeMap<&str, Vec<FlowCandidate>> = BTreeMap::new();
        // Edge indices follow synergy-id order (see `build`), so candidates are in a stable order.
        for edge in self.graph.edge_weights() {
            match flow_candidate(edge) {
                Ok(candidate) => by_commodity
                    .entry(edge.base_unit.trim())
                    .or_default()
                    .push(candidate),
                Err(reason) => excluded.push(ExcludedSynergy {
                    synergy_id: edge.synergy_id,
                    reason,
                }),
            }
        }

        let mut per_synergy = Vec::new();
        let mut by_unit = Vec::new();
        let mut total_allocated_by_unit = BTreeMap::new();
        for (unit, candidates) in by_commodity {
            let solved = allocate_commodity(&candidates);
            let mut unit_summary = UnitAllocation {
                base_unit: unit.to_owned(),
                offers: solved.offers,
                needs: solved.needs,
                synergies: candidates.len(),
                allocated: 0.0,
                value: 0.0,
                greedy_allocated: solved.greedy.iter().sum(),
                greedy_value: candidates
                    .iter()
                    .zip(&solved.greedy)
                    .map(|(c, q)| c.score * q)
                    .sum(),
                exact: solved.exact,
            };
            for (candidate, (&allocated, (&offer_cap, &need_cap))) in candidates.iter().zip(
                solved
                    .optimal
                    .iter()
                    .zip(solved.offer_caps.iter().zip(&solved.need_caps)),
            ) {
                let value = candidate.score * allocated;
                unit_summary.allocated += allocated;
                unit_summary.value += value;
                per_synergy.push(SynergyAllocation {
                    synergy_id: candidate.synergy_id,
                    offer_id: candidate.offer_id,
                    need_id: candidate.need_id,
                    base_unit: unit.to_owned(),
                    score: candidate.score,
                    allocated,
                    share_of_offer: (allocated / offer_cap).clamp(0.0, 1.0),
                    share_of_need: (allocated / need_cap).clamp(0.0, 1.0),
                    value,
                });
            }
            total_allocated_by_unit.insert(unit.to_owned(), unit_summary.allocated);
            by_unit.push(unit_summary);
        }
        per_synergy.sort_by(|a, b| {
            b.value
                .total_cmp(&a.value)
                .then(a.synergy_id.cmp(&b.synergy_id))
        });
        Allocation {
            total_value: by_unit.iter().map(|u| u.value).sum(),
            greedy_value: by_unit.iter().map(|u| u.greedy_value).sum(),
            per_synergy,
            excluded,
            by_unit,
            total_allocated_by_unit,
        }
    }
}

fn flow_candidate(edge: &GraphEdge) -> Result<FlowCandidate, AllocationExclusion> {
    if edge.latent {
        return Err(AllocationExclusion::Latent);
    }
    let need_id = edge.need_id.ok_or(AllocationExclusion::NoNeed)?;
    if edge.base_unit.trim().is_empty() {
        return Err(AllocationExclusion::UnknownUnit);
    }
    let offer_quantity =
        valid_quantity(edge.offer_quantity).ok_or(AllocationExclusion::UnknownOfferQuantity)?;
    let need_quantity =
        valid_quantity(edge.need_quantity).ok_or(AllocationExclusion::UnknownNeedQuantity)?;
    // Score is validated in [0, 1] by `build`, so the product fits an i64 with room to spare.
    let cost = -((edge.score * COST_SCALE).round() as i64);
    if cost >= 0 {
        return Err(AllocationExclusion::NoValue);
    }
    Ok(FlowCandidate {
        synergy_id: edge.synergy_id,
        offer_id: edge.offer_id,
        need_id,
        score: edge.score,
        cost,
        offer_quantity,
        need_quantity,
    })
}

/// Result of one commodity: quantities per candidate (same order as the input).
struct CommoditySolution {
    optimal: Vec<f64>,
    greedy: Vec<f64>,
    /// Capacity of the candidate's offer and need (after reconciling disagreeing edges).
    offer_caps: Vec<f64>,
    need_caps: Vec<f64>,
    offers: usize,
    needs: usize,
    exact: bool,
}

fn allocate_commodity(candidates: &[FlowCandidate]) -> CommoditySolution {
    // Capacities: the smallest declared value when edges disagree (conservative).
    let mut offers: BTreeMap<Uuid, f64> = BTreeMap::new();
    let mut needs: BTreeMap<Uuid, f64> = BTreeMap::new();
    for c in candidates {
        let o = offers.entry(c.offer_id).or_insert(c.offer_quantity);
        *o = o.min(c.offer_quantity);
        let n = needs.entry(c.need_id).or_insert(c.need_quantity);
        *n = n.min(c.need_quantity);
    }
    let offer_caps: Vec<f64> = candidates
        .iter()
        .map(|c| offers.get(&c.offer_id).copied().unwrap_or(c.offer_quantity))
        .collect();
    let need_caps: Vec<f64> = candidates
        .iter()
        .map(|c| needs.get(&c.need_id).copied().unwrap_or(c.need_quantity))
        .collect();

    // Offers and needs not linked, even indirectly, by synergies do not compete: each connected
    // component is an independent problem, solved on its own small network.
    let greedy = greedy_allocation(candidates, &offers, &needs);
    let mut optimal = vec![0.0; candidates.len()];
    let mut exact = true;
    for members in components(candidates) {
        if !solve_component(candidates, &members, &offer_caps, &need_caps, &mut optimal) {
            // Components are independent, so the greedy pass restricted to this one is still feasible.
            exact = false;
            for &i in &members {
                optimal[i] = greedy[i];
            }
        }
    }

    CommoditySolution {
        optimal,
        greedy,
        offer_caps,
        need_caps,
        offers: offers.len(),
        needs: needs.len(),
        exact,
    }
}

/// Candidates grouped by connected component of the offer–need graph (union–find), each group in input
/// order, groups in order of their first candidate.
fn components(candidates: &[FlowCandidate]) -> Vec<Vec<usize>> {
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut slot: HashMap<(bool, Uuid), usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut ends = Vec::with_capacity(candidates.len());
    for c in candidates {
        let mut slot_of = |key: (bool, Uuid)| {
            *slot.entry(key).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            })
        };
        let o = slot_of((false, c.offer_id));
        let n = slot_of((true, c.need_id));
        ends.push((o, n));
    }
    for &(o, n) in &ends {
        let (ro, rn) = (find(&mut parent, o), find(&mut parent, n));
        parent[ro] = rn;
    }
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, &(o, _)) in ends.iter().enumerate() {
        let root = find(&mut parent, o);
        let group = *group_of_root.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(i);
    }
    groups
}

/// Min-cost flow on one component; writes the flow of each member candidate into `optimal`.
/// Returns false if the component could not be solved exactly (see [`FlowNetwork::min_cost_flow`]).
///
/// Network: each offer supplies its yearly quantity; it can send it to its needs (one arc per synergy,
/// cost −score) or leave it unused (arc to a collector node T, cost 0); each need forwards what it
/// receives to T, up to its yearly quantity (cost 0). T absorbs the total supply. A minimum-cost flow
/// is then a maximum-value allocation, whatever the quantity moved: a synergy is used only if it adds
/// value, and no offer is forced anywhere.
fn solve_component(
    candidates: &[FlowCandidate],
    members: &[usize],
    offer_caps: &[f64],
    need_caps: &[f64],
    optimal: &mut [f64],
) -> bool {
    // Quantities become integers in units of `quantum` (2^-40 of the largest capacity): the solver then
    // works in exact integer arithmetic, and the rounding is far below any meaningful quantity.
    let largest = members
        .iter()
        .map(|&i| offer_caps[i].max(need_caps[i]))
        .fold(0.0, f64::max);
    if largest <= 0.0 {
        return true;
    }
    let quantum = largest / QUANTITY_STEPS;
    let to_units = |q: f64| (q / quantum).round() as i64;

    let mut offer_node: HashMap<Uuid, usize> = HashMap::new();
    let mut need_node: HashMap<Uuid, usize> = HashMap::new();
    let mut offers_and_needs: Vec<(bool, i64)> = Vec::new();
    let mut ends = Vec::with_capacity(members.len());
    for &i in members {
        let c = &candidates[i];
        let from = *offer_node.entry(c.offer_id).or_insert_with(|| {
            offers_and_needs.push((true, to_units(offer_caps[i])));
            offers_and_needs.len() - 1
        });
        let to = *need_node.entry(c.need_id).or_insert_with(|| {
            offers_and_needs.push((false, to_units(need_caps[i])));
            offers_and_needs.len() - 1
        });
        ends.push((from, to));
    }
    let collector = offers_and_needs.len();
    let mut supply = vec![0i64; collector + 1];
    // Synergy arcs first, so that arc k of the network is member k.
    let mut arcs: Vec<ArcSpec> = members
        .iter()
        .zip(&ends)
        .map(|(&i, &(from, to))| ArcSpec {
            from,
            to,
            capacity: to_units(offer_caps[i].min(need_caps[i])),
            cost: candidates[i].cost,
        })
        .collect();
    for (node, &(is_offer, units)) in offers_and_needs.iter().enumerate() {
        arcs.push(ArcSpec {
            from: node,
            to: collector,
            capacity: units,
            cost: 0,
        });
        if is_offer {
            supply[node] = units;
            supply[collector] -= units;
        }
    }
    let mut network = FlowNetwork::new(supply, &arcs);
    let exact = network.min_cost_flow();
    for (k, &i) in members.iter().enumerate() {
        optimal[i] = network.flow_on(k) as f64 * quantum;
    }
    exact
}

/// Resolution of quantities in the solver: 2^40 steps for the largest capacity of a component (relative
/// precision 1e-12). Supplies stay far from i64 overflow for up to 2^22 offers per component.
const QUANTITY_STEPS: f64 = 1_099_511_627_776.0;

/// The greedy pass a facilitator would do by hand: highest score first, each synergy takes what is left
/// of its offer and its need. Kept only as a yardstick for the exact allocation.
fn greedy_allocation(
    candidates: &[FlowCandidate],
    offers: &BTreeMap<Uuid, f64>,
    needs: &BTreeMap<Uuid, f64>,
) -> Vec<f64> {
    let mut offer_left = offers.clone();
    let mut need_left = needs.clone();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .score
            .total_cmp(&candidates[a].score)
            .then(candidates[a].synergy_id.cmp(&candidates[b].synergy_id))
    });
    let mut taken = vec![0.0; candidates.len()];
    for i in order {
        let c = &candidates[i];
        let (Some(o), Some(n)) = (
            offer_left.get_mut(&c.offer_id),
            need_left.get_mut(&c.need_id),
        ) else {
            continue;
        };
        let q = o.min(*n).max(0.0);
        *o -= q;
        *n -= q;
        taken[i] = q;
    }
    taken
}

/// An arc to build a [`FlowNetwork`] from.
#[derive(Debug, Clone, Copy)]
struct ArcSpec {
    from: usize,
    to: usize,
    capacity: i64,
    cost: i64,
}

/// One arc of the residual network, stored with the other arcs leaving the same node; `reverse` is the
/// position of its partner (a reverse arc's residual capacity is the flow on its forward arc).
#[derive(Debug, Clone, Copy, Default)]
struct ResidualArc {
    to: usize,
    reverse: usize,
    residual: i64,
    cost: i64,
}

/// A residual network with node supplies, for min-cost flow, in compressed-sparse-row form (the arcs
/// leaving node `u` are `arcs[first[u]..first[u + 1]]`): the solver scans adjacency lists millions of
/// times, so contiguity matters. petgraph 0.8 offers max-flow but no min-cost flow.
#[derive(Debug, Clone)]
struct FlowNetwork {
    first: Vec<usize>,
    arcs: Vec<ResidualArc>,
    /// Position of the k-th arc given to `new`.
    forward: Vec<usize>,
    /// Supply (> 0) or demand (< 0) of each node; they sum to zero.
    supply: Vec<i64>,
}

/// Cost-scaling factor: ε is divided by this between refinements.
const SCALING_FACTOR: i64 = 8;

/// Above this many nodes in one component, potentials could overflow i64 (they are bounded by about
/// 3.2e6 · n²): such a component falls back to the greedy allocation, flagged as not exact.
const MAX_EXACT_NODES: usize = 1_000_000;

impl FlowNetwork {
    fn new(supply: Vec<i64>, specs: &[ArcSpec]) -> Self {
        let n = supply.len();
        let mut first = vec![0usize; n + 1];
        for spec in specs {
            first[spec.from + 1] += 1;
            first[spec.to + 1] += 1;
        }
        for u in 0..n {
            first[u + 1] += first[u];
        }
        let mut next = first.clone();
        let mut arcs = vec![ResidualArc::default(); 2 * specs.len()];
        let mut forward = Vec::with_capacity(specs.len());
        for spec in specs {
            let (i, j) = (next[spec.from], next[spec.to]);
            next[spec.from] += 1;
            next[spec.to] += 1;
            arcs[i] = ResidualArc {
                to: spec.to,
                reverse: j,
                residual: spec.capacity.max(0),
                cost: spec.cost,
            };
            arcs[j] = ResidualArc {
                to: spec.from,
                reverse: i,
                residual: 0,
                cost: -spec.cost,
            };
            forward.push(i);
        }
        Self {
            first,
            arcs,
            forward,
            supply,
        }
    }

    /// Flow carried by the k-th arc given to `new`: the residual capacity of its reverse.
    fn flow_on(&self, k: usize) -> i64 {
        self.arcs[self.arcs[self.forward[k]].reverse].residual
    }

    /// Minimum-cost flow meeting every supply, by cost scaling (Goldberg–Tarjan push–relabel).
    ///
    /// Why not successive shortest paths: they need one shortest-path computation per distinct path
    /// cost, and with continuous scores that is about one per synergy — quadratic overall. On a
    /// synthetic région (20 000 resources, 200 000 synergies, 5 classes, one loaded 2-core machine)
    /// they took 181 s (primal–dual variant, Dijkstra with potentials plus blocking flows); this
    /// solver took 4.4 s, and 2.2 s with 30 classes (SSP: 12.7 s). Exactness is checked by the tests
    /// against brute force and against an independent negative-cycle certificate.
    ///
    /// Costs are multiplied by n + 1, so that a flow that is 1-optimal for the scaled costs is
    /// optimal for the integer costs (any cycle then has a reduced cost above −1, hence ≥ 0). Starting
    /// from ε = the largest scaled cost, each `refine` turns an ε·α-optimal flow into an ε-optimal one;
    /// after the round with ε = 1 the flow is optimal. All arithmetic is on integers, so this is exact.
    ///
    /// Returns false, with flows that must not be used, when the network is too large for exact
    /// potentials or is infeasible (which the caller's construction rules out).
    fn min_cost_flow(&mut self) -> bool {
        let n = self.supply.len();
        if n > MAX_EXACT_NODES {
            tracing::warn!(
                nodes = n,
                "allocation component too large for the exact solver"
            );
            return false;
        }
        let scale = n as i64 + 1;
        for arc in &mut self.arcs {
            arc.cost *= scale;
        }
        let mut excess = self.supply.clone();
        let mut potential = vec![0i64; n];
        let mut epsilon = self.arcs.iter().map(|a| a.cost.abs()).max().unwrap_or(0);
        let mut feasible = true;
        loop {
            epsilon = (epsilon / SCALING_FACTOR).max(1);
            if !self.refine(epsilon, &mut excess, &mut potential) {
                feasible = false;
                break;
            }
            if epsilon == 1 {
                break;
            }
        }
        for arc in &mut self.arcs {
            arc.cost /= scale;
        }
        if !feasible {
            tracing::warn!("allocation network infeasible; this is a bug");
        }
        feasible
    }

    /// Reduced cost of `arc` leaving `from`.
    fn reduced_cost(&self, arc: usize, from: usize, potential: &[i64]) -> i64 {
        let a = &self.arcs[arc];
        a.cost + potential[from] - potential[a.to]
    }

    fn push(&mut self, arc: usize, from: usize, amount: i64, excess: &mut [i64]) {
        let ResidualArc { to, reverse, .. } = self.arcs[arc];
        self.arcs[arc].residual -= amount;
        self.arcs[reverse].residual += amount;
        excess[from] -= amount;
        excess[to] += amount;
    }

    /// One cost-scaling round: saturating every arc of negative reduced cost makes the flow
    /// 0-optimal but unbalanced; push–relabel (FIFO, current-arc) then moves every excess along
    /// admissible arcs (residual, reduced cost < 0), lowering a node's potential when it has none, until
    /// supplies are met. Keeps ε-optimality throughout. False if some excess has nowhere to go.
    fn refine(&mut self, epsilon: i64, excess: &mut [i64], potential: &mut [i64]) -> bool {
        let n = self.supply.len();
        for u in 0..n {
            for a in self.first[u]..self.first[u + 1] {
                let residual = self.arcs[a].residual;
                if residual > 0 && self.reduced_cost(a, u, potential) < 0 {
                    self.push(a, u, residual, excess);
                }
            }
        }
        let mut queue: std::collections::VecDeque<usize> =
            (0..n).filter(|&u| excess[u] > 0).collect();
        let mut queued: Vec<bool> = excess.iter().map(|&e| e > 0).collect();
        let mut current = self.first[..n].to_vec();
        let mut distance = vec![0i64; n];
        self.price_update(epsilon, excess, potential, &mut distance);
        let mut relabels = 0usize;
        while let Some(u) = queue.pop_front() {
            queued[u] = false;
            while excess[u] > 0 {
                let a = current[u];
                if a == self.first[u + 1] {
                    if !self.relabel(u, epsilon, potential) {
                        return false;
                    }
                    current[u] = self.first[u];
                    relabels += 1;
                    if relabels.is_multiple_of(n) {
                        // Potentials changed globally: every current arc must be re-examined.
                        self.price_update(epsilon, excess, potential, &mut distance);
                        current.copy_from_slice(&self.first[..n]);
                    }
                    continue;
                }
                let residual = self.arcs[a].residual;
                if residual > 0 && self.reduced_cost(a, u, potential) < 0 {
                    let to = self.arcs[a].to;
                    self.push(a, u, residual.min(excess[u]), excess);
                    if excess[to] > 0 && !queued[to] {
                        queued[to] = true;
                        queue.push_back(to);
                    }
                } else {
                    current[u] += 1;
                }
            }
        }
        true
    }

    /// Global price update (Goldberg 1997): lowers every potential by ε times the node's distance to
    /// the nearest deficit, where a residual arc of reduced cost c has length ⌊c/ε⌋ + 1 (0 for an
    /// admissible arc). Afterwards every excess has an admissible path to a deficit, which saves the
    /// long series of local relabels that would otherwise discover it. Keeps ε-optimality: for a
    /// residual arc (v, w), d(v) ≤ d(w) + length, so the new reduced cost is at least c − ε·length ≥ −ε.
    /// The search stops once every excess is reached; capping distances at that point keeps the
    /// inequality (as in Dijkstra with early exit).
    fn price_update(
        &self,
        epsilon: i64,
        excess: &[i64],
        potential: &mut [i64],
        distance: &mut [i64],
    ) {
        use std::cmp::Reverse;
        distance.fill(i64::MAX);
        let mut heap = std::collections::BinaryHeap::new();
        for (v, &e) in excess.iter().enumerate() {
            if e < 0 {
                distance[v] = 0;
                heap.push(Reverse((0i64, v)));
            }
        }
        let mut unreached = excess.iter().filter(|&&e| e > 0).count();
        if unreached == 0 {
            return;
        }
        let mut reach = 0;
        while let Some(Reverse((d, w))) = heap.pop() {
            if d > distance[w] {
                continue;
            }
            reach = d;
            if excess[w] > 0 {
                unreached -= 1;
                if unreached == 0 {
                    break;
                }
            }
            // Residual arcs (v, w) entering w are the partners of the arcs leaving w.
            for a in self.first[w]..self.first[w + 1] {
                let ResidualArc { to: v, reverse, .. } = self.arcs[a];
                if self.arcs[reverse].residual <= 0 {
                    continue;
                }
                let length = self.reduced_cost(reverse, v, potential).div_euclid(epsilon) + 1;
                let candidate = d + length.max(0);
                if candidate < distance[v] {
                    distance[v] = candidate;
                    heap.push(Reverse((candidate, v)));
                }
            }
        }
        for (p, &d) in potential.iter_mut().zip(distance.iter()) {
            *p -= epsilon * d.min(reach);
        }
    }

    /// Lowers `u`'s potential just enough for its best residual arc to become admissible (reduced cost
    /// −ε), which keeps every arc ε-optimal. False if `u` has no residual arc at all.
    fn relabel(&self, u: usize, epsilon: i64, potential: &mut [i64]) -> bool {
        let best = self.arcs[self.first[u]..self.first[u + 1]]
            .iter()
            .filter(|a| a.residual > 0)
            .map(|a| potential[a.to] - a.cost)
            .max();
        match best {
            Some(best) => {
                potential[u] = best - epsilon;
                true
            }
            None => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Chains and loops
// ---------------------------------------------------------------------------------------------------

/// Bounds of the chain search: chains are simple paths, whose number grows exponentially with length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChainParams {
    /// Longest chain, in hops (2 = A → B → C). Capped at [`MAX_CHAIN_HOPS`].
    pub max_hops: usize,
    /// How many chains to return (the best ones).
    pub max_chains: usize,
    /// Synergies scoring below this are not used as links.
    pub min_score: f64,
    /// Search budget: number of path extensions tried before stopping (`truncated` is then set).
    pub max_expansions: usize,
}

/// Chains longer than this are too speculative to be worth a facilitator's time.
pub const MAX_CHAIN_HOPS: usize = 6;

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            max_hops: 3,
            max_chains: 100,
            min_score: 0.0,
            max_expansions: 1_000_000,
        }
    }
}

/// One link of a chain: every synergy from `from_actor` to `to_actor` that passes `min_score`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChainHop {
    pub from_actor: Uuid,
    pub to_actor: Uuid,
    /// Sorted by score (descending), then id.
    pub synergy_ids: Vec<Uuid>,
    /// Score of the best synergy of the link: the link's score.
    pub best_score: f64,
}

/// A cascade through distinct actors, A → B → C …, where each intermediate actor receives from the one
/// before and gives to the one after.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Chain {
    pub actors: Vec<Uuid>,
    pub hops: Vec<ChainHop>,
    /// The weakest link: a chain is as feasible as its weakest exchange.
    pub min_score: f64,
    pub mean_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChainReport {
    /// Sorted by `min_score` (desc), `mean_score` (desc), length (longer first), then actor ids.
    pub chains: Vec<Chain>,
    /// True when the search budget ran out: more chains may exist.
    pub truncated: bool,
}

/// A loop: a strongly connected component of at least two actors, i.e. every member can reach every
/// other through synergies — material or energy can circulate among them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActorLoop {
    /// Sorted by id.
    pub members: Vec<Uuid>,
    /// Synergies between members (score ≥ the threshold used), sorted by id.
    pub synergy_ids: Vec<Uuid>,
    pub total_score: f64,
    pub mean_score: f64,
}

/// Adjacent actor in the collapsed graph used for chains: parallel synergies merged into one link.
#[derive(Debug, Clone)]
struct Link {
    to: NodeIndex,
    best_score: f64,
    synergies: Vec<(f64, Uuid)>,
}

/// A chain found by the search, as node indices and link positions.
#[derive(Debug, Clone)]
struct FoundChain {
    nodes: Vec<NodeIndex>,
    links: Vec<(NodeIndex, usize)>,
    min_score: f64,
    mean_score: f64,
}

fn compare_found(a: &FoundChain, b: &FoundChain) -> Ordering {
    b.min_score
        .total_cmp(&a.min_score)
        .then(b.mean_score.total_cmp(&a.mean_score))
        .then(b.nodes.len().cmp(&a.nodes.len()))
        // Node indices follow actor-id order, so this is the order of actor ids.
        .then_with(|| a.nodes.cmp(&b.nodes))
}

struct ChainSearch<'a> {
    links: &'a [Vec<Link>],
    max_hops: usize,
    max_chains: usize,
    expansions_left: usize,
    truncated: bool,
    on_path: Vec<bool>,
    path: Vec<NodeIndex>,
    path_links: Vec<(NodeIndex, usize)>,
    found: Vec<FoundChain>,
    /// Once `max_chains` chains are kept, the worst kept `min_score`: a partial path already below it
    /// cannot enter the top list (extending a path never raises its minimum).
    threshold: f64,
}

impl ChainSearch<'_> {
    fn extend(&mut self, from: NodeIndex, min_so_far: f64, sum_so_far: f64) {
        for (position, link) in self.links[from.index()].iter().enumerate() {
            if self.on_path[link.to.index()] {
                continue;
            }
            if self.expansions_left == 0 {
                self.truncated = true;
                return;
            }
            self.expansions_left -= 1;
            let min_score = min_so_far.min(link.best_score);
            if min_score < self.threshold {
                // Links are sorted by score, best first: the following ones fall below too.
                break;
            }
            let sum = sum_so_far + link.best_score;
            self.on_path[link.to.index()] = true;
            self.path.push(link.to);
            self.path_links.push((from, position));
            let hops = self.path_links.len();
            if hops >= 2 {
                self.record(min_score, sum / hops as f64);
            }
            if hops < self.max_hops {
                self.extend(link.to, min_score, sum);
            }
            self.path_links.pop();
            self.path.pop();
            self.on_path[link.to.index()] = false;
            if self.truncated {
                return;
            }
        }
    }

    fn record(&mut self, min_score: f64, mean_score: f64) {
        self.found.push(FoundChain {
            nodes: self.path.clone(),
            links: self.path_links.clone(),
            min_score,
            mean_score,
        });
        if self.found.len() >= 2 * self.max_chains.max(1) {
            self.compact();
        }
    }

    /// Keeps the best `max_chains` and raises the pruning threshold.
    fn compact(&mut self) {
        self.found.sort_by(compare_found);
        self.found.truncate(self.max_chains);
        if self.found.len() == self.max_chains
            && let Some(last) = self.found.last()
        {
            self.threshold = last.min_score;
        }
    }
}

impl SynergyGraph {
    /// Chains A → B → C (→ D …) through distinct actors, using synergies scoring at least
    /// `params.min_score`; parallel synergies between two actors form one link scored by the best. The
    /// search is a depth-first enumeration of simple paths, bounded by `max_hops` and `max_expansions`,
    /// pruned by the current top list. Self-loops are ignored; latent synergies count (filter the
    /// edges before building the graph to exclude them).
    pub fn chains(&self, params: &ChainParams) -> ChainReport {
        let max_hops = params.max_hops.min(MAX_CHAIN_HOPS);
        if max_hops < 2 || params.max_chains == 0 {
            return ChainReport {
                chains: Vec::new(),
                truncated: false,
            };
        }
        let links = self.collapsed_links(params.min_score);
        let mut search = ChainSearch {
            links: &links,
            max_hops,
            max_chains: params.max_chains,
            expansions_left: params.max_expansions,
            truncated: false,
            on_path: vec![false; self.graph.node_count()],
            path: Vec::with_capacity(max_hops + 1),
            path_links: Vec::with_capacity(max_hops),
            found: Vec::new(),
            threshold: f64::NEG_INFINITY,
        };
        for start in self.graph.node_indices() {
            if search.truncated {
                break;
            }
            search.on_path[start.index()] = true;
            search.path.push(start);
            search.extend(start, f64::INFINITY, 0.0);
            search.path.pop();
            search.on_path[start.index()] = false;
        }
        search.compact();
        let truncated = search.truncated;
        let chains = search
            .found
            .into_iter()
            .map(|found| Chain {
                actors: found.nodes.iter().map(|&n| self.graph[n].id).collect(),
                hops: found
                    .links
                    .iter()
                    .map(|&(from, position)| {
                        let link = &links[from.index()][position];
                        ChainHop {
                            from_actor: self.graph[from].id,
                            to_actor: self.graph[link.to].id,
                            synergy_ids: link.synergies.iter().map(|&(_, id)| id).collect(),
                            best_score: link.best_score,
                        }
                    })
                    .collect(),
                min_score: found.min_score,
                mean_score: found.mean_score,
            })
            .collect();
        ChainReport { chains, truncated }
    }

    /// Per node, its outgoing links to other actors (parallel synergies merged), best score first (then
    /// target): the search meets good chains early, which tightens its pruning threshold sooner.
    fn collapsed_links(&self, min_score: f64) -> Vec<Vec<Link>> {
        let mut links: Vec<Vec<Link>> = vec![Vec::new(); self.graph.node_count()];
        for node in self.graph.node_indices() {
            let mut by_target: BTreeMap<NodeIndex, Vec<(f64, Uuid)>> = BTreeMap::new();
            for edge in self.graph.edges_directed(node, Direction::Outgoing) {
                if edge.target() != node && edge.weight().score >= min_score {
                    by_target
                        .entry(edge.target())
                        .or_default()
                        .push((edge.weight().score, edge.weight().synergy_id));
                }
            }
            links[node.index()] = by_target
                .into_iter()
                .map(|(to, mut synergies)| {
                    synergies.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    Link {
                        to,
                        best_score: synergies.first().map_or(0.0, |s| s.0),
                        synergies,
                    }
                })
                .collect();
            links[node.index()]
                .sort_by(|a, b| b.best_score.total_cmp(&a.best_score).then(a.to.cmp(&b.to)));
        }
        links
    }

    /// Loops: strongly connected components (Tarjan) of at least two actors over synergies scoring at
    /// least `min_score`. Sorted by size (desc), total score (desc), then first member id.
    pub fn loops(&self, min_score: f64) -> Vec<ActorLoop> {
        let kept = |e: petgraph::graph::EdgeReference<'_, GraphEdge>| {
            e.source() != e.target() && e.weight().score >= min_score
        };
        let filtered = EdgeFiltered::from_fn(&self.graph, kept);
        let components: Vec<Vec<NodeIndex>> = tarjan_scc(&filtered)
            .into_iter()
            .filter(|component| component.len() >= 2)
            .collect();
        // One pass over the edges assigns each internal synergy to its loop (no per-loop edge scan).
        let mut loop_of = vec![usize::MAX; self.graph.node_count()];
        for (i, component) in components.iter().enumerate() {
            for node in component {
                loop_of[node.index()] = i;
            }
        }
        let mut internal: Vec<Vec<(Uuid, f64)>> = vec![Vec::new(); components.len()];
        for edge in self.graph.edge_references().filter(|&e| kept(e)) {
            let component = loop_of[edge.source().index()];
            if component != usize::MAX && component == loop_of[edge.target().index()] {
                internal[component].push((edge.weight().synergy_id, edge.weight().score));
            }
        }
        let mut loops: Vec<ActorLoop> = components
            .into_iter()
            .zip(internal)
            .map(|(component, mut synergies)| {
                let mut members: Vec<Uuid> = component.iter().map(|&n| self.graph[n].id).collect();
                members.sort();
                synergies.sort_by_key(|&(id, _)| id);
                let total_score: f64 = synergies.iter().map(|&(_, s)| s).sum();
                ActorLoop {
                    members,
                    mean_score: total_score / synergies.len().max(1) as f64,
                    total_score,
                    synergy_ids: synergies.into_iter().map(|(id, _)| id).collect(),
                }
            })
            .collect();
        loops.sort_by(|a, b| {
            b.members
                .len()
                .cmp(&a.members.len())
                .then(b.total_score.total_cmp(&a.total_score))
                .then_with(|| a.members.cmp(&b.members))
        });
        loops
    }
}

// ---------------------------------------------------------------------------------------------------
// Hubs
// ---------------------------------------------------------------------------------------------------

/// An actor's place in the synergy network.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hub {
    /// 1-based position in the ranking.
    pub rank: usize,
    pub actor_id: Uuid,
    pub name: String,
    /// Synergies received (as receiver).
    pub in_degree: usize,
    /// Synergies given (as provider).
    pub out_degree: usize,
    /// Distinct other actors linked in either direction.
    pub partners: usize,
    pub score_in: f64,
    pub score_out: f64,
    /// Ranking key: `score_in + score_out`, the sum of the scores of every synergy the actor takes part
    /// in (a degree weighted by score: many synergies and good ones both raise it).
    pub strength: f64,
    /// `min(score_in, score_out)`: high for actors that both receive and give, the intermediaries of
    /// chains.
    pub relay: f64,
}

impl SynergyGraph {
    /// Actors ranked by `strength` (the sum of the scores of their synergies, in and out), then by
    /// degree (in + out), then by `relay`, then by actor id — a total, deterministic order. Actors
    /// without any synergy are left out; `limit` caps the list.
    ///
    /// Why not petgraph's `page_rank`: in petgraph 0.8 it costs O(iterations × V² × degree), too slow
    /// for a national graph, and it ignores edge weights; betweenness is O(V·E). The weighted degree is
    /// linear, explainable to a facilitator, and `relay` covers the "passes through" aspect.
    pub fn hubs(&self, limit: usize) -> Vec<Hub> {
        let n = self.graph.node_count();
        let mut in_degree = vec![0usize; n];
        let mut out_degree = vec![0usize; n];
        let mut score_in = vec![0.0f64; n];
        let mut score_out = vec![0.0f64; n];
        let mut partners: Vec<HashSet<NodeIndex>> = vec![HashSet::new(); n];
        for edge in self.between_actors() {
            let (s, t) = (edge.source(), edge.target());
            out_degree[s.index()] += 1;
            in_degree[t.index()] += 1;
            score_out[s.index()] += edge.weight().score;
            score_in[t.index()] += edge.weight().score;
            partners[s.index()].insert(t);
            partners[t.index()].insert(s);
        }
        let mut hubs: Vec<Hub> = self
            .graph
            .node_indices()
            .filter(|node| in_degree[node.index()] + out_degree[node.index()] > 0)
            .map(|node| {
                let i = node.index();
                let actor = &self.graph[node];
                Hub {
                    rank: 0,
                    actor_id: actor.id,
                    name: actor.name.clone(),
                    in_degree: in_degree[i],
                    out_degree: out_degree[i],
                    partners: partners[i].len(),
                    score_in: score_in[i],
                    score_out: score_out[i],
                    strength: score_in[i] + score_out[i],
                    relay: score_in[i].min(score_out[i]),
                }
            })
            .collect();
        hubs.sort_by(|a, b| {
            b.strength
                .total_cmp(&a.strength)
                .then((b.in_degree + b.out_degree).cmp(&(a.in_degree + a.out_degree)))
                .then(b.relay.total_cmp(&a.relay))
                .then(a.actor_id.cmp(&b.actor_id))
        });
        hubs.truncate(limit);
        for (i, hub) in hubs.iter_mut().enumerate() {
            hub.rank = i + 1;
        }
        hubs
    }
}

// ---------------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------------

/// Node of the JSON export (d3 force-layout shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonNode {
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub in_degree: usize,
    pub out_degree: usize,
}

/// Link of the JSON export; `source`/`target` are actor ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonLink {
    pub source: Uuid,
    pub target: Uuid,
    pub synergy_id: Uuid,
    pub offer_id: Uuid,
    pub need_id: Option<Uuid>,
    pub score: f64,
    pub class: String,
    pub distance_km: f64,
    /// Potential yearly quantity (see [`GraphEdge::potential_quantity`]), in `base_unit`.
    pub quantity: Option<f64>,
    pub base_unit: String,
    pub latent: bool,
}

/// `{nodes, links}`, the shape d3 and most JS graph libraries read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphJson {
    /// Sorted by actor id.
    pub nodes: Vec<JsonNode>,
    /// Sorted by synergy id.
    pub links: Vec<JsonLink>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureCollectionType {
    FeatureCollection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FeatureType {
    Feature,
}

/// GeoJSON geometry; coordinates are `[longitude, latitude]` (RFC 7946).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum GeoGeometry {
    Point { coordinates: [f64; 2] },
    LineString { coordinates: Vec<[f64; 2]> },
}

/// What a feature stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Actor,
    Synergy,
}

/// Properties of an actor (Point) feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorProperties {
    pub kind: FeatureKind,
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    pub in_degree: usize,
    pub out_degree: usize,
}

/// Properties of a synergy (LineString) feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SynergyProperties {
    pub kind: FeatureKind,
    pub synergy_id: Uuid,
    pub source: Uuid,
    pub target: Uuid,
    pub offer_id: Uuid,
    pub need_id: Option<Uuid>,
    pub score: f64,
    pub class: String,
    pub distance_km: f64,
    pub quantity: Option<f64>,
    pub base_unit: String,
    pub latent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum GeoProperties {
    Actor(ActorProperties),
    Synergy(SynergyProperties),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub id: Uuid,
    pub geometry: GeoGeometry,
    pub properties: GeoProperties,
}

/// GeoJSON FeatureCollection: actors as Points, then synergies as two-point LineStrings from provider
/// to receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoJsonCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    pub features: Vec<GeoFeature>,
}

impl SynergyGraph {
    fn degrees(&self, node: NodeIndex) -> (usize, usize) {
        (
            self.graph.edges_directed(node, Direction::Incoming).count(),
            self.graph.edges_directed(node, Direction::Outgoing).count(),
        )
    }

    /// `{nodes, links}` JSON export.
    pub fn to_json(&self) -> GraphJson {
        let nodes = self
            .graph
            .node_indices()
            .map(|node| {
                let actor = &self.graph[node];
                let (in_degree, out_degree) = self.degrees(node);
                JsonNode {
                    id: actor.id,
                    name: actor.name.clone(),
                    naf_code: actor.naf_code.clone(),
                    lat: actor.lat,
                    lng: actor.lng,
                    in_degree,
                    out_degree,
                }
            })
            .collect();
        let links = self
            .graph
            .edge_weights()
            .map(|e| JsonLink {
                source: e.from_actor,
                target: e.to_actor,
                synergy_id: e.synergy_id,
                offer_id: e.offer_id,
                need_id: e.need_id,
                score: e.score,
                class: e.class.clone(),
                distance_km: e.distance_km,
                quantity: e.potential_quantity(),
                base_unit: e.base_unit.clone(),
                latent: e.latent,
            })
            .collect();
        GraphJson { nodes, links }
    }

    /// GraphML document (UTF-8), directed, with typed `<key>` declarations so that Gephi imports the
    /// attributes with their types: nodes carry `label`, `naf`, `lat`, `lng`; edges carry `synergy_id`,
    /// `weight` (= score, which Gephi uses as edge weight), `score`, `class`, `distance_km`, `latent`,
    /// `quantity` (when known) and `base_unit`. Every text is XML-escaped.
    pub fn to_graphml(&self) -> String {
        const KEYS: &[(&str, &str, &str, &str)] = &[
            ("label", "node", "label", "string"),
            ("naf", "node", "naf", "string"),
            ("lat", "node", "lat", "double"),
            ("lng", "node", "lng", "double"),
            ("synergy_id", "edge", "synergy_id", "string"),
            ("weight", "edge", "weight", "double"),
            ("score", "edge", "score", "double"),
            ("class", "edge", "class", "string"),
            ("distance_km", "edge", "distance_km", "double"),
            ("latent", "edge", "latent", "boolean"),
            ("quantity", "edge", "quantity", "double"),
            ("base_unit", "edge", "base_unit", "string"),
        ];
        let mut out =
            String::with_capacity(512 + 256 * (self.actor_count() + self.synergy_count()));
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (id, domain, name, kind) in KEYS {
            // Writing to a String cannot fail; the results are ignored on purpose.
            let _ = writeln!(
                out,
                "  <key id=\"{id}\" for=\"{domain}\" attr.name=\"{name}\" attr.type=\"{kind}\"/>"
            );
        }
        out.push_str("  <graph id=\"synergies\" edgedefault=\"directed\">\n");
        for actor in self.graph.node_weights() {
            let _ = writeln!(out, "    <node id=\"{}\">", actor.id);
            push_data(&mut out, "label", &xml_escape(&actor.name));
            if let Some(naf) = &actor.naf_code {
                push_data(&mut out, "naf", &xml_escape(naf));
            }
            push_data(&mut out, "lat", &actor.lat.to_string());
            push_data(&mut out, "lng", &actor.lng.to_string());
            out.push_str("    </node>\n");
        }
        for edge in self.graph.edge_weights() {
            let _ = writeln!(
                out,
                "    <edge id=\"{}\" source=\"{}\" target=\"{}\">",
                edge.synergy_id, edge.from_actor, edge.to_actor
            );
            push_data(&mut out, "synergy_id", &edge.synergy_id.to_string());
            push_data(&mut out, "weight", &edge.score.to_string());
            push_data(&mut out, "score", &edge.score.to_string());
            push_data(&mut out, "class", &xml_escape(&edge.class));
            push_data(&mut out, "distance_km", &edge.distance_km.to_string());
            push_data(
                &mut out,
                "latent",
                if edge.latent { "true" } else { "false" },
            );
            if let Some(q) = edge.potential_quantity() {
                push_data(&mut out, "quantity", &q.to_string());
            }
            push_data(&mut out, "base_unit", &xml_escape(&edge.base_unit));
            out.push_str("    </edge>\n");
        }
        out.push_str("  </graph>\n</graphml>\n");
        out
    }

    /// GeoJSON FeatureCollection (RFC 7946: `[lng, lat]` order, WGS 84).
    pub fn to_geojson(&self) -> GeoJsonCollection {
        let mut features = Vec::with_capacity(self.actor_count() + self.synergy_count());
        for node in self.graph.node_indices() {
            let actor = &self.graph[node];
            let (in_degree, out_degree) = self.degrees(node);
            features.push(GeoFeature {
                kind: FeatureType::Feature,
                id: actor.id,
                geometry: GeoGeometry::Point {
                    coordinates: [actor.lng, actor.lat],
                },
                properties: GeoProperties::Actor(ActorProperties {
                    kind: FeatureKind::Actor,
                    id: actor.id,
                    name: actor.name.clone(),
                    naf_code: actor.naf_code.clone(),
                    in_degree,
                    out_degree,
                }),
            });
        }
        for edge in self.graph.edge_references() {
            let from = &self.graph[edge.source()];
            let to = &self.graph[edge.target()];
            let e = edge.weight();
            features.push(GeoFeature {
                kind: FeatureType::Feature,
                id: e.synergy_id,
                geometry: GeoGeometry::LineString {
                    coordinates: vec![[from.lng, from.lat], [to.lng, to.lat]],
                },
                properties: GeoProperties::Synergy(SynergyProperties {
                    kind: FeatureKind::Synergy,
                    synergy_id: e.synergy_id,
                    source: e.from_actor,
                    target: e.to_actor,
                    offer_id: e.offer_id,
                    need_id: e.need_id,
                    score: e.score,
                    class: e.class.clone(),
                    distance_km: e.distance_km,
                    quantity: e.potential_quantity(),
                    base_unit: e.base_unit.clone(),
                    latent: e.latent,
                }),
            });
        }
        GeoJsonCollection {
            kind: FeatureCollectionType::FeatureCollection,
            features,
        }
    }
}

/// `<data key="…">value</data>`; `value` must already be escaped.
fn push_data(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "      <data key=\"{key}\">{value}</data>");
}

/// Escapes text for XML content and attribute values. Characters XML 1.0 forbids (control characters
/// other than tab, newline and carriage return) cannot be escaped at all, so they are dropped.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn actor(n: u128, name: &str, lat: f64, lng: f64) -> GraphActor {
        GraphActor {
            id: id(n),
            name: name.to_owned(),
            naf_code: Some("24.10Z".to_owned()),
            lat,
            lng,
        }
    }

    /// A declared synergy; `offer`/`need` ids are derived from the numbers given.
    #[expect(
        clippy::too_many_arguments,
        reason = "test fixture mirroring the edge fields"
    )]
    fn synergy(
        n: u128,
        from: u128,
        to: u128,
        offer: u128,
        need: u128,
        score: f64,
        offer_q: f64,
        need_q: f64,
    ) -> GraphEdge {
        GraphEdge {
            synergy_id: id(1000 + n),
            offer_id: id(2000 + offer),
            need_id: Some(id(3000 + need)),
            from_actor: id(from),
            to_actor: id(to),
            class: "material/mineral/slag".to_owned(),
            score,
            distance_km: 10.0,
            latent: false,
            offer_quantity: Some(offer_q),
            need_quantity: Some(need_q),
            base_unit: "t".to_owned(),
        }
    }

    fn link(n: u128, from: u128, to: u128, score: f64) -> GraphEdge {
        synergy(n, from, to, n, n, score, 10.0, 10.0)
    }

    fn actors(count: u128) -> Vec<GraphActor> {
        (1..=count)
            .map(|n| actor(n, &format!("A{n}"), 47.0 + n as f64 * 0.01, 4.8))
            .collect()
    }

    fn allocated(allocation: &Allocation, synergy: u128) -> f64 {
        allocation
            .per_synergy
            .iter()
            .find(|s| s.synergy_id == id(1000 + synergy))
            .map_or(f64::NAN, |s| s.allocated)
    }

    #[test]
    fn allocation_beats_greedy_where_greedy_is_not_optimal() {
        // Offer O1 (10 t, actor 1) can go to need N1 (10 t, actor 3, score 0.9) or N2 (10 t, actor 4,
        // score 0.8); offer O2 (10 t, actor 2) can only go to N1 (score 0.7).
        //
        // Greedy takes O1 → N1 first (best score): 10 t × 0.9 = 9. Then N1 is full, so O2 → N1 gets 0,
        // and O1 is empty, so O1 → N2 gets 0. Greedy value = 9.
        //
        // Optimum. Let x = O1→N1, y = O1→N2, z = O2→N1 (all ≥ 0), with x + y ≤ 10 (O1), z ≤ 10 (O2),
        // x + z ≤ 10 (N1), y ≤ 10 (N2). Then
        //   0.9x + 0.8y + 0.7z = 0.8(x + y) + 0.7(x + z) − 0.6x ≤ 0.8·10 + 0.7·10 − 0 = 15,
        // and x = 0, y = 10, z = 10 is feasible with value 15: the optimum is 15, uniquely at that
        // point (any x > 0 loses 0.6x). Reaching it means giving up the best single synergy, the step
        // a greedy pass cannot take.
        let edges = vec![
            synergy(1, 1, 3, 1, 1, 0.9, 10.0, 10.0),
            synergy(2, 1, 4, 1, 2, 0.8, 10.0, 10.0),
            synergy(3, 2, 3, 2, 1, 0.7, 10.0, 10.0),
        ];
        let graph = SynergyGraph::build(actors(4), edges).unwrap();
        let allocation = graph.allocate();

        assert!((allocation.greedy_value - 9.0).abs() < 1e-9);
        assert!((allocation.total_value - 15.0).abs() < 1e-9);
        assert!(allocation.total_value > allocation.greedy_value);
        assert!(allocated(&allocation, 1).abs() < 1e-9);
        assert!((allocated(&allocation, 2) - 10.0).abs() < 1e-9);
        assert!((allocated(&allocation, 3) - 10.0).abs() < 1e-9);
        assert!((allocation.total_allocated_by_unit["t"] - 20.0).abs() < 1e-9);
        assert!(allocation.by_unit.iter().all(|u| u.exact));
        let share = &allocation.per_synergy[0];
        assert!((share.share_of_offer - 1.0).abs() < 1e-9);
        assert!((share.share_of_need - 1.0).abs() < 1e-9);
    }

    #[test]
    fn allocation_maximises_value_not_quantity() {
        // O1 (10 t) → N1 at 0.9 or → N2 at 0.2; O2 (10 t) → N1 only, at 0.3. Needs want 10 t each.
        // A maximum *flow* moves 20 t (O1 → N2, O2 → N1) for a value of 2 + 3 = 5. The maximum value
        // moves only 10 t: with x = O1→N1, y = O1→N2, z = O2→N1, x + y ≤ 10 and x + z ≤ 10,
        //   0.9x + 0.2y + 0.3z = 0.2(x + y) + 0.3(x + z) + 0.4x ≤ 2 + 3 + 4 = 9  (x ≤ 10),
        // reached at x = 10, y = z = 0. The solver must stop pushing flow once paths stop paying.
        let edges = vec![
            synergy(1, 1, 3, 1, 1, 0.9, 10.0, 10.0),
            synergy(2, 1, 4, 1, 2, 0.2, 10.0, 10.0),
            synergy(3, 2, 3, 2, 1, 0.3, 10.0, 10.0),
        ];
        let allocation = SynergyGraph::build(actors(4), edges).unwrap().allocate();
        assert!((allocation.total_value - 9.0).abs() < 1e-9);
        assert!((allocated(&allocation, 1) - 10.0).abs() < 1e-9);
        assert!(allocated(&allocation, 2).abs() < 1e-9);
        assert!(allocated(&allocation, 3).abs() < 1e-9);
        assert!((allocation.total_allocated_by_unit["t"] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn allocation_reports_partial_shares() {
        // One offer of 15 t; N1 wants 10 t at 0.9, N2 wants 10 t at 0.1. N1 is served in full (9) and
        // the 5 t left go to N2 (0.5): any positive score adds value.
        let edges = vec![
            synergy(1, 1, 2, 1, 1, 0.9, 15.0, 10.0),
            synergy(2, 1, 3, 1, 2, 0.1, 15.0, 10.0),
        ];
        let allocation = SynergyGraph::build(actors(3), edges).unwrap().allocate();
        assert!((allocated(&allocation, 1) - 10.0).abs() < 1e-9);
        assert!((allocated(&allocation, 2) - 5.0).abs() < 1e-9);
        assert!((allocation.total_value - 9.5).abs() < 1e-9);
        let low = allocation
            .per_synergy
            .iter()
            .find(|s| s.synergy_id == id(1002))
            .unwrap();
        assert!((low.share_of_offer - 5.0 / 15.0).abs() < 1e-9);
        assert!((low.share_of_need - 0.5).abs() < 1e-9);
        // Sorted by value: the 9-point synergy first.
        assert_eq!(allocation.per_synergy[0].synergy_id, id(1001));
    }

    #[test]
    fn allocation_keeps_units_apart_and_reports_exclusions() {
        let mut heat = synergy(1, 1, 2, 1, 1, 0.9, 100.0, 40.0);
        heat.base_unit = "MWh".to_owned();
        let tonnes = synergy(2, 1, 3, 2, 2, 0.5, 7.0, 30.0);
        let mut latent = synergy(3, 1, 3, 2, 3, 0.8, 7.0, 30.0);
        latent.latent = true;
        latent.need_id = None;
        latent.need_quantity = None;
        let mut unknown = synergy(4, 2, 3, 4, 2, 0.8, 7.0, 30.0);
        unknown.offer_quantity = None;
        let mut nan = synergy(5, 2, 3, 5, 2, 0.8, 7.0, 30.0);
        nan.need_quantity = Some(f64::NAN);
        let graph =
            SynergyGraph::build(actors(3), vec![heat, tonnes, latent, unknown, nan]).unwrap();
        let allocation = graph.allocate();

        assert!((allocation.total_allocated_by_unit["MWh"] - 40.0).abs() < 1e-9);
        assert!((allocation.total_allocated_by_unit["t"] - 7.0).abs() < 1e-9);
        assert_eq!(allocation.by_unit.len(), 2);
        assert_eq!(
            allocation.excluded,
            vec![
                ExcludedSynergy {
                    synergy_id: id(1003),
                    reason: AllocationExclusion::Latent
                },
                ExcludedSynergy {
                    synergy_id: id(1004),
                    reason: AllocationExclusion::UnknownOfferQuantity
                },
                ExcludedSynergy {
                    synergy_id: id(1005),
                    reason: AllocationExclusion::UnknownNeedQuantity
                },
            ]
        );
        assert!((allocation.total_value - (0.9 * 40.0 + 0.5 * 7.0)).abs() < 1e-9);
    }

    /// Tiny deterministic generator (no dependency needed for a test).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % bound
        }
    }

    /// Best value by brute force over integer allocations (integer capacities have an integral optimum).
    fn brute_force(
        edges: &[(usize, usize, f64)],
        k: usize,
        offer_left: &mut Vec<u64>,
        need_left: &mut Vec<u64>,
    ) -> f64 {
        if k == edges.len() {
            return 0.0;
        }
        let (o, n, score) = edges[k];
        let mut best = f64::NEG_INFINITY;
        for q in 0..=offer_left[o].min(need_left[n]) {
            offer_left[o] -= q;
            need_left[n] -= q;
            let v = score * q as f64 + brute_force(edges, k + 1, offer_left, need_left);
            best = best.max(v);
            offer_left[o] += q;
            need_left[n] += q;
        }
        best
    }

    #[test]
    fn allocation_matches_brute_force_on_random_small_instances() {
        let mut rng = Lcg(42);
        let mut greedy_suboptimal = 0;
        for _ in 0..200 {
            let offers: Vec<u64> = (0..3).map(|_| 1 + rng.next(4)).collect();
            let needs: Vec<u64> = (0..3).map(|_| 1 + rng.next(4)).collect();
            let mut pairs = Vec::new();
            for o in 0..3 {
                for n in 0..3 {
                    if rng.next(2) == 0 {
                        pairs.push((o, n, (1 + rng.next(99)) as f64 / 100.0));
                    }
                }
            }
            let edges: Vec<GraphEdge> = pairs
                .iter()
                .enumerate()
                .map(|(i, &(o, n, score))| {
                    synergy(
                        i as u128,
                        1 + o as u128,
                        4 + n as u128,
                        o as u128,
                        n as u128,
                        score,
                        offers[o] as f64,
                        needs[n] as f64,
                    )
                })
                .collect();
            let graph = SynergyGraph::build(actors(6), edges).unwrap();
            let allocation = graph.allocate();
            let best = brute_force(&pairs, 0, &mut offers.clone(), &mut needs.clone());
            assert!(
                (allocation.total_value - best).abs() < 1e-6,
                "{pairs:?} {offers:?} {needs:?}: {} vs {best}",
                allocation.total_value
            );
            assert!(allocation.greedy_value <= allocation.total_value + 1e-9);
            if allocation.greedy_value < best - 1e-6 {
                greedy_suboptimal += 1;
            }
            // Capacities hold.
            for (o, &cap) in offers.iter().enumerate() {
                let used: f64 = allocation
                    .per_synergy
                    .iter()
                    .filter(|s| s.offer_id == id(2000 + o as u128))
                    .map(|s| s.allocated)
                    .sum();
                assert!(used <= cap as f64 + 1e-9);
            }
        }
        // The instances are not all easy: greedy misses the optimum on some of them.
        assert!(greedy_suboptimal > 0);
    }

    /// Optimality certificate, independent of the solver: a feasible allocation is optimal iff its
    /// residual network has no negative-cost cycle (Bellman–Ford). Nodes: offers, needs, and "unused".
    fn assert_optimal(edges: &[GraphEdge], allocation: &Allocation) {
        let mut index: HashMap<(bool, Uuid), usize> = HashMap::new();
        let mut cap: Vec<f64> = Vec::new();
        for e in edges {
            for (key, q) in [
                ((true, e.offer_id), e.offer_quantity),
                ((false, e.need_id.unwrap()), e.need_quantity),
            ] {
                index.entry(key).or_insert_with(|| {
                    cap.push(q.unwrap());
                    cap.len() - 1
                });
            }
        }
        let unused = cap.len();
        let mut through = vec![0.0; cap.len()];
        let mut arcs: Vec<(usize, usize, f64)> = Vec::new();
        let tol = 1e-7;
        for e in edges {
            let o = index[&(true, e.offer_id)];
            let n = index[&(false, e.need_id.unwrap())];
            let q = allocation
                .per_synergy
                .iter()
                .find(|s| s.synergy_id == e.synergy_id)
                .unwrap()
                .allocated;
            assert!(q >= -tol);
            through[o] += q;
            through[n] += q;
            if q < cap[o].min(cap[n]) - tol {
                arcs.push((o, n, -e.score));
            }
            if q > tol {
                arcs.push((n, o, e.score));
            }
        }
        for (node, (&c, &t)) in cap.iter().zip(&through).enumerate() {
            assert!(t <= c + tol, "capacity exceeded at node {node}: {t} > {c}");
            // Flow on node → unused is what the node leaves unused (offer) or takes (need).
            let is_offer = index.iter().any(|(k, &v)| v == node && k.0);
            let flow = if is_offer { c - t } else { t };
            if flow < c - tol {
                arcs.push((node, unused, 0.0));
            }
            if flow > tol {
                arcs.push((unused, node, 0.0));
            }
        }
        let mut dist = vec![0.0f64; cap.len() + 1];
        for round in 0..=dist.len() {
            let mut changed = false;
            for &(u, v, c) in &arcs {
                if dist[u] + c < dist[v] - 1e-9 {
                    dist[v] = dist[u] + c;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
            assert!(round < dist.len(), "negative cycle: allocation not optimal");
        }
    }

    #[test]
    fn allocation_is_certified_optimal_on_random_medium_instances() {
        let mut rng = Lcg(7);
        for round in 0..20u128 {
            let (offers, needs) = (30, 30);
            let mut edges = Vec::new();
            for k in 0..250u128 {
                let o = rng.next(offers) as u128;
                let n = rng.next(needs) as u128;
                let mut e = synergy(
                    round * 1000 + k,
                    1 + o,
                    100 + n,
                    round * 100 + o,
                    round * 100 + n,
                    (1 + rng.next(999)) as f64 / 1000.0,
                    0.0,
                    0.0,
                );
                // Fractional quantities of very different sizes, consistent per offer and need.
                e.offer_quantity = Some(0.25 + ((o * 7919 + round) % 97) as f64 * 3.7);
                e.need_quantity = Some(0.5 + ((n * 104_729 + round) % 89) as f64 * 2.9);
                edges.push(e);
            }
            let all = (1..=offers as u128)
                .chain(100..100 + needs as u128)
                .map(|n| actor(n, "x", 47.0, 4.0))
                .collect();
            let allocation = SynergyGraph::build(all, edges.clone()).unwrap().allocate();
            assert!(allocation.by_unit.iter().all(|u| u.exact));
            assert!(allocation.greedy_value <= allocation.total_value + 1e-9);
            assert_optimal(&edges, &allocation);
        }
    }

    #[test]
    #[should_panic(expected = "negative cycle")]
    fn the_certificate_rejects_the_greedy_allocation() {
        // The instance of `allocation_beats_greedy…`, with the greedy allocation substituted.
        let edges = vec![
            synergy(1, 1, 3, 1, 1, 0.9, 10.0, 10.0),
            synergy(2, 1, 4, 1, 2, 0.8, 10.0, 10.0),
            synergy(3, 2, 3, 2, 1, 0.7, 10.0, 10.0),
        ];
        let mut allocation = SynergyGraph::build(actors(4), edges.clone())
            .unwrap()
            .allocate();
        for s in &mut allocation.per_synergy {
            s.allocated = if s.synergy_id == id(1001) { 10.0 } else { 0.0 };
        }
        assert_optimal(&edges, &allocation);
    }

    #[test]
    fn build_rejects_inconsistent_input() {
        let err = SynergyGraph::build(actors(2), vec![link(1, 1, 9, 0.5)]).unwrap_err();
        assert_eq!(
            err,
            GraphError::UnknownActor {
                synergy_id: id(1001),
                actor_id: id(9)
            }
        );
        let err = SynergyGraph::build(actors(2), vec![link(1, 1, 2, 1.5)]).unwrap_err();
        assert!(matches!(err, GraphError::InvalidEdge { .. }));
        let err = SynergyGraph::build(actors(2), vec![link(1, 1, 2, 0.5), link(1, 2, 1, 0.5)])
            .unwrap_err();
        assert_eq!(err, GraphError::DuplicateSynergy(id(1001)));
        let mut dup = actors(2);
        dup.push(actor(1, "again", 47.0, 4.0));
        assert_eq!(
            SynergyGraph::build(dup, vec![]).unwrap_err(),
            GraphError::DuplicateActor(id(1))
        );
        let bad = vec![actor(1, "x", 95.0, 4.0)];
        assert!(matches!(
            SynergyGraph::build(bad, vec![]).unwrap_err(),
            GraphError::InvalidCoordinates { .. }
        ));
    }

    #[test]
    fn chains_follow_receivers_that_give() {
        // 1 → 2 → 3 → 4, plus 5 → 2 (a second source into 2) and a parallel synergy 1 → 2.
        let edges = vec![
            link(1, 1, 2, 0.9),
            link(2, 2, 3, 0.8),
            link(3, 3, 4, 0.7),
            link(4, 5, 2, 0.4),
            link(5, 1, 2, 0.6),
        ];
        let graph = SynergyGraph::build(actors(5), edges).unwrap();
        let report = graph.chains(&ChainParams::default());
        assert!(!report.truncated);
        let paths: Vec<Vec<Uuid>> = report.chains.iter().map(|c| c.actors.clone()).collect();
        // min 0.8 first; then min 0.7 by mean (0.8 before 0.75); then min 0.4 by mean (0.63 > 0.6).
        assert_eq!(
            paths,
            vec![
                vec![id(1), id(2), id(3)],
                vec![id(1), id(2), id(3), id(4)],
                vec![id(2), id(3), id(4)],
                vec![id(5), id(2), id(3), id(4)],
                vec![id(5), id(2), id(3)],
            ]
        );
        let first = &report.chains[0];
        assert_eq!(first.hops[0].synergy_ids, vec![id(1001), id(1005)]);
        assert!((first.min_score - 0.8).abs() < 1e-12);
        assert!((first.mean_score - 0.85).abs() < 1e-12);

        // Bounds: two hops only, top 2, links below 0.5 ignored.
        let report = graph.chains(&ChainParams {
            max_hops: 2,
            max_chains: 2,
            min_score: 0.5,
            max_expansions: 1000,
        });
        let paths: Vec<Vec<Uuid>> = report.chains.iter().map(|c| c.actors.clone()).collect();
        assert_eq!(
            paths,
            vec![vec![id(1), id(2), id(3)], vec![id(2), id(3), id(4)]]
        );
        // A budget too small reports truncation.
        let report = graph.chains(&ChainParams {
            max_expansions: 2,
            ..ChainParams::default()
        });
        assert!(report.truncated);
    }

    #[test]
    fn loops_are_components_of_two_or_more_actors() {
        // 1 ⇄ 2 and 3 → 4 → 5 → 3 form loops; 6 only gives; 7 reuses its own outflow (self-loop).
        let edges = vec![
            link(1, 1, 2, 0.9),
            link(2, 2, 1, 0.5),
            link(3, 3, 4, 0.6),
            link(4, 4, 5, 0.6),
            link(5, 5, 3, 0.6),
            link(6, 6, 3, 0.9),
            link(7, 7, 7, 0.9),
        ];
        let graph = SynergyGraph::build(actors(7), edges).unwrap();
        let loops = graph.loops(0.0);
        assert_eq!(loops.len(), 2);
        assert_eq!(loops[0].members, vec![id(3), id(4), id(5)]);
        assert_eq!(loops[0].synergy_ids, vec![id(1003), id(1004), id(1005)]);
        assert_eq!(loops[1].members, vec![id(1), id(2)]);
        assert!((loops[1].total_score - 1.4).abs() < 1e-12);
        // A threshold that cuts 2 → 1 breaks the first loop.
        let loops = graph.loops(0.55);
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].members, vec![id(3), id(4), id(5)]);
    }

    #[test]
    fn hubs_rank_by_strength_with_id_tie_break() {
        // 2 receives from 1 and 3 and gives to 4: strength 0.5 + 0.5 + 0.5 = 1.5.
        // 5 and 6 exchange once (0.5 each way is one edge): strength 0.5 each, tie broken by id.
        let edges = vec![
            link(1, 1, 2, 0.5),
            link(2, 3, 2, 0.5),
            link(3, 2, 4, 0.5),
            link(4, 5, 6, 0.5),
        ];
        let mut all = actors(7);
        all.push(actor(8, "isolated", 47.0, 4.0));
        let graph = SynergyGraph::build(all, edges).unwrap();
        let hubs = graph.hubs(10);
        assert_eq!(hubs[0].actor_id, id(2));
        assert_eq!(hubs[0].rank, 1);
        assert_eq!((hubs[0].in_degree, hubs[0].out_degree), (2, 1));
        assert_eq!(hubs[0].partners, 3);
        assert!((hubs[0].strength - 1.5).abs() < 1e-12);
        assert!((hubs[0].relay - 0.5).abs() < 1e-12);
        let rest: Vec<Uuid> = hubs[1..].iter().map(|h| h.actor_id).collect();
        assert_eq!(rest, vec![id(1), id(3), id(4), id(5), id(6)]);
        assert!(
            hubs.iter()
                .all(|h| h.actor_id != id(7) && h.actor_id != id(8))
        );
        assert_eq!(graph.hubs(2).len(), 2);
    }

    // ---- exports ----------------------------------------------------------------------------------

    fn export_graph() -> SynergyGraph {
        let mut a = actors(3);
        a[0].name = "Fonderie <Dupont> & Fils \"SA\" l'usine\u{1}".to_owned();
        a[1].naf_code = None;
        a[2].lng = -1.5;
        let mut latent = link(2, 2, 3, 0.4);
        latent.latent = true;
        latent.need_id = None;
        latent.need_quantity = None;
        latent.class = "energy/heat/<low>&\"temp\"".to_owned();
        SynergyGraph::build(a, vec![link(1, 1, 2, 0.75), latent]).unwrap()
    }

    /// An element seen by `check_xml`: name, attributes, unescaped text content.
    type Element = (String, Vec<(String, String)>, String);

    fn unescape(raw: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let end = rest[amp..]
                .find(';')
                .ok_or_else(|| format!("unterminated reference in {raw:?}"))?;
            let entity = &rest[amp + 1..amp + end];
            match entity {
                "amp" => out.push('&'),
                "lt" => out.push('<'),
                "gt" => out.push('>'),
                "quot" => out.push('"'),
                "apos" => out.push('\''),
                e if e.starts_with("#x") => out.push(
                    u32::from_str_radix(&e[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad char ref")?,
                ),
                e if e.starts_with('#') => out.push(
                    e[1..]
                        .parse::<u32>()
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad char ref")?,
                ),
                other => return Err(format!("unknown entity &{other};")),
            }
            rest = &rest[amp + end + 1..];
        }
        out.push_str(rest);
        if out
            .chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err("control character".into());
        }
        Ok(out)
    }

    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
    }

    /// Minimal XML well-formedness check: one root element, balanced and properly nested tags, quoted
    /// attributes without raw `<` or `&`, no duplicate attribute, references only to the five
    /// predefined entities or character references, nothing but whitespace outside the root.
    /// Returns the elements for further checks.
    fn check_xml(doc: &str) -> Result<Vec<Element>, String> {
        let mut rest = doc;
        if let Some(after) = rest.strip_prefix("<?xml") {
            let end = after.find("?>").ok_or("unterminated declaration")?;
            rest = &after[end + 2..];
        }
        let mut stack: Vec<usize> = Vec::new();
        let mut elements: Vec<Element> = Vec::new();
        let mut roots = 0;
        loop {
            let lt = rest.find('<');
            let text = &rest[..lt.unwrap_or(rest.len())];
            if text.contains('>') {
                return Err(format!("raw '>' in text {text:?}"));
            }
            let text = unescape(text)?;
            match stack.last() {
                Some(&open) => elements[open].2.push_str(&text),
                None if !text.trim().is_empty() => return Err("text outside root".into()),
                None => {}
            }
            let Some(lt) = lt else { break };
            rest = &rest[lt + 1..];
            let gt = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[..gt];
            rest = &rest[gt + 1..];
            if tag.contains('<') {
                return Err(format!("'<' inside tag {tag:?}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or("close without open")?;
                if elements[open].0 != name.trim() {
                    return Err(format!("</{name}> closes <{}>", elements[open].0));
                }
                continue;
            }
            let (body, self_closing) = match tag.strip_suffix('/') {
                Some(body) => (body, true),
                None => (tag, false),
            };
            let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let name = &body[..name_end];
            if !is_name(name) {
                return Err(format!("bad element name {name:?}"));
            }
            let mut attributes: Vec<(String, String)> = Vec::new();
            let mut attrs = body[name_end..].trim_start();
            while !attrs.is_empty() {
                let eq = attrs.find('=').ok_or("attribute without value")?;
                let attr_name = attrs[..eq].trim();
                if !is_name(attr_name) {
                    return Err(format!("bad attribute name {attr_name:?}"));
                }
                let value_part = &attrs[eq + 1..];
                let quote = value_part.chars().next().ok_or("missing value")?;
                if quote != '"' && quote != '\'' {
                    return Err("unquoted attribute".into());
                }
                let close = value_part[1..].find(quote).ok_or("unterminated value")?;
                let value = unescape(&value_part[1..1 + close])?;
                if attributes.iter().any(|(n, _)| n == attr_name) {
                    return Err(format!("duplicate attribute {attr_name}"));
                }
                attributes.push((attr_name.to_owned(), value));
                attrs = value_part[close + 2..].trim_start();
            }
            if stack.is_empty() {
                roots += 1;
            }
            elements.push((name.to_owned(), attributes, String::new()));
            if !self_closing {
                stack.push(elements.len() - 1);
            }
        }
        if !stack.is_empty() {
            return Err("unclosed elements".into());
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(elements)
    }

    fn attr<'a>(element: &'a Element, name: &str) -> Option<&'a str> {
        element
            .1
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_xml_checker_rejects_malformed_documents() {
        assert!(check_xml("<a><b></a></b>").is_err());
        assert!(check_xml("<a x=\"1 & 2\"/>").is_err());
        assert!(check_xml("<a>1 < 2</a>").is_err());
        assert!(check_xml("<a/><b/>").is_err());
        assert!(check_xml("<a x='1' x='2'/>").is_err());
        assert!(check_xml("<a>&nbsp;</a>").is_err());
        assert!(check_xml("<a x=\"&lt;ok&gt;\">&amp;</a>").is_ok());
    }

    #[test]
    fn graphml_is_well_formed_and_complete() {
        let graph = export_graph();
        let doc = graph.to_graphml();
        let elements = check_xml(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(elements[0].0, "graphml");

        let keys: HashMap<&str, &str> = elements
            .iter()
            .filter(|e| e.0 == "key")
            .map(|e| (attr(e, "id").unwrap(), attr(e, "for").unwrap()))
            .collect();
        for wanted in ["label", "naf", "lat", "lng"] {
            assert_eq!(keys.get(wanted), Some(&"node"), "{wanted}");
        }
        for wanted in ["score", "class", "distance_km", "latent", "weight"] {
            assert_eq!(keys.get(wanted), Some(&"edge"), "{wanted}");
        }
        // Every data element refers to a declared key; every edge end to a declared node.
        for data in elements.iter().filter(|e| e.0 == "data") {
            assert!(keys.contains_key(attr(data, "key").unwrap()));
        }
        let nodes: HashSet<&str> = elements
            .iter()
            .filter(|e| e.0 == "node")
            .map(|e| attr(e, "id").unwrap())
            .collect();
        assert_eq!(nodes.len(), 3);
        let edges: Vec<&Element> = elements.iter().filter(|e| e.0 == "edge").collect();
        assert_eq!(edges.len(), 2);
        for edge in &edges {
            assert!(nodes.contains(attr(edge, "source").unwrap()));
            assert!(nodes.contains(attr(edge, "target").unwrap()));
        }
        // Escaped names come back intact (minus the forbidden control character).
        let labels: Vec<&str> = elements
            .iter()
            .filter(|e| e.0 == "data" && attr(e, "key") == Some("label"))
            .map(|e| e.2.as_str())
            .collect();
        assert!(labels.contains(&"Fonderie <Dupont> & Fils \"SA\" l'usine"));
        assert!(
            elements
                .iter()
                .any(|e| e.0 == "data" && e.2 == "energy/heat/<low>&\"temp\"")
        );
        // Typed values parse.
        for data in elements.iter().filter(|e| e.0 == "data") {
            let key = attr(data, "key").unwrap();
            if matches!(
                key,
                "lat" | "lng" | "score" | "weight" | "distance_km" | "quantity"
            ) {
                assert!(data.2.parse::<f64>().is_ok(), "{key}: {}", data.2);
            }
            if key == "latent" {
                assert!(data.2 == "true" || data.2 == "false");
            }
        }
    }

    #[test]
    fn geojson_parses_with_lng_first_coordinates() {
        let graph = export_graph();
        let text = serde_json::to_string(&graph.to_geojson()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "FeatureCollection");
        let features = value["features"].as_array().unwrap();
        assert_eq!(features.len(), 5);
        let in_range = |c: &serde_json::Value| {
            let lng = c[0].as_f64().unwrap();
            let lat = c[1].as_f64().unwrap();
            c.as_array().unwrap().len() == 2
                && (-180.0..=180.0).contains(&lng)
                && (-90.0..=90.0).contains(&lat)
        };
        let mut points = 0;
        let mut lines = 0;
        for feature in features {
            assert_eq!(feature["type"], "Feature");
            let geometry = &feature["geometry"];
            match geometry["type"].as_str().unwrap() {
                "Point" => {
                    points += 1;
                    assert!(in_range(&geometry["coordinates"]));
                    assert_eq!(feature["properties"]["kind"], "actor");
                }
                "LineString" => {
                    lines += 1;
                    let coords = geometry["coordinates"].as_array().unwrap();
                    assert_eq!(coords.len(), 2);
                    assert!(coords.iter().all(in_range));
                    assert_eq!(feature["properties"]["kind"], "synergy");
                }
                other => panic!("unexpected geometry {other}"),
            }
        }
        assert_eq!((points, lines), (3, 2));
        // Longitude first: actor 3 sits at lng −1.5, lat 47.03.
        let third = features
            .iter()
            .find(|f| f["id"] == id(3).to_string())
            .unwrap();
        assert_eq!(third["geometry"]["coordinates"][0].as_f64(), Some(-1.5));
        assert!((third["geometry"]["coordinates"][1].as_f64().unwrap() - 47.03).abs() < 1e-9);
        // Round trip through the typed structs.
        let back: GeoJsonCollection = serde_json::from_str(&text).unwrap();
        assert_eq!(back, graph.to_geojson());
    }

    #[test]
    fn json_export_has_nodes_and_links() {
        let graph = export_graph();
        let json = serde_json::to_value(graph.to_json()).unwrap();
        assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
        let links = json["links"].as_array().unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0]["source"], id(1).to_string());
        assert_eq!(links[0]["target"], id(2).to_string());
        assert_eq!(links[0]["quantity"], 10.0);
        assert_eq!(links[1]["latent"], true);
        // Latent link: only the offer quantity is known.
        assert_eq!(links[1]["quantity"], 10.0);
        assert_eq!(json["nodes"][0]["out_degree"], 1);
    }
}
