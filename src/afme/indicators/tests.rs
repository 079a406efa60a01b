use super::*;
use crate::afme::model::Uncertainty;

fn row(flow: FlowType, family: Family, value: f64) -> AccountRow {
    AccountRow::new("21", 2015, flow, family, value)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// A small hand-made account that closes exactly:
/// inputs 100 + 60 + 10 = 170; outputs 50 + (20+5+3+12) + 70 + 10 = 170.
fn small() -> Vec<AccountRow> {
    vec![
        row(FlowType::De, Family::ConstructionMaterials, 80.0), // 0
        row(FlowType::De, Family::AgriculturalFood, 20.0),      // 1
        row(FlowType::Imp, Family::FossilFuels, 40.0).with_partner(Partner::Abroad), // 2
        row(FlowType::Imp, Family::ConstructionMaterials, 20.0).with_partner(Partner::RestOfFrance), // 3
        row(FlowType::BiIn, Family::All, 10.0), // 4
        row(FlowType::Exp, Family::ConstructionMaterials, 30.0), // 5
        row(FlowType::Exp, Family::Waste, 20.0), // 6
        row(FlowType::DpoAir, Family::All, 20.0), // 7
        row(FlowType::DpoWater, Family::All, 5.0), // 8
        row(FlowType::DpoSoil, Family::All, 3.0), // 9
        row(FlowType::DpoLandfill, Family::Waste, 12.0), // 10
        row(FlowType::Nas, Family::All, 70.0),  // 11
        row(FlowType::BiOut, Family::All, 10.0), // 12
        row(FlowType::Recycling, Family::All, 4.0), // 13
        row(FlowType::Imp, Family::Waste, 0.0), // 14
        // other territory, other year: ignored
        AccountRow::new("71", 2015, FlowType::De, Family::All, 999.0), // 15
        AccountRow::new("21", 2014, FlowType::De, Family::All, 999.0), // 16
    ]
}

#[test]
fn every_formula_on_a_small_account() {
    let rows = small();
    let opts = IndicatorOptions {
        population: Some(10.0),
        tolerance_t: 0.5,
        top_n: 3,
    };
    let ind = compute_indicators(&rows, "21", 2015, &opts);
    assert_eq!(ind.de.value, 100.0);
    assert_eq!(ind.de.from_rows, vec![0, 1]);
    assert_eq!(ind.imp.value, 60.0);
    assert_eq!(ind.exp.value, 50.0);
    assert_eq!(ind.dmi.value, 160.0);
    assert_eq!(ind.dmi.from_rows, vec![0, 1, 2, 3, 14]);
    assert_eq!(ind.dmi.formula, "DMI = DE + IMP");
    assert_eq!(ind.dmi.per_capita, Some(16.0));
    assert_eq!(ind.dmc.value, 110.0);
    assert_eq!(ind.ptb.value, 10.0);
    assert_eq!(ind.dpo.value, 40.0);
    assert_eq!(ind.dpo.from_rows, vec![7, 8, 9, 10]);
    assert_eq!(ind.dpo_parts.len(), 4);
    assert_eq!(ind.get("DPO_LANDFILL").unwrap().value, 12.0);
    assert_eq!(ind.nas_declared.as_ref().unwrap().value, 70.0);
    // NAS residual = 100 + 60 + 10 − 50 − 40 − 10 = 70
    assert_eq!(ind.nas_residual.value, 70.0);
    assert_eq!(ind.balance.inputs, 170.0);
    assert_eq!(ind.balance.outputs, 170.0);
    assert_eq!(ind.balance.gap, 0.0);
    assert!(ind.balance.closes);
    assert_eq!(ind.balance.nas_basis, NasBasis::Declared);
    assert_eq!(ind.recycling.as_ref().unwrap().value, 4.0);
    // Barles: LEPO = DPO + waste exported = 40 + 20; DMCcorr = 110 + 20 − 0
    assert_eq!(ind.lepo.as_ref().unwrap().value, 60.0);
    assert_eq!(ind.dmc_corr.as_ref().unwrap().value, 130.0);
    assert!(ind.lepo.as_ref().unwrap().from_rows.contains(&6));
    // nothing from other territories or years
    for i in ind.list() {
        assert!(
            !i.from_rows.contains(&15) && !i.from_rows.contains(&16),
            "{}",
            i.code
        );
    }
    assert!(ind.energy.is_none());
    assert!(ind.warnings.is_empty(), "{:?}", ind.warnings);
}

#[test]
fn shares_by_family() {
    let rows = small();
    let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
    let s = |f: Family| ind.shares.iter().find(|s| s.family == f).unwrap();
    // construction: DMI 80 + 20 = 100 of 160; DMC 100 − 30 = 70 of 110; IMP 20 of 60
    let c = s(Family::ConstructionMaterials);
    assert_eq!(c.dmi, Some(100.0));
    assert!(close(c.share_of_dmi.unwrap(), 100.0 / 160.0));
    assert_eq!(c.dmc, Some(70.0));
    assert!(close(c.share_of_dmc.unwrap(), 70.0 / 110.0));
    assert!(close(c.share_of_imp.unwrap(), 20.0 / 60.0));
    let w = s(Family::Waste);
    assert_eq!(w.dmc, Some(-20.0));
    // everything is broken down by family: no unallocated entry
    assert!(ind.shares.iter().all(|s| s.family != Family::All));
    let dmi_sum: f64 = ind.shares.iter().filter_map(|s| s.dmi).sum();
    assert!(close(dmi_sum, 160.0));
}

#[test]
fn largest_items_are_leaves() {
    let mut rows = small();
    // an undivided IMP total above the family rows must not be an item
    rows.push(row(FlowType::Imp, Family::All, 60.0)); // 17
    let ind = compute_indicators(
        &rows,
        "21",
        2015,
        &IndicatorOptions {
            top_n: 4,
            ..IndicatorOptions::default()
        },
    );
    let got: Vec<usize> = ind.largest.iter().map(|l| l.row).collect();
    // 0 (DE construction 80), 11 (NAS 70), 2 (IMP fossil 40), 5 (EXP construction 30)
    assert_eq!(got, vec![0, 11, 2, 5]);
    assert!(close(ind.largest[0].share_of_dmi.unwrap(), 0.5));
    // the grand total wins over the partial decomposition
    assert_eq!(ind.imp.from_rows, vec![17]);
}

#[test]
fn balance_gap_and_tolerance() {
    let mut rows = small();
    rows[11].value = 65.0; // NAS declared 5 t short
    let tight = IndicatorOptions {
        tolerance_t: 4.0,
        ..IndicatorOptions::default()
    };
    let ind = compute_indicators(&rows, "21", 2015, &tight);
    assert_eq!(ind.balance.gap, 5.0);
    assert!(!ind.balance.closes);
    let loose = IndicatorOptions {
        tolerance_t: 5.0,
        ..IndicatorOptions::default()
    };
    assert!(compute_indicators(&rows, "21", 2015, &loose).balance.closes);
    // without NAS the residual is used and the balance closes by construction
    rows.remove(11);
    let ind = compute_indicators(&rows, "21", 2015, &tight);
    assert_eq!(ind.balance.nas_basis, NasBasis::Residual);
    assert!(ind.nas_declared.is_none());
    assert_eq!(ind.balance.gap, 0.0);
    assert!(ind.warnings.iter().any(|w| w.contains("NAS not declared")));
}

#[test]
fn undivided_dpo_is_the_total_and_parts_are_detail() {
    let rows = vec![
        row(FlowType::Dpo, Family::All, 50.0),
        row(FlowType::DpoLandfill, Family::All, 20.0),
        row(FlowType::DpoAir, Family::All, 25.0),
    ];
    let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
    assert_eq!(ind.dpo.value, 50.0);
    assert_eq!(ind.dpo.from_rows, vec![0]);
    assert_eq!(ind.dpo_parts.len(), 2);
    assert!(ind.warnings.iter().all(|w| !w.contains("DPO parts")));
    let rows = vec![
        row(FlowType::Dpo, Family::All, 10.0),
        row(FlowType::DpoLandfill, Family::All, 20.0),
    ];
    let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
    assert!(ind.warnings.iter().any(|w| w.contains("DPO parts")));
}

#[test]
fn totals_from_partner_or_family_detail() {
    let rows = vec![
        row(FlowType::Imp, Family::All, 30.0).with_partner(Partner::Abroad), // 0
        row(FlowType::Imp, Family::All, 50.0).with_partner(Partner::RestOfFrance), // 1
        row(FlowType::Imp, Family::FossilFuels, 20.0).with_partner(Partner::Abroad), // 2
        row(FlowType::Imp, Family::FossilFuels, 25.0), // 3: fossil over all partners
    ];
    let v = AccountView::new(&rows, "21", 2015, Unit::Tonne);
    // by partner 80 > by family 25
    assert_eq!(v.total(FlowType::Imp).value, 80.0);
    assert_eq!(v.total(FlowType::Imp).rows, vec![0, 1]);
    assert_eq!(v.partner_total(FlowType::Imp, &Partner::Abroad).value, 30.0);
    assert_eq!(
        v.family_total(FlowType::Imp, Family::FossilFuels).value,
        25.0
    );
    // fossil is 25 of 80: the family detail is partial, so waste is unknown rather than 0
    assert!(!v.family_detail_complete(FlowType::Imp));
    assert_eq!(v.family_value(FlowType::Imp, Family::Waste), None);
    assert_eq!(
        v.family_value(FlowType::Imp, Family::FossilFuels)
            .map(|a| a.value),
        Some(25.0)
    );
    // breakdown adds up to the total
    let (cells, warnings) = v.breakdown(FlowType::Imp);
    assert!(warnings.is_empty(), "{warnings:?}");
    let sum: f64 = cells.iter().map(|c| c.value).sum();
    assert!(close(sum, 80.0));
    // fossil abroad 20, rest abroad 10, rest of France 50 (all), and the 5 t of fossil not
    // attributed to a partner cannot be placed (the partner totals already cover 80)
    assert!(cells.iter().any(|c| c.family == Family::FossilFuels
        && c.partner == Some(Partner::Abroad)
        && c.value == 20.0));
    assert!(
        cells.iter().any(|c| c.family == Family::All
            && c.partner == Some(Partner::Abroad)
            && c.value == 10.0)
    );
    // complete family detail: an absent family is a known 0
    let complete = vec![
        row(FlowType::De, Family::All, 100.0),
        row(FlowType::De, Family::ConstructionMaterials, 60.0),
        row(FlowType::De, Family::AgriculturalFood, 40.0),
    ];
    let v = AccountView::new(&complete, "21", 2015, Unit::Tonne);
    assert!(v.family_detail_complete(FlowType::De));
    assert_eq!(
        v.family_value(FlowType::De, Family::FossilFuels)
            .map(|a| a.value),
        Some(0.0)
    );
    // family values are unknown when a flow has no family detail
    let only_total = vec![row(FlowType::Exp, Family::All, 10.0)];
    let v = AccountView::new(&only_total, "21", 2015, Unit::Tonne);
    assert!(v.family_value(FlowType::Exp, Family::Waste).is_none());
}

#[test]
fn energy_rows_are_kept_apart() {
    let mut rows = small();
    rows.push(row(FlowType::Imp, Family::Other, 5000.0).with_unit(Unit::Megawatthour));
    rows.push(row(FlowType::De, Family::Other, 1000.0).with_unit(Unit::Megawatthour));
    rows.push(row(FlowType::Exp, Family::Other, 500.0).with_unit(Unit::Megawatthour));
    let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
    assert_eq!(ind.dmi.value, 160.0, "MWh never added to tonnes");
    let e = ind.energy.unwrap();
    assert_eq!(e.imports.value, 5000.0);
    assert_eq!(e.apparent_consumption.value, 5500.0);
    assert_eq!(e.apparent_consumption.unit, Unit::Megawatthour);
}

#[test]
fn missing_account_warns() {
    let ind = compute_indicators(&[], "21", 2015, &IndicatorOptions::default());
    assert_eq!(ind.dmi.value, 0.0);
    assert!(ind.warnings.iter().any(|w| w.contains("no mass rows")));
    assert!(ind.lepo.is_none());
}

#[test]
fn uncertainty_does_not_change_values() {
    let rows =
        vec![row(FlowType::De, Family::All, 10.0).with_uncertainty(Uncertainty::Percent(5.0))];
    let ind = compute_indicators(&rows, "21", 2015, &IndicatorOptions::default());
    assert_eq!(ind.dmi.value, 10.0);
}

/// The published Bourgogne 2010 account (Alterre Bourgogne, Repères n°64, 2013).
#[test]
fn bourgogne_2010_published_figures() {
    let file = std::fs::File::open("../shared/reference/afme/bourgogne_2010.csv").unwrap();
    let acc = crate::afme::csv::parse_published_csv(file).unwrap();
    // INSEE population of the four départements (21, 58, 71, 89) on 1 January 2010
    let population = 1_642_734.0;
    let ind = compute_indicators(
        &acc.rows,
        "27-BOURGOGNE",
        2010,
        &IndicatorOptions {
            population: Some(population),
            tolerance_t: 100_000.0,
            top_n: 5,
        },
    );
    let kt = |v: f64| v / 1_000.0;
    assert_eq!(kt(ind.de.value), 27_800.0);
    assert_eq!(kt(ind.imp.value), 27_100.0);
    assert_eq!(kt(ind.dmi.value), 54_900.0);
    let published = acc.reference("DMI", "all").unwrap();
    assert_eq!(ind.dmi.value, published.value_t);
    // 54.9 Mt / 1,642,734 inhabitants = 33.42 t/inh., published as 33.4
    let per_capita = ind.dmi.per_capita.unwrap();
    assert!((per_capita - 33.4).abs() < 0.05, "{per_capita}");
    assert!((per_capita - 33.420).abs() < 0.001, "{per_capita}");
    assert_eq!(kt(ind.dmc.value), 28_100.0);
    assert_eq!(kt(ind.ptb.value), 300.0);
    assert_eq!(kt(ind.balance.inputs), 70_700.0);
    assert_eq!(kt(ind.balance.outputs), 70_600.0);
    assert_eq!(kt(ind.balance.gap), 100.0);
    assert!(ind.balance.closes);
    assert_eq!(ind.balance.nas_basis, NasBasis::Declared);
    // NAS residual 70,700 − 26,800 − 17,700 − 15,100 = 11,100 kt (11,000 declared)
    assert_eq!(kt(ind.nas_residual.value), 11_100.0);
    // the totals come from the published rows, not the derived family shares
    let de_row = acc
        .rows
        .iter()
        .position(|r| r.flow == FlowType::De && r.family == Family::All)
        .unwrap();
    assert_eq!(ind.de.from_rows, vec![de_row]);
    // DE shares: construction 48 % + industrial minerals 1 %; its imports are not among the
    // three published IMP shares, so its DMI is unknown
    let c = ind
        .shares
        .iter()
        .find(|s| s.family == Family::ConstructionMaterials)
        .unwrap();
    assert!((c.de.unwrap() / ind.de.value - 0.49).abs() < 1e-9);
    assert_eq!(c.imp, None);
    assert_eq!(c.dmi, None);
    // fossil fuels: no DE (the DE breakdown is complete), 14 % of IMP
    let f = ind
        .shares
        .iter()
        .find(|s| s.family == Family::FossilFuels)
        .unwrap();
    assert_eq!(f.dmi, Some(3_794_000.0));
    assert!((f.share_of_imp.unwrap() - 0.14).abs() < 1e-3);
    // the part of IMP not broken down by family: 27,100 − 18,428 kt
    let rest = ind.shares.iter().find(|s| s.family == Family::All).unwrap();
    assert!((rest.imp.unwrap() - 8_672_000.0).abs() < 1e-6);
    // published per-capita figures agree within their rounding for every flow
    for code in ["DE", "IMP", "EXP", "BI_IN", "BI_OUT", "NAS", "UDE"] {
        let r = acc.reference(code, "all").unwrap();
        let computed = r.value_t / population;
        assert!(
            (computed - r.per_capita_t.unwrap()).abs() <= 0.051,
            "{code}: {computed} vs {:?}",
            r.per_capita_t
        );
    }
    // a stricter tolerance flags the 100 kt gap
    let strict = compute_indicators(
        &acc.rows,
        "27-BOURGOGNE",
        2010,
        &IndicatorOptions {
            tolerance_t: 50_000.0,
            ..IndicatorOptions::default()
        },
    );
    assert!(!strict.balance.closes);
    assert!(
        ind.lepo.is_none(),
        "no waste exports in the published account"
    );
}
