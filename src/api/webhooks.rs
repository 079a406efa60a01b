//! Partner webhooks: a key subscribes a URL to event types within its own scope (its territories;
//! anonymised payloads for partners), sees its subscriptions and their deliveries, resumes a
//! paused one, sends a test event. Delivery itself is `crate::webhooks`; see docs/WEBHOOKS.md.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, Problem};
use super::extract::{ValidJson, ValidQuery};
use super::{Page, State, check_limit, decode_cursor, paginate};
use crate::auth::{Caller, Principal, Role};
use crate::db::webhooks::{self as store, AttemptRow, OutboxRow, SubscriptionRow};
use crate::db::{self, DbError};
use crate::domain::validation::FieldError;
use crate::webhooks::{EventType, events, sign, target};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks")
            .route(web::get().to(list_webhooks))
            .route(web::post().to(create_webhook)),
    )
    .service(
        web::resource("/webhooks/{id}")
            .route(web::get().to(get_webhook))
            .route(web::delete().to(delete_webhook)),
    )
    .service(web::resource("/webhooks/{id}/resume").route(web::post().to(resume_webhook)))
    .service(web::resource("/webhooks/{id}/test").route(web::post().to(test_webhook)))
    .service(web::resource("/webhooks/{id}/deliveries").route(web::get().to(webhook_deliveries)));
}

#[derive(OpenApi)]
#[openapi(
    paths(
        create_webhook,
        list_webhooks,
        get_webhook,
        delete_webhook,
        resume_webhook,
        test_webhook,
        webhook_deliveries
    ),
    components(schemas(WebhookInput, WebhookOut, DeliveryOut, AttemptOut, TestOut, EventType)),
    tags((name = "webhooks", description = "Partner webhooks: signed event deliveries (see docs/WEBHOOKS.md)"))
)]
pub struct WebhooksApiDoc;

/// Subscriptions one key may hold.
pub const MAX_SUBSCRIPTIONS_PER_KEY: i64 = 25;

// ---------------------------------------------------------------------------------------------
// wire types

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where to POST deliveries: `http` or `https`, on a host the service allows.
    pub url: String,
    /// Event types: `resource.created`, `resource.updated`, `resource.deleted`,
    /// `synergy.detected`, `synergy.retired`, `synergy.status_changed`.
    pub events: Vec<String>,
}

/// A subscription. Its scope is the owner key's at creation: `territories` (empty = national) and
/// `anonymised` (the owner is a partner: actors that did not consent appear anonymously).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The owner key's id.
    pub key_id: String,
    pub territories: Vec<String>,
    pub anonymised: bool,
    /// `active` or `paused` (after repeated failures; see `POST …/resume`).
    pub status: String,
    pub consecutive_failures: i32,
    pub paused_reason: Option<String>,
    pub paused_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The HMAC-SHA256 signing secret: returned once, in the creation response only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Why the request failed (connection, timeout, refused URL), when it did.
    pub error: Option<String>,
    pub duration_ms: i64,
    pub success: bool,
}

/// One event for the subscription, with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// The delivery id (`X-Symbiose-Delivery`).
    pub id: String,
    /// The event id (`X-Symbiose-Event-Id`): the same on every retry.
    pub event_id: String,
    pub event_type: String,
    /// Order of the subscription's events: delivered strictly in increasing order.
    pub sequence: i64,
    /// `pending`, `delivered` or `expired` (given up after `webhooks.max_age_secs`).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The body sent (the same on every attempt).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempt_log: Vec<AttemptOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestOut {
    pub event_id: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `expired`.
    pub state: Option<String>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// helpers

fn principal(caller: &Caller) -> Result<&Principal, ApiError> {
    caller
        .principal()
        .ok_or_else(|| ApiError::Unauthorized("webhooks need an API key".into()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("webhook `{}`", id.escape_debug()))
}

fn to_out(row: SubscriptionRow, with_secret: bool) -> WebhookOut {
    WebhookOut {
        events: row.event_types(),
        territories: row.territory_codes(),
        secret: with_secret.then(|| row.secret.clone()),
        id: row.id,
        url: row.url,
        key_id: row.key_id,
        anonymised: row.anonymise,
        status: row.status,
        consecutive_failures: row.consecutive_failures,
        paused_reason: row.paused_reason,
        paused_at: row.paused_at.map(|t| t.and_utc()),
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
    }
}

fn delivery_out((row, attempts): (OutboxRow, Vec<AttemptRow>)) -> DeliveryOut {
    DeliveryOut {
        next_attempt_at: (row.state == store::PENDING).then_some(row.next_attempt_at.and_utc()),
        payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
        id: row.id,
        event_id: row.event_id,
        event_type: row.event_type,
        sequence: row.seq,
        state: row.state,
        created_at: row.created_at.and_utc(),
        attempts: row.attempts,
        delivered_at: row.delivered_at.map(|t| t.and_utc()),
        expired_at: row.expired_at.map(|t| t.and_utc()),
        last_error: row.last_error,
        attempt_log: attempts
            .into_iter()
            .map(|a| AttemptOut {
                at: a.attempted_at.and_utc(),
                http_status: a.http_status,
                error: a.error,
                duration_ms: a.duration_ms,
                success: a.success,
            })
            .collect(),
    }
}

/// The subscription if the caller may see it (its owner, or an admin); 404 otherwise, so that
/// other keys' subscriptions cannot be probed.
async fn visible(state: &State, who: &Principal, id: &str) -> Result<SubscriptionRow, ApiError> {
    let Ok(uuid) = Uuid::parse_str(id.trim()) else {
        return Err(not_found(id));
    };
    let owned = uuid.to_string();
    let row = db::run(&state.pool, move |conn| {
        store::get_subscription(conn, &owned)
    })
    .await
    .map_err(|e| match e {
        DbError::NotFound => not_found(id),
        other => other.into(),
    })?;
    if who.role == Role::Admin || row.key_id == who.key_id {
        Ok(row)
    } else {
        Err(not_found(id))
    }
}

/// Checks the new subscription: every bad field at once.
fn check_input(
    input: &WebhookInput,
    allowed_hosts: &[String],
) -> Result<(String, Vec<String>), ApiError> {
    let mut errors = Vec::new();
    let url = match target::validate(&input.url, allowed_hosts) {
        Ok(url) => Some(url.to_string()),
        Err(message) => {
            errors.push(FieldError {
                field: "url".into(),
                message,
                row: None,
            });
            None
        }
    };
    let mut types: Vec<String> = Vec::new();
    let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect();
    if input.events.is_empty() {
        errors.push(FieldError {
            field: "events".into(),
            message: format!("give at least one event type of {}", known.join(", ")),
            row: None,
        });
    }
    for (i, name) in input.events.iter().enumerate() {
        let name = name.trim();
        if !known.contains(&name) {
            errors.push(FieldError {
                field: "events".into(),
                message: format!(
                    "events[{i}]: `{}` is not an event type; use {}",
                    name.escape_debug(),
                    known.join(", ")
                ),
                row: None,
            });
        } else if !types.iter().any(|t| t == name) {
            types.push(name.to_owned());
        }
    }
    match url {
        Some(url) if errors.is_empty() => Ok((url, types)),
        _ => Err(ApiError::Validation(errors)),
    }
}

// ---------------------------------------------------------------------------------------------
// handlers

/// Subscribe a URL to events. The subscription covers the key's territories (national when the key
/// has none) and, for a partner key, carries anonymised payloads. The response holds the signing
/// `secret`, shown only this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = WebhookInput,
    responses(
        (status = 201, body = WebhookOut, headers(("Location" = String, description = "The subscription"))),
        (status = 401, body = Problem),
        (status = 409, description = "The key holds the maximum number of subscriptions", body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "Bad `url` (scheme, host not allowed, internal address) or `events`", body = Problem),
    ),
)]
pub async fn create_webhook(
    state: State,
    caller: Caller,
    body: ValidJson<WebhookInput>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?.clone();
    let (url, types) = check_input(&body.0, &state.settings.webhooks.allowed_hosts)?;
    let now = db::now();
    let row = SubscriptionRow {
        id: Uuid::new_v4().to_string(),
        key_id: who.key_id.clone(),
        url,
        events: serde_json::to_string(&types).map_err(|e| ApiError::Internal(e.to_string()))?,
        secret: sign::new_secret(),
        territories: serde_json::to_string(&who.territories)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        anonymise: who.role == Role::Partner,
        status: store::ACTIVE.into(),
        consecutive_failures: 0,
        paused_reason: None,
        paused_at: None,
        next_seq: 1,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
    };
    let stored = row.clone();
    db::run(&state.pool, move |conn| {
        if store::count_for_key(conn, &stored.key_id)? >= MAX_SUBSCRIPTIONS_PER_KEY {
            return Err(DbError::Conflict(format!(
                "this key already holds {MAX_SUBSCRIPTIONS_PER_KEY} webhook subscriptions: delete one first"
            )));
        }
        store::insert_subscription(conn, &stored)
    })
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhooks/{}", row.id)))
        .json(to_out(row, true)))
}

/// The caller's subscriptions (an admin sees every key's), by id.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    params(ListQuery),
    responses((status = 200, body = Page<WebhookOut>), (status = 401, body = Problem), (status = 422, body = Problem)),
)]
pub async fn list_webhooks(
    state: State,
    caller: Caller,
    query: ValidQuery<ListQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let limit = check_limit(query.0.limit)?;
    let after = query
        .0
        .cursor
        .as_deref()
        .map(|c| decode_cursor(&state, c))
        .transpose()?;
    let key = (who.role != Role::Admin).then(|| who.key_id.clone());
    let rows = db::run(&state.pool, move |conn| {
        store::list_subscriptions(conn, key.as_deref(), after.as_deref(), limit + 1)
    })
    .await
    .map_err(ApiError::from)?;
    let page: Page<WebhookOut> =
        paginate(&state, rows, limit, |r| r.id.clone(), |r| to_out(r, false));
    Ok(HttpResponse::Ok().json(page))
}

/// One subscription (without its secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 404, body = Problem)),
)]
pub async fn get_webhook(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let row = visible(&state, who, &id).await?;
    Ok(HttpResponse::Ok().json(to_out(row, false)))
}

/// Delete a subscription, its pending deliveries and their history.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)),
)]
pub async fn delete_webhook(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let row = visible(&state, who, &id).await?;
    db::run(&state.pool, move |conn| {
        store::delete_subscription(conn, &row.id)
    })
    .await
    .map_err(|e| match e {
        DbError::NotFound => not_found(&id),
        other => other.into(),
    })?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resume a subscription (paused after repeated failures, or active): its failure count is reset
/// and every pending delivery is attempted again now, in order.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/resume",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem), (status = 404, body = Problem)),
)]
pub async fn resume_webhook(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let row = visible(&state, who, &id).await?;
    let row = db::run(&state.pool, move |conn| {
        store::resume(conn, &row.id, db::now())
    })
    .await
    .map_err(|e| match e {
        DbError::NotFound => not_found(&id),
        other => other.into(),
    })?;
    Ok(HttpResponse::Ok().json(to_out(row, false)))
}

/// Queue a `ping` event for this subscription only (delivered like any other, in order).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 202, body = TestOut), (status = 401, body = Problem), (status = 404, body = Problem)),
)]
pub async fn test_webhook(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let row = visible(&state, who, &id).await?;
    let event = events::ping(&row.id);
    let event_id = event.id.clone();
    db::run(&state.pool, move |conn| {
        Ok(crate::webhooks::publish(conn, event)?)
    })
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Accepted().json(TestOut { event_id }))
}

/// The subscription's events, newest first, with every delivery attempt (time, HTTP status or
/// error, duration).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id"), DeliveryQuery),
    responses((status = 200, body = Page<DeliveryOut>), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
)]
pub async fn webhook_deliveries(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    query: ValidQuery<DeliveryQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let who = principal(&caller)?;
    let query = query.0;
    let limit = check_limit(query.limit)?;
    let filter = match query
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s @ (store::PENDING | store::DELIVERED | store::EXPIRED)) => Some(s.to_owned()),
        Some(_) => {
            return Err(ApiError::field("state", "must be pending, delivered or expired").into());
        }
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            decode_cursor(&state, c)?
                .parse::<i64>()
                .map_err(|_| ApiError::field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let row = visible(&state, who, &id).await?;
    let rows = db::run(&state.pool, move |conn| {
        store::deliveries(conn, &row.id, filter.as_deref(), before, limit + 1)
    })
    .await
    .map_err(ApiError::from)?;
    let page: Page<DeliveryOut> = paginate(
        &state,
        rows,
        limit,
        |(r, _)| r.seq.to_string(),
        delivery_out,
    );
    Ok(HttpResponse::Ok().json(page))
}
