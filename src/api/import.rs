//! `POST /api/v1/import`: actors with their resources from one CSV file, all or nothing.

use actix_web::{HttpRequest, HttpResponse, web};

use super::State;
use super::error::ApiError;
use crate::auth::Caller;
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
    caller: Caller,
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
    let coverage = caller.coverage(&state).await?;
    let reference = state.reference.clone();
    let classifier = state.classifier.clone();
    let pool = state.pool.clone();
    let report = web::block(move || -> Result<ImportReport, ApiError> {
        let plan = crate::import::plan(body.as_ref(), &reference, classifier.as_ref())
            .map_err(ApiError::Validation)?;
        // A scoped key imports actors of its own territories only: the whole file or nothing.
        let outside: Vec<String> = plan
            .actors
            .iter()
            .filter(|a| !coverage.covers_commune(&reference, &a.actor.commune_insee))
            .map(|a| a.first_row.to_string())
            .collect();
        if !outside.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "the actors of lines {} are outside the territories of this key; nothing imported",
                outside.join(", ")
            )));
        }
        let mut conn = pool.get().map_err(db::DbError::from)?;
        db::import::apply(&mut conn, &plan, false).map_err(|e| match e {
            ApplyError::Rows(errors) => ApiError::Validation(errors),
            ApplyError::Db(e) => e.into(),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    state.detection.touch();
    Ok(HttpResponse::Created().json(report))
}
