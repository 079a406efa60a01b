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

#[actix_web::test]
async fn requests_without_a_valid_key_are_refused_and_revocation_is_immediate() {
    let app = spawn_app().await;
    // Probes and the API document stay public.
    expect(&app, None, Method::GET, "/health/live", None, 200).await;
    expect(&app, None, Method::GET, "/api/v1/openapi.json", None, 200).await;

    let refused = expect(&app, None, Method::GET, "/api/v1/actors", None, 401).await;
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("API key")
    );
    let raw = app
        .client
        .get(app.url("/api/v1/actors"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        raw.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"symbiose\"")
    );
    expect(
        &app,
        Some("sym_not-a-key"),
        Method::GET,
        "/api/v1/actors",
        None,
        401,
    )
    .await;
    let bad_scheme = app
        .send_raw(
            app.client
                .get(app.url("/api/v1/actors"))
                .header("Authorization", "Basic abc"),
        )
        .await;
    assert_eq!(bad_scheme.status, 401);

    // A key created through the admin API works until it is revoked, then at once no more.
    let created = app
        .post(
            "/api/v1/keys",
            &json!({"name": "Portail régional", "role": "partner", "territories": ["21"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["key"]
        .as_str()
        .expect("key shown once")
        .to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["role"], "partner");
    assert_eq!(created.body["territories"], json!(["21"]));
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 200).await;

    let listed = app.get("/api/v1/keys").await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&key), "the key is never listed");
    assert!(
        !listed.text.contains(&key[4..]),
        "nor any part past its prefix"
    );
    assert!(
        listed
            .body
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["id"] == id.as_str()))
    );

    let revoked = app.delete(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string());
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 401).await;
    expect(
        &app,
        None,
        Method::DELETE,
        "/api/v1/keys/00000000-0000-0000-0000-000000000000",
        None,
        401,
    )
    .await;
    let unknown = app
        .delete("/api/v1/keys/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(unknown.status, 404);
}

#[actix_web::test]
async fn new_keys_are_validated_and_named_fields_reported() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/api/v1/keys",
            &json!({"name": " ", "role": "partner", "territories": ["21", "nowhere"]}),
        )
        .await;
    crate::helpers::assert_field_error(&bad, "name");
    crate::helpers::assert_field_error(&bad, "territories[1]");
    let bad_role = app
        .post("/api/v1/keys", &json!({"name": "x", "role": "superuser"}))
        .await;
    crate::helpers::assert_field_error(&bad_role, "role");
}

#[actix_web::test]
async fn roles_decide_who_reads_writes_and_administers() {
    let app = spawn_app().await;
    let partner = app.key("portail", Role::Partner, &[]);
    let facilitator = app.key("animatrice", Role::Facilitator, &[]);
    let body = actor("Scierie", "21231");

    expect(
        &app,
        Some(&partner),
        Method::GET,
        "/api/v1/actors",
        None,
        200,
    )
    .await;
    expect(
        &app,
        Some(&partner),
        Method::POST,
        "/api/v1/actors",
        Some(&body),
        403,
    )
    .await;
    let created = expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&body),
        201,
    )
    .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/actors/{id}");
    expect(
        &app,
        Some(&partner),
        Method::PATCH,
        &path,
        Some(&json!({"name": "X"})),
        403,
    )
    .await;
    expect(&app, Some(&partner), Method::DELETE, &path, None, 403).await;
    // Partners may ask the ad-hoc match (it stores nothing).
    let adhoc = json!({"kind": "offer", "ewc_code": "03 01 05", "lat": 47.32, "lng": 5.04});
    let asked = app
        .call(Some(&partner), Method::POST, "/api/v1/match", Some(&adhoc))
        .await;
    assert_ne!(asked.status, 401);
    assert_ne!(asked.status, 403, "{}", asked.text);
    // Keys and the audit log are for admins.
    expect(
        &app,
        Some(&facilitator),
        Method::GET,
        "/api/v1/keys",
        None,
        403,
    )
    .await;
    expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/keys",
        Some(&json!({"name": "x", "role": "admin"})),
        403,
    )
    .await;
    expect(
        &app,
        Some(&partner),
        Method::GET,
        "/api/v1/audit",
        None,
        403,
    )
    .await;
    expect(&app, Some(&facilitator), Method::DELETE, &path, None, 204).await;
}

#[actix_web::test]
async fn public_read_opens_reads_only() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    expect(&app, None, Method::GET, "/api/v1/actors", None, 200).await;
    expect(&app, None, Method::GET, "/api/v1/territories/21", None, 200).await;
    expect(
        &app,
        None,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("A", "21231")),
        401,
    )
    .await;
    expect(&app, None, Method::GET, "/api/v1/keys", None, 401).await;
    // A wrong key is still refused: public reading is for requests without one.
    expect(
        &app,
        Some("sym_wrong"),
        Method::GET,
        "/api/v1/actors",
        None,
        401,
    )
    .await;
}

#[actix_web::test]
async fn territory_scopes_limit_what_a_facilitator_sees_and_changes() {
    let app = spawn_app().await;
    let dijon = app.create_actor(actor("Scierie de Dijon", "21231")).await;
    let nevers = app.create_actor(actor("Scierie de Nevers", "58194")).await;
    let cote_dor = app.key("animatrice 21", Role::Facilitator, &["21"]);
    let key = Some(cote_dor.as_str());

    // Writes inside the département pass, outside are refused, and moving an actor out too.
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Beaune", "21054")),
        201,
    )
    .await;
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Mâcon", "71270")),
        403,
    )
    .await;
    let outside = format!("/api/v1/actors/{nevers}");
    expect(&app, key, Method::GET, &outside, None, 403).await;
    expect(
        &app,
        key,
        Method::PATCH,
        &outside,
        Some(&json!({"name": "X"})),
        403,
    )
    .await;
    expect(&app, key, Method::DELETE, &outside, None, 403).await;
    let move_out = json!({"commune_insee": "58194"});
    expect(
        &app,
        key,
        Method::PATCH,
        &format!("/api/v1/actors/{dijon}"),
        Some(&move_out),
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::PATCH,
        &format!("/api/v1/actors/{dijon}"),
        Some(&json!({"name": "Scierie D"})),
        200,
    )
    .await;
    let sawdust =
        json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05"});
    expect(
        &app,
        key,
        Method::POST,
        &format!("{outside}/resources"),
        Some(&sawdust),
        403,
    )
    .await;

    // Lists default to the key's territory; a territory outside it, or above it, is refused.
    let listed = expect(&app, key, Method::GET, "/api/v1/actors", None, 200).await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"Scierie D") && names.contains(&"Beaune"),
        "{names:?}"
    );
    assert!(!names.contains(&"Scierie de Nevers"), "{names:?}");
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=21231",
        None,
        200,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=R27",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/resources?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/synergies?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/58/kpis",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/58/graph",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/21/graph",
        None,
        200,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/nowhere-zone/graph",
        None,
        404,
    )
    .await;
    // A zone inside the département may be drawn; one reaching outside may not.
    let inside = json!({"code": "Z-DIJON", "name": "Dijon", "communes": ["21231", "21054"]});
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/territories",
        Some(&inside),
        201,
    )
    .await;
    let across = json!({"code": "Z-ACROSS", "name": "Across", "communes": ["21231", "58194"]});
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/territories",
        Some(&across),
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=Z-DIJON",
        None,
        200,
    )
    .await;

    // An import touching another département stores nothing.
    let csv = "actor_name,siret,naf_code,commune_insee,kind,category,label,ewc_code\n\
               Fonderie,,24.51Z,21231,offer,material,Sables,10 09 08\n\
               Verrerie,,23.13Z,58194,offer,material,Calcin,10 11 12\n";
    let refused = app
        .send_raw(
            app.client
                .post(app.url("/api/v1/import"))
                .bearer_auth(&cote_dor)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("lines 3"),
        "{}",
        refused.text
    );
    let all = app.get("/api/v1/actors?q=Fonderie").await;
    assert_eq!(
        all.body["items"].as_array().map(Vec::len),
        Some(0),
        "nothing imported"
    );
}

#[actix_web::test]
async fn every_write_is_audited_with_its_key() {
    let app = spawn_app().await;
    let facilitator = app.key("Animatrice Côte-d'Or", Role::Facilitator, &[]);
    let created = expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Audit", "21231")),
        201,
    )
    .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    expect(
        &app,
        Some(&facilitator),
        Method::PATCH,
        &format!("/api/v1/actors/{id}"),
        Some(&json!({"name": "Audit 2"})),
        200,
    )
    .await;
    // Refused writes and reads are not writes.
    expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&json!({"name": ""})),
        422,
    )
    .await;
    expect(
        &app,
        Some(&facilitator),
        Method::GET,
        "/api/v1/actors",
        None,
        200,
    )
    .await;

    let log = app.get("/api/v1/audit").await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries: Vec<Value> = log.body["items"].as_array().cloned().unwrap_or_default();
    let mine: Vec<&Value> = entries
        .iter()
        .filter(|e| e["key_name"] == "Animatrice Côte-d'Or")
        .collect();
    assert_eq!(mine.len(), 2, "{entries:?}");
    assert_eq!(mine[0]["method"], "PATCH", "newest first");
    assert_eq!(mine[0]["route"], "/api/v1/actors/{id}");
    assert_eq!(mine[0]["entity_id"], id.as_str());
    assert_eq!(mine[1]["method"], "POST");
    assert_eq!(
        mine[1]["entity_id"],
        id.as_str(),
        "from the Location header"
    );
    assert_eq!(mine[1]["status"], 201);
}

#[actix_web::test]
async fn the_rate_limit_is_per_key() {
    let app = spawn_with(|s| {
        s.auth.rate_limit_per_second = 1;
        s.auth.rate_limit_burst = 3;
    })
    .await;
    let busy = app.key("busy", Role::Partner, &[]);
    let calm = app.key("calm", Role::Partner, &[]);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.call(Some(&busy), Method::GET, "/api/v1/actors", None)
                .await
                .status,
        );
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let limited = app
        .call(Some(&busy), Method::GET, "/api/v1/actors", None)
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.content_type.starts_with("application/problem+json"));
    // Another key has its own bucket.
    expect(&app, Some(&calm), Method::GET, "/api/v1/actors", None, 200).await;
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

#[actix_web::test]
async fn partners_and_public_readers_see_non_consenting_actors_anonymised_everywhere() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let s = scene(&app).await;
    let partner = app.key("portail", Role::Partner, &["21"]);
    let facilitator = app.key("animatrice", Role::Facilitator, &["21"]);
    let adhoc = json!({"kind": "need", "class": "material/biomass/wood", "accepted_ewc": ["03 01 05"],
                       "lat": 47.33, "lng": 5.05});
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/actors/{}", s.secret_id), None),
        (Method::GET, "/api/v1/actors?territory=21".into(), None),
        (Method::GET, "/api/v1/territories/21231/actors".into(), None),
        (Method::GET, "/api/v1/resources?territory=21".into(), None),
        (
            Method::GET,
            format!("/api/v1/resources/{}", s.offer_id),
            None,
        ),
        (Method::GET, "/api/v1/synergies?territory=21".into(), None),
        (
            Method::GET,
            format!("/api/v1/synergies/{}", s.synergy_id),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/actors/{}/synergies", s.open_id),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/resources/{}/matches", s.offer_id),
            None,
        ),
        (Method::POST, "/api/v1/match".into(), Some(adhoc)),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=json".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=graphml".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=geojson".into(),
            None,
        ),
        (Method::GET, "/api/v1/territories/21/hubs".into(), None),
        (Method::GET, "/api/v1/territories/21/chains".into(), None),
        (
            Method::GET,
            "/api/v1/territories/21/allocation".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/kpis?format=csv".into(),
            None,
        ),
    ];
    let readers: [(&str, Option<&str>, bool); 4] = [
        ("admin", Some(app.admin_key.as_str()), false),
        ("facilitator", Some(facilitator.as_str()), false),
        ("partner", Some(partner.as_str()), true),
        ("public", None, true),
    ];
    let secrets = [
        SECRET_NAME,
        SECRET_SIRET,
        "12 rue des Scieurs",
        "chene@example.org",
        s.secret_id.as_str(),
    ];
    for (method, path, body) in &endpoints {
        let full = app
            .call(Some(&app.admin_key), method.clone(), path, body.as_ref())
            .await;
        assert_eq!(full.status, 200, "admin {method} {path}: {}", full.text);
        // The matrix has teeth: every endpoint shows the sawmill to an admin, but the KPI export
        // and the allocation (no actors in them) and chains (two actors make no chain).
        if !["kpis", "chains", "allocation"]
            .iter()
            .any(|p| path.contains(p))
        {
            assert!(
                full.text.contains(&s.secret_id) || full.text.contains(SECRET_NAME),
                "admin {method} {path} does not show the sawmill: {}",
                full.text
            );
        }
        for (role, key, anonymised) in readers {
            let reply = app.call(key, method.clone(), path, body.as_ref()).await;
            if key.is_none() && path.contains("/kpis") {
                // KPIs count synergies by status, which keyless readers do not see.
                assert_eq!(reply.status, 401, "{role} {method} {path}: {}", reply.text);
                continue;
            }
            assert_eq!(reply.status, 200, "{role} {method} {path}: {}", reply.text);
            for secret in secrets {
                let shown_to_admin = full.text.contains(secret);
                let shown = reply.text.contains(secret);
                if anonymised {
                    assert!(
                        !shown,
                        "{role} {method} {path} shows `{secret}`: {}",
                        reply.text
                    );
                } else {
                    assert_eq!(
                        shown, shown_to_admin,
                        "{role} {method} {path} and `{secret}`"
                    );
                }
            }
            // Consenting actors are shown to everyone as they are.
            assert_eq!(
                reply.text.contains(OPEN_NAME),
                full.text.contains(OPEN_NAME),
                "{role} {method} {path} and the consenting actor"
            );
        }
    }
}

#[actix_web::test]
async fn an_anonymous_actor_keeps_activity_commune_and_a_stable_opaque_id() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let partner = app.key("portail", Role::Partner, &[]);
    let key = Some(partner.as_str());
    let dijon = app
        .app
        .reference
        .geo
        .commune("21231")
        .expect("Dijon")
        .clone();

    let seen = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    let opaque = seen.body["id"].as_str().expect("id").to_owned();
    assert_ne!(opaque, s.secret_id);
    assert!(uuid::Uuid::parse_str(&opaque).is_ok());
    assert_eq!(seen.body["anonymous"], true);
    assert_eq!(seen.body["naf_code"], "16.10A");
    assert_eq!(seen.body["commune_insee"], "21231");
    assert_eq!(seen.body["siret"], Value::Null);
    assert!((seen.body["lat"].as_f64().unwrap_or(0.0) - dijon.lat).abs() < 1e-3);
    assert!((seen.body["lng"].as_f64().unwrap_or(0.0) - dijon.lng).abs() < 1e-3);
    assert!(
        seen.body["name"]
            .as_str()
            .unwrap_or_default()
            .contains("anonyme")
    );

    // The same opaque id everywhere, and the synergy keeps its quantities with a distance band.
    let full = app
        .get(&format!("/api/v1/synergies/{}", s.synergy_id))
        .await;
    let shown = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/synergies/{}", s.synergy_id),
        None,
        200,
    )
    .await;
    assert_eq!(shown.body["provider_actor_id"], opaque.as_str());
    assert_eq!(shown.body["receiver_actor_id"], s.open_id.as_str());
    assert_eq!(shown.body["receiver_name"], OPEN_NAME);
    // The score is computed from the commune centroid, not the site (security::anonymity).
    assert!(
        shown.body["score"]
            .as_f64()
            .is_some_and(|x| (0.0..=1.0).contains(&x))
    );
    assert_eq!(shown.body["quantity"], full.body["quantity"]);
    assert_eq!(shown.body["class"], full.body["class"]);
    assert!(shown.body.get("distance_km").is_none());
    assert_eq!(shown.body["distance_band"], "0–5 km");
    let again = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    assert_eq!(again.body["id"], opaque.as_str(), "stable across requests");
    // The actor consents: partners see it as it is.
    app.patch(
        &format!("/api/v1/actors/{}", s.secret_id),
        &json!({"share_with_partners": true}),
    )
    .await;
    let open = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    assert_eq!(open.body["name"], SECRET_NAME);
    assert_eq!(open.body["id"], s.secret_id.as_str());
}

#[actix_web::test]
async fn synergy_changes_are_signed_by_the_key() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let facilitator = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let elsewhere = app.key("Animateur 58", Role::Facilitator, &["58"]);
    let path = format!("/api/v1/synergies/{}", s.synergy_id);
    let propose = json!({"status": "proposed"});
    expect(
        &app,
        Some(&elsewhere),
        Method::PATCH,
        &path,
        Some(&propose),
        403,
    )
    .await;
    let reply = app
        .send_raw(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&facilitator)
                .header("X-Symbiose-User", "Claire")
                .json(&propose),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let history = app.get(&format!("{path}/history")).await;
    assert_eq!(
        history.body["items"][0]["changed_by"],
        "Claire via Animatrice 21"
    );
}

/// Runs the `symbiose` binary against the test app's database.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_symbiose"))
        .args(args)
        .env("SYMBIOSE_ENV", "test")
        .env("SYMBIOSE__DATABASE__URL", &app.app.settings.database.url)
        .output()
        .expect("the binary runs")
}

#[actix_web::test]
async fn the_keys_command_creates_lists_and_revokes() {
    let app = spawn_app().await;
    let created = cli(
        &app,
        &[
            "keys",
            "create",
            "--role",
            "partner",
            "--territory",
            "21",
            "--name",
            "Portail CLI",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(key.starts_with("sym_"), "{key}");
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 200).await;
    expect(
        &app,
        Some(&key),
        Method::GET,
        "/api/v1/actors?territory=58",
        None,
        403,
    )
    .await;

    let listed = cli(&app, &["keys", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("Portail CLI"))
        .unwrap_or_else(|| panic!("listed: {text}"));
    assert!(!text.contains(&key), "the key itself is never listed");
    assert!(
        line.contains("partner") && line.contains("active"),
        "{line}"
    );
    let id = line.split('\t').next().expect("id column").to_owned();

    let refused = cli(
        &app,
        &[
            "keys",
            "create",
            "--role",
            "partner",
            "--territory",
            "nowhere",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("territories[0]"));

    let revoked = cli(&app, &["keys", "revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // Another process revoked it: the server, which keeps the keys it checked, drops them when its
    // change follower sees the keys' counter move (every `database.change_poll_ms`, 200 ms).
    let started = std::time::Instant::now();
    loop {
        let status = app
            .send(
                app.client
                    .get(app.url("/api/v1/actors"))
                    .bearer_auth(key.clone()),
            )
            .await
            .status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a key revoked by the CLI still works after {:?}",
            started.elapsed()
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_scoped_key_lists_only_the_zones_inside_its_territories() {
    let app = spawn_app().await;
    for zone in [
        json!({"code": "Z-DIJON", "name": "Dijon", "communes": ["21231"]}),
        json!({"code": "Z-NEVERS", "name": "Nevers", "communes": ["58194"]}),
        json!({"code": "Z-DEUX", "name": "Dijon et Nevers", "communes": ["21231", "58194"]}),
    ] {
        assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    }
    let codes = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mut codes: Vec<String> = reply.body["items"]
            .as_array()
            .map(|zones| {
                zones
                    .iter()
                    .filter_map(|z| z["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        codes.sort();
        codes
    };
    assert_eq!(
        codes(app.get("/api/v1/territories").await),
        ["Z-DEUX", "Z-DIJON", "Z-NEVERS"]
    );
    let of_21 = app.key("facilitateur 21", Role::Facilitator, &["21"]);
    assert_eq!(
        codes(
            app.call(Some(&of_21), Method::GET, "/api/v1/territories", None)
                .await
        ),
        ["Z-DIJON"]
    );
    // The zones it does not list, it cannot open either.
    let hidden = app
        .call(
            Some(&of_21),
            Method::GET,
            "/api/v1/territories/Z-DEUX",
            None,
        )
        .await;
    assert_eq!(hidden.status, 403, "{}", hidden.text);
}

/// After a rebuild, the new build's anonymous view is computed at once in the background from the
/// previous build's (only the offers the change reaches are matched again): a partner's next read
/// finds it ready, and it is the view a full computation gives.
#[actix_web::test]
async fn a_rebuild_brings_the_partners_view_up_to_date_from_the_previous_one() {
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let scene = scene(&app).await;
    let (detection, pool, reference) = (
        app.app.detection.clone(),
        app.app.pool.clone(),
        app.app.reference.clone(),
    );
    // More of the territory, so that a write reaches a part of it only.
    for i in 0..8 {
        let actor = app
            .create_actor(
                json!({"name": format!("Menuiserie {i}"), "naf_code": "16.23Z",
                "commune_insee": "21054", "share_with_partners": i % 2 == 0}),
            )
            .await;
        app.create_resource(
            &actor,
            json!({"kind": "offer", "category": "material",
            "label": "Chutes de bois", "ewc_code": "03 01 05",
            "quantity": {"value": 20 + i, "unit": "t", "period": "year"}}),
        )
        .await;
    }
    let before = detection.fresh(&pool).expect("a build");
    symbiose::auth::anonymise::anonymous_view(&before, &detection, &reference).expect("a view");
    // A write, and the rebuild a read makes.
    app.create_resource(
        &scene.secret_id,
        json!({"kind": "offer", "category": "material", "label": "Écorces",
               "ewc_code": "03 01 01", "quantity": {"value": 80, "unit": "t", "period": "year"}}),
    )
    .await;
    // The build that holds the write (or one more, if the change follower asked for it after that
    // build read the counters: a view is not made for a build about to be replaced).
    let mut made = None;
    for _ in 0..200 {
        let current = detection.fresh(&pool).expect("a build");
        if let Some(view) = current.anonymous.get().cloned() {
            made = Some((current, view));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (after, view) = made.expect("the new build's view, computed without a partner asking");
    assert!(after.version > before.version);
    assert!(view.rematched.is_some(), "computed from the previous view");
    let full = after
        .moved(
            &detection.settings,
            &detection.pooling,
            |a| {
                symbiose::auth::anonymise::known_position(
                    &reference,
                    &a.commune,
                    a.lat,
                    a.lng,
                    a.share_with_partners,
                )
            },
            None,
            1,
        )
        .expect("a full view");
    assert_eq!(full.rematched, None);
    assert_eq!(view.synergies.as_slice(), full.synergies.as_slice());
    assert_eq!(view.pooling, full.pooling);
    // A partner's read uses it: no computation of its own.
    let partner = app.key("portal", Role::Partner, &[]);
    let listed = app
        .call(
            Some(&partner),
            Method::GET,
            "/api/v1/synergies?territory=21",
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        after
            .anonymous_computed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The replaced build is freed once nobody reads it, even while its view is still read (here by
    // this test): the build's memory is not held for the view's sake.
    let earlier_view = before.anonymous.get().cloned().expect("the earlier view");
    let replaced = std::sync::Arc::downgrade(&before);
    drop(before);
    for _ in 0..100 {
        if replaced.strong_count() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(replaced.strong_count(), 0, "the replaced build is freed");
    assert!(
        !earlier_view.synergies.is_empty(),
        "its view is still readable"
    );
}

/// Partner reads that arrive together after a build share one computation of its anonymous view
/// (at national scale each is a second detection: ~12 s and ~1.7 GiB), and all read the same view.
#[actix_web::test]
async fn concurrent_partner_reads_compute_the_anonymous_view_once() {
    let app = spawn_app().await;
    scene(&app).await;
    let (detection, pool, reference) = (
        app.app.detection.clone(),
        app.app.pool.clone(),
        app.app.reference.clone(),
    );
    let built = detection.fresh(&pool).expect("a build");
    assert!(built.anonymous.get().is_none(), "nobody asked for it yet");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (built, detection, reference) =
                (built.clone(), detection.clone(), reference.clone());
            std::thread::spawn(move || {
                symbiose::auth::anonymise::anonymous_view(&built, &detection, &reference)
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let views: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("reader").expect("the anonymous view"))
        .collect();
    assert!(
        views.iter().all(|v| std::sync::Arc::ptr_eq(v, &views[0])),
        "every reader reads the one view kept with the build"
    );
    assert!(
        !std::sync::Arc::ptr_eq(&views[0], &built),
        "a non-consenting actor: the view is not the build itself"
    );
    assert_eq!(
        built
            .anonymous_computed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
