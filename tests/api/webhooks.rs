//! Partner webhooks end to end, with a real receiver on 127.0.0.1 that checks every signature the
//! way docs/WEBHOOKS.md tells receivers to (HMAC-SHA256 of "{t}.{body}" with the subscription's
//! secret): delivery, retries while the receiver is down, delivery after a restart of the service,
//! no loss and strict order per subscription, pausing and resuming, anonymised partner payloads
//! within the partner's territories, synergy events, and input/access checks.
//!
//! Nothing is timed: every wait polls until the expected state, up to a generous deadline.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use symbiose::auth::Role;

use crate::helpers::{TestApp, actor_body, assert_field_error, spawn_app, spawn_from, spawn_with};

const DEADLINE: Duration = Duration::from_secs(30);
const DIJON: &str = "21231";
/// Mâcon, Saône-et-Loire (71): outside département 21.
const MACON: &str = "71270";

// -------------------------------------------------------------------------------------------------
// the test receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    event_type: String,
    body: Value,
    sequence: i64,
    signature_ok: bool,
    /// What the receiver answered.
    status: u16,
}

/// How the receiver answers request number `n` (0-based) with this body.
type Policy = Arc<dyn Fn(usize, &Value) -> u16 + Send + Sync>;

#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    log: Arc<Mutex<Vec<Received>>>,
    count: Arc<AtomicUsize>,
    policy: Arc<Mutex<Policy>>,
}

impl Receiver {
    fn new() -> Receiver {
        Receiver {
            secret: Arc::new(Mutex::new(String::new())),
            log: Arc::new(Mutex::new(Vec::new())),
            count: Arc::new(AtomicUsize::new(0)),
            policy: Arc::new(Mutex::new(Arc::new(|_, _| 200))),
        }
    }

    fn set_secret(&self, secret: &str) {
        *self.secret.lock().expect("lock") = secret.to_owned();
    }

    fn answer(&self, policy: impl Fn(usize, &Value) -> u16 + Send + Sync + 'static) {
        *self.policy.lock().expect("lock") = Arc::new(policy);
    }

    fn log(&self) -> Vec<Received> {
        self.log.lock().expect("lock").clone()
    }

    /// The requests answered 2xx.
    fn acked(&self) -> Vec<Received> {
        self.log()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Listens on `listener` (127.0.0.1) until the test ends.
    fn start(&self, listener: TcpListener) -> String {
        let port = listener.local_addr().expect("address").port();
        let me = self.clone();
        let server = actix_web::HttpServer::new(move || {
            let me = me.clone();
            actix_web::App::new().default_service(web::to(
                move |req: HttpRequest, body: web::Bytes| {
                    let me = me.clone();
                    async move { me.handle(&req, &body) }
                },
            ))
        })
        .workers(1)
        .listen(listener)
        .expect("receiver listens")
        .run();
        actix_web::rt::spawn(server);
        format!("http://127.0.0.1:{port}/hook")
    }

    fn handle(&self, req: &HttpRequest, body: &[u8]) -> HttpResponse {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let secret = self.secret.lock().expect("lock").clone();
        let signature_ok = verify(&secret, &header("X-Symbiose-Signature"), body);
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let policy = self.policy.lock().expect("lock").clone();
        let status = if signature_ok {
            policy(n, &parsed)
        } else {
            401
        };
        self.log.lock().expect("lock").push(Received {
            event_id: header("X-Symbiose-Event-Id"),
            event_type: header("X-Symbiose-Event"),
            sequence: parsed["sequence"].as_i64().unwrap_or(-1),
            body: parsed,
            signature_ok,
            status,
        });
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).finish()
    }
}

/// The receiver's check, written from the documentation: `t=<unix>,v1=<hex>`, HMAC-SHA256 of
/// `"{t}.{body}"` with the secret, timestamp within 5 minutes.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(ts) = t.parse::<i64>() else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let Ok(expected) = hex::decode(v1) else {
        return false;
    };
    mac.verify_slice(&expected).is_ok()
}

/// A loopback port nothing listens on (yet): the receiver is "down".
fn reserve_port() -> (u16, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    (port, format!("http://127.0.0.1:{port}/hook"))
}

fn listen_on(port: u16) -> TcpListener {
    // The port was free a moment ago; retry briefly in case the system still holds it.
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot listen on 127.0.0.1:{port} again");
}

// -------------------------------------------------------------------------------------------------
// API helpers

/// Creates a subscription with `key`; returns (id, secret).
async fn subscribe(app: &TestApp, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let reply = app
        .call(
            Some(key),
            Method::POST,
            "/api/v1/webhooks",
            Some(&json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(reply.status, 201, "subscribe: {}", reply.text);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        reply.location.as_deref(),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );
    let secret = reply.body["secret"]
        .as_str()
        .expect("secret once")
        .to_owned();
    (id, secret)
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries?limit=500"))
        .await;
    assert_eq!(reply.status, 200, "deliveries: {}", reply.text);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

async fn subscription(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(reply.status, 200, "subscription: {}", reply.text);
    reply.body
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

fn sawdust(label: &str) -> Value {
    json!({"kind": "offer", "category": "material", "label": label, "ewc_code": "03 01 05",
           "quantity": {"value": 100.0, "unit": "t", "period": "year"}})
}

/// A sawmill offering sawdust and a wood boiler 1 km away needing it: one declared synergy.
struct Pair {
    sawmill: String,
    boiler: String,
    offer: String,
    need: String,
}

async fn sawdust_pair(app: &TestApp) -> Pair {
    let dijon = app.app.reference.geo.commune(DIJON).expect("Dijon");
    let (lat, lng) = (dijon.lat, dijon.lng);
    let sawmill = app
        .create_actor(
            json!({"name": "Scierie", "naf_code": "16.10A", "commune_insee": DIJON,
                             "lat": lat, "lng": lng}),
        )
        .await;
    let boiler = app
        .create_actor(
            json!({"name": "Chaufferie", "naf_code": "35.30Z", "commune_insee": DIJON,
                             "lat": lat + 0.01, "lng": lng}),
        )
        .await;
    let offer = app.create_resource(&sawmill, sawdust("Sciure")).await["id"]
        .as_str()
        .expect("offer")
        .to_owned();
    let need = app
        .create_resource(
            &boiler,
            json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
                   "label": "Bois pour chaudière", "accepted_ewc": ["03 01 05"],
                   "quantity": {"value": 80.0, "unit": "t", "period": "year"}}),
        )
        .await["id"]
        .as_str()
        .expect("need")
        .to_owned();
    Pair {
        sawmill,
        boiler,
        offer,
        need,
    }
}

/// Creates `n` resources on `actor`; returns their ids in creation order.
async fn resources(app: &TestApp, actor: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let r = app
            .create_resource(actor, sawdust(&format!("Sciure lot {i}")))
            .await;
        ids.push(r["id"].as_str().expect("resource id").to_owned());
    }
    ids
}

fn resource_ids(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            r.body["data"]["resource"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

// -------------------------------------------------------------------------------------------------
// tests

#[actix_web::test]
async fn deliveries_are_signed_and_recorded() {
    let app = spawn_app().await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (id, secret) = subscribe(&app, &app.admin_key, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    assert!(secret.starts_with("whsec_"));

    let actor = app.create_actor(actor_body("Scierie du Val")).await;
    let created = resources(&app, &actor, 1).await;
    let got = eventually("the delivery", || async {
        let acked = receiver.acked();
        (!acked.is_empty()).then_some(acked)
    })
    .await;
    let first = &got[0];
    assert!(first.signature_ok, "signature verifies with the secret");
    assert_eq!(first.event_type, "resource.created");
    assert_eq!(first.body["type"], "resource.created");
    assert_eq!(
        first.body["id"],
        first.event_id.as_str(),
        "header and body carry the event id"
    );
    assert_eq!(first.body["subscription_id"], id.as_str());
    assert_eq!(first.sequence, 1);
    assert_eq!(first.body["data"]["resource"]["id"], created[0].as_str());
    assert_eq!(first.body["data"]["resource"]["actor_id"], actor.as_str());
    assert_eq!(first.body["data"]["resource"]["ewc_code"], "030105");

    // A wrong secret does not verify (the receiver's check is not vacuous).
    assert!(!verify("whsec_wrong", "t=1,v1=00", b"{}"));

    // The attempt is visible through the API.
    let rows = eventually("the delivered row", || async {
        let rows = deliveries(&app, &id).await;
        rows.iter()
            .any(|r| r["state"] == "delivered")
            .then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["event_id"], first.event_id.as_str());
    assert_eq!(rows[0]["sequence"], 1);
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["attempt_log"][0]["http_status"], 200);
    assert_eq!(rows[0]["attempt_log"][0]["success"], true);
    assert_eq!(
        rows[0]["payload"]["data"]["resource"]["id"],
        created[0].as_str()
    );

    // The secret is never shown again.
    let shown = subscription(&app, &id).await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["events"], json!(["resource.created"]));

    // Updates and deletes are not subscribed: nothing more arrives; a ping does.
    let ping = app
        .post(&format!("/api/v1/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(ping.status, 202, "{}", ping.text);
    let ping_id = ping.body["event_id"].as_str().expect("event id").to_owned();
    let r = app
        .delete(&format!("/api/v1/resources/{}", created[0]))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let got = eventually("the ping", || async {
        let acked = receiver.acked();
        acked.iter().any(|r| r.event_id == ping_id).then_some(acked)
    })
    .await;
    assert_eq!(got.len(), 2, "only the creation and the ping: {got:#?}");
    assert_eq!(got[1].event_type, "ping");
    assert_eq!(got[1].sequence, 2);
    assert!(got[1].signature_ok);

    // Past the retention period, delivered rows and their attempts are purged.
    eventually("both rows delivered", || async {
        let rows = deliveries(&app, &id).await;
        (rows.len() == 2 && rows.iter().all(|r| r["state"] == "delivered")).then_some(())
    })
    .await;
    let mut conn = app.app.pool.get().expect("connection");
    let tomorrow = symbiose::db::now() + chrono::Duration::days(1);
    let purged = symbiose::db::webhooks::purge_before(&mut conn, tomorrow).expect("purge");
    assert_eq!(purged, 2);
    assert!(deliveries(&app, &id).await.is_empty());
}

#[actix_web::test]
async fn retries_with_backoff_while_the_receiver_is_down_then_delivers_in_order() {
    let app = spawn_app().await;
    let (port, url) = reserve_port();
    let (id, secret) = subscribe(
        &app,
        &app.admin_key,
        &url,
        &["resource.created", "resource.updated", "resource.deleted"],
    )
    .await;
    let actor = app.create_actor(actor_body("Scierie fermée")).await;
    let created = resources(&app, &actor, 3).await;
    let patched = app
        .patch(
            &format!("/api/v1/resources/{}", created[1]),
            &json!({"label": "Sciure sèche"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let deleted = app
        .delete(&format!("/api/v1/resources/{}", created[2]))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    // The head is retried (connection refused) while nothing behind it is attempted.
    let rows = eventually("three failed attempts on the first event", || async {
        let rows = deliveries(&app, &id).await;
        let head = rows.iter().find(|r| r["sequence"] == 1)?;
        (head["attempts"].as_i64()? >= 3).then_some(rows)
    })
    .await;
    for row in &rows {
        assert_eq!(row["state"], "pending", "{row:#?}");
        if row["sequence"] != 1 {
            assert_eq!(
                row["attempts"], 0,
                "nothing is sent past a failing head: {row:#?}"
            );
        }
    }
    let head = rows.iter().find(|r| r["sequence"] == 1).expect("head");
    assert!(
        head["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{head:#?}"
    );
    assert!(head["attempt_log"][0]["error"].is_string(), "{head:#?}");
    assert!(head["attempt_log"][0]["http_status"].is_null());

    // The receiver comes up on the same port: everything arrives, in order.
    let receiver = Receiver::new();
    receiver.set_secret(&secret);
    receiver.start(listen_on(port));
    let got = eventually("five deliveries", || async {
        let acked = receiver.acked();
        (acked.len() >= 5).then_some(acked)
    })
    .await;
    let types: Vec<&str> = got.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "resource.created",
            "resource.created",
            "resource.created",
            "resource.updated",
            "resource.deleted"
        ]
    );
    let sequences: Vec<i64> = got.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert!(got.iter().all(|r| r.signature_ok));
    assert_eq!(resource_ids(&got[..3]), created);
    assert_eq!(got[3].body["data"]["resource"]["label"], "Sciure sèche");
    assert_eq!(got[4].body["data"]["resource"]["id"], created[2].as_str());

    let rows = eventually("all rows delivered", || async {
        let rows = deliveries(&app, &id).await;
        rows.iter()
            .all(|r| r["state"] == "delivered")
            .then_some(rows)
    })
    .await;
    let head = rows.iter().find(|r| r["sequence"] == 1).expect("head");
    let log = head["attempt_log"].as_array().expect("attempt log");
    assert!(log.len() >= 4, "failures then the success: {log:#?}");
    assert_eq!(log.last().expect("last")["success"], true);
    assert!(log[..log.len() - 1].iter().all(|a| a["success"] == false));
    assert_eq!(subscription(&app, &id).await["consecutive_failures"], 0);
}

#[actix_web::test]
async fn events_left_in_the_outbox_are_delivered_after_a_restart() {
    let first = spawn_app().await;
    let (port, url) = reserve_port();
    let (id, secret) = subscribe(&first, &first.admin_key, &url, &["resource.created"]).await;
    let actor = first
        .create_actor(actor_body("Scierie avant redémarrage"))
        .await;
    let created = resources(&first, &actor, 5).await;
    // Every event is in the outbox, undelivered (the receiver is down).
    eventually("five pending rows", || async {
        let rows = deliveries(&first, &id).await;
        (rows.len() == 5 && rows.iter().all(|r| r["state"] == "pending")).then_some(())
    })
    .await;

    // Stop the service: server and worker.
    first.server.stop(true).await;
    first.app.stop_webhooks();
    let settings = first.app.settings.clone();

    // The receiver comes up; a new service starts on the same database.
    let receiver = Receiver::new();
    receiver.set_secret(&secret);
    receiver.start(listen_on(port));
    let second = spawn_from(settings, tempfile::tempdir().expect("temp dir")).await;
    let got = eventually("the five events", || async {
        let acked = receiver.acked();
        (acked.len() >= 5).then_some(acked)
    })
    .await;
    assert_eq!(resource_ids(&got), created);
    assert_eq!(
        got.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(got.iter().all(|r| r.signature_ok));
    let rows = eventually("all delivered", || async {
        let rows = deliveries(&second, &id).await;
        rows.iter()
            .all(|r| r["state"] == "delivered")
            .then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 5);
    drop(first);
}

#[actix_web::test]
async fn events_recorded_but_not_fanned_out_survive_a_restart() {
    // The first service records events but runs no worker (as if it stopped right after the
    // changes were committed).
    let first = spawn_with(|s| s.webhooks.worker = false).await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (id, secret) = subscribe(&first, &first.admin_key, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let actor = first.create_actor(actor_body("Scierie sans worker")).await;
    let created = resources(&first, &actor, 4).await;
    assert!(
        deliveries(&first, &id).await.is_empty(),
        "not fanned out yet"
    );
    first.server.stop(true).await;
    let mut settings = first.app.settings.clone();
    settings.webhooks.worker = true;
    let _second = spawn_from(settings, tempfile::tempdir().expect("temp dir")).await;
    let got = eventually("the four events", || async {
        let acked = receiver.acked();
        (acked.len() >= 4).then_some(acked)
    })
    .await;
    assert_eq!(resource_ids(&got), created);
    assert_eq!(
        got.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[actix_web::test]
async fn no_event_is_lost_and_none_overtakes_another() {
    const N: usize = 40;
    let app = spawn_app().await;
    let receiver = Receiver::new();
    // Every third request fails (500), and so does every request while n is in 10..20.
    receiver.answer(|n, _| {
        if n % 3 == 2 || (10..20).contains(&n) {
            500
        } else {
            200
        }
    });
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (id, secret) = subscribe(&app, &app.admin_key, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let actor = app.create_actor(actor_body("Scierie très active")).await;
    // Concurrent writers.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (address, key, actor) = (app.address.clone(), app.admin_key.clone(), actor.clone());
        writers.push(actix_web::rt::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..N / 4 {
                let r = client
                    .post(format!("{address}/api/v1/actors/{actor}/resources"))
                    .bearer_auth(&key)
                    .json(&sawdust(&format!("lot {w}-{i}")))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(r.status().as_u16(), 201);
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let acked = eventually("N distinct events", || async {
        let acked = receiver.acked();
        let distinct: BTreeSet<String> = acked.iter().map(|r| r.event_id.clone()).collect();
        (distinct.len() >= N).then_some(acked)
    })
    .await;
    let distinct: BTreeSet<String> = acked.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(distinct.len(), N, "N events, N distinct ids");
    let resources: BTreeSet<String> = resource_ids(&acked).into_iter().collect();
    assert_eq!(resources.len(), N, "one event per resource created");
    // Order: every request carried the lowest undelivered sequence number.
    let mut next = 1;
    for r in receiver.log() {
        assert!(r.signature_ok);
        assert!(
            r.sequence == next || r.sequence == next - 1,
            "request for sequence {} while {next} was the next undelivered",
            r.sequence
        );
        if (200..300).contains(&r.status) && r.sequence == next {
            next += 1;
        }
    }
    assert_eq!(next, N as i64 + 1);
    assert!(
        receiver.log().len() > N,
        "failures were retried: {} requests",
        receiver.log().len()
    );
    let rows = deliveries(&app, &id).await;
    assert_eq!(rows.len(), N);
    let ids: BTreeSet<String> = rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, distinct, "the API lists the same events");
}

#[actix_web::test]
async fn a_failing_subscription_is_paused_then_resumed() {
    let app = spawn_with(|s| s.webhooks.failures_before_pause = 3).await;
    let receiver = Receiver::new();
    receiver.answer(|_, _| 503);
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (id, secret) = subscribe(&app, &app.admin_key, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let actor = app.create_actor(actor_body("Scierie en panne")).await;
    let created = resources(&app, &actor, 2).await;
    let sub = eventually("the pause", || async {
        let sub = subscription(&app, &id).await;
        (sub["status"] == "paused").then_some(sub)
    })
    .await;
    assert_eq!(sub["consecutive_failures"], 3);
    assert!(
        sub["paused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "{sub:#?}"
    );
    // Paused: no more attempts.
    let before = receiver.log().len();
    assert_eq!(before, 3);
    let rows = deliveries(&app, &id).await;
    assert!(rows.iter().all(|r| r["state"] == "pending"));

    receiver.answer(|_, _| 204);
    let resumed = app
        .post(&format!("/api/v1/webhooks/{id}/resume"), &json!({}))
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert_eq!(resumed.body["status"], "active");
    assert_eq!(resumed.body["consecutive_failures"], 0);
    assert!(resumed.body["paused_reason"].is_null());
    let got = eventually("both events", || async {
        let acked = receiver.acked();
        (acked.len() >= 2).then_some(acked)
    })
    .await;
    assert_eq!(resource_ids(&got), created);
}

#[actix_web::test]
async fn an_event_failing_past_the_maximum_age_expires_and_the_next_one_follows() {
    let app = spawn_with(|s| s.webhooks.max_age_secs = 1).await;
    let receiver = Receiver::new();
    // The receiver refuses the event of the resource labelled "Sciure refusée", at every attempt.
    receiver.answer(|_, body| {
        if body["data"]["resource"]["label"] == "Sciure refusée" {
            500
        } else {
            200
        }
    });
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (id, secret) = subscribe(&app, &app.admin_key, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let actor = app.create_actor(actor_body("Scierie capricieuse")).await;
    let first = app.create_resource(&actor, sawdust("Sciure refusée")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second = resources(&app, &actor, 1).await.remove(0);
    let rows = eventually("the first expired and the second delivered", || async {
        let rows = deliveries(&app, &id).await;
        let state = |seq: i64| {
            rows.iter()
                .find(|r| r["sequence"] == seq)
                .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
        };
        (state(1).as_deref() == Some("expired") && state(2).as_deref() == Some("delivered"))
            .then_some(rows)
    })
    .await;
    let expired = rows.iter().find(|r| r["sequence"] == 1).expect("first");
    assert_eq!(expired["payload"]["data"]["resource"]["id"], first.as_str());
    assert!(expired["expired_at"].is_string(), "{expired:#?}");
    assert!(expired["next_attempt_at"].is_null());
    assert!(
        expired["attempt_log"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["success"] == false))
    );
    let acked = receiver.acked();
    assert_eq!(resource_ids(&acked), [second]);
}

#[actix_web::test]
async fn partners_get_anonymised_payloads_within_their_territories() {
    let app = spawn_app().await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let partner = app.key("portail", Role::Partner, &["21"]);
    let (partner_sub, secret) = subscribe(&app, &partner, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let shown = app
        .call(
            Some(&partner),
            Method::GET,
            &format!("/api/v1/webhooks/{partner_sub}"),
            None,
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["territories"], json!(["21"]));
    assert_eq!(shown.body["anonymised"], true);

    // Actor in 21 that did not consent, actor in 71 (outside), actor in 21 that consented.
    let hidden = app
        .create_actor(
            json!({"name": "Fonderie Secrète", "naf_code": "24.51Z", "commune_insee": DIJON}),
        )
        .await;
    let outside = app
        .create_actor(
            json!({"name": "Scierie de Mâcon", "naf_code": "16.10A", "commune_insee": MACON}),
        )
        .await;
    let shared = app
        .create_actor(
            json!({"name": "Scierie Ouverte", "naf_code": "16.10A", "commune_insee": DIJON,
                             "share_with_partners": true}),
        )
        .await;
    let r_hidden = resources(&app, &hidden, 1).await.remove(0);
    let r_outside = resources(&app, &outside, 1).await.remove(0);
    let r_shared = resources(&app, &shared, 1).await.remove(0);

    // The last event in scope arrives: the one outside, in between, was not sent.
    let got = eventually("the in-scope events", || async {
        let acked = receiver.acked();
        (acked.len() >= 2).then_some(acked)
    })
    .await;
    assert_eq!(resource_ids(&got), [r_hidden.clone(), r_shared.clone()]);
    assert!(!resource_ids(&got).contains(&r_outside));
    let hidden_view = &got[0].body["data"]["resource"];
    assert_ne!(
        hidden_view["actor_id"],
        hidden.as_str(),
        "opaque id for an actor that did not consent"
    );
    assert!(
        hidden_view["actor_id"]
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    assert!(!got[0].body.to_string().contains(&hidden));
    assert!(!got[0].body.to_string().contains("Secrète"));
    assert_eq!(got[1].body["data"]["resource"]["actor_id"], shared.as_str());
    assert!(got.iter().all(|r| r.signature_ok));

    // The delivery log shows the partner what was sent: anonymised too.
    let log = app
        .call(
            Some(&partner),
            Method::GET,
            &format!("/api/v1/webhooks/{partner_sub}/deliveries"),
            None,
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    assert!(!log.text.contains(&hidden), "{}", log.text);

    // An admin subscription sees real ids, everywhere.
    let admin_receiver = Receiver::new();
    let admin_url = admin_receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (_, admin_secret) =
        subscribe(&app, &app.admin_key, &admin_url, &["resource.created"]).await;
    admin_receiver.set_secret(&admin_secret);
    let r2 = resources(&app, &hidden, 1).await.remove(0);
    let r3 = resources(&app, &outside, 1).await.remove(0);
    let got = eventually("the admin's events", || async {
        let acked = admin_receiver.acked();
        (acked.len() >= 2).then_some(acked)
    })
    .await;
    assert_eq!(
        resource_ids(&got),
        [r2, r3],
        "only events after the subscription"
    );
    assert_eq!(got[0].body["data"]["resource"]["actor_id"], hidden.as_str());
}

#[actix_web::test]
async fn subscriptions_are_validated_and_private_to_their_key() {
    let app = spawn_app().await;
    let facilitator = app.key("animateur", Role::Facilitator, &["21"]);
    let partner = app.key("portail", Role::Partner, &[]);
    let post = |key: Option<String>, body: Value| {
        let app = &app;
        async move {
            app.call(
                key.as_deref(),
                Method::POST,
                "/api/v1/webhooks",
                Some(&body),
            )
            .await
        }
    };
    let events = json!(["resource.created"]);
    for url in [
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "http://10.0.0.1/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest",
        "https://example.org/hook",
        "not a url",
        "",
    ] {
        let r = post(Some(partner.clone()), json!({"url": url, "events": events})).await;
        assert_field_error(&r, "url");
    }
    for bad in [json!([]), json!(["resource.exploded"]), json!(["ping"])] {
        let r = post(
            Some(partner.clone()),
            json!({"url": "http://127.0.0.1:9/hook", "events": bad}),
        )
        .await;
        assert_field_error(&r, "events");
    }
    let r = post(Some(partner.clone()), json!({"events": events})).await;
    assert_field_error(&r, "url");
    let r = post(
        None,
        json!({"url": "http://127.0.0.1:9/hook", "events": events}),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.content_type.starts_with("application/problem+json"));

    let (mine, _) = subscribe(
        &app,
        &partner,
        "http://127.0.0.1:9/hook",
        &["resource.created"],
    )
    .await;
    let (theirs, _) = subscribe(
        &app,
        &facilitator,
        "http://127.0.0.1:9/other",
        &["synergy.status_changed"],
    )
    .await;
    // Each key sees its own; the admin sees both.
    let list = app
        .call(Some(&partner), Method::GET, "/api/v1/webhooks", None)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [mine.as_str()]);
    assert!(!list.text.contains("whsec_"), "no secret in lists");
    let all = app.get("/api/v1/webhooks").await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(2));
    for path in [
        format!("/api/v1/webhooks/{theirs}"),
        format!("/api/v1/webhooks/{theirs}/deliveries"),
    ] {
        let r = app.call(Some(&partner), Method::GET, &path, None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = app
        .call(
            Some(&partner),
            Method::DELETE,
            &format!("/api/v1/webhooks/{theirs}"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .call(
            Some(&partner),
            Method::POST,
            &format!("/api/v1/webhooks/{theirs}/resume"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .call(
            Some(&partner),
            Method::GET,
            &format!("/api/v1/webhooks/{mine}/deliveries?state=lost"),
            None,
        )
        .await;
    assert_field_error(&r, "state");
    // The owner deletes its own.
    let r = app
        .call(
            Some(&partner),
            Method::DELETE,
            &format!("/api/v1/webhooks/{mine}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .call(
            Some(&partner),
            Method::GET,
            &format!("/api/v1/webhooks/{mine}"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app.get("/api/v1/webhooks/not-a-uuid").await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn synergy_detection_and_status_changes_are_delivered() {
    let app = spawn_app().await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (_, secret) = subscribe(
        &app,
        &app.admin_key,
        &url,
        &[
            "synergy.detected",
            "synergy.status_changed",
            "synergy.retired",
        ],
    )
    .await;
    receiver.set_secret(&secret);
    let Pair {
        sawmill,
        boiler,
        offer,
        need,
    } = sawdust_pair(&app).await;
    // Nobody reads synergies: the worker runs the detection for its subscribers.
    let detected = eventually("synergy.detected", || async {
        receiver.acked().into_iter().find(|r| {
            r.event_type == "synergy.detected"
                && r.body["data"]["synergy"]["offer_id"] == offer.as_str()
                && r.body["data"]["synergy"]["need_id"] == need.as_str()
        })
    })
    .await;
    let synergy = detected.body["data"]["synergy"]["id"]
        .as_str()
        .expect("synergy id")
        .to_owned();
    assert_eq!(
        detected.body["data"]["synergy"]["provider_actor_id"],
        sawmill.as_str()
    );
    assert_eq!(detected.body["data"]["synergy"]["status"], "detected");
    let r = app
        .patch(
            &format!("/api/v1/synergies/{synergy}"),
            &json!({"status": "proposed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = eventually("synergy.status_changed", || async {
        receiver
            .acked()
            .into_iter()
            .find(|r| r.event_type == "synergy.status_changed")
    })
    .await;
    assert_eq!(changed.body["data"]["synergy"]["id"], synergy.as_str());
    assert_eq!(changed.body["data"]["change"]["from"], "detected");
    assert_eq!(changed.body["data"]["change"]["to"], "proposed");
    assert_eq!(changed.body["data"]["synergy"]["status"], "proposed");
    assert!(changed.sequence > detected.sequence);

    // The boiler (~1.1 km away) now takes wood from 500 m at most: the synergy is retired…
    let r = app
        .patch(
            &format!("/api/v1/resources/{need}"),
            &json!({"max_distance_km": 0.5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = app
        .get(&format!("/api/v1/actors/{boiler}/synergies?latent=false"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(
        listed.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|s| s["id"] != synergy.as_str())),
        "retired: {}",
        listed.text
    );
    let retired = eventually("synergy.retired", || async {
        receiver.acked().into_iter().find(|r| {
            r.event_type == "synergy.retired" && r.body["data"]["synergy"]["id"] == synergy.as_str()
        })
    })
    .await;
    assert_eq!(retired.body["data"]["synergy"]["active"], false);
    assert_eq!(retired.body["data"]["synergy"]["status"], "proposed");
    assert!(retired.sequence > changed.sequence);
    // …and when the limit goes, it comes back under its id, announced again with the kept status.
    let r = app
        .patch(
            &format!("/api/v1/resources/{need}"),
            &json!({"max_distance_km": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = eventually("synergy.detected again", || async {
        receiver.acked().into_iter().find(|r| {
            r.event_type == "synergy.detected"
                && r.body["data"]["synergy"]["id"] == synergy.as_str()
                && r.sequence > changed.sequence
        })
    })
    .await;
    assert_eq!(again.body["data"]["synergy"]["status"], "proposed");
    assert_eq!(
        again.body["data"]["synergy"]["first_detected_at"],
        detected.body["data"]["synergy"]["first_detected_at"]
    );
    assert!(receiver.log().iter().all(|r| r.signature_ok));
}

#[actix_web::test]
async fn an_actor_deleted_before_fan_out_stays_anonymous_for_partners() {
    // No worker: the event waits in the database while its actor is deleted.
    let first = spawn_with(|s| s.webhooks.worker = false).await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let partner = first.key("portail", Role::Partner, &[]);
    let (_, secret) = subscribe(&first, &partner, &url, &["resource.created"]).await;
    receiver.set_secret(&secret);
    let hidden = first
        .create_actor(
            json!({"name": "Fonderie Éphémère", "naf_code": "24.51Z", "commune_insee": DIJON}),
        )
        .await;
    resources(&first, &hidden, 1).await;
    let deleted = first.delete(&format!("/api/v1/actors/{hidden}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    first.server.stop(true).await;

    let mut settings = first.app.settings.clone();
    settings.webhooks.worker = true;
    let _second = spawn_from(settings, tempfile::tempdir().expect("temp dir")).await;
    let got = eventually("the event", || async {
        let acked = receiver.acked();
        (!acked.is_empty()).then_some(acked)
    })
    .await;
    let sent = got[0].body.to_string();
    assert!(!sent.contains(&hidden), "real id sent: {sent}");
    assert!(!sent.contains("Éphémère"), "name sent: {sent}");
    assert!(
        !sent.contains("_hidden_actors"),
        "internal field sent: {sent}"
    );
    let shown = got[0].body["data"]["resource"]["actor_id"]
        .as_str()
        .unwrap_or_default();
    assert!(uuid::Uuid::parse_str(shown).is_ok(), "an opaque id: {sent}");
}

#[actix_web::test]
async fn deleting_an_actor_reports_each_of_its_resources_deleted() {
    let app = spawn_app().await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (_, secret) = subscribe(&app, &app.admin_key, &url, &["resource.deleted"]).await;
    receiver.set_secret(&secret);
    let leaving = app
        .create_actor(
            json!({"name": "Scierie qui ferme", "naf_code": "16.10A", "commune_insee": DIJON}),
        )
        .await;
    let staying = app
        .create_actor(
            json!({"name": "Scierie qui reste", "naf_code": "16.10A", "commune_insee": DIJON}),
        )
        .await;
    let mut gone = resources(&app, &leaving, 2).await;
    resources(&app, &staying, 1).await;
    let deleted = app.delete(&format!("/api/v1/actors/{leaving}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let got = eventually("two resource.deleted events", || async {
        let acked = receiver.acked();
        (acked.len() >= 2).then_some(acked)
    })
    .await;
    assert!(
        got.iter()
            .all(|r| r.event_type == "resource.deleted" && r.signature_ok)
    );
    let mut reported = resource_ids(&got);
    reported.sort();
    gone.sort();
    assert_eq!(reported, gone, "exactly the deleted actor's resources");
    for r in &got {
        assert_eq!(r.body["data"]["resource"]["actor_id"], leaving.as_str());
    }
    // The other actor's resource is untouched, and nothing else is reported.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.acked().len(), 2);
}

/// Every replica on one database detects; only the one holding the announcer's lease
/// (`db::leases`) announces: a synergy that enters the detection is delivered once, not once per
/// server that rebuilt.
#[actix_web::test]
async fn two_replicas_announce_a_new_synergy_once() {
    let first = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let second = spawn_from(first.app.settings.clone(), dir).await;
    let receiver = Receiver::new();
    let url = receiver.start(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let (_, secret) = subscribe(&first, &first.admin_key, &url, &["synergy.detected"]).await;
    receiver.set_secret(&secret);
    // Both servers have a build from before the writes, to compare the next one with.
    for app in [&first, &second] {
        let r = app.get("/api/v1/synergies?limit=1").await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let Pair { offer, need, .. } = sawdust_pair(&first).await;
    // Both servers rebuild with the new pair (each compares with its build from before).
    let path = "/api/v1/synergies?limit=50";
    for app in [&first, &second] {
        eventually("the new synergy in both servers' lists", || async {
            let r = app.get(path).await;
            r.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["offer_id"] == offer.as_str() && s["need_id"] == need.as_str())
                .then_some(())
        })
        .await;
    }
    let announced = || {
        receiver
            .acked()
            .into_iter()
            .filter(|r| {
                r.event_type == "synergy.detected"
                    && r.body["data"]["synergy"]["offer_id"] == offer.as_str()
                    && r.body["data"]["synergy"]["need_id"] == need.as_str()
            })
            .count()
    };
    eventually("synergy.detected", || async {
        (announced() > 0).then_some(())
    })
    .await;
    // Time for a second announcement to be made and delivered, were there one.
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        announced(),
        1,
        "one delivery per synergy, whatever the replicas"
    );
}
