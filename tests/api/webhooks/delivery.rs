//! Delivery: signed and recorded, retried, in order without loss, paused and resumed, expired.

use super::*;

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
