//! Admin API: API keys (create, list, revoke) and the audit log of writes. Admin keys only (the
//! middleware checks it from the path).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::{Page, State, check_limit, decode_cursor};
use crate::auth::{Role, create_key};
use crate::db::{self, keys::ApiKeyRow, keys::AuditRow};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/keys")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        web::resource("/keys/{id}")
            .route(web::get().to(get))
            .route(web::delete().to(revoke)),
    )
    .service(web::resource("/audit").route(web::get().to(audit)));
}

/// The OpenAPI description of these routes, merged into the service's document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, get, revoke, audit),
    components(schemas(NewKeyIn, KeyOut, CreatedKeyOut, AuditOut, Role))
)]
pub struct KeysDoc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyIn {
    /// Who holds the key (a portal, a facilitator): shown in histories and the audit log.
    pub name: String,
    pub role: Role,
    /// Territory codes the key is limited to; empty or absent = national.
    #[serde(default)]
    pub territories: Vec<String>,
}

/// A key as listed: never the key itself, nor its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub name: String,
    pub role: String,
    pub territories: Vec<String>,
    /// The key's first characters, to tell keys apart.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key: `key` is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKeyOut {
    #[serde(flatten)]
    pub key_info: KeyOut,
    pub key: String,
}

fn key_out(row: ApiKeyRow) -> KeyOut {
    KeyOut {
        territories: serde_json::from_str(&row.territories).unwrap_or_default(),
        id: row.id,
        name: row.name,
        role: row.role,
        key_prefix: row.key_prefix,
        created_at: row.created_at.and_utc(),
        revoked_at: row.revoked_at.map(|t| t.and_utc()),
    }
}

/// Create a key (admin). The response holds the key once; only its SHA-256 is stored.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKeyIn,
    responses((status = 201, body = CreatedKeyOut), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 422, body = super::error::Problem)))]
pub async fn create(state: State, body: ValidJson<NewKeyIn>) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    let reference = state.reference.clone();
    let key = web::block(move || -> Result<_, ApiError> {
        let pool = state.pool.clone();
        let mut conn = pool.get().map_err(db::DbError::from)?;
        create_key(
            &mut conn,
            &reference,
            &input.name,
            input.role,
            &input.territories,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let id = key.row.id.clone();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/keys/{id}")))
        .json(CreatedKeyOut {
            key_info: key_out(key.row),
            key: key.secret,
        }))
}

/// Every key, revoked ones included (admin).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyOut>), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)))]
pub async fn list(state: State) -> Result<HttpResponse, ApiError> {
    let rows = db::run(&state.pool, db::keys::list).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(key_out).collect::<Vec<_>>()))
}

/// One key (admin).
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys",
    responses((status = 200, body = KeyOut), (status = 404, body = super::error::Problem)))]
pub async fn get(state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let wanted = id.into_inner();
    let row = db::run(&state.pool, move |conn| db::keys::get(conn, &wanted))
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::Ok().json(key_out(row)))
}

/// Revoke a key (admin): it stops working with the next request.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    responses((status = 200, body = KeyOut), (status = 404, body = super::error::Problem)))]
pub async fn revoke(state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let wanted = id.into_inner();
    let row = db::run(&state.pool, move |conn| {
        db::keys::revoke(conn, &wanted, db::now())
    })
    .await
    .map_err(not_found)?;
    // Before the answer: once the caller hears "revoked", this server refuses the key.
    state.keys.clear();
    Ok(HttpResponse::Ok().json(key_out(row)))
}

fn not_found(e: db::DbError) -> ApiError {
    match e {
        db::DbError::NotFound => ApiError::NotFound("key".into()),
        other => other.into(),
    }
}

const CURSOR_TIME: &str = "%Y-%m-%dT%H:%M:%S%.f";

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only the writes of this key.
    pub key_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One recorded write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditOut {
    pub id: String,
    pub at: DateTime<Utc>,
    pub key_id: Option<String>,
    pub key_name: String,
    pub method: String,
    /// Route pattern, e.g. `/api/v1/actors/{id}`.
    pub route: String,
    pub path: String,
    pub entity_id: Option<String>,
    pub status: i32,
    pub request_id: Option<String>,
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "keys", params(AuditQuery),
    responses((status = 200, body = Page<AuditOut>), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)))]
pub async fn audit(state: State, query: ValidQuery<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let limit = check_limit(query.limit)?;
    let before = match &query.cursor {
        None => None,
        Some(cursor) => {
            let key = decode_cursor(&state, cursor)?;
            let (at, id) = key
                .split_once('|')
                .and_then(|(at, id)| {
                    let at = NaiveDateTime::parse_from_str(at, CURSOR_TIME).ok()?;
                    Some((at, id.to_owned()))
                })
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?;
            Some((at, id))
        }
    };
    let key_id = query.key_id.clone();
    // Every write acknowledged before this read is in the page.
    state.audit.flush().await;
    let rows = db::run(&state.pool, move |conn| {
        db::keys::audit_page(conn, key_id.as_deref(), before, limit + 1)
    })
    .await?;
    let page = super::paginate(
        &state,
        rows,
        limit,
        |r: &AuditRow| format!("{}|{}", r.at.format(CURSOR_TIME), r.id),
        |r| AuditOut {
            id: r.id,
            at: r.at.and_utc(),
            key_id: r.key_id,
            key_name: r.key_name,
            method: r.method,
            route: r.route,
            path: r.path,
            entity_id: r.entity_id,
            status: r.status,
            request_id: r.request_id,
        },
    );
    Ok(HttpResponse::Ok().json(page))
}
