//! The console over HTTP, without a browser: what a browser would receive.

use symbiose::auth::Role;

use crate::helpers::{spawn_app, spawn_with};
use crate::support::{
    Console, HIDDEN_NAME, HIDDEN_SIRET, OPEN_NAME, first_synergy, fixture, hidden,
};

#[actix_web::test]
async fn root_redirects_and_pages_need_a_session() {
    let app = spawn_app().await;
    let mut console = Console::new(&app);
    let root = console.get("/").await;
    assert_eq!(root.status, 302);
    assert_eq!(root.location.as_deref(), Some("/console"));
    for path in [
        "/console",
        "/console/territories/21",
        "/console/synergies",
        "/console/pipeline",
        "/console/import",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/console/login?next=")),
            "{path}: {:?}",
            page.location
        );
    }
    // A forged cookie is no session.
    console
        .cookies
        .insert("symbiose_console".into(), "00ff".repeat(40));
    assert_eq!(console.get("/console/pipeline").await.status, 303);
}

#[actix_web::test]
async fn sign_in_sets_a_strict_http_only_session_and_checks_csrf_and_key() {
    let app = spawn_app().await;
    let key = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let mut console = Console::new(&app);
    let form = console.get("/console/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"<html lang="fr">"#));
    assert!(form.body.contains(r#"<label for="key">"#) && form.body.contains(r#"name="key""#));
    let token = form.csrf();
    assert_eq!(token.len(), 64);

    // Wrong CSRF token: no session.
    let forged = console
        .post(
            "/console/login",
            &[("key", &key), ("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_ne!(forged.status, 303);
    assert!(!console.cookies.contains_key("symbiose_console"));
    // Unknown key: 401 and no session.
    let token = hidden(&forged.body, "csrf").unwrap_or(token);
    let bad = console
        .post("/console/login", &[("key", "sym_nope"), ("csrf", &token)])
        .await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("Clé inconnue ou révoquée"));
    assert!(!console.cookies.contains_key("symbiose_console"));
    // The right key: a session cookie, HttpOnly and SameSite=Strict, that does not show the key.
    let token = bad.csrf();
    let ok = console
        .post(
            "/console/login",
            &[
                ("key", &key),
                ("csrf", &token),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/console"), "no open redirect");
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("symbiose_console="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(!session.contains(&key) && !session.contains(&key[4..]));

    // A key limited to one territory goes straight to it.
    let start = console.get("/console").await;
    assert_eq!(start.location.as_deref(), Some("/console/territories/21"));
    let home = console.get("/console/territories/21").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Côte-d&#39;Or"), "{}", home.body);

    // Sign-out needs the CSRF token, then ends the session.
    let refused = console.post("/console/logout", &[("csrf", "x")]).await;
    assert_eq!(refused.status, 403);
    let csrf = home.csrf();
    let out = console.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(console.get("/console/territories/21").await.status, 303);

    // A revoked key ends its sessions at once.
    let mut again = Console::new(&app);
    again.sign_in(&key).await;
    assert_eq!(again.get("/console/territories/21").await.status, 200);
    let keys = app.get("/api/v1/keys").await;
    let id = keys.body["items"]
        .as_array()
        .or(keys.body.as_array())
        .and_then(|items| {
            items
                .iter()
                .find(|k| k["name"] == "Animatrice 21")
                .and_then(|k| k["id"].as_str())
        })
        .expect("key listed")
        .to_owned();
    assert_eq!(app.delete(&format!("/api/v1/keys/{id}")).await.status, 200);
    assert_eq!(again.get("/console/territories/21").await.status, 303);
}

#[actix_web::test]
async fn scopes_and_anonymisation_apply_as_in_the_api() {
    let app = spawn_app().await;
    let (sawmill, _, _) = fixture(&app).await;
    let facilitator = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let partner = app.key("Portail", Role::Partner, &[]);

    let mut f = Console::new(&app);
    f.sign_in(&facilitator).await;
    // Her territory, in clear.
    let list = f.get("/console/synergies?territory=21").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(HIDDEN_NAME) && list.body.contains(OPEN_NAME));
    let listed = f.get("/console/territories/21/actors").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains(HIDDEN_NAME) && listed.body.contains(OPEN_NAME));
    assert!(!listed.body.contains("Fonderie de Nevers"));
    let by_naf = f.get("/console/territories/21/actors?naf=35").await;
    assert!(by_naf.body.contains(OPEN_NAME) && !by_naf.body.contains(HIDDEN_NAME));
    let actor = f.get(&format!("/console/actors/{sawmill}")).await;
    assert_eq!(actor.status, 200);
    assert!(actor.body.contains(HIDDEN_SIRET));
    // Outside her territory: the API's 403.
    for path in [
        "/console/territories/58",
        "/console/territories/58/map",
        "/console/synergies?territory=58",
        "/console/pipeline?territory=58",
    ] {
        let page = f.get(path).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(!page.body.contains("Fonderie de Nevers"));
    }

    // A partner reads everything with the sawmill anonymous: no name, no SIRET, anywhere.
    let mut p = Console::new(&app);
    p.sign_in(&partner).await;
    let mut pages = Vec::new();
    for path in [
        "/console?q=dijon".to_owned(),
        "/console/territories/21".to_owned(),
        "/console/territories/21/map".to_owned(),
        "/console/synergies?territory=21".to_owned(),
        "/console/pipeline?territory=21".to_owned(),
        "/console/territories/21/actors".to_owned(),
        "/console/territories/21/export?format=geojson".to_owned(),
        "/console/territories/21/export?format=graphml".to_owned(),
    ] {
        let page = p.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        pages.push((path, page.body));
    }
    let synergy = first_synergy(&app, "21").await;
    let id = synergy["id"].as_str().expect("synergy id");
    let detail = p.get(&format!("/console/synergies/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    pages.push(("synergy".into(), detail.body));
    for (path, body) in &pages {
        assert!(!body.contains(HIDDEN_NAME), "{path} shows the hidden name");
        assert!(
            !body.contains("Scierie Discr"),
            "{path} shows the hidden name"
        );
        assert!(!body.contains(HIDDEN_SIRET), "{path} shows the SIRET");
        assert!(!body.contains(&sawmill), "{path} shows the real id");
    }
    assert!(pages.iter().any(|(_, b)| b.contains(OPEN_NAME)));
    assert!(pages.iter().any(|(_, b)| b.contains("anonyme")));
    // The sawmill's own page is not open to the partner under its real id.
    let real = p.get(&format!("/console/actors/{sawmill}")).await;
    assert!(!real.body.contains(HIDDEN_NAME) && !real.body.contains(HIDDEN_SIRET));
    if real.status == 200 {
        assert!(real.body.contains("Acteur anonymisé"), "{}", real.body);
    }
    // On the map the hidden actor is a point without a link; the boiler house keeps its link.
    let links = |body: &str| body.matches(r#"<a href="/console/actors/"#).count();
    let partner_map = p.get("/console/territories/21/map").await;
    let facilitator_map = f.get("/console/territories/21/map").await;
    assert_eq!(links(&facilitator_map.body), 2, "{}", facilitator_map.body);
    assert_eq!(links(&partner_map.body), 1);
    // Partners read only: no form to move a synergy or declare a resource.
    assert!(!pages.iter().any(|(_, b)| b.contains("/status\"")));
}

#[actix_web::test]
async fn the_board_moves_a_synergy_with_the_api_rules_and_history() {
    let app = spawn_app().await;
    fixture(&app).await;
    let key = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let mut f = Console::new(&app);
    f.sign_in(&key).await;
    let synergy = first_synergy(&app, "21").await;
    let id = synergy["id"].as_str().expect("id").to_owned();
    let board = f.get("/console/pipeline?territory=21").await;
    assert_eq!(board.status, 200, "{}", board.body);
    assert!(board.body.contains(&format!(r#"data-synergy="{id}""#)));
    let csrf = board.csrf();
    let back = "/console/pipeline?territory=21";
    let path = format!("/console/synergies/{id}/status");

    // Without the CSRF token: refused, nothing changed.
    let forged = f
        .post(&path, &[("status", "proposed"), ("back", back)])
        .await;
    assert_eq!(forged.status, 403);
    let api = app.get(&format!("/api/v1/synergies/{id}")).await;
    assert_eq!(api.body["status"], "detected");

    // An illegal transition: the API's 409, shown on the board, nothing changed.
    let illegal = f
        .post(
            &path,
            &[("csrf", &csrf), ("status", "implemented"), ("back", back)],
        )
        .await;
    assert_eq!(illegal.status, 303);
    let location = illegal.location.expect("back to the board");
    assert_eq!(location, back);
    let shown = f.get(&location).await;
    assert!(shown.body.contains("role=\"alert\""), "{}", shown.body);
    assert!(
        shown.body.contains("implemented"),
        "the API's 409 names the transition"
    );
    // Shown once; a link cannot put text on the page.
    let again = f.get(&format!("{back}&error=Envoyez+votre+cl%C3%A9")).await;
    assert!(!again.body.contains("role=\"alert\"") && !again.body.contains("Envoyez votre"));
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.body["status"],
        "detected"
    );

    // detected → proposed with a comment: the API's status and history say so.
    let moved = f
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("status", "proposed"),
                ("comment", "appel du 12/03"),
                ("back", back),
            ],
        )
        .await;
    assert_eq!(moved.status, 303);
    assert!(
        moved
            .location
            .as_deref()
            .is_some_and(|l| l.contains("done="))
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.body["status"],
        "proposed"
    );
    let history = app.get(&format!("/api/v1/synergies/{id}/history")).await;
    let entry = &history.body["items"][0];
    assert_eq!(entry["from"], "detected");
    assert_eq!(entry["to"], "proposed");
    assert_eq!(entry["comment"], "appel du 12/03");
    assert_eq!(entry["changed_by"], "Animatrice 21");
    // The change is in the audit log under the facilitator's key, as an API write.
    let audit = app.get("/api/v1/audit?limit=50").await;
    assert!(
        audit.body["items"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| {
                r["method"] == "PATCH"
                    && r["key_name"] == "Animatrice 21"
                    && r["entity_id"] == id.as_str()
            })),
        "{}",
        audit.text
    );
    // Rejecting needs a reason (the API's rule), given here.
    let rejected = f
        .post(
            &path,
            &[("csrf", &csrf), ("status", "rejected"), ("back", back)],
        )
        .await;
    assert_eq!(rejected.location.as_deref(), Some(back));
    let shown = f.get(back).await;
    assert!(shown.body.contains("role=\"alert\"") && shown.body.contains("reason"));
    let card = f.get(&format!("/console/synergies/{id}")).await;
    assert!(card.body.contains("appel du 12/03"));
    assert!(card.body.contains("proposée"));
}

#[actix_web::test]
async fn the_offer_form_shows_the_api_messages_next_to_the_fields_then_the_matches() {
    let app = spawn_app().await;
    let (_, boiler, _) = fixture(&app).await;
    let key = app.key("Animatrice 21", Role::Facilitator, &["21"]);
    let mut f = Console::new(&app);
    f.sign_in(&key).await;
    let page = f.get(&format!("/console/actors/{boiler}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();
    let path = format!("/console/actors/{boiler}/resources");
    let bad = f
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("kind", "offer"),
                ("category", "material"),
                ("label", ""),
                ("ewc_code", "99 99 99"),
                ("quantity", "-3"),
                ("unit", "t"),
                ("period", "year"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    for field in ["label", "ewc_code", "quantity"] {
        assert!(
            bad.body.contains(&format!(r#"id="{field}-error""#)),
            "no message next to {field}"
        );
    }
    assert!(
        bad.body.contains(r#"value="99 99 99""#),
        "the form keeps what was typed"
    );
    let before = app.get(&format!("/api/v1/actors/{boiler}/resources")).await;
    assert_eq!(before.body["items"].as_array().map(Vec::len), Some(1));

    let good = f
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("kind", "offer"),
                ("category", "material"),
                ("label", "Cendres de chaudière"),
                ("ewc_code", "10 01 01"),
                ("quantity", "120"),
                ("unit", "t"),
                ("period", "year"),
            ],
        )
        .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let location = good.location.expect("back to the actor");
    let shown = f.get(&location).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("Cendres de chaudière"));
    assert!(shown.body.contains("Ressource déclarée"));
    let after = app.get(&format!("/api/v1/actors/{boiler}/resources")).await;
    assert_eq!(after.body["items"].as_array().map(Vec::len), Some(2));
    // Its need lists the sawmill's offer among its matches.
    assert!(
        shown.body.contains("Sciures de hêtre"),
        "matches listed: {}",
        shown.body
    );

    // Code search as you type: the API's accent-insensitive search through the session.
    let codes = f.get("/console/codes/ewc?q=sciure").await;
    assert_eq!(codes.status, 200);
    assert!(codes.body.contains("03 01 05"), "{}", codes.body);
    let naf = f.get("/console/codes/naf?q=sciage").await;
    assert!(naf.body.contains("16.10"), "{}", naf.body);
}

#[actix_web::test]
async fn the_import_page_lists_bad_rows_and_stores_nothing_on_error() {
    let app = spawn_app().await;
    let key = app.key("Animatrice", Role::Facilitator, &[]);
    let mut f = Console::new(&app);
    f.sign_in(&key).await;
    let page = f.get("/console/import").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let bad = "actor_name,naf_code,commune_insee,kind,category,label\n\
               Atelier A,16.10A,21231,offer,material,Chutes\n\
               Atelier B,99.99Z,21231,offer,material,Chutes\n\
               Atelier C,16.10A,00000,offer,nothing,Chutes\n";
    let refused = f.post_multipart("/console/import", &csrf, bad).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("<table class=\"errors\">"));
    assert!(refused.body.contains("naf_code") && refused.body.contains("category"));
    assert!(refused.body.contains("<td>3</td>") && refused.body.contains("<td>4</td>"));
    let actors = app.get("/api/v1/actors").await;
    assert_eq!(actors.body["items"].as_array().map(Vec::len), Some(0));

    let good = std::fs::read_to_string("examples/actors.csv").expect("example");
    let ok = f.post_multipart("/console/import", &csrf, &good).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("Import réussi"));
    let actors = app.get("/api/v1/actors").await;
    assert!(
        actors.body["items"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // Without the token nothing is imported either.
    let forged = f.post_multipart("/console/import", "nope", &good).await;
    assert_eq!(forged.status, 403);
}

#[actix_web::test]
async fn english_switch_and_accessible_markup() {
    let app = spawn_app().await;
    fixture(&app).await;
    let key = app.key("Animatrice", Role::Facilitator, &[]);
    let mut f = Console::new(&app);
    f.sign_in(&key).await;
    let switch = f
        .get("/console/lang?to=en&next=/console/territories/21")
        .await;
    assert_eq!(switch.status, 303);
    assert_eq!(switch.location.as_deref(), Some("/console/territories/21"));
    let home = f.get("/console/territories/21").await;
    assert!(home.body.contains(r#"<html lang="en">"#));
    assert!(home.body.contains("Synergy funnel"));
    let evil = f.get("/console/lang?to=fr&next=//evil.example/").await;
    assert_eq!(evil.location.as_deref(), Some("/console"));
    let home = f.get("/console/territories/21").await;
    assert!(home.body.contains(r#"<html lang="fr">"#));
    // Every input, select and textarea of the forms has a label.
    let actor_id = app.get("/api/v1/actors?territory=21").await.body["items"][0]["id"]
        .as_str()
        .expect("actor")
        .to_owned();
    for path in [
        "/console/synergies?territory=21".to_owned(),
        format!("/console/actors/{actor_id}"),
        "/console/import".to_owned(),
        "/console/pipeline?territory=21".to_owned(),
    ] {
        let page = f.get(&path).await;
        for (i, _) in page.body.match_indices("<input id=\"") {
            let id_start = i + "<input id=\"".len();
            let id = &page.body[id_start..id_start + page.body[id_start..].find('"').unwrap_or(0)];
            assert!(
                page.body.contains(&format!(r#"for="{id}""#)),
                "{path}: input {id} has no label"
            );
        }
        assert!(
            !page.body.contains("<input name="),
            "{path}: an input without id"
        );
    }
}

/// Page weights and server times on the Bourgogne demo (printed; weights asserted < 300 KB).
#[actix_web::test]
async fn pages_on_the_demo_weigh_under_300_kb() {
    let app = spawn_with(|_| {}).await;
    symbiose::cli::load_demo(&app.app).expect("demo loads");
    let key = app.key("Animatrice", Role::Facilitator, &[]);
    let mut f = Console::new(&app);
    f.sign_in(&key).await;
    let actor = app.get("/api/v1/actors?territory=21&limit=1").await.body["items"][0]["id"]
        .as_str()
        .expect("actor")
        .to_owned();
    let synergy = first_synergy(&app, "21").await["id"]
        .as_str()
        .expect("synergy")
        .to_owned();
    // Warm the detection once (its first build is not a page's cost).
    f.get("/console/synergies?territory=21").await;
    for path in [
        "/console/territories/27-BOURGOGNE".to_owned(),
        "/console/territories/R27".to_owned(),
        "/console/territories/21".to_owned(),
        "/console/territories/27-BOURGOGNE/map".to_owned(),
        "/console/territories/21/map".to_owned(),
        "/console/territories/21/actors".to_owned(),
        "/console/synergies?territory=21".to_owned(),
        format!("/console/synergies/{synergy}"),
        "/console/pipeline?territory=27-BOURGOGNE".to_owned(),
        format!("/console/actors/{actor}"),
        "/console/import".to_owned(),
    ] {
        let page = f.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        println!(
            "console page {path}: {} bytes, {} ms",
            page.body.len(),
            page.elapsed.as_millis()
        );
        assert!(
            page.body.len() < 300 * 1024,
            "{path}: {} bytes",
            page.body.len()
        );
    }
    let home = f.get("/console/territories/27-BOURGOGNE").await;
    assert!(home.body.contains("<svg class=\"sankey\""), "Sankey drawn");
    assert!(home.body.contains("DMC"));
    let map = f.get("/console/territories/21/map").await;
    assert!(map.body.contains("<svg class=\"map\"") && map.body.contains("<circle"));
}

/// The console's templates and assets are compiled into the binary: the image must build them.
#[test]
fn the_dockerfile_copies_the_console_sources() {
    let dockerfile = std::fs::read_to_string("Dockerfile").expect("Dockerfile");
    let ignored = std::fs::read_to_string(".dockerignore").expect(".dockerignore");
    for dir in ["templates", "assets"] {
        assert!(
            dockerfile.contains(&format!("COPY {dir} ./{dir}")),
            "the Dockerfile copies {dir}/"
        );
        assert!(
            !ignored
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == dir),
            ".dockerignore leaves {dir}/ in the context"
        );
    }
}

#[actix_web::test]
async fn the_territory_search_finds_custom_zones() {
    let app = spawn_app().await;
    let zone = serde_json::json!({"code": "27-BOURGOGNE", "name": "Bourgogne (zone)", "departements": ["21", "58", "71", "89"]});
    assert_eq!(app.post("/api/v1/territories", &zone).await.status, 201);
    let facilitator = app.key("Animatrice", Role::Facilitator, &[]);
    let mut f = Console::new(&app);
    f.sign_in(&facilitator).await;
    let page = f.get("/console?q=bourgogne").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("/console/territories/27-BOURGOGNE"),
        "{}",
        page.body
    );
}
