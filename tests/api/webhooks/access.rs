//! Partners' payloads anonymised within their territories; subscriptions private to their key.

use super::*;

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
