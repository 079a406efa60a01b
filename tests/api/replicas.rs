//! Several servers on one database (PostgreSQL in `.ci/run`'s second pass, one SQLite file in the
//! first): what is written through one is seen by the other within a second — new resources in its
//! matches, statuses, revoked keys — through the database's change counters (`db::changes`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use symbiose::db::Backend;

use crate::helpers::{TestApp, spawn_app, spawn_from, spawn_with};

const DIJON: &str = "21231";

/// Polls `check` every 20 ms until it gives a value; fails past `limit`. Returns the value and the
/// time it took.
async fn within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {limit:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn actor(app: &TestApp, name: &str, naf: &str, east_km: f64) -> String {
    let dijon = app.app.reference.geo.commune(DIJON).expect("Dijon");
    app.create_actor(
        json!({"name": name, "naf_code": naf, "commune_insee": DIJON,
                            "lat": dijon.lat, "lng": dijon.lng + east_km / 76.0}),
    )
    .await
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["offer_id"].as_str().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn two_servers_on_one_database_see_each_others_writes_within_a_second() {
    let first = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let second = spawn_from(first.app.settings.clone(), dir).await;
    each_sees_the_others_writes(&first, &second).await;

    let took = revoked_through_one_is_refused_by_the_other(&first, &second).await;
    eprintln!("a key revoked through one server was refused by the other after {took:?}");
}

/// A key the second server has checked (and keeps in its key cache) is revoked through the first:
/// the first refuses it at once, the second within a second (its change follower sees the `keys`
/// counter move, or PostgreSQL's notification arrives). Returns how long the second took.
async fn revoked_through_one_is_refused_by_the_other(
    first: &TestApp,
    second: &TestApp,
) -> Duration {
    let created = first
        .post(
            "/api/v1/keys",
            &json!({"name": "portail", "role": "facilitator", "territories": []}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let (key_id, secret) = (
        created.body["id"].as_str().expect("key id").to_owned(),
        created.body["key"].as_str().expect("secret").to_owned(),
    );
    let read = |app: &TestApp| {
        app.client
            .get(app.url("/api/v1/actors"))
            .bearer_auth(secret.clone())
    };
    assert_eq!(first.send(read(first)).await.status, 200);
    // The key's creation itself drops the second server's cache when the second hears of it:
    // read until the second keeps the key it checked.
    within(
        Duration::from_secs(1),
        "the key kept by the second server",
        || async {
            assert_eq!(second.send(read(second)).await.status, 200);
            (!second.app.key_cache.is_empty()).then_some(())
        },
    )
    .await;
    let r = first.delete(&format!("/api/v1/keys/{key_id}")).await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    assert_eq!(
        first.send(read(first)).await.status,
        401,
        "refused at once by the server that revoked it"
    );
    let ((), took) = within(Duration::from_secs(1), "revoked key refused", || async {
        (second.send(read(second)).await.status == 401).then_some(())
    })
    .await;
    took
}

/// On PostgreSQL a notification wakes the other server's change follower: with its polling slowed
/// to a minute, what is written through one server still reaches the other within a second.
#[actix_web::test]
async fn on_postgresql_a_notification_carries_writes_to_the_other_server() {
    let first = spawn_with(|s| s.database.change_poll_ms = 60_000).await;
    if Backend::of_url(&first.app.settings.database.url) != Backend::Postgres {
        eprintln!("SQLite has no notifications: the polling test covers it");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let second = spawn_from(first.app.settings.clone(), dir).await;
    each_sees_the_others_writes(&first, &second).await;
    // The notification drops the second server's cached keys: its follower would poll in a minute.
    let took = revoked_through_one_is_refused_by_the_other(&first, &second).await;
    eprintln!("a key revoked through one server was refused by the other after {took:?}");
}

/// A resource created through `first` is in `second`'s matches within 1 s, and a status changed
/// through `second` is seen by `first` within 1 s.
async fn each_sees_the_others_writes(first: &TestApp, second: &TestApp) {
    // Both ready before the writes: the second server's build knows nothing of them.
    let boiler = actor(first, "Chaufferie", "35.30Z", 3.0).await;
    let need = first
        .create_resource(
            &boiler,
            json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
                   "label": "Bois pour chaudière", "accepted_ewc": ["03 01 05"],
                   "quantity": {"value": 300.0, "unit": "t", "period": "year"}}),
        )
        .await["id"]
        .as_str()
        .expect("need id")
        .to_owned();
    let seen = second
        .get(&format!("/api/v1/resources/{need}/matches"))
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text);

    // A resource created through the first server is in the second one's matches within 1 s.
    let sawmill = actor(first, "Scierie", "16.10A", 0.0).await;
    let offer = first
        .create_resource(
            &sawmill,
            json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05",
                   "quantity": {"value": 500.0, "unit": "t", "period": "year"}}),
        )
        .await["id"]
        .as_str()
        .expect("offer id")
        .to_owned();
    let path = format!("/api/v1/resources/{need}/matches");
    let (synergy, took) = within(Duration::from_secs(1), "the new offer", || async {
        let reply = second.get(&path).await;
        ids(&reply.body).contains(&offer).then(|| {
            reply.body["items"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    })
    .await;
    eprintln!("offer seen by the second server after {took:?}");

    // A status changed through the second server is seen by the first.
    let r = second
        .patch(
            &format!("/api/v1/synergies/{synergy}"),
            &json!({"status": "proposed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let synergy_path = format!("/api/v1/synergies/{synergy}");
    let (_, took) = within(Duration::from_secs(1), "the status", || async {
        (first.get(&synergy_path).await.body["status"] == "proposed").then_some(())
    })
    .await;
    eprintln!("status seen by the first server after {took:?}");
}

/// Moves the announcer's lease to another (pretended) server until `expires_at_ms`.
fn lease_elsewhere(app: &TestApp, expires_at_ms: i64) {
    use diesel::RunQueryDsl;
    let mut conn = app.app.pool.get().expect("connection");
    let moved = diesel::sql_query(format!(
        "UPDATE leases SET holder = 'another-server', expires_at_ms = {expires_at_ms} \
         WHERE name = 'announcer'"
    ))
    .execute(&mut *conn)
    .expect("lease moved");
    assert_eq!(
        moved, 1,
        "the server holds the announcer's lease once it runs"
    );
}

/// One server at a time keeps the stored decisions in step with the detection (item 5 of issue 11):
/// a server that does not hold the announcer's lease detects, but leaves the stored rows to the
/// holder; when the lease comes back to it, it updates them.
#[actix_web::test]
async fn only_the_lease_holder_keeps_the_stored_decisions_in_step() {
    let app = spawn_app().await;
    let sawmill = actor(&app, "Scierie", "16.10A", 0.0).await;
    let boiler = actor(&app, "Chaufferie", "35.30Z", 3.0).await;
    let offer = app
        .create_resource(
            &sawmill,
            json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05",
                   "quantity": {"value": 500.0, "unit": "t", "period": "year"}}),
        )
        .await["id"]
        .as_str()
        .expect("offer id")
        .to_owned();
    app.create_resource(
        &boiler,
        json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
               "label": "Bois pour chaudière", "accepted_ewc": ["03 01 05"],
               "quantity": {"value": 300.0, "unit": "t", "period": "year"}}),
    )
    .await;
    let matches = app.get(&format!("/api/v1/resources/{offer}/matches")).await;
    let synergy = ids_of_synergies(&matches.body)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the sawdust synergy: {}", matches.text));
    // A decision stores the synergy.
    let r = app
        .patch(
            &format!("/api/v1/synergies/{synergy}"),
            &json!({"status": "proposed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored_active = || {
        let mut conn = app.app.pool.get().expect("connection");
        symbiose::db::lifecycle::get(&mut conn, &synergy)
            .expect("the stored decision")
            .active
    };
    assert!(stored_active());

    // Another server holds the lease: this one's detection no longer has the synergy, but the
    // stored row is the holder's to retire.
    let minute_ahead = chrono::Utc::now().timestamp_millis() + 60_000;
    lease_elsewhere(&app, minute_ahead);
    let r = app.delete(&format!("/api/v1/resources/{offer}")).await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert!(
        stored_active(),
        "a server without the lease wrote a stored decision"
    );

    // The lease expires and comes back to this server: its next build retires the row.
    lease_elsewhere(&app, 0);
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert!(
        !stored_active(),
        "the holder retires what it no longer detects"
    );
}

fn ids_of_synergies(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}
