//! Security tests: openapi (see ../security.rs). The document at `/api/v1/openapi.json` must describe
//! the service exactly (issue 10 item 13, issue 12): clients and schema-driven fuzzers are generated
//! from it. `scripts/fuzz_openapi.sh` checks it against the running service; these tests keep its
//! structure from regressing.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, actor_body, spawn_app};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let reply = app.get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// (path, method, operation) of every operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) {
                found.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    assert!(found.len() > 50, "only {} operations", found.len());
    found
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                out.push(target);
            }
            object.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[actix_web::test]
async fn every_reference_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    let dangling: BTreeSet<&str> = targets
        .into_iter()
        .filter(|t| {
            t.strip_prefix('#')
                .is_none_or(|pointer| doc.pointer(pointer).is_none())
        })
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:?}");
}

#[actix_web::test]
async fn parameters_are_where_the_path_says() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut wrong = Vec::new();
    for (path, method, op) in operations(&doc) {
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let declared: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        for p in params.iter().filter(|p| p["in"] == "path") {
            if p["required"] != true {
                wrong.push(format!(
                    "{method} {path}: path parameter {} not required",
                    p["name"]
                ));
            }
        }
        for name in declared.difference(&in_template) {
            wrong.push(format!(
                "{method} {path}: `{name}` declared in path, not in the template"
            ));
        }
        for name in in_template.difference(&declared) {
            wrong.push(format!("{method} {path}: template's `{name}` not declared"));
        }
        for p in params.iter().filter(|p| p["in"] == "query") {
            if p["required"] == true {
                wrong.push(format!(
                    "{method} {path}: query parameter {} required",
                    p["name"]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[actix_web::test]
async fn errors_are_problem_json_and_the_shared_ones_are_documented() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut wrong = Vec::new();
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        for (status, response) in &responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let types: Vec<&String> = response["content"]
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            if types != ["application/problem+json"] {
                wrong.push(format!("{method} {path} {status}: content {types:?}"));
            }
        }
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let mut expected = vec!["400", "401", "403", "422", "429", "500", "503"];
        if op.get("requestBody").is_some() {
            expected.extend(["413", "415"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        for status in expected {
            if !responses.contains_key(status) {
                wrong.push(format!("{method} {path}: {status} undocumented"));
            }
        }
        if op["security"] != json!([{"bearer": []}]) {
            wrong.push(format!("{method} {path}: security {}", op["security"]));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["paths"]["/health/live"]["get"]["security"], json!([]));
}

#[actix_web::test]
async fn schemas_spell_what_the_wire_carries() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["SynergyKind"]["enum"],
        json!(["substitution", "pooling"])
    );
    // Wire spellings, not Rust variant names.
    let flows = schemas["AfmeFlowType"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(flows.contains(&json!("DPO_LANDFILL")), "{flows:?}");
    let families = schemas["AfmeFamily"]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        families.contains(&json!("agricultural_food")),
        "{families:?}"
    );
    // The anonymous view partners and keyless readers get (auth::anonymise) is allowed too.
    let synergy = &schemas["Synergy"];
    assert_eq!(synergy["properties"]["distance_band"]["type"], "string");
    let required = synergy["required"].as_array().cloned().unwrap_or_default();
    assert!(!required.contains(&json!("distance_km")), "{required:?}");
    let actor = &schemas["ActorOut"]["properties"];
    assert_eq!(actor["anonymous"]["type"], "boolean");
    assert_eq!(actor["siret"]["type"], json!(["string", "null"]));
}

/// Names of the properties the document declares `format: date-time`.
fn date_time_fields(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                for (name, property) in properties {
                    if property["format"] == "date-time" {
                        out.insert(name.clone());
                    }
                }
            }
            object.values().for_each(|v| date_time_fields(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| date_time_fields(v, out)),
        _ => {}
    }
}

/// The values of `fields` in a response, with their field name.
fn values_of(value: &Value, fields: &BTreeSet<String>, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            for (name, child) in object {
                match child {
                    Value::String(text) if fields.contains(name) => {
                        out.push((name.clone(), text.clone()));
                    }
                    _ => values_of(child, fields, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| values_of(v, fields, out)),
        _ => {}
    }
}

#[actix_web::test]
async fn date_times_are_rfc3339_with_a_zone() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut fields = BTreeSet::new();
    date_time_fields(&doc["components"], &mut fields);
    for expected in ["created_at", "updated_at", "at"] {
        assert!(
            fields.contains(expected),
            "{expected} not date-time in {fields:?}"
        );
    }
    let actor = app.create_actor(actor_body("Scierie Horodatée")).await;
    let resource = app
        .create_resource(
            &actor,
            json!({"kind": "offer", "category": "material", "label": "Sciures", "ewc_code": "030105"}),
        )
        .await;
    let mut samples = Vec::new();
    for path in [
        format!("/api/v1/actors/{actor}"),
        format!(
            "/api/v1/resources/{}",
            resource["id"].as_str().unwrap_or_default()
        ),
        "/api/v1/keys".to_owned(),
        "/api/v1/audit".to_owned(),
        "/api/v1/territories/21/kpis".to_owned(),
    ] {
        let reply = app.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        values_of(&reply.body, &fields, &mut samples);
    }
    assert!(samples.len() >= 6, "too few timestamps: {samples:?}");
    for (field, text) in samples {
        assert!(
            chrono::DateTime::parse_from_rfc3339(&text).is_ok(),
            "{field} = {text}: not RFC 3339 with a zone"
        );
    }
}

#[actix_web::test]
async fn a_documented_path_with_another_method_is_405() {
    let app = spawn_app().await;
    let reply = app
        .send(
            app.client
                .request(reqwest::Method::TRACE, app.url("/api/v1/codes/ewc")),
        )
        .await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{}",
        reply.content_type
    );
    let reply = app.delete("/api/v1/territories/21/chains").await;
    assert_eq!(reply.status, 405, "{}", reply.text);
    let allow = app
        .client
        .put(app.url("/api/v1/synergies/detect"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("request sent");
    assert_eq!(allow.status(), 405);
    // The concrete path, not `/synergies/{id}` (GET, PATCH), as OpenAPI matches paths.
    assert_eq!(
        allow.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    // Unknown paths stay 404.
    assert_eq!(app.delete("/api/v1/nothing/here").await.status, 404);
}

/// A value for a parameter the service should accept, by name and schema (strings by what they
/// mean; enumerations: their first value); `None` for a cursor, which only the API can make.
fn valid_sample(doc: &Value, name: &str, schema: &Value) -> Option<String> {
    if let Some(values) = enum_values(doc, schema) {
        return values.first().cloned();
    }
    let text = match (name, schema["type"].as_str()) {
        ("cursor", _) => return None,
        (_, Some("integer")) => match name {
            "year" => "2015",
            "max_latent" => "5",
            _ => "3",
        },
        (_, Some("number")) => "0.5",
        (_, Some("boolean")) => "true",
        ("territory", _) => "21",
        ("naf", _) => "16",
        ("q", _) => "bois",
        ("ewc", _) => "03",
        ("class", _) => "material",
        ("actor" | "key_id", _) => "6f1c2a4e-93b7-4d20-8c41-2e7a9d3f0b15",
        ("format", _) => "json",
        ("state", _) => "pending",
        _ => "x",
    };
    Some(text.to_owned())
}

/// The values of an enumerated schema, inline or behind a `$ref`.
fn enum_values(doc: &Value, schema: &Value) -> Option<Vec<String>> {
    let schema = match schema["$ref"].as_str() {
        Some(target) => doc.pointer(target.strip_prefix('#')?)?,
        None => schema,
    };
    let values: Vec<String> = schema["enum"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (!values.is_empty()).then_some(values)
}

/// A value the handler's extractor must refuse, naming the parameter, when it reads the parameter
/// under that name with that type: typed parameters and cursors only (any text is a string).
fn invalid_sample(doc: &Value, name: &str, schema: &Value) -> Option<&'static str> {
    if name == "cursor" {
        return Some("forged");
    }
    if enum_values(doc, schema).is_some() {
        return Some("zz-no-such-value");
    }
    match schema["type"].as_str() {
        Some("integer" | "number") => Some("not-a-number"),
        Some("boolean") => Some("perhaps"),
        _ => None,
    }
}

/// Whether a problem document is about `name` (a field error, or a serde message naming it).
fn names_parameter(reply: &crate::helpers::Reply, name: &str) -> bool {
    reply.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| {
            e["field"] == name
                || e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("`{name}`")))
        })
}

/// The document against the handlers (issue 12): every documented path reaches a route (its path
/// parameters are the route's), every declared query parameter is accepted by the operation's
/// extractors, and each typed one is read under its name (a value of the wrong type is a 422 naming
/// it). The requests use an admin key, territory `21` and unknown ids: extractors run before the
/// handler looks anything up, so a 404 is an accepted request.
#[actix_web::test]
async fn declared_parameters_are_the_handlers_parameters() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    // An actor offering sawdust and one needing wood next to it: a synergy, so that the handlers
    // that look their entity up before reading a cursor get that far.
    let sawmill = app.create_actor(actor_body("Scierie")).await;
    let offer = app
        .create_resource(
            &sawmill,
            json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05",
                   "quantity": {"value": 100, "unit": "t", "period": "year"}}),
        )
        .await;
    let boiler = app.create_actor(actor_body("Chaufferie")).await;
    app.create_resource(
        &boiler,
        json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
               "label": "Bois", "accepted_ewc": ["03 01 05"],
               "quantity": {"value": 100, "unit": "t", "period": "year"}}),
    )
    .await;
    let synergies = app.get("/api/v1/synergies?kind=substitution").await;
    let synergy = synergies.body["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a synergy: {}", synergies.text))
        .to_owned();
    let offer = offer["id"].as_str().expect("resource id").to_owned();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, method, op) in operations(&doc) {
        if method != "get" || !path.starts_with("/api/") {
            continue;
        }
        let id = if path.starts_with("/api/v1/actors/") {
            sawmill.as_str()
        } else if path.starts_with("/api/v1/resources/") {
            offer.as_str()
        } else if path.starts_with("/api/v1/synergies/") {
            synergy.as_str()
        } else {
            "00000000-0000-4000-8000-000000000000"
        };
        let concrete: String = path
            .split('/')
            .map(|segment| match segment {
                "{code}" => "21",
                s if s.starts_with('{') => id,
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let plain = app.get(&concrete).await;
        if plain.status == 405 || plain.text.contains("route not found") {
            wrong.push(format!(
                "GET {path}: no route ({}) for {concrete}",
                plain.status
            ));
            continue;
        }
        if plain.status == 400 || (plain.status == 422 && !plain.body["errors"].is_array()) {
            wrong.push(format!(
                "GET {path}: {} without parameters: {}",
                plain.status, plain.text
            ));
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] != "query" {
                continue;
            }
            let name = p["name"].as_str().unwrap_or_default();
            let schema = &p["schema"];
            if let Some(value) = valid_sample(&doc, name, schema) {
                let url = format!("{concrete}?{name}={}", urlencoding(&value));
                let reply = app.get(&url).await;
                checked += 1;
                if reply.status == 400 || (reply.status == 422 && names_parameter(&reply, name)) {
                    wrong.push(format!(
                        "GET {path}: `{name}={value}` refused: {}",
                        reply.text
                    ));
                }
            }
            if let Some(bad) = invalid_sample(&doc, name, schema) {
                let reply = app.get(&format!("{concrete}?{name}={bad}")).await;
                checked += 1;
                if reply.status != 422 || !names_parameter(&reply, name) {
                    wrong.push(format!(
                        "GET {path}: `{name}={bad}` is not read as `{name}` ({}): {}",
                        reply.status, reply.text
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} parameter checks");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
