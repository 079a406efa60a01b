//! The anonymisation matrix: non-consenting actors as each role sees them, on every endpoint.

use super::*;

#[actix_web::test]
async fn partners_and_public_readers_see_non_consenting_actors_anonymised_everywhere() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    let s = scene(&app).await;
    let partner = app.key("portail", Role::Partner, &["21"]);
    let facilitator = app.key("animatrice", Role::Facilitator, &["21"]);
    let adhoc = json!({"kind": "need", "class": "material/biomass/wood", "accepted_ewc": ["03 01 05"],
                       "lat": 47.33, "lng": 5.05});
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/actors/{}", s.secret_id), None),
        (Method::GET, "/api/v1/actors?territory=21".into(), None),
        (Method::GET, "/api/v1/territories/21231/actors".into(), None),
        (Method::GET, "/api/v1/resources?territory=21".into(), None),
        (
            Method::GET,
            format!("/api/v1/resources/{}", s.offer_id),
            None,
        ),
        (Method::GET, "/api/v1/synergies?territory=21".into(), None),
        (
            Method::GET,
            format!("/api/v1/synergies/{}", s.synergy_id),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/actors/{}/synergies", s.open_id),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/resources/{}/matches", s.offer_id),
            None,
        ),
        (Method::POST, "/api/v1/match".into(), Some(adhoc)),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=json".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=graphml".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/graph?format=geojson".into(),
            None,
        ),
        (Method::GET, "/api/v1/territories/21/hubs".into(), None),
        (Method::GET, "/api/v1/territories/21/chains".into(), None),
        (
            Method::GET,
            "/api/v1/territories/21/allocation".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/territories/21/kpis?format=csv".into(),
            None,
        ),
    ];
    let readers: [(&str, Option<&str>, bool); 4] = [
        ("admin", Some(app.admin_key.as_str()), false),
        ("facilitator", Some(facilitator.as_str()), false),
        ("partner", Some(partner.as_str()), true),
        ("public", None, true),
    ];
    let secrets = [
        SECRET_NAME,
        SECRET_SIRET,
        "12 rue des Scieurs",
        "chene@example.org",
        s.secret_id.as_str(),
    ];
    for (method, path, body) in &endpoints {
        let full = app
            .call(Some(&app.admin_key), method.clone(), path, body.as_ref())
            .await;
        assert_eq!(full.status, 200, "admin {method} {path}: {}", full.text);
        // The matrix has teeth: every endpoint shows the sawmill to an admin, but the KPI export
        // and the allocation (no actors in them) and chains (two actors make no chain).
        if !["kpis", "chains", "allocation"]
            .iter()
            .any(|p| path.contains(p))
        {
            assert!(
                full.text.contains(&s.secret_id) || full.text.contains(SECRET_NAME),
                "admin {method} {path} does not show the sawmill: {}",
                full.text
            );
        }
        for (role, key, anonymised) in readers {
            let reply = app.call(key, method.clone(), path, body.as_ref()).await;
            if key.is_none() && path.contains("/kpis") {
                // KPIs count synergies by status, which keyless readers do not see.
                assert_eq!(reply.status, 401, "{role} {method} {path}: {}", reply.text);
                continue;
            }
            assert_eq!(reply.status, 200, "{role} {method} {path}: {}", reply.text);
            for secret in secrets {
                let shown_to_admin = full.text.contains(secret);
                let shown = reply.text.contains(secret);
                if anonymised {
                    assert!(
                        !shown,
                        "{role} {method} {path} shows `{secret}`: {}",
                        reply.text
                    );
                } else {
                    assert_eq!(
                        shown, shown_to_admin,
                        "{role} {method} {path} and `{secret}`"
                    );
                }
            }
            // Consenting actors are shown to everyone as they are.
            assert_eq!(
                reply.text.contains(OPEN_NAME),
                full.text.contains(OPEN_NAME),
                "{role} {method} {path} and the consenting actor"
            );
        }
    }
}

#[actix_web::test]
async fn an_anonymous_actor_keeps_activity_commune_and_a_stable_opaque_id() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let partner = app.key("portail", Role::Partner, &[]);
    let key = Some(partner.as_str());
    let dijon = app
        .app
        .reference
        .geo
        .commune("21231")
        .expect("Dijon")
        .clone();

    let seen = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    let opaque = seen.body["id"].as_str().expect("id").to_owned();
    assert_ne!(opaque, s.secret_id);
    assert!(uuid::Uuid::parse_str(&opaque).is_ok());
    assert_eq!(seen.body["anonymous"], true);
    assert_eq!(seen.body["naf_code"], "16.10A");
    assert_eq!(seen.body["commune_insee"], "21231");
    assert_eq!(seen.body["siret"], Value::Null);
    assert!((seen.body["lat"].as_f64().unwrap_or(0.0) - dijon.lat).abs() < 1e-3);
    assert!((seen.body["lng"].as_f64().unwrap_or(0.0) - dijon.lng).abs() < 1e-3);
    assert!(
        seen.body["name"]
            .as_str()
            .unwrap_or_default()
            .contains("anonyme")
    );

    // The same opaque id everywhere, and the synergy keeps its quantities with a distance band.
    let full = app
        .get(&format!("/api/v1/synergies/{}", s.synergy_id))
        .await;
    let shown = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/synergies/{}", s.synergy_id),
        None,
        200,
    )
    .await;
    assert_eq!(shown.body["provider_actor_id"], opaque.as_str());
    assert_eq!(shown.body["receiver_actor_id"], s.open_id.as_str());
    assert_eq!(shown.body["receiver_name"], OPEN_NAME);
    // The score is computed from the commune centroid, not the site (security::anonymity).
    assert!(
        shown.body["score"]
            .as_f64()
            .is_some_and(|x| (0.0..=1.0).contains(&x))
    );
    assert_eq!(shown.body["quantity"], full.body["quantity"]);
    assert_eq!(shown.body["class"], full.body["class"]);
    assert!(shown.body.get("distance_km").is_none());
    assert_eq!(shown.body["distance_band"], "0–5 km");
    let again = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    assert_eq!(again.body["id"], opaque.as_str(), "stable across requests");
    // The actor consents: partners see it as it is.
    app.patch(
        &format!("/api/v1/actors/{}", s.secret_id),
        &json!({"share_with_partners": true}),
    )
    .await;
    let open = expect(
        &app,
        key,
        Method::GET,
        &format!("/api/v1/actors/{}", s.secret_id),
        None,
        200,
    )
    .await;
    assert_eq!(open.body["name"], SECRET_NAME);
    assert_eq!(open.body["id"], s.secret_id.as_str());
}
