//! The OpenAPI 3 document (utoipa) and the interactive docs (Swagger UI, assets embedded in the
//! binary, so `/docs` works offline).
//!
//! The handlers' annotations describe what each operation does; [`document`] then adds what every
//! operation shares and no annotation should repeat: the problem+json errors the gate, the rate
//! limit and the extractors answer, the security requirement each route's right implies, and the
//! anonymous view partners and keyless readers get. A schema-driven fuzzer
//! (`scripts/fuzz_openapi.sh`) checks the result against the running service.

use actix_web::http::Method;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::{actors, codes, health, import, resources, synergies, territories};
use crate::auth::middleware::{Right, required_right};

/// Where the document is served (outside the `/api/v1` gate: reading it needs no key).
pub const DOCUMENT_URL: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "symbiose",
        description = "Synergy matching for industrial and territorial ecology (EIT): actors, their offers and needs, ranked synergies, and the territory's material flow accounts (AFME).",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(
        health::live, health::ready,
        codes::search_ewc, codes::get_ewc, codes::search_naf, codes::get_naf, codes::list_classes,
        territories::list_zones, territories::create_zone, territories::get_territory, territories::children,
        territories::territory_actors, territories::delete_zone,
        actors::list_actors, actors::create_actor, actors::get_actor, actors::replace_actor, actors::patch_actor,
        actors::delete_actor,
        resources::list_resources, resources::list_for_actor, resources::create_resource, resources::get_resource,
        resources::replace_resource, resources::patch_resource, resources::delete_resource,
        import::import_csv,
        synergies::lists::list_synergies, synergies::lists::detect_now, synergies::lists::get_synergy,
        synergies::lists::actor_synergies, synergies::matches::resource_matches,
        synergies::matches::match_adhoc, synergies::graph::territory_graph,
        synergies::graph::territory_allocation, synergies::graph::territory_chains,
        synergies::graph::territory_hubs,
    ),
    // Schemas only named by query parameters (`IntoParams` does not register them).
    components(schemas(synergies::SynergyKind, super::error::Problem)),
    tags(
        (name = "actors", description = "Companies and sites"),
        (name = "resources", description = "Offers and needs of actors"),
        (name = "territories", description = "Administrative hierarchy and custom zones"),
        (name = "codes", description = "List of Waste and NAF rév.2"),
        (name = "import", description = "Bulk CSV import"),
        (name = "synergies", description = "Ranked, explained substitution and pooling synergies"),
        (name = "graph", description = "The territory's synergy graph: exports, allocation, chains, hubs"),
        (name = "health", description = "Probes"),
        (name = "keys", description = "API keys and the audit log of writes (admin)"),
    )
)]
pub struct ApiDoc;

/// The document the service serves. `public_read` is `auth.public_read`: with it, reads may go
/// without a key, and their security requirement says so.
pub fn document(public_read: bool) -> Value {
    let mut doc = ApiDoc::openapi();
    // Handlers declared with actix's route macros are mounted in the `/api/v1` scope, which utoipa
    // cannot see: give their paths the prefix they are served under.
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| {
            if path.starts_with("/api/") || path.starts_with("/health") {
                (path, item)
            } else {
                (format!("/api/v1{path}"), item)
            }
        })
        .collect();
    doc.merge(super::afme::AfmeApiDoc::openapi());
    doc.merge(super::lifecycle::LifecycleApiDoc::openapi());
    doc.merge(super::keys::KeysDoc::openapi());
    doc.merge(super::webhooks::WebhooksApiDoc::openapi());
    // The document is built from the annotations alone (no request data): it always serialises.
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serialises");
    secure(&mut doc, public_read);
    describe_errors(&mut doc);
    give_examples(&mut doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.values_mut().for_each(allow_anonymous_view);
    }
    doc
}

/// The keys of a path item that are operations (it may also hold `parameters`, `summary`…).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations of a document: (path, method, operation).
fn operations(doc: &mut Value) -> impl Iterator<Item = (&String, Method, &mut Value)> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .filter_map(|(path, item)| Some((path, item.as_object_mut()?)))
        .flat_map(|(path, item)| item.iter_mut().map(move |(method, op)| (path, method, op)))
        .filter(|(_, method, _)| METHODS.contains(&method.as_str()))
        .filter_map(|(path, method, op)| {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).ok()?;
            Some((path, method, op))
        })
}

/// Bearer keys; each operation states whether it needs one, from the right the gate requires for its
/// method and path (`auth::middleware::required_right`), so document and gate cannot disagree.
fn secure(doc: &mut Value, public_read: bool) {
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components.and_then(Value::as_object_mut) {
        components.insert(
            "securitySchemes".into(),
            json!({"bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (`sym_` + 64 hex digits) from `symbiose keys create` or `POST /api/v1/keys`."
            }}),
        );
    }
    for (path, method, op) in operations(doc) {
        let security = if !path.starts_with("/api/") {
            // Probes are outside the gate.
            json!([])
        } else {
            match required_right(&method, path) {
                // An empty requirement: the key is optional.
                Right::Read if public_read => json!([{}, {"bearer": []}]),
                _ => json!([{"bearer": []}]),
            }
        };
        op["security"] = security;
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// Every error is `application/problem+json` (`ApiError`, the gate, the rate limit, the fallback
/// 404): annotations name the errors particular to an operation, the shared ones are added here.
fn describe_errors(doc: &mut Value) {
    for (path, _, op) in operations(doc) {
        let has_body = op.get("requestBody").is_some();
        let names_things = path.contains('{')
            || op["parameters"].as_array().is_some_and(|params| {
                params
                    .iter()
                    .any(|p| matches!(p["name"].as_str(), Some("territory" | "actor")))
            });
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
                && is_error
                && let Some(json) = content.remove("application/json")
            {
                content.insert("application/problem+json".into(), json);
            }
        }
        if !path.starts_with("/api/") {
            // Probes: 200 or 503, nothing else.
            continue;
        }
        let mut shared = vec![
            ("400", "Malformed request (JSON syntax, unreadable body)"),
            ("401", "No API key, or an unknown or revoked one"),
            ("403", "The key's role or territories do not allow this"),
            ("422", "Invalid parameters or fields, each named"),
            ("429", "Rate limit of the key reached (see `Retry-After`)"),
            ("500", "Internal error"),
            ("503", "Database unavailable or busy; retry"),
        ];
        if names_things {
            shared.push(("404", "No such entity or territory"));
        }
        if has_body {
            shared.push(("413", "Body larger than the server's limit"));
            shared.push(("415", "Body not sent with the documented media type"));
        }
        for (status, description) in shared {
            responses
                .entry(status)
                .or_insert_with(|| problem(description));
        }
        if let Some(unauthorized) = responses.get_mut("401") {
            unauthorized["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
        }
        if let Some(too_many) = responses.get_mut("429") {
            too_many["headers"] = json!({"Retry-After": {
                "description": "Seconds before the key's bucket allows a request again",
                "schema": {"type": "integer"}
            }});
        }
    }
}

/// Examples of path parameters that name reference data (and the demo's AFME account), so that
/// "Try it out" in `/docs` and schema-driven fuzzers start from entities that exist: (path prefix,
/// parameter, example); the first matching prefix wins. Ids are random UUIDs: no example.
const PATH_EXAMPLES: [(&str, &str, &str); 5] = [
    ("/api/v1/codes/ewc/", "code", "100102"),
    ("/api/v1/codes/naf/", "code", "16.10A"),
    ("/api/v1/territories/{code}/afme", "code", "27-BOURGOGNE"),
    ("/api/v1/territories/", "code", "21"),
    ("/api/v1/territories/", "year", "2010"),
];

fn give_examples(doc: &mut Value) {
    for (path, _, op) in operations(doc) {
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for param in params.iter_mut().filter(|p| p["in"] == "path") {
            let Some(name) = param["name"].as_str().map(str::to_owned) else {
                continue;
            };
            let example = PATH_EXAMPLES
                .iter()
                .find(|(prefix, n, _)| path.starts_with(prefix) && *n == name)
                .map(|(_, _, example)| match example.parse::<i64>() {
                    Ok(number) if param["schema"]["type"] == "integer" => json!(number),
                    _ => json!(example),
                });
            if let Some(example) = example {
                param["example"] = example;
            }
        }
    }
}

/// Fields emptied in an actor's anonymous view: the anonymiser's own list, so the two cannot drift.
use crate::auth::anonymise::PERSONAL_FIELDS;

/// Partners and keyless readers get actors that did not consent anonymised (`auth::anonymise`,
/// which rewrites any JSON document by field names): an object with `id` and `name` gets
/// `anonymous: true` and nulls in its personal fields; an object next to a hidden party gets
/// `distance_band` instead of `distance_km` (and `distance_to_centroid_band` instead of
/// `distance_to_centroid_km`). Every object schema allows both views, by the same field names.
fn allow_anonymous_view(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        let mut optional = Vec::new();
        for (exact, band) in [
            ("distance_km", "distance_band"),
            ("distance_to_centroid_km", "distance_to_centroid_band"),
        ] {
            if properties.contains_key(exact) {
                properties.insert(
                    band.into(),
                    json!({"type": "string", "description": "Anonymous view: the distance's band (`10–20 km`, `> 200 km`) instead of the exact distance"}),
                );
                optional.push(exact);
            }
        }
        if properties.contains_key("id") && properties.contains_key("name") {
            properties.insert(
                "anonymous".into(),
                json!({"type": "boolean", "description": "Anonymous view: `true` for an actor that did not consent to be shown (name, identifiers and contact hidden, position at its commune's centroid)"}),
            );
            for field in PERSONAL_FIELDS {
                if let Some(property) = properties.get_mut(field) {
                    nullable(property);
                }
            }
        }
        if let Some(required) = object.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|name| !optional.iter().any(|o| name == o));
        }
    }
    // Nested and combined schemas (allOf parts, inline objects, items).
    for child in object.values_mut() {
        match child {
            Value::Object(_) => allow_anonymous_view(child),
            Value::Array(items) => items.iter_mut().for_each(allow_anonymous_view),
            _ => {}
        }
    }
}

/// Lets a property be `null` as well.
fn nullable(property: &mut Value) {
    match property.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = kind.clone();
            property["type"] = json!([kind, "null"]);
        }
        Some(Value::Array(kinds)) => {
            if !kinds.iter().any(|k| k == "null") {
                kinds.push(json!("null"));
            }
        }
        _ => {
            if !is_nullable_one_of(property) {
                let original = std::mem::take(property);
                *property = json!({"oneOf": [original, {"type": "null"}]});
            }
        }
    }
}

fn is_nullable_one_of(property: &Value) -> bool {
    property["oneOf"]
        .as_array()
        .is_some_and(|parts| parts.iter().any(|p| p["type"] == "null"))
}

/// The methods `document` lists for a request path (upper case; empty when no path template
/// matches), for the 405 of a known path asked with another method. As in OpenAPI, a concrete path
/// wins over a templated one (`/synergies/detect` over `/synergies/{id}`): the templates with the
/// most literal segments decide.
pub fn allowed_methods(document: &Value, path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').collect();
    // The number of literal segments of a matching template.
    let literals = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        let mut literal = 0;
        for (part, segment) in parts.iter().zip(&segments) {
            if part == segment {
                literal += 1;
            } else if !(part.starts_with('{') && part.ends_with('}') && !segment.is_empty()) {
                return None;
            }
        }
        (parts.len() == segments.len()).then_some(literal)
    };
    let matching: Vec<(usize, &Value)> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(template, item)| Some((literals(template)?, item)))
        .collect();
    let best = matching.iter().map(|(n, _)| *n).max();
    let mut allowed: Vec<String> = matching
        .iter()
        .filter(|(n, _)| Some(*n) == best)
        .flat_map(|(_, item)| item.as_object().into_iter().flat_map(|ops| ops.keys()))
        .filter(|method| METHODS.contains(&method.as_str()))
        .map(|method| method.to_uppercase())
        .collect();
    allowed.sort();
    allowed.dedup();
    allowed
}

/// Interactive API documentation at `/docs` (Swagger UI; its assets are vendored into the binary,
/// so it works offline), reading the document at [`DOCUMENT_URL`].
pub fn docs(document: Value) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").external_urls_from_iter_unchecked([(DOCUMENT_URL, document)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_views_are_allowed_by_field_name() {
        let mut schema = json!({
            "type": "object",
            "required": ["id", "name", "siret", "distance_km"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "siret": {"type": "string"},
                "contact": {"$ref": "#/components/schemas/Contact"},
                "distance_km": {"type": "number"}
            }
        });
        allow_anonymous_view(&mut schema);
        assert_eq!(schema["required"], json!(["id", "name", "siret"]));
        assert_eq!(
            schema["properties"]["siret"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            schema["properties"]["contact"]["oneOf"][1],
            json!({"type": "null"})
        );
        assert_eq!(schema["properties"]["anonymous"]["type"], "boolean");
        assert_eq!(schema["properties"]["distance_band"]["type"], "string");
    }

    #[test]
    fn keyless_reads_are_optional_only_with_public_read() {
        let open = document(true);
        let closed = document(false);
        let security =
            |doc: &Value, path: &str, method: &str| doc["paths"][path][method]["security"].clone();
        assert_eq!(
            security(&open, "/api/v1/actors", "get"),
            json!([{}, {"bearer": []}])
        );
        assert_eq!(
            security(&open, "/api/v1/actors", "post"),
            json!([{"bearer": []}])
        );
        assert_eq!(
            security(&closed, "/api/v1/actors", "get"),
            json!([{"bearer": []}])
        );
        assert_eq!(security(&closed, "/health/live", "get"), json!([]));
    }
}
