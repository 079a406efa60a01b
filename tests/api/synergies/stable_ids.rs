//! Stable synergy ids: nothing stored before a first decision, ids kept across edits, retirement.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 7. Stable ids and retirement
// ---------------------------------------------------------------------------------------------------

/// The database keeps decisions, not candidates: a detection stores nothing; a synergy nobody
/// decided anything about has an empty history and no notes (200, not 404); its first note stores
/// it, and its status then survives re-detection.
#[actix_web::test]
async fn detection_stores_nothing_until_a_first_decision() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let boiler = site(
        &app,
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 4.0, 0.0),
    )
    .await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    let listed = all_items(&app, "/api/v1/synergies").await;
    assert!(!listed.is_empty(), "the declared pair: {listed:#?}");
    let stored = || {
        let mut conn = app.app.pool.get().expect("a connection");
        symbiose::db::synergies::count(&mut conn).expect("count")
    };
    assert_eq!(stored(), 0, "candidates are not stored");
    let id = str_of(&listed[0], "id").to_owned();
    for path in ["history", "notes"] {
        let reply = ok(&app, &format!("/api/v1/synergies/{id}/{path}")).await;
        assert_eq!(reply.body["items"], json!([]), "{path}: {}", reply.text);
    }
    let unknown = Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{unknown}/history"))
            .await
            .status,
        404
    );
    let note = app
        .post(
            &format!("/api/v1/synergies/{id}/notes"),
            &json!({"text": "appeler la chaufferie"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    assert_eq!(stored(), 1, "stored on its first decision");
    patch_ok(
        &app,
        &format!("/api/v1/synergies/{id}"),
        json!({"status": "proposed"}),
    )
    .await;
    assert_eq!(stored(), 1);
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.body["summary"]["inserted"], 0, "{}", run.text);
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    assert_eq!(got.body["status"], "proposed", "{}", got.text);
    let notes = ok(&app, &format!("/api/v1/synergies/{id}/notes")).await;
    assert_eq!(notes.body["items"][0]["text"], "appeler la chaufferie");
    assert_eq!(stored(), 1, "re-detection stores no candidate");
}

#[actix_web::test]
async fn a_pair_keeps_its_id_across_detections_and_edits_and_is_retired_with_its_need() {
    let app = spawn_app().await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let boiler = site(
        &app,
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 4.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let need = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let expected_id = symbiose::matching::engine::synergy_id(
        Uuid::parse_str(&offer).expect("uuid"),
        Uuid::parse_str(&need).expect("uuid"),
    );

    let listed = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let id = str_of(&listed[0], "id").to_owned();
    assert_eq!(id, expected_id.to_string(), "UUID v5 of (offer, need)");
    assert_eq!(Uuid::parse_str(&id).expect("uuid").get_version_num(), 5);
    let first_score = num(&listed[0], "score");

    for _ in 0..2 {
        let run = app.post("/api/v1/synergies/detect", &json!({})).await;
        assert_eq!(run.status, 200, "{}", run.text);
        assert_eq!(run.body["substitution"], 1);
        assert_eq!(
            run.body["summary"]["inserted"], 0,
            "nothing new: {}",
            run.text
        );
        assert_eq!(run.body["summary"]["updated"], 0, "nothing changed");
        assert_eq!(run.body["summary"]["unchanged"], 1, "not rewritten");
        assert_eq!(run.body["summary"]["retired"], 0);
        let again = substitutions(&all_items(&app, "/api/v1/synergies").await);
        assert_eq!(again.len(), 1);
        assert_eq!(str_of(&again[0], "id"), id, "same id across runs");
    }

    // A tenth of the offer left: a lower score, the same id.
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"quantity": tonnes(50.0)}),
    )
    .await;
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    assert_eq!(got.body["id"], id.as_str());
    approx(
        num(&got.body, "coverage"),
        50.0 / 300.0,
        "coverage after the edit",
    );
    let new_score = num(&got.body, "score");
    assert!(
        new_score < first_score,
        "score updated: {first_score} → {new_score}"
    );
    // Candidates are not stored; the first decision stores the synergy, and re-detection keeps
    // the stored figures in step.
    {
        let mut conn = app.app.pool.get().expect("a connection");
        assert!(matches!(
            symbiose::db::synergies::get(&mut conn, &id),
            Err(symbiose::db::DbError::NotFound)
        ));
    }
    patch_ok(
        &app,
        &format!("/api/v1/synergies/{id}"),
        json!({"note": "à présenter aux deux sites"}),
    )
    .await;
    patch_ok(
        &app,
        &format!("/api/v1/resources/{offer}"),
        json!({"quantity": tonnes(40.0)}),
    )
    .await;
    let got = ok(&app, &format!("/api/v1/synergies/{id}")).await;
    let new_score = num(&got.body, "score");
    {
        let mut conn = app.app.pool.get().expect("a connection");
        let row = symbiose::db::synergies::get(&mut conn, &id).expect("stored on its note");
        assert!(row.active);
        assert_eq!(row.status, "detected");
        approx(row.score, new_score, "stored score updated");
        assert_eq!(row.offer_id.as_deref(), Some(offer.as_str()));
        assert_eq!(row.need_id.as_deref(), Some(need.as_str()));
    }

    // The need goes: the synergy is retired. The boiler (a heat network, a known user of wood) stays
    // a latent receiver, under another id.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{need}"))
            .await
            .status,
        204
    );
    let left = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert!(
        left.iter()
            .all(|s| s["latent"] == true && s["need_id"].is_null() && s["id"] != id.as_str()),
        "{left:#?}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.status,
        404
    );
    assert!(
        matches(&app, &offer)
            .await
            .iter()
            .all(|s| s["id"] != id.as_str())
    );
    assert!(
        items(&ok(&app, &format!("/api/v1/actors/{}/synergies", sawmill.id)).await)
            .iter()
            .all(|s| s["id"] != id.as_str())
    );
    {
        let mut conn = app.app.pool.get().expect("a connection");
        let row = symbiose::db::synergies::get(&mut conn, &id).expect("kept for history");
        assert!(!row.active, "retired");
        assert!(row.retired_at.is_some());
    }
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.body["substitution"], left.len(), "{}", run.text);
    assert_eq!(
        run.body["summary"]["retired"], 0,
        "already retired: {}",
        run.text
    );

    // A new need of the same boiler is a new pair, hence a new id.
    let need2 = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let listed = substitutions(&all_items(&app, "/api/v1/synergies").await);
    assert_eq!(
        need_ids(&listed),
        vec![need2.as_str()],
        "declared again, no longer latent: {listed:#?}"
    );
    assert_ne!(str_of(&listed[0], "id"), id);
}
