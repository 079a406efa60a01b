//! The matching engine. Pure: works on an immutable snapshot, returns results.
//!
//! - [`taxonomy`]: the resource-class tree and the EWC code → class rules (embedded data files);
//! - [`evidence`]: the evidence base of reuse (documented exchanges, parks, EPA statistics, profiles);
//! - [`receiver_model`]: P(receiving activity | resource, provider), hierarchical back-off;
//! - [`knowledge`]: receiver rules from the model, sector profiles;
//! - [`snapshot`]: the engine's input, with per-class spatial indexes (R-trees over 3-D unit vectors);
//! - [`compat`]: offer → need compatibility (code, class, parent class, pathway, profile; heat, hazard rules);
//! - [`score`]: weighted score components and the one-line explanations;
//! - [`impact`]: yearly quantities, tonnes diverted and CO2e, from a factors file with sources;
//! - [`engine`]: candidate generation, `detect_all`, `matches_for_resource`, `match_adhoc`;
//! - [`synth`]: a seeded national-scale synthetic dataset for benches.
//!
//! Nothing here touches a database or HTTP; reference files are read only through functions that take
//! a reader or a path.

pub mod compat;
pub mod engine;
pub mod evidence;
pub mod graph;
pub mod impact;
pub mod knowledge;
pub mod pooling;
pub mod receiver_model;
pub mod score;
pub mod snapshot;
pub mod synth;
pub mod taxonomy;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use compat::{Fit, FitLevel, Rejection};
pub use engine::{
    AdhocQuery, Candidate, CandidateSet, Carry, StoredParty, Synergy, detect, detect_all,
    detect_offers, figures_of, latent_synergy_id, match_adhoc, matches_for_resource, synergy_id,
    synergy_of,
};
pub use impact::{Impact, ImpactFactor, ImpactFactors};
pub use knowledge::{Knowledge, NaceKey, SectorProfile, SectorProfiles};
pub use score::{NeutralPriority, ScoreComponents, ScoringWeights, TerritorialPriority};
pub use snapshot::{IndexedActor, IndexedResource, SnapActor, SnapResource, Snapshot};
pub use taxonomy::{ClassId, EwcCode, ResourceClass, Taxonomy};

/// Errors of the matching layer.
#[derive(Debug, thiserror::Error)]
pub enum MatchingError {
    /// A reference or knowledge file has a bad row.
    #[error("{source_name}, line {line}: {message}")]
    Data {
        source_name: String,
        line: u64,
        message: String,
    },
    /// A reference or knowledge file is not valid CSV.
    #[error("{source_name}: {error}")]
    Csv {
        source_name: String,
        #[source]
        error: csv::Error,
    },
    /// A file could not be opened.
    #[error("cannot read {path}: {error}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("unknown resource class `{0}`")]
    UnknownClass(String),
    #[error("invalid EWC code `{0}` (expected six digits such as 10 01 02)")]
    InvalidEwcCode(String),
    #[error("resource {0} is not in the matching snapshot")]
    UnknownResource(Uuid),
    #[error("invalid matching settings: {0}")]
    InvalidSettings(String),
    #[error("invalid query: {field}: {message}")]
    InvalidQuery {
        field: &'static str,
        message: String,
    },
}

pub type Result<T, E = MatchingError> = std::result::Result<T, E>;

/// How far one search goes: bounds the work per resource, so a full detection stays near-linear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SearchLimits {
    /// Candidates kept per resource, best first.
    pub max_results: usize,
    /// Nearest points read from each spatial index of resources.
    pub neighbour_pool: usize,
    /// Receiving divisions (best first, with the groups and classes their evidence names) explored
    /// for latent candidates.
    pub max_receiver_rules: usize,
    /// Nearest actors read per receiver rule.
    pub receiver_pool: usize,
    /// Stop exploring receiver rules once this many receiving actors are collected.
    pub max_receiver_actors: usize,
    /// Latent receivers kept per offer (0: no latent synergies).
    pub max_latent: usize,
    /// Resources assessed at most per search (need side).
    pub max_assessed: usize,
}

impl SearchLimits {
    /// Full detection over a snapshot: tight, so that 1M resources stay within seconds.
    pub fn detection() -> Self {
        SearchLimits {
            max_results: 10,
            neighbour_pool: 8,
            max_receiver_rules: 12,
            receiver_pool: 3,
            max_receiver_actors: 9,
            max_latent: 3,
            max_assessed: 200,
        }
    }

    /// One resource's matches (API): wider, still well under 2 ms.
    pub fn query() -> Self {
        SearchLimits {
            max_results: 50,
            neighbour_pool: 24,
            max_receiver_rules: 32,
            receiver_pool: 6,
            max_receiver_actors: 32,
            max_latent: 10,
            max_assessed: 300,
        }
    }

    fn validate(&self, name: &str) -> Result<()> {
        if self.neighbour_pool == 0 || self.max_results == 0 || self.max_assessed == 0 {
            return Err(MatchingError::InvalidSettings(format!(
                "{name}: max_results, neighbour_pool and max_assessed must be at least 1"
            )));
        }
        Ok(())
    }
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits::query()
    }
}

/// A `[matching.detection]` or `[matching.query]` section: any field left out keeps its default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialLimits {
    max_results: Option<usize>,
    neighbour_pool: Option<usize>,
    max_receiver_rules: Option<usize>,
    receiver_pool: Option<usize>,
    max_receiver_actors: Option<usize>,
    max_latent: Option<usize>,
    max_assessed: Option<usize>,
}

impl PartialLimits {
    fn over(self, base: SearchLimits) -> SearchLimits {
        SearchLimits {
            max_results: self.max_results.unwrap_or(base.max_results),
            neighbour_pool: self.neighbour_pool.unwrap_or(base.neighbour_pool),
            max_receiver_rules: self.max_receiver_rules.unwrap_or(base.max_receiver_rules),
            receiver_pool: self.receiver_pool.unwrap_or(base.receiver_pool),
            max_receiver_actors: self.max_receiver_actors.unwrap_or(base.max_receiver_actors),
            max_latent: self.max_latent.unwrap_or(base.max_latent),
            max_assessed: self.max_assessed.unwrap_or(base.max_assessed),
        }
    }
}

fn detection_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SearchLimits, D::Error> {
    Ok(PartialLimits::deserialize(d)?.over(SearchLimits::detection()))
}

fn query_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SearchLimits, D::Error> {
    Ok(PartialLimits::deserialize(d)?.over(SearchLimits::query()))
}

/// Settings of the engine (config section `[matching]`; `[matching.weights]`, `[matching.detection]`,
/// `[matching.query]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingSettings {
    /// Heat rule: an offer at `T_offer` serves a need at `T_need` only if `T_offer ≥ T_need + ΔT` (°C).
    pub heat_delta_t_c: f64,
    /// Confidence component of a latent synergy (declared ones have 1.0).
    pub latent_confidence: f64,
    /// Candidates scoring below this are dropped.
    pub min_score: f64,
    /// Worker threads of a full detection (0 = available parallelism).
    pub threads: usize,
    /// Worker threads of a rebuild run in the background after writes (0 = available
    /// parallelism): one leaves the other cores to the requests around it. The first detection and
    /// `POST /synergies/detect` use `threads`.
    pub background_threads: usize,
    /// After a change, a synergy read may be answered from the previous build if it is at most this
    /// old (ms) — or at most twice as old as it took to build, when that is longer —, the rebuild
    /// then running in the background; 0 = always wait (every read sees every write before it).
    pub max_staleness_ms: u64,
    pub weights: ScoringWeights,
    /// Limits of a full detection ([`detect`], [`detect_all`]).
    #[serde(deserialize_with = "detection_limits")]
    pub detection: SearchLimits,
    /// Limits of one resource's search ([`matches_for_resource`], [`match_adhoc`]).
    #[serde(deserialize_with = "query_limits")]
    pub query: SearchLimits,
}

impl Default for MatchingSettings {
    fn default() -> Self {
        MatchingSettings {
            heat_delta_t_c: 10.0,
            latent_confidence: 0.5,
            min_score: 0.0,
            threads: 0,
            background_threads: 1,
            max_staleness_ms: 0,
            weights: ScoringWeights::default(),
            detection: SearchLimits::detection(),
            query: SearchLimits::query(),
        }
    }
}

impl MatchingSettings {
    /// Rejects settings that would make scores meaningless.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(MatchingError::InvalidSettings(m.to_owned()));
        if !self.heat_delta_t_c.is_finite() || self.heat_delta_t_c < 0.0 {
            return bad("heat_delta_t_c must be a non-negative number");
        }
        if !(0.0..=1.0).contains(&self.latent_confidence) {
            return bad("latent_confidence must be within [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return bad("min_score must be within [0, 1]");
        }
        self.detection.validate("detection")?;
        self.query.validate("query")?;
        self.weights.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_settings_keep_their_section_defaults() {
        let s: MatchingSettings =
            serde_json::from_str(r#"{"heat_delta_t_c": 5, "detection": {"neighbour_pool": 8}, "weights": {"distance": 0.5}}"#)
                .expect("valid settings");
        assert_eq!(s.heat_delta_t_c, 5.0);
        assert_eq!(
            s.detection,
            SearchLimits {
                neighbour_pool: 8,
                ..SearchLimits::detection()
            }
        );
        assert_eq!(s.query, SearchLimits::query());
        assert_eq!(s.weights.distance, 0.5);
        assert_eq!(
            s.weights.resource_fit,
            ScoringWeights::default().resource_fit
        );
        assert!(s.validate().is_ok());
        assert!(serde_json::from_str::<MatchingSettings>(r#"{"detection": {"pool": 8}}"#).is_err());
        let bad = MatchingSettings {
            latent_confidence: 2.0,
            ..MatchingSettings::default()
        };
        assert!(bad.validate().is_err());
    }
}
