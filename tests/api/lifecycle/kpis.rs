//! A territory's KPIs: status counts, funnel, realised and estimated tonnes, CSV in two languages.

use super::*;

// -------------------------------------------------------------------------------------------------
// KPIs

async fn kpis(app: &TestApp) -> Value {
    ok(app, "/api/v1/territories/21/kpis").await.body
}

fn funnel(block: &Value) -> Vec<(String, u64, Option<f64>)> {
    block["funnel"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                str_of(s, "stage").to_owned(),
                s["reached"].as_u64().unwrap_or(u64::MAX),
                s["rate"].as_f64(),
            )
        })
        .collect()
}

fn assert_funnel(block: &Value, reached: [u64; 4], total: u64) {
    let got = funnel(block);
    let stages: Vec<&str> = got.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(
        stages,
        vec!["detected", "proposed", "in_study", "implemented"]
    );
    for (i, (stage, n, rate)) in got.iter().enumerate() {
        assert_eq!(*n, reached[i], "{stage} reached");
        approx(
            rate.unwrap_or(f64::NAN),
            reached[i] as f64 / total as f64,
            &format!("{stage} rate"),
        );
    }
}

#[actix_web::test]
async fn kpis_count_statuses_the_funnel_and_realised_tonnes() {
    let app = spawn_app().await;
    let t = territory(&app).await;
    let [s1, s2, s3, _s4] = &t.ids;

    // Nothing acted on yet: four detected synergies.
    let k = kpis(&app).await;
    assert_eq!(k["territory"]["code"], "21");
    assert_eq!(k["totals"]["synergies"], 4);
    assert_eq!(k["totals"]["counts"]["detected"], 4);
    assert_funnel(&k["totals"], [4, 0, 0, 0], 4);

    walk(&app, s1, &["proposed", "in_study", "implemented"]).await;
    let realised = patch(
        &app,
        s1,
        json!({"realised": {"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0}}),
    )
    .await;
    assert_eq!(realised.status, 200, "{}", realised.text);
    walk(&app, s2, &["proposed", "rejected"]).await;
    walk(&app, s3, &["proposed", "in_study"]).await;
    walk(&app, &t.brest, &["proposed", "in_study", "implemented"]).await;

    let k = kpis(&app).await;
    let totals = &k["totals"];
    assert_eq!(
        totals["synergies"], 4,
        "the Brest synergy has no party in 21"
    );
    assert_eq!(
        totals["counts"],
        json!({"detected": 1, "proposed": 0, "in_study": 1, "implemented": 1, "rejected": 1, "abandoned": 0})
    );
    // reached: detected 4; proposed s1, s2, s3; in_study s1, s3; implemented s1
    assert_funnel(totals, [4, 3, 2, 1], 4);
    let implemented = &totals["implemented"];
    assert_eq!(implemented["synergies"], 1);
    assert_eq!(implemented["with_realised_values"], 1);
    approx(
        num(implemented, "tonnes_exchanged_t"),
        400.0,
        "realised quantity",
    );
    approx(
        num(implemented, "tonnes_diverted_t"),
        300.0,
        "realised diversion",
    );
    approx(num(implemented, "co2e_avoided_t"), 50.0, "realised CO2e");
    approx(
        num(implemented, "imports_avoided_t"),
        0.0,
        "no account: no import avoided",
    );
    // under way: s3 (in study), detected estimates: 200 t, half diverted
    let progress = &totals["in_progress"];
    assert_eq!(progress["synergies"], 1);
    approx(num(progress, "tonnes_exchanged_t"), 200.0, "s3 quantity");
    approx(
        num(progress, "tonnes_diverted_t"),
        WOOD_DIVERTED_SHARE * t.quantities[2],
        "s3 estimate",
    );
    // by family and by year: one family, one year
    let families = k["by_family"].as_array().cloned().unwrap_or_default();
    assert_eq!(families.len(), 1, "{families:#?}");
    assert_eq!(families[0]["family"], "agricultural_food");
    assert_eq!(families[0]["synergies"], 4);
    approx(
        num(&families[0]["implemented"], "tonnes_diverted_t"),
        300.0,
        "family diversion",
    );
    let years = k["by_year"].as_array().cloned().unwrap_or_default();
    assert_eq!(years.len(), 1, "{years:#?}");
    assert_eq!(years[0]["year"], i64::from(utc_now().year()));
    assert_funnel(&years[0], [4, 3, 2, 1], 4);

    // Imports avoided once the territory's account says agricultural products are mostly imported.
    let account = "territory,year,flow,family,partner,value,unit,uncertainty,source,note\n\
                   21,2015,DE,agricultural_food,,1000,t,,hand-made,\n\
                   21,2015,IMP,agricultural_food,rest_of_france,3000,t,,hand-made,\n";
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", account.to_owned())
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    let k = kpis(&app).await;
    assert_eq!(k["account_year"], 2015);
    approx(
        num(&k["totals"]["implemented"], "imports_avoided_t"),
        400.0,
        "import dependence 0.75 > 0.5",
    );
    approx(
        num(&k["totals"]["in_progress"], "imports_avoided_t"),
        200.0,
        "s3 would avoid its 200 t",
    );

    // s1 and s2 lose their offer: retired, but a facilitator moved them, so they still count.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{}", t.offers[0]))
            .await
            .status,
        204
    );
    let k = kpis(&app).await;
    // The four, plus Scierie 1 as a latent receiver of Scierie 2's sawdust now that it offers none.
    assert_eq!(k["totals"]["synergies"], 5);
    assert_eq!(k["totals"]["counts"]["implemented"], 1);
    approx(
        num(&k["totals"]["implemented"], "tonnes_diverted_t"),
        300.0,
        "retired implemented synergy counts",
    );
    let retired = patch(&app, s1, json!({"note": "offer withdrawn"})).await;
    assert_eq!(retired.body["active"], false, "{}", retired.text);
    // s4 (still detected) loses its receiver (the actor is deleted, so it is no latent receiver
    // either): retired and no longer counted. s2 (rejected) keeps counting through its provider.
    assert_eq!(
        app.delete(&format!("/api/v1/actors/{}", t.receivers[1]))
            .await
            .status,
        204
    );
    let k = kpis(&app).await;
    // s1, s2, s3 and the latent Scierie 2 → Scierie 1 (still detected).
    assert_eq!(k["totals"]["synergies"], 4);
    assert_eq!(k["totals"]["counts"]["detected"], 1);
    assert_funnel(&k["totals"], [4, 3, 2, 1], 4);

    // The CSV export in English: a header and one row per total, family and year, with the same
    // numbers, `,` and `.`, no BOM.
    let csv = app
        .get_lang("/api/v1/territories/21/kpis?format=csv", "en-GB,en;q=0.9")
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert!(!csv.text.starts_with('\u{feff}'), "no BOM in English");
    let (header, rows) = kpi_csv_rows(&csv.text, b',');
    for column in [
        "dimension",
        "key",
        "label",
        "synergies",
        "implemented",
        "rejected",
        "rate_implemented",
        "implemented_tonnes_diverted_t",
        "implemented_co2e_avoided_t",
        "implemented_imports_avoided_t",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    let dims: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r["dimension"].clone(), r["key"].clone()))
        .collect();
    let year = utc_now().year().to_string();
    assert_eq!(
        dims,
        BTreeSet::from([
            ("total".to_owned(), "21".to_owned()),
            ("family".to_owned(), "agricultural_food".to_owned()),
            ("year".to_owned(), year.clone()),
        ])
    );
    let family = |rows: &[HashMap<String, String>]| {
        rows.iter()
            .find(|r| r["dimension"] == "family")
            .map(|r| r["label"].clone())
            .expect("a family row")
    };
    assert_eq!(family(&rows), "Agricultural and food products");
    let total = rows
        .iter()
        .find(|r| r["dimension"] == "total")
        .expect("a total row")
        .clone();
    let cell = |name: &str| {
        total[name]
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{name} = {:?}", total[name]))
    };
    assert_eq!(cell("synergies"), 4.0);
    assert_eq!(cell("implemented"), 1.0);
    assert_eq!(cell("rejected"), 1.0);
    // 1 / 4, written as a share rounded to 0.1 %.
    assert_eq!(total["rate_implemented"], "0.25");
    approx(
        cell("implemented_tonnes_diverted_t"),
        300.0,
        "csv diversion",
    );
    approx(cell("implemented_imports_avoided_t"), 400.0, "csv imports");
    for (name, value) in &total {
        if name.ends_with("_t") || name.starts_with("rate_") {
            let decimals = value.split('.').nth(1).map_or(0, str::len);
            let most = if name.starts_with("rate_") { 3 } else { 1 };
            assert!(decimals <= most, "{name} = {value}: rounded");
        }
    }

    // In French (the default, and on request): `;`, decimal comma, a BOM, French family labels.
    let fr = app.get("/api/v1/territories/21/kpis?format=csv").await;
    assert_eq!(fr.status, 200, "{}", fr.text);
    assert!(fr.text.starts_with('\u{feff}'), "BOM: {:?}", &fr.text[..10]);
    let explicit = app
        .get_lang("/api/v1/territories/21/kpis?format=csv", "fr-FR")
        .await;
    assert_eq!(explicit.text, fr.text);
    let (fr_header, fr_rows) = kpi_csv_rows(fr.text.trim_start_matches('\u{feff}'), b';');
    assert_eq!(fr_header, header, "same columns in both languages");
    assert_eq!(family(&fr_rows), "Produits agricoles et alimentaires");
    let fr_total = fr_rows
        .iter()
        .find(|r| r["dimension"] == "total")
        .expect("a total row");
    assert_eq!(fr_total["rate_implemented"], "0,25");
    assert_eq!(fr_total["synergies"], "4");
    for (name, value) in fr_total {
        assert!(!value.contains('.'), "{name} = {value}: decimal comma");
        let english = total[name].replace('.', ",");
        assert_eq!(value, &english, "{name}: same figure in both languages");
    }

    assert_field_error(
        &app.get("/api/v1/territories/21/kpis?format=xml").await,
        "format",
    );
    assert_eq!(
        app.get("/api/v1/territories/XX-NOWHERE/kpis").await.status,
        404
    );
    // Another territory's KPIs: only Brest's synergy.
    let finistere = ok(&app, "/api/v1/territories/29/kpis").await.body;
    assert_eq!(finistere["totals"]["synergies"], 1);
    assert_eq!(finistere["totals"]["counts"]["implemented"], 1);
}

/// The header and rows of a KPI CSV read with `delimiter`.
fn kpi_csv_rows(text: &str, delimiter: u8) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert!(
        header.len() > 20,
        "read with {:?}: {header:?}",
        delimiter as char
    );
    let rows = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.expect("a record").iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}
