use serde_json::json;

use crate::helpers::{actor_body, assert_field_error, spawn_app};

#[actix_web::test]
async fn create_read_update_delete_an_actor() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/v1/actors",
            &json!({
                "name": "Scierie du Morvan",
                "siret": "732 829 320 00074",
                "naf_code": "16.10a",
                "commune_insee": "58062",
                "contact": {"name": "Mme Martin", "email": "contact@scierie.example"},
                "share_with_partners": true
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("/api/v1/actors/{id}").as_str())
    );
    assert_eq!(reply.body["siret"], "73282932000074");
    assert_eq!(reply.body["naf_code"], "16.10A");
    assert_eq!(reply.body["departement"], "58");
    assert_eq!(reply.body["region"], "27");
    // No coordinates given: the commune centroid.
    let commune = app
        .app
        .reference
        .geo
        .commune("58062")
        .map(|c| (c.lat, c.lng))
        .unwrap_or_default();
    assert!((reply.body["lat"].as_f64().unwrap_or_default() - commune.0).abs() < 1e-9);
    assert!((reply.body["lng"].as_f64().unwrap_or_default() - commune.1).abs() < 1e-9);

    let got = app.get(&format!("/api/v1/actors/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], "Scierie du Morvan");
    assert_eq!(got.body["contact"]["email"], "contact@scierie.example");

    let patched = app
        .patch(
            &format!("/api/v1/actors/{id}"),
            &json!({"name": "Scierie du Haut-Morvan", "lat": 47.1, "lng": 4.0}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["name"], "Scierie du Haut-Morvan");
    assert_eq!(patched.body["lat"], 47.1);
    assert_eq!(
        patched.body["siret"], "73282932000074",
        "patch keeps other fields"
    );

    let replaced = app
        .put(
            &format!("/api/v1/actors/{id}"),
            &actor_body("Scierie remplacée"),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(
        replaced.body["siret"],
        serde_json::Value::Null,
        "put clears absent fields"
    );
    assert_eq!(replaced.body["commune_insee"], "21231");

    let deleted = app.delete(&format!("/api/v1/actors/{id}")).await;
    assert_eq!(deleted.status, 204);
    let gone = app.get(&format!("/api/v1/actors/{id}")).await;
    assert_eq!(gone.status, 404);
    assert!(gone.content_type.starts_with("application/problem+json"));
    assert_eq!(
        app.delete(&format!("/api/v1/actors/{id}")).await.status,
        404
    );
}

#[actix_web::test]
async fn every_actor_rule_names_its_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": " ", "naf_code": "16.10A", "commune_insee": "21231"}),
            "name",
        ),
        (
            json!({"name": "A", "siret": "12345678901234", "naf_code": "16.10A", "commune_insee": "21231"}),
            "siret",
        ),
        (
            json!({"name": "A", "siret": "1234", "naf_code": "16.10A", "commune_insee": "21231"}),
            "siret",
        ),
        (
            json!({"name": "A", "naf_code": "99.99Z", "commune_insee": "21231"}),
            "naf_code",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "00000"}),
            "commune_insee",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "lat": 91.0, "lng": 5.0}),
            "lat",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "lat": 47.0, "lng": 181.0}),
            "lng",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "lat": 47.0}),
            "lng",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "contact": {"email": "nope"}}),
            "contact.email",
        ),
        (
            json!({"naf_code": "16.10A", "commune_insee": "21231"}),
            "name",
        ),
        (
            json!({"name": 12, "naf_code": "16.10A", "commune_insee": "21231"}),
            "name",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "lat": "north", "lng": 5.0}),
            "lat",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "A", "naf_code": "16.10A", "commune_insee": "21231", "share_with_partners": "yes"}),
            "share_with_partners",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/actors", &body).await;
        assert_field_error(&reply, field);
    }
    // Nothing was stored by the refused requests.
    let list = app.get("/api/v1/actors").await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0));
}

#[actix_web::test]
async fn duplicate_siret_is_a_conflict_and_keeps_the_first() {
    let app = spawn_app().await;
    let mut body = actor_body("Premier");
    body["siret"] = json!("73282932000074");
    app.create_actor(body.clone()).await;
    body["name"] = json!("Second");
    let reply = app.post("/api/v1/actors", &body).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert!(reply.content_type.starts_with("application/problem+json"));
    let list = app.get("/api/v1/actors").await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, vec!["Premier"]);
}

#[actix_web::test]
async fn malformed_json_and_wrong_media_type_are_client_errors() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/actors"))
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.content_type.starts_with("application/problem+json"));
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/actors"))
                .header("content-type", "text/plain")
                .body("hi"),
        )
        .await;
    assert_eq!(reply.status, 415);
}

#[actix_web::test]
async fn list_filters_by_territory_naf_and_text_and_paginates() {
    let app = spawn_app().await;
    // Dijon (21, EPCI Dijon Métropole), Nevers (58), Mâcon (71), Lyon (69, another région).
    let places = [
        ("21231", "16.10A", "Scierie Dijonnaise"),
        ("58194", "10.51C", "Laiterie de Nevers"),
        ("71270", "23.51Z", "Ciments de Mâcon"),
        ("69123", "16.10B", "Scierie Lyonnaise"),
        ("21054", "10.51C", "Fromagerie de Beaune"),
    ];
    for (commune, naf, name) in places {
        app.create_actor(json!({"name": name, "naf_code": naf, "commune_insee": commune}))
            .await;
    }
    let names = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["name"].as_str().map(str::to_owned))
            .collect()
    };
    let dep21 = app.get("/api/v1/actors?territory=21").await;
    assert_eq!(
        names(&dep21),
        vec!["Fromagerie de Beaune", "Scierie Dijonnaise"]
    );
    let bfc = app.get("/api/v1/actors?territory=R27").await;
    assert_eq!(names(&bfc).len(), 4);
    let commune = app.get("/api/v1/actors?territory=58194").await;
    assert_eq!(names(&commune), vec!["Laiterie de Nevers"]);
    let epci = app
        .app
        .reference
        .geo
        .commune("21231")
        .and_then(|c| c.epci.clone())
        .unwrap_or_default();
    let by_epci = app.get(&format!("/api/v1/actors?territory={epci}")).await;
    assert_eq!(names(&by_epci), vec!["Scierie Dijonnaise"]);
    let sawmills = app.get("/api/v1/actors?naf=16.10").await;
    assert_eq!(
        names(&sawmills),
        vec!["Scierie Dijonnaise", "Scierie Lyonnaise"]
    );
    let text = app.get("/api/v1/actors?q=MACON").await;
    assert_eq!(names(&text), vec!["Ciments de Mâcon"]);
    let unknown = app.get("/api/v1/actors?territory=XX-NOWHERE").await;
    assert_eq!(unknown.status, 404);

    // Pages of two, in name order, without overlap or loss.
    let mut seen = Vec::new();
    let mut path = "/api/v1/actors?limit=2".to_owned();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200);
        seen.extend(names(&page));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/actors?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 5);
    assert_field_error(&app.get("/api/v1/actors?limit=0").await, "limit");
    assert_field_error(&app.get("/api/v1/actors?limit=abc").await, "limit");
    assert_field_error(&app.get("/api/v1/actors?cursor=zz").await, "cursor");
}

#[actix_web::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for path in ["/health/live", "/api/v1/actors", "/api/v1/actors/unknown"] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{path}: request id `{id}`"
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per request");
}
