use std::fmt::Write as _;

use serde_json::{Value, json};
use symbiose::domain::actor::complete_siret;

use crate::helpers::{Reply, TestApp, actor_body, spawn_app, spawn_with};

const HEADER: &str = "actor_ref,actor_name,siret,naf_code,commune_insee,kind,category,label,ewc_code,quantity,unit,period";

/// A Luhn-valid SIRET made from a number.
fn siret(n: u64) -> String {
    complete_siret(&format!("{:013}", 4_000_000_000_000 + n)).expect("a check digit exists")
}

/// The `(row, field)` pairs of a 422 import report.
fn row_errors(reply: &Reply) -> Vec<(u64, String)> {
    reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or(0),
                e["field"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_rejected(reply: &Reply, expected: &[(u64, &str)]) {
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{}",
        reply.content_type
    );
    let got = row_errors(reply);
    for (row, field) in expected {
        assert!(
            got.contains(&(*row, (*field).to_owned())),
            "expected row {row} field {field} in {got:?}"
        );
    }
    for e in reply.body["errors"].as_array().into_iter().flatten() {
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "every error says why: {e}"
        );
    }
}

async fn all_items(app: &TestApp, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut next = format!("{path}{sep}limit=500");
    for _ in 0..1000 {
        let page = app.get(&next).await;
        assert_eq!(page.status, 200, "{}", page.text);
        out.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}{sep}limit=500&cursor={cursor}"),
            None => return out,
        }
    }
    panic!("{path} does not end");
}

async fn assert_nothing_stored(app: &TestApp) {
    let actors = app.get("/api/v1/actors").await;
    assert_eq!(actors.status, 200);
    assert_eq!(actors.body["items"], json!([]), "no actor stored");
    let resources = app.get("/api/v1/resources").await;
    assert_eq!(resources.body["items"], json!([]), "no resource stored");
}

#[actix_web::test]
async fn a_small_file_imports_actors_and_their_resources() {
    let app = spawn_app().await;
    let s1 = siret(1);
    let csv = format!(
        "{HEADER}\n\
         saw,Scierie du Morvan,,16.10A,58062,offer,material,Sciures,03 01 05,40,t,month\n\
         saw,Scierie du Morvan,,16.10A,58062,need,energy,Chaleur séchoirs,,800,MWh,year\n\
         ,Centrale de Dijon,{s1},35.30Z,21231,offer,material,Cendres d'incinération,19 01 13,2,t,week\n\
         ,Centrale de Dijon,{s1},35.30Z,21231,offer,energy,Chaleur fatale,,36,GJ,month\n\
         ,Centrale de Dijon,{s1},35.30Z,21231,need,water,Eau de refroidissement,,,,\n\
         ,\"Ciments de Bourgogne, Mâcon\",,23.51Z,71270,,,,,,,\n"
    );
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["rows"], 6);
    assert_eq!(reply.body["actors_created"], 3);
    assert_eq!(reply.body["resources_created"], 5);
    // The ids it created: per actor (with the file's actor_ref and first line), per resource line.
    let created = reply.body["actors"].as_array().cloned().unwrap_or_default();
    assert_eq!(created.len(), 3, "{}", reply.text);
    assert_eq!(created[0]["actor_ref"], "saw");
    assert_eq!(created[0]["line"], 2);
    let lines: Vec<u64> = created[0]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["line"].as_u64())
        .collect();
    assert_eq!(lines, vec![2, 3]);
    assert_eq!(created[1]["actor_ref"], "");
    assert_eq!(created[1]["resources"].as_array().map(Vec::len), Some(3));
    assert_eq!(created[2]["resources"].as_array().map(Vec::len), Some(0));
    for a in &created {
        let id = a["actor_id"].as_str().unwrap_or_default();
        assert_eq!(app.get(&format!("/api/v1/actors/{id}")).await.status, 200);
        for r in a["resources"].as_array().into_iter().flatten() {
            let rid = r["resource_id"].as_str().unwrap_or_default();
            assert_eq!(
                app.get(&format!("/api/v1/resources/{rid}")).await.status,
                200
            );
        }
    }

    let actors = all_items(&app, "/api/v1/actors").await;
    let names: Vec<&str> = actors.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Centrale de Dijon",
            "Ciments de Bourgogne, Mâcon",
            "Scierie du Morvan"
        ]
    );
    let dijon = &actors[0];
    assert_eq!(dijon["siret"], s1.as_str());
    assert_eq!(dijon["naf_code"], "35.30Z");
    assert_eq!(dijon["departement"], "21");
    let centroid = app
        .app
        .reference
        .geo
        .commune("21231")
        .map(|c| (c.lat, c.lng))
        .expect("Dijon");
    assert!((dijon["lat"].as_f64().unwrap_or_default() - centroid.0).abs() < 1e-9);
    assert_eq!(actors[1]["commune_insee"], "71270");

    let resources = all_items(&app, "/api/v1/resources").await;
    assert_eq!(resources.len(), 5);
    let by_label = |label: &str| {
        resources
            .iter()
            .find(|r| r["label"] == label)
            .cloned()
            .expect(label)
    };
    let ash = by_label("Cendres d'incinération");
    assert_eq!(ash["actor_id"], dijon["id"]);
    assert_eq!(ash["hazardous"], true);
    assert!((ash["yearly_quantity"].as_f64().unwrap_or_default() - 104.0).abs() < 1e-9);
    let heat = by_label("Chaleur fatale");
    assert!((heat["yearly_quantity"].as_f64().unwrap_or_default() - 120.0).abs() < 1e-9);
    assert_eq!(heat["base_unit"], "MWh");
    assert_eq!(by_label("Eau de refroidissement")["quantity"], Value::Null);
    assert_eq!(by_label("Sciures")["ewc_code"], "030105");
    let saw_id = by_label("Sciures")["actor_id"].clone();
    assert_eq!(
        by_label("Chaleur séchoirs")["actor_id"],
        saw_id,
        "rows with one actor_ref make one actor"
    );
    let cement = actors[1]["id"].as_str().expect("id");
    let cement_resources = app.get(&format!("/api/v1/actors/{cement}/resources")).await;
    assert_eq!(
        cement_resources.body["items"],
        json!([]),
        "an actor-only row declares no resource"
    );

    // Importing the same SIRET again is refused, naming the row; nothing more is stored.
    let again = format!(
        "{HEADER}\n,Centrale bis,{s1},35.30Z,21231,,,,,,,\n,Nouvelle,,16.10A,21231,,,,,,,\n"
    );
    let reply = app.post_csv("/api/v1/import", again).await;
    assert_rejected(&reply, &[(2, "siret")]);
    assert_eq!(row_errors(&reply).len(), 1, "{}", reply.text);
    assert_eq!(all_items(&app, "/api/v1/actors").await.len(), 3);
}

#[actix_web::test]
async fn all_columns_of_the_documented_format() {
    let app = spawn_app().await;
    let header = symbiose::import::COLUMNS.join(",");
    let s = siret(7);
    let csv = format!(
        "{header}\n\
         a1,Laiterie,{s},10.51C,1 rue du Lait,21231,47.3,5.04,Mme Dupont,lait@example.org,0380000000,oui,\
         offer,material,material/organic,Lactosérum,Petit-lait,02 05 01,,12,m3,day,seasonal,5;6;7,,,15,50,liquid\n\
         a1,Laiterie,{s},10.51C,1 rue du Lait,21231,47.3,5.04,Mme Dupont,lait@example.org,0380000000,oui,\
         need,material,,Boues,,02 05 02,02 05 02|02 05 01,3,t,year,one_off,,2026-03-01,2026-04-15,,,sludge\n"
    );
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["rows"], 2);
    assert_eq!(reply.body["actors_created"], 1);
    assert_eq!(reply.body["resources_created"], 2);
    assert_eq!(reply.body["actors"][0]["actor_ref"], "a1");
    let actor = &all_items(&app, "/api/v1/actors").await[0];
    assert_eq!(actor["address"], "1 rue du Lait");
    assert_eq!(actor["lat"], 47.3);
    assert_eq!(actor["share_with_partners"], true);
    assert_eq!(actor["contact"]["email"], "lait@example.org");
    let resources = all_items(&app, "/api/v1/resources").await;
    let whey = resources
        .iter()
        .find(|r| r["label"] == "Lactosérum")
        .expect("whey");
    assert_eq!(
        whey["availability"],
        json!({"kind": "seasonal", "months": [5, 6, 7]})
    );
    assert_eq!(whey["class"], "material/organic");
    assert_eq!(whey["temperature_c"], 15.0);
    assert_eq!(whey["physical_state"], "liquid");
    assert!((whey["yearly_quantity"].as_f64().unwrap_or_default() - 4380.0).abs() < 1e-9);
    let sludge = resources
        .iter()
        .find(|r| r["label"] == "Boues")
        .expect("sludge");
    assert_eq!(sludge["accepted_ewc"], json!(["020502", "020501"]));
    assert_eq!(
        sludge["availability"],
        json!({"kind": "one_off", "from": "2026-03-01", "until": "2026-04-15"})
    );
}

#[actix_web::test]
async fn ten_thousand_rows_with_one_bad_row_store_nothing() {
    let app = spawn_app().await;
    let communes: Vec<String> = app
        .app
        .reference
        .geo
        .communes()
        .iter()
        .filter(|c| c.departement == "21")
        .map(|c| c.insee.clone())
        .collect();
    assert!(communes.len() > 600);
    let offers = [
        ("offer", "material", "Sciures", "03 01 05"),
        ("offer", "material", "Mâchefers", "10 01 01"),
    ];
    let needs = [
        ("need", "energy", "Chaleur", ""),
        ("need", "water", "Eau", ""),
        ("need", "material", "Cendres", "10 01 02"),
    ];
    let build = |bad_line: Option<u64>| {
        let mut csv = String::with_capacity(1_200_000);
        csv.push_str(HEADER);
        csv.push('\n');
        let mut line = 1u64;
        for a in 0..2000u64 {
            let commune = &communes[a as usize % communes.len()];
            let siret = if a % 2 == 0 { siret(a) } else { String::new() };
            for (kind, category, label, ewc) in offers.iter().chain(needs.iter()) {
                line += 1;
                let unit = if Some(line) == bad_line { "tons" } else { "t" };
                writeln!(csv, "A{a},Établissement {a:04},{siret},16.10A,{commune},{kind},{category},{label} {a},{ewc},{},{unit},year", 1 + a % 50)
                    .expect("write");
            }
        }
        assert_eq!(line, 10_001);
        csv
    };

    let reply = app.post_csv("/api/v1/import", build(Some(5_001))).await;
    assert_rejected(&reply, &[(5_001, "unit")]);
    assert_eq!(
        row_errors(&reply),
        vec![(5_001, "unit".to_owned())],
        "only the bad row is reported"
    );
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("tons")
    );
    assert_nothing_stored(&app).await;

    // The same file without its bad row is stored whole.
    let reply = app.post_csv("/api/v1/import", build(None)).await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        &reply.text[..reply.text.len().min(2000)]
    );
    assert_eq!(reply.body["rows"], 10_000);
    assert_eq!(reply.body["actors_created"], 2_000);
    assert_eq!(reply.body["resources_created"], 10_000);
    assert_eq!(reply.body["actors"].as_array().map(Vec::len), Some(2_000));
    let actors = all_items(&app, "/api/v1/actors?territory=21").await;
    assert_eq!(actors.len(), 2_000);
    let first = actors[0]["id"].as_str().expect("id");
    let theirs = app.get(&format!("/api/v1/actors/{first}/resources")).await;
    assert_eq!(theirs.body["items"].as_array().map(Vec::len), Some(5));
    let needs = all_items(&app, "/api/v1/resources?kind=need").await;
    assert_eq!(needs.len(), 6_000);
}

#[actix_web::test]
async fn every_bad_cell_is_reported_with_its_row_and_column() {
    let app = spawn_app().await;
    let (good, other) = (siret(11), siret(12));
    let cases: Vec<(String, Vec<(u64, &str)>)> = vec![
        (
            format!("{HEADER}\na,Scierie,,99.99Z,21231,,,,,,,\n"),
            vec![(2, "naf_code")],
        ),
        (
            format!("{HEADER}\na,Scierie,12345678901234,16.10A,21231,,,,,,,\n"),
            vec![(2, "siret")],
        ),
        (
            format!("{HEADER}\na,Scierie,123,16.10A,21231,,,,,,,\n"),
            vec![(2, "siret")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,00000,,,,,,,\n"),
            vec![(2, "commune_insee")],
        ),
        (
            format!("{HEADER}\na,,,16.10A,21231,,,,,,,\n"),
            vec![(2, "actor_name")],
        ),
        (
            format!(
                "{HEADER}\na,Scierie,{good},16.10A,21231,,,,,,,\nb,Menuiserie,{good},16.23Z,21231,,,,,,,\n"
            ),
            vec![(3, "siret")],
        ),
        (
            format!(
                "{HEADER}\na,Scierie,{good},16.10A,21231,,,,,,,\nb,Menuiserie,{other},16.23Z,21231,,,,,,,\nc,Autre,{good},16.10A,58194,,,,,,,\n"
            ),
            vec![(4, "siret")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,lots,t,year\n"),
            vec![(2, "quantity")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,-4,t,year\n"),
            vec![(2, "quantity")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,4,t,\n"),
            vec![(2, "quantity")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,4,t,fortnight\n"),
            vec![(2, "period")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,gift,material,Sciures,,,,\n"),
            vec![(2, "kind")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,,Sciures,,,,\n"),
            vec![(2, "category")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,,,,,\n"),
            vec![(2, "label")],
        ),
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,99 99 99,,,\n"),
            vec![(2, "ewc_code")],
        ),
        // Rows of one actor must agree.
        (
            format!(
                "{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,,,\na,Scierie,,23.51Z,21231,need,energy,Chaleur,,,,\n"
            ),
            vec![(3, "naf_code")],
        ),
        // A ragged row.
        (
            format!("{HEADER}\na,Scierie,,16.10A,21231\n"),
            vec![(2, "row")],
        ),
        // Only a header.
        (format!("{HEADER}\n"), vec![(1, "row")]),
        // The header itself.
        (
            format!("{HEADER},colour\na,Scierie,,16.10A,21231,,,,,,,,red\n"),
            vec![(1, "colour")],
        ),
        (
            "actor_ref,actor_name,naf_code\na,Scierie,16.10A\n".to_owned(),
            vec![(1, "commune_insee")],
        ),
        (
            "actor_name,commune_insee\nScierie,21231\n".to_owned(),
            vec![(1, "naf_code")],
        ),
        (String::new(), vec![(1, "actor_name")]),
    ];
    for (csv, expected) in cases {
        let reply = app.post_csv("/api/v1/import", csv.clone()).await;
        assert!(
            reply.status == 422,
            "{csv}\n→ {} {}",
            reply.status,
            reply.text
        );
        assert_rejected(&reply, &expected);
    }
    // Several bad rows are all reported, each once.
    let csv = format!(
        "{HEADER}\n\
         a,Scierie,,16.10A,21231,offer,material,Sciures,,1,t,year\n\
         b,Menuiserie,,99.99Z,21231,offer,material,Copeaux,,1,t,year\n\
         c,Fonderie,,24.51Z,21231,offer,material,Sables,,x,t,year\n\
         d,Laiterie,,10.51C,21231,need,material,Lait,,1,tons,year\n"
    );
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_rejected(&reply, &[(3, "naf_code"), (4, "quantity"), (5, "unit")]);
    assert_eq!(row_errors(&reply).len(), 3, "{}", reply.text);
    assert_nothing_stored(&app).await;
}

#[actix_web::test]
async fn a_siret_already_stored_is_refused_with_its_row() {
    let app = spawn_app().await;
    let taken = siret(21);
    let mut body = actor_body("Déjà là");
    body["siret"] = json!(taken);
    app.create_actor(body).await;
    let spaced = format!("{} {} {}", &taken[..3], &taken[3..9], &taken[9..]);
    let csv = format!(
        "{HEADER}\n\
         a,Nouvelle,,16.10A,21231,offer,material,Sciures,,1,t,year\n\
         b,Doublon,\"{spaced}\",16.10A,58194,offer,material,Copeaux,,1,t,year\n\
         b,Doublon,\"{spaced}\",16.10A,58194,need,energy,Chaleur,,1,MWh,year\n"
    );
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_rejected(&reply, &[(3, "siret")]);
    assert_eq!(row_errors(&reply), vec![(3, "siret".to_owned())]);
    let actors = all_items(&app, "/api/v1/actors").await;
    let names: Vec<&str> = actors.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, vec!["Déjà là"], "nothing of the file is stored");
    assert_eq!(app.get("/api/v1/resources").await.body["items"], json!([]));
}

#[actix_web::test]
async fn content_type_and_size_limits() {
    let app = spawn_with(|s| s.server.import_limit_bytes = 1000).await;
    let small = format!("{HEADER}\na,Scierie,,16.10A,21231,offer,material,Sciures,,1,t,year\n");
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/import"))
                .header("content-type", "application/json")
                .body(small.clone()),
        )
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    assert!(reply.content_type.starts_with("application/problem+json"));
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/import"))
                .body(small.clone()),
        )
        .await;
    assert_eq!(reply.status, 415, "no content type: {}", reply.text);
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/import"))
                .header("content-type", "text/csv; charset=utf-8")
                .body(small.clone()),
        )
        .await;
    assert_eq!(reply.status, 201, "a file under the limit: {}", reply.text);

    let mut big = format!("{HEADER}\n");
    for i in 0..40 {
        writeln!(
            big,
            "b{i},Établissement {i},,16.10A,21231,offer,material,Sciures,,1,t,year"
        )
        .expect("write");
    }
    assert!(big.len() > 1000);
    let reply = app.post_csv("/api/v1/import", big).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{}",
        reply.content_type
    );
    assert_eq!(
        all_items(&app, "/api/v1/actors").await.len(),
        1,
        "only the small file was stored"
    );
    assert_eq!(
        app.get("/api/v1/import").await.status,
        405,
        "the import is POST only"
    );
}

#[actix_web::test]
async fn the_json_body_limit_answers_413() {
    let app = spawn_with(|s| s.server.json_limit_bytes = 200).await;
    let reply = app.post("/api/v1/actors", &actor_body("Petit")).await;
    assert_eq!(reply.status, 201, "a body under the limit: {}", reply.text);
    let mut large = actor_body("Grand");
    large["address"] = json!("x".repeat(500));
    let reply = app.post("/api/v1/actors", &large).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{}",
        reply.content_type
    );
    let id = app.get("/api/v1/actors").await.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = app
        .patch(
            &format!("/api/v1/actors/{id}"),
            &json!({"address": "y".repeat(500)}),
        )
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    let reply = app
        .post(
            &format!("/api/v1/actors/{id}/resources"),
            &json!({"kind": "offer", "category": "material", "label": "z".repeat(500)}),
        )
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    // The CSV import keeps its own, larger limit.
    let csv = format!(
        "{HEADER}\na,Une scierie au nom assez long pour dépasser deux cents octets de corps,,16.10A,21231,offer,material,Sciures de chêne et de hêtre,03 01 05,1,t,year\n"
    );
    assert!(csv.len() > 200);
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// A file whose actors share offers and needs of a few kinds over nearby communes: substitutions,
/// latent receivers and pooling groups.
fn symbiosis_file() -> String {
    let communes = ["21231", "21054", "21425", "21154", "21617"];
    let lines = [
        ("16.10A", "offer", "material", "Sciure", "03 01 05", "400"),
        (
            "35.30Z",
            "need",
            "material",
            "Bois pour chaudière",
            "03 01 05",
            "300",
        ),
        (
            "22.22Z",
            "offer",
            "material",
            "Chutes de film",
            "07 02 13",
            "50",
        ),
        (
            "10.51A",
            "offer",
            "material",
            "Lactosérum",
            "02 05 01",
            "900",
        ),
        (
            "25.11Z",
            "offer",
            "material",
            "Chutes d'acier",
            "12 01 01",
            "120",
        ),
    ];
    let mut csv = format!("{HEADER}\n");
    for i in 0..30u64 {
        let (naf, kind, category, label, ewc, quantity) = lines[i as usize % lines.len()];
        let commune = communes[i as usize % communes.len()];
        for extra in 0..2 {
            writeln!(
                csv,
                "a{i},Site {i},{},{naf},{commune},{kind},{category},{label} {extra},{ewc},{quantity},t,year",
                siret(i)
            )
            .expect("write to a string");
        }
    }
    csv
}

/// What a detection shows, for comparing two databases: ids and scores of every synergy and group.
async fn detection_of(app: &TestApp) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = all_items(app, "/api/v1/synergies")
        .await
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["kind"].as_str().unwrap_or_default().to_owned(),
                format!("{:.12}", s["score"].as_f64().unwrap_or(f64::NAN)),
            )
        })
        .collect();
    out.sort();
    out
}

/// The same file imported into two fresh databases gives the same actor and resource ids, hence
/// identical synergy ids, scores and pooling groups; imported again into one of them, it gives new
/// ids (no clash) and a second set of actors.
#[actix_web::test]
async fn the_same_file_in_two_fresh_databases_gives_identical_synergies() {
    let (first, second) = (spawn_app().await, spawn_app().await);
    let csv = symbiosis_file();
    let ids = |reply: &Reply| reply.body["actors"].clone();
    let a = first.post_csv("/api/v1/import", csv.clone()).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let b = second.post_csv("/api/v1/import", csv.clone()).await;
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(ids(&a), ids(&b), "same actor and resource ids");
    let (seen_a, seen_b) = (detection_of(&first).await, detection_of(&second).await);
    assert!(
        seen_a.iter().any(|s| s.1 == "substitution") && seen_a.iter().any(|s| s.1 == "pooling"),
        "the file gives substitutions and groups: {seen_a:?}"
    );
    assert_eq!(seen_a, seen_b);

    // The SIRETs are taken now: the same rows without them import again under new ids.
    let without_siret: String = csv
        .lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            if cells.len() > 2 && cells[2] != "siret" {
                cells[2] = "";
            }
            cells.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let first_again = first
        .post_csv("/api/v1/import", without_siret.clone())
        .await;
    assert_eq!(first_again.status, 201, "{}", first_again.text);
    let again = first.post_csv("/api/v1/import", without_siret).await;
    assert_eq!(
        again.status, 201,
        "a second import of the same rows: {}",
        again.text
    );
    assert_ne!(ids(&first_again), ids(&again), "new ids, no clash");
    assert_eq!(all_items(&first, "/api/v1/actors").await.len(), 90);
}
