//! Synergy lifecycle: facilitators move synergies from `detected` to `implemented` (or reject and
//! abandon them, with a reason), every change recorded in a history; notes; realised values once
//! implemented. Reports on it (`lifecycle/reports.rs`): the territory's KPIs (counts, funnel, tonnes
//! diverted, CO2e and imports avoided, by family and by year, JSON or CSV) and what implemented and
//! proposed synergies change in its AFME account (IMP, DPO landfill, DMC).
//!
//! The rules live in `crate::domain::lifecycle` (transitions) and `crate::afme::impact` (account
//! changes); the SQL in `crate::db::lifecycle`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, guard, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::{Page, PageParams, State, page_slice};
use crate::afme::families::FamilyTable;
use crate::afme::impact::ImpactReport;
use crate::afme::model::Family;
use crate::auth::{Anonymiser, Caller};
use crate::db;
use crate::db::lifecycle::{LifecycleError, LifecycleUpdate, RealisedValues, StatusChange};
use crate::db::models::{SynergyHistoryRow, SynergyNoteRow, SynergyRow};
use crate::detection::Built;
use crate::domain::lifecycle::{SynergyStatus, TransitionError, allowed_next};
use crate::domain::validation::FieldError;

mod reports;
use reports::{
    FamilyKpis, FunnelStep, ImpactLine, ImpactOut, KpiBlock, KpisOut, Outcome, StatusCounts,
    YearKpis, afme_impact, territory_kpis,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `GET /synergies/{id}` is served by `synergies`; this resource only answers PATCH.
    cfg.service(
        web::resource("/synergies/{id}")
            .guard(guard::Patch())
            .route(web::patch().to(patch_synergy)),
    )
    .service(web::resource("/synergies/{id}/history").route(web::get().to(synergy_history)))
    .service(
        web::resource("/synergies/{id}/notes")
            .route(web::get().to(synergy_notes))
            .route(web::post().to(add_note)),
    )
    .service(web::resource("/territories/{code}/kpis").route(web::get().to(territory_kpis)))
    .service(web::resource("/territories/{code}/afme/impact").route(web::get().to(afme_impact)));
}

/// The OpenAPI description of these routes, merged into the service's document.
#[derive(OpenApi)]
#[openapi(
    paths(
        patch_synergy,
        synergy_history,
        synergy_notes,
        add_note,
        reports::territory_kpis,
        reports::afme_impact
    ),
    components(schemas(
        SynergyStatus,
        PatchSynergy,
        RealisedInput,
        SynergyRecord,
        Party,
        RealisedOut,
        HistoryEntry,
        NoteOut,
        NoteInput,
        IllegalTransitionProblem,
        KpisOut,
        KpiBlock,
        StatusCounts,
        FunnelStep,
        Outcome,
        FamilyKpis,
        YearKpis,
        ImpactOut,
        ImpactLine,
        ImpactReport,
    )),
    tags((name = "lifecycle", description = "Synergy lifecycle (status, history, notes, realised values), KPIs and AFME impact"))
)]
pub struct LifecycleApiDoc;

/// Who made a change: this header until API keys name the caller.
pub const USER_HEADER: &str = "X-Symbiose-User";
const MAX_USER_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 2_000;
const MAX_COMMENT_CHARS: usize = 10_000;
const MAX_NOTE_CHARS: usize = 100_000;
/// Import dependence above which a synergy's input is taken to replace an import.
pub const IMPORT_DEPENDENCE_THRESHOLD: f64 = 0.5;

// ---------------------------------------------------------------------------------------------
// wire types

/// A change to a synergy. Every field is optional, but at least one must be given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSynergy {
    /// The new status: `detected → proposed → in_study → implemented`, or `rejected` / `abandoned`
    /// from any open status (with a `reason`). Anything else answers 409 naming the allowed ones.
    pub status: Option<SynergyStatus>,
    /// Why (required for `rejected` and `abandoned`); kept as the synergy's `status_reason`.
    pub reason: Option<String>,
    /// A comment recorded in the history with the status change.
    pub comment: Option<String>,
    /// A note added to the synergy (see `GET …/notes`).
    pub note: Option<String>,
    /// Realised values, only once the synergy is implemented (or becomes so in this request).
    pub realised: Option<RealisedInput>,
}

/// Realised yearly values; a field left out keeps its stored value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealisedInput {
    /// Quantity exchanged per year, in the synergy's `base_unit`, ≥ 0.
    pub quantity: Option<f64>,
    /// Tonnes per year diverted from landfill or incineration, ≥ 0.
    pub diverted_t: Option<f64>,
    /// t CO2e per year avoided, net of transport, ≥ 0.
    pub co2e_avoided_t: Option<f64>,
}

/// A party of a synergy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Party {
    pub actor_id: String,
    /// `provider`, `receiver` or `member` (of a pooling group).
    pub role: String,
    /// `None` when the actor has been deleted since.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RealisedOut {
    pub quantity: Option<f64>,
    pub diverted_t: Option<f64>,
    pub co2e_avoided_t: Option<f64>,
}

/// A synergy as stored: its lifecycle fields, detection fields and the full detected record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SynergyRecord {
    pub id: String,
    /// `substitution` or `pooling`.
    pub kind: String,
    pub status: SynergyStatus,
    pub status_reason: Option<String>,
    /// When a facilitator last changed the status (UTC); `None` while never changed.
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The statuses it may move to.
    pub allowed_next: Vec<SynergyStatus>,
    /// `false` once the detection no longer finds it (a resource was deleted or changed); its
    /// status and history are kept.
    pub active: bool,
    pub first_detected_at: DateTime<Utc>,
    /// When a detection last changed it (score, quantities, explanation) or brought it back.
    pub last_detected_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub score: f64,
    pub class: String,
    pub ewc_code: Option<String>,
    #[schema(value_type = String)]
    pub family: Family,
    pub latent: bool,
    pub distance_km: Option<f64>,
    /// Detected yearly quantity, in `base_unit`.
    pub quantity: Option<f64>,
    pub base_unit: Option<String>,
    pub parties: Vec<Party>,
    pub realised: RealisedOut,
    /// The detected synergy (components, explanations, impact) or pooling group, as last detected.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One status change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub changed_by: String,
    /// UTC.
    pub changed_at: DateTime<Utc>,
    pub from: SynergyStatus,
    pub to: SynergyStatus,
    pub comment: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoteOut {
    pub id: String,
    pub author: String,
    /// UTC.
    pub created_at: DateTime<Utc>,
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub text: String,
}

/// 409 for an illegal status change (RFC 9457, with the statuses that are allowed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IllegalTransitionProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub from: SynergyStatus,
    pub to: SynergyStatus,
    /// The statuses the synergy may move to (empty when its status is final).
    pub allowed: Vec<SynergyStatus>,
}

impl fmt::Display for IllegalTransitionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for IllegalTransitionProblem {
    fn status_code(&self) -> StatusCode {
        StatusCode::CONFLICT
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(StatusCode::CONFLICT)
            .content_type("application/problem+json")
            .json(self)
    }
}

fn illegal(err: &TransitionError) -> Option<IllegalTransitionProblem> {
    match err {
        TransitionError::Illegal { from, to, allowed } => Some(IllegalTransitionProblem {
            kind: "https://symbiose.example/problems/illegal-transition".into(),
            title: "Conflict".into(),
            status: 409,
            detail: err.to_string(),
            from: *from,
            to: *to,
            allowed: allowed.to_vec(),
        }),
        TransitionError::ReasonRequired { .. } => None,
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("synergy `{}`", id.escape_debug()))
}

/// The canonical id of a synergy (404 when it is not a UUID: no synergy has such an id).
fn synergy_id(id: &str) -> Result<String, ApiError> {
    Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| not_found(id))
}

/// Who makes the change: the key's name, or `person via key` when the `X-Symbiose-User` header
/// (at most 200 characters) names the person behind a shared key (a portal's).
fn changed_by(req: &HttpRequest, caller: &Caller) -> Result<String, ApiError> {
    let key = caller.who();
    let Some(value) = req.headers().get(USER_HEADER) else {
        return Ok(key);
    };
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| ApiError::field(USER_HEADER, "must be UTF-8 text"))?
        .trim();
    if text.is_empty() {
        return Ok(key);
    }
    if text.chars().count() > MAX_USER_CHARS {
        return Err(ApiError::field(
            USER_HEADER,
            format!("must be at most {MAX_USER_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::field(
            USER_HEADER,
            "must not contain control characters",
        ));
    }
    Ok(format!("{text} via {key}"))
}

/// A free-text field: trimmed, at most `max` characters, no NUL (no database stores it in text).
/// Blank text counts as absent.
fn text_field(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let text = value.map(str::trim).filter(|t| !t.is_empty())?;
    if text.chars().count() > max {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be at most {max} characters"),
            row: None,
        });
        return None;
    }
    if text.contains('\0') {
        errors.push(FieldError {
            field: field.into(),
            message: "must not contain NUL characters".into(),
            row: None,
        });
        return None;
    }
    Some(text.to_owned())
}

/// The AFME family of a stored synergy: the rule of `Prioritiser::family` (class, else EWC code)
/// on the stored class and code; a pooling group keyed by an EWC code by its code.
pub fn family_of(row: &SynergyRow) -> Family {
    let table = FamilyTable::builtin();
    if row.kind == "pooling" && row.class.starts_with(|c: char| c.is_ascii_digit()) {
        return table.family_for_ewc(&row.class);
    }
    table.family_for_resource(&row.class, row.ewc_code.as_deref())
}

fn status_of(row: &SynergyRow) -> Result<SynergyStatus, ApiError> {
    db::lifecycle::status_of(row).map_err(|e| ApiError::Internal(e.to_string()))
}

fn record(row: SynergyRow, built: &Built) -> Result<SynergyRecord, ApiError> {
    let status = status_of(&row)?;
    let name = |id: &str| {
        Uuid::parse_str(id)
            .ok()
            .and_then(|u| built.actors.get(&u))
            .map(|a| a.name.clone())
    };
    let mut parties = Vec::new();
    for (id, role) in [
        (&row.provider_actor_id, "provider"),
        (&row.receiver_actor_id, "receiver"),
    ] {
        if let Some(id) = id {
            parties.push(Party {
                actor_id: id.clone(),
                role: role.into(),
                name: name(id),
            });
        }
    }
    if row.kind == "pooling" {
        for id in db::lifecycle::parties(&row) {
            parties.push(Party {
                name: name(&id),
                actor_id: id,
                role: "member".into(),
            });
        }
    }
    Ok(SynergyRecord {
        family: family_of(&row),
        id: row.id,
        kind: row.kind,
        status,
        status_reason: row.status_reason,
        status_changed_at: row.status_changed_at.map(|t| t.and_utc()),
        allowed_next: allowed_next(status).to_vec(),
        active: row.active,
        first_detected_at: row.first_detected_at.and_utc(),
        last_detected_at: row.last_detected_at.and_utc(),
        retired_at: row.retired_at.map(|t| t.and_utc()),
        score: row.score,
        class: row.class,
        ewc_code: row.ewc_code,
        latent: row.latent,
        distance_km: row.distance_km,
        quantity: row.quantity,
        base_unit: row.base_unit,
        parties,
        realised: RealisedOut {
            quantity: row.realised_quantity,
            diverted_t: row.realised_diverted_t,
            co2e_avoided_t: row.realised_co2e_t,
        },
        detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null),
    })
}

fn history_entry(row: SynergyHistoryRow) -> Result<HistoryEntry, ApiError> {
    let parse = |s: &str| {
        SynergyStatus::parse(s).ok_or_else(|| {
            ApiError::Internal(format!("stored status `{s}` is not a lifecycle status"))
        })
    };
    Ok(HistoryEntry {
        from: parse(&row.from_status)?,
        to: parse(&row.to_status)?,
        id: row.id,
        changed_by: row.changed_by,
        changed_at: row.changed_at.and_utc(),
        comment: row.comment,
        reason: row.reason,
    })
}

fn note_out(row: SynergyNoteRow) -> NoteOut {
    NoteOut {
        id: row.id,
        author: row.author,
        created_at: row.created_at.and_utc(),
        text: row.text,
    }
}

/// Checks the request: every bad field at once.
fn parse_patch(
    body: PatchSynergy,
    changed_by: String,
    at: NaiveDateTime,
) -> Result<LifecycleUpdate, ApiError> {
    let mut errors = Vec::new();
    let reason = text_field(
        &mut errors,
        "reason",
        body.reason.as_deref(),
        MAX_REASON_CHARS,
    );
    let comment = text_field(
        &mut errors,
        "comment",
        body.comment.as_deref(),
        MAX_COMMENT_CHARS,
    );
    let note = text_field(&mut errors, "note", body.note.as_deref(), MAX_NOTE_CHARS);
    if body.note.is_some() && note.is_none() && !errors.iter().any(|e| e.field == "note") {
        errors.push(FieldError {
            field: "note".into(),
            message: "must not be empty".into(),
            row: None,
        });
    }
    if body.status.is_none() {
        for (field, given) in [("reason", reason.is_some()), ("comment", comment.is_some())] {
            if given {
                errors.push(FieldError {
                    field: field.into(),
                    message: format!("a {field} is recorded with a status change: give `status` too (or send a `note`)"),
                    row: None,
                });
            }
        }
    }
    let realised = match &body.realised {
        None => None,
        Some(r) => {
            let mut check = |field: &str, v: Option<f64>| {
                if let Some(x) = v
                    && !(x.is_finite() && x >= 0.0)
                {
                    errors.push(FieldError {
                        field: format!("realised.{field}"),
                        message: "must be a number ≥ 0".into(),
                        row: None,
                    });
                }
            };
            check("quantity", r.quantity);
            check("diverted_t", r.diverted_t);
            check("co2e_avoided_t", r.co2e_avoided_t);
            let values = RealisedValues {
                quantity: r.quantity,
                diverted_t: r.diverted_t,
                co2e_t: r.co2e_avoided_t,
            };
            if values == RealisedValues::default() {
                errors.push(FieldError {
                    field: "realised".into(),
                    message: "give at least one of quantity, diverted_t, co2e_avoided_t".into(),
                    row: None,
                });
            }
            Some(values)
        }
    };
    if body.status.is_none() && body.note.is_none() && body.realised.is_none() && errors.is_empty()
    {
        errors.push(FieldError {
            field: "body".into(),
            message: "nothing to change: give `status`, `note` or `realised`".into(),
            row: None,
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(LifecycleUpdate {
        changed_by,
        at,
        status: body.status.map(|to| StatusChange {
            to,
            reason,
            comment,
        }),
        realised,
        note,
    })
}

// ---------------------------------------------------------------------------------------------
// lifecycle handlers

/// 403 unless the synergy has an actor in the caller's territories (ids that do not parse or are
/// unknown pass: the handler answers 404).
async fn check_parties(
    state: &State,
    caller: &Caller,
    built: &crate::detection::Built,
    id: &str,
) -> Result<(), ApiError> {
    match Uuid::parse_str(id) {
        Ok(uuid) => super::synergies::check_parties(state, caller, built, uuid).await,
        Err(_) => Ok(()),
    }
}

/// Change a synergy's status (with a history entry), enter its realised values once implemented,
/// add a note — all in one transaction. The author is the key's name (`person via key` with the
/// `X-Symbiose-User` header). Re-detection never changes what is set here.
#[utoipa::path(
    patch,
    path = "/api/v1/synergies/{id}",
    tag = "lifecycle",
    params(
        ("id" = String, Path, description = "Synergy id"),
        ("X-Symbiose-User" = Option<String>, Header, description = "The person behind the key (≤ 200 characters), recorded as `person via key name`"),
    ),
    request_body = PatchSynergy,
    responses(
        (status = 200, body = SynergyRecord),
        (status = 404, body = super::error::Problem),
        (status = 409, description = "Illegal status change (with the allowed ones), or realised values on a synergy not implemented", body = IllegalTransitionProblem),
        (status = 415, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn patch_synergy(
    state: State,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ValidJson<PatchSynergy>,
) -> Result<HttpResponse, actix_web::Error> {
    let id = synergy_id(&id)?;
    let update = parse_patch(body.0, changed_by(&req, &caller)?, crate::db::now())?;
    // A synergy of the current detection is stored on its first decision.
    let built = super::synergies::current(&state).await?;
    check_parties(&state, &caller, &built, &id).await?;
    let changes_status = update.status.is_some();
    let owned = id.clone();
    let candidate = built.stored_form(&id);
    let result = db::run(&state.pool, move |conn| {
        Ok(db::lifecycle::apply(
            conn,
            &owned,
            candidate.as_ref(),
            &update,
        ))
    })
    .await
    .map_err(ApiError::from)?;
    let updated = match result {
        Ok(updated) => updated,
        Err(LifecycleError::NotFound) => return Err(not_found(&id).into()),
        Err(LifecycleError::Transition(err)) => {
            return Err(match illegal(&err) {
                Some(problem) => problem.into(),
                None => ApiError::field("reason", err.to_string()).into(),
            });
        }
        Err(err @ LifecycleError::NotImplemented(_)) => {
            return Err(ApiError::Conflict(err.to_string()).into());
        }
        Err(LifecycleError::Query(err)) => {
            return Err(ApiError::from(db::DbError::Query(err)).into());
        }
        Err(err @ LifecycleError::UnknownStatus(_)) => {
            return Err(ApiError::Internal(err.to_string()).into());
        }
    };
    if changes_status {
        // Synergy lists read statuses from the detection build: update it in place.
        state
            .detection
            .record_status(&updated.row.id, &updated.row.status);
    }
    Ok(HttpResponse::Ok().json(record(updated.row, &built)?))
}

/// Whether `id` is a synergy of `built`. Partners and public readers reach the notes and history of
/// the synergies of their view only: whether the exact sites give a synergy they are not shown
/// would say something of those sites.
fn in_view(built: &Built, id: &str) -> bool {
    Uuid::parse_str(id).is_ok_and(|uuid| !super::synergies::parties(built, uuid).is_empty())
}

/// For partners and public readers, the anonymiser of every non-consenting actor: people's comments,
/// reasons and notes may name any actor, not only the synergy's parties (the gate's anonymiser
/// knows only the actors a response references by id).
async fn free_text_anonymiser(
    state: &State,
    caller: &Caller,
) -> Result<Option<Anonymiser>, ApiError> {
    if !caller.anonymises() {
        return Ok(None);
    }
    let reference = state.reference.clone();
    let secret = state.settings.auth.anonymisation_secret.clone();
    let anonymiser = db::run(&state.pool, move |conn| {
        Anonymiser::load_all(conn, &reference, &secret)
    })
    .await?;
    Ok(Some(anonymiser))
}

/// Status changes of a synergy, oldest first: who, when, from, to, comment, reason.
#[utoipa::path(
    get,
    path = "/api/v1/synergies/{id}/history",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Synergy id"), PageParams),
    responses((status = 200, body = Page<HistoryEntry>), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn synergy_history(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    page: ValidQuery<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let id = synergy_id(&id)?;
    let built = super::synergies::current_for(&state, &caller).await?;
    check_parties(&state, &caller, &built, &id).await?;
    let anonymised = caller.anonymises();
    if anonymised && !in_view(&built, &id) {
        return Err(not_found(&id));
    }
    let owned = id.clone();
    let rows = match db::run(&state.pool, move |conn| {
        db::lifecycle::history(conn, &owned)
    })
    .await
    {
        Ok(rows) => rows,
        // Nobody decided anything about it yet (or, for an anonymous view, the exact sites do not
        // give it): nothing stored.
        Err(db::DbError::NotFound) if anonymised || in_view(&built, &id) => Vec::new(),
        Err(db::DbError::NotFound) => return Err(not_found(&id)),
        Err(other) => return Err(other.into()),
    };
    let mut entries = rows
        .into_iter()
        .map(history_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(anonymiser) = free_text_anonymiser(&state, &caller).await? {
        for entry in &mut entries {
            for text in [&mut entry.comment, &mut entry.reason]
                .into_iter()
                .flatten()
            {
                *text = anonymiser.redact(text);
            }
        }
    }
    Ok(HttpResponse::Ok().json(page_slice(&state, &entries, &page.0)?))
}

/// Notes on a synergy, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/synergies/{id}/notes",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Synergy id"), PageParams),
    responses((status = 200, body = Page<NoteOut>), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn synergy_notes(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    page: ValidQuery<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let id = synergy_id(&id)?;
    let built = super::synergies::current_for(&state, &caller).await?;
    check_parties(&state, &caller, &built, &id).await?;
    let anonymised = caller.anonymises();
    if anonymised && !in_view(&built, &id) {
        return Err(not_found(&id));
    }
    let owned = id.clone();
    let rows = match db::run(&state.pool, move |conn| db::lifecycle::notes(conn, &owned)).await {
        Ok(rows) => rows,
        // Nobody decided anything about it yet (or, for an anonymous view, the exact sites do not
        // give it): nothing stored.
        Err(db::DbError::NotFound) if anonymised || in_view(&built, &id) => Vec::new(),
        Err(db::DbError::NotFound) => return Err(not_found(&id)),
        Err(other) => return Err(other.into()),
    };
    let mut notes: Vec<NoteOut> = rows.into_iter().map(note_out).collect();
    if let Some(anonymiser) = free_text_anonymiser(&state, &caller).await? {
        for note in &mut notes {
            note.text = anonymiser.redact(&note.text);
        }
    }
    Ok(HttpResponse::Ok().json(page_slice(&state, &notes, &page.0)?))
}

/// Add a note to a synergy (also possible with `PATCH … {"note": …}`). The author is the
/// key's name (`person via key` with the `X-Symbiose-User` header).
#[utoipa::path(
    post,
    path = "/api/v1/synergies/{id}/notes",
    tag = "lifecycle",
    params(
        ("id" = String, Path, description = "Synergy id"),
        ("X-Symbiose-User" = Option<String>, Header, description = "The person behind the key (≤ 200 characters), recorded as `person via key name`"),
    ),
    request_body = NoteInput,
    responses((status = 201, body = NoteOut), (status = 404, body = super::error::Problem), (status = 415, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn add_note(
    state: State,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
    body: ValidJson<NoteInput>,
) -> Result<HttpResponse, ApiError> {
    let id = synergy_id(&id)?;
    let author = changed_by(&req, &caller)?;
    let mut errors = Vec::new();
    let text = text_field(&mut errors, "text", Some(&body.0.text), MAX_NOTE_CHARS);
    let Some(text) = text else {
        if errors.is_empty() {
            return Err(ApiError::field("text", "must not be empty"));
        }
        return Err(ApiError::Validation(errors));
    };
    let built = super::synergies::current(&state).await?;
    check_parties(&state, &caller, &built, &id).await?;
    let owned = id.clone();
    let at = crate::db::now();
    let candidate = built.stored_form(&id);
    let note = db::run(&state.pool, move |conn| {
        db::lifecycle::add_note(conn, &owned, candidate.as_ref(), &author, &text, at)
    })
    .await
    .map_err(|e| match e {
        db::DbError::NotFound => not_found(&id),
        other => other.into(),
    })?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/synergies/{id}/notes")))
        .json(note_out(note)))
}
