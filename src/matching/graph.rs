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

mod allocation;
mod chains;
mod export;
pub use allocation::*;
pub use chains::*;
pub use export::*;

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

#[cfg(test)]
mod tests;
