//! What synergies change in the territory's account: IMP, DPO (landfill) and DMC, in tonnes and in %
//! of the account.
//!
//! Per synergy (tonnes per year):
//! - a synergy whose input replaces an imported primary material lowers IMP by the tonnes exchanged,
//!   and so DMC (= DE + IMP − EXP) by the same amount;
//! - tonnes diverted from landfill lower DPO_LANDFILL (and so DPO and LEPO); DMC counts inputs, so a
//!   diversion alone does not change it;
//! - a synergy that replaces a local extraction would lower DE and DMC; the synergy record does not
//!   say so, so it is not counted (the report says it).
//!
//! Called once with the implemented synergies and once with the proposed ones.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::AfmeError;
use super::indicators::AccountIndicators;
use super::model::Family;

/// What one synergy does, per year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeSynergyImpact)]
pub struct SynergyImpact {
    /// AFME family of the exchanged resource (see `families::family_for_class`).
    pub family: Family,
    pub tonnes_exchanged: f64,
    pub tonnes_diverted_from_landfill: f64,
    /// The receiver would otherwise import this input into the territory.
    pub substitutes_import: bool,
}

/// One indicator before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeChange)]
pub struct Change {
    /// t; `null` when the account has no row for this indicator (unknown, not zero).
    pub before: Option<f64>,
    /// t (negative = decrease).
    pub delta: f64,
    /// t; `null` when `before` is unknown.
    pub after: Option<f64>,
    /// delta / before × 100; `null` when `before` is 0 or unknown.
    pub percent: Option<f64>,
}

impl Change {
    fn new(before: Option<f64>, delta: f64) -> Self {
        Self {
            before,
            delta,
            after: before.map(|b| b + delta),
            percent: before.filter(|b| b.abs() > 0.0).map(|b| delta / b * 100.0),
        }
    }
}

/// Changes for one family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeFamilyImpact)]
pub struct FamilyImpact {
    pub family: Family,
    pub synergies: usize,
    pub imp_delta: f64,
    pub dpo_landfill_delta: f64,
    pub dmc_delta: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeImpactReport)]
pub struct ImpactReport {
    pub territory: String,
    pub year: i32,
    pub synergies: usize,
    pub imp: Change,
    /// `before` is the account's DPO_LANDFILL; `before`, `after` and `percent` are `null` (with a
    /// note) when the account has no DPO_LANDFILL row: the landfill is unknown, not zero.
    pub dpo_landfill: Change,
    pub dmc: Change,
    pub by_family: Vec<FamilyImpact>,
    pub formula: String,
    pub notes: Vec<String>,
}

/// Applies `impacts` to the account summarised by `indicators`.
pub fn account_impact(
    indicators: &AccountIndicators,
    impacts: &[SynergyImpact],
) -> Result<ImpactReport, AfmeError> {
    for (i, s) in impacts.iter().enumerate() {
        for (name, v) in [
            ("tonnes_exchanged", s.tonnes_exchanged),
            (
                "tonnes_diverted_from_landfill",
                s.tonnes_diverted_from_landfill,
            ),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(AfmeError::InvalidInput(format!(
                    "synergy {i}: {name} must be finite and ≥ 0, got {v}"
                )));
            }
        }
    }

    let mut by_family: Vec<FamilyImpact> = Vec::new();
    let (mut imp_delta, mut landfill_delta) = (0.0, 0.0);
    for s in impacts {
        let imp = if s.substitutes_import {
            -s.tonnes_exchanged
        } else {
            0.0
        };
        let landfill = -s.tonnes_diverted_from_landfill;
        imp_delta += imp;
        landfill_delta += landfill;
        let entry = match by_family.iter_mut().position(|f| f.family == s.family) {
            Some(i) => &mut by_family[i],
            None => {
                by_family.push(FamilyImpact {
                    family: s.family,
                    synergies: 0,
                    imp_delta: 0.0,
                    dpo_landfill_delta: 0.0,
                    dmc_delta: 0.0,
                });
                let last = by_family.len() - 1;
                &mut by_family[last]
            }
        };
        entry.synergies += 1;
        entry.imp_delta += imp;
        entry.dpo_landfill_delta += landfill;
        entry.dmc_delta += imp;
    }
    by_family.sort_by_key(|f| f.family);

    let mut notes = vec![
        "synergies that replace local extraction (DE) are not counted: the record does not say which input they replace".to_string(),
    ];
    let landfill_before = indicators
        .dpo_parts
        .iter()
        .find(|i| i.code == "DPO_LANDFILL")
        .map(|i| i.value);
    if landfill_before.is_none() {
        notes.push(
            "DPO_LANDFILL unknown: the account has no DPO_LANDFILL row, so the landfill before and after the synergies is not known (only the change, delta, is given)"
                .into(),
        );
    }
    let imp = Change::new(Some(indicators.imp.value), imp_delta);
    let dpo_landfill = Change::new(landfill_before, landfill_delta);
    let dmc = Change::new(Some(indicators.dmc.value), imp_delta);
    for (name, c) in [
        ("IMP", &imp),
        ("DPO_LANDFILL", &dpo_landfill),
        ("DMC", &dmc),
    ] {
        if let (Some(after), Some(before)) = (c.after, c.before)
            && after < 0.0
            && before > 0.0
        {
            notes.push(format!(
                "{name} would fall below zero: the synergies claim more than the account holds"
            ));
        }
    }

    Ok(ImpactReport {
        territory: indicators.territory.clone(),
        year: indicators.year,
        synergies: impacts.len(),
        imp,
        dpo_landfill,
        dmc,
        by_family,
        formula: "ΔIMP = −Σ tonnes_exchanged (synergies substituting an import); ΔDPO_LANDFILL = −Σ tonnes_diverted_from_landfill; ΔDMC = ΔIMP; % = Δ / account value × 100".into(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::indicators::{IndicatorOptions, compute_indicators};
    use crate::afme::model::{AccountRow, FlowType};

    fn indicators() -> AccountIndicators {
        let rows = vec![
            AccountRow::new("21", 2015, FlowType::De, Family::All, 1_000.0),
            AccountRow::new("21", 2015, FlowType::Imp, Family::All, 500.0),
            AccountRow::new("21", 2015, FlowType::Exp, Family::All, 300.0),
            AccountRow::new("21", 2015, FlowType::DpoLandfill, Family::All, 200.0),
        ];
        compute_indicators(&rows, "21", 2015, &IndicatorOptions::default())
    }

    #[test]
    fn changes_in_tonnes_and_percent() {
        let ind = indicators();
        let syn = vec![
            SynergyImpact {
                family: Family::ConstructionMaterials,
                tonnes_exchanged: 50.0,
                tonnes_diverted_from_landfill: 40.0,
                substitutes_import: true,
            },
            SynergyImpact {
                family: Family::Waste,
                tonnes_exchanged: 30.0,
                tonnes_diverted_from_landfill: 10.0,
                substitutes_import: false,
            },
            SynergyImpact {
                family: Family::ConstructionMaterials,
                tonnes_exchanged: 25.0,
                tonnes_diverted_from_landfill: 0.0,
                substitutes_import: true,
            },
        ];
        let rep = account_impact(&ind, &syn).unwrap();
        assert_eq!(rep.synergies, 3);
        assert_eq!(rep.imp.before, Some(500.0));
        assert_eq!(rep.imp.delta, -75.0);
        assert_eq!(rep.imp.after, Some(425.0));
        assert_eq!(rep.imp.percent, Some(-15.0));
        assert_eq!(rep.dpo_landfill.delta, -50.0);
        assert_eq!(rep.dpo_landfill.percent, Some(-25.0));
        // DMC = 1000 + 500 − 300 = 1200
        assert_eq!(rep.dmc.before, Some(1_200.0));
        assert_eq!(rep.dmc.delta, -75.0);
        assert_eq!(rep.dmc.percent, Some(-6.25));
        let c = rep
            .by_family
            .iter()
            .find(|f| f.family == Family::ConstructionMaterials)
            .unwrap();
        assert_eq!(
            (c.synergies, c.imp_delta, c.dpo_landfill_delta),
            (2, -75.0, -40.0)
        );
        let w = rep
            .by_family
            .iter()
            .find(|f| f.family == Family::Waste)
            .unwrap();
        assert_eq!(
            (w.imp_delta, w.dpo_landfill_delta, w.dmc_delta),
            (0.0, -10.0, 0.0)
        );
    }

    #[test]
    fn no_synergies_no_change() {
        let rep = account_impact(&indicators(), &[]).unwrap();
        assert_eq!(rep.imp.delta, 0.0);
        assert_eq!(rep.imp.after, rep.imp.before);
        assert!(rep.by_family.is_empty());
    }

    #[test]
    fn missing_landfill_and_bad_input() {
        let rows = vec![AccountRow::new(
            "21",
            2015,
            FlowType::Imp,
            Family::All,
            10.0,
        )];
        let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
        let syn = vec![SynergyImpact {
            family: Family::Other,
            tonnes_exchanged: 20.0,
            tonnes_diverted_from_landfill: 5.0,
            substitutes_import: true,
        }];
        let rep = account_impact(&ind, &syn).unwrap();
        assert_eq!(rep.dpo_landfill.percent, None);
        assert_eq!(rep.dpo_landfill.before, None);
        assert_eq!(rep.dpo_landfill.after, None, "unknown, never negative");
        assert_eq!(rep.dpo_landfill.delta, -5.0);
        assert!(rep.notes.iter().any(|n| n.contains("no DPO_LANDFILL")));
        assert!(
            rep.notes
                .iter()
                .any(|n| n.contains("IMP would fall below zero"))
        );
        let bad = vec![SynergyImpact {
            family: Family::Other,
            tonnes_exchanged: -1.0,
            tonnes_diverted_from_landfill: 0.0,
            substitutes_import: false,
        }];
        assert!(matches!(
            account_impact(&ind, &bad),
            Err(AfmeError::InvalidInput(_))
        ));
    }
}
