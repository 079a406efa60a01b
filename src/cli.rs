//! What the command-line verbs do beyond serving: file import, the demo dataset, API keys.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use serde_json::Value;

use crate::config::ServerSettings;
use crate::db::{self, import::ApplyError, import::ImportReport};
use crate::startup::Application;

/// The `resource.created` events of an import carry the resource as the API shows it.
fn view(state: &crate::api::State, row: &db::models::ResourceRow) -> serde_json::Result<Value> {
    serde_json::to_value(crate::api::resources::resource_out(state, row.clone()))
}

/// Imports a CSV file all or nothing; on bad rows the error lists each row, column and reason
/// (the first 1,000, and how many there are).
pub fn import_file(app: &Application, path: &Path) -> anyhow::Result<ImportReport> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let state = web::Data::new(app.state());
    let outcome = crate::import::plan(
        std::io::BufReader::new(file),
        &app.reference,
        state.classifier.as_ref(),
    )
    .map_err(ApplyError::Rows)
    .and_then(|plan| {
        let mut conn = app.pool.get().map_err(db::DbError::from)?;
        db::import::apply(&mut conn, &plan, false, &|row| view(&state, row))
    });
    match outcome {
        Ok(report) => Ok(report),
        Err(ApplyError::Rows(errors)) => {
            let more = if errors.truncated() {
                format!(
                    "\n  … and {} more",
                    errors.error_count - errors.errors.len()
                )
            } else {
                String::new()
            };
            let lines: Vec<String> = errors
                .errors
                .iter()
                .map(|e| {
                    format!(
                        "  line {}, column {}: {}",
                        e.row.unwrap_or(0),
                        e.field,
                        e.message
                    )
                })
                .collect();
            anyhow::bail!(
                "{} error(s), nothing imported:\n{}{more}",
                errors.error_count,
                lines.join("\n")
            )
        }
        Err(ApplyError::Db(e)) => Err(e.into()),
    }
}

/// Loads the illustrative Bourgogne dataset unless the database already has actors: the IREP sites
/// with their illustrative resources, and the custom zone `27-BOURGOGNE` with its published 2010
/// material flow account.
pub fn load_demo(app: &Application) -> anyhow::Result<()> {
    let mut conn = app.pool.get().map_err(db::DbError::from)?;
    let afme_rows = db::afme::load_bourgogne_demo(&mut conn, &app.reference)
        .map_err(|e| anyhow::anyhow!("demo AFME account: {e}"))?;
    if afme_rows > 0 {
        tracing::info!(
            rows = afme_rows,
            "Bourgogne 2010 material flow account loaded as 27-BOURGOGNE"
        );
    }
    if db::actors::count(&mut conn)? > 0 {
        tracing::info!("database already has actors; demo data not loaded again");
        return Ok(());
    }
    let state = web::Data::new(app.state());
    let plan = crate::demo::build(&app.reference, state.classifier.as_ref())?;
    match db::import::apply(&mut conn, &plan, true, &|row| view(&state, row)) {
        Ok(report) => {
            // A server of this process already built its detection: the next read rebuilds.
            app.detection.touch();
            tracing::info!(
                actors = report.actors_created,
                resources = report.resources_created,
                "demo data loaded"
            );
            Ok(())
        }
        Err(ApplyError::Rows(errors)) => anyhow::bail!("demo data rejected: {:?}", errors.errors),
        Err(ApplyError::Db(e)) => Err(e.into()),
    }
}

/// `symbiose keys …`.
pub enum KeysCommand {
    Create {
        role: String,
        territories: Vec<String>,
        name: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

/// Creates (printing the key once), lists or revokes API keys.
pub fn keys(app: &Application, command: KeysCommand) -> anyhow::Result<()> {
    let mut conn = app.pool.get().map_err(db::DbError::from)?;
    match command {
        KeysCommand::Create {
            role,
            territories,
            name,
        } => {
            let role = crate::auth::Role::parse(&role)
                .with_context(|| format!("--role {role}: admin, facilitator or partner"))?;
            let name = name.unwrap_or_else(|| format!("{} key", role.as_str()));
            let key = crate::auth::create_key(&mut conn, &app.reference, &name, role, &territories)
                .map_err(|e| match e {
                    crate::api::error::ApiError::Validation(errors) => anyhow::anyhow!(
                        "{}",
                        errors
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("{}", key.secret);
            eprintln!(
                "key {} ({}, {}, territories: {}) created; it is shown only this once",
                key.row.id,
                key.row.name,
                key.row.role,
                if territories.is_empty() {
                    "national".to_owned()
                } else {
                    key.row.territories.clone()
                }
            );
        }
        KeysCommand::List => {
            for row in db::keys::list(&mut conn)? {
                let state = match row.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".into(),
                };
                println!(
                    "{}\t{}…\t{}\t{}\t{}\t{}",
                    row.id, row.key_prefix, row.role, row.territories, row.name, state
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let row = db::keys::revoke(&mut conn, &id, db::now()).map_err(|e| match e {
                db::DbError::NotFound => anyhow::anyhow!("no key with id {id}"),
                other => other.into(),
            })?;
            println!("key {} ({}) revoked", row.id, row.name);
        }
    }
    Ok(())
}

/// `symbiose health`: GET `/health/ready` on this machine's `server.port` and succeed on a 200.
/// Plain HTTP/1.0 over a socket, with timeouts: it must run where there is no curl (the runtime
/// image) and answer the container healthcheck within seconds.
pub fn health(server: &ServerSettings, timeout: Duration) -> anyhow::Result<()> {
    // A server listening on every address answers on loopback.
    let host = match server.host.as_str() {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        other => other,
    };
    let address = format!("{host}:{}", server.port);
    let socket = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .with_context(|| format!("key `server.host`: cannot resolve {address}"))?
        .next()
        .with_context(|| format!("key `server.host`: {address} has no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, timeout)
        .with_context(|| format!("not ready: nothing answers on {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /health/ready HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut reply)
        .with_context(|| format!("not ready: {address} did not answer"))?;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        println!("ready ({address})");
        Ok(())
    } else {
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        anyhow::bail!("not ready: {address} answered `{status}` {body}")
    }
}
