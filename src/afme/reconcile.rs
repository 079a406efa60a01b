//! Data reconciliation of uncertain flows by weighted least squares.
//!
//! Measured values `x` with standard deviations `σ` rarely satisfy the account's identities (the
//! balance, aggregation sums). Reconciliation finds the closest values, in the metric of the
//! uncertainties, that do:
//!
//! ```text
//! minimise (x̂ − x)ᵀ Q⁻¹ (x̂ − x)  subject to  A x̂ = b,         Q = diag(σ²)
//! r  = A x − b                                                  (constraint residuals)
//! x̂  = x − Q Aᵀ (A Q Aᵀ)⁻¹ r
//! Q̂  = Q − Q Aᵀ (A Q Aᵀ)⁻¹ A Q                                  (covariance after adjustment)
//! χ² = rᵀ (A Q Aᵀ)⁻¹ r,   degrees of freedom = rank of A Q Aᵀ   (global test)
//! zᵢ = |x̂ᵢ − xᵢ| / √(σᵢ² − σ̂ᵢ²)                                  (normalised adjustment)
//! ```
//!
//! References: Narasimhan S. & Jordache C. (2000), *Data reconciliation and gross error detection*,
//! Gulf Publishing, ch. 3 (linear reconciliation) and ch. 7 (global test and measurement test);
//! Cencic O. (2016), *Nonlinear data reconciliation in material flow analysis with software STAN*,
//! Sustainable Environment Research 26: 291–298, for the MFA setting.
//!
//! Rows without uncertainty (or with σ = 0) are fixed: their column of `Q` is zero, so they never
//! move. A constraint touching only fixed rows cannot be satisfied by adjustment: it is dropped if it
//! already holds and reported as an error otherwise. Linearly dependent constraints are detected
//! while factorising `A Q Aᵀ` (pivoted incremental Cholesky); the redundant ones are dropped (and
//! checked afterwards), so the matrix inverted is always positive definite and the degrees of
//! freedom are the number of independent constraints.
//!
//! Gross errors: when the χ² test fails at level α, the rows are ranked by normalised adjustment
//! (the measurement test) and found by serial elimination (Narasimhan & Jordache 2000, §8.2): the
//! row with the largest zᵢ is flagged, treated as unmeasured (eliminated from the constraints), and
//! the rest reconciled again, until the global test passes. The flagged rows, most responsible first,
//! are `suspects`. Rows whose columns in `A` are proportional get the same zᵢ and cannot be told
//! apart (a single balance constraint gives every row the same zᵢ): they are all flagged, with a
//! warning. `z_critical` (two-sided normal quantile z₁₋α/₂) is reported for per-row reading.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use utoipa::ToSchema;

use super::error::AfmeError;
use super::indicators::AccountView;
use super::model::{AccountRow, FlowType, Uncertainty, Unit};

/// One coefficient of a linear constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeConstraintTerm)]
pub struct Term {
    /// Index of the row (or value) the coefficient applies to.
    pub row: usize,
    pub coefficient: f64,
}

/// A linear constraint Σ coefficient·x[row] = rhs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeConstraint)]
pub struct Constraint {
    pub name: String,
    pub terms: Vec<Term>,
    pub rhs: f64,
}

impl Constraint {
    pub fn new(name: &str, terms: impl IntoIterator<Item = (usize, f64)>, rhs: f64) -> Self {
        Self {
            name: name.to_string(),
            terms: terms
                .into_iter()
                .map(|(row, coefficient)| Term { row, coefficient })
                .collect(),
            rhs,
        }
    }
}

/// total = Σ parts, written as total − Σ parts = 0 (an aggregation sum).
pub fn sum_constraint(name: &str, total: usize, parts: &[usize]) -> Constraint {
    Constraint::new(
        name,
        std::iter::once((total, 1.0)).chain(parts.iter().map(|p| (*p, -1.0))),
        0.0,
    )
}

/// The balance identity of one territory and year, on its mass rows:
/// DE + IMP + BI_IN − EXP − DPO − NAS − BI_OUT = 0.
///
/// The rows used for each flow are those that make its total (see [`AccountView::total`]); DPO is
/// the undivided rows when present, else the parts. NAS must be declared: without it NAS is the
/// residual and the identity holds by definition.
pub fn balance_constraint(
    rows: &[AccountRow],
    territory: &str,
    year: i32,
) -> Result<Constraint, AfmeError> {
    let view = AccountView::new(rows, territory, year, Unit::Tonne);
    if view.is_empty() {
        return Err(AfmeError::Balance(format!(
            "no mass rows for {territory} in {year}"
        )));
    }
    if !view.has(FlowType::Nas) {
        return Err(AfmeError::Balance(
            "NAS is not declared: it would be the residual, and the identity holds by construction"
                .into(),
        ));
    }
    let mut terms = Vec::new();
    for (flow, sign) in [
        (FlowType::De, 1.0),
        (FlowType::Imp, 1.0),
        (FlowType::BiIn, 1.0),
        (FlowType::Exp, -1.0),
        (FlowType::Nas, -1.0),
        (FlowType::BiOut, -1.0),
    ] {
        terms.extend(view.total(flow).rows.into_iter().map(|i| (i, sign)));
    }
    terms.extend(view.dpo().rows.into_iter().map(|i| (i, -1.0)));
    Ok(Constraint::new(
        &format!("balance {territory} {year}: DE + IMP + BI_IN − EXP − DPO − NAS − BI_OUT = 0"),
        terms,
        0.0,
    ))
}

/// For flows that trade between members cannot affect (DE, UDE, DPO and parts, NAS, BI_IN, BI_OUT):
/// the région's total equals the sum of its members' totals. One constraint per flow for which the
/// région and at least one member have rows.
pub fn aggregation_constraints(
    rows: &[AccountRow],
    region: &str,
    members: &[String],
    year: i32,
) -> Vec<Constraint> {
    let region_view = AccountView::new(rows, region, year, Unit::Tonne);
    let member_views: Vec<(&String, AccountView<'_>)> = members
        .iter()
        .map(|m| (m, AccountView::new(rows, m, year, Unit::Tonne)))
        .collect();
    let flows = [
        FlowType::De,
        FlowType::Ude,
        FlowType::DpoAir,
        FlowType::DpoWater,
        FlowType::DpoSoil,
        FlowType::DpoLandfill,
        FlowType::Dpo,
        FlowType::Nas,
        FlowType::BiIn,
        FlowType::BiOut,
    ];
    let mut out = Vec::new();
    for flow in flows {
        let total = region_view.total(flow);
        if total.rows.is_empty() {
            continue;
        }
        let mut terms: Vec<(usize, f64)> = total.rows.iter().map(|i| (*i, 1.0)).collect();
        let mut any = false;
        for (_, v) in &member_views {
            let t = v.total(flow);
            any |= !t.rows.is_empty();
            terms.extend(t.rows.iter().map(|i| (*i, -1.0)));
        }
        if any {
            out.push(Constraint::new(
                &format!("{flow} {region} {year} = Σ members"),
                terms,
                0.0,
            ));
        }
    }
    out
}

/// Options of the reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeReconcileOptions)]
pub struct ReconcileOptions {
    /// Significance level of the χ² test and of the per-row tests (default 0.05).
    pub alpha: f64,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self { alpha: 0.05 }
    }
}

/// One value before and after reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeReconciledValue)]
pub struct ReconciledValue {
    /// Index of the row (or value).
    pub index: usize,
    pub original: f64,
    pub adjusted: f64,
    /// adjusted − original.
    pub adjustment: f64,
    /// Standard deviation before (0 for a fixed row).
    pub sd: f64,
    /// Standard deviation after, √Q̂ᵢᵢ.
    pub adjusted_sd: f64,
    /// Whether the row had an uncertainty (could move).
    pub free: bool,
    /// |x̂ᵢ − xᵢ| / √(σᵢ² − σ̂ᵢ²); `None` for fixed rows and rows no constraint touches.
    pub normalised_adjustment: Option<f64>,
    /// Flagged as a likely gross error.
    pub suspect: bool,
}

/// A constraint set aside before solving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeDroppedConstraint)]
pub struct DroppedConstraint {
    pub name: String,
    pub reason: String,
}

/// The result of a reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeReconciliation)]
pub struct Reconciliation {
    pub values: Vec<ReconciledValue>,
    /// rᵀ (A Q Aᵀ)⁻¹ r.
    pub chi2: f64,
    /// Number of independent constraints used.
    pub dof: usize,
    /// P(χ²_dof ≥ chi2); 1 when there is no constraint.
    pub p_value: f64,
    pub alpha: f64,
    /// χ²_dof quantile at 1 − α.
    pub chi2_critical: Option<f64>,
    /// p_value ≥ alpha.
    pub passed: bool,
    /// Normal quantile z₁₋α/₂ used for the per-row test.
    pub z_critical: f64,
    /// Indices of the flagged rows, most responsible first, by serial elimination (empty when the
    /// test passes).
    pub suspects: Vec<usize>,
    /// Indices of free rows touched by constraints, by decreasing normalised adjustment.
    pub ranking: Vec<usize>,
    pub constraints_used: Vec<String>,
    pub constraints_dropped: Vec<DroppedConstraint>,
    pub formula: String,
    pub warnings: Vec<String>,
}

/// Lower-triangular factor grown one constraint at a time.
struct Chol {
    l: Vec<Vec<f64>>,
}

impl Chol {
    /// Solves L y = v.
    fn forward(&self, v: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.l.len()];
        for i in 0..self.l.len() {
            let s: f64 = (0..i).map(|j| self.l[i][j] * y[j]).sum();
            y[i] = (v[i] - s) / self.l[i][i];
        }
        y
    }

    /// Solves Lᵀ z = y.
    fn backward(&self, y: &[f64]) -> Vec<f64> {
        let n = self.l.len();
        let mut z = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|j| self.l[j][i] * z[j]).sum();
            z[i] = (y[i] - s) / self.l[i][i];
        }
        z
    }
}

/// Reconciles `values` (standard deviations `sds`, `None` or 0 = fixed) to `constraints` whose terms
/// index into `values`.
pub fn reconcile(
    values: &[f64],
    sds: &[Option<f64>],
    constraints: &[Constraint],
    options: &ReconcileOptions,
) -> Result<Reconciliation, AfmeError> {
    let n = values.len();
    if sds.len() != n {
        return Err(AfmeError::InvalidInput(format!(
            "{} values but {} standard deviations",
            n,
            sds.len()
        )));
    }
    if !(options.alpha > 0.0 && options.alpha < 1.0) {
        return Err(AfmeError::InvalidInput(format!(
            "alpha must be in (0, 1), got {}",
            options.alpha
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(AfmeError::InvalidInput(format!("value {i} is not finite")));
    }
    let mut var = vec![0.0; n];
    for (i, sd) in sds.iter().enumerate() {
        match sd {
            Some(s) if !s.is_finite() || *s < 0.0 => {
                return Err(AfmeError::InvalidInput(format!(
                    "standard deviation {i} must be finite and ≥ 0"
                )));
            }
            Some(s) => var[i] = s * s,
            None => {}
        }
    }

    // dense rows of A, merging repeated indices
    let mut a_rows: Vec<DenseRow> = Vec::new();
    for c in constraints {
        if !c.rhs.is_finite() {
            return Err(AfmeError::InvalidInput(format!(
                "constraint '{}': right-hand side is not finite",
                c.name
            )));
        }
        let mut a = vec![0.0; n];
        for t in &c.terms {
            if t.row >= n {
                return Err(AfmeError::InvalidInput(format!(
                    "constraint '{}' refers to row {} of {n}",
                    c.name, t.row
                )));
            }
            if !t.coefficient.is_finite() {
                return Err(AfmeError::InvalidInput(format!(
                    "constraint '{}': coefficient of row {} is not finite",
                    c.name, t.row
                )));
            }
            a[t.row] += t.coefficient;
        }
        a_rows.push((c.name.clone(), a, c.rhs));
    }

    let core = solve_core(values, &var, &a_rows)?;
    let dof = core.kept.len();
    let (p_value, chi2_critical) = chi2_test(core.chi2, dof, options.alpha)?;
    let passed = p_value >= options.alpha;
    let z_critical = Normal::standard().inverse_cdf(1.0 - options.alpha / 2.0);

    let mut out_values: Vec<ReconciledValue> = (0..n)
        .map(|i| ReconciledValue {
            index: i,
            original: values[i],
            adjusted: core.adjusted[i],
            adjustment: core.adjusted[i] - values[i],
            sd: var[i].sqrt(),
            adjusted_sd: core.adjusted_var[i].sqrt(),
            free: var[i] > 0.0,
            normalised_adjustment: core.z[i],
            suspect: false,
        })
        .collect();
    let ranking = rank(&core.z, &[]);

    let mut warnings = Vec::new();
    let mut suspects: Vec<usize> = Vec::new();
    if !passed && let Some(&top) = ranking.first() {
        let z_of = |i: usize| core.z[i].unwrap_or(0.0);
        let zt = z_of(top);
        let mut tied: Vec<usize> = ranking
            .iter()
            .copied()
            .filter(|&i| (z_of(i) - zt).abs() <= 1e-9 * zt.max(1.0))
            .collect();
        tied.sort_unstable();
        if tied.len() > 1 {
            // indistinguishable rows: flag them all, elimination cannot choose
            warnings.push(format!(
                "rows {tied:?} have the same normalised adjustment: the constraints cannot tell which of them is wrong"
            ));
            suspects = tied;
        } else {
            suspects = serial_elimination(values, &var, &a_rows, &ranking, options.alpha);
        }
        for &i in &suspects {
            out_values[i].suspect = true;
        }
    }
    if let Some(v) = out_values
        .iter()
        .find(|v| v.adjusted < 0.0 && v.original >= 0.0)
    {
        warnings.push(format!(
            "row {} is adjusted below zero ({}): its uncertainty is probably too large, or another row is wrong",
            v.index, v.adjusted
        ));
    }

    let mut constraints_dropped = core.dropped;
    constraints_dropped.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Reconciliation {
        values: out_values,
        chi2: core.chi2,
        dof,
        p_value,
        alpha: options.alpha,
        chi2_critical,
        passed,
        z_critical,
        suspects,
        ranking,
        constraints_used: core.kept.iter().map(|&k| a_rows[k].0.clone()).collect(),
        constraints_dropped,
        formula: "x̂ = x − Q Aᵀ (A Q Aᵀ)⁻¹ (A x − b); Q̂ = Q − Q Aᵀ (A Q Aᵀ)⁻¹ A Q; χ² = rᵀ (A Q Aᵀ)⁻¹ r; zᵢ = |x̂ᵢ − xᵢ| / √(σᵢ² − σ̂ᵢ²)"
            .into(),
        warnings,
    })
}

/// A constraint as a dense row: name, coefficients, right-hand side.
type DenseRow = (String, Vec<f64>, f64);

/// What one solve produces.
struct Core {
    adjusted: Vec<f64>,
    adjusted_var: Vec<f64>,
    z: Vec<Option<f64>>,
    chi2: f64,
    /// Indices of the independent constraints used.
    kept: Vec<usize>,
    dropped: Vec<DroppedConstraint>,
}

fn residual(a: &[f64], x: &[f64], b: f64) -> f64 {
    a.iter().zip(x).map(|(ai, xi)| ai * xi).sum::<f64>() - b
}

fn magnitude(a: &[f64], x: &[f64], b: f64) -> f64 {
    a.iter().zip(x).map(|(ai, xi)| (ai * xi).abs()).sum::<f64>() + b.abs() + 1.0
}

/// The reconciliation proper (formulas in the module doc).
fn solve_core(values: &[f64], var: &[f64], a_rows: &[DenseRow]) -> Result<Core, AfmeError> {
    let n = values.len();
    let mut dropped = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    for (k, (name, a, b)) in a_rows.iter().enumerate() {
        let touches_free = a.iter().zip(var).any(|(ai, vi)| *ai != 0.0 && *vi > 0.0);
        if touches_free {
            candidates.push(k);
            continue;
        }
        let r = residual(a, values, *b);
        if r.abs() <= 1e-9 * magnitude(a, values, *b) {
            dropped.push(DroppedConstraint {
                name: name.clone(),
                reason: "involves only fixed rows and already holds".into(),
            });
        } else {
            return Err(AfmeError::ConstraintOnFixedRows {
                constraint: name.clone(),
                residual: r,
            });
        }
    }

    // M = A Q Aᵀ, entries on demand
    let m_entry = |p: usize, q: usize| -> f64 {
        let (ap, aq) = (&a_rows[p].1, &a_rows[q].1);
        (0..n).map(|i| ap[i] * var[i] * aq[i]).sum()
    };

    // pivoted incremental Cholesky: keep a constraint only if independent of those kept
    let mut chol = Chol { l: Vec::new() };
    let mut kept: Vec<usize> = Vec::new();
    let mut dependent: Vec<usize> = Vec::new();
    for &k in &candidates {
        let v: Vec<f64> = kept.iter().map(|&j| m_entry(j, k)).collect();
        let y = chol.forward(&v);
        let mkk = m_entry(k, k);
        let d = mkk - y.iter().map(|t| t * t).sum::<f64>();
        if d > 1e-10 * mkk {
            let mut row = y;
            row.push(d.sqrt());
            chol.l.push(row);
            kept.push(k);
        } else {
            dependent.push(k);
        }
    }

    let r_kept: Vec<f64> = kept
        .iter()
        .map(|&k| residual(&a_rows[k].1, values, a_rows[k].2))
        .collect();
    let lambda = chol.backward(&chol.forward(&r_kept));
    let chi2: f64 = r_kept.iter().zip(&lambda).map(|(r, l)| r * l).sum();

    let mut adjusted = values.to_vec();
    let mut adjusted_var = var.to_vec();
    let mut z = vec![None; n];
    for i in 0..n {
        if var[i] == 0.0 || kept.is_empty() {
            continue;
        }
        let col: Vec<f64> = kept.iter().map(|&k| a_rows[k].1[i]).collect();
        let at_lambda: f64 = col.iter().zip(&lambda).map(|(a, l)| a * l).sum();
        adjusted[i] -= var[i] * at_lambda;
        // (Q Aᵀ M⁻¹ A Q)ᵢᵢ = σᵢ⁴ aᵢᵀ M⁻¹ aᵢ = σᵢ⁴ |L⁻¹ aᵢ|²
        let w = chol.forward(&col);
        let reduction = var[i] * var[i] * w.iter().map(|t| t * t).sum::<f64>();
        adjusted_var[i] = (var[i] - reduction).max(0.0);
        if reduction > 1e-20 * var[i] {
            z[i] = Some((adjusted[i] - values[i]).abs() / reduction.sqrt());
        }
    }

    for &k in &dependent {
        let (name, a, b) = &a_rows[k];
        let r = residual(a, &adjusted, *b);
        if r.abs() > 1e-6 * magnitude(a, &adjusted, *b) {
            return Err(AfmeError::InconsistentConstraints {
                constraint: name.clone(),
                residual: r,
            });
        }
        dropped.push(DroppedConstraint {
            name: name.clone(),
            reason: "linearly dependent on the others (redundant); holds after adjustment".into(),
        });
    }

    Ok(Core {
        adjusted,
        adjusted_var,
        z,
        chi2,
        kept,
        dropped,
    })
}

/// p-value and critical value of the global test.
fn chi2_test(chi2: f64, dof: usize, alpha: f64) -> Result<(f64, Option<f64>), AfmeError> {
    if dof == 0 {
        return Ok((1.0, None));
    }
    let dist = ChiSquared::new(dof as f64)
        .map_err(|e| AfmeError::InvalidInput(format!("χ² distribution: {e}")))?;
    Ok((dist.sf(chi2.max(0.0)), Some(dist.inverse_cdf(1.0 - alpha))))
}

/// Indices with a normalised adjustment, largest first, leaving out `excluded`.
fn rank(z: &[Option<f64>], excluded: &[usize]) -> Vec<usize> {
    let mut r: Vec<usize> = (0..z.len())
        .filter(|i| z[*i].is_some() && !excluded.contains(i))
        .collect();
    let z_of = |i: usize| z[i].unwrap_or(0.0);
    r.sort_by(|&a, &b| z_of(b).total_cmp(&z_of(a)).then(a.cmp(&b)));
    r
}

/// Removes variable `j` from the constraints by Gaussian elimination: the constraint with the
/// largest |a_kj| expresses x_j through the others and is dropped; x_j disappears from the rest.
/// This is what "treat row j as unmeasured" means for a linear system.
fn eliminate(a_rows: &mut Vec<DenseRow>, j: usize) {
    let Some(pivot) = (0..a_rows.len())
        .filter(|&k| a_rows[k].1[j] != 0.0)
        .max_by(|&p, &q| a_rows[p].1[j].abs().total_cmp(&a_rows[q].1[j].abs()))
    else {
        return;
    };
    let (_, pa, pb) = a_rows.remove(pivot);
    for (_, a, b) in a_rows.iter_mut() {
        let f = a[j] / pa[j];
        if f != 0.0 {
            for (ai, pi) in a.iter_mut().zip(&pa) {
                *ai -= f * pi;
            }
            a[j] = 0.0;
            *b -= f * pb;
        }
    }
}

/// Serial elimination (Narasimhan & Jordache 2000, §8): flag the row with the largest normalised
/// adjustment, treat it as unmeasured, reconcile again; repeat while the global test fails.
fn serial_elimination(
    values: &[f64],
    var: &[f64],
    a_rows: &[DenseRow],
    first_ranking: &[usize],
    alpha: f64,
) -> Vec<usize> {
    let mut suspects = Vec::new();
    let mut rows = a_rows.to_vec();
    let mut ranking = first_ranking.to_vec();
    while let Some(&top) = ranking.first() {
        suspects.push(top);
        eliminate(&mut rows, top);
        let Ok(core) = solve_core(values, var, &rows) else {
            break;
        };
        let Ok((p, _)) = chi2_test(core.chi2, core.kept.len(), alpha) else {
            break;
        };
        if core.kept.is_empty() || p >= alpha {
            break;
        }
        ranking = rank(&core.z, &suspects);
    }
    suspects
}

/// Reconciles account rows: values are the rows' values, standard deviations their uncertainties
/// (rows without are fixed); constraint terms index into `rows`.
pub fn reconcile_rows(
    rows: &[AccountRow],
    constraints: &[Constraint],
    options: &ReconcileOptions,
) -> Result<Reconciliation, AfmeError> {
    let values: Vec<f64> = rows.iter().map(|r| r.value).collect();
    let sds: Vec<Option<f64>> = rows.iter().map(|r| r.sd()).collect();
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(i, r)| r.unit == Unit::Megawatthour && constraints_touch(constraints, *i))
    {
        return Err(AfmeError::InvalidInput(format!(
            "row {i} ({} {}) is in MWh: mass constraints take t rows only",
            r.flow, r.family
        )));
    }
    reconcile(&values, &sds, constraints, options)
}

fn constraints_touch(constraints: &[Constraint], i: usize) -> bool {
    constraints
        .iter()
        .any(|c| c.terms.iter().any(|t| t.row == i && t.coefficient != 0.0))
}

/// The rows with reconciled values: moved rows get their adjusted value, an absolute uncertainty
/// equal to the adjusted standard deviation, and a note.
pub fn apply_reconciliation(rows: &[AccountRow], rec: &Reconciliation) -> Vec<AccountRow> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            if let Some(v) = rec.values.get(i)
                && v.free
                && v.normalised_adjustment.is_some()
            {
                r.value = v.adjusted;
                r.uncertainty = Some(Uncertainty::Sd(v.adjusted_sd));
                let note = format!("reconciled (was {})", v.original);
                r.note = Some(match r.note.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::model::{Family, Uncertainty};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Worked by hand. Three flows a + b = c, i.e. A = [1 1 −1], b = 0.
    /// x = (10, 20, 33), σ = (1, 2, 2) → Q = diag(1, 4, 4).
    /// r = 10 + 20 − 33 = −3;  A Q Aᵀ = 1 + 4 + 4 = 9;  λ = r / 9 = −1/3.
    /// x̂ = x − Q Aᵀ λ = (10 + 1/3, 20 + 4/3, 33 − 4/3) = (31/3, 64/3, 95/3); check 31/3 + 64/3 = 95/3.
    /// χ² = r² / 9 = 1 with 1 degree of freedom → p = P(χ²₁ ≥ 1) = 0.3173 (passes at 5 %).
    /// Q̂ᵢᵢ = σᵢ² − σᵢ⁴ aᵢ² / 9 → (1 − 1/9, 4 − 16/9, 4 − 16/9) = (8/9, 20/9, 20/9).
    /// zᵢ = |Δᵢ| / √(σᵢ⁴/9): a: (1/3)/(1/3) = 1, b: (4/3)/(4/3) = 1, c: 1 — one constraint, all equal.
    #[test]
    fn hand_worked_three_flows() {
        let c = Constraint::new("a+b=c", [(0, 1.0), (1, 1.0), (2, -1.0)], 0.0);
        let rec = reconcile(
            &[10.0, 20.0, 33.0],
            &[Some(1.0), Some(2.0), Some(2.0)],
            &[c],
            &ReconcileOptions::default(),
        )
        .unwrap();
        let adj: Vec<f64> = rec.values.iter().map(|v| v.adjusted).collect();
        assert!(close(adj[0], 31.0 / 3.0, 1e-9), "{adj:?}");
        assert!(close(adj[1], 64.0 / 3.0, 1e-9));
        assert!(close(adj[2], 95.0 / 3.0, 1e-9));
        assert!(close(rec.chi2, 1.0, 1e-9));
        assert_eq!(rec.dof, 1);
        assert!(
            close(rec.p_value, 0.317_310_507_862_914, 1e-6),
            "{}",
            rec.p_value
        );
        assert!(rec.passed && rec.suspects.is_empty());
        assert!(close(
            rec.values[0].adjusted_sd,
            (8.0f64 / 9.0).sqrt(),
            1e-9
        ));
        assert!(close(
            rec.values[1].adjusted_sd,
            (20.0f64 / 9.0).sqrt(),
            1e-9
        ));
        assert!(close(
            rec.values[2].adjusted_sd,
            (20.0f64 / 9.0).sqrt(),
            1e-9
        ));
        for v in &rec.values {
            assert!(close(v.normalised_adjustment.unwrap(), 1.0, 1e-9));
        }
        assert!(close(
            rec.chi2_critical.unwrap(),
            3.841_458_820_694_124,
            1e-6
        ));
        assert!(close(rec.z_critical, 1.959_963_984_540_054, 1e-6));
    }

    /// By hand, with c fixed: Q = diag(1, 4, 0), A Q Aᵀ = 5, r = −3, λ = −3/5,
    /// x̂ = (10 + 3/5, 20 + 12/5, 33) = (10.6, 22.4, 33); χ² = 9/5 = 1.8.
    #[test]
    fn fixed_rows_do_not_move() {
        let c = Constraint::new("a+b=c", [(0, 1.0), (1, 1.0), (2, -1.0)], 0.0);
        let rec = reconcile(
            &[10.0, 20.0, 33.0],
            &[Some(1.0), Some(2.0), None],
            &[c],
            &ReconcileOptions::default(),
        )
        .unwrap();
        assert!(close(rec.values[0].adjusted, 10.6, 1e-9));
        assert!(close(rec.values[1].adjusted, 22.4, 1e-9));
        assert_eq!(rec.values[2].adjusted, 33.0);
        assert_eq!(rec.values[2].adjusted_sd, 0.0);
        assert!(!rec.values[2].free && rec.values[2].normalised_adjustment.is_none());
        assert!(close(rec.chi2, 1.8, 1e-9));
    }

    #[test]
    fn constraint_on_fixed_rows_only() {
        let c = Constraint::new("x0 = x1", [(0, 1.0), (1, -1.0)], 0.0);
        let err = reconcile(
            &[1.0, 2.0],
            &[None, Some(0.0)],
            std::slice::from_ref(&c),
            &ReconcileOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, AfmeError::ConstraintOnFixedRows { ref constraint, residual }
            if constraint == "x0 = x1" && residual == -1.0)
        );
        assert!(err.to_string().contains("only rows without uncertainty"));
        // already satisfied: dropped, not an error
        let rec = reconcile(
            &[2.0, 2.0],
            &[None, None],
            &[c],
            &ReconcileOptions::default(),
        )
        .unwrap();
        assert_eq!(rec.dof, 0);
        assert_eq!(rec.p_value, 1.0);
        assert_eq!(rec.constraints_dropped.len(), 1);
    }

    #[test]
    fn redundant_and_contradictory_constraints() {
        let c1 = Constraint::new("a+b=c", [(0, 1.0), (1, 1.0), (2, -1.0)], 0.0);
        let c2 = Constraint::new("2a+2b=2c", [(0, 2.0), (1, 2.0), (2, -2.0)], 0.0);
        let rec = reconcile(
            &[10.0, 20.0, 33.0],
            &[Some(1.0), Some(2.0), Some(2.0)],
            &[c1.clone(), c2],
            &ReconcileOptions::default(),
        )
        .unwrap();
        assert_eq!(
            rec.dof, 1,
            "the redundant constraint adds no degree of freedom"
        );
        assert!(close(rec.chi2, 1.0, 1e-9));
        assert_eq!(rec.constraints_dropped.len(), 1);
        let c3 = Constraint::new("a+b=c+1", [(0, 1.0), (1, 1.0), (2, -1.0)], 1.0);
        let err = reconcile(
            &[10.0, 20.0, 33.0],
            &[Some(1.0), Some(2.0), Some(2.0)],
            &[c1, c3],
            &ReconcileOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, AfmeError::InconsistentConstraints { .. }));
    }

    #[test]
    fn bad_inputs() {
        let c = Constraint::new("c", [(5, 1.0)], 0.0);
        assert!(matches!(
            reconcile(&[1.0], &[Some(1.0)], &[c], &ReconcileOptions::default()),
            Err(AfmeError::InvalidInput(_))
        ));
        assert!(reconcile(&[1.0], &[Some(-1.0)], &[], &ReconcileOptions::default()).is_err());
        assert!(reconcile(&[1.0], &[Some(1.0)], &[], &ReconcileOptions { alpha: 1.5 }).is_err());
        assert!(reconcile(&[f64::NAN], &[Some(1.0)], &[], &ReconcileOptions::default()).is_err());
        assert!(reconcile(&[1.0, 2.0], &[Some(1.0)], &[], &ReconcileOptions::default()).is_err());
    }

    /// Eight flows through four nodes:
    ///
    /// ```text
    ///   f1 → [N1] → f2 → [N2] → f5 ─┐
    ///          └→ f3 → [N3] ← f4 ←──┘(from N2)     N1: f1 = f2 + f3
    ///                   └→ f6 → [N4] → f7, f8       N2: f2 = f4 + f5
    ///   f5 also enters N4                            N3: f3 + f4 = f6
    ///                                                N4: f5 + f6 = f7 + f8
    /// ```
    /// True values 100, 60, 40, 25, 35, 65, 70, 30; measurements carry small noise and f4 a gross
    /// error (+15 t, 15 σ).
    #[test]
    fn planted_gross_error_is_found() {
        let constraints = vec![
            Constraint::new("N1", [(0, 1.0), (1, -1.0), (2, -1.0)], 0.0),
            Constraint::new("N2", [(1, 1.0), (3, -1.0), (4, -1.0)], 0.0),
            Constraint::new("N3", [(2, 1.0), (3, 1.0), (5, -1.0)], 0.0),
            Constraint::new("N4", [(4, 1.0), (5, 1.0), (6, -1.0), (7, -1.0)], 0.0),
        ];
        let truth = [100.0, 60.0, 40.0, 25.0, 35.0, 65.0, 70.0, 30.0];
        let noise = [0.6, -0.4, 0.5, 15.0, -0.3, -0.2, 0.5, -0.4];
        let measured: Vec<f64> = truth.iter().zip(noise).map(|(t, n)| t + n).collect();
        let rows: Vec<AccountRow> = measured
            .iter()
            .map(|v| {
                AccountRow::new("21", 2015, FlowType::Imp, Family::Other, *v)
                    .with_uncertainty(Uncertainty::Sd(1.0))
            })
            .collect();
        let rec = reconcile_rows(&rows, &constraints, &ReconcileOptions::default()).unwrap();
        assert_eq!(rec.dof, 4);
        assert!(!rec.passed, "χ² = {} should fail", rec.chi2);
        assert!(rec.p_value < 0.05);
        assert_eq!(
            rec.ranking[0], 3,
            "f4 is the most responsible: {:?}",
            rec.values
        );
        // the measurement test alone smears the error onto f6, f2, f3, f5 (all zᵢ > 1.96); serial
        // elimination pins it on f4 alone
        assert!(
            rec.values
                .iter()
                .filter(|v| v.normalised_adjustment.unwrap() > rec.z_critical)
                .count()
                > 1
        );
        assert_eq!(rec.suspects, vec![3]);
        assert!(rec.values[3].suspect);
        assert_eq!(rec.values.iter().filter(|v| v.suspect).count(), 1);
        // every constraint holds after adjustment
        let adj: Vec<f64> = rec.values.iter().map(|v| v.adjusted).collect();
        for c in &constraints {
            let s: f64 = c.terms.iter().map(|t| t.coefficient * adj[t.row]).sum();
            assert!(s.abs() < 1e-9, "{}: {s}", c.name);
        }
        // without the gross error the same network passes and nothing is flagged
        let mut clean = rows.clone();
        clean[3].value = 25.2;
        let rec = reconcile_rows(&clean, &constraints, &ReconcileOptions::default()).unwrap();
        assert!(rec.passed, "χ² = {}", rec.chi2);
        assert!(rec.suspects.is_empty());
        assert!(rec.values.iter().all(|v| !v.suspect));
        // applied to the rows
        let applied = apply_reconciliation(&clean, &rec);
        assert!(
            applied[3]
                .note
                .as_deref()
                .unwrap_or("")
                .contains("reconciled")
        );
    }

    #[test]
    fn balance_of_an_account() {
        // inputs 100 + 50 = 150; outputs 40 + 30 + 70 = 140: 10 t missing
        let rows = vec![
            AccountRow::new("21", 2015, FlowType::De, Family::All, 100.0)
                .with_uncertainty(Uncertainty::Percent(5.0)),
            AccountRow::new("21", 2015, FlowType::Imp, Family::All, 50.0)
                .with_uncertainty(Uncertainty::Percent(10.0)),
            AccountRow::new("21", 2015, FlowType::Exp, Family::All, 40.0)
                .with_uncertainty(Uncertainty::Percent(10.0)),
            AccountRow::new("21", 2015, FlowType::DpoAir, Family::All, 30.0)
                .with_uncertainty(Uncertainty::Percent(20.0)),
            AccountRow::new("21", 2015, FlowType::Nas, Family::All, 70.0)
                .with_uncertainty(Uncertainty::Percent(20.0)),
            AccountRow::new("21", 2015, FlowType::Recycling, Family::All, 5.0),
        ];
        let c = balance_constraint(&rows, "21", 2015).unwrap();
        assert_eq!(c.terms.len(), 5, "memo items stay out");
        let rec = reconcile_rows(&rows, &[c], &ReconcileOptions::default()).unwrap();
        let adj: Vec<f64> = rec.values.iter().map(|v| v.adjusted).collect();
        let gap = adj[0] + adj[1] - adj[2] - adj[3] - adj[4];
        assert!(gap.abs() < 1e-9);
        // the most uncertain rows move most: NAS (σ = 14) more than DE (σ = 5)
        assert!(rec.values[4].adjustment.abs() > rec.values[0].adjustment.abs());
        assert_eq!(rec.values[5].adjusted, 5.0);
        // σ² = 25 + 25 + 16 + 36 + 196 = 298; χ² = 10² / 298
        assert!((rec.chi2 - 100.0 / 298.0).abs() < 1e-9);
        // no NAS: no balance to reconcile
        assert!(matches!(
            balance_constraint(&rows[..4], "21", 2015),
            Err(AfmeError::Balance(_))
        ));
    }

    #[test]
    fn one_constraint_cannot_localise_an_error() {
        let c = Constraint::new("a+b=c", [(0, 1.0), (1, 1.0), (2, -1.0)], 0.0);
        let rec = reconcile(
            &[10.0, 20.0, 50.0],
            &[Some(1.0), Some(1.0), Some(1.0)],
            &[c],
            &ReconcileOptions::default(),
        )
        .unwrap();
        assert!(!rec.passed);
        assert_eq!(rec.suspects, vec![0, 1, 2]);
        assert!(rec.warnings.iter().any(|w| w.contains("cannot tell")));
    }

    #[test]
    fn the_published_bourgogne_balance_is_all_fixed() {
        let file = std::fs::File::open("../shared/reference/afme/bourgogne_2010.csv").unwrap();
        let acc = crate::afme::csv::parse_published_csv(file).unwrap();
        let c = balance_constraint(&acc.rows, "27-BOURGOGNE", 2010).unwrap();
        let err = reconcile_rows(&acc.rows, &[c], &ReconcileOptions::default()).unwrap_err();
        match err {
            AfmeError::ConstraintOnFixedRows { residual, .. } => {
                assert!((residual - 100_000.0).abs() < 1e-6)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aggregation_sums_as_constraints() {
        let rows = vec![
            AccountRow::new("R", 2015, FlowType::De, Family::All, 100.0)
                .with_uncertainty(Uncertainty::Sd(5.0)),
            AccountRow::new("A", 2015, FlowType::De, Family::All, 60.0)
                .with_uncertainty(Uncertainty::Sd(3.0)),
            AccountRow::new("B", 2015, FlowType::De, Family::All, 45.0)
                .with_uncertainty(Uncertainty::Sd(4.0)),
            AccountRow::new("A", 2015, FlowType::Imp, Family::All, 10.0),
        ];
        let cs = aggregation_constraints(&rows, "R", &["A".into(), "B".into()], 2015);
        assert_eq!(cs.len(), 1, "IMP is not summed: internal trade cancels");
        let rec = reconcile_rows(&rows, &cs, &ReconcileOptions::default()).unwrap();
        let adj: Vec<f64> = rec.values.iter().map(|v| v.adjusted).collect();
        assert!((adj[0] - adj[1] - adj[2]).abs() < 1e-9);
        // r = 100 − 105 = −5; M = 25 + 9 + 16 = 50; x̂_R = 100 + 25·5/50 = 102.5
        assert!((adj[0] - 102.5).abs() < 1e-9);
        let s = sum_constraint("R = A + B", 0, &[1, 2]);
        assert_eq!(s.terms.len(), 3);
        assert_eq!(s.terms[1].coefficient, -1.0);
    }
}
