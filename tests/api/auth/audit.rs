//! The audit log and synergy changes signed by the key; the rate limit per key.

use super::*;

#[actix_web::test]
async fn every_write_is_audited_with_its_key() {
    let app = spawn_app().await;
    let facilitator = app.key("Animatrice Côte-d'Or", Role::Facilitator, &[]);
    let created = expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Audit", "21231")),
        201,
    )
    .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    expect(
        &app,
        Some(&facilitator),
        Method::PATCH,
        &format!("/api/v1/actors/{id}"),
        Some(&json!({"name": "Audit 2"})),
        200,
    )
    .await;
    // Refused writes and reads are not writes.
    expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&json!({"name": ""})),
        422,
    )
    .await;
    expect(
        &app,
        Some(&facilitator),
        Method::GET,
        "/api/v1/actors",
        None,
        200,
    )
    .await;

    let log = app.get("/api/v1/audit").await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries: Vec<Value> = log.body["items"].as_array().cloned().unwrap_or_default();
    let mine: Vec<&Value> = entries
        .iter()
        .filter(|e| e["key_name"] == "Animatrice Côte-d'Or")
        .collect();
    assert_eq!(mine.len(), 2, "{entries:?}");
    assert_eq!(mine[0]["method"], "PATCH", "newest first");
    assert_eq!(mine[0]["route"], "/api/v1/actors/{id}");
    assert_eq!(mine[0]["entity_id"], id.as_str());
    assert_eq!(mine[1]["method"], "POST");
    assert_eq!(
        mine[1]["entity_id"],
        id.as_str(),
        "from the Location header"
    );
    assert_eq!(mine[1]["status"], 201);
}

#[actix_web::test]
async fn the_rate_limit_is_per_key() {
    let app = spawn_with(|s| {
        s.auth.rate_limit_per_second = 1;
        s.auth.rate_limit_burst = 3;
    })
    .await;
    let busy = app.key("busy", Role::Partner, &[]);
    let calm = app.key("calm", Role::Partner, &[]);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            app.call(Some(&busy), Method::GET, "/api/v1/actors", None)
                .await
                .status,
        );
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let limited = app
        .call(Some(&busy), Method::GET, "/api/v1/actors", None)
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.content_type.starts_with("application/problem+json"));
    // Another key has its own bucket.
    expect(&app, Some(&calm), Method::GET, "/api/v1/actors", None, 200).await;
}

#[actix_web::test]
async fn synergy_changes_are_signed_by_the_key() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let facilitator = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let elsewhere = app.key("Animateur 58", Role::Facilitator, &["58"]);
    let path = format!("/api/v1/synergies/{}", s.synergy_id);
    let propose = json!({"status": "proposed"});
    expect(
        &app,
        Some(&elsewhere),
        Method::PATCH,
        &path,
        Some(&propose),
        403,
    )
    .await;
    let reply = app
        .send_raw(
            app.client
                .patch(app.url(&path))
                .bearer_auth(&facilitator)
                .header("X-Symbiose-User", "Claire")
                .json(&propose),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let history = app.get(&format!("{path}/history")).await;
    assert_eq!(
        history.body["items"][0]["changed_by"],
        "Claire via Animatrice 21"
    );
}
