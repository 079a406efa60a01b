//! The `/api/v1` gate: authenticates the key, checks the route's right, anonymises JSON responses for
//! partners and public readers, and records every successful write in the audit log.

use std::collections::HashSet;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use tracing_actix_web::RequestId;

use super::anonymise::{Anonymiser, uuids_in};
use super::{Caller, Principal, Role, hash_key};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::db::{self, keys::AuditRow};

/// The right a route needs, from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Any key; no key when `auth.public_read` is on.
    Read,
    /// Any key, never none: reads of what facilitators wrote (a synergy's history and notes), which
    /// keyless readers do not get even with `auth.public_read`.
    KeyedRead,
    /// A facilitator or admin key.
    Write,
    /// Any key (partners manage their own webhooks).
    Subscribe,
    /// An admin key.
    Admin,
}

/// The routes whose reads need a key (`Right::KeyedRead`): what facilitators wrote and decided about
/// synergies — a synergy's history and notes, and the reports made of statuses (the KPIs count
/// synergies by status, the AFME impact lists implemented and proposed ones), which keyless readers
/// do not see (`api::synergies::output::shows_status`).
const KEYED_READS: [&str; 4] = [
    "/api/v1/synergies/{id}/history",
    "/api/v1/synergies/{id}/notes",
    "/api/v1/territories/{code}/kpis",
    "/api/v1/territories/{code}/afme/impact",
];

/// The right a route needs, from the method and the route's *pattern* (`/api/v1/keys/{id}`) as actix
/// matched it. Reads are GET/HEAD, plus the POSTs that compute without storing (ad-hoc match,
/// reconciliation); the reads of `KEYED_READS` need a key.
pub fn required_right(method: &Method, path: &str) -> Right {
    let path = path.trim_end_matches('/');
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if under("/api/v1/keys") || under("/api/v1/audit") {
        return Right::Admin;
    }
    if under("/api/v1/webhooks") {
        return Right::Subscribe;
    }
    let computes_only =
        *method == Method::POST && (path == "/api/v1/match" || path.ends_with("/afme/reconcile"));
    let read = matches!(*method, Method::GET | Method::HEAD);
    if read && KEYED_READS.contains(&path) {
        Right::KeyedRead
    } else if read || computes_only {
        Right::Read
    } else {
        Right::Write
    }
}

/// The key of `Authorization: Bearer <key>`; `Err` when the header is there but not a bearer key.
fn bearer(req: &ServiceRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(Some(key.trim().to_owned()))
        }
        _ => Err(ApiError::Unauthorized(
            "send the key as `Authorization: Bearer <key>`".into(),
        )),
    }
}

async fn identify(state: &AppState, req: &ServiceRequest) -> Result<Option<Principal>, ApiError> {
    let Some(key) = bearer(req)? else {
        return Ok(None);
    };
    let hash = hash_key(&key);
    let miss = match state.keys.get(&hash) {
        Ok(principal) => return Ok(Some(principal)),
        Err(miss) => miss,
    };
    let looked_up = hash.clone();
    let row = db::run(&state.pool, move |conn| {
        db::keys::find_active(conn, &looked_up)
    })
    .await?;
    match row.as_ref().and_then(Principal::from_row) {
        Some(principal) => {
            state.keys.keep(miss, hash, principal.clone());
            Ok(Some(principal))
        }
        None => Err(ApiError::Unauthorized(
            "this API key is unknown or revoked".into(),
        )),
    }
}

/// The pattern of the route that serves this request (`/api/v1/keys/{id}`), matched on the decoded
/// path exactly as the router matches it; `None` when no route matches (the request would be a 404).
fn routed_pattern(req: &ServiceRequest) -> Option<String> {
    req.resource_map().match_pattern(req.match_info().as_str())
}

/// Who may pass, or the 401/403 that stops the request.
fn admit(
    right: Right,
    principal: Option<Principal>,
    public_read: bool,
) -> Result<Caller, ApiError> {
    let missing =
        || ApiError::Unauthorized("an API key is required (Authorization: Bearer <key>)".into());
    match (right, principal) {
        (Right::Read, None) if public_read => Ok(Caller::Public),
        (_, None) => Err(missing()),
        (Right::Read | Right::KeyedRead | Right::Subscribe, Some(p)) => Ok(Caller::Key(p)),
        (Right::Write, Some(p)) if p.role != Role::Partner => Ok(Caller::Key(p)),
        (Right::Write, Some(_)) => Err(ApiError::Forbidden(
            "partner keys read only: writes need a facilitator or admin key".into(),
        )),
        (Right::Admin, Some(p)) if p.role == Role::Admin => Ok(Caller::Key(p)),
        (Right::Admin, Some(_)) => Err(ApiError::Forbidden("this needs an admin key".into())),
    }
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let error = ApiError::Internal("application state missing".into());
        return Ok(req.into_response(error.error_response()));
    };
    // Rate limits: per client address before the lookup, per key id after it (auth/rate.rs).
    let admission = match state.rate_limit.check_address(&req) {
        Ok(admission) => admission,
        Err(limited) => return Ok(req.into_response(limited.response())),
    };
    // Decide on the route the router will run, never on the raw path: `/api/v1/%6Beys` is routed
    // to `/api/v1/keys` (actix decodes the path before matching) but does not spell it.
    let Some(route) = routed_pattern(&req) else {
        let error = ApiError::NotFound("route".into());
        return Ok(req.into_response(error.error_response()));
    };
    let right = required_right(req.method(), &route);
    let identified = identify(&state, &req).await;
    let key_id = identified
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|p| p.key_id.as_str());
    if let Err(limited) = state.rate_limit.check_key(admission, key_id) {
        return Ok(req.into_response(limited.response()));
    }
    let admitted = match identified {
        Ok(principal) => admit(right, principal, state.settings.auth.public_read),
        Err(e) => Err(e),
    };
    let caller = match admitted {
        Ok(caller) => caller,
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    req.extensions_mut().insert(caller.clone());
    let writes = right != Right::Read && !matches!(*req.method(), Method::GET | Method::HEAD);
    let response = next.call(req).await?.map_into_boxed_body();
    let response = if caller.anonymises() {
        anonymise_response(&state, response).await
    } else {
        response
    };
    if writes && response.status().is_success() {
        audit(&state, &caller, &response);
    }
    Ok(response)
}

fn is_json(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with("application/geo+json")
        })
}

/// Rewrites a JSON response so that actors that did not consent are anonymous.
async fn anonymise_response(
    state: &AppState,
    response: ServiceResponse<BoxBody>,
) -> ServiceResponse<BoxBody> {
    if !is_json(&response) {
        return response;
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let failed = |request, detail: String| {
        let error = ApiError::Internal(detail);
        ServiceResponse::new(request, error.error_response())
    };
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(e) => return failed(request, format!("reading a response to anonymise: {e}")),
    };
    let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return ServiceResponse::new(request, head.set_body(BoxBody::new(bytes)));
    };
    let mut ids = HashSet::new();
    uuids_in(&document, &mut ids);
    if ids.is_empty() {
        return ServiceResponse::new(request, head.set_body(BoxBody::new(bytes)));
    }
    let reference = state.reference.clone();
    let secret = state.settings.auth.anonymisation_secret.clone();
    let loaded = db::run(&state.pool, move |conn| {
        Anonymiser::load(conn, &reference, &secret, &ids)
    })
    .await;
    match loaded {
        Ok(anonymiser) => {
            anonymiser.apply(&mut document);
            let body = serde_json::to_vec(&document).unwrap_or_default();
            ServiceResponse::new(request, head.set_body(BoxBody::new(body)))
        }
        // Never fall back to the plain response: an error is better than a leak.
        Err(e) => failed(request, format!("anonymising a response: {e}")),
    }
}

/// Records a successful write: key, method, route, entity. Stored behind the request
/// (`auth::audit`); a failure to store is logged, not returned: the write itself has happened.
fn audit(state: &AppState, caller: &Caller, response: &ServiceResponse<BoxBody>) {
    let request = response.request();
    let entity_id = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_owned)
        .or_else(|| {
            ["id", "code"]
                .iter()
                .find_map(|k| request.match_info().get(k).map(str::to_owned))
        });
    let row = AuditRow {
        id: uuid::Uuid::new_v4().to_string(),
        at: db::now(),
        key_id: caller.principal().map(|p| p.key_id.clone()),
        key_name: caller.who(),
        method: request.method().to_string(),
        route: request
            .match_pattern()
            .unwrap_or_else(|| request.path().to_owned()),
        path: request.path().to_owned(),
        entity_id,
        status: i32::from(response.status().as_u16()),
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.to_string()),
    };
    state.audit.record(row);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_method_and_path() {
        let r = |m: Method, p: &str| required_right(&m, p);
        assert_eq!(r(Method::GET, "/api/v1/actors"), Right::Read);
        assert_eq!(r(Method::POST, "/api/v1/match"), Right::Read);
        assert_eq!(
            r(Method::POST, "/api/v1/territories/21/afme/reconcile"),
            Right::Read
        );
        assert_eq!(r(Method::POST, "/api/v1/actors"), Right::Write);
        assert_eq!(r(Method::PATCH, "/api/v1/synergies/x"), Right::Write);
        assert_eq!(
            r(Method::POST, "/api/v1/territories/21/afme/import"),
            Right::Write
        );
        assert_eq!(r(Method::GET, "/api/v1/keys"), Right::Admin);
        assert_eq!(r(Method::DELETE, "/api/v1/keys/abc"), Right::Admin);
        assert_eq!(r(Method::DELETE, "/api/v1/keys/{id}"), Right::Admin);
        assert_eq!(
            r(Method::GET, "/api/v1/synergies/{id}/notes"),
            Right::KeyedRead
        );
        assert_eq!(
            r(Method::GET, "/api/v1/synergies/{id}/history/"),
            Right::KeyedRead
        );
        assert_eq!(r(Method::GET, "/api/v1/synergies/{id}"), Right::Read);
        assert_eq!(
            r(Method::GET, "/api/v1/territories/{code}/kpis"),
            Right::KeyedRead
        );
        assert_eq!(
            r(Method::GET, "/api/v1/territories/{code}/afme/impact"),
            Right::KeyedRead
        );
        assert_eq!(
            r(Method::GET, "/api/v1/territories/{code}/afme"),
            Right::Read
        );
        assert_eq!(
            r(Method::POST, "/api/v1/synergies/{id}/notes"),
            Right::Write
        );
        assert_eq!(
            r(Method::POST, "/api/v1/territories/{code}/afme/reconcile"),
            Right::Read
        );
        assert_eq!(r(Method::GET, "/api/v1/audit"), Right::Admin);
        assert_eq!(r(Method::GET, "/api/v1/keysmith"), Right::Read);
        assert_eq!(r(Method::POST, "/api/v1/webhooks"), Right::Subscribe);
        assert_eq!(
            r(Method::GET, "/api/v1/webhooks/x/deliveries"),
            Right::Subscribe
        );
    }

    fn principal(role: Role) -> Option<Principal> {
        Some(Principal {
            key_id: "k".into(),
            name: "n".into(),
            role,
            territories: vec![],
        })
    }

    #[test]
    fn admission_matrix() {
        let status = |right, role: Option<Role>, public| {
            admit(right, role.and_then(principal), public)
                .map(|_| 200)
                .unwrap_or_else(|e| e.status_code().as_u16())
        };
        assert_eq!(status(Right::Read, None, false), 401);
        assert_eq!(status(Right::Read, None, true), 200);
        assert_eq!(status(Right::Write, None, true), 401);
        assert_eq!(status(Right::KeyedRead, None, true), 401);
        assert_eq!(status(Right::KeyedRead, Some(Role::Partner), false), 200);
        assert_eq!(status(Right::Subscribe, None, true), 401);
        assert_eq!(status(Right::Read, Some(Role::Partner), false), 200);
        assert_eq!(status(Right::Write, Some(Role::Partner), false), 403);
        assert_eq!(status(Right::Write, Some(Role::Facilitator), false), 200);
        assert_eq!(status(Right::Subscribe, Some(Role::Partner), false), 200);
        assert_eq!(status(Right::Admin, Some(Role::Facilitator), false), 403);
        assert_eq!(status(Right::Admin, Some(Role::Admin), false), 200);
    }
}
