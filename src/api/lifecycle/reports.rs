//! Reports on the lifecycle: the territory's KPIs (counts, funnel, tonnes diverted, CO2e and
//! imports avoided, by family and by year, JSON or CSV) and what implemented and proposed synergies
//! change in its AFME account (IMP, DPO landfill, DMC). Stored synergies count with their realised or
//! stored figures, detected ones nobody decided anything about with the build's figures.

use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::afme::families::FamilyTable;
use crate::afme::impact::{ImpactReport, SynergyImpact, account_impact};
use crate::afme::indicators::{IndicatorOptions, compute_indicators};
use crate::afme::model::Family;
use crate::afme::priority::PriorityReport;
use crate::api::State;
use crate::api::error::ApiError;
use crate::api::extract::ValidQuery;
use crate::auth::Caller;
use crate::db;
use crate::db::lifecycle::LifecycleData;
use crate::db::models::SynergyRow;
use crate::detection::Built;
use crate::domain::lifecycle::{FUNNEL, SynergyStatus, furthest_stage};
use crate::reference::{Lang, TerritoryRef};

use super::{IMPORT_DEPENDENCE_THRESHOLD, family_of, status_of};

// ---------------------------------------------------------------------------------------------
// what a synergy brings, for the KPIs and the account impact

/// The fields of a stored substitution synergy's detail that the reports read.
#[derive(Debug, Default, Deserialize, Serialize)]
struct StoredDetail {
    #[serde(default)]
    impact: Option<StoredImpact>,
}

#[derive(Debug, Deserialize, Serialize)]
struct StoredImpact {
    diverted_tonnes: f64,
    net_co2e_t: f64,
}

/// What one synergy brings per year, realised values overriding the detected estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Effects {
    /// Tonnes exchanged (substitutions whose base unit is t).
    exchanged_t: f64,
    diverted_t: f64,
    co2e_t: f64,
    /// `exchanged_t` when the input replaces an import, else 0.
    imports_t: f64,
    substitutes_import: bool,
    /// Whether any realised value was used.
    realised: bool,
}

/// Whether a family's input is mostly imported in the territory (import dependence > 0.5).
fn substitutes_import(report: &PriorityReport, family: Family) -> bool {
    report
        .families
        .iter()
        .find(|f| f.family == family)
        .and_then(|f| f.import_dependence)
        .is_some_and(|d| d > IMPORT_DEPENDENCE_THRESHOLD)
}

fn non_negative(x: f64) -> f64 {
    if x.is_finite() { x.max(0.0) } else { 0.0 }
}

/// What [`effects`] reads of a synergy, stored or only detected.
struct Figures {
    substitution: bool,
    quantity: Option<f64>,
    in_tonnes: bool,
    /// The detected impact: tonnes diverted, net t CO2e.
    impact: Option<(f64, f64)>,
    realised_quantity: Option<f64>,
    realised_diverted_t: Option<f64>,
    realised_co2e_t: Option<f64>,
}

impl Figures {
    fn of_row(row: &SynergyRow) -> Figures {
        let detail: StoredDetail = if row.kind == "substitution" {
            serde_json::from_str(&row.detail).unwrap_or_default()
        } else {
            StoredDetail::default()
        };
        Figures {
            substitution: row.kind == "substitution",
            quantity: row.quantity,
            in_tonnes: row.base_unit.as_deref() == Some("t"),
            impact: detail.impact.map(|i| (i.diverted_tonnes, i.net_co2e_t)),
            realised_quantity: row.realised_quantity,
            realised_diverted_t: row.realised_diverted_t,
            realised_co2e_t: row.realised_co2e_t,
        }
    }

    /// A detected synergy nobody decided anything about.
    fn of_detected(s: &crate::matching::Synergy) -> Figures {
        Figures {
            substitution: true,
            quantity: s.quantity,
            in_tonnes: s.base_unit.map(|b| b.as_str()) == Some("t"),
            impact: s.impact.as_ref().map(|i| (i.diverted_tonnes, i.net_co2e_t)),
            realised_quantity: None,
            realised_diverted_t: None,
            realised_co2e_t: None,
        }
    }
}

fn effects(row: &Figures, family: Family, report: &PriorityReport) -> Effects {
    let realised = row.realised_quantity.is_some()
        || row.realised_diverted_t.is_some()
        || row.realised_co2e_t.is_some();
    if !row.substitution {
        // A pooling group exchanges nothing between its members: only realised values count.
        return Effects {
            diverted_t: non_negative(row.realised_diverted_t.unwrap_or(0.0)),
            co2e_t: row.realised_co2e_t.unwrap_or(0.0),
            realised,
            ..Effects::default()
        };
    }
    let detected_q = row.quantity.filter(|q| q.is_finite() && *q > 0.0);
    // Estimates scale with the realised quantity when only that was entered.
    let scale = match (row.realised_quantity, detected_q) {
        (Some(r), Some(q)) => r / q,
        _ => 1.0,
    };
    let quantity = row
        .realised_quantity
        .or(row.quantity)
        .map(non_negative)
        .unwrap_or(0.0);
    let exchanged_t = if row.in_tonnes { quantity } else { 0.0 };
    let diverted_t = non_negative(
        row.realised_diverted_t
            .or(row.impact.map(|(diverted, _)| diverted * scale))
            .unwrap_or(0.0),
    );
    let co2e_t = row
        .realised_co2e_t
        .or(row.impact.map(|(_, net)| net * scale))
        .unwrap_or(0.0);
    let co2e_t = if co2e_t.is_finite() { co2e_t } else { 0.0 };
    let substitutes = substitutes_import(report, family);
    Effects {
        exchanged_t,
        diverted_t,
        co2e_t,
        imports_t: if substitutes { exchanged_t } else { 0.0 },
        substitutes_import: substitutes,
        realised,
    }
}

/// A synergy with a party in the territory.
struct Counted {
    id: Uuid,
    /// `substitution` or `pooling`.
    kind: &'static str,
    status: SynergyStatus,
    family: Family,
    /// Furthest funnel stage reached (0 = detected … 3 = implemented).
    reached: usize,
    year: i32,
    effects: Effects,
}

/// What a stored synergy (its figures those of the view when it is detected) brings.
fn count_row(
    row: &SynergyRow,
    passed: &HashMap<String, Vec<SynergyStatus>>,
    report: &PriorityReport,
) -> Result<Counted, ApiError> {
    let status = status_of(row)?;
    let reached = furthest_stage(
        status,
        passed
            .get(&row.id)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .copied(),
    );
    let year = match (status, row.status_changed_at) {
        (SynergyStatus::Implemented, Some(at)) => at.year(),
        _ => row.first_detected_at.year(),
    };
    let family = family_of(row);
    Ok(Counted {
        id: Uuid::parse_str(&row.id).unwrap_or_default(),
        kind: if row.kind == "pooling" {
            "pooling"
        } else {
            "substitution"
        },
        status,
        family,
        reached,
        year,
        effects: effects(&Figures::of_row(row), family, report),
    })
}

/// What a detected synergy nobody decided anything about brings (no stored row is built: a
/// territory has ~100k of them at national scale).
fn count_detected(s: &crate::matching::Synergy, year: i32, report: &PriorityReport) -> Counted {
    let family = FamilyTable::builtin().family_for_resource(&s.class, s.ewc_code.as_deref());
    Counted {
        id: s.id,
        kind: "substitution",
        status: SynergyStatus::Detected,
        family,
        reached: furthest_stage(SynergyStatus::Detected, std::iter::empty()),
        year,
        effects: effects(&Figures::of_detected(s), family, report),
    }
}

// ---------------------------------------------------------------------------------------------
// KPIs

/// Number of synergies in each status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub detected: usize,
    pub proposed: usize,
    pub in_study: usize,
    pub implemented: usize,
    pub rejected: usize,
    pub abandoned: usize,
}

impl StatusCounts {
    fn add(&mut self, status: SynergyStatus) {
        let slot = match status {
            SynergyStatus::Detected => &mut self.detected,
            SynergyStatus::Proposed => &mut self.proposed,
            SynergyStatus::InStudy => &mut self.in_study,
            SynergyStatus::Implemented => &mut self.implemented,
            SynergyStatus::Rejected => &mut self.rejected,
            SynergyStatus::Abandoned => &mut self.abandoned,
        };
        *slot += 1;
    }
}

/// One stage of the funnel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FunnelStep {
    pub stage: SynergyStatus,
    /// Synergies that reached at least this stage (a synergy rejected while in study reached
    /// `in_study`).
    pub reached: usize,
    /// reached / synergies (`None` without synergies).
    pub rate: Option<f64>,
    /// reached / reached at the previous stage (`None` for the first stage or a previous 0).
    pub from_previous: Option<f64>,
}

/// What a set of synergies brings per year.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Outcome {
    pub synergies: usize,
    /// Of which with realised values entered.
    pub with_realised_values: usize,
    /// Tonnes exchanged per year (substitutions in tonnes).
    pub tonnes_exchanged_t: f64,
    /// Tonnes per year diverted from landfill or incineration.
    pub tonnes_diverted_t: f64,
    /// t CO2e per year avoided, net of transport.
    pub co2e_avoided_t: f64,
    /// Tonnes per year of inputs that would otherwise be imported into the territory.
    pub imports_avoided_t: f64,
}

impl Outcome {
    fn add(&mut self, e: &Effects) {
        self.synergies += 1;
        self.with_realised_values += usize::from(e.realised);
        self.tonnes_exchanged_t += e.exchanged_t;
        self.tonnes_diverted_t += e.diverted_t;
        self.co2e_avoided_t += e.co2e_t;
        self.imports_avoided_t += e.imports_t;
    }
}

/// The KPIs of a set of synergies.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KpiBlock {
    pub synergies: usize,
    pub counts: StatusCounts,
    /// detected → proposed → in_study → implemented.
    pub funnel: Vec<FunnelStep>,
    /// What the implemented synergies bring (realised values where entered).
    pub implemented: Outcome,
    /// What the synergies under way (proposed, in study) would bring (detected estimates).
    pub in_progress: Outcome,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyKpis {
    #[schema(value_type = String)]
    pub family: Family,
    #[serde(flatten)]
    pub kpis: KpiBlock,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct YearKpis {
    /// Year of implementation for implemented synergies, else of first detection.
    pub year: i32,
    #[serde(flatten)]
    pub kpis: KpiBlock,
}

/// The lifecycle KPIs of a territory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KpisOut {
    pub territory: TerritoryRef,
    pub generated_at: DateTime<Utc>,
    /// Year of the AFME account whose import dependence decides `imports_avoided_t` (`None`: no
    /// account, no import counted as avoided).
    pub account_year: Option<i32>,
    pub totals: KpiBlock,
    pub by_family: Vec<FamilyKpis>,
    pub by_year: Vec<YearKpis>,
    /// How the figures are counted.
    pub assumptions: Vec<String>,
}

fn kpi_block<'a>(items: impl IntoIterator<Item = &'a Counted>) -> KpiBlock {
    let mut synergies = 0;
    let mut counts = StatusCounts::default();
    let mut reached = [0usize; FUNNEL.len()];
    let (mut implemented, mut in_progress) = (Outcome::default(), Outcome::default());
    for c in items {
        synergies += 1;
        counts.add(c.status);
        for slot in reached.iter_mut().take(c.reached + 1) {
            *slot += 1;
        }
        match c.status {
            SynergyStatus::Implemented => implemented.add(&c.effects),
            SynergyStatus::Proposed | SynergyStatus::InStudy => in_progress.add(&c.effects),
            _ => {}
        }
    }
    let ratio = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let funnel = FUNNEL
        .iter()
        .enumerate()
        .map(|(i, stage)| FunnelStep {
            stage: *stage,
            reached: reached[i],
            rate: ratio(reached[i], synergies),
            from_previous: i.checked_sub(1).and_then(|p| ratio(reached[i], reached[p])),
        })
        .collect();
    KpiBlock {
        synergies,
        counts,
        funnel,
        implemented,
        in_progress,
    }
}

fn kpi_assumptions(report: &PriorityReport) -> Vec<String> {
    let mut out = vec![
        "synergies counted: those with a party (provider, receiver or pooling member) in the territory; retired synergies count when a facilitator moved them past `detected` (an implemented synergy whose resource was deleted still counts), not when they were merely detected; synergies whose actors were all deleted cannot be placed and are left out".to_string(),
        "funnel: share of the synergies that reached at least each stage, from the current status and the history (a synergy rejected while in study reached `in_study`)".into(),
        "year: of the change to `implemented` for implemented synergies, else of first detection".into(),
        "realised values override the detected estimates; when only the realised quantity is entered, the estimated diversion and CO2e are scaled by realised / detected quantity".into(),
        "tonnes exchanged: substitutions whose base unit is t; tonnes diverted: `impact.diverted_tonnes` of the detection (the factor's diverted share of the quantity); CO2e avoided: `impact.net_co2e_t` (avoided minus transport); pooling groups count only their realised values".into(),
        format!(
            "imports avoided: the tonnes exchanged of synergies whose family's import dependence IMP_f / (DE_f + IMP_f) in the territory's latest AFME account is > {IMPORT_DEPENDENCE_THRESHOLD}"
        ),
    ];
    if report.neutral {
        out.push("the territory has no AFME account: no import is counted as avoided".into());
    }
    out
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A territory code as the API accepts it: 1–64 letters, digits, `-` or `_` (anything else is
/// unknown without asking the database).
fn check_code(code: &str) -> Result<(), ApiError> {
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
    Ok(())
}

/// The territory, its synergies (a party in it) and what each brings: those of the current
/// detection with what people decided about them, and, for facilitators, the stored ones a
/// facilitator moved past `detected` that are no longer detected (an implemented synergy whose
/// resource was later deleted still counts). Partners and public readers count the synergies of
/// their anonymous view only, with the view's figures (computed from hidden actors' commune
/// centroids): the exact sites decide which stored synergies exist.
async fn territory_synergies(
    state: &State,
    caller: &Caller,
    code: &str,
    report: &PriorityReport,
) -> Result<(TerritoryRef, Vec<Counted>), ApiError> {
    let (territory, _) = crate::api::territories::resolve(state, code).await?;
    let (scope, zone) = crate::api::synergies::scope_of(state, Some(code)).await?;
    let view = crate::api::synergies::current_for(state, caller).await?;
    let data = db::run(&state.pool, db::lifecycle::lifecycle_data).await?;
    let mut inside: HashSet<String> = view
        .actors
        .values()
        .filter(|a| a.in_scope(&scope, zone.as_ref()))
        .map(|a| a.id.to_string())
        .collect();
    if !caller.anonymises() {
        inside.extend(
            data.actors
                .values()
                .filter(|a| {
                    crate::detection::actor_info(a)
                        .is_some_and(|info| info.in_scope(&scope, zone.as_ref()))
                })
                .map(|a| a.id.clone()),
        );
    }
    let candidates =
        crate::api::synergies::territory_candidates(state, &view, &scope, zone.as_ref());
    // Off the async workers: at national scale a territory is ~100k synergies to materialise.
    let (keep_retired, report) = (!caller.anonymises(), report.clone());
    let items = actix_web::web::block(move || {
        territory_counted(
            data,
            &view,
            candidates.as_ref(),
            &inside,
            keep_retired,
            &report,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok((territory, items))
}

/// Joins the stored decisions to a detection: each synergy of `view` with a party in `inside`,
/// with what people decided about it (status, history, realised values) when it is stored, and the
/// view's figures (score, distance, quantity, impact), and what it brings. Stored synergies the
/// view does not have are kept only with `keep_retired`. Only the territory's synergies are
/// materialised (without their texts), and no stored row is built for those nobody decided
/// anything about. In id order, so that sums are the same from one read to the next.
fn territory_counted(
    data: LifecycleData,
    view: &Built,
    candidates: Option<&crate::detection::Positions>,
    inside: &HashSet<String>,
    keep_retired: bool,
    report: &PriorityReport,
) -> Result<Vec<Counted>, ApiError> {
    let now = crate::db::now();
    let LifecycleData {
        synergies, passed, ..
    } = data;
    let mut stored: HashMap<String, SynergyRow> = synergies
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    // Parsed once: a territory has ~100k synergies at national scale, each checked twice.
    let inside_ids: HashSet<Uuid> = inside
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let has = |id: &Uuid| inside_ids.contains(id);
    // The territory's synergies from the build's index (every one for the whole country).
    let substitutions: Vec<u32> = match candidates {
        Some(p) => p.synergies.clone(),
        None => (0..view.synergies.len() as u32).collect(),
    };
    let groups: Vec<&crate::matching::pooling::PoolingGroup> = match candidates {
        Some(p) => p
            .pooling
            .iter()
            .filter_map(|&i| view.pooling.get(i as usize))
            .collect(),
        None => view.pooling.iter().collect(),
    };
    // A stored synergy the view has: what people decided, with the view's figures.
    let with_figures = |row: SynergyRow, seen: SynergyRow| SynergyRow {
        score: seen.score,
        distance_km: seen.distance_km,
        quantity: seen.quantity,
        detail: seen.detail,
        ..row
    };
    let mut out = Vec::new();
    for i in substitutions {
        if !view
            .brief(i)
            .is_some_and(|s| has(&s.provider_actor_id) || has(&s.receiver_actor_id))
        {
            continue;
        }
        let Some(s) = view.figures_at(i) else {
            continue;
        };
        match stored.remove(&s.id.to_string()) {
            None => out.push(count_detected(&s, now.year(), report)),
            Some(row) => {
                // The reports read the two figures of `StoredDetail` only.
                let detail = serde_json::to_string(&StoredDetail {
                    impact: s.impact.as_ref().map(|i| StoredImpact {
                        diverted_tonnes: i.diverted_tonnes,
                        net_co2e_t: i.net_co2e_t,
                    }),
                })
                .unwrap_or_default();
                let seen = crate::detection::substitution_row_with(&s, detail, 0, now);
                out.push(count_row(&with_figures(row, seen), &passed, report)?);
            }
        }
    }
    for g in groups {
        if !g.members.iter().any(|m| has(&m.actor_id)) {
            continue;
        }
        let seen = crate::detection::pooling_row(g, 0, now);
        let row = match stored.remove(&seen.id) {
            Some(row) => with_figures(row, seen),
            None => seen,
        };
        out.push(count_row(&row, &passed, report)?);
    }
    if keep_retired {
        for row in stored.into_values() {
            let retired = view
                .slot(&Uuid::parse_str(&row.id).unwrap_or_default())
                .is_none();
            if retired
                && db::lifecycle::parties(&row)
                    .iter()
                    .any(|p| inside.contains(p.as_str()))
            {
                out.push(count_row(&row, &passed, report)?);
            }
        }
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// Lifecycle KPIs of a territory: synergies by status, the funnel detected → proposed → in_study →
/// implemented with its conversion rates, and what implemented synergies bring (tonnes
/// exchanged and diverted, CO2e avoided, imports avoided; realised values where entered), in
/// total, by AFME family and by year. `?format=csv` answers one CSV row per total, family and
/// year, in the reader's convention (`Accept-Language`): French by default (`;`, decimal comma,
/// UTF-8 BOM, French family labels), English on request (`,` and `.`); rates are shares rounded to
/// 0.1 %, tonnes to 0.1 t.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/kpis",
    tag = "lifecycle",
    params(("code" = String, Path, description = "Territory code (any level, or a custom zone)"), KpiQuery),
    responses(
        (status = 200, description = "The KPIs, or CSV with `format=csv`", content((KpisOut = "application/json"), (String = "text/csv"))),
        (status = 404, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    )
)]
pub async fn territory_kpis(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<KpiQuery>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let csv = match query
        .0
        .format
        .as_deref()
        .map(|f| f.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    check_code(&code)?;
    let report = crate::api::afme::priorities_for(&state, &code).await?;
    let (territory, items) = territory_synergies(&state, &caller, &code, &report).await?;
    let totals = kpi_block(&items);
    let mut families: BTreeMap<Family, Vec<&Counted>> = BTreeMap::new();
    let mut years: BTreeMap<i32, Vec<&Counted>> = BTreeMap::new();
    for c in &items {
        families.entry(c.family).or_default().push(c);
        years.entry(c.year).or_default().push(c);
    }
    let out = KpisOut {
        generated_at: crate::db::now().and_utc(),
        account_year: report.year,
        assumptions: kpi_assumptions(&report),
        totals,
        by_family: families
            .into_iter()
            .map(|(family, items)| FamilyKpis {
                family,
                kpis: kpi_block(items),
            })
            .collect(),
        by_year: years
            .into_iter()
            .map(|(year, items)| YearKpis {
                year,
                kpis: kpi_block(items),
            })
            .collect(),
        territory,
    };
    if !csv {
        return Ok(HttpResponse::Ok().json(out));
    }
    let text = kpis_csv(&out, lang).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(crate::api::afme::in_lang(lang)
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"kpis_{}.csv\"", out.territory.code),
        ))
        .body(text))
}

/// Columns of the KPI CSV: `key` is the territory code, the family code or the year; `label` is
/// the territory's name, the family's label in the reader's language, or the year.
pub const KPI_COLUMNS: [&str; 27] = [
    "dimension",
    "key",
    "label",
    "synergies",
    "detected",
    "proposed",
    "in_study",
    "implemented",
    "rejected",
    "abandoned",
    "reached_detected",
    "reached_proposed",
    "reached_in_study",
    "reached_implemented",
    "rate_proposed",
    "rate_in_study",
    "rate_implemented",
    "implemented_tonnes_exchanged_t",
    "implemented_tonnes_diverted_t",
    "implemented_co2e_avoided_t",
    "implemented_imports_avoided_t",
    "implemented_with_realised_values",
    "in_progress_synergies",
    "in_progress_tonnes_exchanged_t",
    "in_progress_tonnes_diverted_t",
    "in_progress_co2e_avoided_t",
    "in_progress_imports_avoided_t",
];

/// Decimals of the KPI CSV: rates (shares, 0.1 % = 0.001) and tonnes (0.1 t).
const RATE_DECIMALS: usize = 3;
const TONNE_DECIMALS: usize = 1;

/// The KPI CSV in the reader's convention (`Lang`): French (default) `;`, decimal comma and a
/// BOM; English `,` and `.`; rates rounded to 0.1 %, tonnes to 0.1 t; families labelled.
fn kpis_csv(out: &KpisOut, lang: Lang) -> Result<String, ::csv::Error> {
    let mut buf = lang.csv_preamble().as_bytes().to_vec();
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(lang.csv_delimiter())
        .from_writer(&mut buf);
    writer.write_record(KPI_COLUMNS)?;
    let rows = std::iter::once((
        "total".to_string(),
        out.territory.code.clone(),
        out.territory.name.clone(),
        &out.totals,
    ))
    .chain(out.by_family.iter().map(|f| {
        (
            "family".to_string(),
            f.family.as_str().to_owned(),
            crate::afme::labels::family_label(f.family, lang),
            &f.kpis,
        )
    }))
    .chain(out.by_year.iter().map(|y| {
        (
            "year".to_string(),
            y.year.to_string(),
            y.year.to_string(),
            &y.kpis,
        )
    }));
    let tonnes = |v: f64| lang.number(v, TONNE_DECIMALS);
    for (dimension, key, label, k) in rows {
        let c = &k.counts;
        let reached = |i: usize| k.funnel.get(i).map(|s| s.reached).unwrap_or(0).to_string();
        let rate = |i: usize| {
            k.funnel
                .get(i)
                .and_then(|s| s.rate)
                .map(|r| lang.number(r, RATE_DECIMALS))
                .unwrap_or_default()
        };
        let (imp, prog) = (&k.implemented, &k.in_progress);
        let record: [String; 27] = [
            dimension,
            key,
            label,
            k.synergies.to_string(),
            c.detected.to_string(),
            c.proposed.to_string(),
            c.in_study.to_string(),
            c.implemented.to_string(),
            c.rejected.to_string(),
            c.abandoned.to_string(),
            reached(0),
            reached(1),
            reached(2),
            reached(3),
            rate(1),
            rate(2),
            rate(3),
            tonnes(imp.tonnes_exchanged_t),
            tonnes(imp.tonnes_diverted_t),
            tonnes(imp.co2e_avoided_t),
            tonnes(imp.imports_avoided_t),
            imp.with_realised_values.to_string(),
            prog.synergies.to_string(),
            tonnes(prog.tonnes_exchanged_t),
            tonnes(prog.tonnes_diverted_t),
            tonnes(prog.co2e_avoided_t),
            tonnes(prog.imports_avoided_t),
        ];
        writer.write_record(&record)?;
    }
    writer.flush()?;
    drop(writer);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

// ---------------------------------------------------------------------------------------------
// AFME impact

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpactQuery {
    /// Year of the account (default: the latest year with an account).
    pub year: Option<i32>,
}

/// What one synergy contributes to the account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImpactLine {
    pub id: String,
    pub kind: String,
    pub status: SynergyStatus,
    #[schema(value_type = String)]
    pub family: Family,
    pub tonnes_exchanged: f64,
    pub tonnes_diverted_from_landfill: f64,
    pub substitutes_import: bool,
    /// Realised values were used.
    pub realised: bool,
}

/// How a territory's account changes when its synergies are counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImpactOut {
    pub territory: String,
    pub year: i32,
    /// Every year with an account for this territory.
    pub years: Vec<i32>,
    /// The implemented synergies counted in the account.
    pub implemented: ImpactReport,
    /// The synergies under way (proposed or in study), counted separately.
    pub proposed: ImpactReport,
    /// The synergies counted, implemented then under way.
    pub synergies: Vec<ImpactLine>,
    /// When a synergy is taken to replace an import.
    pub substitution_rule: String,
    pub assumptions: Vec<String>,
}

/// What the IMPLEMENTED synergies of a territory change in its AFME account of a year (IMP,
/// DPO landfill, DMC, in tonnes and in % of the account), and separately the PROPOSED ones
/// (proposed or in study). Rules in `notes`, `substitution_rule` and `assumptions`.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/afme/impact",
    tag = "lifecycle",
    params(("code" = String, Path, description = "Territory code"), ImpactQuery),
    responses(
        (status = 200, body = ImpactOut),
        (status = 404, description = "Unknown territory, or no account (for that year): the detail names the years with one", body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    )
)]
pub async fn afme_impact(
    state: State,
    caller: Caller,
    code: web::Path<String>,
    query: ValidQuery<ImpactQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let year = query.0.year;
    if let Some(y) = year
        && !(1900..=2100).contains(&y)
    {
        return Err(ApiError::field("year", "must be between 1900 and 2100"));
    }
    check_code(&code)?;
    let (t, _) = crate::api::territories::resolve(&state, &code).await?;
    let (year, years, rows) = crate::api::afme::load_account(&state, &t.code, year).await?;
    let indicators = compute_indicators(&rows, &t.code, year, &IndicatorOptions::default());
    let report = crate::api::afme::priorities_for_year(&state, &code, Some(year)).await?;
    let (_, items) = territory_synergies(&state, &caller, &code, &report).await?;

    let mut lines = Vec::new();
    let (mut implemented, mut proposed) = (Vec::new(), Vec::new());
    for stage in [
        SynergyStatus::Implemented,
        SynergyStatus::InStudy,
        SynergyStatus::Proposed,
    ] {
        for c in items.iter().filter(|c| c.status == stage) {
            let impact = SynergyImpact {
                family: c.family,
                tonnes_exchanged: c.effects.exchanged_t,
                tonnes_diverted_from_landfill: c.effects.diverted_t,
                substitutes_import: c.effects.substitutes_import,
            };
            lines.push(ImpactLine {
                id: c.id.to_string(),
                kind: c.kind.to_owned(),
                status: c.status,
                family: c.family,
                tonnes_exchanged: impact.tonnes_exchanged,
                tonnes_diverted_from_landfill: impact.tonnes_diverted_from_landfill,
                substitutes_import: impact.substitutes_import,
                realised: c.effects.realised,
            });
            if stage == SynergyStatus::Implemented {
                implemented.push(impact);
            } else {
                proposed.push(impact);
            }
        }
    }
    let implemented =
        account_impact(&indicators, &implemented).map_err(|e| ApiError::Internal(e.to_string()))?;
    let proposed =
        account_impact(&indicators, &proposed).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(ImpactOut {
        territory: t.code,
        year,
        years,
        implemented,
        proposed,
        synergies: lines,
        substitution_rule: format!(
            "a synergy substitutes an import when its family's import dependence IMP_f / (DE_f + IMP_f) in this account is > {IMPORT_DEPENDENCE_THRESHOLD} (see GET /api/v1/territories/{{code}}/priorities?year={year}); its tonnes exchanged then lower IMP and DMC"
        ),
        assumptions: vec![
            "synergies counted: those with a party in the territory, whatever the year they were implemented (the question is how this account would change)".into(),
            "tonnes exchanged: the realised quantity, else the detected quantity, for substitutions whose base unit is t; tonnes diverted from landfill: the realised value, else the detection's `impact.diverted_tonnes` (scaled by realised / detected quantity when only the quantity was entered); pooling groups count only their realised diversion".into(),
            "`proposed` counts the synergies proposed or in study".into(),
        ],
    }))
}

#[cfg(test)]
mod tests;
