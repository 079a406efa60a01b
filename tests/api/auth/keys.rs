//! API keys: refused without a valid one, revoked at once, validated; the `keys` command.

use super::*;

#[actix_web::test]
async fn requests_without_a_valid_key_are_refused_and_revocation_is_immediate() {
    let app = spawn_app().await;
    // Probes and the API document stay public.
    expect(&app, None, Method::GET, "/health/live", None, 200).await;
    expect(&app, None, Method::GET, "/api/v1/openapi.json", None, 200).await;

    let refused = expect(&app, None, Method::GET, "/api/v1/actors", None, 401).await;
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("API key")
    );
    let raw = app
        .client
        .get(app.url("/api/v1/actors"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        raw.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"symbiose\"")
    );
    expect(
        &app,
        Some("sym_not-a-key"),
        Method::GET,
        "/api/v1/actors",
        None,
        401,
    )
    .await;
    let bad_scheme = app
        .send_raw(
            app.client
                .get(app.url("/api/v1/actors"))
                .header("Authorization", "Basic abc"),
        )
        .await;
    assert_eq!(bad_scheme.status, 401);

    // A key created through the admin API works until it is revoked, then at once no more.
    let created = app
        .post(
            "/api/v1/keys",
            &json!({"name": "Portail régional", "role": "partner", "territories": ["21"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["key"]
        .as_str()
        .expect("key shown once")
        .to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["role"], "partner");
    assert_eq!(created.body["territories"], json!(["21"]));
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 200).await;

    let listed = app.get("/api/v1/keys").await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&key), "the key is never listed");
    assert!(
        !listed.text.contains(&key[4..]),
        "nor any part past its prefix"
    );
    assert!(
        listed
            .body
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["id"] == id.as_str()))
    );

    let revoked = app.delete(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string());
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 401).await;
    expect(
        &app,
        None,
        Method::DELETE,
        "/api/v1/keys/00000000-0000-0000-0000-000000000000",
        None,
        401,
    )
    .await;
    let unknown = app
        .delete("/api/v1/keys/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(unknown.status, 404);
}

#[actix_web::test]
async fn new_keys_are_validated_and_named_fields_reported() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/api/v1/keys",
            &json!({"name": " ", "role": "partner", "territories": ["21", "nowhere"]}),
        )
        .await;
    crate::helpers::assert_field_error(&bad, "name");
    crate::helpers::assert_field_error(&bad, "territories[1]");
    let bad_role = app
        .post("/api/v1/keys", &json!({"name": "x", "role": "superuser"}))
        .await;
    crate::helpers::assert_field_error(&bad_role, "role");
}

/// Runs the `symbiose` binary against the test app's database.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_symbiose"))
        .args(args)
        .env("SYMBIOSE_ENV", "test")
        .env("SYMBIOSE__DATABASE__URL", &app.app.settings.database.url)
        .output()
        .expect("the binary runs")
}

#[actix_web::test]
async fn the_keys_command_creates_lists_and_revokes() {
    let app = spawn_app().await;
    let created = cli(
        &app,
        &[
            "keys",
            "create",
            "--role",
            "partner",
            "--territory",
            "21",
            "--name",
            "Portail CLI",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(key.starts_with("sym_"), "{key}");
    expect(&app, Some(&key), Method::GET, "/api/v1/actors", None, 200).await;
    expect(
        &app,
        Some(&key),
        Method::GET,
        "/api/v1/actors?territory=58",
        None,
        403,
    )
    .await;

    let listed = cli(&app, &["keys", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("Portail CLI"))
        .unwrap_or_else(|| panic!("listed: {text}"));
    assert!(!text.contains(&key), "the key itself is never listed");
    assert!(
        line.contains("partner") && line.contains("active"),
        "{line}"
    );
    let id = line.split('\t').next().expect("id column").to_owned();

    let refused = cli(
        &app,
        &[
            "keys",
            "create",
            "--role",
            "partner",
            "--territory",
            "nowhere",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("territories[0]"));

    let revoked = cli(&app, &["keys", "revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // Another process revoked it: the server, which keeps the keys it checked, drops them when its
    // change follower sees the keys' counter move (every `database.change_poll_ms`, 200 ms).
    let started = std::time::Instant::now();
    loop {
        let status = app
            .send(
                app.client
                    .get(app.url("/api/v1/actors"))
                    .bearer_auth(key.clone()),
            )
            .await
            .status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "a key revoked by the CLI still works after {:?}",
            started.elapsed()
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
