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
    /// The `/api/v1` rate limits, called by the gate around its key lookup (one per server).
    pub rate_limit: Arc<crate::auth::rate::RateLimiter>,
    /// The keys this server checked (dropped whenever a key may have changed).
    pub keys: Arc<crate::auth::key_cache::KeyCache>,
    /// The audit log's writer (behind the requests).
    pub audit: Arc<crate::auth::audit::AuditLog>,
}

pub type State = web::Data<AppState>;

/// Every route; `/api/v1` behind the gate (rate limits around the key lookup, key check).
/// `document` is the OpenAPI document (`openapi::document`), served with the docs.
pub fn routes(cfg: &mut web::ServiceConfig, document: &serde_json::Value) {
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

/// Cursors are opaque: the sort key sealed with ChaCha20-Poly1305 under a key derived from
/// `auth.anonymisation_secret`, so a cursor says nothing of the item it follows (the name and id of
/// an actor shown anonymous, say) and a cursor altered or made up by a client is refused (422). The
/// nonce is derived from the sort key (a keyed hash, as in SIV constructions): the same position
/// always gives the same cursor, so a cursor reveals no more than whether two positions are equal,
/// and an unchanged list answers byte for byte the same.
pub fn encode_cursor(state: &AppState, key: &str) -> String {
    use chacha20poly1305::aead::Aead;
    let (cipher, nonce_key) = cursor_keys(state);
    let nonce = cursor_nonce(&nonce_key, key.as_bytes());
    // Encryption fails only past ChaCha20's 256 GiB limit: sort keys are a few hundred bytes.
    let sealed = cipher.encrypt(&nonce, key.as_bytes()).unwrap_or_default();
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    hex::encode(bytes)
}

pub fn decode_cursor(state: &AppState, cursor: &str) -> Result<String, ApiError> {
    use chacha20poly1305::aead::Aead;
    let refused = || ApiError::field("cursor", "is not a cursor this API returned");
    let bytes = hex::decode(cursor).map_err(|_| refused())?;
    if bytes.len() < NONCE_LEN {
        return Err(refused());
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let (cipher, _) = cursor_keys(state);
    cipher
        .decrypt(chacha20poly1305::Nonce::from_slice(nonce), sealed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|key| !key.contains('\0'))
        .ok_or_else(refused)
}

const NONCE_LEN: usize = 12;

/// The cipher and the nonce key of cursors, both derived from the anonymisation secret (distinct
/// labels, so neither key says anything of the other).
fn cursor_keys(state: &AppState) -> (chacha20poly1305::ChaCha20Poly1305, [u8; 32]) {
    use chacha20poly1305::KeyInit;
    use sha2::{Digest, Sha256};
    let secret = &state.settings.auth.anonymisation_secret;
    let derive = |label: &str| -> [u8; 32] {
        Sha256::digest(format!("symbiose-cursor-{label}:{secret}").as_bytes()).into()
    };
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&derive("cipher").into());
    (cipher, derive("nonce"))
}

/// The nonce of a sort key: SHA-256 under the secret nonce key, truncated. A keyed prefix hash is
/// a PRF here: only 12 of its 32 bytes are ever shown, so it cannot be extended.
fn cursor_nonce(nonce_key: &[u8; 32], key: &[u8]) -> chacha20poly1305::Nonce {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(nonce_key)
        .chain_update(key)
        .finalize();
    *chacha20poly1305::Nonce::from_slice(&digest[..NONCE_LEN])
}

/// Builds a page from `limit + 1` fetched items: the extra one says there is a next page.
pub fn paginate<R, T: ToSchema>(
    state: &AppState,
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> String,
    map: impl Fn(R) -> T,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode_cursor(state, &key(r)))
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
    state: &AppState,
    items: &[T],
    params: &PageParams,
) -> Result<Page<T>, ApiError> {
    let (range, next_cursor) = page_bounds(state, items.len(), params)?;
    Ok(Page {
        items: items[range].to_vec(),
        next_cursor,
    })
}

/// The offset and the limit a page asks for (offset cursors): a list that ranks lazily needs the
/// first `offset + limit + 1` items only.
pub fn page_window(state: &AppState, params: &PageParams) -> Result<(usize, usize), ApiError> {
    let limit = check_limit(params.limit)? as usize;
    let offset = match &params.cursor {
        None => 0,
        Some(c) => decode_cursor(state, c)?
            .parse::<usize>()
            .map_err(|_| ApiError::field("cursor", "is not a cursor this API returned"))?,
    };
    Ok((offset, limit))
}

/// The slice of `len` ranked items a page covers, and the cursor of the next page (offset cursors).
pub fn page_bounds(
    state: &AppState,
    len: usize,
    params: &PageParams,
) -> Result<(std::ops::Range<usize>, Option<String>), ApiError> {
    let (offset, limit) = page_window(state, params)?;
    let end = offset.saturating_add(limit).min(len);
    let next_cursor = (end < len).then(|| encode_cursor(state, &end.to_string()));
    Ok((offset.min(end)..end, next_cursor))
}
