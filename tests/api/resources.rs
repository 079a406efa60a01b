use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, actor_body, assert_field_error, spawn_app};

/// A valid resource (offer or need) of the material category, without code or quantity.
fn material(kind: &str, label: &str) -> Value {
    json!({"kind": kind, "category": "material", "label": label})
}

fn items(reply: &Reply) -> Vec<Value> {
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// The labels of a list page, sorted (resources are listed in id order, which is random).
fn labels(reply: &Reply) -> Vec<String> {
    let mut out: Vec<String> = items(reply)
        .iter()
        .filter_map(|r| r["label"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

fn approx(value: &Value, expected: f64) {
    let got = value.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - expected).abs() < 1e-9,
        "expected {expected}, got {value}"
    );
}

async fn list_ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

#[actix_web::test]
async fn offers_and_needs_derive_hazard_and_yearly_amount() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Centrale de Dijon")).await;

    let reply = app
        .post(
            &format!("/api/v1/actors/{actor}/resources"),
            &json!({
                "kind": "offer", "category": "material", "label": "Cendres volantes d'incinération",
                "ewc_code": "19 01 13", "quantity": {"value": 2, "unit": "t", "period": "week"},
                "physical_state": "powder", "max_distance_km": 80
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("/api/v1/resources/{id}").as_str())
    );
    assert_eq!(reply.body["actor_id"], actor.as_str());
    assert_eq!(reply.body["kind"], "offer");
    assert_eq!(reply.body["category"], "material");
    assert_eq!(reply.body["ewc_code"], "190113");
    assert_eq!(
        reply.body["hazardous"], true,
        "19 01 13* is a hazardous entry"
    );
    assert_eq!(
        reply.body["class"], "material/mineral/ash",
        "class derived from the EWC code"
    );
    assert_eq!(
        reply.body["ewc_label"],
        "cendres volantes contenant des substances dangereuses"
    );
    assert_eq!(
        reply.body["quantity"],
        json!({"value": 2.0, "unit": "t", "period": "week"})
    );
    approx(&reply.body["yearly_quantity"], 104.0);
    assert_eq!(reply.body["base_unit"], "t");
    assert_eq!(reply.body["availability"]["kind"], "continuous");
    assert_eq!(reply.body["physical_state"], "powder");
    assert_eq!(reply.body["max_distance_km"], 80.0);

    let got = app.get(&format!("/api/v1/resources/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["label"], "Cendres volantes d'incinération");
    assert_eq!(got.body["hazardous"], true);
    approx(&got.body["yearly_quantity"], 104.0);

    let need = app
        .create_resource(
            &actor,
            json!({
                "kind": "need", "category": "material", "label": "Cendres de charbon",
                "ewc_code": "10 01 02", "accepted_ewc": ["10 01 02", "100101"],
                "quantity": {"value": 500, "unit": "kg", "period": "day"}
            }),
        )
        .await;
    assert_eq!(need["kind"], "need");
    assert_eq!(need["hazardous"], false, "10 01 02 is not hazardous");
    assert_eq!(need["class"], "material/mineral/ash");
    assert_eq!(need["accepted_ewc"], json!(["100102", "100101"]));
    approx(&need["yearly_quantity"], 182.5);
    assert_eq!(need["base_unit"], "t");

    let heat = app
        .create_resource(
            &actor,
            json!({
                "kind": "offer", "category": "energy", "label": "Chaleur fatale",
                "quantity": {"value": 36, "unit": "GJ", "period": "month"}, "temperature_c": 90
            }),
        )
        .await;
    approx(&heat["yearly_quantity"], 120.0);
    assert_eq!(heat["base_unit"], "MWh");
    assert_eq!(heat["hazardous"], false);
    assert_eq!(heat["ewc_code"], Value::Null);
    assert_eq!(heat["temperature_c"], 90.0);
    assert_eq!(heat["class"], "energy", "no code, no class: the category");

    let water = app
        .create_resource(
            &actor,
            json!({"kind": "offer", "category": "water", "label": "Eaux de refroidissement",
                "quantity": {"value": 2000, "unit": "L", "period": "day"},
                "availability": {"kind": "seasonal", "months": [6, 7, 8]}}),
        )
        .await;
    approx(&water["yearly_quantity"], 730.0);
    assert_eq!(water["base_unit"], "m3");
    assert_eq!(
        water["availability"],
        json!({"kind": "seasonal", "months": [6, 7, 8]})
    );

    let mine = list_ok(&app, &format!("/api/v1/actors/{actor}/resources")).await;
    assert_eq!(
        labels(&mine),
        vec![
            "Cendres de charbon",
            "Cendres volantes d'incinération",
            "Chaleur fatale",
            "Eaux de refroidissement"
        ]
    );
}

#[actix_web::test]
async fn get_put_patch_and_delete_a_resource() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Scierie")).await;
    let created = app
        .create_resource(
            &actor,
            json!({
                "kind": "offer", "category": "material", "label": "Sciures", "description": "sèches",
                "ewc_code": "03 01 05", "quantity": {"value": 2, "unit": "t", "period": "week"},
                "availability": {"kind": "seasonal", "months": [1, 2]}
            }),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/resources/{id}");

    // PUT replaces everything: absent optional fields are cleared.
    let replaced = app
        .put(&path, &json!({"kind": "need", "category": "energy", "label": "Chaleur", "quantity": {"value": 1, "unit": "MWh", "period": "day"}}))
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.body["id"], id.as_str());
    assert_eq!(replaced.body["actor_id"], actor.as_str());
    assert_eq!(replaced.body["kind"], "need");
    assert_eq!(replaced.body["category"], "energy");
    assert_eq!(replaced.body["description"], Value::Null);
    assert_eq!(replaced.body["ewc_code"], Value::Null);
    assert_eq!(replaced.body["availability"], json!({"kind": "continuous"}));
    approx(&replaced.body["yearly_quantity"], 365.0);
    assert_eq!(replaced.body["base_unit"], "MWh");
    assert_eq!(
        replaced.body["created_at"], created["created_at"],
        "PUT keeps the creation time"
    );

    // Back to a material offer with a code, to patch it.
    let again = app
        .put(
            &path,
            &json!({"kind": "offer", "category": "material", "label": "Sciures", "description": "sèches",
                "ewc_code": "03 01 05", "quantity": {"value": 2, "unit": "t", "period": "week"}}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["hazardous"], false);

    // JSON merge patch: nested objects merge, null removes, the rest is kept.
    let patched = app
        .patch(
            &path,
            &json!({"label": "Sciures de chêne", "quantity": {"value": 3}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["label"], "Sciures de chêne");
    assert_eq!(
        patched.body["quantity"],
        json!({"value": 3.0, "unit": "t", "period": "week"})
    );
    approx(&patched.body["yearly_quantity"], 156.0);
    assert_eq!(
        patched.body["description"], "sèches",
        "patch keeps other fields"
    );
    assert_eq!(patched.body["ewc_code"], "030105");

    let removed = app
        .patch(&path, &json!({"description": null, "quantity": null}))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["description"], Value::Null);
    assert_eq!(removed.body["quantity"], Value::Null);
    assert_eq!(removed.body["yearly_quantity"], Value::Null);
    assert_eq!(removed.body["base_unit"], Value::Null);
    assert_eq!(removed.body["label"], "Sciures de chêne");

    assert_eq!(patched.body["class"], "material/biomass/wood");

    // A new EWC code re-derives the hazardous flag and the class.
    let hazardous = app.patch(&path, &json!({"ewc_code": "19 01 13*"})).await;
    assert_eq!(hazardous.status, 200, "{}", hazardous.text);
    assert_eq!(hazardous.body["ewc_code"], "190113");
    assert_eq!(hazardous.body["hazardous"], true);
    assert_eq!(hazardous.body["class"], "material/mineral/ash");
    // Unless the patch sets the class itself.
    let classed = app
        .patch(
            &path,
            &json!({"ewc_code": "10 01 05", "class": "material/mineral/slag"}),
        )
        .await;
    assert_eq!(classed.status, 200, "{}", classed.text);
    assert_eq!(classed.body["class"], "material/mineral/slag");
    assert_eq!(classed.body["hazardous"], false);
    let rederived = app.patch(&path, &json!({"ewc_code": "19 01 13"})).await;
    assert_eq!(rederived.body["class"], "material/mineral/ash");
    assert_eq!(rederived.body["hazardous"], true);

    // Refused changes leave the resource as it was.
    assert_field_error(
        &app.patch(&path, &json!({"hazardous": false})).await,
        "hazardous",
    );
    assert_field_error(
        &app.patch(
            &path,
            &json!({"quantity": {"value": 1, "unit": "ton", "period": "day"}}),
        )
        .await,
        "quantity.unit",
    );
    assert_field_error(&app.patch(&path, &json!({"label": ""})).await, "label");
    assert_field_error(
        &app.put(
            &path,
            &json!({"kind": "offer", "category": "material", "label": "x", "ewc_code": "99 99 99"}),
        )
        .await,
        "ewc_code",
    );
    let bad_patch = app.patch(&path, &json!(["not", "an", "object"])).await;
    assert_eq!(bad_patch.status, 422, "{}", bad_patch.text);
    let unchanged = app.get(&path).await;
    assert_eq!(unchanged.body["label"], "Sciures de chêne");
    assert_eq!(unchanged.body["hazardous"], true);

    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = app.get(&path).await;
    assert_eq!(gone.status, 404);
    assert!(
        gone.content_type.starts_with("application/problem+json"),
        "{}",
        gone.content_type
    );
    assert_eq!(app.delete(&path).await.status, 404);
    let listed = list_ok(&app, &format!("/api/v1/actors/{actor}/resources")).await;
    assert!(items(&listed).is_empty());
}

#[actix_web::test]
async fn unknown_resources_and_actors_are_not_found() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Existant")).await;
    let unknown = "00000000-0000-0000-0000-000000000000";
    let body = material("offer", "Palettes");
    let replies = [
        app.get(&format!("/api/v1/resources/{unknown}")).await,
        app.put(&format!("/api/v1/resources/{unknown}"), &body)
            .await,
        app.patch(
            &format!("/api/v1/resources/{unknown}"),
            &json!({"label": "x"}),
        )
        .await,
        app.delete(&format!("/api/v1/resources/{unknown}")).await,
        app.post(&format!("/api/v1/actors/{unknown}/resources"), &body)
            .await,
        app.get(&format!("/api/v1/actors/{unknown}/resources"))
            .await,
        app.get("/api/v1/resources/not-even-a-uuid").await,
    ];
    for reply in replies {
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert!(
            reply.content_type.starts_with("application/problem+json"),
            "{}",
            reply.content_type
        );
        assert_eq!(reply.body["status"], 404);
    }
    // Nothing was created under the unknown actor, nor under the existing one.
    let all = list_ok(&app, "/api/v1/resources").await;
    assert!(items(&all).is_empty(), "{}", all.text);
    let mine = list_ok(&app, &format!("/api/v1/actors/{actor}/resources")).await;
    assert!(items(&mine).is_empty());
}

#[actix_web::test]
async fn every_resource_rule_names_its_field() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Validation")).await;
    let base = json!({
        "kind": "offer", "category": "material", "label": "Mâchefers", "ewc_code": "10 01 01",
        "quantity": {"value": 10, "unit": "t", "period": "month"}
    });
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let mut cases = vec![
        (with(json!({"label": "   "})), "label"),
        (with(json!({"ewc_code": "99 99 99"})), "ewc_code"),
        (with(json!({"ewc_code": "10 01"})), "ewc_code"),
        (
            with(json!({"kind": "need", "accepted_ewc": ["10 01 02", "99 99 99"]})),
            "accepted_ewc[1]",
        ),
        (
            with(json!({"quantity": {"value": 0, "unit": "t", "period": "month"}})),
            "quantity.value",
        ),
        (
            with(json!({"quantity": {"value": -3.5, "unit": "t", "period": "month"}})),
            "quantity.value",
        ),
        (
            with(json!({"quantity": {"value": 1, "unit": "ton", "period": "month"}})),
            "quantity.unit",
        ),
        (
            with(json!({"quantity": {"value": 1, "unit": "t", "period": "fortnight"}})),
            "quantity.period",
        ),
        (
            with(json!({"quantity": {"value": 1, "unit": "t"}})),
            "quantity.period",
        ),
        (
            with(json!({"quantity": {"value": "ten", "unit": "t", "period": "month"}})),
            "quantity.value",
        ),
        (with(json!({"kind": "gift"})), "kind"),
        (with(json!({"category": "gas"})), "category"),
        (
            with(json!({"availability": {"kind": "seasonal"}})),
            "availability.months",
        ),
        (
            with(json!({"availability": {"kind": "seasonal", "months": []}})),
            "availability.months",
        ),
        (
            with(json!({"availability": {"kind": "seasonal", "months": [6, 13]}})),
            "availability.months",
        ),
        (
            with(json!({"availability": {"kind": "seasonal", "months": [0]}})),
            "availability.months",
        ),
        (
            with(
                json!({"availability": {"kind": "one_off", "from": "2025-06-01", "until": "2025-05-31"}}),
            ),
            "availability.until",
        ),
        (
            with(json!({"availability": {"kind": "one_off", "from": "2025-06-01"}})),
            "availability.from",
        ),
        (
            with(
                json!({"availability": {"kind": "one_off", "from": "2025-02-30", "until": "2025-03-01"}}),
            ),
            "availability.from",
        ),
        (
            with(json!({"availability": {"kind": "continuous", "months": [1, 2]}})),
            "availability",
        ),
        (
            with(json!({"availability": {"kind": "always"}})),
            "availability.kind",
        ),
        (with(json!({"temperature_c": -300})), "temperature_c"),
        (with(json!({"temperature_c": 2500})), "temperature_c"),
        (with(json!({"max_distance_km": 0})), "max_distance_km"),
        (with(json!({"max_distance_km": -10})), "max_distance_km"),
        (with(json!({"physical_state": "plasma"})), "physical_state"),
        (with(json!({"hazardous": true})), "hazardous"),
        (with(json!({"hazardous": false})), "hazardous"),
        (with(json!({"class": "energy/heat"})), "class"),
        (with(json!({"class": "material/unicorn"})), "class"),
        (with(json!({"class": 7})), "class"),
        (with(json!({"label": 42})), "label"),
        (
            with(json!({"quantity": {"value": 1, "unit": "t", "period": "month", "per": "site"}})),
            "quantity.per",
        ),
    ];
    let mut missing_label = base.clone();
    missing_label
        .as_object_mut()
        .expect("object")
        .remove("label");
    cases.push((missing_label, "label"));
    let mut missing_kind = base.clone();
    missing_kind.as_object_mut().expect("object").remove("kind");
    cases.push((missing_kind, "kind"));

    let path = format!("/api/v1/actors/{actor}/resources");
    for (body, field) in &cases {
        let reply = app.post(&path, body).await;
        assert_field_error(&reply, field);
    }
    // The base itself is valid, and the rules hold on PUT as on POST.
    let valid = app.create_resource(&actor, base.clone()).await;
    let id = valid["id"].as_str().expect("id");
    for (body, field) in &cases {
        let reply = app.put(&format!("/api/v1/resources/{id}"), body).await;
        assert_field_error(&reply, field);
    }
    // Several bad fields at once are all reported.
    let reply = app
        .post(
            &path,
            &with(json!({"label": "", "temperature_c": 9999, "max_distance_km": -1})),
        )
        .await;
    for field in ["label", "temperature_c", "max_distance_km"] {
        assert_field_error(&reply, field);
    }
    // Only the valid one was stored, unchanged by the refused PUTs.
    let mine = list_ok(&app, &path).await;
    assert_eq!(labels(&mine), vec!["Mâchefers"]);
    assert_eq!(items(&mine)[0]["ewc_code"], "100101");
}

#[actix_web::test]
async fn absurd_quantities_never_store_an_infinite_yearly_amount() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Démesure")).await;
    // 1e308 t a day is finite, but its yearly amount (× 365) is not.
    let reply = app
        .post(
            &format!("/api/v1/actors/{actor}/resources"),
            &json!({"kind": "offer", "category": "material", "label": "Trop",
                "quantity": {"value": 1e308, "unit": "t", "period": "day"}}),
        )
        .await;
    if reply.status == 201 {
        assert!(
            reply.body["yearly_quantity"]
                .as_f64()
                .is_some_and(f64::is_finite),
            "stored a non-finite yearly amount: {}",
            reply.text
        );
    } else {
        assert_field_error(&reply, "quantity.value");
    }
}

#[actix_web::test]
async fn list_filters_across_actors() {
    let app = spawn_app().await;
    let dijon = app
        .create_actor(
            json!({"name": "Chaufferie de Dijon", "naf_code": "35.30Z", "commune_insee": "21231"}),
        )
        .await;
    let nevers = app
        .create_actor(
            json!({"name": "Scierie de Nevers", "naf_code": "16.10A", "commune_insee": "58194"}),
        )
        .await;
    let beaune = app.create_actor(json!({"name": "Tonnellerie de Beaune", "naf_code": "16.24Z", "commune_insee": "21054"})).await;
    let lyon = app
        .create_actor(
            json!({"name": "Usine de Lyon", "naf_code": "23.51Z", "commune_insee": "69123"}),
        )
        .await;
    let resources = [
        // Classes given, or derived from the EWC code (10 01 → material/mineral/ash, 03 01 → material/biomass/wood).
        (
            &dijon,
            json!({"kind": "offer", "category": "material", "label": "D mâchefers", "ewc_code": "10 01 01"}),
        ),
        (
            &dijon,
            json!({"kind": "offer", "category": "energy", "label": "D chaleur", "class": "energy/heat/medium_temperature"}),
        ),
        (
            &dijon,
            json!({"kind": "need", "category": "material", "label": "D plaquettes", "ewc_code": "03 01 05"}),
        ),
        (
            &nevers,
            json!({"kind": "offer", "category": "material", "label": "N sciures", "ewc_code": "03 01 05", "class": "material/biomass/wood"}),
        ),
        (
            &nevers,
            json!({"kind": "offer", "category": "material", "label": "N cendres", "ewc_code": "10 01 03"}),
        ),
        (
            &beaune,
            json!({"kind": "need", "category": "water", "label": "B eau"}),
        ),
        (
            &beaune,
            json!({"kind": "offer", "category": "material", "label": "B copeaux", "ewc_code": "03 01 01", "class": "material/biomass"}),
        ),
        (
            &lyon,
            json!({"kind": "need", "category": "material", "label": "L cendres", "ewc_code": "10 01 02"}),
        ),
    ];
    for (actor, body) in resources {
        app.create_resource(actor, body).await;
    }
    let all = list_ok(&app, "/api/v1/resources").await;
    assert_eq!(items(&all).len(), 8);
    assert_eq!(all.body["next_cursor"], Value::Null);
    for item in items(&all) {
        let actor = item["actor_id"].as_str().unwrap_or_default();
        assert!(
            [&dijon, &nevers, &beaune, &lyon]
                .iter()
                .any(|a| a.as_str() == actor)
        );
    }

    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "kind=offer".into(),
            vec![
                "B copeaux",
                "D chaleur",
                "D mâchefers",
                "N cendres",
                "N sciures",
            ],
        ),
        (
            "kind=need".into(),
            vec!["B eau", "D plaquettes", "L cendres"],
        ),
        ("category=energy".into(), vec!["D chaleur"]),
        ("category=water".into(), vec!["B eau"]),
        (
            "category=material&kind=need".into(),
            vec!["D plaquettes", "L cendres"],
        ),
        (
            "ewc=10%2001".into(),
            vec!["D mâchefers", "L cendres", "N cendres"],
        ),
        (
            "ewc=1001".into(),
            vec!["D mâchefers", "L cendres", "N cendres"],
        ),
        (
            "ewc=10".into(),
            vec!["D mâchefers", "L cendres", "N cendres"],
        ),
        ("ewc=10%2001%2003".into(), vec!["N cendres"]),
        (
            "ewc=03%2001".into(),
            vec!["B copeaux", "D plaquettes", "N sciures"],
        ),
        ("ewc=030105".into(), vec!["D plaquettes", "N sciures"]),
        (
            "class=material/biomass".into(),
            vec!["B copeaux", "D plaquettes", "N sciures"],
        ),
        (
            "class=material/biomass/wood".into(),
            vec!["D plaquettes", "N sciures"],
        ),
        ("class=energy".into(), vec!["D chaleur"]),
        (
            "class=material/mineral".into(),
            vec!["D mâchefers", "L cendres", "N cendres"],
        ),
        (
            "class=material/mineral/ash".into(),
            vec!["D mâchefers", "L cendres", "N cendres"],
        ),
        ("class=energy/heat".into(), vec!["D chaleur"]),
        ("class=water".into(), vec!["B eau"]),
        (
            "class=material/biomass&territory=21".into(),
            vec!["B copeaux", "D plaquettes"],
        ),
        (
            "territory=21".into(),
            vec![
                "B copeaux",
                "B eau",
                "D chaleur",
                "D mâchefers",
                "D plaquettes",
            ],
        ),
        ("territory=58".into(), vec!["N cendres", "N sciures"]),
        ("territory=21054".into(), vec!["B copeaux", "B eau"]),
        (
            "territory=R27".into(),
            vec![
                "B copeaux",
                "B eau",
                "D chaleur",
                "D mâchefers",
                "D plaquettes",
                "N cendres",
                "N sciures",
            ],
        ),
        ("territory=R84".into(), vec!["L cendres"]),
        (
            "territory=21&kind=offer".into(),
            vec!["B copeaux", "D chaleur", "D mâchefers"],
        ),
        (
            "territory=21&ewc=03".into(),
            vec!["B copeaux", "D plaquettes"],
        ),
        (format!("actor={nevers}"), vec!["N cendres", "N sciures"]),
        (
            format!("actor={dijon}&kind=offer"),
            vec!["D chaleur", "D mâchefers"],
        ),
        ("ewc=17".into(), vec![]),
    ];
    for (query, expected) in cases {
        let reply = list_ok(&app, &format!("/api/v1/resources?{query}")).await;
        assert_eq!(labels(&reply), expected, "?{query}");
    }
    // Dijon Métropole (the EPCI of 21231).
    let epci = app
        .app
        .reference
        .geo
        .commune("21231")
        .and_then(|c| c.epci.clone())
        .expect("Dijon has an EPCI");
    let by_epci = list_ok(&app, &format!("/api/v1/resources?territory={epci}")).await;
    assert_eq!(
        labels(&by_epci),
        vec!["D chaleur", "D mâchefers", "D plaquettes"]
    );
    // An actor's own list takes the same filters.
    let dijon_offers = list_ok(
        &app,
        &format!("/api/v1/actors/{dijon}/resources?kind=offer"),
    )
    .await;
    assert_eq!(labels(&dijon_offers), vec!["D chaleur", "D mâchefers"]);
    // The list shows the derived fields too.
    let ash = list_ok(&app, "/api/v1/resources?ewc=100103").await;
    assert_eq!(items(&ash)[0]["ewc_code"], "100103");
    assert_eq!(
        items(&ash)[0]["class"],
        "material/mineral/ash",
        "derived from 10 01"
    );

    let unknown = app.get("/api/v1/resources?territory=XX-NOWHERE").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_field_error(&app.get("/api/v1/resources?kind=gift").await, "kind");
    assert_field_error(&app.get("/api/v1/resources?category=gas").await, "category");
    assert_field_error(&app.get("/api/v1/resources?ewc=abc").await, "ewc");
    assert_field_error(&app.get("/api/v1/resources?ewc=1001020").await, "ewc");
    assert_field_error(&app.get("/api/v1/resources?limit=0").await, "limit");
    assert_field_error(&app.get("/api/v1/resources?limit=501").await, "limit");
    assert_field_error(&app.get("/api/v1/resources?limit=ten").await, "limit");
    assert_field_error(&app.get("/api/v1/resources?cursor=zz").await, "cursor");
}

#[actix_web::test]
async fn cursor_pagination_has_no_overlap_or_loss() {
    let app = spawn_app().await;
    let a = app.create_actor(actor_body("Premier")).await;
    let b = app
        .create_actor(json!({"name": "Second", "naf_code": "10.51C", "commune_insee": "58194"}))
        .await;
    let mut created = Vec::new();
    for i in 0..11 {
        let actor = if i % 3 == 0 { &b } else { &a };
        let kind = if i % 2 == 0 { "offer" } else { "need" };
        let r = app
            .create_resource(actor, material(kind, &format!("R{i:02}")))
            .await;
        created.push(r["id"].as_str().expect("id").to_owned());
    }
    let walk = |query: &'static str| {
        let app = &app;
        async move {
            let mut ids = Vec::new();
            let mut path = format!("/api/v1/resources?limit=3{query}");
            let mut pages = 0;
            loop {
                let page = list_ok(app, &path).await;
                pages += 1;
                assert!(items(&page).len() <= 3);
                ids.extend(
                    items(&page)
                        .iter()
                        .filter_map(|r| r["id"].as_str().map(str::to_owned)),
                );
                match page.body["next_cursor"].as_str() {
                    Some(cursor) => {
                        path = format!("/api/v1/resources?limit=3{query}&cursor={cursor}")
                    }
                    None => break,
                }
                assert!(pages < 20, "pagination does not end");
            }
            ids
        }
    };
    let ids = walk("").await;
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "pages follow one order");
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "no resource on two pages");
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(ids, expected, "every resource on some page");

    // With a filter too: the offers (0, 2, 4, 6, 8, 10).
    let offers = walk("&kind=offer").await;
    assert_eq!(offers.len(), 6);
    let mut unique = offers.clone();
    unique.dedup();
    assert_eq!(unique.len(), 6);

    // An exact multiple of the page size ends without an empty extra page.
    let exact = list_ok(&app, &format!("/api/v1/actors/{b}/resources?limit=4")).await;
    assert_eq!(items(&exact).len(), 4);
    assert_eq!(exact.body["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn deleting_an_actor_deletes_its_resources() {
    let app = spawn_app().await;
    let doomed = app.create_actor(actor_body("Fermée")).await;
    let kept = app.create_actor(actor_body("Ouverte")).await;
    let r1 = app
        .create_resource(&doomed, material("offer", "Palettes"))
        .await;
    let r2 = app
        .create_resource(&doomed, material("need", "Cartons"))
        .await;
    let r3 = app
        .create_resource(&kept, material("offer", "Ferraille"))
        .await;
    let reply = app.delete(&format!("/api/v1/actors/{doomed}")).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    for r in [&r1, &r2] {
        let id = r["id"].as_str().expect("id");
        assert_eq!(
            app.get(&format!("/api/v1/resources/{id}")).await.status,
            404
        );
    }
    let id3 = r3["id"].as_str().expect("id");
    assert_eq!(
        app.get(&format!("/api/v1/resources/{id3}")).await.status,
        200
    );
    let all = list_ok(&app, "/api/v1/resources").await;
    assert_eq!(labels(&all), vec!["Ferraille"]);
    assert_eq!(
        app.get(&format!("/api/v1/actors/{doomed}/resources"))
            .await
            .status,
        404
    );
}
