//! HTTP API (actix-web) under `/api/v1`: one module per resource. Handlers are thin: parse and
//! validate input, call `db` / the engines, map to response types.

pub mod actors;
pub mod afme;
pub mod codes;
pub mod error;
pub mod extract;
pub mod health;
pub mod import;
pub mod keys;
pub mod lifecycle;
pub mod openapi;
pub mod resources;
pub mod synergies;
pub mod territories;
pub mod webhooks;

use std::sync::Arc;

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Settings;
use crate::db::DbPool;
use crate::domain::resource::Classifier;
use crate::reference::Reference;
use error::ApiError;

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub reference: Arc<Reference>,
    pub classifier: Arc<dyn Classifier + Send + Sync>,
    /// The live synergy detection (rebuilt when actors or resources change).
    pub detection: Arc<crate::detection::Detection>,
    pub settings: Settings,
}

pub type State = web::Data<AppState>;

/// Every route; `/api/v1` behind the rate limit (outermost, so floods never reach the database) and
/// the key check. `document` is the OpenAPI document (`openapi::document`), served with the docs.
pub fn routes(
    cfg: &mut web::ServiceConfig,
    rate_limit: &crate::auth::rate::RateLimit,
    document: &serde_json::Value,
) {
    cfg.service(health::live)
        .service(health::ready)
        .route(
            "/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .service(openapi::docs(document.clone()));
    cfg.service(
        web::scope("/api/v1")
            .wrap(actix_web::middleware::from_fn(
                crate::auth::middleware::authenticate,
            ))
            .wrap(actix_governor::Governor::new(rate_limit))
            .configure(keys::routes)
            .configure(codes::routes)
            .configure(territories::routes)
            .configure(afme::routes)
            .configure(actors::routes)
            .configure(resources::routes)
            .configure(synergies::routes)
            .configure(lifecycle::routes)
            .configure(import::routes)
            .configure(webhooks::routes),
    );
}

/// A page of a list, with the cursor of the next page when there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Common list parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

pub fn check_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Cursors are opaque to clients: the hex of the sort key.
pub fn encode_cursor(key: &str) -> String {
    hex::encode(key.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|key| !key.contains('\0'))
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))
}

/// Builds a page from `limit + 1` fetched items: the extra one says there is a next page.
pub fn paginate<R, T: ToSchema>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> String,
    map: impl Fn(R) -> T,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode_cursor(&key(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}

/// Pages an in-memory ranked list with an offset cursor.
pub fn page_slice<T: Clone + ToSchema>(
    items: &[T],
    params: &PageParams,
) -> Result<Page<T>, ApiError> {
    let (range, next_cursor) = page_bounds(items.len(), params)?;
    Ok(Page {
        items: items[range].to_vec(),
        next_cursor,
    })
}

/// The slice of `len` ranked items a page covers, and the cursor of the next page (offset cursors).
pub fn page_bounds(
    len: usize,
    params: &PageParams,
) -> Result<(std::ops::Range<usize>, Option<String>), ApiError> {
    let limit = check_limit(params.limit)? as usize;
    let offset = match &params.cursor {
        None => 0,
        Some(c) => decode_cursor(c)?
            .parse::<usize>()
            .map_err(|_| ApiError::field("cursor", "is not a cursor this API returned"))?,
    };
    let end = offset.saturating_add(limit).min(len);
    let next_cursor = (end < len).then(|| encode_cursor(&end.to_string()));
    Ok((offset.min(end)..end, next_cursor))
}
