//! Indicators of one territory and year: DMI, DMC, PTB, DPO and its parts, NAS (declared and as the
//! balance residual), the balance gap, per-capita values, shares by family, the largest items, and
//! Barles' LEPO and DMCcorr.
//!
//! Definitions follow Eurostat, *Economy-wide material flow accounts handbook* (2018):
//! DMI = DE + IMP, DMC = DMI − EXP, PTB = IMP − EXP, and the balance
//! DE + IMP + BI_IN = EXP + DPO + NAS + BI_OUT; the DPO split and the regional use follow the SOeS/CGDD
//! regional guide (2014). LEPO and DMCcorr are from Barles S. (2009), *Urban metabolism of Paris and
//! its region*, Journal of Industrial Ecology 13(6): 898–913, who needed them because a city exports
//! much of its waste to be treated elsewhere:
//! - LEPO (local and exported processed output) = DPO + waste exported (it reaches nature elsewhere);
//! - DMCcorr = DMC + waste exported − waste imported: DMC with waste taken out of trade, so that
//!   sending waste away does not look like lower consumption (imported waste removed "if necessary").
//!
//! Mass (t) and energy (MWh) are never mixed: every indicator is on the `t` rows; the `MWh` rows get a
//! separate [`EnergySummary`].
//!
//! # Which rows make a total
//!
//! A flow may be given as a grand total (`family = all`, no partner), by family, by partner, or both.
//! Rows are read as a hierarchy, detail below totals ([`AccountView::total`]):
//! 1. the grand-total row (family `all`, no partner), when present, *is* the total; detail rows below
//!    it may be partial (Bourgogne publishes IMP shares for three families only);
//! 2. otherwise the total is the larger of the two partial decompositions, by partner and by family
//!    (each a lower bound of the true total when data are consistent);
//! 3. undivided `DPO` rows, when present, are the DPO total and the parts are detail; otherwise DPO
//!    is the sum of its parts.
//!
//! Every indicator lists the indices (into the slice given) of the rows it used.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{AccountRow, Family, FlowType, Partner, Unit};

/// Relative slack below which two sums are taken as equal (float noise).
const EPS: f64 = 1e-9;

/// A value and the rows it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeAmount)]
pub struct Amount {
    pub value: f64,
    pub rows: Vec<usize>,
}

impl Amount {
    fn zero() -> Self {
        Self::default()
    }

    fn plus(mut self, other: &Amount) -> Self {
        self.value += other.value;
        self.rows.extend_from_slice(&other.rows);
        self
    }

    fn minus(mut self, other: &Amount) -> Self {
        self.value -= other.value;
        self.rows.extend_from_slice(&other.rows);
        self
    }

    fn normalised(mut self) -> Self {
        self.rows.sort_unstable();
        self.rows.dedup();
        self
    }

    fn has_rows(&self) -> bool {
        !self.rows.is_empty()
    }
}

/// One cell of the breakdown of a flow total: family × partner, the cells adding up to the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeCell)]
pub struct Cell {
    /// `all` for the part of the total not broken down by family.
    pub family: Family,
    /// `None` for the part not broken down by partner.
    pub partner: Option<Partner>,
    pub value: f64,
    pub rows: Vec<usize>,
}

/// The rows of one territory, year and unit, with the rules that turn them into totals.
#[derive(Debug, Clone)]
pub struct AccountView<'a> {
    rows: &'a [AccountRow],
    idx: Vec<usize>,
}

impl<'a> AccountView<'a> {
    /// Rows of `territory` and `year` in `unit`; indices keep referring to `rows`.
    pub fn new(rows: &'a [AccountRow], territory: &str, year: i32, unit: Unit) -> Self {
        let idx = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.territory == territory && r.year == year && r.unit == unit)
            .map(|(i, _)| i)
            .collect();
        Self { rows, idx }
    }

    /// Every row of the slice in `unit` (the caller has already selected territory and year).
    pub fn all_of_unit(rows: &'a [AccountRow], unit: Unit) -> Self {
        let idx = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.unit == unit)
            .map(|(i, _)| i)
            .collect();
        Self { rows, idx }
    }

    pub fn indices(&self) -> &[usize] {
        &self.idx
    }

    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    pub fn row(&self, i: usize) -> Option<&AccountRow> {
        self.rows.get(i)
    }

    fn of(&self, flow: FlowType) -> impl Iterator<Item = (usize, &'a AccountRow)> + '_ {
        let rows = self.rows;
        self.idx
            .iter()
            .filter_map(move |&i| rows.get(i).map(|r| (i, r)))
            .filter(move |(_, r)| r.flow == flow)
    }

    /// Whether any row of this flow exists.
    pub fn has(&self, flow: FlowType) -> bool {
        self.of(flow).next().is_some()
    }

    /// Whether some row of this flow names a specific family.
    pub fn has_family_detail(&self, flow: FlowType) -> bool {
        self.of(flow).any(|(_, r)| !r.family.is_all())
    }

    /// The exact cell (family, partner); `None` when no row is there.
    fn cell(&self, flow: FlowType, family: Family, partner: Option<&Partner>) -> Option<Amount> {
        let mut found: Option<Amount> = None;
        for (i, r) in self.of(flow) {
            if r.family == family && r.partner.as_ref() == partner {
                let a = found.get_or_insert_with(Amount::zero);
                a.value += r.value;
                a.rows.push(i);
            }
        }
        found
    }

    /// Partners named in rows of this flow, sorted.
    pub fn partners(&self, flow: FlowType) -> Vec<Partner> {
        self.of(flow)
            .filter_map(|(_, r)| r.partner.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn families_present(&self, flow: FlowType) -> Vec<Family> {
        self.of(flow)
            .map(|(_, r)| r.family)
            .filter(|f| !f.is_all())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Total of a flow over families and partners (rules in the module doc).
    pub fn total(&self, flow: FlowType) -> Amount {
        if let Some(a) = self.cell(flow, Family::All, None) {
            return a.normalised();
        }
        let by_partner = self.partners(flow).iter().fold(Amount::zero(), |acc, p| {
            acc.plus(&self.partner_total(flow, p))
        });
        let by_family = self
            .families_present(flow)
            .iter()
            .fold(Amount::zero(), |acc, f| {
                acc.plus(&self.family_total(flow, *f))
            });
        if by_partner.value > by_family.value {
            by_partner.normalised()
        } else {
            by_family.normalised()
        }
    }

    /// Total of one family over partners (`all` → [`Self::total`]); 0 with no rows when the family is
    /// absent.
    pub fn family_total(&self, flow: FlowType, family: Family) -> Amount {
        if family.is_all() {
            return self.total(flow);
        }
        if let Some(a) = self.cell(flow, family, None) {
            return a.normalised();
        }
        self.partners(flow)
            .iter()
            .filter_map(|p| self.cell(flow, family, Some(p)))
            .fold(Amount::zero(), |acc, a| acc.plus(&a))
            .normalised()
    }

    /// The value of one family when it is known: 0 when the flow is absent; the family's rows when it
    /// has some; 0 when it has none but the family breakdown is complete (the families add up to the
    /// total within 0.1 %, the rounding of published shares); `None` otherwise (the flow is given
    /// only as a total, or by a partial set of families that leaves this one out).
    pub fn family_value(&self, flow: FlowType, family: Family) -> Option<Amount> {
        if family.is_all() {
            return Some(self.total(flow));
        }
        if !self.has(flow) {
            return Some(Amount::zero());
        }
        if self.of(flow).any(|(_, r)| r.family == family) {
            return Some(self.family_total(flow, family));
        }
        self.family_detail_complete(flow).then(Amount::zero)
    }

    /// Whether the family rows of a flow add up to its total (within 0.1 %).
    pub fn family_detail_complete(&self, flow: FlowType) -> bool {
        if !self.has_family_detail(flow) {
            return false;
        }
        let total = self.total(flow).value;
        let families: f64 = self
            .families_present(flow)
            .iter()
            .map(|f| self.family_total(flow, *f).value)
            .sum();
        (total - families).abs() <= 1e-3 * total.abs() + 1e-9
    }

    /// Total of one partner over families.
    pub fn partner_total(&self, flow: FlowType, partner: &Partner) -> Amount {
        if let Some(a) = self.cell(flow, Family::All, Some(partner)) {
            return a.normalised();
        }
        self.families_present(flow)
            .iter()
            .filter_map(|f| self.cell(flow, *f, Some(partner)))
            .fold(Amount::zero(), |acc, a| acc.plus(&a))
            .normalised()
    }

    /// DPO: the undivided rows when present, else the sum of the parts.
    pub fn dpo(&self) -> Amount {
        if self.has(FlowType::Dpo) {
            return self.total(FlowType::Dpo);
        }
        FlowType::DPO_PARTS
            .iter()
            .fold(Amount::zero(), |acc, p| acc.plus(&self.total(*p)))
            .normalised()
    }

    /// DPO of one family, when known.
    pub fn dpo_family_value(&self, family: Family) -> Option<Amount> {
        if self.has(FlowType::Dpo) {
            return self.family_value(FlowType::Dpo, family);
        }
        let mut acc = Amount::zero();
        for p in FlowType::DPO_PARTS {
            acc = acc.plus(&self.family_value(*p, family)?);
        }
        Some(acc.normalised())
    }

    /// Splits a flow's total into cells (partner × family) that add up to it: partner totals first,
    /// each split by family with the remainder as family `all`; then the part with no partner, split
    /// by the family rows not already counted under a partner. Inconsistent detail (parts larger than
    /// their total) is clamped and reported in the returned warnings.
    pub fn breakdown(&self, flow: FlowType) -> (Vec<Cell>, Vec<String>) {
        let mut cells = Vec::new();
        let mut warnings = Vec::new();
        let total = self.total(flow);
        if !total.has_rows() {
            return (cells, warnings);
        }
        let tol = EPS * total.value.abs().max(1.0);
        let families = self.families_present(flow);
        let partners = self.partners(flow);

        let mut allocated = 0.0;
        for p in &partners {
            let pt = self.partner_total(flow, p);
            allocated += pt.value;
            let mut within = 0.0;
            for f in &families {
                if let Some(c) = self.cell(flow, *f, Some(p)) {
                    within += c.value;
                    cells.push(Cell {
                        family: *f,
                        partner: Some(p.clone()),
                        value: c.value,
                        rows: c.rows,
                    });
                }
            }
            let rest = pt.value - within;
            if rest > tol {
                cells.push(Cell {
                    family: Family::All,
                    partner: Some(p.clone()),
                    value: rest,
                    rows: pt.rows.clone(),
                });
            } else if rest < -tol {
                warnings.push(format!(
                    "{flow} with partner {p}: family rows add up to {within} t, more than the partner total {} t",
                    pt.value
                ));
            }
        }

        let unknown_partner = total.value - allocated;
        if unknown_partner < -tol {
            warnings.push(format!(
                "{flow}: partner rows add up to {allocated}, more than the total {}",
                total.value
            ));
        }
        let unknown_partner = unknown_partner.max(0.0);
        // family rows with no partner, less what their partner rows already account for
        let mut residuals: Vec<Cell> = Vec::new();
        for f in &families {
            let Some(c) = self.cell(flow, *f, None) else {
                continue;
            };
            let under_partners: f64 = partners
                .iter()
                .filter_map(|p| self.cell(flow, *f, Some(p)))
                .map(|a| a.value)
                .sum();
            let v = c.value - under_partners;
            if v > tol {
                residuals.push(Cell {
                    family: *f,
                    partner: None,
                    value: v,
                    rows: c.rows,
                });
            }
        }
        let within: f64 = residuals.iter().map(|c| c.value).sum();
        if within > unknown_partner + tol {
            // Part of these family amounts sits inside partner totals not split by family: the
            // no-partner share is spread over the families in proportion.
            let scale = if within > 0.0 {
                unknown_partner / within
            } else {
                0.0
            };
            for mut c in residuals {
                c.value *= scale;
                if c.value > tol {
                    cells.push(c);
                }
            }
        } else {
            cells.extend(residuals);
            let rest = unknown_partner - within;
            if rest > tol {
                cells.push(Cell {
                    family: Family::All,
                    partner: None,
                    value: rest,
                    rows: total.rows.clone(),
                });
            }
        }
        (cells, warnings)
    }
}

/// One named indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeIndicator)]
pub struct Indicator {
    /// Short code: `DE`, `DMI`, `DMC`, `PTB`, `DPO`, `DPO_LANDFILL`, `NAS_RESIDUAL`, `LEPO`, `DMC_CORR`…
    pub code: String,
    pub label: String,
    pub value: f64,
    pub unit: Unit,
    /// Value per inhabitant (same unit per person), when a population is given.
    pub per_capita: Option<f64>,
    pub formula: String,
    /// Indices (into the rows given) of the rows used.
    pub from_rows: Vec<usize>,
}

/// Which NAS the balance used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AfmeNasBasis)]
pub enum NasBasis {
    /// NAS rows exist: the balance can be checked.
    Declared,
    /// No NAS row: NAS is the residual and the balance closes by construction.
    Residual,
}

/// Inputs against outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeBalanceCheck)]
pub struct BalanceCheck {
    /// DE + IMP + BI_IN, t.
    pub inputs: f64,
    /// EXP + DPO + NAS + BI_OUT, t.
    pub outputs: f64,
    /// inputs − outputs, t.
    pub gap: f64,
    /// Absolute tolerance, t.
    pub tolerance: f64,
    /// |gap| ≤ tolerance.
    pub closes: bool,
    pub nas_basis: NasBasis,
    pub formula: String,
    pub from_rows: Vec<usize>,
}

/// A family's place in the account. Values are `None` when the account does not break the needed
/// flows down by family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeFamilyShare)]
pub struct FamilyShare {
    /// `all` stands for the part of the totals not broken down by family.
    pub family: Family,
    pub de: Option<f64>,
    pub imp: Option<f64>,
    pub exp: Option<f64>,
    pub dmi: Option<f64>,
    pub dmc: Option<f64>,
    pub share_of_dmi: Option<f64>,
    pub share_of_dmc: Option<f64>,
    pub share_of_imp: Option<f64>,
    pub from_rows: Vec<usize>,
}

/// One of the largest items (*plus gros postes*).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeLargestItem)]
pub struct LargestItem {
    pub row: usize,
    pub flow: FlowType,
    pub family: Family,
    pub partner: Option<Partner>,
    pub value: f64,
    /// value / DMI.
    pub share_of_dmi: Option<f64>,
}

/// Energy rows (MWh), summarised apart from mass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeEnergySummary)]
pub struct EnergySummary {
    pub production: Indicator,
    pub imports: Indicator,
    pub exports: Indicator,
    /// DE + IMP − EXP in MWh (apparent consumption).
    pub apparent_consumption: Indicator,
}

/// Options of [`compute_indicators`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeIndicatorOptions)]
pub struct IndicatorOptions {
    /// Inhabitants, for per-capita values.
    pub population: Option<f64>,
    /// Absolute balance tolerance in tonnes.
    pub tolerance_t: f64,
    /// How many largest items to list.
    pub top_n: usize,
}

/// Published regional accounts are rounded to 0.1 Mt, so by default the balance may miss by 100 kt.
pub const DEFAULT_TOLERANCE_T: f64 = 100_000.0;

impl Default for IndicatorOptions {
    fn default() -> Self {
        Self {
            population: None,
            tolerance_t: DEFAULT_TOLERANCE_T,
            top_n: 10,
        }
    }
}

/// Everything computed for one territory and year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeIndicators)]
pub struct AccountIndicators {
    pub territory: String,
    pub year: i32,
    pub population: Option<f64>,
    pub de: Indicator,
    pub ude: Indicator,
    pub imp: Indicator,
    pub exp: Indicator,
    pub bi_in: Indicator,
    pub bi_out: Indicator,
    pub dmi: Indicator,
    pub dmc: Indicator,
    pub ptb: Indicator,
    pub dpo: Indicator,
    /// The DPO parts present in the account.
    pub dpo_parts: Vec<Indicator>,
    pub nas_declared: Option<Indicator>,
    pub nas_residual: Indicator,
    pub recycling: Option<Indicator>,
    /// Barles' LEPO, when waste exports are known (EXP rows of family `waste`).
    pub lepo: Option<Indicator>,
    /// Barles' DMCcorr, when waste exports are known.
    pub dmc_corr: Option<Indicator>,
    pub balance: BalanceCheck,
    pub shares: Vec<FamilyShare>,
    pub largest: Vec<LargestItem>,
    pub energy: Option<EnergySummary>,
    pub warnings: Vec<String>,
}

impl AccountIndicators {
    /// The mass indicators as a list (for tables and lookups by code).
    pub fn list(&self) -> Vec<&Indicator> {
        let mut v = vec![
            &self.de,
            &self.ude,
            &self.imp,
            &self.exp,
            &self.bi_in,
            &self.bi_out,
            &self.dmi,
            &self.dmc,
            &self.ptb,
            &self.dpo,
        ];
        v.extend(self.dpo_parts.iter());
        v.extend(self.nas_declared.iter());
        v.push(&self.nas_residual);
        v.extend(self.recycling.iter());
        v.extend(self.lepo.iter());
        v.extend(self.dmc_corr.iter());
        v
    }

    /// An indicator by code.
    pub fn get(&self, code: &str) -> Option<&Indicator> {
        self.list().into_iter().find(|i| i.code == code)
    }
}

struct Maker {
    population: Option<f64>,
}

impl Maker {
    fn make(
        &self,
        code: &str,
        label: &str,
        formula: &str,
        unit: Unit,
        amount: Amount,
    ) -> Indicator {
        let amount = amount.normalised();
        Indicator {
            code: code.to_string(),
            label: label.to_string(),
            value: amount.value,
            unit,
            per_capita: self
                .population
                .filter(|p| *p > 0.0)
                .map(|p| amount.value / p),
            formula: formula.to_string(),
            from_rows: amount.rows,
        }
    }
}

fn share(part: Option<f64>, whole: f64) -> Option<f64> {
    part.filter(|_| whole.abs() > EPS).map(|p| p / whole)
}

/// Computes the indicators of `territory` and `year` from `rows` (which may hold other territories
/// and years; indices in the result refer to `rows`).
pub fn compute_indicators(
    rows: &[AccountRow],
    territory: &str,
    year: i32,
    options: &IndicatorOptions,
) -> AccountIndicators {
    let view = AccountView::new(rows, territory, year, Unit::Tonne);
    let mk = Maker {
        population: options.population,
    };
    let t = Unit::Tonne;
    let mut warnings = Vec::new();
    if view.is_empty() {
        warnings.push(format!(
            "no mass rows for {territory} in {year}: every indicator is 0"
        ));
    }
    for flow in [FlowType::De, FlowType::Imp, FlowType::Exp] {
        if !view.is_empty() && !view.has(flow) {
            warnings.push(format!("no {flow} rows: counted as 0"));
        }
    }
    for flow in FlowType::ALL {
        let (_, w) = view.breakdown(*flow);
        warnings.extend(w);
    }
    if view.has(FlowType::Dpo) && FlowType::DPO_PARTS.iter().any(|p| view.has(*p)) {
        let parts: f64 = FlowType::DPO_PARTS
            .iter()
            .map(|p| view.total(*p).value)
            .sum();
        let dpo = view.total(FlowType::Dpo).value;
        if parts > dpo * (1.0 + 1e-6) + 1e-6 {
            warnings.push(format!(
                "DPO parts add up to {parts} t, more than the undivided DPO {dpo} t"
            ));
        }
    }

    let de_a = view.total(FlowType::De);
    let imp_a = view.total(FlowType::Imp);
    let exp_a = view.total(FlowType::Exp);
    let bi_in_a = view.total(FlowType::BiIn);
    let bi_out_a = view.total(FlowType::BiOut);
    let dpo_a = view.dpo();

    let dmi_a = de_a.clone().plus(&imp_a);
    let dmc_a = dmi_a.clone().minus(&exp_a);
    let ptb_a = imp_a.clone().minus(&exp_a);
    let nas_residual_a = de_a
        .clone()
        .plus(&imp_a)
        .plus(&bi_in_a)
        .minus(&exp_a)
        .minus(&dpo_a)
        .minus(&bi_out_a);

    let nas_declared = view.has(FlowType::Nas).then(|| {
        mk.make(
            "NAS",
            FlowType::Nas.label(),
            "NAS as declared",
            t,
            view.total(FlowType::Nas),
        )
    });
    let recycling = view.has(FlowType::Recycling).then(|| {
        mk.make(
            "RECYCLING",
            FlowType::Recycling.label(),
            "memo item, outside the balance",
            t,
            view.total(FlowType::Recycling),
        )
    });

    let inputs_a = de_a.clone().plus(&imp_a).plus(&bi_in_a);
    let (nas_used, nas_basis) = match view.has(FlowType::Nas) {
        true => (view.total(FlowType::Nas), NasBasis::Declared),
        false => (nas_residual_a.clone(), NasBasis::Residual),
    };
    let outputs_a = exp_a.clone().plus(&dpo_a).plus(&nas_used).plus(&bi_out_a);
    if nas_basis == NasBasis::Residual && !view.is_empty() {
        warnings.push("NAS not declared: taken as the balance residual, so the balance closes by construction".into());
    }
    let gap = inputs_a.value - outputs_a.value;
    let tolerance = options.tolerance_t.max(0.0);
    let balance = BalanceCheck {
        inputs: inputs_a.value,
        outputs: outputs_a.value,
        gap,
        tolerance,
        closes: gap.abs() <= tolerance + EPS * inputs_a.value.abs().max(1.0),
        nas_basis,
        formula:
            "gap = (DE + IMP + BI_IN) − (EXP + DPO + NAS + BI_OUT); closes when |gap| ≤ tolerance"
                .into(),
        from_rows: inputs_a.plus(&outputs_a).normalised().rows,
    };

    let dpo_formula = if view.has(FlowType::Dpo) {
        "DPO as declared (undivided rows; parts are detail)"
    } else {
        "DPO = DPO_AIR + DPO_WATER + DPO_SOIL + DPO_LANDFILL"
    };
    let dpo_parts: Vec<Indicator> = FlowType::DPO_PARTS
        .iter()
        .filter(|p| view.has(**p))
        .map(|p| mk.make(p.as_str(), p.label(), "as declared", t, view.total(*p)))
        .collect();

    // Barles (2009): only when waste exports are known
    let waste_known = view
        .of(FlowType::Exp)
        .any(|(_, r)| r.family == Family::Waste);
    let (lepo, dmc_corr) = if waste_known {
        let exp_waste = view.family_total(FlowType::Exp, Family::Waste);
        let imp_waste = view.family_total(FlowType::Imp, Family::Waste);
        (
            Some(mk.make(
                "LEPO",
                "local and exported processed output (Barles 2009)",
                "LEPO = DPO + EXP_waste",
                t,
                dpo_a.clone().plus(&exp_waste),
            )),
            Some(mk.make(
                "DMC_CORR",
                "DMC corrected for waste trade (Barles 2009)",
                "DMCcorr = DMC + EXP_waste − IMP_waste",
                t,
                dmc_a.clone().plus(&exp_waste).minus(&imp_waste),
            )),
        )
    } else {
        (None, None)
    };

    let shares = family_shares(&view, dmi_a.value, dmc_a.value, imp_a.value);
    let largest = largest_items(&view, options.top_n, dmi_a.value);
    let energy = energy_summary(rows, territory, year, &mk);

    AccountIndicators {
        territory: territory.to_string(),
        year,
        population: options.population,
        de: mk.make("DE", FlowType::De.label(), "DE as declared", t, de_a),
        ude: mk.make(
            "UDE",
            FlowType::Ude.label(),
            "UDE as declared (outside DMI)",
            t,
            view.total(FlowType::Ude),
        ),
        imp: mk.make("IMP", FlowType::Imp.label(), "IMP as declared", t, imp_a),
        exp: mk.make("EXP", FlowType::Exp.label(), "EXP as declared", t, exp_a),
        bi_in: mk.make(
            "BI_IN",
            FlowType::BiIn.label(),
            "BI_IN as declared",
            t,
            bi_in_a,
        ),
        bi_out: mk.make(
            "BI_OUT",
            FlowType::BiOut.label(),
            "BI_OUT as declared",
            t,
            bi_out_a,
        ),
        dmi: mk.make("DMI", "direct material input", "DMI = DE + IMP", t, dmi_a),
        dmc: mk.make(
            "DMC",
            "domestic material consumption",
            "DMC = DMI − EXP = DE + IMP − EXP",
            t,
            dmc_a,
        ),
        ptb: mk.make("PTB", "physical trade balance", "PTB = IMP − EXP", t, ptb_a),
        dpo: mk.make("DPO", FlowType::Dpo.label(), dpo_formula, t, dpo_a),
        dpo_parts,
        nas_declared,
        nas_residual: mk.make(
            "NAS_RESIDUAL",
            "net addition to stock, as the balance residual",
            "NAS = DE + IMP + BI_IN − EXP − DPO − BI_OUT",
            t,
            nas_residual_a,
        ),
        recycling,
        lepo,
        dmc_corr,
        balance,
        shares,
        largest,
        energy,
        warnings,
    }
}

fn family_shares(view: &AccountView<'_>, dmi: f64, dmc: f64, imp: f64) -> Vec<FamilyShare> {
    let mut out = Vec::new();
    let mut known = (0.0, 0.0, 0.0, false, false, false);
    for f in Family::SPECIFIC {
        let de_f = view.family_value(FlowType::De, *f);
        let imp_f = view.family_value(FlowType::Imp, *f);
        let exp_f = view.family_value(FlowType::Exp, *f);
        let dmi_f = match (&de_f, &imp_f) {
            (Some(d), Some(i)) => Some(d.clone().plus(i)),
            _ => None,
        };
        let dmc_f = match (&dmi_f, &exp_f) {
            (Some(d), Some(e)) => Some(d.clone().minus(e)),
            _ => None,
        };
        let mut rows: Vec<usize> = [&de_f, &imp_f, &exp_f]
            .iter()
            .filter_map(|a| a.as_ref())
            .flat_map(|a| a.rows.iter().copied())
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let values = (
            dmi_f.as_ref().map(|a| a.value),
            dmc_f.as_ref().map(|a| a.value),
            imp_f.as_ref().map(|a| a.value),
        );
        if let Some(v) = values.0 {
            known.0 += v;
            known.3 = true;
        }
        if let Some(v) = values.1 {
            known.1 += v;
            known.4 = true;
        }
        if let Some(v) = values.2 {
            known.2 += v;
            known.5 = true;
        }
        if rows.is_empty() {
            continue;
        }
        out.push(FamilyShare {
            family: *f,
            de: de_f.as_ref().map(|a| a.value),
            imp: values.2,
            exp: exp_f.as_ref().map(|a| a.value),
            dmi: values.0,
            dmc: values.1,
            share_of_dmi: share(values.0, dmi),
            share_of_dmc: share(values.1, dmc),
            share_of_imp: share(values.2, imp),
            from_rows: rows,
        });
    }
    // the part of each total not broken down by family
    let rest = |total: f64, sum: f64, any: bool| {
        let r = if any { total - sum } else { total };
        (r.abs() > EPS * total.abs().max(1.0)).then_some(r)
    };
    let (dmi_r, dmc_r, imp_r) = (
        rest(dmi, known.0, known.3),
        rest(dmc, known.1, known.4),
        rest(imp, known.2, known.5),
    );
    if dmi_r.is_some() || dmc_r.is_some() || imp_r.is_some() {
        out.push(FamilyShare {
            family: Family::All,
            de: None,
            imp: imp_r,
            exp: None,
            dmi: dmi_r,
            dmc: dmc_r,
            share_of_dmi: share(dmi_r, dmi),
            share_of_dmc: share(dmc_r, dmc),
            share_of_imp: share(imp_r, imp),
            from_rows: Vec::new(),
        });
    }
    out
}

/// A row is a leaf when no other row of the same flow details it (a finer family or partner, or DPO
/// parts below an undivided DPO row). Balancing items, UDE and memo items are not "items".
fn largest_items(view: &AccountView<'_>, top_n: usize, dmi: f64) -> Vec<LargestItem> {
    let excluded = [
        FlowType::Ude,
        FlowType::BiIn,
        FlowType::BiOut,
        FlowType::Recycling,
    ];
    let mut items: Vec<LargestItem> = Vec::new();
    for &i in view.indices() {
        let Some(r) = view.row(i) else { continue };
        if excluded.contains(&r.flow) {
            continue;
        }
        let detailed = view.of(r.flow).any(|(j, s)| {
            j != i
                && ((r.family.is_all()
                    && !s.family.is_all()
                    && (r.partner.is_none() || s.partner == r.partner))
                    || (r.partner.is_none()
                        && s.partner.is_some()
                        && (r.family.is_all() || s.family == r.family)))
        });
        let dpo_detailed = r.flow == FlowType::Dpo
            && FlowType::DPO_PARTS.iter().any(|p| {
                view.of(*p)
                    .any(|(_, s)| r.family.is_all() || s.family == r.family)
            });
        if detailed || dpo_detailed {
            continue;
        }
        items.push(LargestItem {
            row: i,
            flow: r.flow,
            family: r.family,
            partner: r.partner.clone(),
            value: r.value,
            share_of_dmi: share(Some(r.value), dmi),
        });
    }
    items.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.row.cmp(&b.row)));
    items.truncate(top_n);
    items
}

fn energy_summary(
    rows: &[AccountRow],
    territory: &str,
    year: i32,
    mk: &Maker,
) -> Option<EnergySummary> {
    let view = AccountView::new(rows, territory, year, Unit::Megawatthour);
    if view.is_empty() {
        return None;
    }
    let e = Unit::Megawatthour;
    let de = view.total(FlowType::De);
    let imp = view.total(FlowType::Imp);
    let exp = view.total(FlowType::Exp);
    let consumption = de.clone().plus(&imp).minus(&exp);
    Some(EnergySummary {
        production: mk.make("E_DE", "local energy production", "DE in MWh", e, de),
        imports: mk.make("E_IMP", "energy imports", "IMP in MWh", e, imp),
        exports: mk.make("E_EXP", "energy exports", "EXP in MWh", e, exp),
        apparent_consumption: mk.make(
            "E_CONSUMPTION",
            "apparent energy consumption",
            "DE + IMP − EXP (MWh)",
            e,
            consumption,
        ),
    })
}

#[cfg(test)]
mod tests;
