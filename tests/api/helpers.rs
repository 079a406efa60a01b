//! Test harness: each test gets its own server on a free port and its own database — a fresh
//! SQLite file, or, when `TEST_DATABASE_URL` names a PostgreSQL server, a fresh database on it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use diesel::Connection;
use diesel::RunQueryDsl;
use serde_json::{Value, json};
use symbiose::auth::Role;
use symbiose::config::Settings;
use symbiose::reference::Reference;
use symbiose::startup::Application;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app: Application,
    /// An admin key: `get`, `post`… send it; `anonymous` and `with_key` requests choose their own.
    pub admin_key: String,
    /// Stops the HTTP server (`server.stop(true).await`).
    pub server: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database this app created, dropped with it (after `app`, whose pool goes
    /// first: fields drop in order).
    _database: Option<TestDatabase>,
}

/// A per-test PostgreSQL database, dropped when the test that created it ends (pass or panic), so
/// a run leaves no `symbiose_t_*` behind. `WITH (FORCE)` ends the connections that the server's
/// pool and the webhook worker may still hold.
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = diesel::PgConnection::establish(&self.admin_url).and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        });
        if let Err(e) = dropped {
            eprintln!("test database {} not dropped: {e}", self.name);
        }
    }
}

fn reference() -> Arc<Reference> {
    static REFERENCE: OnceLock<Arc<Reference>> = OnceLock::new();
    REFERENCE
        .get_or_init(|| {
            Arc::new(
                Reference::load(Path::new("../shared/reference")).expect("reference data loads"),
            )
        })
        .clone()
}

/// A database URL for one test: a new PostgreSQL database (with its guard) when
/// `TEST_DATABASE_URL` is set.
fn database_url(dir: &Path) -> (String, Option<TestDatabase>) {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(base) => {
            let name = format!("symbiose_t_{}", uuid::Uuid::new_v4().simple());
            let mut admin =
                diesel::PgConnection::establish(&base).expect("TEST_DATABASE_URL reachable");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create test database");
            // Keep the connection options (`?sslmode=disable…`) for the new database.
            let (address, options) = match base.split_once('?') {
                Some((address, options)) => (address, format!("?{options}")),
                None => (base.as_str(), String::new()),
            };
            let (server, _) = address
                .rsplit_once('/')
                .expect("TEST_DATABASE_URL ends with /database");
            let url = format!("{server}/{name}{options}");
            (
                url,
                Some(TestDatabase {
                    admin_url: base,
                    name,
                }),
            )
        }
        None => (dir.join("symbiose.db").display().to_string(), None),
    }
}

/// Test settings on a new database, and the guard that drops it (PostgreSQL).
pub fn test_settings(dir: &Path) -> (Settings, Option<TestDatabase>) {
    let mut settings =
        Settings::load_for(Path::new("config"), Some("test")).expect("test settings");
    let (url, database) = database_url(dir);
    settings.database.url = url;
    settings.reference.dir = "../shared/reference".into();
    (settings, database)
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut settings, database) = test_settings(dir.path());
    tweak(&mut settings);
    let mut app = spawn_from(settings, dir).await;
    app._database = database;
    app
}

/// A server with these settings (e.g. another one on the database of a stopped app, as after a
/// restart); `dir` lives as long as the app. The database stays the creator's to drop.
pub async fn spawn_from(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let app = Application::prepare_with(settings, reference()).expect("application starts");
    let admin_key = make_key(&app, "test admin", Role::Admin, &[]);
    let (server, port) = app.serve().expect("server binds");
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        app,
        admin_key,
        server: server_handle,
        _dir: dir,
        _database: None,
    }
}

/// Stores a key straight in the database and returns its secret.
pub fn make_key(app: &Application, name: &str, role: Role, territories: &[&str]) -> String {
    let mut conn = app.pool.get().expect("connection");
    let territories: Vec<String> = territories.iter().map(|t| t.to_string()).collect();
    symbiose::auth::create_key(&mut conn, &app.reference, name, role, &territories)
        .expect("key created")
        .secret
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends with the admin key.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.send_raw(request.bearer_auth(&self.admin_key)).await
    }

    /// Sends as given: no key unless the request carries one.
    pub async fn send_raw(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            location,
            body,
            text,
        }
    }

    /// A new key of this app.
    pub fn key(&self, name: &str, role: Role, territories: &[&str]) -> String {
        make_key(&self.app, name, role, territories)
    }

    /// `method path` with `key` (or without any key), JSON body when given.
    pub async fn call(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send_raw(request).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// A GET with the admin key and an `Accept-Language` header.
    pub async fn get_lang(&self, path: &str, accept_language: &str) -> Reply {
        self.send(
            self.client
                .get(self.url(path))
                .header("accept-language", accept_language),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.patch(self.url(path)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }

    pub async fn post_csv(&self, path: &str, csv: String) -> Reply {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await
    }

    /// Creates an actor and returns its id.
    pub async fn create_actor(&self, body: Value) -> String {
        let reply = self.post("/api/v1/actors", &body).await;
        assert_eq!(reply.status, 201, "create actor: {}", reply.text);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn create_resource(&self, actor: &str, body: Value) -> Value {
        let reply = self
            .post(&format!("/api/v1/actors/{actor}/resources"), &body)
            .await;
        assert_eq!(reply.status, 201, "create resource: {}", reply.text);
        reply.body
    }
}

/// A valid actor in Dijon (21231) with the given name.
pub fn actor_body(name: &str) -> Value {
    json!({"name": name, "naf_code": "16.10A", "commune_insee": "21231"})
}

/// Asserts a 422 problem+json that names `field`.
pub fn assert_field_error(reply: &Reply, field: &str) {
    assert_eq!(
        reply.status, 422,
        "expected 422 for {field}: {}",
        reply.text
    );
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "content type {}",
        reply.content_type
    );
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&field),
        "expected field {field} in {fields:?}"
    );
}
