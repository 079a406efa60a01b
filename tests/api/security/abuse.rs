//! Security tests: abuse (see ../security.rs). A revoked partner that keeps receiving webhooks,
//! floods that dodge the rate limits, a bulk import that partner portals never hear of, a bad CSV
//! that exhausts memory, webhook URLs that reach internal addresses through IPv6 forms.
//!
//! Waits poll until the expected state, up to a generous deadline; the two checks that something
//! does *not* happen watch for a fixed number of worker rounds.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use reqwest::Method;
use serde_json::{Value, json};
use symbiose::auth::Role;

use crate::helpers::{TestApp, actor_body, assert_field_error, spawn_app, spawn_with};

const DEADLINE: Duration = Duration::from_secs(30);
/// Worker rounds watched when checking that nothing is delivered (`poll_interval_ms` is 50 in tests).
const QUIET: Duration = Duration::from_millis(1_500);
/// Long enough for an attempt already on the wire (to a receiver answering at once) to finish.
const SETTLE: Duration = Duration::from_millis(300);

/// A webhook receiver on 127.0.0.1 that answers `status` and keeps every body it got.
#[derive(Clone)]
struct Receiver {
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<(u16, Value)>>>,
}

impl Receiver {
    fn start() -> (Receiver, String) {
        let receiver = Receiver {
            status: Arc::new(AtomicU16::new(200)),
            got: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let me = receiver.clone();
        let server = actix_web::HttpServer::new(move || {
            let me = me.clone();
            actix_web::App::new().default_service(web::to(move |body: web::Bytes| {
                let me = me.clone();
                async move {
                    let status = me.status.load(Ordering::SeqCst);
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    me.got.lock().expect("lock").push((status, body));
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("status"),
                    )
                    .finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .expect("receiver listens")
        .run();
        actix_web::rt::spawn(server);
        (receiver, format!("http://127.0.0.1:{port}/hook"))
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The bodies answered 2xx.
    fn acked(&self) -> Vec<Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|(s, _)| (200..300).contains(s))
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn attempts(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

/// Polls `check` until it returns `Some`, up to the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe(app: &TestApp, key: &str, url: &str) -> String {
    let reply = app
        .call(
            Some(key),
            Method::POST,
            "/api/v1/webhooks",
            Some(&json!({"url": url, "events": ["resource.created"]})),
        )
        .await;
    assert_eq!(reply.status, 201, "subscribe: {}", reply.text);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// The id of the key named `name`.
async fn key_id(app: &TestApp, name: &str) -> String {
    let keys = app.get("/api/v1/keys").await;
    keys.body
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["name"] == name)
        .and_then(|k| k["id"].as_str())
        .expect("the key is listed")
        .to_owned()
}

fn sawdust(label: &str) -> Value {
    json!({"kind": "offer", "category": "material", "label": label, "ewc_code": "03 01 05",
           "quantity": {"value": 100.0, "unit": "t", "period": "year"}})
}

fn label_of(body: &Value) -> String {
    body["data"]["resource"]["label"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

// -------------------------------------------------------------------------------------------------
// 6. a revoked key's subscriptions

#[actix_web::test]
async fn a_revoked_keys_subscriptions_are_paused_and_get_nothing_more() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start();
    let partner = app.key("portal", Role::Partner, &[]);
    let id = subscribe(&app, &partner, &url).await;
    let actor = app.create_actor(actor_body("Scierie du Val")).await;
    app.create_resource(&actor, sawdust("before")).await;
    eventually("the first delivery", || async {
        (receiver.acked().len() == 1).then_some(())
    })
    .await;

    // An event fanned out to the subscription and failing when the key is revoked…
    receiver.answer(503);
    app.create_resource(&actor, sawdust("pending")).await;
    eventually("a failed attempt", || async {
        (receiver.attempts() >= 2).then_some(())
    })
    .await;
    let revoked = app
        .delete(&format!("/api/v1/keys/{}", key_id(&app, "portal").await))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let shown = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(shown.body["status"], "paused", "{}", shown.text);
    assert!(
        shown.body["paused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("revoked")),
        "{}",
        shown.text
    );

    // …is never delivered, nor is anything that happens afterwards.
    actix_web::rt::time::sleep(SETTLE).await;
    receiver.answer(200);
    app.create_resource(&actor, sawdust("after")).await;
    actix_web::rt::time::sleep(QUIET).await;
    let labels: Vec<String> = receiver.acked().iter().map(label_of).collect();
    assert_eq!(labels, ["before"], "delivered after the revocation");

    // The subscription cannot be resumed while its key is revoked.
    let resumed = app
        .post(&format!("/api/v1/webhooks/{id}/resume"), &json!({}))
        .await;
    assert_eq!(resumed.status, 409, "{}", resumed.text);
    assert!(resumed.content_type.starts_with("application/problem+json"));
    let shown = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(shown.body["status"], "paused");
}

#[actix_web::test]
async fn the_worker_checks_the_key_right_before_each_delivery() {
    use diesel::prelude::*;
    use symbiose::db::schema::api_keys;

    let app = spawn_app().await;
    let (receiver, url) = Receiver::start();
    let partner = app.key("portal", Role::Partner, &[]);
    let id = subscribe(&app, &partner, &url).await;
    let actor = app.create_actor(actor_body("Scierie du Val")).await;
    receiver.answer(503);
    app.create_resource(&actor, sawdust("fanned out")).await;
    eventually("a failed attempt", || async {
        (receiver.attempts() >= 1).then_some(())
    })
    .await;
    // Revoked behind the API's back (another instance, a manual fix): the subscription is still
    // active, its event already in the outbox.
    let key = key_id(&app, "portal").await;
    let mut conn = app.app.pool.get().expect("connection");
    diesel::update(api_keys::table.find(&key))
        .set(api_keys::revoked_at.eq(Some(symbiose::db::now())))
        .execute(&mut conn)
        .expect("revoked");
    actix_web::rt::time::sleep(SETTLE).await;
    receiver.answer(200);
    eventually("the worker pausing the subscription", || async {
        let shown = app.get(&format!("/api/v1/webhooks/{id}")).await;
        (shown.body["status"] == "paused").then_some(())
    })
    .await;
    actix_web::rt::time::sleep(QUIET).await;
    assert!(receiver.acked().is_empty(), "{:?}", receiver.acked());
}

// -------------------------------------------------------------------------------------------------
// 7. rate limits

#[actix_web::test]
async fn every_spelling_of_a_key_shares_one_bucket() {
    let app = spawn_with(|s| {
        s.auth.rate_limit_per_second = 1;
        s.auth.rate_limit_burst = 3;
    })
    .await;
    let key = app.key("busy", Role::Partner, &[]);
    let mut statuses = Vec::new();
    for scheme in ["Bearer ", "bearer ", "BEARER ", "Bearer  ", "bEaReR "] {
        let reply = app
            .send_raw(
                app.client
                    .get(app.url("/api/v1/actors"))
                    .header("Authorization", format!("{scheme}{key}")),
            )
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}

/// Sends `n` requests with random bearers (and some without any key) as fast as it can; returns
/// their statuses and how many whole seconds it took (the address bucket refills one a second).
async fn flood(app: &TestApp, tag: &str, n: usize) -> (Vec<u16>, usize) {
    let start = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..n {
        let bearer = format!("sym_{tag}_{i:060}");
        let key = (i % 4 != 3).then_some(bearer.as_str());
        let reply = app.call(key, Method::GET, "/api/v1/actors", None).await;
        if reply.status == 429 {
            assert!(reply.content_type.starts_with("application/problem+json"));
        }
        statuses.push(reply.status);
    }
    let seconds = usize::try_from(start.elapsed().as_secs()).unwrap_or(usize::MAX);
    (statuses, seconds)
}

#[actix_web::test]
async fn random_bearers_are_charged_to_the_address_before_any_lookup() {
    let app = spawn_with(|s| {
        s.auth.address_rate_limit_per_second = 1;
        s.auth.address_rate_limit_burst = 5;
    })
    .await;
    let key = app.key("portal", Role::Partner, &[]);
    // A valid key pays at the address once, the first time it is seen.
    let first = app
        .call(Some(&key), Method::GET, "/api/v1/actors", None)
        .await;
    assert_eq!(first.status, 200);
    let (statuses, seconds) = flood(&app, "a", 16).await;
    let exhausted = std::time::Instant::now();
    let through = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        (4..=4 + 1 + seconds).contains(&through),
        "the address bucket (burst 5, one used) let {through} through: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    // The accepted key is not held back by the flood from its address.
    let mine = app
        .call(Some(&key), Method::GET, "/api/v1/actors", None)
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);

    // Refused before the lookup: with the key table gone, each lookup is a 500. Only the tokens
    // that refilled since the first flood (one a second) may reach it.
    {
        use diesel::RunQueryDsl;
        let mut conn = app.app.pool.get().expect("connection");
        let drop = diesel::sql_query("DROP TABLE api_keys");
        match &mut *conn {
            symbiose::db::DbConnection::Sqlite(c) => drop.execute(c),
            symbiose::db::DbConnection::Postgresql(c) => drop.execute(c),
        }
        .expect("table dropped");
    }
    let (statuses, _) = flood(&app, "b", 16).await;
    let refilled = usize::try_from(exhausted.elapsed().as_secs()).unwrap_or(usize::MAX);
    let looked_up = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        looked_up <= 2 + refilled,
        "{looked_up} lookups from an exhausted address: {statuses:?}"
    );
}

#[actix_web::test]
async fn a_limited_answer_says_when_to_retry() {
    let app = spawn_with(|s| {
        s.auth.address_rate_limit_per_second = 1;
        s.auth.address_rate_limit_burst = 1;
    })
    .await;
    let _ = app.call(None, Method::GET, "/api/v1/actors", None).await;
    let response = app
        .client
        .get(app.url("/api/v1/actors"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 429);
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After: {retry:?}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["status"], 429);
}

// -------------------------------------------------------------------------------------------------
// 9. bulk import events

#[actix_web::test]
async fn a_bulk_import_announces_each_resource_like_a_single_create() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start();
    subscribe(&app, &app.admin_key, &url).await;
    let csv = "actor_ref,actor_name,siret,naf_code,commune_insee,kind,category,label,ewc_code,quantity,unit,period\n\
        saw,Scierie du Morvan,73282932000074,16.10A,58062,offer,material,Sciures,03 01 05,40,t,month\n\
        saw,Scierie du Morvan,73282932000074,16.10A,58062,need,energy,Chaleur,,800,MWh,year\n\
        cim,Ciments de Bourgogne,,23.51Z,71270,need,material,Combustibles,,5000,t,year\n";
    let reply = app.post_csv("/api/v1/import", csv.to_owned()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let imported = eventually("three resource.created events", || async {
        let acked = receiver.acked();
        (acked.len() >= 3).then_some(acked)
    })
    .await;
    assert_eq!(imported.len(), 3, "one event per resource");
    assert!(imported.iter().all(|e| e["type"] == "resource.created"));
    let mut labels: Vec<String> = imported.iter().map(label_of).collect();
    labels.sort();
    assert_eq!(labels, ["Chaleur", "Combustibles", "Sciures"]);
    // Each carries the resource as the API shows it.
    for event in &imported {
        let resource = &event["data"]["resource"];
        let id = resource["id"].as_str().expect("resource id");
        let shown = app.get(&format!("/api/v1/resources/{id}")).await;
        assert_eq!(shown.status, 200);
        assert_eq!(*resource, shown.body, "the event's resource is GET's");
    }

    // A refused import (a SIRET already stored) announces nothing; a single create afterwards
    // is the next and only new event, with the same shape.
    let again = app.post_csv("/api/v1/import", csv.to_owned()).await;
    assert_eq!(again.status, 422, "{}", again.text);
    let actor = app.create_actor(actor_body("Chaufferie")).await;
    app.create_resource(&actor, sawdust("alone")).await;
    eventually("the single create's event", || async {
        (receiver.acked().len() >= 4).then_some(())
    })
    .await;
    actix_web::rt::time::sleep(QUIET).await;
    let all = receiver.acked();
    assert_eq!(all.len(), 4, "the refused import published nothing");
    let single = &all[3];
    assert_eq!(label_of(single), "alone");
    let fields = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v["data"]["resource"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(fields(single), fields(&all[0]));
}

// -------------------------------------------------------------------------------------------------
// 10. a bad CSV

#[actix_web::test]
async fn a_file_of_bad_rows_gets_a_capped_error_list() {
    let app = spawn_app().await;
    let long = "x".repeat(1_000);
    let mut csv = String::from("actor_name,naf_code,commune_insee,lat,lng\n");
    for _ in 0..5_000 {
        csv.push_str(&format!("Scierie,16.10A,21231,{long},north\n"));
    }
    let reply = app.post_csv("/api/v1/import", csv).await;
    assert_field_error(&reply, "lat");
    assert_eq!(reply.body["error_count"], 10_000, "two bad cells per row");
    assert_eq!(reply.body["truncated"], true);
    let errors = reply.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1_000, "the first 1,000 errors only");
    assert_eq!(errors[0]["row"], 2);
    assert_eq!(errors[999]["row"], 501, "in file order");
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| m.len() < 400)),
        "cells are quoted short"
    );
    assert!(
        reply.text.len() < 200_000,
        "a {} byte answer for a 5 MB file",
        reply.text.len()
    );
    assert_eq!(
        app.get("/api/v1/actors").await.body["items"],
        json!([]),
        "nothing stored"
    );

    // A few errors: listed whole, not truncated.
    let reply = app
        .post_csv(
            "/api/v1/import",
            "actor_name,naf_code,commune_insee,lat,lng\nScierie,16.10A,21231,,east\n".into(),
        )
        .await;
    assert_field_error(&reply, "lng");
    assert_eq!(reply.body["error_count"], 1);
    assert_eq!(reply.body["truncated"], false);
}

// -------------------------------------------------------------------------------------------------
// 11. webhook URLs embedding internal IPv4 addresses

#[actix_web::test]
async fn webhook_urls_embedding_internal_ipv4_are_refused() {
    let app = spawn_with(|s| s.webhooks.allowed_hosts.clear()).await;
    for url in [
        "http://[::127.0.0.1]/hook",
        "http://[::10.0.0.1]/hook",
        "http://[::ffff:0:127.0.0.1]/hook",
        "http://[::ffff:0:a9fe:a9fe]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[2a01:db8:1::5efe:a00:1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
    ] {
        let reply = app
            .post(
                "/api/v1/webhooks",
                &json!({"url": url, "events": ["resource.created"]}),
            )
            .await;
        assert_field_error(&reply, "url");
    }
}
