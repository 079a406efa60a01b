use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

async fn get_ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

/// Every child of a territory, following the cursor.
async fn children(app: &TestApp, code: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/territories/{code}/children?limit=100");
    for _ in 0..100 {
        let page = get_ok(app, &path).await;
        out.extend(page.body["items"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/territories/{code}/children?limit=100&cursor={cursor}")
            }
            None => return out,
        }
    }
    panic!("children of {code} do not end");
}

fn codes_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|t| t["code"].as_str().map(str::to_owned))
        .collect()
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str().map(str::to_owned))
        .collect()
}

fn assert_not_found(reply: &Reply) {
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{}",
        reply.content_type
    );
}

#[actix_web::test]
async fn the_reference_hierarchy() {
    let app = spawn_app().await;
    let cote_dor = get_ok(&app, "/api/v1/territories/21").await;
    assert_eq!(cote_dor.body["code"], "21");
    assert_eq!(cote_dor.body["kind"], "departement");
    assert_eq!(cote_dor.body["name"], "Côte-d'Or");
    assert_eq!(cote_dor.body["parent"], "R27");
    let population = cote_dor.body["population"].as_u64().unwrap_or_default();
    assert!(
        population > 500_000 && population < 600_000,
        "Côte-d'Or population {population}"
    );
    let (lat, lng) = (
        cote_dor.body["lat"].as_f64().unwrap_or_default(),
        cote_dor.body["lng"].as_f64().unwrap_or_default(),
    );
    assert!(
        (46.9..=48.1).contains(&lat) && (4.0..=5.6).contains(&lng),
        "centroid {lat},{lng} in Côte-d'Or"
    );

    let region = get_ok(&app, "/api/v1/territories/R27").await;
    assert_eq!(region.body["kind"], "region");
    assert_eq!(region.body["name"], "Bourgogne-Franche-Comté");
    assert_eq!(region.body["parent"], "FR");
    let deps = children(&app, "R27").await;
    let dep_codes = codes_of(&deps);
    for d in ["21", "58", "71", "89", "25"] {
        assert!(
            dep_codes.contains(&d.to_owned()),
            "R27 has {d}: {dep_codes:?}"
        );
    }
    assert_eq!(
        dep_codes.len(),
        8,
        "Bourgogne-Franche-Comté has eight départements"
    );
    assert!(
        deps.iter()
            .all(|d| d["kind"] == "departement" && d["parent"] == "R27")
    );
    let sum: u64 = deps.iter().filter_map(|d| d["population"].as_u64()).sum();
    assert_eq!(
        region.body["population"].as_u64(),
        Some(sum),
        "a région's population is its départements'"
    );

    // Côte-d'Or: its EPCI, then the communes that belong to none.
    let kids = children(&app, "21").await;
    let epcis: Vec<&Value> = kids.iter().filter(|t| t["kind"] == "epci").collect();
    assert!(!epcis.is_empty(), "the children of 21 include EPCI");
    assert!(
        kids.iter()
            .all(|t| t["kind"] == "epci" || t["kind"] == "commune")
    );
    let dijon_epci = app
        .app
        .reference
        .geo
        .commune("21231")
        .and_then(|c| c.epci.clone())
        .expect("Dijon has an EPCI");
    assert!(
        epcis.iter().any(|e| e["code"] == dijon_epci.as_str()),
        "{dijon_epci} among the EPCI of 21"
    );
    assert!(
        !codes_of(&kids).contains(&"21231".to_owned()),
        "Dijon is under its EPCI, not directly under 21"
    );

    let metropole = get_ok(&app, &format!("/api/v1/territories/{dijon_epci}")).await;
    assert_eq!(metropole.body["kind"], "epci");
    assert_eq!(metropole.body["parent"], "21");
    assert_eq!(dijon_epci.len(), 9);
    let members = children(&app, &dijon_epci).await;
    assert!(
        members.len() > 20,
        "Dijon Métropole has over twenty communes"
    );
    assert!(
        members
            .iter()
            .all(|c| c["kind"] == "commune" && c["parent"] == dijon_epci.as_str())
    );
    assert!(codes_of(&members).contains(&"21231".to_owned()));
    let member_population: u64 = members
        .iter()
        .filter_map(|c| c["population"].as_u64())
        .sum();
    assert_eq!(
        metropole.body["population"].as_u64(),
        Some(member_population)
    );

    let dijon = get_ok(&app, "/api/v1/territories/21231").await;
    assert_eq!(dijon.body["kind"], "commune");
    assert_eq!(dijon.body["name"], "Dijon");
    assert_eq!(dijon.body["parent"], dijon_epci.as_str());
    assert!(dijon.body["population"].as_u64().unwrap_or_default() > 150_000);
    assert!(
        children(&app, "21231").await.is_empty(),
        "a commune has no children"
    );

    let france = get_ok(&app, "/api/v1/territories/FR").await;
    assert_eq!(france.body["kind"], "country");
    assert_eq!(france.body["parent"], Value::Null);
    assert!(france.body["population"].as_u64().unwrap_or_default() > 60_000_000);
    let regions = children(&app, "FR").await;
    assert!(codes_of(&regions).contains(&"R27".to_owned()));
    assert!(regions.iter().all(|r| r["kind"] == "region"));

    for unknown in ["XX", "R99", "99999", "123456789", "00"] {
        assert_not_found(&app.get(&format!("/api/v1/territories/{unknown}")).await);
        assert_not_found(
            &app.get(&format!("/api/v1/territories/{unknown}/children"))
                .await,
        );
    }
    assert_field_error(
        &app.get("/api/v1/territories/21/children?limit=0").await,
        "limit",
    );
    assert_field_error(
        &app.get("/api/v1/territories/21/children?cursor=zz").await,
        "cursor",
    );
}

#[actix_web::test]
async fn a_custom_zone_from_departements() {
    let app = spawn_app().await;
    let deps = ["21", "58", "71", "89"];
    let reply = app
        .post(
            "/api/v1/territories",
            &json!({"code": "27-BOURGOGNE", "name": "Bourgogne", "departements": deps}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.location.as_deref(),
        Some("/api/v1/territories/27-BOURGOGNE")
    );
    assert_eq!(reply.body["kind"], "zone");

    let zone = get_ok(&app, "/api/v1/territories/27-BOURGOGNE").await;
    assert_eq!(zone.body["code"], "27-BOURGOGNE");
    assert_eq!(zone.body["kind"], "zone");
    assert_eq!(zone.body["name"], "Bourgogne");
    let expected_communes: usize = deps
        .iter()
        .map(|d| app.app.reference.geo.communes_of_departement(d).len())
        .sum();
    let communes = zone.body["communes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(communes.len(), expected_communes);
    assert!(
        communes.len() > 1900,
        "Bourgogne has some two thousand communes: {}",
        communes.len()
    );
    assert!(communes.contains(&json!("21231")) && communes.contains(&json!("58194")));
    let population = zone.body["population"].as_u64().unwrap_or_default();
    assert!(
        (1_500_000..=1_700_000).contains(&population),
        "Bourgogne population {population}"
    );
    let mut sum = 0;
    for d in deps {
        sum += get_ok(&app, &format!("/api/v1/territories/{d}")).await.body["population"]
            .as_u64()
            .unwrap_or_default();
    }
    assert_eq!(
        population, sum,
        "the zone's population is its four départements'"
    );
    assert_eq!(
        children(&app, "27-BOURGOGNE").await.len(),
        expected_communes
    );

    let listed = get_ok(&app, "/api/v1/territories").await;
    assert_eq!(listed.body["next_cursor"], Value::Null);
    let listed = listed.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(codes_of(&listed), vec!["27-BOURGOGNE"]);
}

#[actix_web::test]
async fn actors_within_a_zone() {
    let app = spawn_app().await;
    let zone = json!({"code": "27-BOURGOGNE", "name": "Bourgogne", "departements": ["21", "58", "71", "89"]});
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    let places = [
        ("21231", "Chaufferie de Dijon"),
        ("58194", "Laiterie de Nevers"),
        ("89024", "Scierie d'Auxerre"),
        ("25056", "Horlogerie de Besançon"),
        ("69123", "Chimie de Lyon"),
    ];
    let mut ids = Vec::new();
    for (commune, name) in places {
        ids.push(
            app.create_actor(json!({"name": name, "naf_code": "16.10A", "commune_insee": commune}))
                .await,
        );
    }
    app.create_resource(
        &ids[0],
        json!({"kind": "offer", "category": "energy", "label": "Chaleur"}),
    )
    .await;
    app.create_resource(
        &ids[3],
        json!({"kind": "offer", "category": "energy", "label": "Chaleur franc-comtoise"}),
    )
    .await;

    let expected = vec![
        "Chaufferie de Dijon",
        "Laiterie de Nevers",
        "Scierie d'Auxerre",
    ];
    let within = get_ok(&app, "/api/v1/territories/27-BOURGOGNE/actors").await;
    assert_eq!(names(&within), expected);
    let filtered = get_ok(&app, "/api/v1/actors?territory=27-BOURGOGNE").await;
    assert_eq!(names(&filtered), expected);
    let paged = get_ok(&app, "/api/v1/territories/27-BOURGOGNE/actors?limit=2").await;
    assert_eq!(names(&paged), expected[..2]);
    let text = get_ok(&app, "/api/v1/territories/27-BOURGOGNE/actors?q=nevers").await;
    assert_eq!(names(&text), vec!["Laiterie de Nevers"]);
    let resources = get_ok(&app, "/api/v1/resources?territory=27-BOURGOGNE").await;
    let labels: Vec<&str> = resources.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["label"].as_str())
        .collect();
    assert_eq!(labels, vec!["Chaleur"]);

    // The reference levels answer on the same route.
    let region = get_ok(&app, "/api/v1/territories/R27/actors").await;
    assert_eq!(names(&region).len(), 4);
    let commune = get_ok(&app, "/api/v1/territories/69123/actors").await;
    assert_eq!(names(&commune), vec!["Chimie de Lyon"]);
    assert_not_found(&app.get("/api/v1/territories/NOWHERE/actors").await);

    // A zone of two communes.
    let small = json!({"code": "dijon_nevers", "name": "Dijon et Nevers", "communes": ["58194", "21231", "21231"]});
    let created = app.post("/api/v1/territories", &small).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["communes"],
        json!(["21231", "58194"]),
        "sorted, without duplicates"
    );
    let kids = children(&app, "dijon_nevers").await;
    assert_eq!(codes_of(&kids), vec!["21231", "58194"]);
    assert!(kids.iter().all(|c| c["kind"] == "commune"));
    let two = get_ok(&app, "/api/v1/actors?territory=dijon_nevers").await;
    assert_eq!(
        names(&two),
        vec!["Chaufferie de Dijon", "Laiterie de Nevers"]
    );
}

#[actix_web::test]
async fn zone_rules_conflicts_and_deletion() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"code": "21", "name": "Pas une zone", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "R27", "name": "Pas une zone", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "21231", "name": "Pas une zone", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "FR", "name": "Pas une zone", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "a zone", "name": "Espace", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "", "name": "Vide", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "Z".repeat(65), "name": "Long", "communes": ["21231"]}),
            "code",
        ),
        (
            json!({"code": "Z1", "name": " ", "communes": ["21231"]}),
            "name",
        ),
        (json!({"code": "Z1", "name": "Rien"}), "communes"),
        (
            json!({"code": "Z1", "name": "Mauvaise", "communes": ["99999"]}),
            "communes[0]",
        ),
        (
            json!({"code": "Z1", "name": "Mauvaise", "communes": ["21231", "2123"]}),
            "communes[1]",
        ),
        (
            json!({"code": "Z1", "name": "Mauvais", "departements": ["21", "00"]}),
            "departements[1]",
        ),
        (
            json!({"code": "Z1", "name": "Type", "communes": "21231"}),
            "communes",
        ),
        (
            json!({"code": "Z1", "name": "Champ", "communes": ["21231"], "epci": ["242100410"]}),
            "epci",
        ),
        (json!({"name": "Sans code", "communes": ["21231"]}), "code"),
    ];
    for (body, field) in cases {
        assert_field_error(&app.post("/api/v1/territories", &body).await, field);
    }
    let none = get_ok(&app, "/api/v1/territories").await;
    assert_eq!(
        none.body,
        json!({"items": [], "next_cursor": null}),
        "refused zones are not stored"
    );

    let zone = json!({"code": "27-BOURGOGNE", "name": "Bourgogne", "departements": ["21", "58", "71", "89"]});
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    let duplicate = app
        .post(
            "/api/v1/territories",
            &json!({"code": "27-BOURGOGNE", "name": "Encore", "communes": ["21231"]}),
        )
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert!(
        duplicate
            .content_type
            .starts_with("application/problem+json")
    );
    let kept = get_ok(&app, "/api/v1/territories/27-BOURGOGNE").await;
    assert_eq!(kept.body["name"], "Bourgogne", "the first zone is kept");

    // An actor in the zone survives its deletion.
    let actor = app
        .create_actor(json!({"name": "Dijonnais", "naf_code": "16.10A", "commune_insee": "21231"}))
        .await;
    let deleted = app.delete("/api/v1/territories/27-BOURGOGNE").await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_not_found(&app.get("/api/v1/territories/27-BOURGOGNE").await);
    assert_not_found(&app.get("/api/v1/territories/27-BOURGOGNE/children").await);
    assert_not_found(&app.get("/api/v1/actors?territory=27-BOURGOGNE").await);
    assert_not_found(&app.delete("/api/v1/territories/27-BOURGOGNE").await);
    assert_eq!(
        app.get(&format!("/api/v1/actors/{actor}")).await.status,
        200
    );
    // Reference territories cannot be deleted.
    assert_not_found(&app.delete("/api/v1/territories/21").await);
    assert_eq!(app.get("/api/v1/territories/21").await.status, 200);
    // The code is free again.
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
}

#[actix_web::test]
async fn every_commune_is_reachable_from_its_departement() {
    // An EPCI may straddle two départements (CA Beaune Côte et Sud spans 21 and 71): walking down
    // from either département must still reach each of its own communes.
    let app = spawn_app().await;
    for dep in ["21", "58", "71", "89"] {
        let mut reached = Vec::new();
        for child in children(&app, dep).await {
            let code = child["code"].as_str().unwrap_or_default().to_owned();
            if child["kind"] == "epci" {
                reached.extend(codes_of(&children(&app, &code).await));
            } else {
                reached.push(code);
            }
        }
        let mut missing: Vec<String> = app
            .app
            .reference
            .geo
            .communes_of_departement(dep)
            .into_iter()
            .filter(|c| !reached.contains(c))
            .collect();
        missing.sort();
        assert!(
            missing.is_empty(),
            "communes of {dep} not reachable from its children: {missing:?}"
        );
    }
}
