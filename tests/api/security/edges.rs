//! Edges an attacker or a broken client reaches: bodies with trailing garbage, absurd quantities,
//! NaN filters, huge query strings, control and bidirectional characters, a full disk, a database
//! that cannot be opened, and concurrent writers on SQLite.

use reqwest::Method;
use serde_json::{Value, json};
use symbiose::auth::Role;

use crate::helpers::*;

fn assert_problem(reply: &Reply, status: u16, context: &str) {
    assert_eq!(reply.status, status, "{context}: {}", reply.text);
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "{context}: content type {}",
        reply.content_type
    );
    assert_eq!(reply.body["status"], status, "{context}: {}", reply.text);
}

async fn actor_count(app: &TestApp) -> usize {
    let reply = app.get("/api/v1/actors?limit=500").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["items"].as_array().map_or(0, Vec::len)
}

/// Sends `body` as is, labelled JSON, with the admin key.
async fn send_json_text(app: &TestApp, method: Method, path: &str, body: String) -> Reply {
    app.send(
        app.client
            .request(method, app.url(path))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[actix_web::test]
async fn trailing_garbage_after_a_json_body_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Scierie du Morvan")).await;
    let before = actor_count(&app).await;
    let body = format!("{} junk{{{{{{", actor_body("Intrus"));
    for (method, path) in [
        (Method::POST, "/api/v1/actors".to_owned()),
        (Method::PATCH, format!("/api/v1/actors/{actor}")),
        (Method::PUT, format!("/api/v1/actors/{actor}")),
    ] {
        let reply = send_json_text(&app, method.clone(), &path, body.clone()).await;
        assert_problem(&reply, 400, &format!("{method} {path}"));
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("trailing")),
            "{}",
            reply.text
        );
    }
    // Two documents in a row are garbage too.
    let twice = format!("{0}{0}", actor_body("Deux fois"));
    let reply = send_json_text(&app, Method::POST, "/api/v1/actors", twice).await;
    assert_problem(&reply, 400, "two documents");
    assert_eq!(actor_count(&app).await, before);
    let stored = app.get(&format!("/api/v1/actors/{actor}")).await;
    assert_eq!(stored.body["name"], "Scierie du Morvan");
    // Whitespace after the document is fine.
    let spaced = format!("{}\n  \n", actor_body("Espacé"));
    let reply = send_json_text(&app, Method::POST, "/api/v1/actors", spaced).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[actix_web::test]
async fn absurd_quantities_are_refused_so_impacts_stay_numbers() {
    let app = spawn_app().await;
    let actor = app.create_actor(actor_body("Fonderie")).await;
    for value in [1e308, 1e30, 2e10] {
        let reply = app
            .post(
                &format!("/api/v1/actors/{actor}/resources"),
                &json!({"kind": "offer", "category": "material", "label": "Sable de fonderie",
                        "ewc_code": "10 09 08",
                        "quantity": {"value": value, "unit": "t", "period": "year"}}),
            )
            .await;
        assert_field_error(&reply, "quantity.value");
    }
    // A large real flow passes, and its impacts are numbers.
    let big = app
        .create_resource(
            &actor,
            json!({"kind": "offer", "category": "material", "label": "Laitier",
                   "ewc_code": "10 02 02",
                   "quantity": {"value": 5e6, "unit": "t", "period": "year"}}),
        )
        .await;
    assert_eq!(big["quantity"]["value"], 5e6);
}

#[actix_web::test]
async fn nan_and_out_of_range_score_filters_are_named() {
    let app = spawn_app().await;
    for path in ["hubs", "chains", "graph"] {
        for bad in ["NaN", "nan", "inf", "-1", "1.5"] {
            let reply = app
                .get(&format!("/api/v1/territories/21/{path}?min_score={bad}"))
                .await;
            assert_field_error(&reply, "min_score");
        }
        let reply = app
            .get(&format!("/api/v1/territories/21/{path}?min_score=0.5"))
            .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
}

#[actix_web::test]
async fn a_huge_query_string_gets_a_problem_document() {
    let app = spawn_app().await;
    let q = "a".repeat(20 * 1024);
    let reply = app.get(&format!("/api/v1/actors?q={q}")).await;
    assert_problem(&reply, 414, "20 KiB query");
    let reply = app
        .call(None, Method::GET, &format!("/api/v1/actors?q={q}"), None)
        .await;
    assert_problem(&reply, 414, "20 KiB query without a key");
    let reply = app
        .get(&format!("/api/v1/actors?q={}", "a".repeat(2000)))
        .await;
    assert_eq!(reply.status, 200, "a 2 KB query is fine: {}", reply.text);
}

#[actix_web::test]
async fn control_and_bidi_characters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for name in [
        "Scierie\u{202E}sinimoD",
        "Recyclage\u{2066}X\u{2069}",
        "Bip\u{0007}",
        "Ligne\nbrisée",
        "C1\u{0085}",
    ] {
        let reply = app.post("/api/v1/actors", &actor_body(name)).await;
        assert_field_error(&reply, "name");
    }
    let mut body = actor_body("Scierie honnête");
    body["contact"] = json!({"name": "M. \u{202E}evil"});
    let reply = app.post("/api/v1/actors", &body).await;
    assert_field_error(&reply, "contact.name");
    assert_eq!(actor_count(&app).await, 0, "nothing was stored");

    let actor = app.create_actor(actor_body("Scierie honnête")).await;
    let reply = app
        .post(
            &format!("/api/v1/actors/{actor}/resources"),
            &json!({"kind": "offer", "category": "material", "label": "Sciure\u{202E}",
                    "ewc_code": "03 01 05"}),
        )
        .await;
    assert_field_error(&reply, "label");
    let reply = app
        .post(
            "/api/v1/keys",
            &json!({"name": "portail\u{200F}", "role": "partner"}),
        )
        .await;
    assert_field_error(&reply, "name");
    // Accents, punctuation and line breaks in free text stay welcome.
    let ok = app
        .post(
            &format!("/api/v1/actors/{actor}/resources"),
            &json!({"kind": "offer", "category": "material", "label": "Sciure de chêne – sèche",
                    "description": "Ligne 1\nLigne 2\tcolonne", "ewc_code": "03 01 05"}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    // The same rule holds for the CSV import.
    let csv = "actor_ref,actor_name,naf_code,commune_insee,kind,category,label\nA1,\"Evil\u{202E}Corp\",16.10A,21231,offer,material,Sciure\n";
    let reply = app.post_csv("/api/v1/import", csv.to_owned()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(
        reply.text.contains("actor_name") || reply.text.contains("name"),
        "{}",
        reply.text
    );
}

fn using_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

#[actix_web::test]
async fn a_full_disk_answers_507_and_makes_the_service_not_ready() {
    if using_postgres() {
        // A full disk is simulated with SQLite's page limit; PostgreSQL's 53100 maps the same way.
        return;
    }
    let app = spawn_with(|s| s.database.pool_size = 1).await;
    let actor = app.create_actor(actor_body("Avant")).await;
    let ready = app.call(None, Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let set_limit = |limit: &str| {
        use diesel::RunQueryDsl;
        let mut conn = app.app.pool.get().expect("the one connection");
        diesel::sql_query(format!("PRAGMA max_page_count = {limit}"))
            .execute(&mut *conn)
            .expect("pragma");
    };
    // The file may not grow any more: as if the disk were full.
    {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            page_count: i64,
        }
        let mut conn = app.app.pool.get().expect("the one connection");
        let pages: Vec<Count> = diesel::sql_query("PRAGMA page_count")
            .load(&mut *conn)
            .expect("page count");
        drop(conn);
        set_limit(&pages[0].page_count.to_string());
    }
    let mut full = None;
    for i in 0..200 {
        let mut body = actor_body(&format!("Remplissage {i}"));
        body["address"] = json!("x".repeat(1000));
        let reply = app.post("/api/v1/actors", &body).await;
        if reply.status != 201 {
            full = Some(reply);
            break;
        }
    }
    let full = full.expect("the database refused to grow");
    assert_problem(&full, 507, "write on a full disk");
    let ready = app.call(None, Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["storage"], false);
    // Reads go on, and what was stored is intact.
    let read = app.get(&format!("/api/v1/actors/{actor}")).await;
    assert_eq!(read.status, 200, "{}", read.text);
    // Space again: ready again, writes again.
    set_limit("1073741823");
    let ready = app.call(None, Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    app.create_actor(actor_body("Après")).await;
}

#[actix_web::test]
async fn a_database_that_cannot_be_opened_fails_at_once_with_one_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    // A directory is not a database file.
    let error = symbiose::db::connect(&dir.path().display().to_string(), 4, 1000)
        .expect_err("a directory is refused");
    let message = error.to_string();
    assert!(message.contains("cannot"), "{message}");
    // Nothing listens on port 1.
    let error = symbiose::db::connect("postgres://nobody:secret@127.0.0.1:1/none", 4, 1000)
        .expect_err("an unreachable server is refused");
    let message = error.to_string();
    assert!(message.contains("cannot open the database"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password leaked: {message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn concurrent_writers_queue_instead_of_failing() {
    let app = spawn_app().await;
    let facilitator = app.key("animatrice", Role::Facilitator, &[]);
    let mut ids = Vec::new();
    for i in 0..120 {
        let id = app.create_actor(actor_body(&format!("Acteur {i}"))).await;
        app.create_resource(
            &id,
            json!({"kind": "offer", "category": "material", "label": "Sciure", "ewc_code": "03 01 05"}),
        )
        .await;
        ids.push(id);
    }
    // Eight clients at once: deletes, creates and updates interleaved.
    let mut tasks = Vec::new();
    for (worker, chunk) in ids.chunks(15).enumerate() {
        let chunk: Vec<String> = chunk.to_vec();
        let client = app.client.clone();
        let base = app.address.clone();
        let key = facilitator.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let mut statuses = Vec::new();
            for (i, id) in chunk.iter().enumerate() {
                let reply = client
                    .delete(format!("{base}/api/v1/actors/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("sent");
                statuses.push(("delete", reply.status().as_u16()));
                let reply = client
                    .post(format!("{base}/api/v1/actors"))
                    .bearer_auth(&key)
                    .json(&actor_body(&format!("Nouveau {worker}-{i}")))
                    .send()
                    .await
                    .expect("sent");
                statuses.push(("create", reply.status().as_u16()));
            }
            statuses
        }));
    }
    let mut refused = Vec::new();
    for task in tasks {
        for (what, status) in task.await.expect("task") {
            let expected = if what == "delete" { 204 } else { 201 };
            if status != expected {
                refused.push((what, status));
            }
        }
    }
    assert!(refused.is_empty(), "refused writes: {refused:?}");
    let listed: Value = app.get("/api/v1/actors?limit=500").await.body;
    assert_eq!(listed["items"].as_array().map_or(0, Vec::len), 120);
}
