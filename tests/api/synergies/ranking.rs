//! Ranking by distance and quantity coverage: the nearest, best-covered partner first, explained.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 1. Clear case: the near partner first, explained
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_nearest_boiler_ranks_first_and_the_explanation_names_both_parties() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie de la Tille",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let close = site(
        &app,
        "Chaufferie des Grésilles",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    let beaune = site(
        &app,
        "Chaufferie de Beaune",
        "35.30Z",
        BEAUNE,
        near(&app, BEAUNE, 0.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need_close = resource(&app, &close, boiler_need(tonnes(300.0))).await;
    let need_far = resource(&app, &beaune, boiler_need(tonnes(300.0))).await;
    let (d_close, d_far) = (km(&sawmill, &close), km(&sawmill, &beaune));
    assert!(
        d_far > 30.0 && d_far < 45.0,
        "Beaune is about 38 km from Dijon: {d_far}"
    );

    let found = matches(&app, &offer).await;
    assert_eq!(
        need_ids(&found),
        vec![need_close.as_str(), need_far.as_str()],
        "{found:#?}"
    );
    let best = &found[0];
    assert_eq!(best["kind"], "substitution");
    assert_eq!(best["offer_id"], offer.as_str());
    assert_eq!(best["provider_actor_id"], sawmill.id.as_str());
    assert_eq!(best["receiver_actor_id"], close.id.as_str());
    assert_eq!(best["provider_name"], sawmill.name.as_str());
    assert_eq!(best["receiver_name"], close.name.as_str());
    assert_eq!(best["latent"], false);
    assert_eq!(best["fit_level"], "code", "the need accepts 03 01 05");
    assert_eq!(best["class"], "material/biomass/wood");
    assert_eq!(best["ewc_code"], "030105");
    assert_eq!(best["status"], "detected");
    approx(
        num(best, "distance_km"),
        d_close,
        "distance to the near boiler",
    );
    approx(num(&found[1], "distance_km"), d_far, "distance to Beaune");
    assert!(num(best, "score") > num(&found[1], "score"));
    for s in &found {
        let score = num(s, "score");
        assert!((0.0..=1.0).contains(&score), "score in [0, 1]: {score}");
        approx(
            score,
            weighted(&app, &s["components"]),
            "score = weighted mean of the components",
        );
    }

    // Explanations name the provider, the receiver, the code and the distance.
    let (fr, en) = (
        str_of(best, "explanation_fr"),
        str_of(best, "explanation_en"),
    );
    for text in [fr, en] {
        assert!(
            text.contains(&sawmill.name) && text.contains(&close.name),
            "both actors named: {text}"
        );
        assert!(text.contains("03 01 05"), "code named: {text}");
    }
    assert!(
        fr.contains(&km_fr(d_close)),
        "French distance {} in: {fr}",
        km_fr(d_close)
    );
    assert!(
        en.contains(&km_en(d_close)),
        "English distance {} in: {en}",
        km_en(d_close)
    );
    assert!(
        fr.contains("couvre 100 % du besoin"),
        "300 t of a 500 t offer cover the need: {fr}"
    );
    let far_fr = str_of(&found[1], "explanation_fr");
    assert!(
        far_fr.contains(&beaune.name) && far_fr.contains(&km_fr(d_far)),
        "{far_fr}"
    );

    // The same ranking for the territory, with the same ids.
    let listed = substitutions(&items(&ok(&app, "/api/v1/synergies?territory=21").await));
    assert_eq!(
        need_ids(&listed),
        vec![need_close.as_str(), need_far.as_str()]
    );
    assert_eq!(listed[0]["id"], best["id"]);
    assert_eq!(listed[1]["id"], found[1]["id"]);
    // And from the need's side: the sawmill is its provider, same synergy.
    let providers = matches(&app, &need_close).await;
    assert_eq!(providers.len(), 1, "{providers:#?}");
    assert_eq!(providers[0]["offer_id"], offer.as_str());
    assert_eq!(providers[0]["id"], best["id"]);
    approx(
        num(&providers[0], "score"),
        num(best, "score"),
        "same score from both sides",
    );
    // One synergy by id.
    let id = str_of(best, "id");
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    assert_eq!(got.body["need_id"], need_close.as_str());
    assert_eq!(got.body["explanation_fr"], best["explanation_fr"]);
    assert_eq!(
        app.get(&format!("/api/v1/resources/{}/matches", Uuid::new_v4()))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{}", Uuid::new_v4()))
            .await
            .status,
        404
    );
    assert_eq!(app.get("/api/v1/synergies/not-a-uuid").await.status, 404);
}

// ---------------------------------------------------------------------------------------------------
// 2. Distance
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn distance_limits_remove_synergies_and_closer_partners_score_higher() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie de Dijon",
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
        "Chaufferie Sud",
        "35.30Z",
        BEAUNE,
        near(&app, DIJON, 0.0, -40.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need_close = resource(&app, &close, boiler_need(tonnes(300.0))).await;
    let need_far = resource(&app, &far, boiler_need(tonnes(300.0))).await;

    // All else equal, the closer partner scores higher, by the distance component alone.
    let found = matches(&app, &offer).await;
    assert_eq!(
        need_ids(&found),
        vec![need_close.as_str(), need_far.as_str()]
    );
    let (a, b) = (&found[0], &found[1]);
    let (da, db) = (km(&sawmill, &close), km(&sawmill, &far));
    approx(
        num(&a["components"], "distance"),
        (-da / WOOD_DECAY_KM).exp(),
        "distance decay, near",
    );
    approx(
        num(&b["components"], "distance"),
        (-db / WOOD_DECAY_KM).exp(),
        "distance decay, far",
    );
    for name in [
        "resource_fit",
        "quantity_coverage",
        "time_overlap",
        "quality",
        "regulatory_risk",
        "confidence",
    ] {
        approx(
            num(&a["components"], name),
            num(&b["components"], name),
            name,
        );
    }
    let expected_gap = weight_share(&app, |w| w.distance)
        * ((-da / WOOD_DECAY_KM).exp() - (-db / WOOD_DECAY_KM).exp());
    approx(
        num(a, "score") - num(b, "score"),
        expected_gap,
        "score gap = distance weight × decay gap",
    );
    assert!(expected_gap > 0.05, "a visible gap: {expected_gap}");

    // The offer's own maximum distance.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"max_distance_km": 20}),
    )
    .await;
    assert_eq!(
        need_ids(&matches(&app, &offer).await),
        vec![need_close.as_str()]
    );
    let listed = substitutions(&items(&ok(&app, "/api/v1/synergies?territory=21").await));
    assert_eq!(
        need_ids(&listed),
        vec![need_close.as_str()],
        "the territory list follows"
    );
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"max_distance_km": null}),
    )
    .await;
    assert_eq!(
        matches(&app, &offer).await.len(),
        2,
        "back without the limit"
    );

    // The need's maximum distance.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{need_far}"),
        json!({"max_distance_km": 30}),
    )
    .await;
    assert_eq!(
        need_ids(&matches(&app, &offer).await),
        vec![need_close.as_str()]
    );
    assert!(
        matches(&app, &need_far).await.is_empty(),
        "nor from the need's side"
    );
    patch_ok(
        &app,
        &format!("/api/v1/resources/{need_far}"),
        json!({"max_distance_km": null}),
    )
    .await;

    // The class default (150 km for wood): moving the far boiler to 145 km keeps it, to 155 km drops it.
    let (lat, lng) = near(&app, DIJON, 0.0, -145.0);
    patch_ok(
        &app,
        &format!("/api/v1/actors/{}", far.id),
        json!({"lat": lat, "lng": lng}),
    )
    .await;
    let found = matches(&app, &offer).await;
    assert_eq!(
        need_ids(&found),
        vec![need_close.as_str(), need_far.as_str()]
    );
    assert!(num(&found[1], "distance_km") > 140.0);
    let (lat, lng) = near(&app, DIJON, 0.0, -155.0);
    patch_ok(
        &app,
        &format!("/api/v1/actors/{}", far.id),
        json!({"lat": lat, "lng": lng}),
    )
    .await;
    assert_eq!(
        need_ids(&matches(&app, &offer).await),
        vec![need_close.as_str()]
    );
    let listed = substitutions(&items(&ok(&app, "/api/v1/synergies").await));
    assert_eq!(need_ids(&listed), vec![need_close.as_str()]);
}

// ---------------------------------------------------------------------------------------------------
// 3. Quantity
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_fully_covered_need_scores_higher_than_one_covered_at_ten_percent() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    // East and west at the same distance: only the quantities differ.
    let small = site(
        &app,
        "Petite chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 5.0, 0.0),
    )
    .await;
    let large = site(
        &app,
        "Grande chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, -5.0, 0.0),
    )
    .await;
    let weekly = site(
        &app,
        "Chaufferie hebdomadaire",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 0.0, 5.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need_small = resource(&app, &small, boiler_need(tonnes(400.0))).await;
    // 5 000 000 kg a year = 5 000 t: the 500 t offer covers 10 %.
    let need_large = resource(
        &app,
        &large,
        boiler_need(json!({"value": 5_000_000, "unit": "kg", "period": "year"})),
    )
    .await;
    // 10 t a week = 520 t a year.
    let need_weekly = resource(
        &app,
        &weekly,
        boiler_need(json!({"value": 10, "unit": "t", "period": "week"})),
    )
    .await;

    let found = matches(&app, &offer).await;
    assert_eq!(found.len(), 3, "{found:#?}");
    let (s, l, w) = (
        one(&found, "need_id", &need_small),
        one(&found, "need_id", &need_large),
        one(&found, "need_id", &need_weekly),
    );
    // Coverage = min(offer, need) / need; component = 0.7 × coverage + 0.3 × share of the offer used.
    approx(num(s, "coverage"), 1.0, "400 t of 500 t: fully covered");
    approx(num(s, "quantity"), 400.0, "exchangeable");
    approx(
        num(&s["components"], "quantity_coverage"),
        0.7 + 0.3 * 400.0 / 500.0,
        "quantity component, full",
    );
    approx(num(l, "coverage"), 0.1, "500 t of 5 000 t");
    approx(num(l, "quantity"), 500.0, "exchangeable");
    approx(
        num(&l["components"], "quantity_coverage"),
        0.7 * 0.1 + 0.3,
        "quantity component, 10 %",
    );
    approx(num(w, "coverage"), 500.0 / 520.0, "500 t of 10 t/week");
    approx(num(w, "quantity"), 500.0, "exchangeable");
    approx(
        num(&w["components"], "quantity_coverage"),
        0.7 * 500.0 / 520.0 + 0.3,
        "quantity component, weekly",
    );
    assert_eq!(s["base_unit"], "t");

    assert!(
        num(&s["components"], "quantity_coverage") > num(&l["components"], "quantity_coverage")
    );
    approx(
        num(s, "distance_km"),
        num(l, "distance_km"),
        "same distance east and west",
    );
    assert!(
        num(s, "score") > num(l, "score"),
        "full coverage ranks higher at the same distance"
    );
    let gap = weight_share(&app, |w| w.quantity_coverage) * ((0.7 + 0.3 * 0.8) - (0.07 + 0.3));
    approx(
        num(s, "score") - num(l, "score"),
        gap,
        "score gap = quantity weight × component gap",
    );
    let rank = |id: &str| {
        found
            .iter()
            .position(|f| f["need_id"] == id)
            .expect("ranked")
    };
    assert!(rank(&need_small) < rank(&need_large));
    assert!(
        str_of(s, "explanation_fr").contains("couvre 100 % du besoin"),
        "{}",
        s["explanation_fr"]
    );
    assert!(
        str_of(l, "explanation_fr").contains("couvre 10 % du besoin"),
        "{}",
        l["explanation_fr"]
    );
    assert!(
        str_of(l, "explanation_en").contains("covers 10 %"),
        "{}",
        l["explanation_en"]
    );
}
