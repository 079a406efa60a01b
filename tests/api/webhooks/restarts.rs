//! Restarts and replicas: undelivered events survive a restart; two replicas announce once.

use super::*;

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
