//! Territorial priority of each family, from the territory's account: how much a synergy of that
//! family matters *for this territory*. Used by the matching score's territorial-priority component.
//!
//! Three components per family f, each in [0, 1]:
//! - import dependence = IMP_f / DMI_f = IMP_f / (DE_f + IMP_f): the territory relies on outside
//!   supply, so a local secondary resource substitutes imports;
//! - landfill share = DPO_LANDFILL_f / DMC_f: how much of what the family brings in ends in landfill.
//!   Landfill known only as a total (family `all`, or the part of the total not given by family) is
//!   attributed to the `waste` family;
//! - weight in DMC = DMC_f / DMC: the family's weight in what the territory consumes.
//!
//! priority = clamp(w₁·import_dependence + w₂·landfill_share + w₃·dmc_weight, 0, 1) with default
//! weights 0.4, 0.3, 0.3 (config `[afme.priority]`, normalised to sum 1). A component the account cannot give (a flow not broken
//! down by family, a zero denominator) counts as the neutral 0.5; with no account at all every
//! family gets 0.5. Ratios are clamped to [0, 1] (a negative DMC_f, i.e. a net exporter, gives 0
//! weight).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::AfmeError;
use super::indicators::AccountView;
use super::model::{AccountRow, Family, FlowType, Unit};

/// The neutral priority, for a missing account or an unknown component.
pub const NEUTRAL: f64 = 0.5;

/// Weights of the three components (config `[afme.priority]`; an omitted one keeps its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = AfmePriorityWeights)]
pub struct PriorityWeights {
    pub import_dependence: f64,
    pub landfill_share: f64,
    pub dmc_weight: f64,
}

impl Default for PriorityWeights {
    fn default() -> Self {
        Self {
            import_dependence: 0.4,
            landfill_share: 0.3,
            dmc_weight: 0.3,
        }
    }
}

impl PriorityWeights {
    /// Weights scaled to sum to 1; an error if any is negative or not finite, or all are 0.
    pub fn normalised(&self) -> Result<Self, AfmeError> {
        let w = [self.import_dependence, self.landfill_share, self.dmc_weight];
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(AfmeError::InvalidInput(
                "priority weights must be finite and ≥ 0".into(),
            ));
        }
        let sum: f64 = w.iter().sum();
        if sum <= 0.0 {
            return Err(AfmeError::InvalidInput(
                "at least one priority weight must be > 0".into(),
            ));
        }
        Ok(Self {
            import_dependence: w[0] / sum,
            landfill_share: w[1] / sum,
            dmc_weight: w[2] / sum,
        })
    }

    /// The formula in words, with these weights.
    pub fn formula(&self) -> String {
        format!(
            "priority = clamp({:.2}·import_dependence + {:.2}·landfill_share + {:.2}·dmc_weight, 0, 1); \
             import_dependence = IMP_f / (DE_f + IMP_f); landfill_share = DPO_LANDFILL_f / DMC_f \
             (landfill known only in total is attributed to waste); dmc_weight = DMC_f / DMC; \
             a component the account cannot give counts as {NEUTRAL}",
            self.import_dependence, self.landfill_share, self.dmc_weight
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeFamilyPriority)]
pub struct FamilyPriority {
    pub family: Family,
    /// `None` when the account cannot give it (counted as 0.5).
    pub import_dependence: Option<f64>,
    pub landfill_share: Option<f64>,
    pub dmc_weight: Option<f64>,
    /// In [0, 1].
    pub priority: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmePriorities)]
pub struct PriorityReport {
    pub territory: String,
    pub year: Option<i32>,
    pub formula: String,
    /// True when no account was available: every priority is 0.5.
    pub neutral: bool,
    /// One entry per specific family (not `all`).
    pub families: Vec<FamilyPriority>,
}

impl PriorityReport {
    /// The priority of a family (0.5 for `all` or a family not listed).
    pub fn priority(&self, family: Family) -> f64 {
        self.families
            .iter()
            .find(|f| f.family == family)
            .map(|f| f.priority)
            .unwrap_or(NEUTRAL)
    }
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| (num / den).clamp(0.0, 1.0))
}

/// Every family at 0.5: the territory has no account.
pub fn neutral_priorities(
    territory: &str,
    weights: &PriorityWeights,
) -> Result<PriorityReport, AfmeError> {
    let w = weights.normalised()?;
    Ok(PriorityReport {
        territory: territory.to_string(),
        year: None,
        formula: w.formula(),
        neutral: true,
        families: Family::SPECIFIC
            .iter()
            .map(|f| FamilyPriority {
                family: *f,
                import_dependence: None,
                landfill_share: None,
                dmc_weight: None,
                priority: NEUTRAL,
            })
            .collect(),
    })
}

/// Priorities of `territory` for `year` from its mass rows in `rows`; neutral when it has none.
pub fn territorial_priorities(
    rows: &[AccountRow],
    territory: &str,
    year: i32,
    weights: &PriorityWeights,
) -> Result<PriorityReport, AfmeError> {
    let view = AccountView::new(rows, territory, year, Unit::Tonne);
    if view.is_empty() {
        return neutral_priorities(territory, weights);
    }
    let w = weights.normalised()?;

    let value = |flow, f| view.family_value(flow, f).map(|a| a.value);
    let dmc_total = view.total(FlowType::De).value + view.total(FlowType::Imp).value
        - view.total(FlowType::Exp).value;

    // landfill by family; what is not given by family goes to waste
    let landfill_total = view.total(FlowType::DpoLandfill).value;
    let landfill_by_family: Vec<(Family, f64)> = Family::SPECIFIC
        .iter()
        .map(|f| (*f, view.family_total(FlowType::DpoLandfill, *f).value))
        .collect();
    let unattributed =
        (landfill_total - landfill_by_family.iter().map(|(_, v)| v).sum::<f64>()).max(0.0);

    let families = Family::SPECIFIC
        .iter()
        .map(|f| {
            let de = value(FlowType::De, *f);
            let imp = value(FlowType::Imp, *f);
            let exp = value(FlowType::Exp, *f);
            let dmi = de.zip(imp).map(|(d, i)| d + i);
            let dmc = dmi.zip(exp).map(|(d, e)| d - e);
            let import_dependence = imp.zip(dmi).and_then(|(i, d)| ratio(i, d));
            let mut landfill = landfill_by_family
                .iter()
                .find(|(g, _)| g == f)
                .map(|(_, v)| *v)
                .unwrap_or(0.0);
            if *f == Family::Waste {
                landfill += unattributed;
            }
            let landfill_share = if landfill <= 0.0 {
                // nothing landfilled: a known 0 when the account records landfill, else unknown
                view.has(FlowType::DpoLandfill).then_some(0.0)
            } else {
                match dmc {
                    Some(d) if d > 0.0 => ratio(landfill, d),
                    // landfilled but no positive consumption to compare with: all of it
                    Some(_) => Some(1.0),
                    None => None,
                }
            };
            let dmc_weight = dmc.and_then(|d| ratio(d, dmc_total));
            let or_neutral = |x: Option<f64>| x.unwrap_or(NEUTRAL);
            let priority = (w.import_dependence * or_neutral(import_dependence)
                + w.landfill_share * or_neutral(landfill_share)
                + w.dmc_weight * or_neutral(dmc_weight))
            .clamp(0.0, 1.0);
            FamilyPriority {
                family: *f,
                import_dependence,
                landfill_share,
                dmc_weight,
                priority,
            }
        })
        .collect();

    Ok(PriorityReport {
        territory: territory.to_string(),
        year: Some(year),
        formula: w.formula(),
        neutral: false,
        families,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::model::Partner;

    fn row(flow: FlowType, family: Family, value: f64) -> AccountRow {
        AccountRow::new("21", 2015, flow, family, value)
    }

    /// Import-dependent in construction materials: 90 of 100 t imported.
    fn account() -> Vec<AccountRow> {
        vec![
            row(FlowType::De, Family::ConstructionMaterials, 10.0),
            row(FlowType::Imp, Family::ConstructionMaterials, 90.0).with_partner(Partner::Abroad),
            row(FlowType::De, Family::AgriculturalFood, 80.0),
            row(FlowType::Imp, Family::AgriculturalFood, 20.0),
            row(FlowType::Exp, Family::AgriculturalFood, 40.0),
            row(FlowType::Exp, Family::ConstructionMaterials, 0.0),
            row(FlowType::DpoLandfill, Family::All, 16.0),
        ]
    }

    #[test]
    fn components_and_formula() {
        let rep =
            territorial_priorities(&account(), "21", 2015, &PriorityWeights::default()).unwrap();
        assert!(!rep.neutral);
        assert_eq!(rep.families.len(), 8);
        let c = rep
            .families
            .iter()
            .find(|f| f.family == Family::ConstructionMaterials)
            .unwrap();
        // IMP 90 / DMI 100
        assert!((c.import_dependence.unwrap() - 0.9).abs() < 1e-12);
        // DMC: construction 100, agri 60 → 160; weight 100/160
        assert!((c.dmc_weight.unwrap() - 100.0 / 160.0).abs() < 1e-12);
        // landfill known only in total → waste; construction 0 landfilled
        assert_eq!(c.landfill_share, Some(0.0));
        let expected = 0.4 * 0.9 + 0.3 * 0.0 + 0.3 * (100.0 / 160.0);
        assert!((c.priority - expected).abs() < 1e-12);
        let a = rep
            .families
            .iter()
            .find(|f| f.family == Family::AgriculturalFood)
            .unwrap();
        assert!((a.import_dependence.unwrap() - 0.2).abs() < 1e-12);
        assert!(a.priority < c.priority);
        // waste: 16 t landfilled, DMC_waste = 0 → the whole of it
        let w = rep
            .families
            .iter()
            .find(|f| f.family == Family::Waste)
            .unwrap();
        assert_eq!(w.landfill_share, Some(1.0));
        assert!(rep.formula.contains("0.40·import_dependence"));
        assert!(rep.formula.contains("DPO_LANDFILL_f / DMC_f"));
        for f in &rep.families {
            assert!((0.0..=1.0).contains(&f.priority));
        }
    }

    #[test]
    fn construction_ranks_first_when_import_dependent() {
        let rep =
            territorial_priorities(&account(), "21", 2015, &PriorityWeights::default()).unwrap();
        let best = rep
            .families
            .iter()
            .max_by(|a, b| a.priority.total_cmp(&b.priority))
            .unwrap();
        assert_eq!(best.family, Family::ConstructionMaterials);
        assert!(rep.priority(Family::ConstructionMaterials) > rep.priority(Family::FossilFuels));
    }

    #[test]
    fn missing_account_is_neutral() {
        let rep = territorial_priorities(&[], "21", 2015, &PriorityWeights::default()).unwrap();
        assert!(rep.neutral);
        assert!(rep.families.iter().all(|f| f.priority == NEUTRAL));
        assert_eq!(rep.priority(Family::All), NEUTRAL);
    }

    #[test]
    fn unknown_components_count_as_neutral() {
        // totals only: nothing by family
        let rows = vec![
            row(FlowType::De, Family::All, 100.0),
            row(FlowType::Imp, Family::All, 100.0),
        ];
        let rep = territorial_priorities(&rows, "21", 2015, &PriorityWeights::default()).unwrap();
        for f in &rep.families {
            assert!(f.import_dependence.is_none() && f.dmc_weight.is_none());
            assert!((f.priority - NEUTRAL).abs() < 1e-12);
        }
    }

    #[test]
    fn weights_are_validated_and_normalised() {
        let w = PriorityWeights {
            import_dependence: 2.0,
            landfill_share: 1.0,
            dmc_weight: 1.0,
        };
        let n = w.normalised().unwrap();
        assert!((n.import_dependence - 0.5).abs() < 1e-12);
        let bad = PriorityWeights {
            import_dependence: -1.0,
            ..PriorityWeights::default()
        };
        assert!(territorial_priorities(&account(), "21", 2015, &bad).is_err());
        let zero = PriorityWeights {
            import_dependence: 0.0,
            landfill_share: 0.0,
            dmc_weight: 0.0,
        };
        assert!(zero.normalised().is_err());
    }

    #[test]
    fn bourgogne_priorities() {
        let file = std::fs::File::open("../shared/reference/afme/bourgogne_2010.csv").unwrap();
        let acc = crate::afme::csv::parse_published_csv(file).unwrap();
        let rep =
            territorial_priorities(&acc.rows, "27-BOURGOGNE", 2010, &PriorityWeights::default())
                .unwrap();
        // fossil fuels: all imported (no DE of fossil fuels in Bourgogne)
        let f = rep
            .families
            .iter()
            .find(|f| f.family == Family::FossilFuels)
            .unwrap();
        assert_eq!(f.import_dependence, Some(1.0));
        // exports are not broken down by family: DMC_f unknown
        assert!(f.dmc_weight.is_none());
        let c = rep
            .families
            .iter()
            .find(|f| f.family == Family::ConstructionMaterials)
            .unwrap();
        // construction imports are not among the published IMP shares: unknown, not zero
        assert_eq!(c.import_dependence, None);
        assert!((c.priority - NEUTRAL).abs() < 1e-12);
        assert!(f.priority > c.priority);
    }
}
