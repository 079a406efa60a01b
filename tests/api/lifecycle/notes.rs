//! Notes, realised values once implemented, and re-detection that never overwrites a status.

use super::*;

// -------------------------------------------------------------------------------------------------
// notes and realised values

#[actix_web::test]
async fn notes_are_listed_oldest_first_with_their_author() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    let first = patch_as(
        &app,
        Some("animatrice"),
        &id,
        json!({"note": "called the sawmill"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "detected", "a note changes no status");
    let posted = app
        .send(
            app.client
                .post(app.url(&format!("{}/notes", path(&id))))
                .header("X-Symbiose-User", "animateur")
                .json(&json!({"text": "moisture 30 %"})),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    let with_status = patch(
        &app,
        &id,
        json!({"status": "proposed", "comment": "meeting on Monday", "note": "both interested"}),
    )
    .await;
    assert_eq!(with_status.status, 200, "{}", with_status.text);
    let listed = notes(&app, &id).await;
    let got: Vec<(&str, &str)> = listed
        .iter()
        .map(|n| (str_of(n, "author"), str_of(n, "text")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("animatrice via test admin", "called the sawmill"),
            ("animateur via test admin", "moisture 30 %"),
            ("test admin", "both interested")
        ]
    );
    let times: Vec<NaiveDateTime> = listed.iter().map(|n| time(n, "created_at")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(
        history(&app, &id).await.len(),
        1,
        "notes are not status changes"
    );
    assert_field_error(
        &app.post(&format!("{}/notes", path(&id)), &json!({"text": "   "}))
            .await,
        "text",
    );
    assert_field_error(
        &app.post(&format!("{}/notes", path(&id)), &json!({})).await,
        "text",
    );
}

#[actix_web::test]
async fn realised_values_only_once_implemented() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    let realised =
        json!({"realised": {"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0}});
    for status in ["detected", "proposed", "in_study"] {
        if status != "detected" {
            walk(&app, &id, &[status]).await;
        }
        let refused = patch(&app, &id, realised.clone()).await;
        assert_eq!(refused.status, 409, "{status}: {}", refused.text);
        assert!(refused.content_type.starts_with("application/problem+json"));
        assert!(
            str_of(&refused.body, "detail").contains("implemented"),
            "{}",
            refused.text
        );
    }
    // Negative values: every bad field named, nothing stored (the status change neither).
    let negative = patch(
        &app,
        &id,
        json!({"status": "implemented", "realised": {"quantity": -1.0, "diverted_t": -2.0, "co2e_avoided_t": -0.5}}),
    )
    .await;
    for field in [
        "realised.quantity",
        "realised.diverted_t",
        "realised.co2e_avoided_t",
    ] {
        assert_field_error(&negative, field);
    }
    assert_eq!(ok(&app, &path(&id)).await.body["status"], "in_study");
    // Implemented and realised in one request.
    let done = patch(
        &app,
        &id,
        json!({"status": "implemented", "realised": {"quantity": 400.0, "diverted_t": 300.0}, "comment": "first delivery"}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "implemented");
    assert_eq!(
        done.body["realised"],
        json!({"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": null})
    );
    // Later: one value added, the others kept.
    let more = patch(&app, &id, json!({"realised": {"co2e_avoided_t": 50.0}})).await;
    assert_eq!(more.status, 200, "{}", more.text);
    assert_eq!(
        more.body["realised"],
        json!({"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0})
    );
    assert_eq!(
        history(&app, &id).await.len(),
        3,
        "realised values are not status changes"
    );
    // The stored view: parties, detail, detection fields.
    let body = &more.body;
    assert_eq!(body["kind"], "substitution");
    assert_eq!(body["family"], "agricultural_food");
    assert_eq!(body["class"], "material/biomass/wood");
    let roles: Vec<(&str, &str)> = body["parties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (str_of(p, "role"), str_of(p, "name")))
        .collect();
    assert_eq!(
        roles,
        vec![("provider", "Scierie A"), ("receiver", "Chaufferie B")]
    );
    assert_eq!(body["detail"]["id"], id.as_str());
    approx(
        num(&body["detail"]["impact"], "quantity_per_year"),
        500.0,
        "detected quantity",
    );
    assert!(body["allowed_next"].as_array().is_some_and(Vec::is_empty));
}

#[actix_web::test]
async fn re_detection_never_overwrites_a_status() {
    let app = spawn_app().await;
    let (offer, _, id) = one_synergy(&app).await;
    walk(&app, &id, &["proposed", "in_study"]).await;
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(ok(&app, &path(&id)).await.body["status"], "in_study");

    // Editing the offer re-detects: same synergy (same offer and need), new quantity, same status.
    let edited = app
        .patch(
            &format!("/api/v1/resources/{offer}"),
            &json!({"quantity": tonnes(600.0)}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let got = ok(&app, &path(&id)).await.body;
    assert_eq!(got["status"], "in_study");
    approx(num(&got, "quantity"), 600.0, "re-detected quantity");
    let listed = synergies_21(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(
        listed
            .values()
            .all(|s| s["status"] == "in_study" && s["id"] == id.as_str())
    );
    let again = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(again.status, 200);
    let stored = patch(&app, &id, json!({"note": "still studying"})).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.body["status"], "in_study");
    approx(num(&stored.body, "quantity"), 600.0, "stored quantity");
    assert_eq!(
        history(&app, &id).await.len(),
        2,
        "re-detection writes no history"
    );
}
