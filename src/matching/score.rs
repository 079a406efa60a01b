//! Scoring: named components in [0, 1], a weighted mean, and the helpers that compute each component.
//!
//! | component | value |
//! |---|---|
//! | `resource_fit` | value of the compatibility level (1.0 accepted code … ~0.4 sector profile) |
//! | `quantity_coverage` | 0.7 × share of the need covered + 0.3 × share of the offer used; 0.5 when unknown |
//! | `distance` | `exp(−d / scale)`, scale from the offer's class (heat ~2 km, metals ~200 km) |
//! | `time_overlap` | months the offer is available ÷ months the need wants it |
//! | `quality` | heat: temperature margin above `T_need + ΔT`; accepted code 1.0; otherwise 0.7 |
//! | `regulatory_risk` | 1.0 no waste status, 0.85 non-hazardous waste, 0.4 hazardous waste (higher = less risk) |
//! | `confidence` | 1.0 declared need, `latent_confidence` (0.5) for a latent receiver |
//! | `territorial_priority` | from a [`TerritorialPriority`] (AFME module); neutral 0.5 by default |

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MatchingError, Result};

/// Weights of the score components (config section `[matching.weights]`). Any non-negative values;
/// the score is the weighted mean, so only their ratios matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringWeights {
    pub resource_fit: f64,
    pub quantity_coverage: f64,
    pub distance: f64,
    pub time_overlap: f64,
    pub quality: f64,
    pub regulatory_risk: f64,
    pub confidence: f64,
    pub territorial_priority: f64,
}

impl Default for ScoringWeights {
    fn default() -> Self {
        ScoringWeights {
            resource_fit: 0.25,
            quantity_coverage: 0.15,
            distance: 0.20,
            time_overlap: 0.05,
            quality: 0.10,
            regulatory_risk: 0.05,
            confidence: 0.10,
            territorial_priority: 0.10,
        }
    }
}

impl ScoringWeights {
    pub(crate) fn as_array(&self) -> [f64; 8] {
        [
            self.resource_fit,
            self.quantity_coverage,
            self.distance,
            self.time_overlap,
            self.quality,
            self.regulatory_risk,
            self.confidence,
            self.territorial_priority,
        ]
    }

    pub fn validate(&self) -> Result<()> {
        let w = self.as_array();
        if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(MatchingError::InvalidSettings(
                "weights must be non-negative numbers".into(),
            ));
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(MatchingError::InvalidSettings(
                "at least one weight must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The components of a synergy's score, each in [0, 1] (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct ScoreComponents {
    pub resource_fit: f64,
    pub quantity_coverage: f64,
    pub distance: f64,
    pub time_overlap: f64,
    pub quality: f64,
    pub regulatory_risk: f64,
    pub confidence: f64,
    pub territorial_priority: f64,
}

impl ScoreComponents {
    fn as_array(&self) -> [f64; 8] {
        [
            self.resource_fit,
            self.quantity_coverage,
            self.distance,
            self.time_overlap,
            self.quality,
            self.regulatory_risk,
            self.confidence,
            self.territorial_priority,
        ]
    }

    /// Weighted mean of the components, in [0, 1].
    pub fn score(&self, weights: &ScoringWeights) -> f64 {
        let (w, c) = (weights.as_array(), self.as_array());
        let total: f64 = w.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let s: f64 = w.iter().zip(c).map(|(w, c)| w * clamp01(c)).sum::<f64>() / total;
        clamp01(s)
    }
}

pub(crate) fn clamp01(v: f64) -> f64 {
    if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) }
}

/// Territorial priority of a resource (its class and EWC code), in [0, 1]; 0.5 is neutral.
/// The AFME module implements it from the territory's import dependency and landfill shares.
pub trait TerritorialPriority: Sync {
    fn priority(&self, class: &str, ewc_code: Option<&str>) -> f64;
}

impl<F> TerritorialPriority for F
where
    F: Fn(&str, Option<&str>) -> f64 + Sync,
{
    fn priority(&self, class: &str, ewc_code: Option<&str>) -> f64 {
        self(class, ewc_code)
    }
}

/// Every resource at the neutral 0.5.
#[derive(Debug, Clone, Copy, Default)]
pub struct NeutralPriority;

impl TerritorialPriority for NeutralPriority {
    fn priority(&self, _class: &str, _ewc_code: Option<&str>) -> f64 {
        0.5
    }
}

/// `exp(−d / scale)`.
pub fn distance_decay(distance_km: f64, scale_km: f64) -> f64 {
    if scale_km <= 0.0 {
        0.0
    } else {
        (-distance_km.max(0.0) / scale_km).exp()
    }
}

/// Quantity component and the exchangeable quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantityFit {
    pub component: f64,
    /// Share of the need covered (both quantities known).
    pub coverage: Option<f64>,
    /// Quantity exchangeable per year: min of the known quantities (an upper bound when one is unknown).
    pub exchangeable: Option<f64>,
}

pub fn quantity_fit(offer: Option<f64>, need: Option<f64>) -> QuantityFit {
    match (offer, need) {
        (Some(o), Some(n)) if n > 0.0 && o > 0.0 => {
            let x = o.min(n);
            let coverage = x / n;
            let used = x / o;
            QuantityFit {
                component: 0.7 * coverage + 0.3 * used,
                coverage: Some(coverage),
                exchangeable: Some(x),
            }
        }
        (Some(o), Some(n)) => QuantityFit {
            component: 0.0,
            coverage: Some(0.0),
            exchangeable: Some(o.min(n)),
        },
        (Some(q), None) | (None, Some(q)) => QuantityFit {
            component: 0.5,
            coverage: None,
            exchangeable: Some(q),
        },
        (None, None) => QuantityFit {
            component: 0.5,
            coverage: None,
            exchangeable: None,
        },
    }
}

/// Share of the need's months in which the offer is available (a zero mask counts as all year).
pub fn time_overlap(offer_months: u16, need_months: u16) -> f64 {
    let norm = |m: u16| if m & 0x0FFF == 0 { 0x0FFF } else { m & 0x0FFF };
    let (o, n) = (norm(offer_months), norm(need_months));
    f64::from((o & n).count_ones()) / f64::from(n.count_ones())
}

/// Heat quality from the margin above `T_need + ΔT` (°C), by exergy: 1.0 for a source just hot enough,
/// falling smoothly as the surplus grows (0.75 at 40 °C of margin, 0.6 at 160 °C): high-grade heat
/// spent on a low-temperature need wastes its exergy, so the closest source above the need ranks first
/// (cascading). Never below 0.5, the value of heat of unknown temperature.
pub fn heat_quality(margin_c: f64) -> f64 {
    let m = margin_c.max(0.0);
    1.0 - 0.5 * m / (m + 40.0)
}

/// Regulatory ease: no waste status 1.0, non-hazardous waste 0.85, hazardous waste 0.4.
pub fn regulatory_ease(is_waste: bool, hazardous: bool) -> f64 {
    match (is_waste, hazardous) {
        (_, true) => 0.4,
        (true, false) => 0.85,
        (false, false) => 1.0,
    }
}

/// `2,5 km` / `12 km` (French decimal comma below 10 km).
pub(crate) fn km_fr(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.1} km").replace('.', ",")
    } else {
        format!("{d:.0} km")
    }
}

pub(crate) fn km_en(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.1} km")
    } else {
        format!("{d:.0} km")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(v: f64) -> ScoreComponents {
        ScoreComponents {
            resource_fit: v,
            quantity_coverage: v,
            distance: v,
            time_overlap: v,
            quality: v,
            regulatory_risk: v,
            confidence: v,
            territorial_priority: v,
        }
    }

    #[test]
    fn weighted_mean_stays_in_unit_interval() {
        let w = ScoringWeights::default();
        assert!((comps(1.0).score(&w) - 1.0).abs() < 1e-12);
        assert!((comps(0.3).score(&w) - 0.3).abs() < 1e-12);
        let only_fit = ScoringWeights {
            resource_fit: 1.0,
            quantity_coverage: 0.0,
            distance: 0.0,
            time_overlap: 0.0,
            quality: 0.0,
            regulatory_risk: 0.0,
            confidence: 0.0,
            territorial_priority: 0.0,
        };
        let c = ScoreComponents {
            resource_fit: 0.9,
            ..comps(0.0)
        };
        assert!((c.score(&only_fit) - 0.9).abs() < 1e-12);
        assert!(
            ScoringWeights {
                distance: -1.0,
                ..only_fit.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            ScoringWeights {
                resource_fit: 0.0,
                ..only_fit
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn component_helpers() {
        assert!((distance_decay(0.0, 20.0) - 1.0).abs() < 1e-12);
        assert!(distance_decay(40.0, 20.0) < distance_decay(10.0, 20.0));
        let q = quantity_fit(Some(80.0), Some(100.0));
        assert_eq!(q.coverage, Some(0.8));
        assert_eq!(q.exchangeable, Some(80.0));
        assert!((q.component - (0.7 * 0.8 + 0.3)).abs() < 1e-12);
        assert!(
            quantity_fit(Some(100.0), Some(100.0)).component
                > quantity_fit(Some(100.0), Some(10.0)).component
        );
        assert_eq!(quantity_fit(None, Some(5.0)).component, 0.5);
        assert_eq!(time_overlap(0x0FFF, 0b11), 1.0);
        assert_eq!(time_overlap(0b01, 0b11), 0.5);
        assert_eq!(time_overlap(0, 0), 1.0);
        assert!(heat_quality(0.0) > heat_quality(30.0));
        assert!((heat_quality(40.0) - 0.75).abs() < 1e-9);
        assert!(heat_quality(1e6) > 0.5);
        assert_eq!(km_fr(2.54), "2,5 km");
        assert_eq!(km_en(12.4), "12 km");
        let p = |class: &str, _: Option<&str>| {
            if class.starts_with("material") {
                0.9
            } else {
                0.1
            }
        };
        assert_eq!(p.priority("material/plastic", None), 0.9);
        assert_eq!(NeutralPriority.priority("energy", Some("100102")), 0.5);
    }
}
