//! The deployment files agree with the configuration, and the binary's start-up refusals are one
//! line naming the key (Docker itself is not available in CI: .ci/check-deploy lints the files).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use symbiose::config::Settings;

use crate::helpers::spawn_app;

fn compose() -> serde_yaml::Value {
    let text = std::fs::read_to_string("docker-compose.yml").expect("docker-compose.yml exists");
    serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML")
}

/// Production settings as the compose file's app container sees them (its secret set).
fn production() -> Settings {
    let vars: HashMap<String, String> = [(
        "SYMBIOSE__AUTH__ANONYMISATION_SECRET".to_owned(),
        "a-private-secret".to_owned(),
    )]
    .into();
    Settings::load_with_vars(Path::new("config"), Some("production"), Some(vars))
        .expect("production settings")
}

/// `${NAME:?message}`: compose refuses to start while NAME is unset or empty.
fn required_variable(value: &serde_yaml::Value) -> Option<&str> {
    let text = value.as_str()?;
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let (name, message) = inner.split_once(":?")?;
    (!message.trim().is_empty()).then_some(name)
}

#[test]
fn docker_compose_matches_production_settings() {
    let compose = compose();
    let services = &compose["services"];
    let db = &services["db"];
    let app = &services["app"];
    assert!(
        db["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres")),
        "db service runs PostgreSQL"
    );
    assert_eq!(
        app["build"].as_str(),
        Some("."),
        "app is built from the Dockerfile"
    );
    assert_eq!(
        app["environment"]["SYMBIOSE_ENV"].as_str(),
        Some("production")
    );
    assert!(Path::new("Dockerfile").is_file());

    let env = &db["environment"];
    let (user, name) = (
        env["POSTGRES_USER"].as_str().expect("POSTGRES_USER"),
        env["POSTGRES_DB"].as_str().expect("POSTGRES_DB"),
    );
    let production = production();
    // No password in the URL: libpq takes it from PGPASSWORD (below).
    assert_eq!(
        production.database.url,
        format!("postgres://{user}@db:5432/{name}")
    );
    let port = production.server.port;
    // Two replicas (at least) behind the proxy, which alone publishes the port and forwards to the
    // replicas' configured port.
    assert!(
        app["deploy"]["replicas"].as_u64().is_some_and(|n| n >= 2),
        "the app runs as several replicas"
    );
    assert!(
        app["ports"].is_null(),
        "replicas publish no host port (they would clash)"
    );
    let proxy = &services["proxy"];
    let ports: Vec<&str> = proxy["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        ports.iter().any(|p| p.ends_with(&format!(":{port}"))),
        "the proxy publishes the configured port {port}"
    );
    let conf_source = proxy["volumes"][0]["source"]
        .as_str()
        .expect("the proxy mounts its configuration");
    let conf = std::fs::read_to_string(conf_source).expect("the proxy configuration exists");
    assert!(
        conf.contains(&format!("server app:{port};")),
        "the proxy forwards to the replicas' port {port}"
    );
    assert!(conf.contains("X-Forwarded-For $proxy_add_x_forwarded_for"));
    assert!(
        !production.auth.trusted_proxies.is_empty(),
        "production believes the proxy's X-Forwarded-For for rate limits"
    );
}

#[test]
fn docker_compose_takes_its_secrets_from_the_environment() {
    let compose = compose();
    let db_env = &compose["services"]["db"]["environment"];
    let app_env = &compose["services"]["app"]["environment"];
    let password = required_variable(&db_env["POSTGRES_PASSWORD"])
        .expect("POSTGRES_PASSWORD is ${VAR:?message}, not written in the file");
    assert_eq!(
        required_variable(&app_env["PGPASSWORD"]),
        Some(password),
        "the app logs in with the database's password"
    );
    assert!(
        required_variable(&app_env["SYMBIOSE__AUTH__ANONYMISATION_SECRET"]).is_some(),
        "the anonymisation secret is required from the environment"
    );
    let text = std::fs::read_to_string("docker-compose.yml").expect("docker-compose.yml");
    assert!(
        text.contains("symbiose keys create"),
        "the first-key step is documented beside the service"
    );
}

#[test]
fn docker_compose_mounts_the_reference_data_and_probes_the_app() {
    let compose = compose();
    let app = &compose["services"]["app"];
    let production = production();
    let reference = app["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|v| v["target"].as_str() == Some(&production.reference.dir.display().to_string()))
        .expect("compose mounts a volume at reference.dir");
    assert_eq!(reference["type"].as_str(), Some("bind"));
    assert_eq!(reference["read_only"].as_bool(), Some(true));
    assert_eq!(
        reference["bind"]["create_host_path"].as_bool(),
        Some(false),
        "a missing host directory stops compose instead of mounting an empty one"
    );

    let test: Vec<&str> = app["healthcheck"]["test"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(test, ["CMD", "symbiose", "health"], "app healthcheck");
    let restart = app["restart"].as_str().unwrap_or("no");
    assert!(
        restart.starts_with("on-failure:"),
        "a failing start is retried a bounded number of times, not forever: {restart}"
    );
}

#[test]
fn the_dockerfile_builds_from_what_it_copies() {
    let dockerfile = std::fs::read_to_string("Dockerfile").expect("Dockerfile");
    let ignored: Vec<String> = std::fs::read_to_string(".dockerignore")
        .expect(".dockerignore exists")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for heavy in ["target", ".git", "data"] {
        assert!(
            ignored.iter().any(|i| i == heavy),
            ".dockerignore leaves out {heavy}"
        );
    }
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    assert!(stages[0].ends_with(" AS build"), "{}", stages[0]);

    // Every source the build stage copies exists and is in the build context.
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().skip(1).collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for source in &copied {
        assert!(Path::new(source).exists(), "COPY {source}: missing");
        assert!(
            !ignored.iter().any(|i| i == source),
            "COPY {source}: left out by .dockerignore"
        );
    }
    // What the crate reads at compile time: embedded migrations and knowledge files, the build
    // script, and the bench target Cargo.toml declares.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "migrations",
        "knowledge",
        "benches",
        "config",
    ] {
        assert!(copied.contains(&needed), "the Dockerfile copies {needed}");
    }
    assert!(dockerfile.contains("HEALTHCHECK"), "image healthcheck");
    assert!(
        dockerfile.contains("CMD [\"symbiose\", \"serve\"]"),
        "the image serves"
    );
}

/// Runs the `symbiose` binary with the test settings and `vars`.
fn symbiose(args: &[&str], vars: &[(&str, &str)]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_symbiose"))
        .args(args)
        .env("SYMBIOSE_ENV", "test")
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    (output, started.elapsed())
}

/// The process failed with one line on stderr naming `key`; returns that line.
fn one_line_failure(output: &Output, key: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert!(!output.status.success(), "should fail: {stderr}");
    assert_ne!(output.status.code(), Some(101), "a panic: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(key), "names {key}: {stderr}");
    stderr
}

#[test]
fn a_database_url_of_another_kind_stops_the_start() {
    let (output, _) = symbiose(
        &["migrate"],
        &[(
            "SYMBIOSE__DATABASE__URL",
            "mysql://root:hunter2@db/symbiose",
        )],
    );
    let line = one_line_failure(&output, "database.url");
    assert!(!line.contains("hunter2"), "password shown: {line}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("migrations applied"),
        "nothing was migrated"
    );
}

#[test]
fn an_unknown_setting_stops_the_start() {
    let (output, _) = symbiose(&["migrate"], &[("SYMBIOSE__DATABASE__URLL", "x.db")]);
    one_line_failure(&output, "urll");
}

#[test]
fn an_unreachable_database_fails_in_one_line_within_two_seconds() {
    let (output, took) = symbiose(
        &["migrate"],
        &[(
            "SYMBIOSE__DATABASE__URL",
            "postgres://nobody:secret@127.0.0.1:1/none",
        )],
    );
    let line = one_line_failure(&output, "database.url");
    assert!(!line.contains("secret"), "password shown: {line}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn an_sqlite_file_in_a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir.path().join("typo/symbiose.db").display().to_string();
    let (output, _) = symbiose(&["migrate"], &[("SYMBIOSE__DATABASE__URL", &url)]);
    one_line_failure(&output, "database.url");
    assert!(
        !dir.path().join("typo").exists(),
        "the directory was created"
    );
}

#[test]
fn missing_reference_data_stops_the_start_in_one_line() {
    let (output, _) = symbiose(
        &["serve"],
        &[("SYMBIOSE__REFERENCE__DIR", "/nonexistent/reference")],
    );
    one_line_failure(&output, "reference.dir");
}

#[test]
fn production_refuses_the_public_anonymisation_secret() {
    let (output, _) = symbiose(&["serve"], &[("SYMBIOSE_ENV", "production")]);
    one_line_failure(&output, "auth.anonymisation_secret");
}

#[actix_web::test]
async fn the_health_verb_probes_a_running_server() {
    let app = spawn_app().await;
    let port = app
        .address
        .rsplit(':')
        .next()
        .expect("address has a port")
        .to_owned();
    // On a blocking thread: the test's runtime must stay free to drive the server.
    let check = |port: String| {
        actix_web::rt::task::spawn_blocking(move || {
            // A generous timeout: the whole suite runs in parallel on few cores.
            symbiose(
                &["health", "--timeout", "30"],
                &[("SYMBIOSE__SERVER__PORT", &port)],
            )
        })
    };
    let (ready, _) = check(port.clone()).await.expect("health probe");
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    app.server.stop(true).await;
    let (down, took) = check(port).await.expect("health probe");
    assert!(!down.status.success(), "nothing listens any more");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// The binary's allocator returns freed memory to the system by itself (jemalloc's background
/// thread, `MALLOC_CONF` in `main.rs`): without it a freed national build stayed resident.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_served_binary_runs_the_allocators_background_thread() {
    let dir = std::env::temp_dir().join(format!("symbiose-alloc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_symbiose"))
        .arg("serve")
        .env("SYMBIOSE_ENV", "test")
        .env("SYMBIOSE__DATABASE__URL", dir.join("alloc.db"))
        .env("SYMBIOSE__SERVER__HOST", "127.0.0.1")
        .env("SYMBIOSE__SERVER__PORT", "0")
        .env("SYMBIOSE__DEMO__ENABLED", "false")
        .env_remove("_RJEM_MALLOC_CONF")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let threads = |pid: u32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    };
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        seen = threads(child.id());
        if seen.iter().any(|name| name.starts_with("jemalloc_bg")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        seen.iter().any(|name| name.starts_with("jemalloc_bg")),
        "no allocator background thread among {seen:?}"
    );
}
