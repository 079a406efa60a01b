//! The query parameters of the synergy lists and matches, their checks and their filters.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::{PageParams, State};
use crate::detection::pooling_score;
use crate::matching::Synergy;
use crate::matching::pooling::PoolingGroup;

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
    pub(super) fn page(&self) -> PageParams {
        PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }

    pub(super) fn check(&self) -> Result<(), ApiError> {
        if self.max_latent.is_some_and(|n| n > MAX_LATENT) {
            return Err(ApiError::field(
                "max_latent",
                format!("at most {MAX_LATENT}"),
            ));
        }
        check_min_score(self.min_score).map(|_| ())
    }

    /// The matching settings of a one-resource query: the configured ones with `max_latent`.
    pub(super) fn settings(&self, state: &State) -> crate::matching::MatchingSettings {
        let mut settings = state.detection.settings.clone();
        if let Some(n) = self.max_latent {
            settings.query.max_latent = n;
        }
        settings
    }

    /// Whether a substitution synergy passes the filters, `score` being its score in this list
    /// (with the territory's priority applied).
    pub(super) fn keeps_substitution(&self, s: &Synergy, score: f64) -> bool {
        self.keeps(&s.class, s.latent, score)
    }

    pub(super) fn keeps(&self, class: &str, latent: bool, score: f64) -> bool {
        self.kind != Some(SynergyKind::Pooling)
            && self.min_score.is_none_or(|m| score >= m)
            && self.class.as_deref().is_none_or(|c| class.starts_with(c))
            && self.latent.is_none_or(|l| latent == l)
    }

    pub(super) fn keeps_pooling(&self, g: &PoolingGroup) -> bool {
        self.kind != Some(SynergyKind::Substitution)
            && self.latent != Some(true)
            && self.min_score.is_none_or(|m| pooling_score(g) >= m)
            && self.class.as_deref().is_none_or(|c| g.key.starts_with(c))
    }
}

/// Largest `max_latent` a query may ask for.
const MAX_LATENT: usize = 50;

/// A `min_score` filter: a number in [0, 1] (`NaN` is refused, not read as "no filter").
pub(super) fn check_min_score(min_score: Option<f64>) -> Result<Option<f64>, ApiError> {
    match min_score {
        Some(m) if !(0.0..=1.0).contains(&m) => {
            Err(ApiError::field("min_score", "must be between 0 and 1"))
        }
        other => Ok(other),
    }
}
