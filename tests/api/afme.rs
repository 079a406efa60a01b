//! Territorial material flow accounts (AFME) through the API: import, indicators, export, Sankey,
//! aggregation, reconciliation, priorities, and the published Bourgogne 2010 account.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

mod consolidation;

const HEADER: &str = "territory,year,flow,family,partner,value,unit,uncertainty,source,note";

fn csv(lines: &[&str]) -> String {
    let mut text = String::from(HEADER);
    for line in lines {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    text
}

fn num(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn close(got: f64, want: f64, tolerance: f64, what: &str) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want} ± {tolerance}"
    );
}

async fn import(app: &TestApp, code: &str, text: String) -> Reply {
    app.post_csv(&format!("/api/v1/territories/{code}/afme/import"), text)
        .await
}

/// Every (row, field) pair of a 422.
fn row_fields(reply: &Reply) -> Vec<(u64, String)> {
    reply.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["row"].as_u64().unwrap_or(0),
                        e["field"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A small account of Côte-d'Or worked by hand (t):
/// DE 1000; IMP 300 (construction materials, rest of France) + 200 (fossil fuels, abroad) = 500;
/// EXP 400; DPO = 150 (air) + 50 (landfill) = 200; BI_IN 80; BI_OUT 60; NAS declared 600;
/// plus 42,000 MWh of electricity imported, kept apart from mass.
/// DMI = 1000 + 500 = 1500; DMC = 1500 − 400 = 1100; PTB = 500 − 400 = 100;
/// NAS residual = 1000 + 500 + 80 − 400 − 200 − 60 = 920;
/// balance gap = (1000 + 500 + 80) − (400 + 200 + 600 + 60) = 1580 − 1260 = 320.
fn small_account() -> String {
    csv(&[
        "21,2015,DE,all,,1000,t,,UNICEM,",
        "21,2015,IMP,construction_materials,rest_of_france,300,t,,SitraM,",
        "21,2015,IMP,fossil_fuels,abroad,200,t,,Douanes,",
        "21,2015,EXP,agricultural_food,rest_of_france,400,t,,SitraM,",
        "21,2015,DPO_AIR,all,,150,t,,CITEPA,",
        "21,2015,DPO_LANDFILL,all,,50,t,,SINOE,",
        "21,2015,BI_IN,all,,80,t,,,",
        "21,2015,BI_OUT,all,,60,t,,,",
        "21,2015,NAS,all,,600,t,,,",
        "21,2015,IMP,other,abroad,42000,MWh,,RTE,electricity",
    ])
}

#[actix_web::test]
async fn imported_account_gives_hand_computed_indicators() {
    let app = spawn_app().await;
    let reply = import(&app, "21", small_account()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["rows_stored"], 10);
    assert_eq!(reply.body["rows_replaced"], 0);
    assert_eq!(reply.body["accounts"][0]["year"], 2015);
    assert_eq!(
        reply.location.as_deref(),
        Some("/api/v1/territories/21/afme?year=2015")
    );

    let got = app.get("/api/v1/territories/21/afme?year=2015").await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["year"], 2015);
    assert_eq!(got.body["years"], json!([2015]));
    assert_eq!(got.body["rows"].as_array().map(Vec::len), Some(10));
    let ind = &got.body["indicators"];
    let eps = 1e-6;
    close(num(&ind["de"]["value"]), 1000.0, eps, "DE");
    close(num(&ind["imp"]["value"]), 500.0, eps, "IMP");
    close(num(&ind["exp"]["value"]), 400.0, eps, "EXP");
    close(num(&ind["dmi"]["value"]), 1500.0, eps, "DMI");
    close(num(&ind["dmc"]["value"]), 1100.0, eps, "DMC");
    close(num(&ind["ptb"]["value"]), 100.0, eps, "PTB");
    close(num(&ind["dpo"]["value"]), 200.0, eps, "DPO");
    close(
        num(&ind["nas_declared"]["value"]),
        600.0,
        eps,
        "NAS declared",
    );
    close(
        num(&ind["nas_residual"]["value"]),
        920.0,
        eps,
        "NAS residual",
    );
    close(num(&ind["balance"]["gap"]), 320.0, eps, "balance gap");
    assert_eq!(
        ind["balance"]["closes"], true,
        "320 t is within the default 100 kt"
    );
    // energy is never summed with mass
    close(
        num(&ind["energy"]["imports"]["value"]),
        42_000.0,
        eps,
        "energy imports",
    );
    // every indicator says which rows it came from: DMI = DE (row 0) + the two mass IMP rows
    let mut from: Vec<u64> = ind["dmi"]["from_rows"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    from.sort_unstable();
    assert_eq!(from, vec![0, 1, 2]);

    // per capita: the reference population of the département, then an override for the year
    let population = app
        .app
        .reference
        .geo
        .territory("21")
        .map(|t| t.population)
        .unwrap_or_default() as f64;
    assert!(population > 0.0);
    assert_eq!(got.body["population"]["source"], "reference_communes");
    close(
        num(&ind["dmi"]["per_capita"]),
        1500.0 / population,
        1e-12,
        "DMI per capita",
    );
    let put = app
        .put(
            "/api/v1/territories/21/afme/population/2015",
            &json!({"population": 500_000}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let got = app.get("/api/v1/territories/21/afme").await;
    assert_eq!(got.status, 200, "latest year by default: {}", got.text);
    assert_eq!(got.body["population"]["source"], "override");
    close(
        num(&got.body["indicators"]["dmi"]["per_capita"]),
        1500.0 / 500_000.0,
        1e-12,
        "DMI per capita with the override",
    );
    assert_field_error(
        &app.put(
            "/api/v1/territories/21/afme/population/2015",
            &json!({"population": 0}),
        )
        .await,
        "population",
    );
    assert_field_error(
        &app.put(
            "/api/v1/territories/21/afme/population/nineteen",
            &json!({"population": 10}),
        )
        .await,
        "year",
    );
    let removed = app
        .delete("/api/v1/territories/21/afme/population/2015")
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);

    // a tighter tolerance flags the gap
    let strict = app
        .get("/api/v1/territories/21/afme?year=2015&tolerance_t=100")
        .await;
    assert_eq!(strict.body["indicators"]["balance"]["closes"], false);
    assert_field_error(
        &app.get("/api/v1/territories/21/afme?year=abc").await,
        "year",
    );

    // a year without account: 404 naming the years that have one
    let missing = app.get("/api/v1/territories/21/afme?year=2012").await;
    assert_eq!(missing.status, 404);
    assert!(missing.content_type.starts_with("application/problem+json"));
    let detail = missing.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("2015"), "{detail}");
    let none = app.get("/api/v1/territories/58/afme").await;
    assert_eq!(none.status, 404, "{}", none.text);
    let unknown = app.get("/api/v1/territories/99999/afme").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.content_type.starts_with("application/problem+json"));
}

#[actix_web::test]
async fn import_errors_name_row_and_column_and_store_nothing() {
    let app = spawn_app().await;
    let text = csv(&[
        "21,2015,DE,all,,1000,t,,,",         // 2: fine
        "21,2015,XX,all,,10,t,,,",           // 3: bad flow type
        "21,2015,IMP,fossil_fuels,,-5,t,,,", // 4: negative value
        "99999,2015,EXP,all,,5,t,,,",        // 5: unknown territory
        "21,2015,IMP,other,abroad,100,t,,,", // 6: fine alone…
        "21,2015,IMP,other,abroad,5,MWh,,,", // 7: …but the same key in MWh: mixed units
        "71,2015,DE,all,,5,t,,,",            // 8: another territory than the URL's
    ]);
    let reply = import(&app, "21", text).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.content_type.starts_with("application/problem+json"));
    let errors = row_fields(&reply);
    for (row, field) in [
        (3, "flow"),
        (4, "value"),
        (5, "territory"),
        (7, "unit"),
        (8, "territory"),
    ] {
        assert!(
            errors.contains(&(row, field.to_owned())),
            "expected row {row} column {field} in {errors:?}"
        );
    }
    assert!(
        !errors.iter().any(|(row, _)| *row == 2 || *row == 6),
        "valid rows are not reported: {errors:?}"
    );
    // all or nothing: not even the valid rows were stored
    let got = app.get("/api/v1/territories/21/afme").await;
    assert_eq!(got.status, 404, "{}", got.text);

    // two spellings of one partner code are one partner
    let twice = import(
        &app,
        "21",
        csv(&["21,2015,IMP,all,2a,1,t,,,", "21,2015,IMP,all,2A,2,t,,,"]),
    )
    .await;
    assert_eq!(twice.status, 422, "{}", twice.text);
    assert_eq!(row_fields(&twice), vec![(3, "partner".to_owned())]);

    // unknown territory in the URL
    let unknown = import(&app, "99999", csv(&["99999,2015,DE,all,,1,t,,,"])).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.content_type.starts_with("application/problem+json"));
    // not CSV
    let json_body = app
        .post("/api/v1/territories/21/afme/import", &json!({"rows": []}))
        .await;
    assert_eq!(json_body.status, 415, "{}", json_body.text);
    // a wrong method on a known path is not an unknown route
    let wrong_method = app.get("/api/v1/territories/21/afme/import").await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);
}

#[actix_web::test]
async fn csv_export_round_trips() {
    let app = spawn_app().await;
    let text = csv(&[
        "21,2015,DE,construction_materials,,1200.5,t,5%,UNICEM,\"quarries, sand pits\"",
        "21,2015,IMP,fossil_fuels,abroad,2.5,kt,100,Douanes,\"the \"\"big\"\" one\"",
        "21,2015,EXP,all,rest_of_france,300,t,,,",
        "21,2015,DPO_LANDFILL,waste,,75,t,,SINOE,",
        "21,2016,DE,all,,999,t,,,",
    ]);
    let first = import(&app, "21", text).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = app.get("/api/v1/territories/21/afme?year=2015").await;
    assert_eq!(before.status, 200);

    let export = app.get("/api/v1/territories/21/afme.csv?year=2015").await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert!(
        export.content_type.starts_with("text/csv"),
        "{}",
        export.content_type
    );
    // French by default: BOM, `;`, decimal comma, and the family's label in a last column
    let french_header = format!("\u{feff}{};family_label", HEADER.replace(',', ";"));
    assert!(export.text.starts_with(&french_header), "{}", export.text);
    assert!(
        export
            .text
            .contains(";1200,5;t;5%;UNICEM;quarries, sand pits;Matériaux de construction"),
        "{}",
        export.text
    );
    assert_eq!(
        export.text.lines().count(),
        5,
        "header + the 4 rows of 2015"
    );
    assert!(
        export.text.contains("2500"),
        "kt converted to t: {}",
        export.text
    );
    let same = app
        .get("/api/v1/territories/21/afme?year=2015&format=csv")
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(same.text, export.text);

    // re-importing the export replaces the 2015 account by itself
    let again = import(&app, "21", export.text.clone()).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["rows_stored"], 4);
    assert_eq!(again.body["rows_replaced"], 4);
    let after = app.get("/api/v1/territories/21/afme?year=2015").await;
    assert_eq!(after.body["rows"], before.body["rows"]);
    assert_eq!(after.body["indicators"], before.body["indicators"]);
    // the other year was left alone; the whole export holds both
    let all = app.get("/api/v1/territories/21/afme.csv").await;
    assert_eq!(all.text.lines().count(), 6, "{}", all.text);

    // a corrected file drops a row: the year's account is replaced, not merged
    let corrected = csv(&["21,2015,DE,all,,1300,t,,,"]);
    let replaced = import(&app, "21", corrected).await;
    assert_eq!(replaced.status, 201, "{}", replaced.text);
    assert_eq!(replaced.body["rows_replaced"], 4);
    let now = app.get("/api/v1/territories/21/afme?year=2015").await;
    assert_eq!(now.body["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get("/api/v1/territories/21/afme.csv?year=2020")
            .await
            .status,
        404
    );
}

/// Whether the links of a d3-sankey graph hold a directed cycle (Kahn's algorithm).
fn has_cycle(nodes: usize, links: &[(usize, usize)]) -> bool {
    let mut indegree = vec![0usize; nodes];
    for (_, t) in links {
        indegree[*t] += 1;
    }
    let mut queue: Vec<usize> = (0..nodes).filter(|n| indegree[*n] == 0).collect();
    let mut seen = 0;
    while let Some(n) = queue.pop() {
        seen += 1;
        for (s, t) in links {
            if *s == n {
                indegree[*t] -= 1;
                if indegree[*t] == 0 {
                    queue.push(*t);
                }
            }
        }
    }
    seen < nodes
}

#[actix_web::test]
async fn sankey_is_well_formed_and_conserves_flows() {
    let app = spawn_app().await;
    // balanced by construction: inputs 1000 + 500 + 80 = outputs 400 + 200 + 920 + 60 = 1580 t
    let text = csv(&[
        "21,2015,DE,all,,1000,t,,,",
        "21,2015,IMP,construction_materials,rest_of_france,300,t,,,",
        "21,2015,IMP,fossil_fuels,abroad,200,t,,,",
        "21,2015,EXP,agricultural_food,rest_of_france,400,t,,,",
        "21,2015,DPO_AIR,all,,150,t,,,",
        "21,2015,DPO_LANDFILL,all,,50,t,,,",
        "21,2015,BI_IN,all,,80,t,,,",
        "21,2015,BI_OUT,all,,60,t,,,",
        "21,2015,NAS,all,,920,t,,,",
    ]);
    assert_eq!(import(&app, "21", text).await.status, 201);
    let reply = app
        .get("/api/v1/territories/21/afme/sankey?year=2015")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let nodes = reply.body["nodes"].as_array().cloned().unwrap_or_default();
    let links = reply.body["links"].as_array().cloned().unwrap_or_default();
    assert!(!nodes.is_empty() && !links.is_empty());
    let pairs: Vec<(usize, usize)> = links
        .iter()
        .map(|l| {
            (
                l["source"].as_u64().unwrap_or(u64::MAX) as usize,
                l["target"].as_u64().unwrap_or(u64::MAX) as usize,
            )
        })
        .collect();
    for (s, t) in &pairs {
        assert!(
            *s < nodes.len() && *t < nodes.len(),
            "link {s}→{t} out of range"
        );
    }
    assert!(!has_cycle(nodes.len(), &pairs), "the graph has a cycle");
    let centre = nodes
        .iter()
        .position(|n| n["kind"] == "territory")
        .unwrap_or(usize::MAX);
    assert!(centre < nodes.len(), "no territory node");
    let into: f64 = links
        .iter()
        .zip(&pairs)
        .filter(|(_, (_, t))| *t == centre)
        .map(|(l, _)| num(&l["value"]))
        .sum();
    let out: f64 = links
        .iter()
        .zip(&pairs)
        .filter(|(_, (s, _))| *s == centre)
        .map(|(l, _)| num(&l["value"]))
        .sum();
    close(into, 1.58, 1e-9, "kt into the territory");
    close(out, 1.58, 1e-9, "kt out of the territory");
    // inputs on the left, outputs on the right
    for (s, t) in &pairs {
        assert!(
            *s == centre || *t == centre,
            "every link touches the territory"
        );
        if *t == centre {
            assert_eq!(nodes[*s]["kind"], "input");
        } else {
            assert_eq!(nodes[*t]["kind"], "output");
        }
    }
    // families are separate links: two import links for two families
    let imports = links.iter().filter(|l| l["flow"] == "IMP").count();
    assert_eq!(imports, 2);
}

#[actix_web::test]
async fn import_dependence_in_construction_materials_ranks_it_first() {
    let app = spawn_app().await;
    // construction materials: 90 % imported; agricultural products: 10 %
    let text = csv(&[
        "21,2015,DE,construction_materials,,100,t,,,",
        "21,2015,DE,agricultural_food,,900,t,,,",
        "21,2015,IMP,construction_materials,,900,t,,,",
        "21,2015,IMP,agricultural_food,,100,t,,,",
        "21,2015,EXP,construction_materials,,0,t,,,",
        "21,2015,EXP,agricultural_food,,200,t,,,",
    ]);
    assert_eq!(import(&app, "21", text).await.status, 201);
    let reply = app.get("/api/v1/territories/21/priorities").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["neutral"], false);
    assert_eq!(reply.body["year"], 2015);
    assert!(
        reply.body["formula"]
            .as_str()
            .is_some_and(|f| f.contains("import_dependence")),
        "{}",
        reply.text
    );
    let mut families = reply.body["families"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    families.sort_by(|a, b| num(&b["priority"]).total_cmp(&num(&a["priority"])));
    assert_eq!(
        families[0]["family"], "construction_materials",
        "{families:?}"
    );
    close(
        num(&families[0]["import_dependence"]),
        0.9,
        1e-9,
        "import dependence",
    );

    // no account: every family neutral
    let neutral = app.get("/api/v1/territories/58/priorities").await;
    assert_eq!(neutral.status, 200, "{}", neutral.text);
    assert_eq!(neutral.body["neutral"], true);
    assert!(
        neutral.body["families"]
            .as_array()
            .is_some_and(|f| f.iter().all(|x| num(&x["priority"]) == 0.5))
    );
    assert_eq!(
        app.get("/api/v1/territories/99999/priorities").await.status,
        404
    );
}

#[actix_web::test]
async fn the_bourgogne_demo_reproduces_the_published_2010_figures() {
    let app = spawn_app().await;
    {
        let mut conn = app.app.pool.get().expect("a connection");
        let stored = symbiose::db::afme::load_bourgogne_demo(&mut conn, &app.app.reference)
            .expect("the demo account loads");
        assert!(stored > 0);
        let again = symbiose::db::afme::load_bourgogne_demo(&mut conn, &app.app.reference)
            .expect("loading twice is harmless");
        assert_eq!(again, stored);
    }
    let zone = app.get("/api/v1/territories/27-BOURGOGNE").await;
    assert_eq!(zone.status, 200, "{}", zone.text);

    let reply = app
        .get("/api/v1/territories/27-BOURGOGNE/afme?year=2010")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let ind = &reply.body["indicators"];
    close(num(&ind["dmi"]["value"]), 54_900_000.0, 1.0, "DMI (t)");
    close(
        num(&ind["dmi"]["per_capita"]),
        33.4,
        0.05,
        "DMI per inhabitant (t)",
    );
    close(num(&ind["dmc"]["value"]), 28_100_000.0, 1.0, "DMC (t)");
    close(num(&ind["ptb"]["value"]), 300_000.0, 1.0, "PTB (t)");
    let balance = &ind["balance"];
    close(num(&balance["gap"]), 100_000.0, 1.0, "balance gap (t)");
    close(num(&balance["tolerance"]), 100_000.0, 0.0, "tolerance (t)");
    assert_eq!(balance["closes"], true, "{balance}");
    assert_eq!(reply.body["population"]["source"], "override");

    let sankey = app
        .get("/api/v1/territories/27-BOURGOGNE/afme/sankey?year=2010")
        .await;
    assert_eq!(sankey.status, 200, "{}", sankey.text);
    close(
        num(&sankey.body["imbalance"]),
        100.0,
        1e-6,
        "imbalance (kt)",
    );
    let priorities = app.get("/api/v1/territories/27-BOURGOGNE/priorities").await;
    assert_eq!(priorities.status, 200, "{}", priorities.text);
    assert_eq!(priorities.body["neutral"], false);
}

/// Garbage in paths, query strings and bodies of the AFME routes: never a 5xx, and every client
/// error is problem+json.
#[actix_web::test]
async fn no_afme_input_yields_a_server_error() {
    let app = spawn_app().await;
    assert_eq!(import(&app, "21", small_account()).await.status, 201);
    let mut failures = Vec::new();
    let mut check = |what: String, reply: Reply| {
        let problem = reply.content_type.starts_with("application/problem+json");
        if reply.status >= 500 {
            failures.push(format!("{what} → {} {}", reply.status, reply.text));
        } else if matches!(reply.status, 400 | 404 | 405 | 413 | 415 | 422)
            && !problem
            && reply.status != 405
        {
            failures.push(format!("{what} → {} without problem+json", reply.status));
        }
    };
    let codes = [
        "21",
        "%00",
        "x%00y",
        "%FF",
        "%25",
        "R",
        "R99",
        "r27",
        "2A",
        "fr",
        "27-BOURGOGNE",
        "21231",
        "%E2%80%AE",
        "%F0%9F%92%A9",
        "3939393939393939393939393939393939393939",
    ];
    let queries = [
        "",
        "?year=",
        "?year=-1",
        "?year=99999999999",
        "?year=2015",
        "?year=abc",
        "?year=%00",
        "?tolerance_t=NaN",
        "?tolerance_t=-5",
        "?tolerance_t=1e400",
        "?format=xml",
        "?format=csv",
        "?format=csv&year=1800",
    ];
    for code in codes {
        for q in queries {
            for tail in [
                "afme",
                "afme.csv",
                "afme/sankey",
                "afme/aggregate",
                "priorities",
            ] {
                let path = format!("/api/v1/territories/{code}/{tail}{q}");
                check(format!("GET {path}"), app.get(&path).await);
            }
            let path = format!("/api/v1/territories/{code}/afme/reconcile{q}");
            check(format!("POST {path}"), app.post(&path, &json!({})).await);
        }
        for year in ["2015", "0", "-3", "x", "99999999999"] {
            let path = format!("/api/v1/territories/{code}/afme/population/{year}");
            for body in [
                json!({"population": 10}),
                json!({"population": -1}),
                json!({"population": 1e30}),
                json!({"population": "many"}),
                json!({"people": 3}),
                json!([]),
            ] {
                check(format!("PUT {path} {body}"), app.put(&path, &body).await);
            }
            check(format!("DELETE {path}"), app.delete(&path).await);
        }
    }
    let bodies: Vec<String> = vec![
        String::new(),
        "\n\n".into(),
        HEADER.into(),
        "garbage".into(),
        "a,b,c\n1,2,3\n".into(),
        csv(&["21,2015,DE,all,,1e308,t,,,", "21,2015,IMP,all,,1e308,t,,,"]),
        csv(&["21,2015,DE,all,,NaN,t,,,"]),
        csv(&["21,2015,DE,all,,1,t,,sour\u{0}ce,"]),
        csv(&["21\u{0},2015,DE,all,,1,t,,,"]),
        csv(&["21,2015,IMP,all,x\u{0}y,1,t,,,"]),
        csv(&["21,2015,DE,all,,1,t,,,,,,,,"]),
        csv(&["21,2015,DE,all,,1,t,,\"unterminated"]),
        csv(&["21,2015,DE,all,,1,t,1e400,,"]),
        csv(&["21,2015,IMP,all,21,1,t,,,"]),
        csv(&["21,2015,IMP,all,2a,1,t,,,", "21,2015,IMP,all,2A,2,t,,,"]),
        format!("{HEADER}\n{}", "21,2015,DE,all,,1,t,,,\n".repeat(3)),
    ];
    for body in &bodies {
        for code in ["21", "R27", "x%00y"] {
            let path = format!("/api/v1/territories/{code}/afme/import");
            let shown: String = body.chars().take(60).collect();
            check(
                format!("POST {path} {shown:?}"),
                import(&app, code, body.clone()).await,
            );
        }
    }
    for body in [
        json!({"constraints": [{"name": "a", "total": 0, "parts": [0]}]}),
        json!({"constraints": [{"name": "a", "total": 0, "parts": []}]}),
        json!({"constraints": [{"name": "a", "total": -1, "parts": [1]}]}),
        json!({"constraints": [{"name": "a", "total": 1e30, "parts": [1]}]}),
        json!({"constraints": [{"name": "", "total": 0, "parts": [1, 1]}]}),
        json!({"constraints": [{"name": "energy", "total": 9, "parts": [1, 2]}]}),
        json!({"alpha": 0}),
        json!({"alpha": "x"}),
        json!({"balance": false}),
        json!({"balance": false, "constraints": [{"name": "mwh", "total": 1, "parts": [9]}]}),
        json!({"unknown": 1}),
        json!("text"),
        json!(null),
    ] {
        let path = "/api/v1/territories/21/afme/reconcile?year=2015";
        check(format!("POST {path} {body}"), app.post(path, &body).await);
    }
    let raw = app
        .send(
            app.client
                .post(app.url("/api/v1/territories/21/afme/reconcile"))
                .header("content-type", "text/plain")
                .body("alpha=0.1"),
        )
        .await;
    check("POST reconcile as text/plain".into(), raw);
    let broken = app
        .send(
            app.client
                .post(app.url("/api/v1/territories/21/afme/reconcile"))
                .header("content-type", "application/json")
                .body("{\"alpha\":"),
        )
        .await;
    check("POST reconcile broken JSON".into(), broken);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // the account survived
    assert_eq!(app.get("/api/v1/territories/21/afme").await.status, 200);
}

#[actix_web::test]
async fn deleting_a_zone_deletes_its_account_and_a_new_zone_of_that_code_starts_empty() {
    let app = spawn_app().await;
    let zone =
        json!({"code": "Z-PLAINE", "name": "Plaine dijonnaise", "communes": ["21231", "21617"]});
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    let imported = import(
        &app,
        "Z-PLAINE",
        csv(&[
            "Z-PLAINE,2015,DE,all,,1000,t,,UNICEM,",
            "Z-PLAINE,2015,IMP,fossil_fuels,abroad,200,t,,Douanes,",
        ]),
    )
    .await;
    assert!(imported.status < 300, "{}", imported.text);
    let account = app.get("/api/v1/territories/Z-PLAINE/afme").await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert_eq!(account.body["rows"].as_array().map(Vec::len), Some(2));

    let deleted = app.delete("/api/v1/territories/Z-PLAINE").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    let fresh = app.get("/api/v1/territories/Z-PLAINE/afme").await;
    assert_eq!(fresh.status, 404, "no account is inherited: {}", fresh.text);
    // Other territories' accounts are untouched.
    assert!(import(&app, "21", small_account()).await.status < 300);
    assert_eq!(app.delete("/api/v1/territories/Z-PLAINE").await.status, 204);
    assert_eq!(app.get("/api/v1/territories/21/afme").await.status, 200);
}

#[actix_web::test]
async fn priority_weights_come_from_config() {
    // Only import dependence counts: each family's priority is its import share.
    let app = crate::helpers::spawn_with(|s| {
        s.afme.priority = symbiose::afme::priority::PriorityWeights {
            import_dependence: 2.0,
            landfill_share: 0.0,
            dmc_weight: 0.0,
        };
    })
    .await;
    let text = csv(&[
        "21,2015,DE,construction_materials,,100,t,,,",
        "21,2015,DE,agricultural_food,,900,t,,,",
        "21,2015,IMP,construction_materials,,900,t,,,",
        "21,2015,IMP,agricultural_food,,100,t,,,",
        "21,2015,DPO_LANDFILL,construction_materials,,500,t,,,",
    ]);
    assert_eq!(import(&app, "21", text).await.status, 201);
    let reply = app.get("/api/v1/territories/21/priorities").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let priority_of = |family: &str| {
        reply.body["families"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["family"] == family))
            .map(|x| num(&x["priority"]))
            .unwrap_or_else(|| panic!("{family} in {}", reply.text))
    };
    // 900 / (100 + 900) and 100 / (900 + 100); landfill and DMC weight no longer count.
    close(
        priority_of("construction_materials"),
        0.9,
        1e-9,
        "construction",
    );
    close(priority_of("agricultural_food"), 0.1, 1e-9, "agriculture");
}
