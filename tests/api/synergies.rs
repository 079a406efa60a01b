//! Synergy detection through the API, on hand-built territories: actors placed at explicit
//! coordinates around real communes (Dijon, Beaune, Mâcon), with offers and needs chosen so that a
//! single rule decides each outcome. Expected numbers are computed by hand from the documented
//! formulas (score.rs, compat.rs, resource_classes.csv), not read back from the engine.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

mod incremental;
mod rules;

const DIJON: &str = "21231";
const BEAUNE: &str = "21054";
const MACON: &str = "71270";
/// Kilometres per degree of latitude, to place actors a given distance apart.
const KM_PER_DEGREE: f64 = 111.2;
/// Mean Earth radius (IUGG), the one the engine documents for its distances.
const EARTH_RADIUS_KM: f64 = 6_371.008_8;
/// Distance-decay scale of `material/biomass/wood` (knowledge/resource_classes.csv).
const WOOD_DECAY_KM: f64 = 50.0;

/// One actor of a hand-built territory.
#[derive(Debug, Clone)]
struct Site {
    id: String,
    name: String,
    lat: f64,
    lng: f64,
}

/// The point `east_km` east and `north_km` north of a commune's centroid.
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

/// Creates an actor of `commune` at an explicit position.
async fn site(app: &TestApp, name: &str, naf: &str, commune: &str, (lat, lng): (f64, f64)) -> Site {
    let id = app
        .create_actor(json!({"name": name, "naf_code": naf, "commune_insee": commune, "lat": lat, "lng": lng}))
        .await;
    Site {
        id,
        name: name.to_owned(),
        lat,
        lng,
    }
}

/// Great-circle distance (haversine), as the engine documents it.
fn km(a: &Site, b: &Site) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dl = (b.lng - a.lng).to_radians();
    let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// `2,5 km` / `38 km`, as explanations write distances in French.
fn km_fr(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.1} km").replace('.', ",")
    } else {
        format!("{d:.0} km")
    }
}

fn km_en(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.1} km")
    } else {
        format!("{d:.0} km")
    }
}

fn tonnes(value: f64) -> Value {
    json!({"value": value, "unit": "t", "period": "year"})
}

/// Sawdust of a sawmill (03 01 05, class `material/biomass/wood`).
fn sawdust(t_per_year: f64) -> Value {
    json!({"kind": "offer", "category": "material", "label": "Sciure de résineux", "ewc_code": "03 01 05",
           "quantity": tonnes(t_per_year)})
}

/// A wood-biomass boiler's need, accepting sawdust.
fn boiler_need(quantity: Value) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
           "label": "Combustible bois pour chaudière", "accepted_ewc": ["03 01 05"], "quantity": quantity})
}

/// Creates a resource and returns its id.
async fn resource(app: &TestApp, owner: &Site, body: Value) -> String {
    app.create_resource(&owner.id, body).await["id"]
        .as_str()
        .expect("resource id")
        .to_owned()
}

async fn ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

async fn patch_ok(app: &TestApp, path: &str, body: Value) {
    let reply = app.patch(path, &body).await;
    assert_eq!(reply.status, 200, "PATCH {path}: {}", reply.text);
}

fn items(reply: &Reply) -> Vec<Value> {
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Every item of a paginated list (pages of 100).
async fn all_items(app: &TestApp, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut next = format!("{path}{sep}limit=100");
    loop {
        let page = ok(app, &next).await;
        out.extend(items(&page));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}{sep}limit=100&cursor={cursor}"),
            None => return out,
        }
    }
}

/// Ranked receivers of an offer (or providers of a need).
async fn matches(app: &TestApp, resource_id: &str) -> Vec<Value> {
    all_items(app, &format!("/api/v1/resources/{resource_id}/matches")).await
}

fn str_of<'a>(item: &'a Value, field: &str) -> &'a str {
    item[field].as_str().unwrap_or_default()
}

fn num(item: &Value, field: &str) -> f64 {
    item[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {item}"))
}

fn approx(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < 1e-6,
        "{what}: expected {expected}, got {got}"
    );
}

fn need_ids(found: &[Value]) -> Vec<&str> {
    found.iter().map(|s| str_of(s, "need_id")).collect()
}

/// The synergy whose `field` is `value`.
fn one<'a>(found: &'a [Value], field: &str, value: &str) -> &'a Value {
    let hits: Vec<&Value> = found.iter().filter(|s| s[field] == value).collect();
    assert_eq!(
        hits.len(),
        1,
        "one synergy with {field} = {value} expected in {found:#?}"
    );
    hits[0]
}

/// The score recomputed from the returned components and the configured weights.
fn weighted(app: &TestApp, components: &Value) -> f64 {
    let w = &app.app.settings.matching.weights;
    let pairs = [
        (w.resource_fit, "resource_fit"),
        (w.quantity_coverage, "quantity_coverage"),
        (w.distance, "distance"),
        (w.time_overlap, "time_overlap"),
        (w.quality, "quality"),
        (w.regulatory_risk, "regulatory_risk"),
        (w.confidence, "confidence"),
        (w.territorial_priority, "territorial_priority"),
    ];
    let total: f64 = pairs.iter().map(|(w, _)| w).sum();
    pairs
        .iter()
        .map(|(w, name)| w * num(components, name))
        .sum::<f64>()
        / total
}

fn weight_share(app: &TestApp, pick: impl Fn(&symbiose::matching::ScoringWeights) -> f64) -> f64 {
    let w = &app.app.settings.matching.weights;
    let total = w.resource_fit
        + w.quantity_coverage
        + w.distance
        + w.time_overlap
        + w.quality
        + w.regulatory_risk
        + w.confidence
        + w.territorial_priority;
    pick(w) / total
}

fn substitutions(list: &[Value]) -> Vec<Value> {
    list.iter()
        .filter(|s| s["kind"] == "substitution")
        .cloned()
        .collect()
}

fn poolings(list: &[Value]) -> Vec<Value> {
    list.iter()
        .filter(|s| s["kind"] == "pooling")
        .cloned()
        .collect()
}

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

// ---------------------------------------------------------------------------------------------------
// 4. Temperature
// ---------------------------------------------------------------------------------------------------

fn heat(kind: &str, label: &str, temperature_c: f64, mwh: f64) -> Value {
    json!({"kind": kind, "category": "energy", "class": "energy/heat/low_temperature", "label": label,
           "temperature_c": temperature_c, "quantity": {"value": mwh, "unit": "MWh", "period": "year"}})
}

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

fn ash_need(label: &str, accepted: &[&str]) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/mineral/ash", "label": label,
           "accepted_ewc": accepted, "quantity": tonnes(100.0)})
}

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

// ---------------------------------------------------------------------------------------------------
// 7. Stable ids and retirement
// ---------------------------------------------------------------------------------------------------

/// The database keeps decisions, not candidates: a detection stores nothing; a synergy nobody
/// decided anything about has an empty history and no notes (200, not 404); its first note stores
/// it, and its status then survives re-detection.
#[actix_web::test]
async fn detection_stores_nothing_until_a_first_decision() {
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
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 4.0, 0.0),
    )
    .await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    let listed = all_items(&app, "/api/v1/synergies").await;
    assert!(!listed.is_empty(), "the declared pair: {listed:#?}");
    let stored = || {
        let mut conn = app.app.pool.get().expect("a connection");
        symbiose::db::synergies::count(&mut conn).expect("count")
    };
    assert_eq!(stored(), 0, "candidates are not stored");
    let id = str_of(&listed[0], "id").to_owned();
    for path in ["history", "notes"] {
        let reply = ok(&app, &format!("/api/v1/synergies/{id}/{path}")).await;
        assert_eq!(reply.body["items"], json!([]), "{path}: {}", reply.text);
    }
    let unknown = Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{unknown}/history"))
            .await
            .status,
        404
    );
    let note = app
        .post(
            &format!("/api/v1/synergies/{id}/notes"),
            &json!({"text": "appeler la chaufferie"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    assert_eq!(stored(), 1, "stored on its first decision");
    patch_ok(
        &app,
        &format!("/api/v1/synergies/{id}"),
        json!({"status": "proposed"}),
    )
    .await;
    assert_eq!(stored(), 1);
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.body["summary"]["inserted"], 0, "{}", run.text);
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    assert_eq!(got.body["status"], "proposed", "{}", got.text);
    let notes = ok(&app, &format!("/api/v1/synergies/{id}/notes")).await;
    assert_eq!(notes.body["items"][0]["text"], "appeler la chaufferie");
    assert_eq!(stored(), 1, "re-detection stores no candidate");
}

#[actix_web::test]
async fn a_pair_keeps_its_id_across_detections_and_edits_and_is_retired_with_its_need() {
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
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 4.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let expected_id = symbiose::matching::engine::synergy_id(
        Uuid::parse_str(&offer).expect("uuid"),
        Uuid::parse_str(&need).expect("uuid"),
    );

    let listed = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let id = str_of(&listed[0], "id").to_owned();
    assert_eq!(id, expected_id.to_string(), "UUID v5 of (offer, need)");
    assert_eq!(Uuid::parse_str(&id).expect("uuid").get_version_num(), 5);
    let first_score = num(&listed[0], "score");

    for _ in 0..2 {
        let run = app.post("/api/v1/synergies/detect", &json!({})).await;
        assert_eq!(run.status, 200, "{}", run.text);
        assert_eq!(run.body["substitution"], 1);
        assert_eq!(
            run.body["summary"]["inserted"], 0,
            "nothing new: {}",
            run.text
        );
        assert_eq!(run.body["summary"]["updated"], 0, "nothing changed");
        assert_eq!(run.body["summary"]["unchanged"], 1, "not rewritten");
        assert_eq!(run.body["summary"]["retired"], 0);
        let again = substitutions(&all_items(&app, "/api/v1/synergies").await);
        assert_eq!(again.len(), 1);
        assert_eq!(str_of(&again[0], "id"), id, "same id across runs");
    }

    // A tenth of the offer left: a lower score, the same id.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"quantity": tonnes(50.0)}),
    )
    .await;
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    assert_eq!(got.body["id"], id.as_str());
    approx(
        num(&got.body, "coverage"),
        50.0 / 300.0,
        "coverage after the edit",
    );
    let new_score = num(&got.body, "score");
    assert!(
        new_score < first_score,
        "score updated: {first_score} → {new_score}"
    );
    // Candidates are not stored; the first decision stores the synergy, and re-detection keeps
    // the stored figures in step.
    {
        let mut conn = app.app.pool.get().expect("a connection");
        assert!(matches!(
            symbiose::db::synergies::get(&mut conn, &id),
            Err(symbiose::db::DbError::NotFound)
        ));
    }
    patch_ok(
        &app,
        &format!("/api/v1/synergies/{id}"),
        json!({"note": "à présenter aux deux sites"}),
    )
    .await;
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"quantity": tonnes(40.0)}),
    )
    .await;
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    let new_score = num(&got.body, "score");
    {
        let mut conn = app.app.pool.get().expect("a connection");
        let row = symbiose::db::synergies::get(&mut conn, &id).expect("stored on its note");
        assert!(row.active);
        assert_eq!(row.status, "detected");
        approx(row.score, new_score, "stored score updated");
        assert_eq!(row.offer_id.as_deref(), Some(offer.as_str()));
        assert_eq!(row.need_id.as_deref(), Some(need.as_str()));
    }

    // The need goes: the synergy is retired. The boiler (a heat network, a known user of wood) stays
    // a latent receiver, under another id.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{need}"))
            .await
            .status,
        204
    );
    let left = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert!(
        left.iter()
            .all(|s| s["latent"] == true && s["need_id"].is_null() && s["id"] != id.as_str()),
        "{left:#?}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.status,
        404
    );
    assert!(
        matches(&app, &offer)
            .await
            .iter()
            .all(|s| s["id"] != id.as_str())
    );
    assert!(
        items(&ok(&app, &format!("/api/v1/actors/{}/synergies", sawmill.id)).await)
            .iter()
            .all(|s| s["id"] != id.as_str())
    );
    {
        let mut conn = app.app.pool.get().expect("a connection");
        let row = symbiose::db::synergies::get(&mut conn, &id).expect("kept for history");
        assert!(!row.active, "retired");
        assert!(row.retired_at.is_some());
    }
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.body["substitution"], left.len(), "{}", run.text);
    assert_eq!(
        run.body["summary"]["retired"], 0,
        "already retired: {}",
        run.text
    );

    // A new need of the same boiler is a new pair, hence a new id.
    let need2 = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let listed = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert_eq!(
        need_ids(&listed),
        vec![need2.as_str()],
        "declared again, no longer latent: {listed:#?}"
    );
    assert_ne!(str_of(&listed[0], "id"), id);
}

// ---------------------------------------------------------------------------------------------------
// 8. Allocation
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn allocation_beats_greedy_on_a_constructed_instance() {
    let app = spawn_app().await;
    // Along an east-west line: B ── 20 km ── X ─ 2 km ─ A ── 10 km ── Y. B may not travel over 25 km,
    // so it reaches X only; A reaches X (best score) and Y.
    let x = site(
        &app,
        "Chaufferie X",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let a = site(
        &app,
        "Scierie A",
        "16.10A",
        DIJON,
        near(&app, DIJON, 2.0, 0.0),
    )
    .await;
    let y = site(
        &app,
        "Chaufferie Y",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 12.0, 0.0),
    )
    .await;
    let b = site(
        &app,
        "Scierie B",
        "16.10A",
        DIJON,
        near(&app, DIJON, -20.0, 0.0),
    )
    .await;
    let offer_a = resource(&app, &a, sawdust(100.0)).await;
    let mut body_b = sawdust(100.0);
    body_b["max_distance_km"] = json!(25);
    let offer_b = resource(&app, &b, body_b).await;
    let need_x = resource(&app, &x, boiler_need(tonnes(100.0))).await;
    let need_y = resource(&app, &y, boiler_need(tonnes(100.0))).await;

    let declared =
        substitutions(&all_items(&app, "/api/v1/synergies?territory=21&latent=false").await);
    let pair = |o: &str, n: &str| {
        declared
            .iter()
            .find(|s| s["offer_id"] == o && s["need_id"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("synergy {o} → {n} in {declared:#?}"))
    };
    let (ax, ay, bx) = (
        pair(&offer_a, &need_x),
        pair(&offer_a, &need_y),
        pair(&offer_b, &need_x),
    );
    assert!(
        !declared
            .iter()
            .any(|s| s["offer_id"] == offer_b.as_str() && s["need_id"] == need_y.as_str()),
        "B cannot reach Y"
    );
    assert_eq!(declared.len(), 3, "{declared:#?}");
    let (s_ax, s_ay, s_bx) = (num(&ax, "score"), num(&ay, "score"), num(&bx, "score"));
    assert!(
        s_ax > s_ay && s_ax > s_bx,
        "A → X is the best single synergy: {s_ax} {s_ay} {s_bx}"
    );

    let reply = ok(&app, "/api/v1/territories/21/allocation").await;
    let alloc = &reply.body;
    let allocated = |s: &Value| {
        alloc["per_synergy"]
            .as_array()
            .and_then(|v| v.iter().find(|p| p["synergy_id"] == s["id"]))
            .map(|p| num(p, "allocated"))
            // only non-zero flows are listed: a synergy that loses to better uses is absent
            .unwrap_or(0.0)
    };
    // Greedy takes A → X first and then nothing fits; the optimum sends A → Y and B → X.
    approx(allocated(&ay), 100.0, "A → Y");
    approx(allocated(&bx), 100.0, "B → X");
    approx(allocated(&ax), 0.0, "A → X");
    assert!(
        alloc["per_synergy"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|p| num(p, "allocated") > 0.0)),
        "only the two non-zero flows: {alloc:#}"
    );
    // Each flow names its parties and the class, in the reader's language.
    let flow_ay = alloc["per_synergy"]
        .as_array()
        .and_then(|v| v.iter().find(|p| p["synergy_id"] == ay["id"]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(flow_ay["provider"]["name"], "Scierie A", "{flow_ay:#}");
    assert_eq!(flow_ay["receiver"]["name"], "Chaufferie Y");
    assert_eq!(flow_ay["class"], "material/biomass/wood");
    let french = str_of(&flow_ay, "class_label").to_owned();
    let english = app
        .get_lang("/api/v1/territories/21/allocation", "en")
        .await;
    let english_label = english.body["per_synergy"]
        .as_array()
        .and_then(|v| v.iter().find(|p| p["synergy_id"] == ay["id"]))
        .map(|p| str_of(p, "class_label").to_owned())
        .unwrap_or_default();
    assert!(!french.is_empty() && !english_label.is_empty());
    assert_ne!(french, english_label, "FR and EN labels");
    // values are rounded to 1e-3 in the answer
    let rounded = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 5e-4 + 1e-9, "{what}: {got} vs {want}");
    };
    rounded(
        num(alloc, "total_value"),
        100.0 * (s_ay + s_bx),
        "optimal value",
    );
    rounded(num(alloc, "greedy_value"), 100.0 * s_ax, "greedy value");
    assert!(
        num(alloc, "total_value") > num(alloc, "greedy_value") + 1.0,
        "{alloc:#}"
    );
    let tonnes_unit = alloc["by_unit"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["base_unit"] == "t"))
        .cloned()
        .unwrap_or_else(|| panic!("unit t in {alloc:#}"));
    assert_eq!(tonnes_unit["exact"], true);
    approx(num(&tonnes_unit, "allocated"), 200.0, "tonnes allocated");
    approx(
        num(&tonnes_unit, "greedy_allocated"),
        100.0,
        "tonnes allocated by greedy",
    );
    approx(
        num(&alloc["total_allocated_by_unit"], "t"),
        200.0,
        "total by unit",
    );
    // Latent synergies take no part.
    let excluded: HashSet<&str> = alloc["excluded"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| str_of(e, "synergy_id"))
        .collect();
    for s in all_items(&app, "/api/v1/synergies?territory=21&latent=true").await {
        assert!(
            excluded.contains(str_of(&s, "id")),
            "latent {} excluded",
            s["id"]
        );
    }
    assert_eq!(
        app.get("/api/v1/territories/XX-NOWHERE/allocation")
            .await
            .status,
        404
    );
}

// ---------------------------------------------------------------------------------------------------
// 9. Pooling
// ---------------------------------------------------------------------------------------------------

fn collection_need(per_year: f64) -> Value {
    json!({"kind": "need", "category": "service", "class": "service/collection", "label": "Collecte des cartons",
           "quantity": {"value": per_year, "unit": "unit", "period": "year"}})
}

/// Spherical mean of positions (the centroid the pooling groups document).
fn spherical_mean(sites: &[&Site]) -> (f64, f64) {
    let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
    for s in sites {
        let (p, l) = (s.lat.to_radians(), s.lng.to_radians());
        x += p.cos() * l.cos();
        y += p.cos() * l.sin();
        z += p.sin();
    }
    let norm = (x * x + y * y + z * z).sqrt();
    ((z / norm).asin().to_degrees(), y.atan2(x).to_degrees())
}

#[actix_web::test]
async fn pooling_groups_form_at_three_members_not_two() {
    let app = spawn_app().await;
    let one_site = site(
        &app,
        "Imprimerie",
        "18.12Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let two = site(
        &app,
        "Menuiserie",
        "16.23Z",
        DIJON,
        near(&app, DIJON, 2.0, 1.0),
    )
    .await;
    let three = site(
        &app,
        "Laiterie",
        "10.51C",
        DIJON,
        near(&app, DIJON, -1.0, 2.5),
    )
    .await;
    // Same need, 60 km away: beyond the 15 km radius.
    let remote = site(
        &app,
        "Fromagerie",
        "10.51C",
        DIJON,
        near(&app, DIJON, 60.0, 0.0),
    )
    .await;
    resource(&app, &one_site, collection_need(12.0)).await;
    resource(&app, &two, collection_need(24.0)).await;
    resource(&app, &remote, collection_need(6.0)).await;

    // Two nearby actors: a bilateral deal, no group.
    let groups = all_items(&app, "/api/v1/synergies?territory=21&kind=pooling").await;
    assert!(groups.is_empty(), "{groups:#?}");

    let third = resource(&app, &three, collection_need(52.0)).await;
    let groups = all_items(&app, "/api/v1/synergies?territory=21&kind=pooling").await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = &groups[0];
    assert_eq!(g["kind"], "pooling");
    assert_eq!(g["key_kind"], "need_class");
    assert_eq!(g["key"], "service/collection");
    let members: HashSet<&str> = g["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| str_of(m, "actor_id"))
        .collect();
    assert_eq!(
        members,
        HashSet::from([one_site.id.as_str(), two.id.as_str(), three.id.as_str()])
    );
    approx(
        num(g, "total_yearly_quantity"),
        12.0 + 24.0 + 52.0,
        "total yearly volume",
    );
    assert_eq!(g["base_unit"], "unit");
    let (lat, lng) = spherical_mean(&[&one_site, &two, &three]);
    approx(num(&g["centroid"], "lat"), lat, "centroid lat");
    approx(num(&g["centroid"], "lng"), lng, "centroid lng");
    let c = Site {
        id: String::new(),
        name: String::new(),
        lat,
        lng,
    };
    let radius = [&one_site, &two, &three]
        .iter()
        .map(|s| km(s, &c))
        .fold(0.0, f64::max);
    approx(
        num(g, "radius_km"),
        radius,
        "radius = farthest member from the centroid",
    );
    assert!(radius < 5.0);
    let score = num(g, "score");
    assert!((0.0..=1.0).contains(&score));
    let id = str_of(g, "id").to_owned();
    assert_eq!(
        ok(&app, &format!("/api/v1/synergies/{id}")).await.body["key"],
        "service/collection"
    );
    // Listed for each member, not for the remote actor.
    for member in [&one_site, &two, &three] {
        let mine = items(
            &ok(
                &app,
                &format!("/api/v1/actors/{}/synergies?kind=pooling", member.id),
            )
            .await,
        );
        assert_eq!(mine.len(), 1, "{mine:#?}");
    }
    assert!(items(&ok(&app, &format!("/api/v1/actors/{}/synergies", remote.id)).await).is_empty());
    // Filters: not a substitution, never latent.
    assert!(poolings(&all_items(&app, "/api/v1/synergies?kind=substitution").await).is_empty());
    assert!(poolings(&all_items(&app, "/api/v1/synergies?latent=true").await).is_empty());

    // Back to two: the group is retired.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{third}"))
            .await
            .status,
        204
    );
    assert!(
        all_items(&app, "/api/v1/synergies?kind=pooling")
            .await
            .is_empty()
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.status,
        404
    );
}

#[actix_web::test]
async fn three_producers_of_the_same_waste_pool_its_collection() {
    let app = spawn_app().await;
    let mut sites = Vec::new();
    for (i, (east, north)) in [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)].into_iter().enumerate() {
        let s = site(
            &app,
            &format!("Atelier {i}"),
            "25.62A",
            MACON,
            near(&app, MACON, east, north),
        )
        .await;
        resource(
            &app,
            &s,
            json!({"kind": "offer", "category": "material", "label": "Emballages en carton", "ewc_code": "15 01 01",
                   "quantity": tonnes(10.0 * (i as f64 + 1.0))}),
        )
        .await;
        sites.push(s);
    }
    let groups = all_items(&app, "/api/v1/synergies?territory=71&kind=pooling").await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["key_kind"], "offer_ewc");
    assert_eq!(groups[0]["key"], "15 01 01");
    assert_eq!(groups[0]["members"].as_array().map(Vec::len), Some(3));
    approx(
        num(&groups[0], "total_yearly_quantity"),
        60.0,
        "10 + 20 + 30 t",
    );
    assert_eq!(groups[0]["base_unit"], "t");
    assert!(
        all_items(&app, "/api/v1/synergies?territory=21&kind=pooling")
            .await
            .is_empty(),
        "not in Côte-d'Or"
    );
}

// ---------------------------------------------------------------------------------------------------
// 10. Exports
// ---------------------------------------------------------------------------------------------------

/// Checks that `text` is a well-formed XML document as far as these tests need: a declaration, one
/// root element, balanced and properly nested tags, quoted unique attributes, only the predefined or
/// numeric entities, no markup character left unescaped. Returns the element names in order.
fn xml_elements(text: &str) -> Result<Vec<String>, String> {
    fn check_text(text: &str) -> Result<(), String> {
        if text.contains('<') {
            return Err(format!("unescaped `<` in {text:?}"));
        }
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            let tail = &rest[i + 1..];
            let end = tail
                .find(';')
                .ok_or_else(|| format!("bare `&` in {text:?}"))?;
            let entity = &tail[..end];
            let numeric = entity
                .strip_prefix("#x")
                .map(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                .or_else(|| {
                    entity
                        .strip_prefix('#')
                        .map(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                })
                .unwrap_or(false);
            if !numeric && !matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos") {
                return Err(format!("unknown entity `&{entity};`"));
            }
            rest = &tail[end + 1..];
        }
        Ok(())
    }
    fn is_name(name: &str) -> bool {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
    }
    fn check_attributes(mut rest: &str) -> Result<(), String> {
        let mut seen = HashSet::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return Ok(());
            }
            let eq = rest
                .find('=')
                .ok_or_else(|| format!("attribute without value: {rest:?}"))?;
            let name = rest[..eq].trim();
            if !is_name(name) || !seen.insert(name.to_owned()) {
                return Err(format!("bad or duplicate attribute name {name:?}"));
            }
            let after = rest[eq + 1..].trim_start();
            let quote = after
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
                .ok_or("unquoted attribute")?;
            let close = after[1..]
                .find(quote)
                .ok_or("unterminated attribute value")?;
            check_text(&after[1..1 + close])?;
            rest = &after[close + 2..];
        }
    }

    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !rest.starts_with("<?xml") {
        return Err("no XML declaration at the start".into());
    }
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut roots = 0;
    loop {
        let start = rest.find('<').unwrap_or(rest.len());
        let between = &rest[..start];
        if stack.is_empty() && !between.trim().is_empty() {
            return Err(format!("text outside the root element: {between:?}"));
        }
        check_text(between)?;
        if start == rest.len() {
            break;
        }
        let markup = &rest[start..];
        if let Some(r) = markup.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unterminated processing instruction")?;
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = markup.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
            continue;
        }
        let end = markup.find('>').ok_or("unterminated tag")?;
        let tag = &markup[1..end];
        rest = &markup[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or_else(|| format!("closing `{name}` without an open element"))?;
            if open != name.trim_end() {
                return Err(format!("`<{open}>` closed by `</{name}>`"));
            }
            continue;
        }
        let (inner, empty) = match tag.strip_suffix('/') {
            Some(inner) => (inner, true),
            None => (tag, false),
        };
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        let name = &inner[..name_end];
        if !is_name(name) {
            return Err(format!("bad element name {name:?}"));
        }
        check_attributes(&inner[name_end..])?;
        if stack.is_empty() {
            roots += 1;
        }
        elements.push(name.to_owned());
        if !empty {
            stack.push(name.to_owned());
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("`<{open}>` never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

#[test]
fn the_xml_check_rejects_malformed_documents() {
    let ok = "<?xml version=\"1.0\"?>\n<a x=\"1\"><b>t &amp; u</b><c/></a>\n";
    assert_eq!(xml_elements(ok).expect("well formed"), vec!["a", "b", "c"]);
    for bad in [
        "<a></a>",
        "<?xml version=\"1.0\"?><a><b></a></b>",
        "<?xml version=\"1.0\"?><a>",
        "<?xml version=\"1.0\"?><a>x & y</a>",
        "<?xml version=\"1.0\"?><a x=1></a>",
        "<?xml version=\"1.0\"?><a x=\"1\" x=\"2\"></a>",
        "<?xml version=\"1.0\"?><a></a><b></b>",
        "<?xml version=\"1.0\"?><a>&nbsp;</a>",
    ] {
        assert!(xml_elements(bad).is_err(), "{bad}");
    }
}

#[actix_web::test]
async fn graph_exports_parse_and_link_the_actors() {
    let app = spawn_app().await;
    // Names with markup characters: exports must escape them.
    let sawmill = site(
        &app,
        "Bois & Fils <Scierie> \"Côte-d'Or\"",
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
    let lonely = site(&app, "Garage", "45.20A", DIJON, near(&app, DIJON, 0.0, 2.0)).await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    resource(&app, &close, boiler_need(tonnes(300.0))).await;
    resource(&app, &far, boiler_need(tonnes(300.0))).await;
    let sites: HashMap<&str, &Site> = [&sawmill, &close, &far, &lonely]
        .into_iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let synergies = substitutions(&all_items(&app, "/api/v1/synergies?territory=21").await);
    assert!(synergies.len() >= 2, "{synergies:#?}");

    // JSON: every link joins two nodes.
    let json_graph = ok(&app, "/api/v1/territories/21/graph?format=json").await;
    assert!(
        json_graph.content_type.starts_with("application/json"),
        "{}",
        json_graph.content_type
    );
    let nodes: HashSet<&str> = json_graph.body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| str_of(n, "id"))
        .collect();
    let links = json_graph.body["links"].as_array().expect("links");
    assert_eq!(
        nodes,
        sites.keys().copied().collect(),
        "every actor of the territory is a node"
    );
    assert_eq!(links.len(), synergies.len());
    for l in links {
        assert!(
            nodes.contains(str_of(l, "source")) && nodes.contains(str_of(l, "target")),
            "{l}"
        );
    }
    let link_ids: HashSet<&str> = links.iter().map(|l| str_of(l, "synergy_id")).collect();
    assert_eq!(
        link_ids,
        synergies.iter().map(|s| str_of(s, "id")).collect()
    );
    assert_eq!(
        ok(&app, "/api/v1/territories/21/graph").await.body,
        json_graph.body,
        "json by default"
    );

    // GraphML: well-formed, one node per actor, one edge per synergy.
    let graphml = ok(&app, "/api/v1/territories/21/graph?format=graphml").await;
    assert!(
        graphml.content_type.contains("graphml") || graphml.content_type.contains("xml"),
        "{}",
        graphml.content_type
    );
    let elements = xml_elements(&graphml.text)
        .unwrap_or_else(|e| panic!("GraphML not well formed: {e}\n{}", graphml.text));
    assert_eq!(elements.first().map(String::as_str), Some("graphml"));
    assert_eq!(
        elements.iter().filter(|e| *e == "node").count(),
        nodes.len()
    );
    assert_eq!(
        elements.iter().filter(|e| *e == "edge").count(),
        links.len()
    );
    assert!(
        graphml.text.contains("Bois &amp; Fils &lt;Scierie&gt;"),
        "escaped name"
    );
    for id in &nodes {
        assert!(
            graphml.text.contains(&format!("<node id=\"{id}\"")),
            "node {id}"
        );
    }

    // GeoJSON: actors as [lng, lat] points, synergies as lines from provider to receiver.
    let geo = ok(&app, "/api/v1/territories/21/graph?format=geojson").await;
    assert!(geo.content_type.contains("json"), "{}", geo.content_type);
    assert_eq!(geo.body["type"], "FeatureCollection");
    let features = geo.body["features"].as_array().expect("features");
    let point = |v: &Value| -> (f64, f64) {
        let c = v.as_array().expect("a position");
        assert_eq!(c.len(), 2);
        let (lng, lat) = (c[0].as_f64().expect("lng"), c[1].as_f64().expect("lat"));
        assert!(
            (-180.0..=180.0).contains(&lng) && (-90.0..=90.0).contains(&lat),
            "{v}"
        );
        (lng, lat)
    };
    let (mut points, mut lines) = (0, 0);
    for f in features {
        assert_eq!(f["type"], "Feature");
        match str_of(&f["geometry"], "type") {
            "Point" => {
                points += 1;
                let s = sites
                    .get(str_of(&f["properties"], "id"))
                    .unwrap_or_else(|| panic!("unknown actor {f}"));
                let (lng, lat) = point(&f["geometry"]["coordinates"]);
                approx(lng, s.lng, "point longitude first");
                approx(lat, s.lat, "point latitude second");
            }
            "LineString" => {
                lines += 1;
                let coords = f["geometry"]["coordinates"].as_array().expect("line");
                assert_eq!(coords.len(), 2);
                let from = sites
                    .get(str_of(&f["properties"], "source"))
                    .expect("source actor");
                let to = sites
                    .get(str_of(&f["properties"], "target"))
                    .expect("target actor");
                let (a, b) = (point(&coords[0]), point(&coords[1]));
                approx(a.0, from.lng, "line starts at the provider");
                approx(a.1, from.lat, "line starts at the provider");
                approx(b.0, to.lng, "line ends at the receiver");
                approx(b.1, to.lat, "line ends at the receiver");
            }
            other => panic!("unexpected geometry {other}"),
        }
    }
    assert_eq!(points, nodes.len());
    assert_eq!(lines, links.len());

    // Hubs and chains answer for the territory.
    let hubs = ok(&app, "/api/v1/territories/21/hubs").await;
    assert!(
        hubs.body["items"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["actor_id"] == sawmill.id.as_str())),
        "{}",
        hubs.text
    );
    let chains = ok(&app, "/api/v1/territories/21/chains").await;
    assert!(
        chains.body["chains"].is_object() && chains.body["loops"].is_array(),
        "{}",
        chains.text
    );

    // Errors.
    assert_field_error(
        &app.get("/api/v1/territories/21/graph?format=svg").await,
        "format",
    );
    for path in [
        "graph",
        "graph?format=graphml",
        "allocation",
        "chains",
        "hubs",
    ] {
        let reply = app
            .get(&format!("/api/v1/territories/XX-NOWHERE/{path}"))
            .await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert!(reply.content_type.starts_with("application/problem+json"));
    }
}

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

#[actix_web::test]
async fn with_a_staleness_limit_a_read_gets_the_previous_build_and_the_new_one_follows_in_the_background()
 {
    let app = crate::helpers::spawn_with(|s| s.matching.max_staleness_ms = 600_000).await;
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
    resource(&app, &sawmill, sawdust(500.0)).await;
    let first_need = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let path = format!("/api/v1/actors/{}/synergies?latent=false", boiler.id);
    let need_ids = |items: &[Value]| -> HashSet<String> {
        items
            .iter()
            .filter_map(|s| s["need_id"].as_str().map(str::to_owned))
            .collect()
    };
    // The server's start built the empty detection; a run asked for builds at once, whatever the
    // staleness limit allows.
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(
        run.body["summary"]["inserted"],
        run.body["substitution"].as_u64().unwrap_or(0) + run.body["pooling"].as_u64().unwrap_or(0),
        "everything is new against the start's empty build: {}",
        run.text
    );
    assert_eq!(
        need_ids(&all_items(&app, &path).await),
        HashSet::from([first_need.clone()])
    );

    let second = site(
        &app,
        "Chaufferie bois 2",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 0.0, 3.0),
    )
    .await;
    let second_need = resource(&app, &second, boiler_need(tonnes(200.0))).await;
    // A territory's list may read a recent build (an actor's own list may not: it waits for a
    // build with the actor's resources as stored).
    let territory_path = "/api/v1/synergies?territory=21&latent=false";
    // The previous build is recent: this read answers from it at once (no synergy of the new
    // need yet) and starts the rebuild in the background…
    assert_eq!(
        need_ids(&all_items(&app, territory_path).await),
        HashSet::from([first_need.clone()])
    );
    // …which then serves later reads, with no further write to trigger it.
    let mut seen = HashSet::new();
    for _ in 0..100 {
        seen = need_ids(&all_items(&app, territory_path).await);
        if seen.contains(&second_need) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, HashSet::from([first_need.clone(), second_need]));

    // A resource's matches never contradict its 201: a need created now has its matches at once,
    // even with a recent build that does not know it yet.
    let third = site(
        &app,
        "Chaufferie bois 3",
        "35.30Z",
        DIJON,
        near(&app, DIJON, -3.0, 0.0),
    )
    .await;
    let third_need = resource(&app, &third, boiler_need(tonnes(100.0))).await;
    let reply = app
        .get(&format!("/api/v1/resources/{third_need}/matches"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!items(&reply).is_empty(), "{}", reply.text);
    // Matched at once against the recent build, as the full build then matches it: same synergy
    // ids, scores, names and labels.
    let seen = |reply: &Reply| -> Vec<(String, String, String, String)> {
        items(reply)
            .iter()
            .map(|s| {
                (
                    str_of(s, "id").to_owned(),
                    format!("{:.9}", num(s, "score")),
                    str_of(s, "receiver_name").to_owned(),
                    str_of(s, "need_label").to_owned(),
                )
            })
            .collect()
    };
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    let rebuilt = app
        .get(&format!("/api/v1/resources/{third_need}/matches"))
        .await;
    assert_eq!(seen(&reply), seen(&rebuilt));
    assert_eq!(seen(&reply)[0].2, "Chaufferie bois 3");
}

#[actix_web::test]
async fn an_actors_list_sees_a_resource_created_a_moment_ago_whatever_the_staleness_limit() {
    let app = crate::helpers::spawn_with(|s| s.matching.max_staleness_ms = 600_000).await;
    let boiler = site(
        &app,
        "Chaufferie bois",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    // A build from before the sawmill: within the staleness limit, lists may read it.
    ok(&app, "/api/v1/synergies?limit=1").await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let list = items(&ok(&app, &format!("/api/v1/actors/{}/synergies", sawmill.id)).await);
    assert!(
        list.iter().any(|s| s["offer_id"] == offer.as_str()),
        "the sawmill's own list misses its new offer: {list:#?}"
    );
}
