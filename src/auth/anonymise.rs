//! Anonymous views of actors that did not consent to be shown to partners
//! (`share_with_partners = false`).
//!
//! Such an actor keeps its activity (NAF code) and commune, and loses its name, SIRET, address and
//! contact; its coordinates become its commune's centroid, its id a stable opaque UUID (v5 of the real
//! id under a namespace derived from `auth.anonymisation_secret`), and the distances of its synergies
//! become bands (`10–20 km`).
//!
//! Anonymity is computed, not masked: every figure that depends on where an actor is (distance
//! component, score, rank, transport CO2e, pooling centroid and radius, which synergies exist at
//! all) is computed by the engine from [`known_position`] — the commune centroid of a hidden actor —
//! in [`anonymous_view`], so nothing a reader receives changes when a hidden actor moves within its
//! commune. Free text naming a hidden actor (name, SIRET or SIREN, address, contact), accents, case
//! and punctuation ignored, becomes its label ([`Anonymiser::redact`]).
//!
//! [`Anonymiser::apply`] rewrites any JSON document the API sends, by field names shared across the
//! API (`provider_actor_id`, `source`, `actor_id`, …), so every JSON endpoint, export and webhook payload
//! goes through the same code; GraphML is built from already anonymised actors
//! ([`Anonymiser::graph`]). Webhook events keep the [`HiddenFacts`] of the actors they name, so a
//! partner's copy stays anonymous even when it is rendered after the actor was deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{DbConnection, DbError};
use crate::detection::{Built, Detection, DetectionError};
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
    /// What identifies it in free text (name, SIRET, SIREN, address, contact), folded by [`fold`].
    pub needles: Vec<String>,
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
    /// SIRET, address and contact fields, when known: free text naming them is redacted too.
    pub identifiers: &'a [String],
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
    /// SIRET, address, contact name, e-mail and phone (events stored before they were kept have none).
    #[serde(default)]
    pub identifiers: Vec<String>,
}

impl From<crate::db::actors::HiddenRow> for HiddenFacts {
    fn from(row: crate::db::actors::HiddenRow) -> HiddenFacts {
        HiddenFacts {
            id: Uuid::parse_str(&row.id).unwrap_or_default(),
            identifiers: [
                row.siret,
                row.address,
                row.contact_name,
                row.contact_email,
                row.contact_phone,
            ]
            .into_iter()
            .flatten()
            .collect(),
            name: row.name,
            naf_code: row.naf_code,
            commune: row.commune_insee,
            lat: row.lat,
            lng: row.lng,
        }
    }
}

/// Among `ids`, the actors that did not consent, as stored now.
pub fn hidden_facts(
    conn: &mut DbConnection,
    ids: &HashSet<Uuid>,
) -> Result<Vec<HiddenFacts>, diesel::result::Error> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    Ok(crate::db::actors::non_consenting(conn, Some(&ids))?
        .into_iter()
        .map(HiddenFacts::from)
        .filter(|f| !f.id.is_nil())
        .collect())
}

/// Fields of free text written by people (history, notes, webhook copies of them): they may name
/// any actor, not only the parties of the synergy they are about.
const FREE_TEXT_FIELDS: [&str; 4] = ["comment", "reason", "status_reason", "text"];

/// Whether a document holds free text that may name actors it does not reference by id.
pub fn has_free_text(value: &Value) -> bool {
    match value {
        Value::Object(object) => object.iter().any(|(k, v)| {
            (FREE_TEXT_FIELDS.contains(&k.as_str()) && v.as_str().is_some_and(|t| !t.is_empty()))
                || has_free_text(v)
        }),
        Value::Array(items) => items.iter().any(has_free_text),
        _ => false,
    }
}

/// The non-consenting actors a document names in its free text, as stored now (every one is
/// checked: a comment may name an actor that is no party to the synergy).
pub fn named_in_free_text(
    conn: &mut DbConnection,
    value: &Value,
) -> Result<Vec<HiddenFacts>, diesel::result::Error> {
    if !has_free_text(value) {
        return Ok(Vec::new());
    }
    let mut texts = Vec::new();
    collect_strings(value, &mut texts);
    let folded: Vec<String> = texts.iter().map(|t| fold(t).0).collect();
    Ok(crate::db::actors::non_consenting(conn, None)?
        .into_iter()
        .map(HiddenFacts::from)
        .filter(|f| {
            let needles = needles_of(&f.name, &f.identifiers);
            folded
                .iter()
                .any(|text| needles.iter().any(|n| text.contains(n.as_str())))
        })
        .collect())
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(object) => object.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// The one rule of anonymised figures: where a reader who may not see an actor believes it is. An
/// actor that consented is at its site; one that did not is at its commune's centroid, rounded to
/// 1e-4° (nothing finer than the commune), or, for a commune the reference does not know, its site
/// rounded to 0.1° (about 10 km). [`anonymous_view`] computes every figure from these positions.
pub fn known_position(
    reference: &Reference,
    commune: &str,
    lat: f64,
    lng: f64,
    consented: bool,
) -> (f64, f64) {
    if consented {
        return (lat, lng);
    }
    let round = |x: f64, step: f64| (x / step).round() * step;
    match reference.geo.commune(commune) {
        Some(c) => (round(c.lat, 1e-4), round(c.lng, 1e-4)),
        None => (round(lat, 0.1), round(lng, 0.1)),
    }
}

/// The detection as a reader who may not see non-consenting actors computes it: the same engine
/// run with every actor at its [`known_position`], so distances, scores, ranks, impacts, pooling
/// groups and which synergies exist depend on hidden actors' communes only. Computed once per
/// build (kept in [`Built::anonymous`]); the build itself when every actor consented.
pub fn anonymous_view(
    built: &Arc<Built>,
    detection: &Detection,
    reference: &Reference,
) -> Result<Arc<Built>, DetectionError> {
    detection.view_of(
        built,
        &|a| known_position(reference, &a.commune, a.lat, a.lng, a.share_with_partners),
        detection.settings.threads,
    )
}

/// The actors to hide in one response, by real id.
#[derive(Debug, Default)]
pub struct Anonymiser {
    hidden: HashMap<Uuid, HiddenActor>,
    /// Every needle of every hidden actor in one automaton, built on the first text redacted: a
    /// response has hundreds of texts and its hidden actors hundreds of needles, and searching
    /// needle after needle was most of a partner's list.
    finder: std::sync::OnceLock<Option<Finder>>,
}

/// A copy builds its own automaton when it first needs one (its actors may change).
impl Clone for Anonymiser {
    fn clone(&self) -> Anonymiser {
        Anonymiser {
            hidden: self.hidden.clone(),
            finder: std::sync::OnceLock::new(),
        }
    }
}

/// The needles' automaton, and whose needle each pattern is.
#[derive(Debug)]
struct Finder {
    automaton: aho_corasick::AhoCorasick,
    owners: Vec<Uuid>,
}

/// What a text becomes when its mentions cannot be searched (an automaton past its size limits):
/// nothing of it is shown rather than a name.
const WITHHELD: &str = "[texte masqué]";

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

/// Fields emptied (null) in an actor's anonymous view: those that identify or locate it, and when it
/// last changed (that would say it moved or was renamed).
pub const PERSONAL_FIELDS: [&str; 7] = [
    "siret",
    "address",
    "contact",
    "contact_name",
    "contact_email",
    "contact_phone",
    "updated_at",
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
                let place = reference
                    .geo
                    .commune(a.commune)
                    .map_or(a.commune, |c| c.name.as_str());
                let (lat, lng) = known_position(reference, a.commune, a.lat, a.lng, false);
                let hidden = HiddenActor {
                    real_name: a.name.to_owned(),
                    opaque_id: Uuid::new_v5(&ns, a.id.as_bytes()),
                    label: format!("Établissement anonyme · NAF {} · {place}", a.naf_code),
                    lat,
                    lng,
                    needles: needles_of(a.name, a.identifiers),
                };
                (a.id, hidden)
            })
            .collect();
        Anonymiser {
            hidden,
            finder: std::sync::OnceLock::new(),
        }
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
                identifiers: &f.identifiers,
            }),
        )
    }

    /// Every non-consenting actor: for free text, which may name any of them.
    pub fn load_all(
        conn: &mut DbConnection,
        reference: &Reference,
        secret: &str,
    ) -> Result<Anonymiser, DbError> {
        let facts: Vec<HiddenFacts> = crate::db::actors::non_consenting(conn, None)?
            .into_iter()
            .map(HiddenFacts::from)
            .filter(|f| !f.id.is_nil())
            .collect();
        Ok(Anonymiser::from_facts(reference, secret, &facts))
    }

    /// Hides the actors of `other` too.
    pub fn extend(&mut self, other: Anonymiser) {
        self.hidden.extend(other.hidden);
        self.finder = std::sync::OnceLock::new();
    }

    /// The automaton of every needle, in the order of the hidden actors' ids (so that two actors
    /// sharing a needle are told apart the same way every time).
    fn finder(&self) -> Option<&Finder> {
        self.finder
            .get_or_init(|| {
                let mut ids: Vec<&Uuid> = self.hidden.keys().collect();
                ids.sort();
                let (mut needles, mut owners) = (Vec::new(), Vec::new());
                for id in ids {
                    for needle in &self.hidden[id].needles {
                        needles.push(needle.as_str());
                        owners.push(*id);
                    }
                }
                // A contiguous NFA: built per response, a DFA cost more to build than it saved.
                let automaton = aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .build(needles)
                    .ok()?;
                Some(Finder { automaton, owners })
            })
            .as_ref()
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
        self.redact(text)
    }

    /// Replaces, in free text, every mention of a hidden actor (name, SIRET, SIREN, address,
    /// contact) by its label. Mentions are found on the folded text (accents, case, spaces and
    /// punctuation ignored: `FONDERIE-DUPONT`, `Fonderie Dupont` and `fonderie dupont` are one) and
    /// must not sit inside a longer word or number.
    pub fn redact(&self, text: &str) -> String {
        if self.hidden.is_empty() || text.is_empty() {
            return text.to_owned();
        }
        let Some(finder) = self.finder() else {
            return WITHHELD.to_owned();
        };
        let (folded, spans) = fold(text);
        let mut found: Vec<(usize, usize, &str)> = Vec::new();
        // Overlapping: every occurrence of every needle, as searching each needle alone finds them.
        for m in finder.automaton.find_overlapping_iter(&folded) {
            let Some(h) = finder
                .owners
                .get(m.pattern().as_usize())
                .and_then(|id| self.hidden.get(id))
            else {
                continue;
            };
            let (from, to) = (spans[m.start()].0, spans[m.end() - 1].1);
            let before = text[..from].chars().next_back();
            let after = text[to..].chars().next();
            if !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric)
            {
                found.push((from, closing_brackets(text, from, to), &h.label));
            }
        }
        if found.is_empty() {
            return text.to_owned();
        }
        // Longest first at each start, then left to right without overlaps.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (from, to, label) in found {
            if from < at {
                continue;
            }
            out.push_str(&text[at..from]);
            // French elision: "de Dupont" becomes "d’Établissement anonyme…", not "de Établissement".
            let elides = label
                .chars()
                .next()
                .is_some_and(|c| "AEIOUYÉÈÊÀÂÎÔÛaeiouyéèêàâîôû".contains(c));
            if elides && (out.ends_with(" de ") || out == "de " || out == "De ") {
                out.truncate(out.len() - 2);
                out.push('’');
            }
            out.push_str(label);
            at = to;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Whether a synergy object (substitution or pooling group) has a hidden party.
    fn has_hidden_party(&self, object: &Map<String, Value>) -> bool {
        PARTY_FIELDS
            .iter()
            .any(|(field, _)| self.hidden_at(object, field).is_some())
            || object
                .get("members")
                .and_then(Value::as_array)
                .is_some_and(|members| {
                    members
                        .iter()
                        .filter_map(Value::as_object)
                        .any(|m| self.hidden_at(m, "actor_id").is_some())
                })
    }

    /// Whether a document names a synergy with a hidden party, at any depth.
    pub fn names_hidden_party(&self, value: &Value) -> bool {
        match value {
            Value::Object(object) => {
                self.has_hidden_party(object) || object.values().any(|v| self.names_hidden_party(v))
            }
            Value::Array(items) => items.iter().any(|v| self.names_hidden_party(v)),
            _ => false,
        }
    }

    /// Removes, from objects naming a hidden party, the figures computed from its exact site
    /// (score, score components, impact with its transport emissions). For copies of stored
    /// detections (webhook payloads), which the anonymous view did not compute: the partner reads
    /// the computed figures at `GET /synergies/{id}`.
    pub fn drop_exact_figures(&self, value: &mut Value) {
        if self.hidden.is_empty() {
            return;
        }
        match value {
            Value::Object(object) => {
                if self.has_hidden_party(object) {
                    for field in ["score", "components", "impact", "centroid", "radius_km"] {
                        object.remove(field);
                    }
                }
                object.values_mut().for_each(|v| self.drop_exact_figures(v));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.drop_exact_figures(v)),
            _ => {}
        }
    }
}

/// Text folded for matching: lower-case ASCII letters and digits only (accents transliterated,
/// everything else dropped), with, for each folded byte, the byte range of the character it came
/// from.
pub fn fold(text: &str) -> (String, Vec<(usize, usize)>) {
    let mut folded = String::with_capacity(text.len());
    let mut spans = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let range = (i, i + c.len_utf8());
        let ascii = if c.is_ascii() {
            None
        } else {
            deunicode::deunicode_char(c)
        };
        let mut push = |ch: char| {
            if ch.is_ascii_alphanumeric() {
                folded.push(ch.to_ascii_lowercase());
                spans.push(range);
            }
        };
        match ascii {
            Some(s) => s.chars().for_each(&mut push),
            None => push(c),
        }
    }
    (folded, spans)
}

/// The end of a match extended over the closing brackets that balance the ones it opened: folding
/// drops punctuation, so "Laiterie (exemple)" matches up to its last letter and would leave ")".
fn closing_brackets(text: &str, from: usize, to: usize) -> usize {
    let matched = &text[from..to];
    let mut open = matched.matches(['(', '[']).count();
    open = open.saturating_sub(matched.matches([')', ']']).count());
    let mut end = to;
    while open > 0 {
        match text[end..].chars().next() {
            Some(c @ (')' | ']')) => {
                end += c.len_utf8();
                open -= 1;
            }
            _ => break,
        }
    }
    end
}

/// What identifies an actor in free text, folded: its name, SIRET and SIREN, address and contact.
/// Folded forms shorter than 3 characters would match inside ordinary words and are left out.
fn needles_of(name: &str, identifiers: &[String]) -> Vec<String> {
    let mut needles: Vec<String> = std::iter::once(name)
        .chain(identifiers.iter().map(String::as_str))
        .map(|t| fold(t).0)
        .collect();
    // A SIRET is the SIREN (the company) plus 5 digits (the site): the SIREN names it too.
    for id in identifiers {
        let digits = fold(id).0;
        if digits.len() == 14 && digits.bytes().all(|b| b.is_ascii_digit()) {
            needles.push(digits[..9].to_owned());
        }
    }
    needles.retain(|n| n.len() >= 3);
    needles.sort();
    needles.dedup();
    needles
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
                needles: needles_of(
                    "Fonderie Dupont",
                    &["73282932000074".into(), "1 rue de la Forge".into()],
                ),
            },
        );
        (
            Anonymiser {
                hidden,
                finder: std::sync::OnceLock::new(),
            },
            id,
        )
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

    #[test]
    fn free_text_is_redacted_whatever_the_accents_case_and_spacing() {
        let (anon, _) = anonymiser();
        let label = "Établissement anonyme · NAF 24.51Z · Dijon";
        for (text, expected) in [
            ("Vu FONDERIE DUPONT hier", format!("Vu {label} hier")),
            ("la fondérie-dupont refuse", format!("la {label} refuse")),
            ("SIRET 732 829 320 00074.", format!("SIRET {label}.")),
            ("siren 732829320", format!("siren {label}")),
            ("au 1, rue de la Forge", format!("au {label}")),
            // Elision before the label's initial É.
            (
                "le besoin de Fonderie Dupont",
                format!("le besoin d’{label}"),
            ),
        ] {
            assert_eq!(anon.redact(text), expected, "{text}");
        }
        // A name with brackets goes whole, its closing bracket included.
        let mut bracketed = anon.clone();
        if let Some(h) = bracketed.hidden.get_mut(&Uuid::from_u128(7)) {
            h.needles = needles_of("Laiterie de l'Auxois (exemple)", &[]);
        }
        assert_eq!(
            bracketed.redact("Vu la Laiterie de l’Auxois (exemple), hier"),
            format!("Vu la {label}, hier")
        );
        assert_eq!(
            bracketed.redact("(laiterie de l'auxois exemple)"),
            format!("({label})"),
            "a bracket the name did not open stays"
        );
        // Inside a longer word or number it is another thing.
        for text in ["Fonderie Dupontel", "7328293201", "Refonderie Dupont"] {
            assert_eq!(anon.redact(text), text);
        }
        assert_eq!(anon.redact(""), "");
    }
}
