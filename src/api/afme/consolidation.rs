//! A territory's account against its members' (`GET …/afme/aggregate`: the members' accounts summed
//! and compared with the declared one) and the reconciliation of an account under sum constraints
//! (`POST …/afme/reconcile`).

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::afme::AfmeError;
use crate::afme::aggregate::{aggregate_members, compare_accounts};
use crate::afme::indicators::compute_indicators;
use crate::afme::labels::localise_indicators;
use crate::afme::reconcile::{
    Constraint, ReconcileOptions, apply_reconciliation, balance_constraint, reconcile_rows,
    sum_constraint,
};
use crate::api::State;
use crate::api::error::ApiError;
use crate::api::extract::{ValidQuery, parse_json};
use crate::auth::Caller;
use crate::db;
use crate::domain::validation::FieldError;
use crate::reference::{Lang, TerritoryRef};

use super::*;

/// The members whose accounts make a territory's: the départements of a région (or of a custom
/// zone's communes), the children of other reference territories.
pub(super) fn members_of(
    state: &State,
    t: &TerritoryRef,
    zone_communes: Option<&[String]>,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let geo = &state.reference.geo;
    let mut warnings = Vec::new();
    let members: Vec<String> = match zone_communes {
        Some(communes) => {
            let deps: BTreeSet<String> = communes
                .iter()
                .filter_map(|c| geo.commune(c))
                .map(|c| c.departement.clone())
                .collect();
            let inside: BTreeSet<&str> = communes.iter().map(String::as_str).collect();
            for d in &deps {
                let all = geo.communes_of_departement(d);
                let covered = all.iter().filter(|c| inside.contains(c.as_str())).count();
                if covered < all.len() {
                    warnings.push(format!(
                        "the zone holds {covered} of the {} communes of département {d}: its whole account is counted",
                        all.len()
                    ));
                }
            }
            deps.into_iter().collect()
        }
        None => geo.children(t).into_iter().map(|c| c.code).collect(),
    };
    if members.is_empty() {
        return Err(ApiError::field(
            "code",
            format!(
                "`{}` has no member territories whose accounts could be aggregated",
                t.code
            ),
        ));
    }
    Ok((members, warnings))
}

/// The account of a région (or custom zone, or any reference territory) built from its members'
/// accounts: trade between members cancels (an export of 21 to 71 is neither an import nor an
/// export of R27). When the territory also has an account of its own for that year, both are
/// compared flow by flow.
#[utoipa::path(
    get,
    path = "/api/v1/territories/{code}/afme/aggregate",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code (a région or a custom zone)"), AggregateQuery),
    responses(
        (status = 200, body = AggregateOut),
        (status = 404, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    )
)]
pub async fn aggregate(
    state: State,
    caller: Caller,
    lang: Lang,
    code: web::Path<String>,
    query: ValidQuery<AggregateQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let query = query.0;
    let year = check_year(query.year, "year")?;
    let (t, communes) = territory(&state, &code).await?;
    let (members, mut warnings) = members_of(&state, &t, communes.as_deref())?;
    let (member_list, own) = (members.clone(), t.code.clone());
    let (years, chosen, member_rows, declared) = db::run(&state.pool, move |conn| {
        let years = db::afme::years(conn, &member_list)?;
        let chosen = match year {
            Some(y) => years.contains(&y).then_some(y),
            None => years.last().copied(),
        };
        let (rows, declared) = match chosen {
            Some(y) => (
                db::afme::list_rows_of(conn, &member_list, y)?,
                db::afme::list_rows(conn, &own, Some(y))?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok((years, chosen, rows, declared))
    })
    .await?;
    let Some(year) = chosen else {
        let which = members.join(", ");
        return Err(match (year, years.is_empty()) {
            (Some(y), false) => ApiError::NotFound(format!(
                "AFME accounts of the members of `{}` ({which}) for {y} (years with a member account: {})",
                t.code,
                years_text(&years)
            )),
            _ => ApiError::NotFound(format!(
                "AFME accounts of the members of `{}` ({which})",
                t.code
            )),
        });
    };
    let with: BTreeSet<&str> = member_rows.iter().map(|r| r.territory.as_str()).collect();
    let (members_with_account, members_without_account): (Vec<String>, Vec<String>) = members
        .iter()
        .cloned()
        .partition(|m| with.contains(m.as_str()));
    if !members_without_account.is_empty() {
        warnings.push(format!(
            "no {year} account for {}: counted as 0, so the aggregate is partial",
            members_without_account.join(", ")
        ));
    }
    let aggregated = aggregate_members(&t.code, year, &members, &member_rows)
        .map_err(|e| afme_error(e, "code"))?;
    let population = population(&state, &t, year).await?;
    let options = indicator_options(&population, query.tolerance_t)?;
    let mut indicators = compute_indicators(&aggregated.rows, &t.code, year, &options);
    localise_indicators(&mut indicators, lang);
    let declared = (!declared.is_empty()).then(|| DeclaredComparison {
        indicators: {
            let mut declared = compute_indicators(&declared, &t.code, year, &options);
            localise_indicators(&mut declared, lang);
            declared
        },
        comparison: compare_accounts(&aggregated.rows, &declared, &t.code, year),
        rows: declared,
    });
    Ok(in_lang(lang).json(AggregateOut {
        territory: t,
        year,
        population,
        members,
        members_with_account,
        members_without_account,
        member_rows,
        aggregated,
        indicators,
        declared,
        warnings,
    }))
}

/// Reconcile the account's uncertain rows to the balance identity (and optional extra sum
/// constraints) by weighted least squares: adjusted values and uncertainties, χ² test with its
/// p-value, and the rows most likely responsible when it fails. Rows without uncertainty stay
/// fixed. Nothing is stored. The body is optional (JSON).
#[utoipa::path(
    post,
    path = "/api/v1/territories/{code}/afme/reconcile",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code"), YearQuery),
    request_body(content = ReconcileInput, content_type = "application/json", description = "Optional"),
    responses(
        (status = 200, body = ReconcileOut),
        (status = 404, body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    )
)]
pub async fn reconcile(
    state: State,
    caller: Caller,
    req: HttpRequest,
    code: web::Path<String>,
    query: ValidQuery<YearQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    let input: ReconcileInput = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileInput::default()
    } else if content_type(&req).starts_with("application/json") {
        parse_json(&body)?
    } else {
        return Err(ApiError::Unsupported(
            "send the options as application/json (or no body)".into(),
        ));
    };
    let year = check_year(query.0.year, "year")?;
    let (t, _) = territory(&state, &code).await?;
    let (year, _, rows) = load_account(&state, &t.code, year).await?;

    let mut errors = Vec::new();
    if let Some(a) = input.alpha
        && !(a > 0.0 && a < 1.0)
    {
        errors.push(FieldError {
            field: "alpha".into(),
            message: "must be strictly between 0 and 1".into(),
            row: None,
        });
    }
    let n = rows.len();
    for (i, c) in input.constraints.iter().enumerate() {
        if c.name.trim().is_empty() {
            errors.push(FieldError {
                field: format!("constraints[{i}].name"),
                message: "must not be empty".into(),
                row: None,
            });
        }
        if c.total >= n {
            errors.push(FieldError {
                field: format!("constraints[{i}].total"),
                message: format!(
                    "row {} does not exist: the account has rows 0–{}",
                    c.total,
                    n.saturating_sub(1)
                ),
                row: None,
            });
        }
        if c.parts.is_empty() {
            errors.push(FieldError {
                field: format!("constraints[{i}].parts"),
                message: "a sum needs at least one part".into(),
                row: None,
            });
        }
        for (j, p) in c.parts.iter().enumerate() {
            if *p >= n {
                errors.push(FieldError {
                    field: format!("constraints[{i}].parts[{j}]"),
                    message: format!(
                        "row {p} does not exist: the account has rows 0–{}",
                        n.saturating_sub(1)
                    ),
                    row: None,
                });
            } else if *p == c.total || c.parts.get(..j).is_some_and(|before| before.contains(p)) {
                errors.push(FieldError {
                    field: format!("constraints[{i}].parts[{j}]"),
                    message: format!("row {p} appears twice in this constraint"),
                    row: None,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let mut constraints: Vec<Constraint> = Vec::new();
    let mut notes = Vec::new();
    if input.balance.unwrap_or(true) {
        match balance_constraint(&rows, &t.code, year) {
            Ok(c) => constraints.push(c),
            Err(e) if !input.constraints.is_empty() => {
                notes.push(format!("balance left out: {e}"));
            }
            Err(e) => return Err(afme_error(e, "balance")),
        }
    }
    constraints.extend(
        input
            .constraints
            .iter()
            .map(|c| sum_constraint(c.name.trim(), c.total, &c.parts)),
    );
    if constraints.is_empty() {
        return Err(ApiError::field(
            "constraints",
            "nothing to reconcile: give constraints or leave the balance in",
        ));
    }
    let options = ReconcileOptions {
        alpha: input.alpha.unwrap_or(ReconcileOptions::default().alpha),
    };
    let field_of = |name: &str| -> String {
        input
            .constraints
            .iter()
            .position(|c| c.name.trim() == name)
            .map(|i| format!("constraints[{i}]"))
            .unwrap_or_else(|| "balance".to_owned())
    };
    let mut reconciliation =
        reconcile_rows(&rows, &constraints, &options).map_err(|e| match e {
            AfmeError::ConstraintOnFixedRows { ref constraint, .. }
            | AfmeError::InconsistentConstraints { ref constraint, .. } => {
                let field = field_of(constraint);
                ApiError::field(field, e.to_string())
            }
            other => afme_error(other, "constraints"),
        })?;
    reconciliation.warnings.extend(notes);
    let adjusted_rows = apply_reconciliation(&rows, &reconciliation);
    Ok(HttpResponse::Ok().json(ReconcileOut {
        territory: t.code,
        year,
        rows,
        reconciliation,
        adjusted_rows,
    }))
}
