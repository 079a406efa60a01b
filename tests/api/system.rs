use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use symbiose::config::Settings;

use crate::helpers::{TestApp, actor_body, spawn_app};

#[actix_web::test]
async fn health_probes() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status, 200, "{}", live.text);
    assert_eq!(live.body["status"], "ok");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["status"], "ok");
    assert_eq!(ready.body["database"], true);
    assert_eq!(ready.body["reference"], true);
}

#[actix_web::test]
async fn the_openapi_document_describes_the_served_routes() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    let version = reply.body["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi {version}");
    assert_eq!(reply.body["info"]["title"], "symbiose");
    let paths: Vec<&str> = reply.body["paths"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for path in [
        "/api/v1/actors",
        "/api/v1/actors/{id}",
        "/api/v1/actors/{id}/resources",
        "/api/v1/resources",
        "/api/v1/resources/{id}",
        "/api/v1/import",
        "/api/v1/codes/ewc",
        "/api/v1/codes/naf",
        "/api/v1/territories/{code}",
        "/health/ready",
    ] {
        assert!(
            paths.contains(&path),
            "{path} missing from the OpenAPI paths {paths:?}"
        );
    }
    // Every documented operation is routed (it does not fall to the 404 of an unknown route), once
    // its path parameters are filled with an unknown id or a reference territory.
    for (path, operations) in reply.body["paths"].as_object().into_iter().flatten() {
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{code}", "21")
            .replace("{year}", "2010");
        for method in operations
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let Ok(method) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let mut request = app.client.request(method.clone(), app.url(&concrete));
            if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let answer = app.send(request).await;
            let unknown_route = answer.status == 404 && answer.body["detail"] == "route not found";
            assert!(
                !unknown_route,
                "documented operation {method} {path} is not served"
            );
        }
    }
    // The schemas document the wire spelling of units and periods.
    let schemas = &reply.body["components"]["schemas"];
    assert_eq!(
        schemas["Unit"]["enum"],
        json!(["t", "kg", "m3", "L", "MWh", "kWh", "GJ", "unit"])
    );
    assert_eq!(
        schemas["Period"]["enum"],
        json!(["day", "week", "month", "year"])
    );
    assert_eq!(
        schemas["AvailabilityKind"]["enum"],
        json!(["continuous", "seasonal", "one_off"])
    );
}

#[actix_web::test]
async fn interactive_docs_work_offline() {
    let app = spawn_app().await;
    let reply = app.get("/docs").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("text/html"),
        "{}",
        reply.content_type
    );
    let html = reply.text.to_lowercase();
    assert!(
        html.contains("<html") || html.contains("<!doctype html"),
        "an HTML page"
    );
    for host in [
        "https://cdn",
        "http://cdn",
        "unpkg",
        "jsdelivr",
        "cdnjs",
        "googleapis",
    ] {
        assert!(
            !html.contains(host),
            "/docs loads assets from {host}: it does not work offline"
        );
    }
}

#[actix_web::test]
async fn unknown_routes_are_problem_json_404() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/actors",
        "/api/v1/actors/x/y/z",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert!(
            reply.content_type.starts_with("application/problem+json"),
            "{path}: {}",
            reply.content_type
        );
        assert_eq!(reply.body["status"], 404);
        assert!(reply.body["title"].is_string() && reply.body["type"].is_string());
    }
    let reply = app.post("/api/v1/nope", &json!({})).await;
    assert_eq!(reply.status, 404);
}

#[test]
fn production_settings_use_postgresql() {
    // Production refuses the public anonymisation secret: give it one, as docker-compose.yml does.
    let secret = [(
        "SYMBIOSE__AUTH__ANONYMISATION_SECRET".to_owned(),
        "a-private-secret".to_owned(),
    )];
    let settings = Settings::load_with_vars(
        Path::new("config"),
        Some("production"),
        Some(secret.into_iter().collect()),
    )
    .expect("production settings load");
    assert!(
        settings.database.url.starts_with("postgres://"),
        "{}",
        settings.database.url
    );
    let default = Settings::load_for(Path::new("config"), None).expect("default settings load");
    assert!(
        !default.database.url.starts_with("postgres"),
        "SQLite by default: {}",
        default.database.url
    );
    assert_eq!(default.server.port, 8080);
    let test = Settings::load_for(Path::new("config"), Some("test")).expect("test settings load");
    assert_eq!(test.server.port, 0);
}

/// A config dir whose default.toml is the project's, edited by `edit`.
fn config_dir(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let default = std::fs::read_to_string("config/default.toml").expect("config/default.toml");
    let edited = edit(&default);
    assert_ne!(edited, default, "the edit changed something");
    std::fs::write(dir.path().join("default.toml"), edited).expect("write default.toml");
    dir
}

fn load_error(dir: &Path, env: Option<&str>) -> String {
    match Settings::load_for(dir, env) {
        Ok(_) => panic!("settings in {} should not load", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bad_setting_names_its_key() {
    let bad_port = config_dir(|t| t.replace("port = 8080", "port = \"notaport\""));
    let message = load_error(bad_port.path(), None);
    assert!(message.contains("port"), "{message}");
    assert!(
        message.contains("server.port"),
        "names the whole key: {message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");

    let missing_key = config_dir(|t| {
        t.lines()
            .filter(|l| !l.starts_with("json_limit_bytes"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let message = load_error(missing_key.path(), None);
    assert!(message.contains("json_limit_bytes"), "{message}");

    let zero_pool = config_dir(|t| t.replace("pool_size = 8", "pool_size = 0"));
    let message = load_error(zero_pool.path(), None);
    assert!(message.contains("database.pool_size"), "{message}");

    let bad_format = config_dir(|t| t.replace("format = \"pretty\"", "format = \"xml\""));
    let message = load_error(bad_format.path(), None);
    assert!(message.contains("log.format"), "{message}");

    let bad_weight = config_dir(|t| t.replace("landfill_share = 0.3", "landfill_share = -0.3"));
    let message = load_error(bad_weight.path(), None);
    assert!(message.contains("afme.priority"), "{message}");

    let broken = config_dir(|t| t.replace("[server]", "[server"));
    let message = load_error(broken.path(), None);
    assert!(
        message.contains("default.toml"),
        "a syntax error names the file: {message}"
    );
}

#[test]
fn a_missing_environment_file_is_named() {
    let message = load_error(Path::new("config"), Some("staging"));
    assert!(message.contains("staging.toml"), "{message}");
    let empty = tempfile::tempdir().expect("temp dir");
    let message = load_error(empty.path(), None);
    assert!(message.contains("default.toml"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// No request a client can send yields a 500.

const STRINGS: &[&str] = &[
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "null",
    "true",
    "a\u{0}b",
    "\u{0}",
    "é",
    "💩🏭",
    "\u{202e}gnp.exe",
    "' OR '1'='1' --",
    "%_\\",
    "../../etc/passwd",
    "2025-13-45",
    "2025-02-29",
    "t",
    "ton",
    "offer",
    "seasonal",
    "one_off",
    "10 01 02",
    "19 01 13*",
    "99.99Z",
    "16.10A",
    "21231",
    "2A004",
    "00000",
    "73282932000074",
    "material/biomass",
    "energy",
    "<script>alert(1)</script>",
];

fn garbage(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..16) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random_range(-1000i64..1000)),
        3 => json!([u64::MAX, i64::MIN as u64][rng.random_range(0..2)]),
        4 => json!(i64::MIN),
        5 => json!(
            [
                1e308,
                -1e308,
                f64::MAX,
                f64::MIN_POSITIVE,
                5e-324,
                -0.0,
                1e-300
            ][rng.random_range(0..7)]
        ),
        6 => json!(rng.random::<f64>() * 10f64.powi(rng.random_range(-10..300))),
        7..=10 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
        11 => json!("x".repeat(rng.random_range(300..20_000))),
        12 if depth < 4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| garbage(rng, depth + 1))
                .collect(),
        ),
        13 if depth < 4 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                let key = STRINGS[rng.random_range(0..STRINGS.len())].to_owned();
                map.insert(key, garbage(rng, depth + 1));
            }
            Value::Object(map)
        }
        14 => json!([1, 13, 0, 255, 256, -1][rng.random_range(0..6)..].to_vec()),
        _ => json!(rng.random_range(0u8..=20)),
    }
}

fn full_actor() -> Value {
    json!({
        "name": "Fuzz", "siret": "73282932000074", "naf_code": "16.10A", "address": "1 rue", "commune_insee": "21231",
        "lat": 47.3, "lng": 5.0, "contact": {"name": "N", "email": "a@b.c", "phone": "0"}, "share_with_partners": false
    })
}

fn full_resource() -> Value {
    json!({
        "kind": "offer", "category": "material", "class": "material/mineral/ash", "label": "L", "description": "D",
        "ewc_code": "10 01 02", "accepted_ewc": ["10 01 01"], "quantity": {"value": 1, "unit": "t", "period": "day"},
        "availability": {"kind": "seasonal", "months": [1, 2]}, "temperature_c": 20, "max_distance_km": 10,
        "physical_state": "solid"
    })
}

/// Replaces, removes or adds a field, possibly nested, of a JSON object.
fn mutate(rng: &mut StdRng, body: &mut Value) {
    let Some(map) = body.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    match rng.random_range(0..10) {
        0 => {
            let key = &keys[rng.random_range(0..keys.len())];
            map.remove(key);
        }
        1 => {
            let key = STRINGS[rng.random_range(0..STRINGS.len())].to_owned();
            map.insert(key, garbage(rng, 0));
        }
        2 | 3 => {
            // Into a nested object when there is one.
            let nested: Vec<&String> = keys
                .iter()
                .filter(|k| map[k.as_str()].is_object())
                .collect();
            if let Some(key) = nested
                .get(rng.random_range(0..nested.len().max(1)))
                .map(|k| (*k).clone())
            {
                mutate(rng, map.get_mut(&key).expect("key"));
            }
        }
        _ => {
            let key = &keys[rng.random_range(0..keys.len())];
            map.insert(key.clone(), garbage(rng, 0));
        }
    }
}

/// Bodies that are not valid JSON, or are JSON of the wrong shape.
fn raw_bodies() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "[]",
        "{}",
        "0",
        "\"text\"",
        "{",
        "}",
        "{\"name\":",
        "{\"name\": NaN}",
        "{\"lat\": 1e999}",
        "{\"name\": \"\\ud800\"}",
        "\u{feff}{}",
        "{\"name\": \"a\"} trailing",
        "{\"name\": \"a\", \"name\": \"b\"}",
        "{\"quantity\": {\"value\": -0}}",
        "{\"months\": [1,2,3",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    out.push(vec![0xff, 0xfe, 0x00, 0x7b]);
    out.push(
        b"{\"name\": \"\xc3\x28\", \"naf_code\": \"16.10A\", \"commune_insee\": \"21231\"}"
            .to_vec(),
    );
    out.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes());
    out.push(format!("{}1{}", "{\"a\":".repeat(500), "}".repeat(500)).into_bytes());
    out.push(vec![0u8; 64]);
    out
}

struct Probe<'a> {
    app: &'a TestApp,
    failures: Vec<String>,
    count: usize,
}

impl Probe<'_> {
    async fn check(&mut self, what: String, request: reqwest::RequestBuilder) {
        let reply = self.app.send(request).await;
        self.count += 1;
        let problem = reply.content_type.starts_with("application/problem+json");
        if reply.status >= 500 {
            self.failures.push(format!(
                "{what} → {} {}",
                reply.status,
                reply.text.chars().take(300).collect::<String>()
            ));
        } else if matches!(reply.status, 400 | 404 | 413 | 415 | 422) && !problem {
            self.failures.push(format!(
                "{what} → {} without problem+json ({})",
                reply.status, reply.content_type
            ));
        }
    }

    async fn json(&mut self, method: reqwest::Method, path: &str, body: Vec<u8>) {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .collect::<String>();
        let request = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.check(format!("{method} {path} {shown}"), request)
            .await;
    }
}

/// An actor and one of its resources to aim the writing routes at.
async fn targets(app: &TestApp) -> (String, String) {
    let actor = app.create_actor(actor_body("Cible")).await;
    let resource = app.create_resource(&actor, full_resource()).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (actor, resource)
}

#[actix_web::test]
async fn no_request_body_yields_a_server_error() {
    let app = spawn_app().await;
    let (actor, resource) = targets(&app).await;
    let mut rng = StdRng::seed_from_u64(0x5EED_2026);
    let mut probe = Probe {
        app: &app,
        failures: Vec::new(),
        count: 0,
    };
    let (post, put, patch) = (
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    );
    let actor_path = format!("/api/v1/actors/{actor}");
    let resources_path = format!("/api/v1/actors/{actor}/resources");
    let resource_path = format!("/api/v1/resources/{resource}");

    // Every field of a valid document, in turn, set to each awkward string (NUL bytes included).
    for (doc, create, update) in [
        (full_actor(), "/api/v1/actors", actor_path.as_str()),
        (
            full_resource(),
            resources_path.as_str(),
            resource_path.as_str(),
        ),
    ] {
        let fields: Vec<String> = doc.as_object().expect("object").keys().cloned().collect();
        for field in &fields {
            for (i, text) in STRINGS.iter().enumerate() {
                let mut body = doc.clone();
                body[field.as_str()] = json!(text);
                let bytes = serde_json::to_vec(&body).expect("json");
                let method = [&post, &put, &patch][i % 3].clone();
                let path = if method == post { create } else { update };
                probe.json(method, path, bytes).await;
            }
        }
    }
    for text in STRINGS {
        let nested =
            json!({"contact": {"name": text, "email": format!("a{text}@b.c"), "phone": text}});
        probe
            .json(
                patch.clone(),
                &actor_path,
                serde_json::to_vec(&nested).expect("json"),
            )
            .await;
        let zone = json!({"code": format!("Z-{text}"), "name": text, "communes": [text], "departements": [text]});
        probe
            .json(
                post.clone(),
                "/api/v1/territories",
                serde_json::to_vec(&zone).expect("json"),
            )
            .await;
        let named =
            json!({"code": "Z-NAMED", "name": format!("Zone {text}"), "communes": ["21231"]});
        probe
            .json(
                post.clone(),
                "/api/v1/territories",
                serde_json::to_vec(&named).expect("json"),
            )
            .await;
        probe
            .check(
                format!("DELETE zone Z-NAMED after {text:?}"),
                app.client.delete(app.url("/api/v1/territories/Z-NAMED")),
            )
            .await;
        let csv = format!(
            "actor_ref,actor_name,naf_code,commune_insee,kind,category,label,description\n\"{t}\",\"{t}x\",16.10A,21231,offer,material,\"{t}y\",\"{t}\"\n",
            t = text.replace('"', "\"\"")
        );
        let request = app
            .client
            .post(app.url("/api/v1/import"))
            .header("content-type", "text/csv")
            .body(csv);
        probe
            .check(format!("POST /api/v1/import with {text:?}"), request)
            .await;
    }

    // Mutated bodies: valid documents with one to three fields, possibly nested, turned into garbage.
    for i in 0..240 {
        let on_actor = i % 2 == 0;
        let mut body = if on_actor {
            full_actor()
        } else {
            full_resource()
        };
        for _ in 0..rng.random_range(1..=3) {
            mutate(&mut rng, &mut body);
        }
        if rng.random_range(0..4) == 0 {
            body = garbage(&mut rng, 0);
        }
        let bytes = serde_json::to_vec(&body).expect("serialises");
        let (method, path) = match (on_actor, i % 6) {
            (true, 0) | (true, 2) => (post.clone(), "/api/v1/actors"),
            (true, 4) => (put.clone(), actor_path.as_str()),
            (true, _) => (patch.clone(), actor_path.as_str()),
            (false, 1) => (post.clone(), resources_path.as_str()),
            (false, 3) => (put.clone(), resource_path.as_str()),
            (false, _) => (patch.clone(), resource_path.as_str()),
        };
        probe.json(method, path, bytes).await;
    }
    for _ in 0..30 {
        let mut body = json!({"code": "Z-FUZZ", "name": "Fuzz", "communes": ["21231"], "departements": ["58"]});
        mutate(&mut rng, &mut body);
        probe
            .json(
                post.clone(),
                "/api/v1/territories",
                serde_json::to_vec(&body).expect("json"),
            )
            .await;
    }
    // Bodies that are not JSON, or not the expected shape, on every writing route.
    for body in raw_bodies() {
        for (method, path) in [
            (post.clone(), "/api/v1/actors"),
            (put.clone(), actor_path.as_str()),
            (patch.clone(), actor_path.as_str()),
            (post.clone(), resources_path.as_str()),
            (put.clone(), resource_path.as_str()),
            (patch.clone(), resource_path.as_str()),
            (post.clone(), "/api/v1/territories"),
        ] {
            probe.json(method, path, body.clone()).await;
        }
        let csv = app
            .client
            .post(app.url("/api/v1/import"))
            .header("content-type", "text/csv")
            .body(body.clone());
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(40)
            .collect::<String>();
        probe
            .check(format!("POST /api/v1/import {shown:?}"), csv)
            .await;
    }
    // Wrong or missing media types.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut request = app
            .client
            .post(app.url("/api/v1/actors"))
            .body(serde_json::to_vec(&actor_body("x")).expect("json"));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        probe
            .check(format!("POST /api/v1/actors as {content_type:?}"), request)
            .await;
    }

    assert!(probe.count > 1000, "{} requests", probe.count);
    assert!(
        probe.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        probe.failures.len(),
        probe.count,
        probe.failures.join("\n")
    );
    // The service is still whole.
    assert_eq!(app.get(&actor_path).await.status, 200);
    assert_eq!(app.get("/health/ready").await.status, 200);
}

#[actix_web::test]
async fn no_query_string_or_path_yields_a_server_error() {
    let app = spawn_app().await;
    let (actor, _) = targets(&app).await;
    let mut rng = StdRng::seed_from_u64(0x0D0C_2026);
    let mut probe = Probe {
        app: &app,
        failures: Vec::new(),
        count: 0,
    };
    let values = [
        "",
        "%00",
        "x%00y",
        "%FF",
        "%",
        "%25",
        "-1",
        "0",
        "99999999999999999999",
        "1e3",
        "NaN",
        "_",
        "%5C",
        "%27%20OR%20%271%27%3D%271",
        "R",
        "R99",
        "r27",
        "2A",
        "fr",
        "27-BOURGOGNE",
        "zz",
        "78%1Fy",
        "00",
        "ff",
        "3939393939393939393939393939393939393939",
        "3138343436373434303733373039353531363135",
        "00%1F00",
        "%E2%80%AE",
        "10%2001%2002*",
        "16.10",
        "%F0%9F%92%A9",
        "a%2Fb",
    ];
    let params = [
        "territory",
        "naf",
        "q",
        "limit",
        "cursor",
        "kind",
        "category",
        "ewc",
        "class",
        "actor",
    ];
    let lists = [
        "/api/v1/actors".to_owned(),
        "/api/v1/resources".to_owned(),
        format!("/api/v1/actors/{actor}/resources"),
        "/api/v1/codes/ewc".to_owned(),
        "/api/v1/codes/naf".to_owned(),
        "/api/v1/territories/21/children".to_owned(),
        "/api/v1/territories/21/actors".to_owned(),
    ];
    // Each parameter of each list with each value, then random combinations.
    for list in &lists {
        for param in params {
            for value in values {
                let path = format!("{list}?{param}={value}");
                probe
                    .check(format!("GET {path}"), app.client.get(app.url(&path)))
                    .await;
            }
        }
    }
    for _ in 0..150 {
        let list = &lists[rng.random_range(0..lists.len())];
        let query: Vec<String> = (0..rng.random_range(2..=4))
            .map(|_| {
                format!(
                    "{}={}",
                    params[rng.random_range(0..params.len())],
                    values[rng.random_range(0..values.len())]
                )
            })
            .collect();
        let path = format!("{list}?{}", query.join("&"));
        probe
            .check(format!("GET {path}"), app.client.get(app.url(&path)))
            .await;
    }
    for value in values.iter().filter(|v| !v.is_empty()) {
        for prefix in [
            "/api/v1/actors/",
            "/api/v1/resources/",
            "/api/v1/territories/",
            "/api/v1/codes/ewc/",
            "/api/v1/codes/naf/",
        ] {
            let path = format!("{prefix}{value}");
            probe
                .check(format!("GET {path}"), app.client.get(app.url(&path)))
                .await;
        }
        for path in [
            format!("/api/v1/territories/{value}/actors"),
            format!("/api/v1/territories/{value}/children"),
            format!("/api/v1/actors/{value}/resources"),
        ] {
            probe
                .check(format!("GET {path}"), app.client.get(app.url(&path)))
                .await;
        }
        for path in [
            format!("/api/v1/actors/{value}"),
            format!("/api/v1/resources/{value}"),
            format!("/api/v1/territories/{value}"),
        ] {
            probe
                .check(format!("DELETE {path}"), app.client.delete(app.url(&path)))
                .await;
        }
        let path = format!("/api/v1/actors/{value}/resources");
        let body = serde_json::to_vec(&full_resource()).expect("json");
        let request = app
            .client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(body);
        probe.check(format!("POST {path}"), request).await;
        let path = format!("/api/v1/resources/{value}");
        let request = app
            .client
            .patch(app.url(&path))
            .header("content-type", "application/json")
            .body("{}");
        probe.check(format!("PATCH {path}"), request).await;
    }

    assert!(probe.count > 2000, "{} requests", probe.count);
    assert!(
        probe.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        probe.failures.len(),
        probe.count,
        probe.failures.join("\n")
    );
    assert_eq!(
        app.get(&format!("/api/v1/actors/{actor}")).await.status,
        200
    );
}

#[actix_web::test]
async fn cors_allows_only_configured_origins() {
    let app = crate::helpers::spawn_with(|s| {
        s.server.cors_origins = vec!["https://portail.example".into()];
    })
    .await;
    let allowed = app
        .client
        .get(app.url("/api/v1/actors"))
        .bearer_auth(&app.admin_key)
        .header("origin", "https://portail.example")
        .send()
        .await
        .expect("sent");
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://portail.example")
    );
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/actors"))
        .header("origin", "https://portail.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("sent");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let refused = app
        .client
        .get(app.url("/api/v1/actors"))
        .bearer_auth(&app.admin_key)
        .header("origin", "https://ailleurs.example")
        .send()
        .await
        .expect("sent");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(refused.status().as_u16() < 500);
}

#[test]
fn a_bad_cors_origin_names_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let default = std::fs::read_to_string("config/default.toml").expect("default.toml");
    let broken = default.replace("cors_origins = []", "cors_origins = [\"not a url\"]");
    std::fs::write(dir.path().join("default.toml"), broken).expect("write");
    let err = symbiose::config::Settings::load_for(dir.path(), None).expect_err("refused");
    assert!(err.to_string().contains("server.cors_origins"), "{err}");
}

#[actix_web::test]
async fn without_cors_origins_no_cross_origin_headers() {
    let app = spawn_app().await;
    let reply = app
        .client
        .get(app.url("/api/v1/actors"))
        .bearer_auth(&app.admin_key)
        .header("origin", "https://ailleurs.example")
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 200);
    assert!(reply.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn list_settings_take_comma_separated_environment_values() {
    let vars = |pairs: &[(&str, &str)]| -> Option<std::collections::HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    let settings = Settings::load_with_vars(
        Path::new("config"),
        None,
        vars(&[
            (
                "SYMBIOSE__WEBHOOKS__ALLOWED_HOSTS",
                "hooks.example.org,10.0.0.5",
            ),
            (
                "SYMBIOSE__SERVER__CORS_ORIGINS",
                "https://portail.example,https://carto.example",
            ),
            ("SYMBIOSE__SERVER__PORT", "9090"),
        ]),
    )
    .expect("settings load");
    assert_eq!(
        settings.webhooks.allowed_hosts,
        ["hooks.example.org", "10.0.0.5"]
    );
    assert_eq!(
        settings.server.cors_origins,
        ["https://portail.example", "https://carto.example"]
    );
    assert_eq!(settings.server.port, 9090);
    let one = Settings::load_with_vars(
        Path::new("config"),
        None,
        vars(&[("SYMBIOSE__WEBHOOKS__ALLOWED_HOSTS", "hooks.example.org")]),
    )
    .expect("settings load");
    assert_eq!(one.webhooks.allowed_hosts, ["hooks.example.org"]);
    let bad = Settings::load_with_vars(
        Path::new("config"),
        None,
        vars(&[(
            "SYMBIOSE__WEBHOOKS__ALLOWED_HOSTS",
            "ok.example,http://bad/",
        )]),
    );
    assert!(
        bad.is_err_and(|e| e.to_string().contains("webhooks.allowed_hosts")),
        "a bad host is named"
    );
}
