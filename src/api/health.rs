//! Liveness and readiness probes.

use actix_web::{HttpResponse, get};
use serde_json::json;

use super::State;

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "alive")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and can grow, and the reference data is loaded.
#[utoipa::path(tag = "health", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
#[get("/health/ready")]
pub async fn ready(state: State) -> HttpResponse {
    let pool = state.pool.clone();
    let (database, storage) =
        actix_web::web::block(move || (crate::db::ping(&pool), crate::db::can_write(&pool)))
            .await
            .unwrap_or((false, false));
    let reference = !state.reference.ewc.is_empty() && !state.reference.geo.communes().is_empty();
    let ready = database && reference && storage;
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "database": database,
        "reference": reference,
        "storage": storage,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
