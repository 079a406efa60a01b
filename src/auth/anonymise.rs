//! Anonymous views of actors that did not consent to be shown to partners
//! (`share_with_partners = false`).
//!
//! Such an actor keeps its activity (NAF code) and commune, and loses its name, SIRET, address and
//! contact; its coordinates become its commune's centroid, its id a stable opaque UUID (v5 of the real
//! id under a namespace derived from `auth.anonymisation_secret`), and the distances of its synergies
//! become bands (`10–20 km`). Scores, classes and quantities are kept.
//!
//! [`Anonymiser::apply`] rewrites any JSON document the API sends, by field names shared across the
//! API (`provider_actor_id`, `source`, `actor_id`, …), so every JSON endpoint, export and webhook payload
//! goes through the same code; GraphML is built from already anonymised actors
//! ([`Anonymiser::graph`]). Webhook events keep the [`HiddenFacts`] of the actors they name, so a
//! partner's copy stays anonymous even when it is rendered after the actor was deleted.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{DbConnection, DbError};
use crate::matching::graph::{GraphActor, GraphEdge};
use crate::matching::score::{km_en, km_fr};
use crate::reference::Reference;

/// What is shown of an actor that did not consent.
#[derive(Debug, Clone, PartialEq)]
pub struct HiddenActor {
    pub real_name: String,
    pub opaque_id: Uuid,
    /// « Établissement anonyme · NAF 16.10A · Dijon ».
    pub label: String,
    pub lat: f64,
    pub lng: f64,
}

/// An actor as the anonymiser needs it.
pub struct ActorFacts<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub naf_code: &'a str,
    pub commune: &'a str,
    pub lat: f64,
    pub lng: f64,
    pub share_with_partners: bool,
}

/// The facts of a non-consenting actor, kept with data that outlives the request (webhook events
/// wait in the database until the worker sends them; the actor may be deleted meanwhile).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HiddenFacts {
    pub id: Uuid,
    pub name: String,
    pub naf_code: String,
    pub commune: String,
    pub lat: f64,
    pub lng: f64,
}

/// Among `ids`, the actors that did not consent, as stored now.
pub fn hidden_facts(
    conn: &mut DbConnection,
    ids: &HashSet<Uuid>,
) -> Result<Vec<HiddenFacts>, diesel::result::Error> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let facts = crate::db::actors::non_consenting(conn, &ids)?
        .into_iter()
        .filter_map(|(id, name, naf_code, commune, lat, lng)| {
            Some(HiddenFacts {
                id: Uuid::parse_str(&id).ok()?,
                name,
                naf_code,
                commune,
                lat,
                lng,
            })
        })
        .collect();
    Ok(facts)
}

/// The actors to hide in one response, by real id.
#[derive(Debug, Clone, Default)]
pub struct Anonymiser {
    hidden: HashMap<Uuid, HiddenActor>,
}

/// Party fields: an actor id and, beside it in the same object, the field holding its name.
const PARTY_FIELDS: [(&str, Option<&str>); 7] = [
    ("provider_actor_id", Some("provider_name")),
    ("receiver_actor_id", Some("receiver_name")),
    ("actor_id", Some("name")),
    ("from_actor", None),
    ("to_actor", None),
    ("source", None),
    ("target", None),
];

/// Fields that identify or locate an actor, emptied in its anonymous view.
const PERSONAL_FIELDS: [&str; 6] = [
    "siret",
    "address",
    "contact",
    "contact_name",
    "contact_email",
    "contact_phone",
];

/// Distance bands shown instead of exact distances, km.
const BANDS: [f64; 6] = [5.0, 10.0, 20.0, 50.0, 100.0, 200.0];

/// The band of a distance: `0–5 km`, …, `100–200 km`, `> 200 km`.
pub fn distance_band(km: f64) -> String {
    let mut lower = 0.0;
    for upper in BANDS {
        if km < upper {
            return format!("{lower:.0}–{upper:.0} km");
        }
        lower = upper;
    }
    format!("> {lower:.0} km")
}

/// The upper bound of a distance's band (for numeric exports such as GraphML).
pub fn distance_band_upper(km: f64) -> f64 {
    BANDS
        .iter()
        .copied()
        .find(|upper| km < *upper)
        .unwrap_or_else(|| (km / 100.0).ceil() * 100.0)
}

fn namespace(secret: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("symbiose-anon:{secret}").as_bytes(),
    )
}

impl Anonymiser {
    /// From actors already in memory (the detection): hides those that did not consent.
    pub fn from_actors<'a>(
        reference: &Reference,
        secret: &str,
        actors: impl IntoIterator<Item = ActorFacts<'a>>,
    ) -> Anonymiser {
        let ns = namespace(secret);
        let hidden = actors
            .into_iter()
            .filter(|a| !a.share_with_partners)
            .map(|a| {
                let commune = reference.geo.commune(a.commune);
                let (lat, lng) = commune.map_or((a.lat, a.lng), |c| (c.lat, c.lng));
                let place = commune.map_or(a.commune, |c| c.name.as_str());
                let hidden = HiddenActor {
                    real_name: a.name.to_owned(),
                    opaque_id: Uuid::new_v5(&ns, a.id.as_bytes()),
                    label: format!("Établissement anonyme · NAF {} · {place}", a.naf_code),
                    // The centroid, rounded: nothing finer than the commune.
                    lat: (lat * 1e4).round() / 1e4,
                    lng: (lng * 1e4).round() / 1e4,
                };
                (a.id, hidden)
            })
            .collect();
        Anonymiser { hidden }
    }

    /// From facts kept earlier (see [`HiddenFacts`]).
    pub fn from_facts(reference: &Reference, secret: &str, facts: &[HiddenFacts]) -> Anonymiser {
        Anonymiser::from_actors(
            reference,
            secret,
            facts.iter().map(|f| ActorFacts {
                id: f.id,
                name: &f.name,
                naf_code: &f.naf_code,
                commune: &f.commune,
                lat: f.lat,
                lng: f.lng,
                share_with_partners: false,
            }),
        )
    }

    /// Hides the actors of `other` too.
    pub fn extend(&mut self, other: Anonymiser) {
        self.hidden.extend(other.hidden);
    }

    /// Loads, among `ids`, the actors that did not consent.
    pub fn load(
        conn: &mut DbConnection,
        reference: &Reference,
        secret: &str,
        ids: &HashSet<Uuid>,
    ) -> Result<Anonymiser, DbError> {
        let facts = hidden_facts(conn, ids)?;
        Ok(Anonymiser::from_facts(reference, secret, &facts))
    }

    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty()
    }

    pub fn hidden(&self, id: &Uuid) -> Option<&HiddenActor> {
        self.hidden.get(id)
    }

    /// The id to show for an actor.
    pub fn id(&self, id: Uuid) -> Uuid {
        self.hidden.get(&id).map_or(id, |h| h.opaque_id)
    }

    /// Anonymises a synergy graph's input: hidden actors get their opaque id, label and centroid, and
    /// the edges touching them a distance rounded up to its band's upper bound.
    pub fn graph(&self, actors: &mut [GraphActor], edges: &mut [GraphEdge]) {
        for actor in actors.iter_mut() {
            if let Some(h) = self.hidden.get(&actor.id) {
                actor.id = h.opaque_id;
                actor.name = h.label.clone();
                actor.lat = h.lat;
                actor.lng = h.lng;
            }
        }
        for edge in edges.iter_mut() {
            let touched = self.hidden.contains_key(&edge.from_actor)
                || self.hidden.contains_key(&edge.to_actor);
            if touched {
                edge.from_actor = self.id(edge.from_actor);
                edge.to_actor = self.id(edge.to_actor);
                edge.distance_km = distance_band_upper(edge.distance_km);
            }
        }
    }

    /// Rewrites a JSON document: hidden actors' objects, party names, distances, ids and names in
    /// free text. Object rules run before the ids inside them are replaced.
    pub fn apply(&self, value: &mut Value) {
        if self.hidden.is_empty() {
            return;
        }
        match value {
            Value::Object(object) => {
                self.rewrite_object(object);
                for child in object.values_mut() {
                    self.apply(child);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.apply(v)),
            Value::String(text) => *text = self.rewrite_text(text),
            _ => {}
        }
    }

    fn hidden_at(&self, object: &Map<String, Value>, field: &str) -> Option<&HiddenActor> {
        object
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .and_then(|id| self.hidden.get(&id))
    }

    fn rewrite_object(&self, object: &mut Map<String, Value>) {
        // An actor itself (actor views, graph nodes, GeoJSON actor properties).
        if object.contains_key("name")
            && let Some(h) = self.hidden_at(object, "id").cloned()
        {
            object.insert("name".into(), Value::from(h.label.clone()));
            for field in PERSONAL_FIELDS {
                if object.contains_key(field) {
                    object.insert(field.into(), Value::Null);
                }
            }
            set_position(object, &h);
            object.insert("anonymous".into(), Value::Bool(true));
        }
        // A GeoJSON feature: move the geometry of hidden actors to their centroid.
        if object.get("type").and_then(Value::as_str) == Some("Feature") {
            self.rewrite_feature(object);
        }
        let mut any_hidden = false;
        for (id_field, name_field) in PARTY_FIELDS {
            let Some(h) = self.hidden_at(object, id_field).cloned() else {
                continue;
            };
            any_hidden = true;
            if let Some(name_field) = name_field
                && object.contains_key(name_field)
            {
                object.insert(name_field.into(), Value::from(h.label.clone()));
            }
            if id_field == "actor_id" {
                set_position(object, &h);
            }
        }
        if any_hidden {
            self.band_distances(object);
        }
    }

    fn rewrite_feature(&self, feature: &mut Map<String, Value>) {
        let Some(properties) = feature.get("properties").and_then(Value::as_object) else {
            return;
        };
        let point = self.hidden_at(properties, "id").cloned();
        let ends = [
            self.hidden_at(properties, "source").cloned(),
            self.hidden_at(properties, "target").cloned(),
        ];
        let Some(coordinates) = feature
            .get_mut("geometry")
            .and_then(|g| g.get_mut("coordinates"))
        else {
            return;
        };
        if let Some(h) = point {
            *coordinates = serde_json::json!([h.lng, h.lat]);
        }
        if let Some(line) = coordinates.as_array_mut()
            && line.len() == 2
            && line.iter().all(Value::is_array)
        {
            for (end, hidden) in line.iter_mut().zip(ends) {
                if let Some(h) = hidden {
                    *end = serde_json::json!([h.lng, h.lat]);
                }
            }
        }
    }

    /// Distances from or to a hidden actor become bands, in numbers and in explanations.
    fn band_distances(&self, object: &mut Map<String, Value>) {
        for field in ["distance_km", "distance_to_centroid_km"] {
            let Some(km) = object.get(field).and_then(Value::as_f64) else {
                continue;
            };
            object.remove(field);
            let band = field.replace("_km", "_band");
            object.insert(band, Value::from(distance_band(km)));
            if field == "distance_km" {
                for (text_field, exact) in
                    [("explanation_fr", km_fr(km)), ("explanation_en", km_en(km))]
                {
                    if let Some(Value::String(text)) = object.get_mut(text_field) {
                        *text = text.replace(&exact, &distance_band(km));
                    }
                }
            }
        }
    }

    fn rewrite_text(&self, text: &str) -> String {
        if let Ok(id) = Uuid::parse_str(text) {
            return self.id(id).to_string();
        }
        let mut out = text.to_owned();
        for h in self.hidden.values() {
            // Very short names would match inside ordinary words.
            if h.real_name.chars().count() >= 3 && out.contains(&h.real_name) {
                out = out.replace(&h.real_name, &h.label);
            }
        }
        out
    }
}

fn set_position(object: &mut Map<String, Value>, h: &HiddenActor) {
    if object.contains_key("lat") {
        object.insert("lat".into(), Value::from(h.lat));
    }
    if object.contains_key("lng") {
        object.insert("lng".into(), Value::from(h.lng));
    }
}

/// Every UUID-shaped string in a document: the candidates for hiding.
pub fn uuids_in(value: &Value, found: &mut HashSet<Uuid>) {
    match value {
        Value::String(s) if s.len() == 36 => {
            if let Ok(id) = Uuid::parse_str(s) {
                found.insert(id);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| uuids_in(v, found)),
        Value::Object(object) => object.values().for_each(|v| uuids_in(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn anonymiser() -> (Anonymiser, Uuid) {
        let id = Uuid::from_u128(7);
        let mut hidden = HashMap::new();
        hidden.insert(
            id,
            HiddenActor {
                real_name: "Fonderie Dupont".into(),
                opaque_id: Uuid::from_u128(99),
                label: "Établissement anonyme · NAF 24.51Z · Dijon".into(),
                lat: 47.32,
                lng: 5.04,
            },
        );
        (Anonymiser { hidden }, id)
    }

    #[test]
    fn bands_cover_every_distance() {
        assert_eq!(distance_band(0.0), "0–5 km");
        assert_eq!(distance_band(12.3), "10–20 km");
        assert_eq!(distance_band(199.9), "100–200 km");
        assert_eq!(distance_band(450.0), "> 200 km");
        assert_eq!(distance_band_upper(12.3), 20.0);
        assert_eq!(distance_band_upper(250.0), 300.0);
    }

    #[test]
    fn a_synergy_keeps_its_numbers_and_loses_the_hidden_party() {
        let (anon, id) = anonymiser();
        let other = Uuid::from_u128(8);
        let mut doc = json!({
            "provider_actor_id": id.to_string(),
            "receiver_actor_id": other.to_string(),
            "provider_name": "Fonderie Dupont",
            "receiver_name": "Cimenterie",
            "distance_km": 12.4,
            "score": 0.81,
            "quantity": 120.0,
            "explanation_fr": "Sables (10 09 08) de Fonderie Dupont : couvre 80 % du besoin de Cimenterie à 12 km",
            "explanation_en": "Sands (10 09 08) from Fonderie Dupont covers 80 % of Cimenterie's need at 12 km",
        });
        anon.apply(&mut doc);
        assert_eq!(doc["provider_actor_id"], Uuid::from_u128(99).to_string());
        assert_eq!(doc["receiver_actor_id"], other.to_string());
        assert_eq!(
            doc["provider_name"],
            "Établissement anonyme · NAF 24.51Z · Dijon"
        );
        assert_eq!(doc["receiver_name"], "Cimenterie");
        assert!(doc.get("distance_km").is_none());
        assert_eq!(doc["distance_band"], "10–20 km");
        assert_eq!(doc["score"], 0.81);
        assert_eq!(doc["quantity"], 120.0);
        let text = doc.to_string();
        assert!(!text.contains("Dupont"), "{text}");
        assert!(!text.contains("12 km"), "{text}");
        assert!(!text.contains(&id.to_string()), "{text}");
    }

    #[test]
    fn an_actor_view_loses_name_siret_contact_and_exact_position() {
        let (anon, id) = anonymiser();
        let mut doc = json!({"items": [{
            "id": id.to_string(), "name": "Fonderie Dupont", "siret": "73282932000074",
            "address": "1 rue de la Forge", "contact": {"name": "M. Dupont"},
            "lat": 47.3012345, "lng": 5.0712345, "naf_code": "24.51Z", "commune_insee": "21231"
        }]});
        anon.apply(&mut doc);
        let actor = &doc["items"][0];
        assert_eq!(actor["id"], Uuid::from_u128(99).to_string());
        assert_eq!(actor["siret"], Value::Null);
        assert_eq!(actor["address"], Value::Null);
        assert_eq!(actor["contact"], Value::Null);
        assert_eq!(actor["lat"], 47.32);
        assert_eq!(actor["lng"], 5.04);
        assert_eq!(actor["naf_code"], "24.51Z");
        assert_eq!(actor["anonymous"], true);
    }

    #[test]
    fn geojson_points_and_lines_move_to_the_centroid() {
        let (anon, id) = anonymiser();
        let other = Uuid::from_u128(8).to_string();
        let mut doc = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": id.to_string(), "geometry": {"type": "Point", "coordinates": [5.07, 47.30]},
             "properties": {"kind": "actor", "id": id.to_string(), "name": "Fonderie Dupont"}},
            {"type": "Feature", "id": "s", "geometry": {"type": "LineString", "coordinates": [[1.0, 2.0], [5.07, 47.30]]},
             "properties": {"kind": "synergy", "source": other, "target": id.to_string(), "distance_km": 3.2}}
        ]});
        anon.apply(&mut doc);
        assert_eq!(
            doc["features"][0]["geometry"]["coordinates"],
            json!([5.04, 47.32])
        );
        assert_eq!(
            doc["features"][1]["geometry"]["coordinates"],
            json!([[1.0, 2.0], [5.04, 47.32]])
        );
        assert_eq!(doc["features"][1]["properties"]["distance_band"], "0–5 km");
        assert!(!doc.to_string().contains("Dupont"));
    }
}
