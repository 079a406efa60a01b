//! API keys, roles, territory scopes, anonymisation, audit log and rate limit, through HTTP.
//!
//! The anonymisation matrix: a sawmill that did not consent (`share_with_partners = false`) offers
//! sawdust to a boiler house that did, both in Dijon; every endpoint that can show the sawmill is
//! read by each role (admin, facilitator, partner, keyless public reader), and the sawmill's name,
//! SIRET, real id and exact position must appear exactly for the roles that may see them.

use reqwest::Method;
use serde_json::{Value, json};
use symbiose::auth::Role;

use crate::helpers::{Reply, TestApp, spawn_app, spawn_with};

mod anonymisation;
mod anonymous_view;
mod audit;
mod keys;
mod roles;

const SECRET_NAME: &str = "Scierie Discrète du Morvan";
const SECRET_SIRET: &str = "73282932000074";
const OPEN_NAME: &str = "Chaufferie Ouverte de Dijon";

async fn expect(
    app: &TestApp,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Reply {
    let reply = app.call(key, method.clone(), path, body).await;
    assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
    if status >= 400 {
        assert!(
            reply.content_type.starts_with("application/problem+json"),
            "{method} {path}: {status} without problem+json"
        );
    }
    reply
}

fn actor(name: &str, commune: &str) -> Value {
    json!({"name": name, "naf_code": "16.10A", "commune_insee": commune})
}

/// The sawmill (did not consent), the boiler house (consented) and the sawdust synergy between them.
struct Scene {
    secret_id: String,
    open_id: String,
    offer_id: String,
    synergy_id: String,
}

async fn scene(app: &TestApp) -> Scene {
    let dijon = app
        .app
        .reference
        .geo
        .commune("21231")
        .expect("Dijon")
        .clone();
    // 3 km north-east of the centroid: far enough that the centroid differs from the real position.
    let (lat, lng) = (dijon.lat + 0.02, dijon.lng + 0.03);
    let secret_id = app
        .create_actor(json!({"name": SECRET_NAME, "naf_code": "16.10A", "commune_insee": "21231",
            "siret": SECRET_SIRET, "address": "12 rue des Scieurs", "lat": lat, "lng": lng,
            "contact": {"name": "Mme Chêne", "email": "chene@example.org"}, "share_with_partners": false}))
        .await;
    let open_id = app
        .create_actor(
            json!({"name": OPEN_NAME, "naf_code": "35.30Z", "commune_insee": "21231",
            "lat": dijon.lat - 0.01, "lng": dijon.lng, "share_with_partners": true}),
        )
        .await;
    let offer = app
        .create_resource(
            &secret_id,
            json!({"kind": "offer", "category": "material", "label": "Sciure de résineux",
            "ewc_code": "03 01 05", "quantity": {"value": 500, "unit": "t", "period": "year"}}),
        )
        .await;
    app.create_resource(&open_id, json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
            "label": "Combustible bois", "accepted_ewc": ["03 01 05"], "quantity": {"value": 400, "unit": "t", "period": "year"}}))
        .await;
    let listed = app
        .get("/api/v1/synergies?territory=21&kind=substitution")
        .await;
    let synergy = listed.body["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|s| {
                s["provider_actor_id"] == secret_id.as_str()
                    && s["receiver_actor_id"] == open_id.as_str()
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("the sawdust synergy is detected: {}", listed.text));
    Scene {
        secret_id,
        open_id,
        offer_id: offer["id"].as_str().expect("offer id").to_owned(),
        synergy_id: synergy["id"].as_str().expect("synergy id").to_owned(),
    }
}
