//! Liveness and readiness probes.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::State;

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: String,
    /// The database answers.
    pub database: bool,
    /// The reference data is loaded.
    pub reference: bool,
    /// The database can grow (a page-sized probe row could be written): false on a full disk.
    pub storage: bool,
}

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "alive", body = Liveness)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: "ok".into(),
    })
}

/// The database answers and can grow, and the reference data is loaded.
#[utoipa::path(tag = "health", responses((status = 200, description = "ready", body = Readiness), (status = 503, description = "not ready", body = Readiness)))]
#[get("/health/ready")]
pub async fn ready(state: State) -> HttpResponse {
    let pool = state.pool.clone();
    let (database, storage) =
        actix_web::web::block(move || (crate::db::ping(&pool), crate::db::can_write(&pool)))
            .await
            .unwrap_or((false, false));
    let reference = !state.reference.ewc.is_empty() && !state.reference.geo.communes().is_empty();
    let ok = database && reference && storage;
    let body = Readiness {
        status: if ok { "ok" } else { "unavailable" }.into(),
        database,
        reference,
        storage,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
