//! Synergies: ranked and explained substitution and pooling synergies of a territory, an actor or a
//! resource; ad-hoc matching. By responsibility:
//! - `lists.rs`: the lists of a territory and of an actor, one synergy, a detection on demand;
//! - `matches.rs`: a resource's matches and ad-hoc matching (`POST /match`);
//! - `ranking.rs`: the territorial priority and the ranked page of a list;
//! - `builds.rs`: the detection a request reads (current, fresh, anonymous view) and its scope;
//! - `query.rs`: the query parameters and their filters;
//! - `output.rs`: what the endpoints answer (synergies, pooling groups, labels, explanations);
//! - `graph.rs`: the territory's synergy graph (exports, allocation, chains, hubs).

use actix_web::web;

mod builds;
pub(crate) mod graph;
pub(crate) mod lists;
pub(crate) mod matches;
mod output;
mod query;
mod ranking;

pub use builds::{current, current_for};
pub(crate) use builds::{scope_of, territory_candidates};
pub(crate) use lists::{check_parties, parties};
pub use output::{ActorName, Labels, PoolingOut, SubstitutionOut, SynergyItem};
pub use query::SynergyKind;
pub use ranking::Prioritiser;

// What the graph module shares with the lists.
use builds::in_scope;
use query::check_min_score;

use graph::{territory_allocation, territory_chains, territory_graph, territory_hubs};
use lists::{actor_synergies, detect_now, get_synergy, list_synergies};
use matches::{match_adhoc, resource_matches};

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
