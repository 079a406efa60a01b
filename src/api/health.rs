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

/// The database answers and the reference data is loaded.
#[utoipa::path(tag = "health", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
#[get("/health/ready")]
pub async fn ready(state: State) -> HttpResponse {
    let pool = state.pool.clone();
    let database = actix_web::web::block(move || crate::db::ping(&pool))
        .await
        .unwrap_or(false);
    let reference = !state.reference.ewc.is_empty() && !state.reference.geo.communes().is_empty();
    let body = json!({
        "status": if database && reference { "ok" } else { "unavailable" },
        "database": database,
        "reference": reference,
    });
    if database && reference {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
