//! Roles, public reading and territory scopes: who may read, write and administer, and where.

use super::*;

#[actix_web::test]
async fn roles_decide_who_reads_writes_and_administers() {
    let app = spawn_app().await;
    let partner = app.key("portail", Role::Partner, &[]);
    let facilitator = app.key("animatrice", Role::Facilitator, &[]);
    let body = actor("Scierie", "21231");

    expect(
        &app,
        Some(&partner),
        Method::GET,
        "/api/v1/actors",
        None,
        200,
    )
    .await;
    expect(
        &app,
        Some(&partner),
        Method::POST,
        "/api/v1/actors",
        Some(&body),
        403,
    )
    .await;
    let created = expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/actors",
        Some(&body),
        201,
    )
    .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/actors/{id}");
    expect(
        &app,
        Some(&partner),
        Method::PATCH,
        &path,
        Some(&json!({"name": "X"})),
        403,
    )
    .await;
    expect(&app, Some(&partner), Method::DELETE, &path, None, 403).await;
    // Partners may ask the ad-hoc match (it stores nothing).
    let adhoc = json!({"kind": "offer", "ewc_code": "03 01 05", "lat": 47.32, "lng": 5.04});
    let asked = app
        .call(Some(&partner), Method::POST, "/api/v1/match", Some(&adhoc))
        .await;
    assert_ne!(asked.status, 401);
    assert_ne!(asked.status, 403, "{}", asked.text);
    // Keys and the audit log are for admins.
    expect(
        &app,
        Some(&facilitator),
        Method::GET,
        "/api/v1/keys",
        None,
        403,
    )
    .await;
    expect(
        &app,
        Some(&facilitator),
        Method::POST,
        "/api/v1/keys",
        Some(&json!({"name": "x", "role": "admin"})),
        403,
    )
    .await;
    expect(
        &app,
        Some(&partner),
        Method::GET,
        "/api/v1/audit",
        None,
        403,
    )
    .await;
    expect(&app, Some(&facilitator), Method::DELETE, &path, None, 204).await;
}

#[actix_web::test]
async fn public_read_opens_reads_only() {
    let app = spawn_with(|s| s.auth.public_read = true).await;
    expect(&app, None, Method::GET, "/api/v1/actors", None, 200).await;
    expect(&app, None, Method::GET, "/api/v1/territories/21", None, 200).await;
    expect(
        &app,
        None,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("A", "21231")),
        401,
    )
    .await;
    expect(&app, None, Method::GET, "/api/v1/keys", None, 401).await;
    // A wrong key is still refused: public reading is for requests without one.
    expect(
        &app,
        Some("sym_wrong"),
        Method::GET,
        "/api/v1/actors",
        None,
        401,
    )
    .await;
}

#[actix_web::test]
async fn territory_scopes_limit_what_a_facilitator_sees_and_changes() {
    let app = spawn_app().await;
    let dijon = app.create_actor(actor("Scierie de Dijon", "21231")).await;
    let nevers = app.create_actor(actor("Scierie de Nevers", "58194")).await;
    let cote_dor = app.key("animatrice 21", Role::Facilitator, &["21"]);
    let key = Some(cote_dor.as_str());

    // Writes inside the département pass, outside are refused, and moving an actor out too.
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Beaune", "21054")),
        201,
    )
    .await;
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/actors",
        Some(&actor("Mâcon", "71270")),
        403,
    )
    .await;
    let outside = format!("/api/v1/actors/{nevers}");
    expect(&app, key, Method::GET, &outside, None, 403).await;
    expect(
        &app,
        key,
        Method::PATCH,
        &outside,
        Some(&json!({"name": "X"})),
        403,
    )
    .await;
    expect(&app, key, Method::DELETE, &outside, None, 403).await;
    let move_out = json!({"commune_insee": "58194"});
    expect(
        &app,
        key,
        Method::PATCH,
        &format!("/api/v1/actors/{dijon}"),
        Some(&move_out),
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::PATCH,
        &format!("/api/v1/actors/{dijon}"),
        Some(&json!({"name": "Scierie D"})),
        200,
    )
    .await;
    let sawdust =
        json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05"});
    expect(
        &app,
        key,
        Method::POST,
        &format!("{outside}/resources"),
        Some(&sawdust),
        403,
    )
    .await;

    // Lists default to the key's territory; a territory outside it, or above it, is refused.
    let listed = expect(&app, key, Method::GET, "/api/v1/actors", None, 200).await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"Scierie D") && names.contains(&"Beaune"),
        "{names:?}"
    );
    assert!(!names.contains(&"Scierie de Nevers"), "{names:?}");
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=21231",
        None,
        200,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=R27",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/resources?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/synergies?territory=58",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/58/kpis",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/58/graph",
        None,
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/21/graph",
        None,
        200,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/territories/nowhere-zone/graph",
        None,
        404,
    )
    .await;
    // A zone inside the département may be drawn; one reaching outside may not.
    let inside = json!({"code": "Z-DIJON", "name": "Dijon", "communes": ["21231", "21054"]});
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/territories",
        Some(&inside),
        201,
    )
    .await;
    let across = json!({"code": "Z-ACROSS", "name": "Across", "communes": ["21231", "58194"]});
    expect(
        &app,
        key,
        Method::POST,
        "/api/v1/territories",
        Some(&across),
        403,
    )
    .await;
    expect(
        &app,
        key,
        Method::GET,
        "/api/v1/actors?territory=Z-DIJON",
        None,
        200,
    )
    .await;

    // An import touching another département stores nothing.
    let csv = "actor_name,siret,naf_code,commune_insee,kind,category,label,ewc_code\n\
               Fonderie,,24.51Z,21231,offer,material,Sables,10 09 08\n\
               Verrerie,,23.13Z,58194,offer,material,Calcin,10 11 12\n";
    let refused = app
        .send_raw(
            app.client
                .post(app.url("/api/v1/import"))
                .bearer_auth(&cote_dor)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("lines 3"),
        "{}",
        refused.text
    );
    let all = app.get("/api/v1/actors?q=Fonderie").await;
    assert_eq!(
        all.body["items"].as_array().map(Vec::len),
        Some(0),
        "nothing imported"
    );
}

#[actix_web::test]
async fn a_scoped_key_lists_only_the_zones_inside_its_territories() {
    let app = spawn_app().await;
    for zone in [
        json!({"code": "Z-DIJON", "name": "Dijon", "communes": ["21231"]}),
        json!({"code": "Z-NEVERS", "name": "Nevers", "communes": ["58194"]}),
        json!({"code": "Z-DEUX", "name": "Dijon et Nevers", "communes": ["21231", "58194"]}),
    ] {
        assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    }
    let codes = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mut codes: Vec<String> = reply.body["items"]
            .as_array()
            .map(|zones| {
                zones
                    .iter()
                    .filter_map(|z| z["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        codes.sort();
        codes
    };
    assert_eq!(
        codes(app.get("/api/v1/territories").await),
        ["Z-DEUX", "Z-DIJON", "Z-NEVERS"]
    );
    let of_21 = app.key("facilitateur 21", Role::Facilitator, &["21"]);
    assert_eq!(
        codes(
            app.call(Some(&of_21), Method::GET, "/api/v1/territories", None)
                .await
        ),
        ["Z-DIJON"]
    );
    // The zones it does not list, it cannot open either.
    let hidden = app
        .call(
            Some(&of_21),
            Method::GET,
            "/api/v1/territories/Z-DEUX",
            None,
        )
        .await;
    assert_eq!(hidden.status, 403, "{}", hidden.text);
}
