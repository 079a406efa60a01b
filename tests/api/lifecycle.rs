//! Synergy lifecycle through the API: every transition allowed and refused, reasons, history,
//! notes, realised values, re-detection keeping statuses, KPIs (JSON and CSV) and the AFME impact
//! of implemented and proposed synergies, on tiny hand-built territories around Dijon (21).
//!
//! Expected numbers are computed by hand: sawdust (03 01 05, class `material/biomass/wood`, AFME
//! family `agricultural_food`) has a diverted share of 0.5 in `knowledge/impact_factors.csv`.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDateTime};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

mod impact;
mod kpis;
mod notes;
mod transitions;

const DIJON: &str = "21231";
/// Brest: far from anything in Côte-d'Or.
const BREST: &str = "29019";
const KM_PER_DEGREE: f64 = 111.2;
/// `material/biomass/wood` in knowledge/impact_factors.csv.
const WOOD_DIVERTED_SHARE: f64 = 0.5;
const STATUSES: [&str; 6] = [
    "detected",
    "proposed",
    "in_study",
    "implemented",
    "rejected",
    "abandoned",
];

// -------------------------------------------------------------------------------------------------
// fixtures

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

async fn actor(
    app: &TestApp,
    name: &str,
    naf: &str,
    commune: &str,
    (lat, lng): (f64, f64),
) -> String {
    app.create_actor(
        json!({"name": name, "naf_code": naf, "commune_insee": commune, "lat": lat, "lng": lng}),
    )
    .await
}

fn tonnes(value: f64) -> Value {
    json!({"value": value, "unit": "t", "period": "year"})
}

/// Sawdust of a sawmill (03 01 05).
fn sawdust(t_per_year: f64) -> Value {
    json!({"kind": "offer", "category": "material", "label": "Sciure de résineux", "ewc_code": "03 01 05",
           "quantity": tonnes(t_per_year)})
}

/// A wood-biomass boiler's need, accepting sawdust.
fn boiler_need(t_per_year: f64) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
           "label": "Combustible bois pour chaudière", "accepted_ewc": ["03 01 05"], "quantity": tonnes(t_per_year)})
}

async fn resource(app: &TestApp, owner: &str, body: Value) -> String {
    app.create_resource(owner, body).await["id"]
        .as_str()
        .expect("resource id")
        .to_owned()
}

/// A sawmill at `east_km` east of `commune` offering `offer_t` of sawdust; returns the offer id.
async fn sawmill(app: &TestApp, name: &str, commune: &str, east_km: f64, offer_t: f64) -> String {
    let a = actor(
        app,
        name,
        "16.10A",
        commune,
        near(app, commune, east_km, 0.0),
    )
    .await;
    resource(app, &a, sawdust(offer_t)).await
}

/// A boiler house at `east_km` east of `commune` needing `need_t` of wood; returns the need id.
async fn boiler(app: &TestApp, name: &str, commune: &str, east_km: f64, need_t: f64) -> String {
    let b = actor(
        app,
        name,
        "35.30Z",
        commune,
        near(app, commune, east_km, 1.0),
    )
    .await;
    resource(app, &b, boiler_need(need_t)).await
}

async fn ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

/// The substitution synergies of territory 21: (offer id, need id) → synergy.
async fn synergies_21(app: &TestApp) -> HashMap<(String, String), Value> {
    let reply = ok(
        app,
        "/api/v1/synergies?territory=21&kind=substitution&limit=500",
    )
    .await;
    reply.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                (
                    str_of(&s, "offer_id").to_owned(),
                    str_of(&s, "need_id").to_owned(),
                ),
                s,
            )
        })
        .collect()
}

async fn synergy_of(app: &TestApp, offer: &str, need: &str) -> Value {
    let all = synergies_21(app).await;
    all.get(&(offer.to_owned(), need.to_owned()))
        .cloned()
        .unwrap_or_else(|| panic!("no synergy {offer} → {need} in {:#?}", all.keys()))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v}"))
}

fn approx(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < 1e-9,
        "{what}: expected {expected}, got {got}"
    );
}

fn path(id: &str) -> String {
    format!("/api/v1/synergies/{id}")
}

async fn patch_as(app: &TestApp, user: Option<&str>, id: &str, body: Value) -> Reply {
    let mut request = app.client.patch(app.url(&path(id))).json(&body);
    if let Some(user) = user {
        request = request.header("X-Symbiose-User", user);
    }
    app.send(request).await
}

async fn patch(app: &TestApp, id: &str, body: Value) -> Reply {
    patch_as(app, None, id, body).await
}

/// Moves a synergy along `statuses`, asserting each step succeeds.
async fn walk(app: &TestApp, id: &str, statuses: &[&str]) {
    for status in statuses {
        let body = match *status {
            "rejected" | "abandoned" => json!({"status": status, "reason": "test"}),
            _ => json!({"status": status}),
        };
        let reply = patch(app, id, body).await;
        assert_eq!(reply.status, 200, "→ {status}: {}", reply.text);
        assert_eq!(reply.body["status"], *status);
    }
}

/// The legal path from `detected` to a status.
fn path_to(status: &str) -> Vec<&'static str> {
    match status {
        "detected" => vec![],
        "proposed" => vec!["proposed"],
        "in_study" => vec!["proposed", "in_study"],
        "implemented" => vec!["proposed", "in_study", "implemented"],
        "rejected" => vec!["rejected"],
        "abandoned" => vec!["proposed", "abandoned"],
        other => panic!("unknown status {other}"),
    }
}

fn allowed_from(status: &str) -> Vec<&'static str> {
    match status {
        "detected" => vec!["proposed", "rejected", "abandoned"],
        "proposed" => vec!["in_study", "rejected", "abandoned"],
        "in_study" => vec!["implemented", "rejected", "abandoned"],
        _ => vec![],
    }
}

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    ok(app, &format!("{}/history", path(id))).await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn notes(app: &TestApp, id: &str) -> Vec<Value> {
    ok(app, &format!("{}/notes", path(id))).await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn time(v: &Value, field: &str) -> NaiveDateTime {
    let text = str_of(v, field);
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not an RFC 3339 timestamp: {e}"))
}

fn utc_now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The base territory: sawmill A (500 t/year of sawdust) and boiler house B 3 km away in Dijon.
/// Returns (offer id, need id, synergy id).
async fn one_synergy(app: &TestApp) -> (String, String, String) {
    let offer = sawmill(app, "Scierie A", DIJON, 0.0, 500.0).await;
    let need = boiler(app, "Chaufferie B", DIJON, 3.0, 800.0).await;
    let all = synergies_21(app).await;
    assert_eq!(all.len(), 1, "exactly one synergy: {all:#?}");
    let s = synergy_of(app, &offer, &need).await;
    assert_eq!(s["status"], "detected");
    (offer, need, str_of(&s, "id").to_owned())
}

/// Four synergies in 21 from two sawmills (500 t and 200 t) and two boilers (800 t each), plus
/// one in Brest (outside 21). Returns the offers, needs and synergy ids
/// [s1 = O1→N1, s2 = O1→N2, s3 = O2→N1, s4 = O2→N2] and the Brest synergy.
struct Territory {
    offers: [String; 2],
    /// The boiler houses (actors) of N1 and N2.
    receivers: [String; 2],
    ids: [String; 4],
    quantities: [f64; 4],
    brest: String,
}

async fn territory(app: &TestApp) -> Territory {
    let o1 = sawmill(app, "Scierie 1", DIJON, 0.0, 500.0).await;
    let o2 = sawmill(app, "Scierie 2", DIJON, 1.0, 200.0).await;
    let n1 = boiler(app, "Chaufferie 1", DIJON, 2.0, 800.0).await;
    let n2 = boiler(app, "Chaufferie 2", DIJON, 3.0, 800.0).await;
    let mut ids = Vec::new();
    let mut quantities = Vec::new();
    let mut receivers = Vec::new();
    for (o, n) in [(&o1, &n1), (&o1, &n2), (&o2, &n1), (&o2, &n2)] {
        let s = synergy_of(app, o, n).await;
        receivers.push(str_of(&s, "receiver_actor_id").to_owned());
        let q = num(&s, "quantity");
        // each synergy's estimate: the factor's diverted share of the quantity
        approx(
            num(&s["impact"], "diverted_tonnes"),
            WOOD_DIVERTED_SHARE * q,
            "diverted estimate",
        );
        ids.push(str_of(&s, "id").to_owned());
        quantities.push(q);
    }
    assert_eq!(
        quantities,
        vec![500.0, 500.0, 200.0, 200.0],
        "min(offer, need)"
    );
    assert_eq!(synergies_21(app).await.len(), 4);
    let bo = sawmill(app, "Scierie de Brest", BREST, 0.0, 900.0).await;
    let bn = boiler(app, "Chaufferie de Brest", BREST, 2.0, 900.0).await;
    let all = ok(app, "/api/v1/synergies?limit=500").await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let brest = all
        .iter()
        .find(|s| s["offer_id"] == bo.as_str() && s["need_id"] == bn.as_str())
        .map(|s| str_of(s, "id").to_owned())
        .expect("the Brest synergy");
    Territory {
        offers: [o1, o2],
        receivers: [receivers[0].clone(), receivers[1].clone()],
        ids: ids.try_into().expect("four ids"),
        quantities: quantities.try_into().expect("four quantities"),
        brest,
    }
}
