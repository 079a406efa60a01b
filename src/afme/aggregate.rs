//! A région's account built from its members' accounts (départements, or any partition of a
//! territory), and its comparison with a directly declared regional account.
//!
//! Summing members is right for every flow except trade between members: an export of 21 to 71 is
//! neither an import nor an export of the région (SOeS/CGDD regional guide, 2014: regional IMP and
//! EXP are exchanges with the rest of France and abroad). So:
//! - IMP/EXP rows whose partner is another member are dropped (`cancelled_rows`);
//! - a member's IMP/EXP total rows that include those flows (no partner, same family or `all`) are
//!   reduced by them;
//! - what remains is summed by (flow, family, partner, unit); partners `rest_of_france`, `abroad` and
//!   non-member territories stay as they are.
//!
//! Members report at different levels of detail (one gives a total, another only families). So that
//! the région's total is the sum of the members' totals, every member gets a grand-total row
//! (family `all`, no partner) for each flow, synthesised from its detail when it has none (and an
//! undivided DPO when some members give only DPO parts and others an undivided DPO). Detail rows are
//! then partial detail below that total, which is how [`AccountView`] reads them.
//!
//! Uncertainties of summed rows add in quadrature (members' errors taken as independent); rows
//! without uncertainty count as exact.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::AfmeError;
use super::indicators::AccountView;
use super::model::{AccountRow, Family, FlowType, Partner, Uncertainty, Unit};

/// Trade between two members, as each declared it (t). Both disappear at the régional level;
/// a difference points at a data problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeInternalFlow)]
pub struct InternalFlow {
    pub from: String,
    pub to: String,
    /// EXP of `from` with partner `to`.
    pub exported: Option<f64>,
    /// IMP of `to` with partner `from`.
    pub imported: Option<f64>,
    /// exported − imported, when both are declared.
    pub difference: Option<f64>,
}

/// The aggregated account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeAggregatedAccount)]
pub struct AggregatedAccount {
    pub territory: String,
    pub year: i32,
    pub members: Vec<String>,
    /// Rows of the région (territory = the région's code).
    pub rows: Vec<AccountRow>,
    /// For each row of `rows`, the indices of the input rows it came from.
    pub sources: Vec<Vec<usize>>,
    /// Input rows dropped as trade between members.
    pub cancelled_rows: Vec<usize>,
    pub internal_flows: Vec<InternalFlow>,
    pub warnings: Vec<String>,
}

/// A member row after cancelling internal trade, with its input rows.
#[derive(Debug, Clone)]
struct Adjusted {
    row: AccountRow,
    sources: Vec<usize>,
}

fn add_note(row: &mut AccountRow, note: &str) {
    row.note = Some(match row.note.take() {
        Some(n) if !n.is_empty() => format!("{n}; {note}"),
        _ => note.to_string(),
    });
}

/// Builds the account of `region` for `year` from the rows of `members` found in `rows` (rows of
/// other territories and years are ignored).
pub fn aggregate_members(
    region: &str,
    year: i32,
    members: &[String],
    rows: &[AccountRow],
) -> Result<AggregatedAccount, AfmeError> {
    if members.is_empty() {
        return Err(AfmeError::InvalidInput(
            "a région needs at least one member".into(),
        ));
    }
    let member_set: BTreeSet<&str> = members.iter().map(|m| m.as_str()).collect();
    if member_set.len() != members.len() {
        return Err(AfmeError::InvalidInput("a member is listed twice".into()));
    }
    if member_set.contains(region) {
        return Err(AfmeError::InvalidInput(format!(
            "{region} cannot be a member of itself"
        )));
    }
    let is_internal = |r: &AccountRow| {
        r.flow.has_partner()
            && r.partner
                .as_ref()
                .and_then(|p| p.territory_code())
                .is_some_and(|c| member_set.contains(c))
    };

    let mut warnings = Vec::new();
    let mut cancelled = Vec::new();
    let mut per_member: Vec<Vec<Adjusted>> = Vec::new();

    for m in members {
        let mut adjusted: Vec<Adjusted> = Vec::new();
        for unit in Unit::ALL {
            let view = AccountView::new(rows, m, year, *unit);
            for flow in [FlowType::Imp, FlowType::Exp] {
                let has_rows = view.has(flow);
                let has_partner = view.indices().iter().any(|&i| {
                    rows.get(i)
                        .is_some_and(|r| r.flow == flow && r.partner.is_some())
                });
                if members.len() > 1 && has_rows && !has_partner {
                    warnings.push(format!(
                        "{m}: {flow} ({unit}) has no partner breakdown: trade with other members cannot be removed, so the région's {flow} is overstated by that share"
                    ));
                }
            }
            for &i in view.indices() {
                let Some(r) = rows.get(i) else { continue };
                if is_internal(r) {
                    cancelled.push(i);
                    continue;
                }
                let mut row = r.clone();
                let mut sources = vec![i];
                if r.flow.has_partner() && r.partner.is_none() {
                    // remove the internal flows this total includes
                    let internal: Vec<usize> = view
                        .indices()
                        .iter()
                        .copied()
                        .filter(|&j| {
                            rows.get(j).is_some_and(|s| {
                                s.flow == r.flow
                                    && is_internal(s)
                                    && (r.family.is_all() || s.family == r.family)
                            })
                        })
                        .collect();
                    let amount = internal_amount(rows, &internal, r.family);
                    if amount > 0.0 {
                        let before = row.value;
                        row.value -= amount;
                        if row.value < 0.0 {
                            warnings.push(format!(
                                "{m}: {} {} total {before} is smaller than its trade with other members ({amount}); set to 0",
                                r.flow, r.family
                            ));
                            row.value = 0.0;
                        }
                        add_note(
                            &mut row,
                            &format!("less {amount} of trade with other members"),
                        );
                        sources.extend(internal);
                    }
                }
                row.territory = region.to_string();
                adjusted.push(Adjusted { row, sources });
            }
        }
        per_member.push(adjusted);
    }

    // every member gets grand totals, so that the région's total is the sum of the members'
    let any_undivided_dpo = per_member
        .iter()
        .any(|a| a.iter().any(|x| x.row.flow == FlowType::Dpo));
    for (m, adjusted) in members.iter().zip(per_member.iter_mut()) {
        let mut extra = Vec::new();
        for unit in Unit::ALL {
            let subset: Vec<&Adjusted> = adjusted.iter().filter(|a| a.row.unit == *unit).collect();
            let plain: Vec<AccountRow> = subset.iter().map(|a| a.row.clone()).collect();
            let view = AccountView::all_of_unit(&plain, *unit);
            let mut flows: BTreeSet<FlowType> = plain.iter().map(|r| r.flow).collect();
            if any_undivided_dpo
                && !flows.contains(&FlowType::Dpo)
                && FlowType::DPO_PARTS.iter().any(|p| flows.contains(p))
            {
                flows.insert(FlowType::Dpo);
            }
            for flow in flows {
                let has_grand_total = plain
                    .iter()
                    .any(|r| r.flow == flow && r.family.is_all() && r.partner.is_none());
                if has_grand_total {
                    continue;
                }
                let total = if flow == FlowType::Dpo {
                    view.dpo()
                } else {
                    view.total(flow)
                };
                let sources: Vec<usize> = total
                    .rows
                    .iter()
                    .flat_map(|&k| subset[k].sources.iter().copied())
                    .collect();
                let sd2: Vec<f64> = total.rows.iter().filter_map(|&k| plain[k].sd()).collect();
                let mut row =
                    AccountRow::new(region, year, flow, Family::All, total.value).with_unit(*unit);
                if !sd2.is_empty() {
                    row.uncertainty = Some(Uncertainty::Sd(
                        sd2.iter().map(|s| s * s).sum::<f64>().sqrt(),
                    ));
                }
                add_note(
                    &mut row,
                    &format!("total of {m} synthesised from its detail rows"),
                );
                extra.push(Adjusted { row, sources });
            }
        }
        adjusted.extend(extra);
    }

    // sum by (flow, family, partner, unit)
    type Key = (FlowType, Family, Option<Partner>, Unit);
    /// value, standard deviations, input rows, members
    type Group = (f64, Vec<f64>, Vec<usize>, Vec<String>);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for (m, adjusted) in members.iter().zip(&per_member) {
        for a in adjusted {
            let r = &a.row;
            let g = groups
                .entry((r.flow, r.family, r.partner.clone(), r.unit))
                .or_default();
            g.0 += r.value;
            if let Some(sd) = r.sd() {
                g.1.push(sd);
            }
            g.2.extend(a.sources.iter().copied());
            if !g.3.contains(m) {
                g.3.push(m.clone());
            }
        }
    }
    let mut out_rows = Vec::new();
    let mut sources = Vec::new();
    for ((flow, family, partner, unit), (value, sds, mut src, from)) in groups {
        src.sort_unstable();
        src.dedup();
        out_rows.push(AccountRow {
            territory: region.to_string(),
            year,
            flow,
            family,
            partner,
            value,
            unit,
            uncertainty: (!sds.is_empty())
                .then(|| Uncertainty::Sd(sds.iter().map(|s| s * s).sum::<f64>().sqrt())),
            source: Some(format!("aggregated from {}", from.join(", "))),
            note: None,
        });
        sources.push(src);
    }

    cancelled.sort_unstable();
    Ok(AggregatedAccount {
        territory: region.to_string(),
        year,
        members: members.to_vec(),
        rows: out_rows,
        sources,
        cancelled_rows: cancelled,
        internal_flows: internal_flows(rows, members, year),
        warnings,
    })
}

/// The part of a total (family `family`, no partner) made of the internal rows `internal`: for a
/// specific family the sum of its internal rows; for `all`, per internal partner the partner total
/// row when there is one, else the sum of its family rows.
fn internal_amount(rows: &[AccountRow], internal: &[usize], family: Family) -> f64 {
    let pick = |j: &usize| rows.get(*j);
    if !family.is_all() {
        return internal
            .iter()
            .filter_map(pick)
            .filter(|s| s.family == family)
            .map(|s| s.value)
            .sum();
    }
    let partners: BTreeSet<Partner> = internal
        .iter()
        .filter_map(pick)
        .filter_map(|s| s.partner.clone())
        .collect();
    partners
        .iter()
        .map(|p| {
            let of_p: Vec<&AccountRow> = internal
                .iter()
                .filter_map(pick)
                .filter(|s| s.partner.as_ref() == Some(p))
                .collect();
            match of_p.iter().find(|s| s.family.is_all()) {
                Some(t) => t.value,
                None => of_p.iter().map(|s| s.value).sum(),
            }
        })
        .sum()
}

fn internal_flows(rows: &[AccountRow], members: &[String], year: i32) -> Vec<InternalFlow> {
    let views: Vec<AccountView<'_>> = members
        .iter()
        .map(|m| AccountView::new(rows, m, year, Unit::Tonne))
        .collect();
    let mut out = Vec::new();
    for (a, va) in members.iter().zip(&views) {
        for (b, vb) in members.iter().zip(&views) {
            if a == b {
                continue;
            }
            let exp = va.partner_total(FlowType::Exp, &Partner::Territory(b.clone()));
            let imp = vb.partner_total(FlowType::Imp, &Partner::Territory(a.clone()));
            let exported = (!exp.rows.is_empty()).then_some(exp.value);
            let imported = (!imp.rows.is_empty()).then_some(imp.value);
            if exported.is_none() && imported.is_none() {
                continue;
            }
            out.push(InternalFlow {
                from: a.clone(),
                to: b.clone(),
                exported,
                imported,
                difference: exported.zip(imported).map(|(e, i)| e - i),
            });
        }
    }
    out
}

/// One line of the comparison of an aggregated account with a declared one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeComparisonRow)]
pub struct ComparisonRow {
    pub flow: FlowType,
    pub family: Family,
    pub unit: Unit,
    pub aggregated: Option<f64>,
    pub declared: Option<f64>,
    /// aggregated − declared.
    pub difference: Option<f64>,
    /// (aggregated − declared) / declared.
    pub relative_difference: Option<f64>,
}

/// Compares, flow by flow and family by family, the aggregated rows with the rows declared directly
/// for `region` and `year` (values `None` where an account does not give that flow or family).
pub fn compare_accounts(
    aggregated: &[AccountRow],
    declared: &[AccountRow],
    region: &str,
    year: i32,
) -> Vec<ComparisonRow> {
    let mut out = Vec::new();
    for unit in Unit::ALL {
        let va = AccountView::new(aggregated, region, year, *unit);
        let vd = AccountView::new(declared, region, year, *unit);
        for flow in FlowType::ALL {
            if !va.has(*flow) && !vd.has(*flow) {
                continue;
            }
            let mut push = |family: Family, a: Option<f64>, d: Option<f64>| {
                let difference = a.zip(d).map(|(a, d)| a - d);
                out.push(ComparisonRow {
                    flow: *flow,
                    family,
                    unit: *unit,
                    aggregated: a,
                    declared: d,
                    difference,
                    relative_difference: difference
                        .zip(d)
                        .filter(|(_, d)| d.abs() > 0.0)
                        .map(|(x, d)| x / d),
                });
            };
            let total = |v: &AccountView<'_>| v.has(*flow).then(|| v.total(*flow).value);
            push(Family::All, total(&va), total(&vd));
            for family in Family::SPECIFIC {
                let detail = |v: &AccountView<'_>| {
                    (v.has_family_detail(*flow))
                        .then(|| v.family_total(*flow, *family))
                        .filter(|a| !a.rows.is_empty())
                        .map(|a| a.value)
                };
                let (a, d) = (detail(&va), detail(&vd));
                if a.is_some() || d.is_some() {
                    push(*family, a, d);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::afme::indicators::{IndicatorOptions, compute_indicators};

    fn r(t: &str, flow: FlowType, family: Family, v: f64) -> AccountRow {
        AccountRow::new(t, 2015, flow, family, v)
    }

    fn members() -> Vec<String> {
        vec!["21".into(), "71".into()]
    }

    fn find(
        acc: &AggregatedAccount,
        flow: FlowType,
        family: Family,
        partner: Option<Partner>,
    ) -> Option<&AccountRow> {
        acc.rows
            .iter()
            .find(|x| x.flow == flow && x.family == family && x.partner == partner)
    }

    #[test]
    fn trade_between_members_cancels() {
        let t71 = Partner::Territory("71".into());
        let t21 = Partner::Territory("21".into());
        let rows = vec![
            r("21", FlowType::De, Family::All, 100.0), // 0
            r("21", FlowType::Exp, Family::All, 30.0).with_partner(t71.clone()), // 1
            r("21", FlowType::Exp, Family::All, 20.0).with_partner(Partner::RestOfFrance), // 2
            r("71", FlowType::De, Family::All, 50.0),  // 3
            r("71", FlowType::Imp, Family::All, 30.0).with_partner(t21.clone()), // 4
            r("71", FlowType::Imp, Family::All, 40.0).with_partner(Partner::Abroad), // 5
            r("89", FlowType::De, Family::All, 999.0), // 6: not a member
        ];
        let acc = aggregate_members("27", 2015, &members(), &rows).unwrap();
        assert_eq!(acc.cancelled_rows, vec![1, 4]);
        assert!(acc.rows.iter().all(|x| x.territory == "27"));
        assert_eq!(
            find(&acc, FlowType::De, Family::All, None).unwrap().value,
            150.0
        );
        // EXP of the région: only what leaves it
        assert_eq!(
            find(&acc, FlowType::Exp, Family::All, None).unwrap().value,
            20.0
        );
        assert_eq!(
            find(
                &acc,
                FlowType::Exp,
                Family::All,
                Some(Partner::RestOfFrance)
            )
            .unwrap()
            .value,
            20.0
        );
        assert_eq!(
            find(&acc, FlowType::Imp, Family::All, None).unwrap().value,
            40.0
        );
        assert!(acc.rows.iter().all(|x| {
            x.partner
                .as_ref()
                .and_then(|p| p.territory_code())
                .is_none()
        }));
        // indicators of the région
        let ind = compute_indicators(&acc.rows, "27", 2015, &IndicatorOptions::default());
        assert_eq!(ind.dmi.value, 190.0);
        assert_eq!(ind.exp.value, 20.0);
        assert_eq!(ind.dmc.value, 170.0);
        // the internal flow is reported, both sides agreeing
        assert_eq!(
            acc.internal_flows,
            vec![InternalFlow {
                from: "21".into(),
                to: "71".into(),
                exported: Some(30.0),
                imported: Some(30.0),
                difference: Some(0.0),
            }]
        );
        assert!(acc.warnings.is_empty(), "{:?}", acc.warnings);
        // sources
        let de = acc
            .rows
            .iter()
            .position(|x| x.flow == FlowType::De && x.family.is_all() && x.partner.is_none())
            .unwrap();
        assert_eq!(acc.sources[de], vec![0, 3]);
    }

    #[test]
    fn totals_that_include_internal_trade_are_reduced() {
        let rows = vec![
            r("21", FlowType::Exp, Family::All, 100.0), // 0: all partners
            r("21", FlowType::Exp, Family::ConstructionMaterials, 60.0), // 1: all partners
            r("21", FlowType::Exp, Family::ConstructionMaterials, 25.0)
                .with_partner(Partner::Territory("71".into())), // 2: internal
            r("21", FlowType::Exp, Family::FossilFuels, 5.0)
                .with_partner(Partner::Territory("71".into())), // 3: internal
            r("71", FlowType::Imp, Family::ConstructionMaterials, 24.0)
                .with_partner(Partner::Territory("21".into())), // 4: internal
        ];
        let acc = aggregate_members("27", 2015, &members(), &rows).unwrap();
        assert_eq!(acc.cancelled_rows, vec![2, 3, 4]);
        // 100 − (25 + 5) and 60 − 25
        assert_eq!(
            find(&acc, FlowType::Exp, Family::All, None).unwrap().value,
            70.0
        );
        assert_eq!(
            find(&acc, FlowType::Exp, Family::ConstructionMaterials, None)
                .unwrap()
                .value,
            35.0
        );
        assert!(find(&acc, FlowType::Imp, Family::All, None).is_none());
        let f = &acc.internal_flows[0];
        assert_eq!(
            (f.exported, f.imported, f.difference),
            (Some(30.0), Some(24.0), Some(6.0))
        );
    }

    #[test]
    fn members_at_different_levels_of_detail_sum_correctly() {
        let rows = vec![
            r("21", FlowType::De, Family::All, 100.0),
            r("71", FlowType::De, Family::ConstructionMaterials, 30.0),
            r("71", FlowType::De, Family::AgriculturalFood, 20.0),
            r("21", FlowType::Dpo, Family::All, 10.0),
            r("71", FlowType::DpoAir, Family::All, 4.0),
            r("71", FlowType::DpoLandfill, Family::All, 3.0),
            r("21", FlowType::Nas, Family::All, 7.0).with_uncertainty(Uncertainty::Sd(3.0)),
            r("71", FlowType::Nas, Family::All, 9.0).with_uncertainty(Uncertainty::Sd(4.0)),
        ];
        let acc = aggregate_members("27", 2015, &members(), &rows).unwrap();
        let ind = compute_indicators(&acc.rows, "27", 2015, &IndicatorOptions::default());
        assert_eq!(ind.de.value, 150.0);
        assert_eq!(ind.dpo.value, 17.0);
        let nas = find(&acc, FlowType::Nas, Family::All, None).unwrap();
        assert_eq!(nas.value, 16.0);
        assert_eq!(nas.uncertainty, Some(Uncertainty::Sd(5.0)));
        // family detail stays, as partial detail
        assert_eq!(
            find(&acc, FlowType::De, Family::ConstructionMaterials, None)
                .unwrap()
                .value,
            30.0
        );
    }

    #[test]
    fn warns_when_internal_trade_cannot_be_removed() {
        let rows = vec![r("21", FlowType::Imp, Family::All, 10.0)];
        let acc = aggregate_members("27", 2015, &members(), &rows).unwrap();
        assert!(
            acc.warnings
                .iter()
                .any(|w| w.contains("21: IMP") && w.contains("no partner"))
        );
    }

    #[test]
    fn bad_member_lists() {
        assert!(aggregate_members("27", 2015, &[], &[]).is_err());
        assert!(aggregate_members("27", 2015, &["21".into(), "21".into()], &[]).is_err());
        assert!(aggregate_members("27", 2015, &["27".into()], &[]).is_err());
    }

    #[test]
    fn comparison_with_a_declared_account() {
        let rows = vec![
            r("21", FlowType::De, Family::All, 100.0),
            r("71", FlowType::De, Family::All, 50.0),
            r("21", FlowType::Imp, Family::FossilFuels, 10.0).with_partner(Partner::Abroad),
        ];
        let acc = aggregate_members("27", 2015, &members(), &rows).unwrap();
        let declared = vec![
            r("27", FlowType::De, Family::All, 160.0),
            r("27", FlowType::Exp, Family::All, 5.0),
        ];
        let cmp = compare_accounts(&acc.rows, &declared, "27", 2015);
        let de = cmp
            .iter()
            .find(|c| c.flow == FlowType::De && c.family == Family::All)
            .unwrap();
        assert_eq!(de.aggregated, Some(150.0));
        assert_eq!(de.declared, Some(160.0));
        assert_eq!(de.difference, Some(-10.0));
        assert!((de.relative_difference.unwrap() + 0.0625).abs() < 1e-12);
        let exp = cmp.iter().find(|c| c.flow == FlowType::Exp).unwrap();
        assert_eq!((exp.aggregated, exp.declared), (None, Some(5.0)));
        let imp_f = cmp
            .iter()
            .find(|c| c.flow == FlowType::Imp && c.family == Family::FossilFuels)
            .unwrap();
        assert_eq!((imp_f.aggregated, imp_f.declared), (Some(10.0), None));
    }
}
