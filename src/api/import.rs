//! `POST /api/v1/import`: actors with their resources from one CSV file, all or nothing.

use actix_web::{HttpRequest, HttpResponse, web};

use super::State;
use super::error::ApiError;
use crate::db::{self, import::ApplyError, import::ImportReport};

/// The import reads its body itself, up to `server.import_limit_bytes`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/import").route(web::post().to(import_csv)));
}

/// Import a CSV file (format in docs/IMPORT.md). Every row is stored, or none: on any bad row the
/// answer is 422 with one error per bad cell (`row` is the file line, the header being line 1).
#[utoipa::path(
    post,
    path = "/api/v1/import",
    tag = "import",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = ImportReport), (status = 413, body = super::error::Problem), (status = 415, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn import_csv(
    state: State,
    req: HttpRequest,
    payload: web::Payload,
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
    let body =
        super::extract::read_limited(payload, state.settings.server.import_limit_bytes).await?;
    let reference = state.reference.clone();
    let classifier = state.classifier.clone();
    let pool = state.pool.clone();
    let outcome = web::block(move || {
        let plan = crate::import::plan(body.as_ref(), &reference, classifier.as_ref())
            .map_err(ApplyError::Rows)?;
        let mut conn = pool.get().map_err(db::DbError::from)?;
        db::import::apply(&mut conn, &plan, false)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match outcome {
        Ok(report) => {
            state.detection.touch();
            Ok(HttpResponse::Created().json(report))
        }
        Err(ApplyError::Rows(errors)) => Err(ApiError::Validation(errors)),
        Err(ApplyError::Db(e)) => Err(e.into()),
    }
}
