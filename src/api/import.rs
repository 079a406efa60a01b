//! `POST /api/v1/import`: actors with their resources from one CSV file, all or nothing.

use std::io::Read;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use super::State;
use super::error::{ApiError, Problem};
use crate::auth::Caller;
use crate::db::{self, import::ApplyError, import::ImportReport};
use crate::import::ImportErrors;

/// The import reads its body itself, up to `server.import_limit_bytes`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/import").route(web::post().to(import_csv)));
}

/// Chunks of the body in flight between the upload and the validation.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Import a CSV file (format in docs/IMPORT.md). Every row is stored, or none: on any bad row the
/// answer is 422 with one error per bad cell (`row` is the file line, the header being line 1), the
/// first 1,000 of them, with `error_count` and `truncated`.
#[utoipa::path(
    post,
    path = "/api/v1/import",
    tag = "import",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ImportReport), (status = 413, body = super::error::Problem), (status = 415, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn import_csv(
    state: State,
    caller: Caller,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::Unsupported("send the file as text/csv".into()));
    }
    let coverage = caller.coverage(&state).await?;
    // The file is validated while it arrives (a blocking thread reads what the upload sends), so
    // neither the whole body nor an error per bad cell is ever held at once.
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let work_state = state.clone();
    let work = web::block(
        move || -> Result<Result<ImportReport, ImportErrors>, ApiError> {
            let state = work_state;
            let started = std::time::Instant::now();
            let plan = match crate::import::plan(
                BodyReader::new(receiver),
                &state.reference,
                state.classifier.as_ref(),
            ) {
                Ok(plan) => plan,
                Err(errors) => return Ok(Err(errors)),
            };
            tracing::info!(
                target: "symbiose::db::import",
                rows = plan.rows,
                read_and_validated_ms = started.elapsed().as_millis() as u64,
                "import validated"
            );
            // A scoped key imports actors of its own territories only: the whole file or nothing.
            let outside: Vec<String> = plan
                .actors
                .iter()
                .filter(|a| !coverage.covers_commune(&state.reference, &a.actor.commune_insee))
                .map(|a| a.first_row.to_string())
                .collect();
            if !outside.is_empty() {
                return Err(ApiError::Forbidden(format!(
                    "the actors of lines {} are outside the territories of this key; nothing imported",
                    outside.join(", ")
                )));
            }
            let mut conn = state.pool.get().map_err(db::DbError::from)?;
            let view = |row: &db::models::ResourceRow| {
                serde_json::to_value(super::resources::resource_out(&state, row.clone()))
            };
            match db::import::apply(&mut conn, &plan, false, &view) {
                Ok(report) => Ok(Ok(report)),
                Err(ApplyError::Rows(errors)) => Ok(Err(errors)),
                Err(ApplyError::Db(e)) => Err(e.into()),
            }
        },
    );
    let limit = state.settings.server.import_limit_bytes;
    let mut received = 0usize;
    let mut upload_error = None;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                upload_error = Some(ApiError::BadRequest(format!("cannot read the body: {e}")));
                break;
            }
        };
        received += chunk.len();
        if received > limit {
            upload_error = Some(ApiError::PayloadTooLarge(format!(
                "the body is larger than {limit} bytes"
            )));
            break;
        }
        if sender.send(Ok(chunk)).await.is_err() {
            // The validation stopped reading (a bad header): the rest does not matter.
            break;
        }
    }
    if upload_error.is_some() {
        // Stops the validation at once, as a read error; its outcome is not used.
        let _ = sender
            .send(Err(std::io::Error::other("the upload was refused")))
            .await;
    }
    drop(sender);
    let outcome = work.await.map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(error) = upload_error {
        return Err(error);
    }
    match outcome? {
        Ok(report) => {
            state.detection.touch();
            Ok(HttpResponse::Created().json(report))
        }
        Err(errors) => Ok(refused(errors)),
    }
}

/// The 422 of a refused file: the problem document with the first errors, how many there are in
/// all, and whether the list is cut.
#[derive(Debug, Serialize)]
struct ImportProblem {
    #[serde(flatten)]
    problem: Problem,
    error_count: usize,
    truncated: bool,
}

fn refused(errors: ImportErrors) -> HttpResponse {
    let truncated = errors.truncated();
    let error_count = errors.error_count;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let detail = if truncated {
        format!(
            "{error_count} errors in the file, nothing imported; the first {} are listed",
            errors.errors.len()
        )
    } else {
        format!("{error_count} error(s) in the file, nothing imported")
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(ImportProblem {
            problem: Problem {
                kind: "https://symbiose.example/problems/validation".into(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail,
                errors: errors.errors,
            },
            error_count,
            truncated,
        })
}

/// A blocking `Read` over the chunks the upload sends (on actix's blocking pool, never the
/// executor); the end of the channel is the end of the file.
struct BodyReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    fn new(receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> BodyReader {
        BodyReader {
            receiver,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
