//! Synergy detection through the API, on hand-built territories: actors placed at explicit
//! coordinates around real communes (Dijon, Beaune, Mâcon), with offers and needs chosen so that a
//! single rule decides each outcome. Expected numbers are computed by hand from the documented
//! formulas (score.rs, compat.rs, resource_classes.csv), not read back from the engine.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

mod allocation;
mod compatibility;
mod exports;
mod incremental;
mod lists;
mod pooling;
mod ranking;
mod rules;
mod stable_ids;
mod staleness;

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

fn heat(kind: &str, label: &str, temperature_c: f64, mwh: f64) -> Value {
    json!({"kind": kind, "category": "energy", "class": "energy/heat/low_temperature", "label": label,
           "temperature_c": temperature_c, "quantity": {"value": mwh, "unit": "MWh", "period": "year"}})
}

fn ash_need(label: &str, accepted: &[&str]) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/mineral/ash", "label": label,
           "accepted_ewc": accepted, "quantity": tonnes(100.0)})
}

fn collection_need(per_year: f64) -> Value {
    json!({"kind": "need", "category": "service", "class": "service/collection", "label": "Collecte des cartons",
           "quantity": {"value": per_year, "unit": "unit", "period": "year"}})
}
