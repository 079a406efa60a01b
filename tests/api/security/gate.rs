//! The gate decides on the route actix runs, not on how the path is spelled: a percent-encoded
//! segment (`/api/v1/%6Beys`) reaches the same handler, so it must meet the same right check.

use reqwest::Method;
use serde_json::{Value, json};
use symbiose::auth::Role;

use crate::helpers::*;

/// `%XX` of every byte of `text` (upper-case hex, as most clients write it).
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// `%xx` of the first byte only (lower-case hex): the smallest disguise.
fn encode_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_ascii() => format!("%{:02x}{}", first as u32, chars.as_str()),
        _ => text.to_owned(),
    }
}

/// The same path with one segment encoded each way, for every segment.
fn disguises(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            continue;
        }
        for encoded in [encode_first(segment), encode_all(segment)] {
            let mut parts: Vec<String> = segments.iter().map(|s| s.to_string()).collect();
            parts[i] = encoded;
            out.push(parts.join("/"));
        }
    }
    out
}

/// A concrete path for an OpenAPI template: territory codes get `21` (inside the scoped key's
/// territory, so allowed answers are compared too), every other parameter an unknown id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) if name.contains("code") || name.contains("territory") => "21".into(),
                Some(_) => "00000000-0000-4000-8000-000000000000".to_owned(),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_web::test]
async fn every_route_answers_an_encoded_path_as_its_plain_spelling_for_every_role() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let document = app.get("/api/v1/openapi.json").await;
    assert_eq!(document.status, 200, "{}", document.text);
    let paths = document.body["paths"]
        .as_object()
        .expect("the document lists paths")
        .clone();
    let partner = app.key("portal", Role::Partner, &[]);
    let scoped = app.key("animatrice 21", Role::Facilitator, &["21"]);
    let roles: [(&str, Option<&str>); 3] = [
        ("partner", Some(&partner)),
        ("scoped facilitator", Some(&scoped)),
        ("no key", None),
    ];
    let mut checked = 0;
    for (template, operations) in &paths {
        let Some(operations) = operations.as_object() else {
            continue;
        };
        let path = concrete(template);
        for method in operations.keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
            for (role, key) in roles {
                let plain = app.call(key, method.clone(), &path, body.as_ref()).await;
                for disguised in disguises(&path) {
                    let reply = app
                        .call(key, method.clone(), &disguised, body.as_ref())
                        .await;
                    assert_eq!(
                        reply.status, plain.status,
                        "{role}: {method} {disguised} answered {} but {path} answered {}: {}",
                        reply.status, plain.status, reply.text
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} disguised requests were sent");
}

#[actix_web::test]
async fn encoded_key_and_audit_routes_stay_admin_only() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let partner = app.key("portal", Role::Partner, &[]);
    let facilitator = app.key("animatrice", Role::Facilitator, &[]);
    let victim = app
        .post(
            "/api/v1/keys",
            &json!({"name": "victim", "role": "partner"}),
        )
        .await;
    assert_eq!(victim.status, 201, "{}", victim.text);
    let victim_id = victim.body["id"].as_str().expect("key id").to_owned();
    let victim_secret = victim.body["key"].as_str().expect("key secret").to_owned();

    let new_admin = json!({"name": "x", "role": "admin"});
    for path in [
        "/api/v1/%6Beys",
        "/api/v1/%6beys",
        "/api/v1/k%65ys",
        "/api/v%31/keys",
        "/%61pi/v1/keys",
        "/api/v1/%6B%65%79%73",
    ] {
        let reply = app
            .call(Some(&facilitator), Method::POST, path, Some(&new_admin))
            .await;
        assert_eq!(reply.status, 403, "facilitator POST {path}: {}", reply.text);
        assert!(
            reply.content_type.starts_with("application/problem+json"),
            "{path}: {}",
            reply.content_type
        );
        let reply = app.call(Some(&partner), Method::GET, path, None).await;
        assert_eq!(reply.status, 403, "partner GET {path}: {}", reply.text);
        let reply = app.call(None, Method::GET, path, None).await;
        assert_eq!(reply.status, 401, "keyless GET {path}: {}", reply.text);
        let revoke = format!("{path}/{victim_id}");
        let reply = app
            .call(Some(&facilitator), Method::DELETE, &revoke, None)
            .await;
        assert_eq!(
            reply.status, 403,
            "facilitator DELETE {revoke}: {}",
            reply.text
        );
    }
    for path in ["/api/v1/%61udit", "/api/v1/audi%74", "/%61pi/v%31/audit"] {
        for key in [Some(partner.as_str()), Some(facilitator.as_str())] {
            let reply = app.call(key, Method::GET, path, None).await;
            assert_eq!(reply.status, 403, "GET {path}: {}", reply.text);
        }
        let reply = app.call(None, Method::GET, path, None).await;
        assert_eq!(reply.status, 401, "keyless GET {path}: {}", reply.text);
    }

    // Nothing was created or revoked: only the admin's own key and the victim exist, and the
    // victim's key still opens the API.
    let keys = app.get("/api/v1/keys").await;
    assert_eq!(keys.status, 200);
    let names: Vec<&str> = keys
        .body
        .as_array()
        .expect("key list")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"x"),
        "a key was created through a disguised path: {names:?}"
    );
    let still = app
        .call(Some(&victim_secret), Method::GET, "/api/v1/actors", None)
        .await;
    assert_eq!(
        still.status, 200,
        "the victim key was revoked: {}",
        still.text
    );
    // The admin still reaches the route under any spelling (the route exists; only the right is checked).
    let reply = app
        .call(Some(&app.admin_key), Method::GET, "/api/v1/%6Beys", None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let listed: Value = reply.body;
    assert!(listed.as_array().is_some_and(|a| a.len() >= 3));
}
