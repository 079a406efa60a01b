//! The CSV import of a territory's account (`POST …/afme/import`): the checks the engine's parser
//! does not make (NUL cells, rows of another territory), canonical territory codes, duplicates
//! once codes are normalised, and the all-or-nothing replacement of each year's account.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::afme::{AccountRow, AfmeError, Partner, RowError};
use crate::api::State;
use crate::api::error::ApiError;
use crate::auth::Caller;
use crate::db;
use crate::domain::validation::FieldError;

use super::{afme_error, content_type, row_errors, territory};

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    pub territory: String,
    /// One entry per year of the file: each replaced that year's whole account.
    pub accounts: Vec<ImportedAccount>,
    pub rows_stored: usize,
    /// Rows previously stored for those years, now replaced.
    pub rows_replaced: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedAccount {
    pub year: i32,
    pub rows_stored: usize,
    pub rows_replaced: usize,
}

/// What the engine's parser does not check, by row and column: cells holding a NUL character (no
/// database stores it in text), and rows whose `territory` names another (existing) territory than
/// the one the file is imported into. Unknown codes are left to the parser, which reports them.
///
/// Also returns the row number of every non-blank data record, so that the parser's rows (one per
/// such record when the file is valid) can be named. Rows are numbered as the engine's parser
/// numbers them: the physical line where the record starts (blank lines count).
fn prescan(
    text: &str,
    code: &str,
    canonical: &dyn Fn(&str) -> Option<String>,
) -> (Vec<RowError>, Vec<usize>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header = text.lines().next().unwrap_or("");
    let delimiter = if header.contains(';') && !header.contains(',') {
        b';'
    } else {
        b','
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut data_rows = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut territory_column = None;
    let mut header_seen = false;
    let mut last_line = 0usize;
    for record in reader.records() {
        let Ok(record) = record else { continue };
        // the physical line where the record starts (empty lines, skipped, still count)
        let row = crate::afme::csv::physical_line(text, record.position(), last_line);
        last_line = row;
        let is_header = !header_seen;
        header_seen = true;
        if !is_header && !record.iter().all(|c| c.trim().is_empty()) {
            data_rows.push(row);
        }
        for (i, cell) in record.iter().enumerate() {
            if cell.contains('\0') {
                let column = names.get(i).map(String::as_str).unwrap_or("");
                out.push(RowError::new(row, column, "contains a NUL character"));
            }
        }
        if is_header {
            names = record
                .iter()
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            territory_column = names.iter().position(|c| c == "territory");
            continue;
        }
        let Some(column) = territory_column else {
            continue;
        };
        let cell = record.get(column).unwrap_or("").trim();
        if cell.is_empty() || cell.contains('\0') {
            continue;
        }
        if let Some(other) = canonical(cell)
            && other != code
        {
            out.push(RowError::new(
                row,
                "territory",
                format!(
                    "this row is for territory '{cell}' but the file is imported into '{code}': import each territory's account at its own URL"
                ),
            ));
        }
    }
    (out, data_rows)
}

/// Parses an account CSV for territory `code`: every row must be for `code`; codes (territory and
/// partners) are rewritten to their canonical spelling.
fn parse_for(
    body: &[u8],
    code: &str,
    canonical: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<AccountRow>, ApiError> {
    let (prescanned, data_rows) = std::str::from_utf8(body)
        .map(|text| prescan(text, code, canonical))
        .unwrap_or_default();
    let exists = |c: &str| canonical(c).is_some();
    match crate::afme::csv::parse_account_csv(body, &exists) {
        Ok(rows) if prescanned.is_empty() => {
            if rows.is_empty() {
                return Err(ApiError::Validation(vec![FieldError {
                    field: "row".into(),
                    message: "the file has a header but no account row".into(),
                    row: Some(2),
                }]));
            }
            let rows: Vec<AccountRow> = rows
                .into_iter()
                .map(|mut r| {
                    r.territory = code.to_owned();
                    if let Some(Partner::Territory(p)) = &r.partner
                        && let Some(c) = canonical(p)
                    {
                        r.partner = Some(Partner::Territory(c));
                    }
                    r
                })
                .collect();
            // spellings of one code (`2a`, `2A`) pass the parser's duplicate check apart
            let line = |i: usize| data_rows.get(i).copied().unwrap_or(i + 2);
            let mut seen = std::collections::HashMap::new();
            let mut duplicates = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                if let Some(first) = seen.insert(r.key(), line(i)) {
                    duplicates.push(RowError::new(
                        line(i),
                        "partner",
                        format!(
                            "duplicate of row {first}: both name partner {} once territory codes are normalised",
                            r.partner.as_ref().map(Partner::as_str).unwrap_or("")
                        ),
                    ));
                }
            }
            if duplicates.is_empty() {
                Ok(rows)
            } else {
                Err(ApiError::Validation(row_errors(duplicates)))
            }
        }
        Ok(_) => Err(ApiError::Validation(row_errors(prescanned))),
        Err(AfmeError::InvalidRows(mut errors)) => {
            for m in prescanned {
                if !errors
                    .iter()
                    .any(|e| e.row == m.row && e.column == m.column)
                {
                    errors.push(m);
                }
            }
            Err(ApiError::Validation(row_errors(errors)))
        }
        Err(other) => Err(afme_error(other, "body")),
    }
}

/// Import a territory's account from a CSV file (tidy format: `territory,year,flow,family,partner,
/// value,unit,uncertainty,source,note`, `,` or `;`, decimal point or comma). Every row must be for
/// `{code}`. The format, column by column: [docs/AFME_IMPORT.md](docs/AFME_IMPORT.md) in the
/// repository.
///
/// All or nothing: on any bad cell the answer is 422 with one error per cell (`field` = column,
/// `row` = file line, the header being line 1) and nothing is stored. Otherwise the file
/// **replaces the whole account of each year it contains** (years absent from the file are kept).
#[utoipa::path(
    post,
    path = "/api/v1/territories/{code}/afme/import",
    tag = "afme",
    params(("code" = String, Path, description = "Territory code (reference hierarchy or custom zone)")),
    request_body(content = String, content_type = "text/csv", description = "Tidy account CSV"),
    responses(
        (status = 201, body = ImportOut),
        (status = 404, body = crate::api::error::Problem),
        (status = 409, body = crate::api::error::Problem),
        (status = 413, body = crate::api::error::Problem),
        (status = 415, body = crate::api::error::Problem),
        (status = 422, body = crate::api::error::Problem),
    )
)]
pub async fn import_account(
    state: State,
    caller: Caller,
    req: HttpRequest,
    code: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.check_territory(&state, &code).await?;
    if !content_type(&req).starts_with("text/csv") {
        return Err(ApiError::Unsupported("send the file as text/csv".into()));
    }
    let (t, _) = territory(&state, &code).await?;
    let body = crate::api::extract::read_limited(payload, state.settings.server.import_limit_bytes)
        .await?;
    let zones: BTreeSet<String> = db::run(&state.pool, |conn| {
        Ok(db::zones::list(conn)?.into_iter().map(|z| z.code).collect())
    })
    .await?;
    let reference = state.reference.clone();
    let target = t.code.clone();
    let rows = web::block(move || {
        let canonical = |c: &str| -> Option<String> {
            reference
                .geo
                .territory(c)
                .map(|t| t.code)
                .or_else(|| zones.contains(c).then(|| c.to_owned()))
        };
        parse_for(&body, &target, &canonical)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let accounts = db::run(&state.pool, move |conn| {
        db::afme::replace_accounts(conn, &rows)
    })
    .await?;
    let latest = accounts.iter().map(|a| a.year).max().unwrap_or_default();
    let out = ImportOut {
        territory: t.code.clone(),
        rows_stored: accounts.iter().map(|a| a.rows_stored).sum(),
        rows_replaced: accounts.iter().map(|a| a.rows_replaced).sum(),
        accounts: accounts
            .into_iter()
            .map(|a| ImportedAccount {
                year: a.year,
                rows_stored: a.rows_stored,
                rows_replaced: a.rows_replaced,
            })
            .collect(),
    };
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/territories/{}/afme?year={latest}", t.code),
        ))
        .json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(c: &str) -> Option<String> {
        match c {
            "21" | "71" => Some(c.to_owned()),
            "r27" | "R27" => Some("R27".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn rows_for_another_territory_are_reported_with_row_and_column() {
        let csv = "territory,year,flow,family,partner,value,unit\n\
                   21,2015,DE,all,,10,t\n\
                   \n\
                   71,2015,IMP,all,,5,t\n\
                   99,2015,IMP,other,,5,t\n";
        let (errors, data_rows) = prescan(csv, "21", &canonical);
        // rows are the file's lines, as the engine's parser numbers them (blank lines count)
        assert_eq!(data_rows, vec![2, 4, 5]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].row, errors[0].column.as_str()), (4, "territory"));
    }

    #[test]
    fn import_rewrites_codes_to_their_canonical_spelling() {
        let csv = "territory;year;flow;family;partner;value;unit\nr27;2015;IMP;all;71;10;t\n";
        let rows = parse_for(csv.as_bytes(), "R27", &canonical).unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].territory, "R27");
        assert_eq!(rows[0].partner, Some(Partner::Territory("71".into())));
    }

    #[test]
    fn mismatch_and_cell_errors_come_together_sorted_by_row() {
        let csv = "territory,year,flow,family,partner,value,unit\n71,2015,DE,all,,10,t\n21,2015,XX,all,,5,t\n";
        match parse_for(csv.as_bytes(), "21", &canonical) {
            Err(ApiError::Validation(errors)) => {
                let got: Vec<(Option<u64>, &str)> =
                    errors.iter().map(|e| (e.row, e.field.as_str())).collect();
                assert_eq!(got, vec![(Some(2), "territory"), (Some(3), "flow")]);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn two_spellings_of_one_partner_are_a_duplicate() {
        let csv = "territory,year,flow,family,partner,value,unit\n21,2015,IMP,all,r27,1,t\n\n21,2015,IMP,all,R27,2,t\n";
        match parse_for(csv.as_bytes(), "21", &canonical) {
            Err(ApiError::Validation(errors)) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                // the second spelling is on line 4, after a blank line
                assert_eq!(
                    (errors[0].row, errors[0].field.as_str()),
                    (Some(4), "partner")
                );
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_header_without_rows_is_refused() {
        let csv = "territory,year,flow,family,partner,value,unit\n";
        assert!(matches!(
            parse_for(csv.as_bytes(), "21", &canonical),
            Err(ApiError::Validation(_))
        ));
    }
}
