//! Answers a facilitator can read (issue 12): the AFME impact without a landfill row, AFME CSV error
//! lines after blank lines, labels and CSV exports in the reader's language, code search by trade
//! words, readable graph results, cursors on every list, and statuses hidden from keyless readers.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_with};
use symbiose::auth::Role;

const DIJON: &str = "21231";
const KM_PER_DEGREE: f64 = 111.2;
const HEADER: &str = "territory,year,flow,family,partner,value,unit,uncertainty,source,note";

fn near(app: &TestApp, commune: &str, east_km: f64, north_km: f64) -> (f64, f64) {
    let c = app
        .app
        .reference
        .geo
        .commune(commune)
        .expect("known commune");
    (
        c.lat + north_km / KM_PER_DEGREE,
        c.lng + east_km / (KM_PER_DEGREE * c.lat.to_radians().cos()),
    )
}

async fn actor_at(app: &TestApp, name: &str, naf: &str, east_km: f64, north_km: f64) -> String {
    let (lat, lng) = near(app, DIJON, east_km, north_km);
    app.create_actor(
        json!({"name": name, "naf_code": naf, "commune_insee": DIJON,
                           "lat": lat, "lng": lng, "share_with_partners": true}),
    )
    .await
}

fn tonnes(value: f64) -> Value {
    json!({"value": value, "unit": "t", "period": "year"})
}

/// A sawmill offering sawdust (03 01 05); returns (actor, offer).
async fn sawmill(app: &TestApp, name: &str, east_km: f64, t: f64) -> (String, String) {
    let a = actor_at(app, name, "16.10A", east_km, 0.0).await;
    let r = app
        .create_resource(
            &a,
            json!({"kind": "offer", "category": "material", "label": "Sciure de résineux",
                   "ewc_code": "03 01 05", "quantity": tonnes(t)}),
        )
        .await;
    (a, r["id"].as_str().expect("id").to_owned())
}

/// A boiler house needing wood that accepts sawdust; returns (actor, need).
async fn boiler(app: &TestApp, name: &str, east_km: f64, t: f64) -> (String, String) {
    let a = actor_at(app, name, "35.30Z", east_km, 1.0).await;
    let r = app
        .create_resource(
            &a,
            json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
                   "label": "Combustible bois", "accepted_ewc": ["03 01 05"], "quantity": tonnes(t)}),
        )
        .await;
    (a, r["id"].as_str().expect("id").to_owned())
}

async fn ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

async fn get_lang(app: &TestApp, path: &str, lang: &str) -> Reply {
    let reply = app
        .send(
            app.client
                .get(app.url(path))
                .header("accept-language", lang),
        )
        .await;
    assert_eq!(reply.status, 200, "GET {path} ({lang}): {}", reply.text);
    reply
}

fn items(reply: &Reply) -> Vec<Value> {
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

// -------------------------------------------------------------------------------------------------
// 1. AFME impact without a landfill row

#[actix_web::test]
async fn impact_without_a_landfill_row_reports_the_landfill_as_unknown_never_negative() {
    let app = spawn_app().await;
    sawmill(&app, "Scierie A", 0.0, 500.0).await;
    boiler(&app, "Chaufferie B", 3.0, 800.0).await;
    let list = ok(&app, "/api/v1/synergies?territory=21&kind=substitution").await;
    let synergies = items(&list);
    assert_eq!(synergies.len(), 1, "{}", list.text);
    let id = synergies[0]["id"].as_str().expect("id").to_owned();
    for status in ["proposed", "in_study", "implemented"] {
        let r = app
            .patch(
                &format!("/api/v1/synergies/{id}"),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // an account with imports, exports and extraction, but no DPO_LANDFILL row
    let account = format!(
        "{HEADER}\n21,2015,DE,agricultural_food,,1000,t,,,\n21,2015,IMP,agricultural_food,rest_of_france,3000,t,,,\n21,2015,EXP,all,,500,t,,,\n"
    );
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", account)
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);

    let reply = ok(&app, "/api/v1/territories/21/afme/impact?year=2015").await;
    let landfill = &reply.body["implemented"]["dpo_landfill"];
    assert_eq!(landfill["before"], Value::Null, "{landfill}");
    assert_eq!(
        landfill["after"],
        Value::Null,
        "unknown, not negative: {landfill}"
    );
    assert_eq!(landfill["percent"], Value::Null, "{landfill}");
    // the change itself is known: 500 t of sawdust × 0.5 diverted share (impact_factors.csv)
    let delta = landfill["delta"].as_f64().expect("delta");
    assert!((delta + 250.0).abs() < 1e-6, "delta {delta}");
    let notes: Vec<&str> = reply.body["implemented"]["notes"]
        .as_array()
        .map(|n| n.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        notes.iter().any(|n| n.contains("DPO_LANDFILL unknown")),
        "{notes:?}"
    );
    // IMP is known: 3000 t before
    assert_eq!(reply.body["implemented"]["imp"]["before"], json!(3000.0));
}

// -------------------------------------------------------------------------------------------------
// 2. AFME CSV errors name the physical line

#[actix_web::test]
async fn afme_import_errors_name_the_physical_line_after_empty_lines() {
    let app = spawn_app().await;
    // 1 header, 2 fine, 3 empty, 4 bad flow, 5 empty, 6 bad value
    let text = format!(
        "{HEADER}\n21,2015,DE,all,,1000,t,,,\n\n21,2015,XX,all,,10,t,,,\n\n21,2015,IMP,all,,abc,t,,,\n"
    );
    let reply = app
        .post_csv("/api/v1/territories/21/afme/import", text)
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let rows: Vec<(u64, String)> = reply.body["errors"]
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
        .unwrap_or_default();
    assert_eq!(
        rows,
        vec![(4, "flow".to_owned()), (6, "value".to_owned())],
        "{}",
        reply.text
    );
    // a row for another territory, after a blank line, is named at its line too (the API's prescan)
    let other = format!("{HEADER}\n21,2015,DE,all,,1000,t,,,\n\n\n71,2015,DE,all,,5,t,,,\n");
    let reply = app
        .post_csv("/api/v1/territories/21/afme/import", other)
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["row"], 5, "{}", reply.text);
    assert_eq!(
        reply.body["errors"][0]["field"], "territory",
        "{}",
        reply.text
    );
}

// -------------------------------------------------------------------------------------------------
// 3–4. Labels and CSV exports in the reader's language

async fn small_account(app: &TestApp) {
    let account = format!(
        "{HEADER}\n21,2015,DE,construction_materials,,1200.5,t,,UNICEM,\n21,2015,IMP,fossil_fuels,abroad,300,t,,,\n21,2015,EXP,all,rest_of_france,100,t,,,\n21,2015,DPO_LANDFILL,all,,50,t,,,\n"
    );
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", account)
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
}

fn node_names(reply: &Reply) -> Vec<String> {
    reply.body["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|n| n["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn afme_indicator_and_sankey_labels_follow_accept_language() {
    let app = spawn_app().await;
    small_account(&app).await;
    let path = "/api/v1/territories/21/afme?year=2015";
    // French by default
    let fr = ok(&app, path).await;
    assert_eq!(
        fr.body["indicators"]["dmc"]["label"],
        "consommation intérieure apparente de matières (DMC)"
    );
    assert_eq!(fr.body["indicators"]["imp"]["label"], "importations");
    assert_eq!(
        fr.body["indicators"]["dpo_parts"][0]["label"],
        "déchets mis en décharge"
    );
    let en = get_lang(&app, path, "en-GB,en;q=0.9,fr;q=0.5").await;
    assert_eq!(
        en.body["indicators"]["dmc"]["label"],
        "domestic material consumption"
    );
    assert_eq!(en.body["indicators"]["imp"]["label"], "imports");
    // the figures do not depend on the language
    assert_eq!(
        fr.body["indicators"]["dmc"]["value"],
        en.body["indicators"]["dmc"]["value"]
    );
    let explicit_fr = get_lang(&app, path, "fr-FR").await;
    assert_eq!(explicit_fr.body["indicators"], fr.body["indicators"]);
    let unsupported = get_lang(&app, path, "de-DE").await;
    assert_eq!(unsupported.body["indicators"], fr.body["indicators"]);

    let sankey = "/api/v1/territories/21/afme/sankey?year=2015";
    let fr = get_lang(&app, sankey, "fr").await;
    let names = node_names(&fr);
    for name in [
        "Extraction intérieure (DE)",
        "Importations (IMP) — étranger",
        "Exportations (EXP) — reste de la France",
        "Déchets mis en décharge (DPO)",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let en = get_lang(&app, sankey, "en").await;
    let names = node_names(&en);
    for name in [
        "Domestic extraction (DE)",
        "Imports (IMP) — abroad",
        "Exports (EXP) — rest of France",
        "Waste landfilled (DPO)",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert_eq!(fr.body["links"], en.body["links"], "same diagram");
}

#[actix_web::test]
async fn afme_csv_export_follows_the_readers_convention_and_round_trips() {
    let app = spawn_app().await;
    small_account(&app).await;
    let path = "/api/v1/territories/21/afme.csv?year=2015";
    let fr = ok(&app, path).await;
    assert!(fr.text.starts_with('\u{feff}'), "BOM: {:?}", &fr.text[..20]);
    let lines: Vec<&str> = fr.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "territory;year;flow;family;partner;value;unit;uncertainty;source;note;family_label"
    );
    assert!(
        lines.contains(
            &"21;2015;DE;construction_materials;;1200,5;t;;UNICEM;;Matériaux de construction"
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"21;2015;IMP;fossil_fuels;abroad;300;t;;;;Combustibles fossiles"),
        "{lines:?}"
    );
    let en = get_lang(&app, path, "en").await;
    assert!(!en.text.starts_with('\u{feff}'));
    let lines: Vec<&str> = en.text.lines().collect();
    assert_eq!(
        lines[0],
        "territory,year,flow,family,partner,value,unit,uncertainty,source,note,family_label"
    );
    assert!(
        lines.contains(
            &"21,2015,DE,construction_materials,,1200.5,t,,UNICEM,,Construction materials"
        ),
        "{lines:?}"
    );
    // both re-import as they are, to the same account
    let before = ok(&app, "/api/v1/territories/21/afme?year=2015").await;
    for text in [fr.text.clone(), en.text.clone()] {
        let again = app
            .post_csv("/api/v1/territories/21/afme/import", text)
            .await;
        assert_eq!(again.status, 201, "{}", again.text);
        let after = ok(&app, "/api/v1/territories/21/afme?year=2015").await;
        assert_eq!(after.body["rows"], before.body["rows"]);
    }
}

// -------------------------------------------------------------------------------------------------
// 6. Code search reaching a facilitator's words

fn codes_of(reply: &Reply) -> Vec<String> {
    items(reply)
        .iter()
        .filter_map(|i| i["code"].as_str().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn trade_words_find_their_naf_and_ewc_codes() {
    let app = spawn_app().await;
    // « scierie » is in no NAF label: the trade-word table leads to 16.10 « Sciage et rabotage du bois »
    for q in ["scierie", "Scierie", "SCIERIES"] {
        let reply = ok(&app, &format!("/api/v1/codes/naf?q={q}")).await;
        let codes = codes_of(&reply);
        assert_eq!(
            codes.first().map(String::as_str),
            Some("16.10"),
            "{q}: {codes:?}"
        );
        assert!(codes.contains(&"16.10A".to_owned()), "{q}: {codes:?}");
    }
    // « fromagerie »: 10.51 « Exploitation de laiteries et fabrication de fromage »
    let reply = ok(&app, "/api/v1/codes/naf?q=fromagerie").await;
    let codes = codes_of(&reply);
    assert_eq!(
        codes.first().map(String::as_str),
        Some("10.51"),
        "{codes:?}"
    );
    // by stem too, without the table: « fromages » finds the label's « fromage »
    let reply = ok(&app, "/api/v1/codes/naf?q=fromages").await;
    assert!(
        codes_of(&reply).contains(&"10.51".to_owned()),
        "{}",
        reply.text
    );
    // « lactosérum » (whey), accents and case ignored: the dairy sub-chapter 02 05
    for q in ["lactos%C3%A9rum", "LACTOSERUM"] {
        let reply = ok(&app, &format!("/api/v1/codes/ewc?q={q}")).await;
        let codes = codes_of(&reply);
        assert_eq!(codes[..2], ["020501", "020599"], "{q}: {codes:?}");
        assert!(
            !codes.contains(&"020502".to_owned()),
            "02 05 02 is sludge, not whey: {codes:?}"
        );
    }
    // nothing invented for a word nobody uses
    let none = ok(&app, "/api/v1/codes/ewc?q=zzzyx").await;
    assert!(items(&none).is_empty(), "{}", none.text);
}

// -------------------------------------------------------------------------------------------------
// 9. Keyless readers do not see synergy statuses

#[actix_web::test]
async fn keyless_readers_do_not_see_synergy_statuses() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let (sawmill_actor, _) = sawmill(&app, "Scierie A", 0.0, 500.0).await;
    boiler(&app, "Chaufferie B", 3.0, 800.0).await;
    let list = ok(&app, "/api/v1/synergies?territory=21").await;
    let id = items(&list)[0]["id"].as_str().expect("id").to_owned();
    let r = app
        .patch(
            &format!("/api/v1/synergies/{id}"),
            &json!({"status": "proposed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let partner = app.key("portail", Role::Partner, &[]);
    for path in [
        "/api/v1/synergies?territory=21".to_owned(),
        format!("/api/v1/actors/{sawmill_actor}/synergies"),
        format!("/api/v1/synergies/{id}"),
    ] {
        // key holders see it
        let with_key = app
            .call(Some(&partner), reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(with_key.status, 200, "{}", with_key.text);
        assert!(
            with_key.text.contains("\"status\":\"proposed\""),
            "{path}: {}",
            with_key.text
        );
        // keyless readers do not: no `status` field anywhere
        let keyless = app.call(None, reqwest::Method::GET, &path, None).await;
        assert_eq!(keyless.status, 200, "{}", keyless.text);
        assert!(keyless.text.contains(&id), "{path}: {}", keyless.text);
        assert!(
            !keyless.text.contains("\"status\""),
            "{path}: {}",
            keyless.text
        );
        assert!(
            !keyless.text.contains("proposed"),
            "{path}: {}",
            keyless.text
        );
    }
    // What is made of statuses and of what facilitators wrote needs a key: history, notes, KPIs
    // (counted by status) and the AFME impact (implemented and proposed synergies). A partner key
    // reads them.
    for path in [
        format!("/api/v1/synergies/{id}/history"),
        format!("/api/v1/synergies/{id}/notes"),
        "/api/v1/territories/21/kpis".to_owned(),
        "/api/v1/territories/21/kpis?format=csv".to_owned(),
        "/api/v1/territories/21/afme/impact".to_owned(),
    ] {
        let keyless = app.call(None, reqwest::Method::GET, &path, None).await;
        assert_eq!(keyless.status, 401, "{path}: {}", keyless.text);
        assert!(
            keyless.content_type.starts_with("application/problem+json"),
            "{path}: {}",
            keyless.content_type
        );
        assert!(!keyless.text.contains("proposed"), "{}", keyless.text);
        let with_key = app
            .call(Some(&partner), reqwest::Method::GET, &path, None)
            .await;
        // The impact needs an account, which this territory lacks: 404, not 401.
        let expected = if path.ends_with("/impact") { 404 } else { 200 };
        assert_eq!(with_key.status, expected, "{path}: {}", with_key.text);
    }
    // The OpenAPI document says so: those operations need a key even with `auth.public_read`, the
    // other reads take one optionally.
    let doc = ok(&app, "/api/v1/openapi.json").await;
    let security = |path: &str| doc.body["paths"][path]["get"]["security"].clone();
    for path in [
        "/api/v1/synergies/{id}/history",
        "/api/v1/synergies/{id}/notes",
        "/api/v1/territories/{code}/kpis",
        "/api/v1/territories/{code}/afme/impact",
    ] {
        assert_eq!(security(path), json!([{"bearer": []}]), "{path}");
    }
    assert_eq!(
        security("/api/v1/synergies/{id}"),
        json!([{}, {"bearer": []}])
    );
}

// -------------------------------------------------------------------------------------------------
// 5. The AFME import format is documented and linked from the OpenAPI document

#[actix_web::test]
async fn the_afme_import_operation_links_its_format_document() {
    let app = spawn_app().await;
    let doc = ok(&app, "/api/v1/openapi.json").await;
    let op = &doc.body["paths"]["/api/v1/territories/{code}/afme/import"]["post"];
    let text = format!("{} {}", op["summary"], op["description"]);
    assert!(text.contains("docs/AFME_IMPORT.md"), "{text}");
    let file = std::fs::read_to_string("docs/AFME_IMPORT.md").expect("docs/AFME_IMPORT.md");
    for column in [
        "territory",
        "year",
        "flow",
        "family",
        "partner",
        "value",
        "unit",
        "uncertainty",
    ] {
        assert!(
            file.contains(&format!("| `{column}` |")),
            "{column} documented"
        );
    }
}

// -------------------------------------------------------------------------------------------------
// 7. Readable graph answers: names beside ids, class labels in the reader's language, pooling
//    explanations

/// A sawmill (A) → a panel maker that takes wood and gives sawdust (B) → boilers (C, D); B, C and D
/// need wood within a few km of each other (a pooling group). D did not consent to be shown.
struct Network {
    sawmill: String,
    panels: String,
    hidden: String,
}

const HIDDEN_NAME: &str = "Chaufferie Secrète Dupont";

async fn network(app: &TestApp) -> Network {
    let (sawmill, _) = sawmill(app, "Scierie Amont", 0.0, 500.0).await;
    let (panels, _) = boiler(app, "Panneaux Milieu", 2.0, 400.0).await;
    app.create_resource(
        &panels,
        json!({"kind": "offer", "category": "material", "label": "Sciure de ponçage",
               "ewc_code": "03 01 05", "quantity": tonnes(300.0)}),
    )
    .await;
    boiler(app, "Chaufferie Aval", 4.0, 250.0).await;
    let (lat, lng) = near(app, DIJON, 3.0, 2.0);
    let hidden = app
        .create_actor(
            json!({"name": HIDDEN_NAME, "naf_code": "35.30Z", "commune_insee": DIJON,
                             "lat": lat, "lng": lng, "share_with_partners": false}),
        )
        .await;
    app.create_resource(
        &hidden,
        json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
               "label": "Combustible bois", "accepted_ewc": ["03 01 05"], "quantity": tonnes(150.0)}),
    )
    .await;
    Network {
        sawmill,
        panels,
        hidden,
    }
}

fn names_of(parties: &Value) -> Vec<(String, String)> {
    parties
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["actor_id"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn pooling_groups_chains_and_hubs_name_their_actors_in_the_readers_language() {
    let app = spawn_app().await;
    let n = network(&app).await;
    let pooling = "/api/v1/synergies?territory=21&kind=pooling";

    // French (the default): the class label, the members' names, one sentence.
    let fr = ok(&app, pooling).await;
    let groups = items(&fr);
    let wood = groups
        .iter()
        .find(|g| g["key"] == "material/biomass/wood")
        .unwrap_or_else(|| panic!("a wood pooling group: {}", fr.text));
    assert_eq!(wood["label"], "Bois", "{wood}");
    assert_eq!(wood["class_label"], "Bois", "{wood}");
    let members: Vec<String> = wood["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["actor_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let parties = names_of(&wood["parties"]);
    assert_eq!(
        parties.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        members,
        "parties follow members"
    );
    let names: Vec<&str> = parties.iter().map(|(_, name)| name.as_str()).collect();
    for name in ["Panneaux Milieu", "Chaufferie Aval", HIDDEN_NAME] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let sentence = wood["explanation_fr"].as_str().unwrap_or_default();
    assert!(
        sentence.starts_with(&format!("{} entreprises à moins de ", members.len()))
            && sentence.contains("km les unes des autres déclarent un besoin de bois")
            && sentence.contains(" t/an au total")
            && sentence.ends_with(": achat groupé ou approvisionnement mutualisé possible."),
        "{sentence}"
    );
    let english = wood["explanation_en"].as_str().unwrap_or_default();
    assert!(
        english.contains("companies less than") && english.contains("declare a need for wood"),
        "{english}"
    );
    // The same group in English, and one synergy read alone.
    let en = get_lang(&app, pooling, "en").await;
    let wood_en = items(&en)
        .into_iter()
        .find(|g| g["id"] == wood["id"])
        .expect("the same group");
    assert_eq!(wood_en["label"], "Wood");
    assert_eq!(wood_en["explanation_fr"], wood["explanation_fr"]);
    let id = wood["id"].as_str().unwrap_or_default();
    let alone = get_lang(&app, &format!("/api/v1/synergies/{id}"), "en").await;
    assert_eq!(alone.body["class_label"], "Wood", "{}", alone.text);
    assert_eq!(names_of(&alone.body["parties"]), parties);

    // Chains: A → B → C with names on every link and the class label of what passes.
    let chains = get_lang(&app, "/api/v1/territories/21/chains", "en").await;
    let list = chains.body["chains"]["chains"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let chain = list
        .iter()
        .find(|c| c["actors"][0] == n.sawmill.as_str() && c["actors"][1] == n.panels.as_str())
        .unwrap_or_else(|| panic!("a chain sawmill → panels → …: {}", chains.text));
    let chain_names = names_of(&chain["parties"]);
    assert_eq!(chain_names[0].1, "Scierie Amont");
    assert_eq!(chain_names[1].1, "Panneaux Milieu");
    assert_eq!(
        chain_names.len(),
        chain["actors"].as_array().map_or(0, Vec::len)
    );
    let hop = &chain["hops"][0];
    assert_eq!(hop["from"]["name"], "Scierie Amont", "{hop}");
    assert_eq!(hop["to"]["name"], "Panneaux Milieu", "{hop}");
    assert_eq!(hop["from_actor"], n.sawmill.as_str());
    assert_eq!(hop["class_label"], "Wood", "{hop}");
    let fr_chains = ok(&app, "/api/v1/territories/21/chains").await;
    assert!(
        fr_chains.text.contains("\"class_label\":\"Bois\""),
        "{}",
        fr_chains.text
    );

    // Hubs carry names too.
    let hubs = ok(&app, "/api/v1/territories/21/hubs").await;
    let hub = items(&hubs)
        .into_iter()
        .find(|h| h["actor_id"] == n.panels.as_str())
        .unwrap_or_else(|| panic!("the panel maker is a hub: {}", hubs.text));
    assert_eq!(hub["name"], "Panneaux Milieu");

    // A partner reads the same answers with the hidden actor's label, never its name.
    let partner = app.key("portail", Role::Partner, &[]);
    for path in [
        pooling.to_owned(),
        format!("/api/v1/synergies/{id}"),
        "/api/v1/territories/21/chains".to_owned(),
        "/api/v1/territories/21/hubs".to_owned(),
        format!("/api/v1/actors/{}/synergies", n.panels),
    ] {
        let reply = app
            .call(Some(&partner), reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        for secret in ["Secrète", "Secrete", "Dupont", n.hidden.as_str()] {
            assert!(
                !reply.text.contains(secret),
                "{path} shows {secret}: {}",
                reply.text
            );
        }
        if !path.contains("/hubs") {
            assert!(
                reply.text.contains("Établissement anonyme"),
                "{path}: {}",
                reply.text
            );
        }
        assert!(
            reply.text.contains("Panneaux Milieu"),
            "{path}: {}",
            reply.text
        );
    }
}

// -------------------------------------------------------------------------------------------------
// 8. Cursors on every list: custom zones and hubs

/// Every item of a paged list, following `next_cursor` from pages of `limit`.
async fn follow(app: &TestApp, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let first = format!("{path}{sep}limit={limit}");
    let mut page = ok(app, &first).await;
    let mut all = Vec::new();
    loop {
        let got = items(&page);
        assert!(got.len() <= limit, "{}", page.text);
        all.extend(got);
        let Some(next) = page.body["next_cursor"].as_str().map(str::to_owned) else {
            break;
        };
        page = ok(app, &format!("{first}&cursor={next}")).await;
    }
    all
}

#[actix_web::test]
async fn zones_and_hubs_are_paged_with_cursors() {
    let app = spawn_app().await;
    for (code, commune) in [("Z-A", "21231"), ("Z-B", "21054"), ("Z-C", "58194")] {
        let zone = json!({"code": code, "name": code, "communes": [commune]});
        assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    }
    let first = ok(&app, "/api/v1/territories?limit=2").await;
    assert_eq!(items(&first).len(), 2, "{}", first.text);
    assert!(first.body["next_cursor"].is_string(), "{}", first.text);
    let zones: Vec<Value> = follow(&app, "/api/v1/territories", 2).await;
    let codes: Vec<&str> = zones.iter().filter_map(|z| z["code"].as_str()).collect();
    assert_eq!(codes, ["Z-A", "Z-B", "Z-C"]);
    let whole = ok(&app, "/api/v1/territories").await;
    assert_eq!(whole.body["next_cursor"], Value::Null);
    assert_eq!(items(&whole).len(), 3);

    network(&app).await;
    let hubs = follow(&app, "/api/v1/territories/21/hubs", 2).await;
    assert!(hubs.len() >= 4, "{hubs:?}");
    let ranks: Vec<u64> = hubs.iter().filter_map(|h| h["rank"].as_u64()).collect();
    assert_eq!(ranks, (1..=hubs.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        items(&ok(&app, "/api/v1/territories/21/hubs?limit=500").await),
        hubs
    );

    for path in ["/api/v1/territories", "/api/v1/territories/21/hubs"] {
        crate::helpers::assert_field_error(&app.get(&format!("{path}?limit=0")).await, "limit");
        crate::helpers::assert_field_error(
            &app.get(&format!("{path}?cursor=forged")).await,
            "cursor",
        );
    }
}
