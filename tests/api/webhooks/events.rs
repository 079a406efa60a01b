//! Synergy events (detected, status changed, retired) and a deleted actor's resources.

use super::*;

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
