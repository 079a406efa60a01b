//! Compatibility rules: heat by temperature, hazardous ash by accepted code, latent receivers.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 4. Temperature
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn heat_serves_only_needs_at_least_ten_degrees_cooler() {
    let app = spawn_app().await;
    let dairy = site(
        &app,
        "Laiterie de Dijon",
        "10.51C",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let hot = site(
        &app,
        "Serres maraîchères",
        "01.13Z",
        DIJON,
        near(&app, DIJON, 1.0, 0.0),
    )
    .await;
    let pool = site(
        &app,
        "Piscine olympique",
        "93.11Z",
        DIJON,
        near(&app, DIJON, -1.0, 0.0),
    )
    .await;
    let edge = site(
        &app,
        "Séchoir à 50 °C",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 1.0),
    )
    .await;
    let over = site(
        &app,
        "Séchoir à 51 °C",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, -1.0),
    )
    .await;
    let offer = resource(
        &app,
        &dairy,
        heat("offer", "Eaux chaudes de refroidissement", 60.0, 2000.0),
    )
    .await;
    let need_80 = resource(
        &app,
        &hot,
        heat("need", "Chauffage des serres", 80.0, 500.0),
    )
    .await;
    let need_45 = resource(
        &app,
        &pool,
        heat("need", "Chauffage des bassins", 45.0, 500.0),
    )
    .await;
    let need_50 = resource(&app, &edge, heat("need", "Séchage", 50.0, 500.0)).await;
    let need_51 = resource(&app, &over, heat("need", "Séchage", 51.0, 500.0)).await;

    // 60 °C serves 45 °C and 50 °C directly (60 ≥ T + 10); 51 °C and 80 °C only through a heat pump.
    let found = matches(&app, &offer).await;
    let direct: HashSet<&str> = found
        .iter()
        .filter(|s| s["heat_pump"].is_null())
        .filter_map(|s| s["need_id"].as_str())
        .collect();
    assert_eq!(
        direct,
        HashSet::from([need_45.as_str(), need_50.as_str()]),
        "{found:#?}"
    );
    let pumped: HashSet<&str> = found
        .iter()
        .filter(|s| !s["heat_pump"].is_null())
        .filter_map(|s| s["need_id"].as_str())
        .collect();
    assert_eq!(pumped, HashSet::from([need_51.as_str(), need_80.as_str()]));
    let pool_syn = one(&found, "need_id", &need_45);
    // Quality by exergy: 1 − 0.5 · margin / (margin + 40 °C); just hot enough is best.
    approx(
        num(&pool_syn["components"], "quality"),
        1.0 - 0.5 * 5.0 / 45.0,
        "5 °C of margin",
    );
    approx(
        num(&one(&found, "need_id", &need_50)["components"], "quality"),
        1.0,
        "no margin",
    );
    assert_eq!(pool_syn["base_unit"], "MWh");
    let fr = str_of(pool_syn, "explanation_fr");
    assert!(
        fr.contains("60 °C") && fr.contains("45 °C"),
        "temperatures explained: {fr}"
    );
    // From the needs' side, the 60 °C source serves 51 °C and 80 °C only through a heat pump.
    for need in [&need_80, &need_51] {
        let providers = matches(&app, need).await;
        assert!(
            providers.iter().all(|s| !s["heat_pump"].is_null()),
            "{providers:#?}"
        );
    }

    // The same greenhouse, at 45 °C, is served.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{need_80}"),
        json!({"temperature_c": 45}),
    )
    .await;
    let found = matches(&app, &offer).await;
    assert!(
        need_ids(&found).contains(&need_80.as_str()),
        "served once cooler: {found:#?}"
    );
    // Three served directly, the 51 °C need through a heat pump.
    assert_eq!(found.len(), 4);
    assert_eq!(
        found.iter().filter(|s| !s["heat_pump"].is_null()).count(),
        1
    );
}

// ---------------------------------------------------------------------------------------------------
// 5. Hazardous wastes
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn hazardous_ash_goes_only_to_a_receiver_accepting_its_code() {
    let app = spawn_app().await;
    let incinerator = site(
        &app,
        "UVE de Dijon",
        "38.21Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let licensed = site(
        &app,
        "Centre de stabilisation",
        "38.22Z",
        DIJON,
        near(&app, DIJON, 10.0, 0.0),
    )
    .await;
    let other = site(
        &app,
        "Centrale à béton",
        "23.63Z",
        DIJON,
        near(&app, DIJON, -10.0, 0.0),
    )
    .await;
    // A cement works declaring nothing: a latent receiver of ashes, but never of hazardous ones.
    site(
        &app,
        "Cimenterie",
        "23.51Z",
        DIJON,
        near(&app, DIJON, 0.0, 5.0),
    )
    .await;
    let toxic = resource(
        &app,
        &incinerator,
        json!({"kind": "offer", "category": "material", "label": "Cendres volantes (REFIOM)", "ewc_code": "19 01 13*",
               "quantity": tonnes(200.0)}),
    )
    .await;
    let accepting = resource(
        &app,
        &licensed,
        ash_need("Cendres à stabiliser", &["19 01 13*"]),
    )
    .await;
    let refusing = resource(&app, &other, ash_need("Cendres pour béton", &["10 01 02"])).await;

    let found = matches(&app, &toxic).await;
    let declared: Vec<Value> = found
        .iter()
        .filter(|s| s["latent"] == false)
        .cloned()
        .collect();
    assert_eq!(need_ids(&declared), vec![accepting.as_str()], "{found:#?}");
    assert_eq!(found[0]["fit_level"], "code");
    assert_eq!(found[0]["ewc_code"], "190113");
    approx(
        num(&found[0]["components"], "regulatory_risk"),
        0.4,
        "hazardous waste",
    );
    // Latent receivers exist for hazardous waste too, flagged: the receiver needs the permit.
    assert!(found.iter().all(|s| s["requires_authorisation"] == true));
    assert!(found.iter().any(|s| s["latent"] == true), "{found:#?}");
    for s in found.iter().filter(|s| s["latent"] == true) {
        assert!(
            str_of(s, "explanation_fr").contains("autorisation ICPE"),
            "{s:#}"
        );
        approx(num(&s["components"], "regulatory_risk"), 0.4, "hazardous");
    }
    assert!(
        matches(&app, &refusing).await.is_empty(),
        "the refusing need has no provider"
    );

    // The same class without the hazard: both needs (same class) and the cement works (latent).
    let benign = resource(
        &app,
        &incinerator,
        json!({"kind": "offer", "category": "material", "label": "Cendres volantes", "ewc_code": "19 01 14",
               "quantity": tonnes(200.0)}),
    )
    .await;
    let found = matches(&app, &benign).await;
    let declared: HashSet<&str> = found
        .iter()
        .filter(|s| s["latent"] == false)
        .map(|s| str_of(s, "need_id"))
        .collect();
    assert_eq!(
        declared,
        HashSet::from([accepting.as_str(), refusing.as_str()]),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|s| s["latent"] == true),
        "the cement works is a latent receiver: {found:#?}"
    );

    // Once the refusing receiver accepts the code, it gets the hazardous ash too.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{refusing}"),
        json!({"accepted_ewc": ["10 01 02", "19 01 13"]}),
    )
    .await;
    let found = matches(&app, &toxic).await;
    let got: HashSet<&str> = found
        .iter()
        .filter(|s| s["latent"] == false)
        .map(|s| str_of(s, "need_id"))
        .collect();
    assert_eq!(
        got,
        HashSet::from([accepting.as_str(), refusing.as_str()]),
        "{found:#?}"
    );
}

// ---------------------------------------------------------------------------------------------------
// 6. Latent synergies
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_cement_works_without_a_declared_need_is_a_latent_receiver_ranked_below_a_declared_one() {
    let app = spawn_app().await;
    let plant = site(
        &app,
        "Centrale thermique",
        "35.11Z",
        MACON,
        near(&app, MACON, 0.0, 0.0),
    )
    .await;
    // Two cement works at the same distance: one declared a need (of a class that only its activity
    // relates to fly ash: same fit as the latent one), the other declared nothing.
    let declared = site(
        &app,
        "Ciments de l'Est",
        "23.51Z",
        MACON,
        near(&app, MACON, 10.0, 0.0),
    )
    .await;
    let silent = site(
        &app,
        "Ciments de l'Ouest",
        "23.51Z",
        MACON,
        near(&app, MACON, -10.0, 0.0),
    )
    .await;
    let ash = resource(
        &app,
        &plant,
        json!({"kind": "offer", "category": "material", "label": "Cendres volantes de charbon", "ewc_code": "10 01 02",
               "quantity": tonnes(1000.0)}),
    )
    .await;
    let raw_meal = resource(
        &app,
        &declared,
        json!({"kind": "need", "category": "material", "class": "material/mineral/ash",
               "label": "Ajouts au cru"}),
    )
    .await;

    let found = matches(&app, &ash).await;
    let explicit = one(&found, "receiver_actor_id", &declared.id);
    let latent = one(&found, "receiver_actor_id", &silent.id);
    assert_eq!(explicit["latent"], false);
    assert_eq!(explicit["need_id"], raw_meal.as_str());
    assert_eq!(latent["latent"], true, "{latent:#}");
    assert_eq!(latent["need_id"], Value::Null);
    assert_eq!(latent["provider_actor_id"], plant.id.as_str());
    assert_eq!(explicit["fit_level"], "same_class");
    assert_eq!(
        latent["fit_level"], "pathway",
        "fly ash → cement is documented"
    );
    // The latent fit comes from the receiver model (the division's probability, raised for the class
    // the evidence names, at most 1); the sentence gives the division's probability.
    let p = num(&latent["components"], "resource_fit");
    assert!(p > 0.2 && p <= 1.0, "{p}");
    assert!(
        str_of(latent, "explanation_fr").contains("probabilité estimée pour"),
        "{}",
        latent["explanation_fr"]
    );
    approx(
        num(latent, "distance_km"),
        num(explicit, "distance_km"),
        "same distance",
    );
    approx(num(latent, "distance_km"), km(&plant, &silent), "distance");
    approx(
        num(&latent["components"], "confidence"),
        app.app.settings.matching.latent_confidence,
        "latent confidence",
    );
    approx(
        num(&explicit["components"], "confidence"),
        1.0,
        "declared confidence",
    );
    assert!(
        num(latent, "score") < num(explicit, "score"),
        "latent below declared of equal fit"
    );
    let rank = |actor: &str| {
        found
            .iter()
            .position(|s| s["receiver_actor_id"] == actor)
            .expect("ranked")
    };
    assert!(rank(&declared.id) < rank(&silent.id));
    let fr = str_of(latent, "explanation_fr");
    assert!(
        fr.contains(&silent.name) && fr.contains(&plant.name) && fr.contains("23.51Z"),
        "{fr}"
    );

    // The latent filter.
    let latent_only = all_items(&app, "/api/v1/synergies?territory=71&latent=true").await;
    assert!(
        !latent_only.is_empty() && latent_only.iter().all(|s| s["latent"] == true),
        "{latent_only:#?}"
    );
    assert!(latent_only.iter().any(|s| s["id"] == latent["id"]));
    let declared_only = all_items(&app, "/api/v1/synergies?territory=71&latent=false").await;
    assert!(declared_only.iter().all(|s| s["latent"] == false));
    assert!(declared_only.iter().any(|s| s["id"] == explicit["id"]));

    // Once the silent works declares a need for ashes, the latent synergy gives way to a declared one.
    let latent_id = str_of(latent, "id").to_owned();
    let ash_need = resource(&app, &silent, ash_need("Cendres pour le cru", &[])).await;
    let found = matches(&app, &ash).await;
    let now = one(&found, "receiver_actor_id", &silent.id);
    assert_eq!(now["latent"], false);
    assert_eq!(now["need_id"], ash_need.as_str());
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{latent_id}"))
            .await
            .status,
        404,
        "latent synergy retired"
    );
}

#[actix_web::test]
async fn a_digester_nearby_is_a_latent_receiver_of_manure() {
    let app = spawn_app().await;
    let farm = site(
        &app,
        "GAEC du Val de Saône",
        "01.41Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let digester = site(
        &app,
        "Méthanisation de la Plaine",
        "35.21Z",
        DIJON,
        near(&app, DIJON, 8.0, 0.0),
    )
    .await;
    let manure = resource(
        &app,
        &farm,
        json!({"kind": "offer", "category": "material", "label": "Fumier bovin", "ewc_code": "02 01 06",
               "quantity": tonnes(800.0)}),
    )
    .await;
    let found = matches(&app, &manure).await;
    let s = one(&found, "receiver_actor_id", &digester.id);
    assert_eq!(s["latent"], true);
    assert_eq!(s["need_id"], Value::Null);
    assert_eq!(s["class"], "material/biomass/manure");
    approx(num(s, "distance_km"), km(&farm, &digester), "distance");
    assert!(
        str_of(s, "explanation_en").contains(&digester.name),
        "{}",
        s["explanation_en"]
    );
    let listed = all_items(&app, "/api/v1/synergies?territory=21&latent=true").await;
    assert!(listed.iter().any(|x| x["id"] == s["id"]), "{listed:#?}");
}
