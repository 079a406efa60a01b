//! The deployment files agree with the configuration (Docker itself is not available in CI).

use std::path::Path;

use symbiose::config::Settings;

#[test]
fn docker_compose_matches_production_settings() {
    let text = std::fs::read_to_string("docker-compose.yml").expect("docker-compose.yml exists");
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML");
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
    let (user, password, name) = (
        env["POSTGRES_USER"].as_str().expect("POSTGRES_USER"),
        env["POSTGRES_PASSWORD"]
            .as_str()
            .expect("POSTGRES_PASSWORD"),
        env["POSTGRES_DB"].as_str().expect("POSTGRES_DB"),
    );
    let production =
        Settings::load_for(Path::new("config"), Some("production")).expect("production settings");
    assert_eq!(
        production.database.url,
        format!("postgres://{user}:{password}@db:5432/{name}")
    );
    let port = production.server.port;
    let ports: Vec<&str> = app["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        ports.iter().any(|p| p.ends_with(&format!(":{port}"))),
        "compose publishes the configured port {port}"
    );
    let reference_mount = app["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .any(|v| v.contains(&production.reference.dir.display().to_string()));
    assert!(
        reference_mount,
        "compose mounts the reference dir at reference.dir"
    );
}
