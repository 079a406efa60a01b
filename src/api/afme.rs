//! Territorial material flow accounts (AFME) of a territory: CSV import and export, indicators,
//! Sankey, aggregation of members, reconciliation and territorial priorities. Handlers are thin:
//! the rules live in `crate::afme`, the SQL in `crate::db::afme`. The CSV import is in
//! `afme/import.rs`, aggregation and reconciliation in `afme/consolidation.rs`.
//!
//! A territory is a code of the reference hierarchy (`21`, `R27`, `FR`) or a custom zone
//! (`27-BOURGOGNE`); accounts are stored under its canonical code (`r27` → `R27`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::State;
use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use crate::afme::aggregate::{AggregatedAccount, ComparisonRow};
use crate::afme::indicators::{AccountIndicators, IndicatorOptions, compute_indicators};
use crate::afme::labels::{localise_indicators, localise_sankey};
use crate::afme::priority::{PriorityReport, territorial_priorities};
use crate::afme::reconcile::Reconciliation;
use crate::afme::sankey::{Sankey, build_sankey};
use crate::afme::{AccountRow, AfmeError, RowError};
use crate::auth::Caller;
use crate::db::{self, TerritoryScope};
use crate::domain::validation::FieldError;
use crate::reference::{Lang, TerritoryRef};

mod consolidation;
mod import;
use consolidation::{aggregate, reconcile};
use import::import_account;
pub use import::{ImportOut, ImportedAccount};

/// The reader's language, from `Accept-Language` (French by default, English on request): the
/// labels the service writes (AFME indicators, Sankey nodes, families, resource classes) and the
/// convention of its CSV exports. Never refused: an unsupported or malformed header is French.
impl actix_web::FromRequest for Lang {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Lang, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Lang::from_accept_language(
            req.headers()
                .get(actix_web::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )))
    }
}

/// An answer whose labels are in `lang`: `Content-Language`, and `Vary: Accept-Language` so that
/// caches keep one copy per language.
pub(crate) fn in_lang(lang: Lang) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header(("Content-Language", lang.code()))
        .insert_header(("Vary", "Accept-Language"));
    builder
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Resources (not method macros) so that a wrong method on a known path is a 405, not a 404.
    cfg.service(
        web::resource("/territories/{code}/afme/import").route(web::post().to(import_account)),
    )
    .service(web::resource("/territories/{code}/afme").route(web::get().to(get_account)))
    .service(web::resource("/territories/{code}/afme.csv").route(web::get().to(export_csv)))
    .service(web::resource("/territories/{code}/afme/sankey").route(web::get().to(sankey)))
    .service(web::resource("/territories/{code}/afme/aggregate").route(web::get().to(aggregate)))
    .service(web::resource("/territories/{code}/afme/reconcile").route(web::post().to(reconcile)))
    .service(
        web::resource("/territories/{code}/afme/population/{year}")
            .route(web::put().to(put_population))
            .route(web::delete().to(delete_population)),
    )
    .service(web::resource("/territories/{code}/priorities").route(web::get().to(priorities)));
}

/// The OpenAPI description of these routes, merged into the service's document.
#[derive(OpenApi)]
#[openapi(
    paths(
        import::import_account,
        get_account,
        export_csv,
        sankey,
        consolidation::aggregate,
        consolidation::reconcile,
        put_population,
        delete_population,
        priorities,
    ),
    components(schemas(
        ImportOut,
        ImportedAccount,
        AccountOut,
        PopulationOut,
        PopulationSource,
        AggregateOut,
        DeclaredComparison,
        ReconcileInput,
        SumConstraintInput,
        ReconcileOut,
        PopulationInput,
        AccountRow,
        AccountIndicators,
        Sankey,
        AggregatedAccount,
        ComparisonRow,
        Reconciliation,
        PriorityReport,
        RowError,
    )),
    tags((name = "afme", description = "Territorial material flow accounts (AFME): import, indicators, Sankey, aggregation, reconciliation, priorities"))
)]
pub struct AfmeApiDoc;

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2100;

// ---------------------------------------------------------------------------------------------
// wire types

/// Where the population used for per-capita values comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PopulationSource {
    /// Set for that year with `PUT …/afme/population/{year}`.
    Override,
    /// The reference communes' population (latest census), summed up the hierarchy or over the
    /// zone's communes.
    ReferenceCommunes,
    /// Unknown: no per-capita values.
    None,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PopulationOut {
    pub value: Option<u64>,
    pub source: PopulationSource,
}

/// A territory's account for one year with its indicators.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub territory: TerritoryRef,
    pub year: i32,
    /// Every year with an account for this territory.
    pub years: Vec<i32>,
    pub population: PopulationOut,
    /// The rows, in file order: `from_rows` and reconciliation constraints index into this list.
    pub rows: Vec<AccountRow>,
    pub indicators: AccountIndicators,
}

/// A territory's account built from its members' accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateOut {
    pub territory: TerritoryRef,
    pub year: i32,
    pub population: PopulationOut,
    /// Every member (départements of a région or of a zone's communes; children otherwise).
    pub members: Vec<String>,
    pub members_with_account: Vec<String>,
    pub members_without_account: Vec<String>,
    /// The rows of the members, as stored: `sources` and `cancelled_rows` index into this list.
    pub member_rows: Vec<AccountRow>,
    pub aggregated: AggregatedAccount,
    pub indicators: AccountIndicators,
    /// The comparison with an account declared directly for the territory, when there is one.
    pub declared: Option<DeclaredComparison>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeclaredComparison {
    pub rows: Vec<AccountRow>,
    pub indicators: AccountIndicators,
    pub comparison: Vec<ComparisonRow>,
}

/// Options of a reconciliation. Every field is optional; an empty body reconciles the balance.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileInput {
    /// Extra constraints `rows[total] = Σ rows[parts]` (indices into the account's rows as
    /// `GET …/afme?year=` lists them).
    #[serde(default)]
    pub constraints: Vec<SumConstraintInput>,
    /// Significance level of the χ² and per-row tests, in (0, 1); default 0.05.
    pub alpha: Option<f64>,
    /// Include the balance identity DE + IMP + BI_IN = EXP + DPO + NAS + BI_OUT (default true;
    /// needs declared NAS rows).
    pub balance: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SumConstraintInput {
    pub name: String,
    /// Index of the total row.
    pub total: usize,
    /// Indices of the part rows.
    pub parts: Vec<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileOut {
    pub territory: String,
    pub year: i32,
    /// The rows as stored; `reconciliation.values[i]` is about `rows[i]`.
    pub rows: Vec<AccountRow>,
    pub reconciliation: Reconciliation,
    /// The rows with reconciled values (not stored).
    pub adjusted_rows: Vec<AccountRow>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PopulationInput {
    /// Inhabitants.
    #[schema(minimum = 1, maximum = 10_000_000_000_u64)]
    pub population: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Year of the account (default: the latest year with an account).
    pub year: Option<i32>,
    /// Balance tolerance in tonnes (default 100,000 t: published accounts are rounded to 0.1 Mt).
    pub tolerance_t: Option<f64>,
    /// `json` (default) or `csv` (same as `…/afme.csv`).
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    /// Year of the account (default: the latest year with an account).
    pub year: Option<i32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregateQuery {
    /// Year (default: the latest year any member has an account for).
    pub year: Option<i32>,
    /// Balance tolerance in tonnes (default 100,000 t).
    pub tolerance_t: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// helpers

fn check_year(year: Option<i32>, field: &str) -> Result<Option<i32>, ApiError> {
    match year {
        Some(y) if !(MIN_YEAR..=MAX_YEAR).contains(&y) => Err(ApiError::field(
            field,
            format!("must be between {MIN_YEAR} and {MAX_YEAR}"),
        )),
        other => Ok(other),
    }
}

fn indicator_options(
    population: &PopulationOut,
    tolerance_t: Option<f64>,
) -> Result<IndicatorOptions, ApiError> {
    let mut options = IndicatorOptions {
        population: population.value.map(|p| p as f64),
        ..IndicatorOptions::default()
    };
    if let Some(t) = tolerance_t {
        if !t.is_finite() || t < 0.0 {
            return Err(ApiError::field(
                "tolerance_t",
                "must be a number of tonnes ≥ 0",
            ));
        }
        options.tolerance_t = t;
    }
    Ok(options)
}

fn years_text(years: &[i32]) -> String {
    years
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 404 of a missing account, naming the years that have one.
fn no_account(code: &str, year: Option<i32>, years: &[i32]) -> ApiError {
    match (year, years.is_empty()) {
        (_, true) => ApiError::NotFound(format!(
            "AFME account of `{code}` (no year has one yet: import one with POST /api/v1/territories/{code}/afme/import)"
        )),
        (Some(y), false) => ApiError::NotFound(format!(
            "AFME account of `{code}` for {y} (years with an account: {})",
            years_text(years)
        )),
        (None, false) => ApiError::NotFound(format!("AFME account of `{code}`")),
    }
}

/// An AFME engine error as problem+json: client errors are 422 naming `field`.
fn afme_error(err: AfmeError, field: &str) -> ApiError {
    match err {
        AfmeError::InvalidRows(errors) => ApiError::Validation(row_errors(errors)),
        AfmeError::FamilyTable(message) => ApiError::Internal(message),
        other => ApiError::field(field, other.to_string()),
    }
}

/// Bad CSV cells as field errors: `field` is the column, `row` the file line (header = 1).
fn row_errors(mut errors: Vec<RowError>) -> Vec<FieldError> {
    errors.sort_by_key(|e| e.row);
    errors
        .into_iter()
        .map(|e| FieldError {
            field: if e.column.is_empty() {
                "row".to_owned()
            } else {
                e.column
            },
            message: e.message,
            row: Some(e.row as u64),
        })
        .collect()
}

/// The territory and, for a custom zone, its communes.
async fn territory(
    state: &State,
    code: &str,
) -> Result<(TerritoryRef, Option<Vec<String>>), ApiError> {
    // Every code of the hierarchy and of custom zones is 1–64 letters, digits, '-' or '_': anything
    // else is unknown without asking the database (PostgreSQL refuses NUL bytes in text, for one).
    if code.is_empty()
        || code.len() > 64
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::NotFound(format!(
            "territory `{}`",
            code.escape_debug()
        )));
    }
    let (t, scope) = super::territories::resolve(state, code).await?;
    let communes = match scope {
        TerritoryScope::Zone(zone) => {
            let communes =
                db::run(&state.pool, move |conn| db::zones::communes(conn, &zone)).await?;
            Some(communes)
        }
        _ => None,
    };
    Ok((t, communes))
}

/// The population for per-capita values: the override for that year, else the reference
/// communes' population.
async fn population(state: &State, t: &TerritoryRef, year: i32) -> Result<PopulationOut, ApiError> {
    let code = t.code.clone();
    let set = db::run(&state.pool, move |conn| {
        db::afme::population(conn, &code, year)
    })
    .await?;
    Ok(match set.and_then(|p| u64::try_from(p).ok()) {
        Some(p) => PopulationOut {
            value: Some(p),
            source: PopulationSource::Override,
        },
        None if t.population > 0 => PopulationOut {
            value: Some(t.population),
            source: PopulationSource::ReferenceCommunes,
        },
        None => PopulationOut {
            value: None,
            source: PopulationSource::None,
        },
    })
}

/// The account of a territory for a year (the latest when `year` is `None`): the year, every year
/// with an account, and the rows. 404 when there is none.
pub(crate) async fn load_account(
    state: &State,
    code: &str,
    year: Option<i32>,
) -> Result<(i32, Vec<i32>, Vec<AccountRow>), ApiError> {
    let owned = code.to_owned();
    let (years, chosen, rows) = db::run(&state.pool, move |conn| {
        let years = db::afme::years(conn, std::slice::from_ref(&owned))?;
        let chosen = match year {
            Some(y) => years.contains(&y).then_some(y),
            None => years.last().copied(),
        };
        let rows = match chosen {
            Some(y) => db::afme::list_rows(conn, &owned, Some(y))?,
            None => Vec::new(),
        };
        Ok((years, chosen, rows))
    })
    .await?;
    match chosen {
        Some(y) => Ok((y, years, rows)),
        None => Err(no_account(code, year, &years)),
    }
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// handlers

/// A territory's account for one year (default: the latest) with its indicators: DMI, DMC, PTB,
/// DPO and its parts, NAS declared and as residual, balance gap and tolerance, per-capita values,
/// shares by family, largest items, LEPO and DMCcorr. `?format=csv` answers the CSV export.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/afme",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), AccountQuery),
    responses(
        (status = 200, description = "The account, or its CSV export with `format=csv`", content((AccountOut = "application/json"), (String = "text/csv"))),
        (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn get_account(
    state: State,
    caller: Caller,
    lang: Lang,
    code: web::Path<String>,
    query: ValidQuery<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let query = query.0;
    match query
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("json") => {}
        Some("csv") => return csv_response(&state, &code, query.year, lang).await,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    }
    let year = check_year(query.year, "year")?;
    let (t, _) = territory(&state, &code).await?;
    let (year, years, rows) = load_account(&state, &t.code, year).await?;
    let population = population(&state, &t, year).await?;
    let options = indicator_options(&population, query.tolerance_t)?;
    let mut indicators = compute_indicators(&rows, &t.code, year, &options);
    localise_indicators(&mut indicators, lang);
    Ok(in_lang(lang).json(AccountOut {
        territory: t,
        year,
        years,
        population,
        rows,
        indicators,
    }))
}

/// The account as CSV in the tidy import format (re-importable as is): one year with `?year=`,
/// every year otherwise.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/afme.csv",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), YearQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn export_csv(
    state: State,
    caller: Caller,
    lang: Lang,
    code: web::Path<String>,
    query: ValidQuery<YearQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    csv_response(&state, &code, query.0.year, lang).await
}

async fn csv_response(
    state: &State,
    code: &str,
    year: Option<i32>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let year = check_year(year, "year")?;
    let (t, _) = territory(state, code).await?;
    let owned = t.code.clone();
    let (years, rows) = db::run(&state.pool, move |conn| {
        let years = db::afme::years(conn, std::slice::from_ref(&owned))?;
        let rows = match year {
            Some(y) if !years.contains(&y) => Vec::new(),
            _ => db::afme::list_rows(conn, &owned, year)?,
        };
        Ok((years, rows))
    })
    .await?;
    if rows.is_empty() {
        return Err(no_account(&t.code, year, &years));
    }
    let text = crate::afme::csv::account_csv_string_in(&rows, lang)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let file = match year {
        Some(y) => format!("afme_{}_{y}.csv", t.code),
        None => format!("afme_{}.csv", t.code),
    };
    Ok(in_lang(lang)
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .body(text))
}

/// The account as a d3-sankey diagram (values in kt): inputs → territory → outputs, one link per
/// family; no cycles.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/afme/sankey",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), YearQuery),
    responses(
        (status = 200, body = Sankey),
        (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn sankey(
    state: State,
    caller: Caller,
    lang: Lang,
    code: web::Path<String>,
    query: ValidQuery<YearQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let year = check_year(query.0.year, "year")?;
    let (t, _) = territory(&state, &code).await?;
    let (year, _, rows) = load_account(&state, &t.code, year).await?;
    let mut sankey = build_sankey(&rows, &t.code, year, &t.name);
    localise_sankey(&mut sankey, lang);
    Ok(in_lang(lang).json(sankey))
}

/// Set the population of a territory for one year (per-capita values of that year's account then
/// use it instead of the reference communes' latest census).
#[utoipa::path(
    put,
    path = "/api/v1/territories/{code}/afme/population/{year}",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), ("year" = i32, Path, description = "Year", minimum = 1900, maximum = 2100)),
    request_body = PopulationInput,
    responses(
        (status = 200, body = PopulationOut),
        (status = 404, body = super::error::Problem),
        (status = 415, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn put_population(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ValidJson<PopulationInput>,
) -> Result<HttpResponse, ApiError> {
    let (code, year) = path.into_inner();
    caller.check_territory(&state, &code).await?;
    let year = parse_path_year(&year)?;
    let population = body.0.population;
    let stored = i64::try_from(population)
        .ok()
        .filter(|p| (1..=10_000_000_000).contains(p))
        .ok_or_else(|| ApiError::field("population", "must be between 1 and 10,000,000,000"))?;
    let (t, _) = territory(&state, &code).await?;
    let owned = t.code.clone();
    db::run(&state.pool, move |conn| {
        db::afme::set_population(conn, &owned, year, stored)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PopulationOut {
        value: Some(population),
        source: PopulationSource::Override,
    }))
}

/// Remove the population override of a territory for one year.
#[utoipa::path(
    delete,
    path = "/api/v1/territories/{code}/afme/population/{year}",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), ("year" = i32, Path, description = "Year", minimum = 1900, maximum = 2100)),
    responses((status = 204), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem))
)]
pub async fn delete_population(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (code, year) = path.into_inner();
    caller.check_territory(&state, &code).await?;
    let year = parse_path_year(&year)?;
    let (t, _) = territory(&state, &code).await?;
    let owned = t.code.clone();
    db::run(&state.pool, move |conn| {
        db::afme::delete_population(conn, &owned, year)
    })
    .await
    .map_err(|e| match e {
        db::DbError::NotFound => {
            ApiError::NotFound(format!("population override of `{}` for {year}", t.code))
        }
        other => other.into(),
    })?;
    Ok(HttpResponse::NoContent().finish())
}

fn parse_path_year(text: &str) -> Result<i32, ApiError> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
        .ok_or_else(|| {
            ApiError::field(
                "year",
                format!("`{text}` is not a year between {MIN_YEAR} and {MAX_YEAR}"),
            )
        })
}

/// Territorial priority of each AFME family, from the territory's account (import dependence,
/// share landfilled, weight in DMC) with its formula; every family at the neutral 0.5 when the
/// territory has no account (for that year).
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/priorities",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), YearQuery),
    responses(
        (status = 200, body = PriorityReport),
        (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem),
    )
)]
pub async fn priorities(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<YearQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let year = check_year(query.0.year, "year")?;
    let report = priorities_for_year(&state, &code, year).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The territorial priorities of `code` from its latest account (neutral when it has none), for
/// the matching score. 404 for an unknown territory.
pub async fn priorities_for(state: &State, code: &str) -> Result<PriorityReport, ApiError> {
    priorities_for_year(state, code, None).await
}

/// As [`priorities_for`], from the account of `year` when given (neutral when that year has none).
pub async fn priorities_for_year(
    state: &State,
    code: &str,
    year: Option<i32>,
) -> Result<PriorityReport, ApiError> {
    let (t, _) = territory(state, code).await?;
    let weights = state.settings.afme.priority.clone();
    let owned = t.code.clone();
    let account = db::run(&state.pool, move |conn| {
        let years = db::afme::years(conn, std::slice::from_ref(&owned))?;
        let chosen = match year {
            Some(y) => years.contains(&y).then_some(y),
            None => years.last().copied(),
        };
        Ok(match chosen {
            Some(y) => Some((y, db::afme::list_rows(conn, &owned, Some(y))?)),
            None => None,
        })
    })
    .await?;
    let report = match account {
        Some((y, rows)) => territorial_priorities(&rows, &t.code, y, &weights),
        None => crate::afme::priority::neutral_priorities(&t.code, &weights),
    };
    report.map_err(|e| ApiError::Internal(e.to_string()))
}
