//! Environmental impacts of a synergy: yearly quantity exchanged, tonnes diverted from disposal, CO2e
//! avoided (virgin production substituted + disposal avoided) minus road transport.
//!
//! Factors come from `knowledge/impact_factors.csv`, one row per class (a class without a row uses its
//! nearest ancestor's), each with its source and caveat. They are orders of magnitude meant to rank and
//! report synergies, not a life-cycle assessment.

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::taxonomy::{ClassId, Taxonomy, csv_rows};
use super::{MatchingError, Result};
use crate::domain::resource::BaseUnit;

const FACTORS_CSV: &str = include_str!("../../knowledge/impact_factors.csv");

/// Road distance ÷ great-circle distance. Road networks add 20–40 % to the crow-flies distance;
/// ADEME's transport guides use real distances, for which 1.3 is a usual average.
pub const ROAD_DETOUR_FACTOR: f64 = 1.3;

/// Factors of one class.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ImpactFactor {
    pub class: String,
    /// Unit the factors are per (t, MWh, m3 or unit).
    pub unit: BaseUnit,
    /// kg CO2e avoided per unit of virgin resource substituted.
    pub virgin_substitution_kgco2e: f64,
    /// kg CO2e avoided per unit not landfilled or incinerated.
    pub avoided_disposal_kgco2e: f64,
    /// Share of the exchanged quantity that would otherwise have gone to disposal.
    pub diverted_share: f64,
    /// kg CO2e per t·km of road transport (0 when piped).
    pub transport_kgco2e_per_tkm: f64,
    pub source: String,
    pub caveat: String,
}

/// Yearly impact of a synergy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Impact {
    /// Quantity exchanged per year, in `base_unit`.
    pub quantity_per_year: f64,
    pub base_unit: BaseUnit,
    /// Tonnes per year no longer landfilled or incinerated (0 when the quantity is not in tonnes).
    pub diverted_tonnes: f64,
    /// t CO2e per year avoided (virgin substitution + avoided disposal).
    pub co2e_avoided_t: f64,
    /// t CO2e per year emitted by road transport (great-circle distance × 1.3).
    pub transport_co2e_t: f64,
    /// `co2e_avoided_t − transport_co2e_t`.
    pub net_co2e_t: f64,
    /// Class whose factor row was applied; `None` when no row applies in this unit (CO2e left at 0).
    pub factor_class: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ImpactFactors {
    rows: Vec<ImpactFactor>,
    by_class: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct FactorRow {
    class: String,
    unit: String,
    virgin_substitution_kgco2e: f64,
    avoided_disposal_kgco2e: f64,
    diverted_share: f64,
    transport_kgco2e_per_tkm: f64,
    source: String,
    caveat: String,
}

impl ImpactFactors {
    /// The factors embedded in the binary.
    pub fn builtin(taxonomy: &Taxonomy) -> Result<ImpactFactors> {
        ImpactFactors::from_reader(FACTORS_CSV.as_bytes(), taxonomy)
    }

    pub fn from_reader(reader: impl Read, taxonomy: &Taxonomy) -> Result<ImpactFactors> {
        let src = "impact_factors.csv";
        let mut out = ImpactFactors::default();
        for (line, row) in csv_rows::<FactorRow>(src, reader)? {
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line,
                message,
            };
            if taxonomy.id(&row.class).is_none() {
                return Err(bad(format!("unknown class `{}`", row.class)));
            }
            let unit =
                BaseUnit::parse(&row.unit).ok_or_else(|| bad(format!("unit `{}`", row.unit)))?;
            let values = [
                row.virgin_substitution_kgco2e,
                row.avoided_disposal_kgco2e,
                row.transport_kgco2e_per_tkm,
            ];
            if values.iter().any(|v| !v.is_finite() || *v < 0.0)
                || !(0.0..=1.0).contains(&row.diverted_share)
            {
                return Err(bad(
                    "factors must be non-negative and diverted_share within [0, 1]".into(),
                ));
            }
            if out
                .by_class
                .insert(row.class.clone(), out.rows.len())
                .is_some()
            {
                return Err(bad(format!("duplicate class `{}`", row.class)));
            }
            out.rows.push(ImpactFactor {
                class: row.class,
                unit,
                virgin_substitution_kgco2e: row.virgin_substitution_kgco2e,
                avoided_disposal_kgco2e: row.avoided_disposal_kgco2e,
                diverted_share: row.diverted_share,
                transport_kgco2e_per_tkm: row.transport_kgco2e_per_tkm,
                source: row.source,
                caveat: row.caveat,
            });
        }
        Ok(out)
    }

    pub fn all(&self) -> &[ImpactFactor] {
        &self.rows
    }

    /// The factor row of a class or of its nearest ancestor that has one.
    pub fn factor_for(&self, taxonomy: &Taxonomy, class: ClassId) -> Option<&ImpactFactor> {
        let mut cur = Some(class);
        while let Some(id) = cur {
            if let Some(i) = self.by_class.get(&taxonomy.class(id).name) {
                return self.rows.get(*i);
            }
            cur = taxonomy.parent_id(id);
        }
        None
    }

    /// Impact of exchanging `quantity` per year of `class` over `distance_km` (great circle).
    pub fn impact(
        &self,
        taxonomy: &Taxonomy,
        class: ClassId,
        quantity: f64,
        base_unit: BaseUnit,
        distance_km: f64,
    ) -> Impact {
        let factor = self
            .factor_for(taxonomy, class)
            .filter(|f| f.unit == base_unit);
        let q = quantity.max(0.0);
        let tonnes = if base_unit == BaseUnit::Tonne { q } else { 0.0 };
        let (diverted, avoided, transport) = match factor {
            Some(f) => {
                let diverted = tonnes * f.diverted_share;
                let avoided_kg = q * f.virgin_substitution_kgco2e
                    + q * f.diverted_share * f.avoided_disposal_kgco2e;
                let transport_kg =
                    tonnes * distance_km * ROAD_DETOUR_FACTOR * f.transport_kgco2e_per_tkm;
                (diverted, avoided_kg / 1000.0, transport_kg / 1000.0)
            }
            None => (0.0, 0.0, 0.0),
        };
        Impact {
            quantity_per_year: q,
            base_unit,
            diverted_tonnes: diverted,
            co2e_avoided_t: avoided,
            transport_co2e_t: transport,
            net_co2e_t: avoided - transport,
            factor_class: factor.map(|f| f.class.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_have_sources_and_fall_back_to_ancestors() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let f = ImpactFactors::builtin(&t).expect("factors");
        assert!(
            f.all()
                .iter()
                .all(|r| !r.source.is_empty() && !r.caveat.is_empty())
        );
        // Every class resolves to some factor row.
        for c in t.classes() {
            let id = t.id(&c.name).expect("id");
            assert!(f.factor_for(&t, id).is_some(), "{}", c.name);
        }
        let food = t.id("material/biomass/food").expect("food");
        assert_eq!(
            f.factor_for(&t, food).map(|r| r.class.as_str()),
            Some("material/biomass/food")
        );
        let heat = t.id("energy/heat/low_temperature").expect("heat");
        assert_eq!(
            f.factor_for(&t, heat).map(|r| r.class.as_str()),
            Some("energy")
        );
    }

    #[test]
    fn impact_nets_transport_from_avoided_emissions() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let f = ImpactFactors::builtin(&t).expect("factors");
        let ferrous = t.id("material/metal/ferrous").expect("ferrous");
        let i = f.impact(&t, ferrous, 100.0, BaseUnit::Tonne, 50.0);
        // 100 t × 1500 kg + 100 × 0.2 × 20 kg = 150.4 t; transport 100 × 50 × 1.3 × 0.1 kg = 0.65 t.
        assert!((i.co2e_avoided_t - 150.4).abs() < 1e-9, "{i:?}");
        assert!((i.transport_co2e_t - 0.65).abs() < 1e-9);
        assert!((i.net_co2e_t - 149.75).abs() < 1e-9);
        assert!((i.diverted_tonnes - 20.0).abs() < 1e-9);
        // Farther means more transport.
        assert!(
            f.impact(&t, ferrous, 100.0, BaseUnit::Tonne, 400.0)
                .net_co2e_t
                < i.net_co2e_t
        );
        // Heat is piped: no transport, factor per MWh.
        let heat = t.id("energy/heat/low_temperature").expect("heat");
        let h = f.impact(&t, heat, 1000.0, BaseUnit::Megawatthour, 3.0);
        assert!((h.co2e_avoided_t - 250.0).abs() < 1e-9 && h.transport_co2e_t == 0.0);
        // A unit the factor is not expressed in: quantities kept, no CO2e claimed.
        let m3 = f.impact(&t, ferrous, 10.0, BaseUnit::CubicMetre, 5.0);
        assert!(m3.factor_class.is_none() && m3.co2e_avoided_t == 0.0);
    }
}
