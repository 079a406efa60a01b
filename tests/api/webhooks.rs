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

mod access;
mod delivery;
mod events;
mod restarts;
