use super::*;

fn exists(code: &str) -> bool {
    matches!(code, "21" | "58" | "71" | "89" | "27-BOURGOGNE")
}

const HEADER: &str = "territory,year,flow,family,partner,value,unit,uncertainty,source,note\n";

fn parse(body: &str) -> Result<Vec<AccountRow>, AfmeError> {
    parse_account_csv(format!("{HEADER}{body}").as_bytes(), &exists)
}

fn errors(body: &str) -> Vec<RowError> {
    match parse(body) {
        Err(AfmeError::InvalidRows(e)) => e,
        other => panic!("expected row errors, got {other:?}"),
    }
}

#[test]
fn parses_a_valid_file() {
    let rows = parse(
        "21,2015,IMP,construction_materials,rest_of_france,125000,t,10%,SitraM,road freight\n\
         21,2015,DE,all,,3200000,t,150000,UNICEM,\n\
         21,2015,IMP,other,abroad,42,GWh,,RTE,electricity\n\
         21,2015,EXP,wood,71,1.5,kt,0.1,,\n",
    )
    .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].partner, Some(Partner::RestOfFrance));
    assert_eq!(rows[0].uncertainty, Some(Uncertainty::Percent(10.0)));
    assert_eq!(rows[0].source.as_deref(), Some("SitraM"));
    assert_eq!(rows[1].uncertainty, Some(Uncertainty::Sd(150000.0)));
    assert_eq!(rows[1].note, None);
    assert_eq!(rows[2].unit, Unit::Megawatthour);
    assert_eq!(rows[2].value, 42000.0);
    assert_eq!(rows[3].family, Family::AgriculturalFood);
    assert_eq!(rows[3].value, 1500.0);
    assert_eq!(rows[3].uncertainty, Some(Uncertainty::Sd(100.0)));
    assert_eq!(rows[3].partner, Some(Partner::Territory("71".into())));
}

#[test]
fn semicolons_bom_and_column_order() {
    let text = "\u{feff}value;unit;territory;year;flow;family\n27 800,5;t;21;2010;de;all\n";
    let rows = parse_account_csv(text.as_bytes(), &exists).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value, 27800.5);
    assert_eq!(rows[0].flow, FlowType::De);
}

#[test]
fn each_bad_cell_is_reported_with_row_and_column() {
    let errs = errors(
        "21,2015,DE,all,,100,t,,,\n\
         21,2015,XYZ,all,,100,t,,,\n\
         21,2015,IMP,all,,-5,t,,,\n\
         99,2015,DE,all,,100,t,,,\n\
         21,20x5,EXP,cheese,,100,t,,,\n\
         21,2015,IMP,all,75,100,t,,,\n\
         21,2015,NAS,all,,100,MWh,,,\n\
         21,2015,DPO,all,abroad,100,t,abc,,\n",
    );
    let has = |row: usize, column: &str, needle: &str| {
        errs.iter()
            .any(|e| e.row == row && e.column == column && e.message.contains(needle))
    };
    assert!(has(3, "flow", "unknown flow type 'XYZ'"), "{errs:?}");
    assert!(has(4, "value", "negative"), "{errs:?}");
    assert!(has(5, "territory", "unknown territory '99'"), "{errs:?}");
    assert!(has(6, "year", "not an integer"), "{errs:?}");
    assert!(has(6, "family", "unknown family 'cheese'"), "{errs:?}");
    assert!(has(7, "partner", "unknown territory '75'"), "{errs:?}");
    assert!(has(8, "unit", "only kept for DE, IMP and EXP"), "{errs:?}");
    assert!(has(9, "partner", "only IMP and EXP"), "{errs:?}");
    assert!(has(9, "uncertainty", "not a number"), "{errs:?}");
    assert!(!errs.iter().any(|e| e.row == 2), "row 2 is valid: {errs:?}");
    // sorted by row
    assert!(errs.windows(2).all(|w| w[0].row <= w[1].row));
}

#[test]
fn rows_are_numbered_by_physical_line_after_empty_lines() {
    // line 1 header, 2 valid, 3 empty, 4 bad flow, 5 empty, 6 empty, 7 bad value,
    // 8–9 a quoted note over two lines, 10 bad year
    let errs = errors(
        "21,2015,DE,all,,100,t,,,\n\
         \n\
         21,2015,XYZ,all,,100,t,,,\n\
         \n\
         \n\
         21,2015,IMP,all,,abc,t,,,\n\
         21,2015,EXP,all,,5,t,,,\"two\nlines\"\n\
         21,20x5,DPO_AIR,all,,5,t,,,\n",
    );
    let rows: Vec<(usize, &str)> = errs.iter().map(|e| (e.row, e.column.as_str())).collect();
    assert_eq!(
        rows,
        vec![(4, "flow"), (7, "value"), (10, "year")],
        "{errs:?}"
    );
}

#[test]
fn mixed_units_and_duplicates() {
    let errs = errors(
        "21,2015,DE,fossil_fuels,,100,t,,,\n\
         21,2015,DE,fossil_fuels,,5,MWh,,,\n\
         21,2015,IMP,wood,,7,t,,,\n\
         21,2015,IMP,agricultural_food,,8,t,,,\n",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].row, 3);
    assert_eq!(errs[0].column, "unit");
    assert!(errs[0].message.contains("mixed units") && errs[0].message.contains("row 2"));
    assert_eq!(errs[1].row, 5);
    assert!(errs[1].message.contains("duplicate of row 4"));
    // different partners are different rows; so are different territories
    let ok = parse(
        "21,2015,IMP,fossil_fuels,abroad,100,t,,,\n\
         21,2015,IMP,fossil_fuels,rest_of_france,5,t,,,\n\
         58,2015,IMP,fossil_fuels,rest_of_france,5,MWh,,,\n",
    );
    assert_eq!(ok.unwrap().len(), 3);
}

#[test]
fn header_problems() {
    let e = parse_account_csv("territory,year,flow,famly,value,unit\n".as_bytes(), &exists);
    let errs = e.unwrap_err().row_errors().unwrap().to_vec();
    assert!(errs.iter().any(|e| e.row == 1 && e.column == "famly"));
    assert!(errs.iter().any(|e| e.row == 1 && e.column == "family"));
    let e = parse_account_csv("".as_bytes(), &exists).unwrap_err();
    assert_eq!(e.row_errors().unwrap()[0].row, 1);
    let e = parse("21,2015,DE,all,,100,t,,,,extra\n").unwrap_err();
    assert_eq!(e.row_errors().unwrap()[0].row, 2);
    assert!(matches!(
        parse_account_csv(&[0xff, 0xfe, 0x00][..], &exists),
        Err(AfmeError::Csv(_))
    ));
}

#[test]
fn export_round_trips() {
    let rows = parse(
        "21,2015,IMP,construction_materials,rest_of_france,125000.25,t,10%,SitraM,\"road, rail\"\n\
         21,2015,DE,all,,3200000,t,150000,,\n\
         21,2015,IMP,other,abroad,42000,MWh,,,\n",
    )
    .unwrap();
    let text = account_csv_string(&rows).unwrap();
    assert!(text.starts_with(
        "territory,year,flow,family,partner,value,unit,uncertainty,source,note,family_label\n"
    ));
    let back = parse_account_csv(text.as_bytes(), &exists).unwrap();
    assert_eq!(back, rows);
}

#[test]
fn french_export_uses_semicolons_decimal_commas_and_a_bom_and_round_trips() {
    let rows = parse(
        "21,2015,IMP,construction_materials,rest_of_france,125000.25,t,10.5%,SitraM,\"road, rail\"\n\
         21,2015,DE,all,,3200000.0000000855,t,1500.5,,\n",
    )
    .unwrap();
    let text = account_csv_string_in(&rows, Lang::Fr).unwrap();
    assert!(text.starts_with("\u{feff}territory;year;flow;family;partner;value;unit;uncertainty;source;note;family_label\n"), "{text}");
    assert!(
        text.contains(";125000,25;t;10,5%;SitraM;road, rail;Matériaux de construction\n"),
        "{text}"
    );
    assert!(
        text.contains(";3200000;t;1500,5;;;toutes familles\n"),
        "{text}"
    );
    let back = parse_account_csv(text.as_bytes(), &exists).unwrap();
    assert_eq!(back[0], rows[0]);
    assert_eq!(back[1].value, 3_200_000.0);
    let en = account_csv_string_in(&rows, Lang::En).unwrap();
    assert!(en.starts_with("territory,year,"), "{en}");
    assert!(
        en.contains(",125000.25,t,10.5%,SitraM,\"road, rail\",Construction materials\n"),
        "{en}"
    );
}

#[test]
fn reads_the_published_bourgogne_file() {
    let file = std::fs::File::open("../shared/reference/afme/bourgogne_2010.csv").unwrap();
    let acc = parse_published_csv(file).unwrap();
    assert_eq!(acc.territory, "27-BOURGOGNE");
    assert!(acc.territory_name.starts_with("Bourgogne"));
    let row = |flow: FlowType, family: Family| {
        acc.rows
            .iter()
            .find(|r| r.flow == flow && r.family == family)
            .map(|r| r.value)
    };
    assert_eq!(row(FlowType::De, Family::All), Some(27_800_000.0));
    assert_eq!(row(FlowType::Imp, Family::All), Some(27_100_000.0));
    assert_eq!(row(FlowType::Ude, Family::All), Some(20_100_000.0));
    // wood (1,946 kt) joins agricultural & food (12,232 kt)
    assert_eq!(
        row(FlowType::De, Family::AgriculturalFood),
        Some(14_178_000.0)
    );
    // industrial minerals (278 kt) join construction materials (13,344 kt)
    assert_eq!(
        row(FlowType::De, Family::ConstructionMaterials),
        Some(13_622_000.0)
    );
    // DMI is a reference, not a row
    assert!(
        acc.rows
            .iter()
            .all(|r| r.flow != FlowType::Dpo || r.value == 17_700_000.0)
    );
    let dmi = acc.reference("DMI", "all").unwrap();
    assert_eq!(dmi.value_t, 54_900_000.0);
    assert_eq!(dmi.per_capita_t, Some(33.4));
    // recycling memo: midpoint of 4,000–5,500 kt
    let rec = acc
        .rows
        .iter()
        .find(|r| r.flow == FlowType::Recycling)
        .unwrap();
    assert_eq!(rec.value, 4_750_000.0);
    assert!(
        matches!(rec.uncertainty, Some(Uncertainty::Sd(sd)) if (sd - 1_500_000.0 / 12f64.sqrt()).abs() < 1e-6)
    );
    // 9 published flow rows (no DMI, no memo) + recycling + 5 family rows (wood and
    // industrial minerals merged into existing families)
    assert_eq!(acc.rows.len(), 8 + 1 + 5);
    assert!(
        acc.rows
            .iter()
            .all(|r| r.unit == Unit::Tonne && r.source.is_some())
    );
}

#[test]
fn published_format_errors() {
    let text = "territory_code,territory_name,year,flow,family,value_kt,per_capita_t,kind,note\n\
                X,X,2010,DE,all,-1,,published,\n\
                X,X,2010,FOO,all,1,,published,\n\
                Y,Y,2010,DE,all,1,,published,\n";
    let errs = parse_published_csv(text.as_bytes()).unwrap_err();
    let errs = errs.row_errors().unwrap();
    assert!(errs.iter().any(|e| e.row == 2 && e.column == "value_kt"));
    assert!(errs.iter().any(|e| e.row == 3 && e.column == "flow"));
    assert!(
        errs.iter()
            .any(|e| e.row == 4 && e.column == "territory_code")
    );
}
