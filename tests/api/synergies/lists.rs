//! An actor's synergies, ad-hoc matching of an unsaved offer, list filters and pagination.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 11. Actor view, ad-hoc matching, filters and pagination
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn an_actor_sees_its_synergies_as_provider_and_as_receiver() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let boiler = site(
        &app,
        "Chaufferie bois",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    let cement = site(
        &app,
        "Cimenterie",
        "23.51Z",
        DIJON,
        near(&app, DIJON, 3.0, 8.0),
    )
    .await;
    let sawdust_id = resource(&app, &sawmill, sawdust(500.0)).await;
    let fuel = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let bottom_ash = resource(
        &app,
        &boiler,
        json!({"kind": "offer", "category": "material", "label": "Mâchefers", "ewc_code": "10 01 01", "quantity": tonnes(40.0)}),
    )
    .await;
    let ash_in = resource(
        &app,
        &cement,
        ash_need("Cendres pour le cru", &["10 01 01"]),
    )
    .await;

    let mine = all_items(&app, &format!("/api/v1/actors/{}/synergies", boiler.id)).await;
    let as_receiver = mine
        .iter()
        .find(|s| s["receiver_actor_id"] == boiler.id.as_str())
        .expect("as receiver");
    let as_provider = mine
        .iter()
        .find(|s| s["provider_actor_id"] == boiler.id.as_str())
        .expect("as provider");
    assert_eq!(as_receiver["offer_id"], sawdust_id.as_str());
    assert_eq!(as_receiver["need_id"], fuel.as_str());
    assert_eq!(as_provider["offer_id"], bottom_ash.as_str());
    assert_eq!(as_provider["need_id"], ash_in.as_str());
    for s in &mine {
        assert!(
            s["receiver_actor_id"] == boiler.id.as_str()
                || s["provider_actor_id"] == boiler.id.as_str(),
            "{s:#}"
        );
    }
    let scores: Vec<f64> = mine.iter().map(|s| num(s, "score")).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {scores:?}"
    );
    let sawmill_side = all_items(&app, &format!("/api/v1/actors/{}/synergies", sawmill.id)).await;
    assert!(sawmill_side.iter().any(|s| s["id"] == as_receiver["id"]));
    assert!(
        sawmill_side.iter().all(|s| s["id"] != as_provider["id"]),
        "not the sawmill's"
    );
    assert_eq!(
        app.get(&format!("/api/v1/actors/{}/synergies", Uuid::new_v4()))
            .await
            .status,
        404
    );
    assert_field_error(
        &app.get(&format!(
            "/api/v1/actors/{}/synergies?min_score=2",
            boiler.id
        ))
        .await,
        "min_score",
    );
}

#[actix_web::test]
async fn an_adhoc_offer_finds_the_nearest_boiler_and_stores_nothing() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let close = site(
        &app,
        "Chaufferie Nord",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    let far = site(
        &app,
        "Chaufferie de Beaune",
        "35.30Z",
        BEAUNE,
        near(&app, BEAUNE, 0.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need_close = resource(&app, &close, boiler_need(tonnes(300.0))).await;
    let need_far = resource(&app, &far, boiler_need(tonnes(300.0))).await;
    let before_resources = all_items(&app, "/api/v1/resources").await.len();
    let before: Vec<Value> = all_items(&app, "/api/v1/synergies").await;

    let (lat, lng) = near(&app, DIJON, 4.0, 0.5);
    let body = json!({"kind": "offer", "ewc_code": "03 01 05", "label": "Copeaux", "quantity": 200, "unit": "t",
                      "lat": lat, "lng": lng});
    let reply = app.post("/api/v1/match", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let found: Vec<Value> = items(&reply)
        .into_iter()
        .filter(|s| s["latent"] == false)
        .collect();
    assert_eq!(
        need_ids(&found),
        vec![need_close.as_str(), need_far.as_str()],
        "{found:#?}"
    );
    assert_eq!(found[0]["receiver_actor_id"], close.id.as_str());
    assert_eq!(found[0]["provider_actor_id"], Uuid::nil().to_string());
    assert_eq!(found[0]["offer_id"], Uuid::nil().to_string());
    assert_eq!(found[0]["fit_level"], "code");
    let here = Site {
        id: String::new(),
        name: String::new(),
        lat,
        lng,
    };
    approx(
        num(&found[0], "distance_km"),
        km(&here, &close),
        "distance from the described place",
    );
    approx(
        num(&found[0], "coverage"),
        200.0 / 300.0,
        "coverage of the described quantity",
    );
    // A described need finds the sawmill as provider.
    let wanted = json!({"kind": "need", "class": "material/biomass/wood", "accepted_ewc": ["03 01 05"],
                        "quantity": 1000, "unit": "t", "lat": lat, "lng": lng});
    let reply = app.post("/api/v1/match", &wanted).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let providers = items(&reply);
    assert_eq!(providers.len(), 1, "{providers:#?}");
    assert_eq!(providers[0]["offer_id"], offer.as_str());
    assert_eq!(providers[0]["provider_actor_id"], sawmill.id.as_str());
    assert_eq!(providers[0]["receiver_actor_id"], Uuid::nil().to_string());
    approx(
        num(&providers[0], "coverage"),
        0.5,
        "500 t of the 1 000 t described",
    );
    // Scoped to a territory: only partners in it.
    let in_71 = app.post("/api/v1/match?territory=71", &body).await;
    assert_eq!(in_71.status, 200, "{}", in_71.text);
    assert!(items(&in_71).is_empty());

    // Nothing stored.
    assert_eq!(
        all_items(&app, "/api/v1/resources").await.len(),
        before_resources
    );
    let after = all_items(&app, "/api/v1/synergies").await;
    let ids = |v: &[Value]| {
        v.iter()
            .map(|s| str_of(s, "id").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&after), ids(&before));
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.body["summary"]["inserted"], 0, "{}", run.text);

    // Errors name their field.
    let mut bad = body.clone();
    bad["ewc_code"] = json!("99 99 99");
    assert_field_error(&app.post("/api/v1/match", &bad).await, "ewc_code");
    assert_field_error(
        &app.post("/api/v1/match?min_score=2", &body).await,
        "min_score",
    );
    let mut bad = body.clone();
    bad["lat"] = json!(95.0);
    assert_field_error(&app.post("/api/v1/match", &bad).await, "lat");
    let mut bad = body.clone();
    bad["class"] = json!("material/unobtainium");
    assert_field_error(&app.post("/api/v1/match", &bad).await, "class");
}

#[actix_web::test]
async fn list_filters_and_pagination_hold_together() {
    let app = spawn_app().await;
    // Dijon: a sawmill and two boilers (declared), a power plant and a silent cement works (latent),
    // three neighbours sharing a collection need (pooling). Mâcon: a sawmill and a boiler.
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let b1 = site(
        &app,
        "Chaufferie 1",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    let b2 = site(
        &app,
        "Chaufferie 2",
        "35.30Z",
        DIJON,
        near(&app, DIJON, -8.0, 0.0),
    )
    .await;
    let plant = site(
        &app,
        "Centrale",
        "35.11Z",
        DIJON,
        near(&app, DIJON, 0.0, 10.0),
    )
    .await;
    site(
        &app,
        "Cimenterie",
        "23.51Z",
        DIJON,
        near(&app, DIJON, 5.0, 12.0),
    )
    .await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    resource(&app, &b1, boiler_need(tonnes(300.0))).await;
    resource(&app, &b2, boiler_need(tonnes(1000.0))).await;
    resource(
        &app,
        &plant,
        json!({"kind": "offer", "category": "material", "label": "Cendres volantes", "ewc_code": "10 01 02", "quantity": tonnes(800.0)}),
    )
    .await;
    for (i, (east, north)) in [(1.0, -1.0), (2.0, -2.0), (0.0, -3.0)]
        .into_iter()
        .enumerate()
    {
        let s = site(
            &app,
            &format!("Voisin {i}"),
            "18.12Z",
            DIJON,
            near(&app, DIJON, east, north),
        )
        .await;
        resource(&app, &s, collection_need(12.0)).await;
    }
    let macon_saw = site(
        &app,
        "Scierie mâconnaise",
        "16.10A",
        MACON,
        near(&app, MACON, 0.0, 0.0),
    )
    .await;
    let macon_boiler = site(
        &app,
        "Chaufferie mâconnaise",
        "35.30Z",
        MACON,
        near(&app, MACON, 2.0, 0.0),
    )
    .await;
    // Both keep to the Mâconnais (Dijon is 112 km away, within the 150 km wood travels).
    let mut local_sawdust = sawdust(100.0);
    local_sawdust["max_distance_km"] = json!(30);
    let mut local_need = boiler_need(tonnes(100.0));
    local_need["max_distance_km"] = json!(30);
    resource(&app, &macon_saw, local_sawdust).await;
    resource(&app, &macon_boiler, local_need).await;

    let all = all_items(&app, "/api/v1/synergies").await;
    let dep21 = all_items(&app, "/api/v1/synergies?territory=21").await;
    let dep71 = all_items(&app, "/api/v1/synergies?territory=71").await;
    let scores: Vec<f64> = all.iter().map(|s| num(s, "score")).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked by score: {scores:?}"
    );
    assert!(!substitutions(&dep21).is_empty() && !poolings(&dep21).is_empty());
    assert!(dep21.iter().any(|s| s["latent"] == true), "{dep21:#?}");
    // Each synergy is listed under the départements of its parties (a latent receiver may sit across
    // the border): together the two lists hold every synergy.
    let ids =
        |v: &[Value]| -> HashSet<String> { v.iter().map(|s| str_of(s, "id").to_owned()).collect() };
    let union: HashSet<String> = ids(&dep21).union(&ids(&dep71)).cloned().collect();
    assert_eq!(
        union,
        ids(&all),
        "each synergy in a département of its parties"
    );
    // Declared exchanges of 71: the Mâcon pair only (latent ones may come from Dijon's offers).
    let declared71: Vec<&Value> = dep71.iter().filter(|s| s["latent"] == false).collect();
    assert!(
        declared71
            .iter()
            .all(|s| s["provider_actor_id"] == macon_saw.id.as_str()),
        "{dep71:#?}"
    );
    assert!(
        declared71.len() == 1 && declared71[0]["receiver_actor_id"] == macon_boiler.id.as_str()
    );
    let region = all_items(&app, "/api/v1/synergies?territory=R27").await;
    assert_eq!(region.len(), all.len());
    assert_eq!(
        app.get("/api/v1/synergies?territory=XX-NOWHERE")
            .await
            .status,
        404
    );

    // kind
    let pooling = all_items(&app, "/api/v1/synergies?kind=pooling").await;
    assert!(!pooling.is_empty() && pooling.iter().all(|s| s["kind"] == "pooling"));
    let subst = all_items(&app, "/api/v1/synergies?kind=substitution").await;
    assert!(subst.iter().all(|s| s["kind"] == "substitution"));
    assert_eq!(pooling.len() + subst.len(), all.len());
    // latent
    let latent = all_items(&app, "/api/v1/synergies?latent=true").await;
    assert!(!latent.is_empty() && latent.iter().all(|s| s["latent"] == true));
    let declared = all_items(&app, "/api/v1/synergies?latent=false").await;
    assert!(
        declared
            .iter()
            .all(|s| s["kind"] == "pooling" || s["latent"] == false)
    );
    assert_eq!(latent.len() + declared.len(), all.len());
    // class prefix
    let wood = all_items(&app, "/api/v1/synergies?class=material/biomass").await;
    assert!(
        !wood.is_empty()
            && wood
                .iter()
                .all(|s| str_of(s, "class").starts_with("material/biomass")),
        "{wood:#?}"
    );
    assert_eq!(
        wood.len(),
        all.iter()
            .filter(|s| str_of(s, "class").starts_with("material/biomass"))
            .count()
    );
    // min_score: exactly the items at or above it.
    let mut distinct = scores.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "{scores:?}");
    let threshold = (distinct[0] + distinct[1]) / 2.0;
    let above = all_items(&app, &format!("/api/v1/synergies?min_score={threshold}")).await;
    assert!(above.iter().all(|s| num(s, "score") >= threshold));
    assert_eq!(
        above.len(),
        scores.iter().filter(|s| **s >= threshold).count()
    );
    assert!(above.len() < all.len());
    // Invalid parameters name themselves.
    assert_field_error(&app.get("/api/v1/synergies?min_score=2").await, "min_score");
    assert_field_error(
        &app.get("/api/v1/synergies?min_score=-0.1").await,
        "min_score",
    );
    assert_field_error(&app.get("/api/v1/synergies?kind=barter").await, "kind");
    assert_field_error(&app.get("/api/v1/synergies?latent=maybe").await, "latent");
    assert_field_error(&app.get("/api/v1/synergies?limit=0").await, "limit");
    assert_field_error(&app.get("/api/v1/synergies?cursor=zz").await, "cursor");

    // Pages of two: the same ranked list, no overlap, no loss.
    let mut paged: Vec<Value> = Vec::new();
    let mut path = "/api/v1/synergies?limit=2".to_owned();
    loop {
        let page = ok(&app, &path).await;
        let got = items(&page);
        assert!(got.len() <= 2);
        paged.extend(got);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/synergies?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let ids: Vec<&str> = paged.iter().map(|s| str_of(s, "id")).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no overlap between pages");
    assert_eq!(
        ids,
        all.iter().map(|s| str_of(s, "id")).collect::<Vec<_>>(),
        "same order, nothing lost"
    );
}
