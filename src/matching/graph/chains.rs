//! Chains A → B → C and closed loops of actors.

use super::*;

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
