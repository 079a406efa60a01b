//! Issue 10, items 2–5: side channels through which a partner or a keyless reader could learn what an
//! actor that did not consent hides — its exact site (scores, impacts, pooling centroids), its name
//! and id (cursors), its name, SIRET or address (search), and what facilitators wrote about it
//! (notes, history, webhook copies). The last test is the rule itself: nothing a partner receives
//! changes when a hidden actor moves within its commune.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use symbiose::auth::Role;

use crate::helpers::*;

const DIJON: &str = "21231";
const HIDDEN_NAME: &str = "Fonderie Dupont-Lévêque";
const HIDDEN_SIRET: &str = "73282932000074";
const HIDDEN_ADDRESS: &str = "12 rue des Forges";

/// The centroid of a commune, from the reference.
fn centroid(app: &TestApp, code: &str) -> (f64, f64) {
    let commune = app.app.reference.geo.commune(code).expect("known commune");
    (commune.lat, commune.lng)
}

fn sawdust(label: &str, tonnes: f64) -> Value {
    json!({"kind": "offer", "category": "material", "label": label, "ewc_code": "03 01 05",
           "quantity": {"value": tonnes, "unit": "t", "period": "year"}})
}

fn wood_need(label: &str, tonnes: f64) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/biomass/wood", "label": label,
           "accepted_ewc": ["03 01 05"], "quantity": {"value": tonnes, "unit": "t", "period": "year"}})
}

/// A non-consenting foundry 3 km from Dijon's centroid, offering sawdust.
async fn hidden_actor(app: &TestApp, lat: f64, lng: f64) -> String {
    app.create_actor(json!({"name": HIDDEN_NAME, "naf_code": "24.51Z", "commune_insee": DIJON,
        "siret": HIDDEN_SIRET, "address": HIDDEN_ADDRESS, "lat": lat, "lng": lng,
        "contact": {"name": "M. Lévêque", "email": "leveque@fonderie.example", "phone": "03 80 11 22 33"},
        "share_with_partners": false}))
        .await
}

async fn open_actor(app: &TestApp, name: &str, lat: f64, lng: f64) -> String {
    app.create_actor(
        json!({"name": name, "naf_code": "35.30Z", "commune_insee": DIJON,
        "lat": lat, "lng": lng, "share_with_partners": true}),
    )
    .await
}

async fn read(app: &TestApp, key: &str, path: &str) -> Reply {
    let reply = app.call(Some(key), Method::GET, path, None).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

fn items(reply: &Reply) -> Vec<Value> {
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Item 2: the partner's figures are those of an actor at the commune centroid — exactly those a
/// consenting twin placed there gets —, not a rounding of the exact ones.
#[actix_web::test]
async fn distance_figures_and_pooling_come_from_the_commune_centroid() {
    let app = spawn_app().await;
    let partner = app.key("portail", Role::Partner, &[]);
    let (clat, clng) = centroid(&app, DIJON);
    let hidden = hidden_actor(&app, clat + 0.02, clng + 0.03).await;
    app.create_resource(&hidden, sawdust("Sciure de la fonderie", 500.0))
        .await;
    // Two more sawdust producers: a pooling group of three around the hidden one.
    for (i, (dlat, dlng)) in [(-0.01, 0.0), (0.0, -0.012)].into_iter().enumerate() {
        let id = open_actor(&app, &format!("Scierie {i}"), clat + dlat, clng + dlng).await;
        app.create_resource(&id, sawdust("Sciure", 200.0)).await;
    }
    let receiver = open_actor(&app, "Chaufferie bois", clat - 0.015, clng + 0.01).await;
    app.create_resource(&receiver, wood_need("Combustible", 400.0))
        .await;

    // What the partner sees of the hidden actor's synergy with the receiver.
    let seen_actor = read(&app, &partner, &format!("/api/v1/actors/{hidden}")).await;
    let opaque = seen_actor.body["id"]
        .as_str()
        .expect("opaque id")
        .to_owned();
    let (known_lat, known_lng) = (
        seen_actor.body["lat"].as_f64().expect("lat"),
        seen_actor.body["lng"].as_f64().expect("lng"),
    );
    assert!((known_lat - clat).abs() < 1e-3 && (known_lng - clng).abs() < 1e-3);
    let synergies = read(&app, &partner, "/api/v1/synergies?limit=500").await;
    let of = |items: &[Value], provider: &str| {
        items
            .iter()
            .find(|s| s["provider_actor_id"] == provider && s["receiver_actor_id"] == receiver)
            .cloned()
            .unwrap_or_else(|| panic!("synergy of {provider}: {items:?}"))
    };
    let shown = of(&items(&synergies), &opaque);
    assert!(shown.get("distance_km").is_none(), "{shown}");
    let full = of(
        &items(&app.get("/api/v1/synergies?limit=500").await),
        &hidden,
    );

    // A consenting twin at the centroid the partner knows: same offer, same receiver.
    let twin = app
        .create_actor(
            json!({"name": "Jumeau", "naf_code": "24.51Z", "commune_insee": DIJON,
            "lat": known_lat, "lng": known_lng, "share_with_partners": true}),
        )
        .await;
    app.create_resource(&twin, sawdust("Sciure de la fonderie", 500.0))
        .await;
    let twin_synergy = of(&items(&app.get("/api/v1/synergies?limit=500").await), &twin);
    assert_eq!(
        shown["components"], twin_synergy["components"],
        "the distance component is computed from the centroid"
    );
    assert_eq!(shown["score"], twin_synergy["score"]);
    assert_eq!(
        shown["impact"]["transport_co2e_t"],
        twin_synergy["impact"]["transport_co2e_t"]
    );
    assert_ne!(
        full["components"]["distance"], shown["components"]["distance"],
        "the exact site gives another figure: the partner's is not a rounding of it"
    );
    assert_ne!(
        full["impact"]["transport_co2e_t"],
        shown["impact"]["transport_co2e_t"]
    );

    // Pooling groups: centroid and radius from the known positions (the partner's view is not the
    // facilitator's), and the member's distance only as a band.
    let pooling_of = |reply: &Reply| {
        items(reply)
            .into_iter()
            .find(|s| s["kind"] == "pooling")
            .unwrap_or_else(|| panic!("a pooling group: {}", reply.text))
    };
    let partner_group = pooling_of(&read(&app, &partner, "/api/v1/synergies?kind=pooling").await);
    let full_group = pooling_of(&app.get("/api/v1/synergies?kind=pooling").await);
    assert_ne!(partner_group["centroid"], full_group["centroid"]);
    assert_ne!(partner_group["radius_km"], full_group["radius_km"]);
    let text = partner_group.to_string();
    assert!(!text.contains(&hidden), "{text}");
    let member = partner_group["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["actor_id"] == opaque.as_str()))
        .unwrap_or_else(|| panic!("the hidden member: {text}"));
    assert!(member.get("distance_to_centroid_km").is_none(), "{member}");
}

/// Item 3: cursors are sealed — no name or id inside, a forged one is refused —, and hidden actors'
/// place in the list says nothing of their names.
#[actix_web::test]
async fn cursors_are_opaque_and_tamper_proof() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let partner = app.key("portail", Role::Partner, &[]);
    let (clat, clng) = centroid(&app, DIJON);
    let hidden = hidden_actor(&app, clat, clng).await;
    let mut all = vec![hidden.clone()];
    for name in ["Aciérie", "Brasserie", "Zinguerie"] {
        all.push(open_actor(&app, name, clat, clng).await);
    }
    for key in [Some(partner.as_str()), None] {
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        let mut first = true;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/actors?limit=1&cursor={c}"),
                None => "/api/v1/actors?limit=1".to_owned(),
            };
            let page = app.call(key, Method::GET, &path, None).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let item = items(&page).remove(0);
            if first {
                // Hidden actors come first whatever their name ("Fonderie" sorts after "Brasserie").
                assert_eq!(item["anonymous"], true, "{}", page.text);
                first = false;
            }
            seen.push(item["name"].as_str().unwrap_or_default().to_owned());
            let Some(next) = page.body["next_cursor"].as_str() else {
                break;
            };
            let raw = String::from_utf8_lossy(&hex::decode(next).unwrap_or_default()).to_string();
            for secret in [HIDDEN_NAME, "Fonderie", &hidden] {
                assert!(!next.contains(secret) && !raw.contains(secret), "{next}");
            }
            assert!(!raw.contains("Aci"), "no name in clear: {raw}");
            cursor = Some(next.to_owned());
        }
        assert_eq!(seen.len(), all.len(), "every actor once: {seen:?}");
        assert!(seen.iter().all(|n| n != HIDDEN_NAME));
    }
    // A cursor of the first page, altered in one character, or made up: 422 naming `cursor`.
    let page = read(&app, &partner, "/api/v1/actors?limit=1").await;
    let next = page.body["next_cursor"].as_str().expect("a next page");
    let mut forged: Vec<char> = next.chars().collect();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == '0' { '1' } else { '0' };
    let forged: String = forged.into_iter().collect();
    let made_up = hex::encode(format!("Fonderie\u{1f}{hidden}"));
    for bad in [forged.as_str(), made_up.as_str(), "zz", ""] {
        let reply = app
            .call(
                Some(&partner),
                Method::GET,
                &format!("/api/v1/actors?limit=1&cursor={bad}"),
                None,
            )
            .await;
        assert_field_error(&reply, "cursor");
    }
    // Offset cursors of ranked lists are sealed too.
    let reply = app
        .call(
            Some(&partner),
            Method::GET,
            &format!("/api/v1/synergies?cursor={}", hex::encode("1")),
            None,
        )
        .await;
    assert_field_error(&reply, "cursor");
}

/// Item 4: a partner's or public reader's search never matches what it cannot see.
#[actix_web::test]
async fn search_never_matches_hidden_fields() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let partner = app.key("portail", Role::Partner, &[]);
    let (clat, clng) = centroid(&app, DIJON);
    let hidden = hidden_actor(&app, clat, clng).await;
    let open = open_actor(&app, "Fonderie Ouverte", clat, clng).await;
    for q in [
        "dupont",
        "LEVEQUE",
        HIDDEN_SIRET,
        "rue%20des%20forges",
        "Fonderie",
    ] {
        let path = format!("/api/v1/actors?q={q}");
        let full = app.get(&path).await;
        assert!(
            items(&full).iter().any(|a| a["id"] == hidden.as_str()),
            "a facilitator finds it by {q}: {}",
            full.text
        );
        for key in [Some(partner.as_str()), None] {
            let reply = app.call(key, Method::GET, &path, None).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert!(
                items(&reply).iter().all(|a| a["anonymous"] != true),
                "q={q} found the hidden actor: {}",
                reply.text
            );
        }
    }
    // What the partner may see still matches.
    let reply = read(&app, &partner, "/api/v1/actors?q=fonderie").await;
    assert_eq!(items(&reply).len(), 1, "{}", reply.text);
    assert_eq!(items(&reply)[0]["id"], open.as_str());
}

/// Item 5: notes, history and webhook copies name a hidden actor by its label only.
#[actix_web::test]
async fn notes_history_and_webhook_copies_are_redacted() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let partner = app.key("portail", Role::Partner, &[]);
    let (clat, clng) = centroid(&app, DIJON);
    // The hidden actor is no party to the synergy the notes are about: they name it all the same.
    let hidden = hidden_actor(&app, clat, clng).await;
    let provider = open_actor(&app, "Scierie Ouverte", clat + 0.01, clng).await;
    let receiver = open_actor(&app, "Chaufferie bois", clat - 0.01, clng).await;
    app.create_resource(&provider, sawdust("Sciure", 300.0))
        .await;
    app.create_resource(&receiver, wood_need("Combustible", 300.0))
        .await;
    let listed = app.get("/api/v1/synergies?kind=substitution").await;
    let synergy = items(&listed)
        .into_iter()
        .find(|s| s["provider_actor_id"] == provider.as_str())
        .unwrap_or_else(|| panic!("a synergy: {}", listed.text));
    let id = synergy["id"].as_str().expect("id").to_owned();

    // The partner's subscription: its copies are rendered (and logged) even if never delivered.
    let sub = app
        .call(
            Some(&partner),
            Method::POST,
            "/api/v1/webhooks",
            Some(&json!({"url": "http://127.0.0.1:9/hook", "events": ["synergy.status_changed"]})),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text);
    let sub_id = sub.body["id"].as_str().expect("subscription").to_owned();

    let mention = "Vu avec FONDERIE DUPONT-LEVEQUE (SIRET 732 829 320 00074, 12, rue des Forges) : \
                   M. Leveque, leveque@fonderie.example, préfère livrer ailleurs ; siren 732829320.";
    let note = app
        .post(
            &format!("/api/v1/synergies/{id}/notes"),
            &json!({"text": mention}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    let patched = app
        .patch(
            &format!("/api/v1/synergies/{id}"),
            &json!({"status": "proposed", "comment": format!("Proposé ; {HIDDEN_NAME} refuse.")}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    let leaks = |text: &str| {
        let folded = deunicode::deunicode(text).to_lowercase();
        [
            "dupont",
            "leveque",
            "732829320",
            "732 829 320",
            "forges",
            "fonderie.example",
        ]
        .into_iter()
        .filter(|s| folded.contains(s))
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    for path in [
        format!("/api/v1/synergies/{id}/notes"),
        format!("/api/v1/synergies/{id}/history"),
    ] {
        let reply = app.call(Some(&partner), Method::GET, &path, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(leaks(&reply.text).is_empty(), "{path}: {}", reply.text);
        assert!(
            reply.text.contains("Établissement anonyme"),
            "{}",
            reply.text
        );
        // Keyless readers (`auth.public_read`) get neither notes nor history, not even redacted.
        let keyless = app.call(None, Method::GET, &path, None).await;
        assert_eq!(keyless.status, 401, "{path}: {}", keyless.text);
        assert!(
            keyless.content_type.starts_with("application/problem+json"),
            "{}",
            keyless.content_type
        );
        assert!(leaks(&keyless.text).is_empty(), "{path}: {}", keyless.text);
        assert!(!keyless.text.contains("Établissement"), "{}", keyless.text);
    }
    // The facilitator reads what was written.
    let full = app.get(&format!("/api/v1/synergies/{id}/notes")).await;
    assert!(full.text.contains("DUPONT-LEVEQUE"), "{}", full.text);

    // The partner's webhook copy of the status change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let payload = loop {
        let log = read(
            &app,
            &partner,
            &format!("/api/v1/webhooks/{sub_id}/deliveries"),
        )
        .await;
        if let Some(row) = items(&log).into_iter().next() {
            break row["payload"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no copy rendered");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let text = payload.to_string();
    assert!(leaks(&text).is_empty(), "{text}");
    assert!(text.contains("Établissement anonyme"), "{text}");
    assert!(!text.contains(&hidden), "{text}");
}

/// Webhook copies for partners: no `synergy.detected` for a synergy with a hidden party (that the
/// exact sites give it says something of them), and no stored figure computed from its site.
#[actix_web::test]
async fn partner_webhooks_carry_nothing_computed_from_a_hidden_site() {
    let app = spawn_app().await;
    let partner = app.key("portail", Role::Partner, &[]);
    let sub = app
        .call(
            Some(&partner),
            Method::POST,
            "/api/v1/webhooks",
            Some(&json!({"url": "http://127.0.0.1:9/hook",
                         "events": ["synergy.detected", "synergy.status_changed"]})),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text);
    let sub_id = sub.body["id"].as_str().expect("subscription").to_owned();
    let (clat, clng) = centroid(&app, DIJON);
    let hidden = hidden_actor(&app, clat + 0.02, clng + 0.03).await;
    let hidden_offer = app
        .create_resource(&hidden, sawdust("Sciure cachée", 300.0))
        .await;
    let open = open_actor(&app, "Scierie Ouverte", clat + 0.01, clng).await;
    let open_offer = app.create_resource(&open, sawdust("Sciure", 300.0)).await;
    let receiver = open_actor(&app, "Chaufferie bois", clat - 0.01, clng).await;
    app.create_resource(&receiver, wood_need("Combustible", 300.0))
        .await;
    let listed = app.get("/api/v1/synergies?kind=substitution").await;
    let hidden_synergy = items(&listed)
        .into_iter()
        .find(|s| s["offer_id"] == hidden_offer["id"])
        .unwrap_or_else(|| panic!("the hidden actor's synergy: {}", listed.text));
    let id = hidden_synergy["id"].as_str().expect("id").to_owned();
    let patched = app
        .patch(
            &format!("/api/v1/synergies/{id}"),
            &json!({"status": "proposed"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let copies = loop {
        let log = read(
            &app,
            &partner,
            &format!("/api/v1/webhooks/{sub_id}/deliveries?limit=500"),
        )
        .await;
        let copies: Vec<Value> = items(&log)
            .into_iter()
            .map(|d| d["payload"].clone())
            .collect();
        if copies.iter().any(|c| c["type"] == "synergy.status_changed") {
            break copies;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no status change copy: {}",
            log.text
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let detected: Vec<&Value> = copies
        .iter()
        .filter(|c| c["type"] == "synergy.detected")
        .collect();
    assert!(
        detected
            .iter()
            .any(|c| c["data"]["synergy"]["offer_id"] == open_offer["id"]),
        "synergies between consenting actors are announced: {copies:?}"
    );
    assert!(
        detected
            .iter()
            .all(|c| c["data"]["synergy"]["offer_id"] != hidden_offer["id"]),
        "{copies:?}"
    );
    let changed = copies
        .iter()
        .find(|c| c["type"] == "synergy.status_changed")
        .expect("the status change");
    let synergy = &changed["data"]["synergy"];
    for exact in ["score", "distance_km"] {
        assert!(synergy.get(exact).is_none(), "{exact} in {changed}");
    }
    let text = changed.to_string();
    assert!(
        !text.contains(&hidden) && !text.contains("Dupont"),
        "{text}"
    );
}

/// Every answer a partner receives about a territory, by path.
async fn partner_answers(app: &TestApp, key: &str, hidden: &[String]) -> Vec<(String, String)> {
    let mut paths = vec![
        "/api/v1/synergies?limit=500".to_owned(),
        "/api/v1/synergies?territory=21&limit=500".to_owned(),
        "/api/v1/synergies?kind=pooling".to_owned(),
        "/api/v1/territories/21/graph".to_owned(),
        "/api/v1/territories/21/graph?format=geojson".to_owned(),
        "/api/v1/territories/21/graph?format=graphml".to_owned(),
        "/api/v1/territories/21/hubs".to_owned(),
        "/api/v1/territories/21/chains".to_owned(),
        "/api/v1/territories/21/allocation".to_owned(),
        "/api/v1/resources?limit=500".to_owned(),
        "/api/v1/territories/21/kpis".to_owned(),
        "/api/v1/territories/21/kpis?format=csv".to_owned(),
    ];
    for id in hidden {
        paths.push(format!("/api/v1/actors/{id}"));
        paths.push(format!("/api/v1/actors/{id}/synergies"));
        paths.push(format!("/api/v1/actors/{id}/resources"));
    }
    let mut answers = Vec::new();
    // Paged lists, following their cursors.
    for first in [
        "/api/v1/actors?limit=3",
        "/api/v1/synergies?limit=4",
        "/api/v1/actors?territory=21231&limit=2",
    ] {
        let mut path = first.to_owned();
        loop {
            let reply = read(app, key, &path).await;
            answers.push((path.clone(), reply.text.clone()));
            let Some(next) = reply.body["next_cursor"].as_str() else {
                break;
            };
            path = format!("{first}&cursor={next}");
        }
    }
    // Matches of every resource, notes and history of every synergy shown.
    let resources = read(app, key, "/api/v1/resources?limit=500").await;
    for r in items(&resources) {
        paths.push(format!(
            "/api/v1/resources/{}/matches",
            r["id"].as_str().unwrap_or_default()
        ));
    }
    let synergies = read(app, key, "/api/v1/synergies?limit=500").await;
    for s in items(&synergies) {
        let id = s["id"].as_str().unwrap_or_default();
        paths.push(format!("/api/v1/synergies/{id}"));
        paths.push(format!("/api/v1/synergies/{id}/notes"));
        paths.push(format!("/api/v1/synergies/{id}/history"));
    }
    for path in paths {
        let reply = read(app, key, &path).await;
        let text = if path.ends_with("/kpis") {
            // The time of the report is the only figure meant to change.
            let mut body = reply.body.clone();
            body["generated_at"] = Value::Null;
            body.to_string()
        } else {
            reply.text
        };
        answers.push((path, text));
    }
    let (lat, lng) = centroid(app, DIJON);
    let adhoc = app
        .call(
            Some(key),
            Method::POST,
            "/api/v1/match",
            Some(&json!({"kind": "need", "class": "material/biomass/wood", "accepted_ewc": ["03 01 05"],
                         "lat": lat, "lng": lng, "yearly_quantity": 100.0, "base_unit": "t"})),
        )
        .await;
    assert_eq!(adhoc.status, 200, "{}", adhoc.text);
    answers.push(("POST /api/v1/match".into(), adhoc.text));
    answers
}

/// Byte-identical answers, path by path; a failure names the first path that differs and where.
fn assert_same(before: &[(String, String)], after: &[(String, String)], when: &str) {
    assert_eq!(before.len(), after.len(), "{when}: not the same requests");
    for ((path, was), (_, is)) in before.iter().zip(after) {
        if was != is {
            let at = was
                .bytes()
                .zip(is.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(was.len().min(is.len()));
            let around = |t: &str| {
                let from = t.floor_char_boundary(at.saturating_sub(150));
                let to = t.floor_char_boundary((at + 150).min(t.len()));
                t[from..to].to_owned()
            };
            panic!(
                "{when}: {path} changed\n was: …{}…\n now: …{}…",
                around(was),
                around(is)
            );
        }
    }
}

/// The rule: for random territories, nothing a partner receives changes when a hidden actor moves
/// within its commune (site and address), while a facilitator sees the move.
#[actix_web::test]
async fn nothing_a_partner_receives_changes_when_a_hidden_actor_moves_within_its_commune() {
    let app = spawn_app().await;
    let partner = app.key("portail", Role::Partner, &[]);
    let communes = ["21231", "21166", "21617", "21515"];
    let mut rng = StdRng::seed_from_u64(20_261_203);
    let mut hidden: Vec<(String, &str)> = Vec::new();
    for i in 0..24 {
        let commune = communes[rng.random_range(0..communes.len())];
        let (clat, clng) = centroid(&app, commune);
        // Consent is random, but the first three actors are hidden whatever the draw.
        let consents = i >= 3 && rng.random_bool(0.6);
        let naf = ["16.10A", "35.30Z", "24.51Z", "10.71A"][rng.random_range(0..4)];
        let id = app
            .create_actor(json!({
                "name": format!("Établissement {i} {}", ["Sud", "Nord", "Est"][i % 3]),
                "naf_code": naf,
                "commune_insee": commune,
                "address": format!("{i} rue du Test"),
                "lat": clat + rng.random_range(-0.01..0.01),
                "lng": clng + rng.random_range(-0.01..0.01),
                "share_with_partners": consents,
            }))
            .await;
        let tonnes = f64::from(rng.random_range(50..500));
        match rng.random_range(0..3) {
            0 => app.create_resource(&id, wood_need("Bois", tonnes)).await,
            1 => app.create_resource(&id, sawdust("Sciure", tonnes)).await,
            _ => {
                app.create_resource(&id, sawdust("Copeaux", tonnes)).await;
                app.create_resource(&id, wood_need("Plaquettes", tonnes))
                    .await
            }
        };
        if !consents {
            hidden.push((id, commune));
        }
    }
    // A facilitator's note naming a hidden actor, on the best synergy.
    let best = app.get("/api/v1/synergies?kind=substitution&limit=1").await;
    let best_id = items(&best)[0]["id"]
        .as_str()
        .expect("a synergy")
        .to_owned();
    let note = app
        .post(
            &format!("/api/v1/synergies/{best_id}/notes"),
            &json!({"text": "À voir avec établissement 0 sud et Établissement 1 Nord."}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);

    let hidden_ids: Vec<String> = hidden.iter().map(|(id, _)| id.clone()).collect();
    let before = partner_answers(&app, &partner, &hidden_ids).await;
    let again = partner_answers(&app, &partner, &hidden_ids).await;
    assert_same(&before, &again, "without a move");
    let facilitator_before = app.get("/api/v1/synergies?limit=500").await.text;
    for round in 0..2 {
        for (id, commune) in &hidden {
            let (clat, clng) = centroid(&app, commune);
            let moved = app
                .patch(
                    &format!("/api/v1/actors/{id}"),
                    &json!({"lat": clat + rng.random_range(-0.01..0.01),
                            "lng": clng + rng.random_range(-0.01..0.01),
                            "address": format!("{round} place du Déménagement")}),
                )
                .await;
            assert_eq!(moved.status, 200, "{}", moved.text);
        }
        let after = partner_answers(&app, &partner, &hidden_ids).await;
        assert_same(&before, &after, &format!("after moves, round {round}"));
    }
    assert_ne!(
        facilitator_before,
        app.get("/api/v1/synergies?limit=500").await.text,
        "the moves change what a facilitator sees"
    );
}
