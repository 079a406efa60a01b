//! The territory's synergy graph (petgraph, `matching::graph`) through the API: exports (JSON,
//! GraphML, GeoJSON), the min-cost allocation of flows, chains and loops, hubs. For partners and
//! public readers the graph is built from the anonymous view, so every export shows the same view.

use std::collections::HashSet;

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::extract::ValidQuery;
use crate::api::{Page, PageParams, State, page_slice};
use crate::auth::Caller;
use crate::auth::anonymise::{ActorFacts, Anonymiser};
use crate::matching::graph::{ChainParams, GraphActor, GraphEdge, SynergyGraph};
use crate::reference::Lang;

use super::{
    ActorName, Labels, check_min_score, current_for, in_scope, scope_of, territory_candidates,
};

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
    // The territory's synergies from the build's index, materialised once selected.
    let positions = territory_candidates(state, &built, &scope, zone.as_ref());
    let selected: Box<dyn Iterator<Item = u32>> = match &positions {
        Some(p) => Box::new(p.synergies.iter().copied()),
        None => Box::new(0..built.synergies.len() as u32),
    };
    let edges: Vec<GraphEdge> = selected
        .filter_map(|i| Some((i, built.brief(i)?)))
        .filter(|(_, s)| min_score.is_none_or(|m| s.score >= m))
        .filter(|(_, s)| {
            in_scope(&built, &s.provider_actor_id, &scope, zone.as_ref())
                || in_scope(&built, &s.receiver_actor_id, &scope, zone.as_ref())
        })
        .filter_map(|(i, _)| built.figures_at(i))
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
#[utoipa::path(tag = "graph", params(GraphQuery), responses((status = 200, description = "the graph in the requested format", content((crate::matching::graph::GraphJson = "application/json"), (String = "application/graphml+xml"), (crate::matching::graph::GeoJsonCollection = "application/geo+json"))), (status = 404, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem)))]
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
    /// Chains: longest chain in hops (default 3, at most 6).
    pub limit: Option<usize>,
}

/// The parameters of the allocation as documented (it has no `limit`).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AllocationQuery {
    pub min_score: Option<f64>,
}

/// Optimal allocation of limited offer quantities among competing needs (min-cost flow: maximises
/// Σ score × quantity), with the greedy value for comparison. Only the flows that receive a
/// quantity are listed, rounded (quantities to 1e-3 of their unit, shares and scores to 1e-4).
#[utoipa::path(tag = "graph", params(AllocationQuery), responses((status = 200, body = AllocationOut), (status = 404, body = crate::api::error::Problem)))]
#[get("/territories/{code}/allocation")]
pub async fn territory_allocation(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphScoreQuery>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let graph = territory_graph_of(&state, &caller, &code, query.0.min_score).await?;
    let (allocation, graph) = web::block(move || (graph.allocate().readable(), graph))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let names = GraphNames::of(
        &graph,
        Labels {
            state: &state,
            lang,
        },
    );
    let flow = |f: crate::matching::graph::SynergyAllocation| {
        let (from, to) = names
            .parties
            .get(&f.synergy_id)
            .copied()
            .unwrap_or_default();
        let class = names
            .classes
            .get(&f.synergy_id)
            .cloned()
            .unwrap_or_default();
        AllocatedFlowOut {
            provider: names.actor(from),
            receiver: names.actor(to),
            class_label: names.labels.class(&class),
            class,
            flow: f,
        }
    };
    Ok(HttpResponse::Ok().json(AllocationOut {
        per_synergy: allocation.per_synergy.into_iter().map(flow).collect(),
        excluded: allocation.excluded,
        by_unit: allocation.by_unit,
        total_value: allocation.total_value,
        total_allocated_by_unit: allocation.total_allocated_by_unit,
        greedy_value: allocation.greedy_value,
    }))
}

/// The allocation with the parties' names and the class label of each flow (reader's language).
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationOut {
    /// The flows that receive a quantity, by value (descending).
    pub per_synergy: Vec<AllocatedFlowOut>,
    pub excluded: Vec<crate::matching::graph::ExcludedSynergy>,
    pub by_unit: Vec<crate::matching::graph::UnitAllocation>,
    pub total_value: f64,
    pub total_allocated_by_unit: std::collections::BTreeMap<String, f64>,
    pub greedy_value: f64,
}

/// One allocated flow: who gives, who takes, what.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocatedFlowOut {
    #[serde(flatten)]
    pub flow: crate::matching::graph::SynergyAllocation,
    pub provider: ActorName,
    pub receiver: ActorName,
    pub class: String,
    /// The class's label in the reader's language.
    pub class_label: Option<String>,
}

/// Chains A → B → C and loops (strongly connected groups of actors), with the actors' names and
/// the resource classes of the links in the reader's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainsOut {
    pub chains: ChainReportOut,
    pub loops: Vec<LoopOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainReportOut {
    /// Sorted by `min_score` (desc), `mean_score` (desc), length (longer first), then actor ids.
    pub chains: Vec<ChainOut>,
    /// True when the search budget ran out: more chains may exist.
    pub truncated: bool,
}

/// A cascade A → B → C: the actors in order (`actors`, and `parties` with their names) and its links.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainOut {
    pub actors: Vec<Uuid>,
    /// The actors of `actors` with their names (anonymous labels for the actors a partner or
    /// keyless reader may not see).
    pub parties: Vec<ActorName>,
    pub hops: Vec<HopOut>,
    /// The weakest link: a chain is as feasible as its weakest exchange.
    pub min_score: f64,
    pub mean_score: f64,
}

/// One link of a chain: who gives to whom, and what (the class of its best synergy).
#[derive(Debug, Serialize, ToSchema)]
pub struct HopOut {
    #[serde(flatten)]
    #[schema(inline)]
    pub hop: crate::matching::graph::ChainHop,
    pub from: ActorName,
    pub to: ActorName,
    /// Resource class of the link's best synergy.
    pub class: String,
    /// Its label in the reader's language (`Accept-Language`).
    pub class_label: Option<String>,
}

/// A loop of actors, with their names.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoopOut {
    #[serde(flatten)]
    #[schema(inline)]
    pub actor_loop: crate::matching::graph::ActorLoop,
    /// The members with their names, in the order of `members`.
    pub parties: Vec<ActorName>,
}

/// Names and class labels for the graph analyses. The graph was anonymised for partners and keyless
/// readers when it was built (`territory_graph_of`), so its names are already what they may read.
struct GraphNames<'a> {
    names: std::collections::HashMap<Uuid, String>,
    classes: std::collections::HashMap<Uuid, String>,
    /// Provider and receiver actor of each synergy.
    parties: std::collections::HashMap<Uuid, (Uuid, Uuid)>,
    labels: Labels<'a>,
}

impl<'a> GraphNames<'a> {
    fn of(graph: &SynergyGraph, labels: Labels<'a>) -> Self {
        let g = graph.graph();
        GraphNames {
            names: g.node_weights().map(|a| (a.id, a.name.clone())).collect(),
            classes: g
                .edge_weights()
                .map(|e| (e.synergy_id, e.class.clone()))
                .collect(),
            parties: g
                .edge_weights()
                .map(|e| (e.synergy_id, (e.from_actor, e.to_actor)))
                .collect(),
            labels,
        }
    }

    fn actor(&self, id: Uuid) -> ActorName {
        ActorName {
            actor_id: id,
            name: self.names.get(&id).cloned().unwrap_or_default(),
        }
    }

    fn chain(&self, c: crate::matching::graph::Chain) -> ChainOut {
        ChainOut {
            parties: c.actors.iter().map(|&id| self.actor(id)).collect(),
            hops: c
                .hops
                .into_iter()
                .map(|hop| {
                    let class = hop
                        .synergy_ids
                        .first()
                        .and_then(|id| self.classes.get(id))
                        .cloned()
                        .unwrap_or_default();
                    HopOut {
                        from: self.actor(hop.from_actor),
                        to: self.actor(hop.to_actor),
                        class_label: self.labels.class(&class),
                        class,
                        hop,
                    }
                })
                .collect(),
            actors: c.actors,
            min_score: c.min_score,
            mean_score: c.mean_score,
        }
    }
}

/// Chains of synergies through the territory and loops of actors.
#[utoipa::path(tag = "graph", params(GraphScoreQuery), responses((status = 200, body = ChainsOut), (status = 404, body = crate::api::error::Problem)))]
#[get("/territories/{code}/chains")]
pub async fn territory_chains(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<GraphScoreQuery>,
    lang: Lang,
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
    let (report, loops, graph) = web::block(move || {
        let report = graph.chains(&params);
        let loops = graph.loops(min_score);
        (report, loops, graph)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let names = GraphNames::of(
        &graph,
        Labels {
            state: &state,
            lang,
        },
    );
    let out = ChainsOut {
        chains: ChainReportOut {
            chains: report.chains.into_iter().map(|c| names.chain(c)).collect(),
            truncated: report.truncated,
        },
        loops: loops
            .into_iter()
            .map(|l| LoopOut {
                parties: l.members.iter().map(|&id| names.actor(id)).collect(),
                actor_loop: l,
            })
            .collect(),
    };
    Ok(crate::api::afme::in_lang(lang).json(out))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubQuery {
    pub min_score: Option<f64>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Actors through which the most and best synergies pass, ranked (`rank`), a page at a time.
#[utoipa::path(tag = "graph", params(HubQuery), responses((status = 200, body = Page<crate::matching::graph::Hub>), (status = 404, body = crate::api::error::Problem), (status = 422, body = crate::api::error::Problem)))]
#[get("/territories/{code}/hubs")]
pub async fn territory_hubs(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<HubQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    crate::api::check_limit(page.limit)?;
    let graph = territory_graph_of(&state, &caller, &code, query.min_score).await?;
    let hubs = graph.hubs(usize::MAX);
    Ok(HttpResponse::Ok().json(page_slice(&state, &hubs, &page)?))
}
