//! CSV import and export of accounts.
//!
//! # The tidy format
//!
//! One header line, then one row per account line; comma-separated (a semicolon-separated file, as
//! French spreadsheets write it, is recognised from its header), UTF-8 with or without BOM:
//!
//! ```text
//! territory,year,flow,family,partner,value,unit,uncertainty,source,note
//! 21,2015,IMP,construction_materials,rest_of_france,125000,t,10%,SitraM,road freight
//! 21,2015,DE,all,,3200000,t,150000,UNICEM,
//! 21,2015,IMP,other,abroad,42000,MWh,,RTE,electricity
//! ```
//!
//! | column | required | content |
//! |---|---|---|
//! | `territory` | yes | code of an existing territory |
//! | `year` | yes | 1900–2100 |
//! | `flow` | yes | `DE`, `UDE`, `IMP`, `EXP`, `DPO_AIR`, `DPO_WATER`, `DPO_SOIL`, `DPO_LANDFILL`, `DPO`, `BI_IN`, `BI_OUT`, `NAS`, `RECYCLING` (case-insensitive) |
//! | `family` | yes | a family, `all`, or an alias of the family table (`wood`, `industrial_minerals`, …) |
//! | `partner` | no | empty, `rest_of_france`, `abroad`, or an existing territory code; only on IMP and EXP |
//! | `value` | yes | ≥ 0; `27800`, `27 800`, `27800,5` are read |
//! | `unit` | yes | `t`, `kt` (converted to t), `MWh`, `GWh` (converted to MWh); energy only on DE, IMP, EXP |
//! | `uncertainty` | no | `5%` (relative) or `1200` (standard deviation, in the row's unit) |
//! | `source`, `note` | no | free text |
//!
//! Columns may come in any order; unknown columns are refused (they are usually typos), except
//! `family_label`, which the export adds and the import ignores.
//!
//! Import is all-or-nothing: either every row is valid and all are returned, or
//! [`AfmeError::InvalidRows`] lists every bad cell. Rows are numbered by the physical line of the
//! file where the record starts, as an editor shows it: the header is usually line 1, and empty lines
//! (skipped) still count, so an error after a blank line names the line it is on.
//!
//! Besides cell checks, two rows with the same territory, year, flow, family and partner are refused:
//! in two units it is a mixed-unit error, in one unit a duplicate.
//!
//! # The published Bourgogne format
//!
//! [`parse_published_csv`] reads `territory_code,territory_name,year,flow,family,value_kt,
//! per_capita_t,kind,note` (Alterre Bourgogne, *Repères* n°64, 2013, as laid out in
//! `shared/reference/afme/bourgogne_2010.csv`).

use std::collections::HashMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{AfmeError, RowError};
use super::families::FamilyTable;
use super::model::{
    AccountRow, Family, FlowType, Partner, RowKey, Uncertainty, Unit, parse_number,
};
use crate::reference::Lang;

/// Columns of the tidy format, in export order.
pub const COLUMNS: [&str; 10] = [
    "territory",
    "year",
    "flow",
    "family",
    "partner",
    "value",
    "unit",
    "uncertainty",
    "source",
    "note",
];
/// A column the export adds (the family's label in the reader's language); read and ignored on
/// import, so an export is re-importable as is.
pub const FAMILY_LABEL: &str = "family_label";
const REQUIRED: [&str; 6] = ["territory", "year", "flow", "family", "value", "unit"];

/// Reads the whole input as text (BOM stripped) and builds a CSV reader with the delimiter guessed
/// from the header line.
fn open(mut reader: impl Read) -> Result<(String, u8), AfmeError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| AfmeError::Csv(e.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|e| AfmeError::Csv(format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
    let header = text.lines().next().unwrap_or("");
    let delimiter = if header.contains(';') && !header.contains(',') {
        b';'
    } else {
        b','
    };
    Ok((text, delimiter))
}

fn csv_reader(text: &str, delimiter: u8) -> ::csv::Reader<&[u8]> {
    ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes())
}

fn opt_text(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The physical line (1-based) where a record starts in the file, as an editor shows it. The reader
/// skips empty lines and a quoted cell may span lines, so counting records drifts; and the reader's
/// own position is where it started reading, before the empty lines it skipped. `previous` (the
/// line of the record before) stands in when the reader gives no position.
pub fn physical_line(text: &str, position: Option<&::csv::Position>, previous: usize) -> usize {
    let Some(p) = position else {
        return previous + 1;
    };
    let mut line = usize::try_from(p.line()).unwrap_or(previous + 1);
    let start = usize::try_from(p.byte()).unwrap_or(usize::MAX);
    for b in text.as_bytes().iter().skip(start) {
        match b {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
}

fn record_line(text: &str, record: &::csv::StringRecord, previous: usize) -> usize {
    physical_line(text, record.position(), previous)
}

fn error_line(text: &str, error: &::csv::Error, previous: usize) -> usize {
    physical_line(text, error.position(), previous)
}

/// Parses a tidy account CSV with the embedded family table. `territory_exists` says whether a code
/// (of the `territory` column or of a territory partner) is known.
pub fn parse_account_csv<R: Read>(
    reader: R,
    territory_exists: &dyn Fn(&str) -> bool,
) -> Result<Vec<AccountRow>, AfmeError> {
    parse_account_csv_with(reader, territory_exists, FamilyTable::builtin())
}

/// As [`parse_account_csv`], with a given family table (for aliases).
pub fn parse_account_csv_with<R: Read>(
    reader: R,
    territory_exists: &dyn Fn(&str) -> bool,
    table: &FamilyTable,
) -> Result<Vec<AccountRow>, AfmeError> {
    let (text, delimiter) = open(reader)?;
    let mut records = csv_reader(&text, delimiter).into_records();
    let mut errors = Vec::new();

    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(AfmeError::Csv(e.to_string())),
        None => {
            return Err(AfmeError::InvalidRows(vec![RowError::new(
                1,
                "",
                format!("empty file: expected the header {}", COLUMNS.join(",")),
            )]));
        }
    };
    // Blank lines before the header are skipped by the reader: the header is where it is.
    let header_line = record_line(&text, &header, 0).max(1);
    let mut position: HashMap<&'static str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if name == FAMILY_LABEL {
            continue;
        }
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if position.contains_key(c) => {
                errors.push(RowError::new(header_line, c, "column appears twice"));
            }
            Some(c) => {
                position.insert(c, i);
            }
            None => errors.push(RowError::new(
                header_line,
                &name,
                format!("unknown column; expected {}", COLUMNS.join(", ")),
            )),
        }
    }
    for c in REQUIRED {
        if !position.contains_key(c) {
            errors.push(RowError::new(header_line, c, "required column missing"));
        }
    }
    if !errors.is_empty() {
        return Err(AfmeError::InvalidRows(errors));
    }

    let mut rows: Vec<(usize, AccountRow)> = Vec::new();
    let mut last_line = header_line;
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row_no = error_line(&text, &e, last_line);
                errors.push(RowError::new(row_no, "", format!("unreadable row: {e}")));
                continue;
            }
        };
        let row_no = record_line(&text, &record, last_line);
        last_line = row_no;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() > header.len() {
            errors.push(RowError::new(
                row_no,
                "",
                format!(
                    "{} fields but the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let cells = Cells {
            record: &record,
            position: &position,
        };
        if let Some(row) = parse_row(row_no, &cells, territory_exists, table, &mut errors) {
            rows.push((row_no, row));
        }
    }

    // cross-row checks: one key, one row; a key in two units is a mixed-unit error
    let mut seen: HashMap<RowKey, (usize, Unit)> = HashMap::new();
    for (row_no, row) in &rows {
        match seen.get(&row.key()) {
            Some((first, unit)) if *unit != row.unit => errors.push(RowError::new(
                *row_no,
                "unit",
                format!(
                    "mixed units: {} {} {} {} is in {} at row {first} and in {} here; keep energy in its own row (e.g. family other) or convert",
                    row.territory,
                    row.year,
                    row.flow,
                    row.family,
                    unit,
                    row.unit
                ),
            )),
            Some((first, _)) => errors.push(RowError::new(
                *row_no,
                "flow",
                format!(
                    "duplicate of row {first} (same territory, year, flow, family and partner; aliases such as 'wood' count as their family)"
                ),
            )),
            None => {
                seen.insert(row.key(), (*row_no, row.unit));
            }
        }
    }

    if errors.is_empty() {
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    } else {
        errors.sort_by_key(|e| e.row);
        Err(AfmeError::InvalidRows(errors))
    }
}

/// The cells of one record, looked up by column name (empty when the column is absent).
struct Cells<'r> {
    record: &'r ::csv::StringRecord,
    position: &'r HashMap<&'static str, usize>,
}

impl<'r> Cells<'r> {
    fn get(&self, name: &str) -> &'r str {
        self.position
            .get(name)
            .and_then(|i| self.record.get(*i))
            .unwrap_or("")
    }
}

fn parse_row(
    row_no: usize,
    cells: &Cells<'_>,
    territory_exists: &dyn Fn(&str) -> bool,
    table: &FamilyTable,
    errors: &mut Vec<RowError>,
) -> Option<AccountRow> {
    let before = errors.len();
    let cell = |name: &str| cells.get(name);
    let mut err =
        |column: &str, message: String| errors.push(RowError::new(row_no, column, message));

    let territory = cell("territory").to_string();
    if territory.is_empty() {
        err("territory", "empty territory".into());
    } else if !territory_exists(&territory) {
        err("territory", format!("unknown territory '{territory}'"));
    }

    let year_text = cell("year");
    let year = match year_text.parse::<i32>() {
        Ok(y) if (1900..=2100).contains(&y) => Some(y),
        Ok(y) => {
            err("year", format!("year {y} is outside 1900–2100"));
            None
        }
        Err(_) => {
            err("year", format!("year '{year_text}' is not an integer"));
            None
        }
    };

    let flow_text = cell("flow");
    let flow = FlowType::parse(flow_text);
    if flow.is_none() {
        err(
            "flow",
            format!(
                "unknown flow type '{flow_text}'; expected one of {}",
                FlowType::expected()
            ),
        );
    }

    let family_text = cell("family");
    let family = table.resolve(family_text);
    if family.is_none() {
        err(
            "family",
            format!(
                "unknown family '{family_text}'; expected one of {} or an alias of the family table",
                Family::expected()
            ),
        );
    }

    let partner_text = cell("partner");
    let partner = if partner_text.is_empty() {
        None
    } else {
        match Partner::parse(partner_text) {
            Ok(p) => {
                if let Some(code) = p.territory_code() {
                    if code == territory {
                        err("partner", "a territory cannot trade with itself".into());
                    } else if !territory_exists(code) {
                        err("partner", format!("unknown territory '{code}'"));
                    }
                }
                if let Some(f) = flow
                    && !f.has_partner()
                {
                    err(
                        "partner",
                        format!("{f} has no partner: only IMP and EXP rows name one"),
                    );
                }
                Some(p)
            }
            Err(m) => {
                err("partner", m);
                None
            }
        }
    };

    let unit_text = cell("unit");
    let unit = Unit::parse_scaled(unit_text);
    match unit {
        None => err(
            "unit",
            format!("unknown unit '{unit_text}'; expected t, kt, MWh or GWh"),
        ),
        Some((u, _)) if u.is_energy() => {
            if let Some(f) = flow
                && !f.allows_energy()
            {
                err(
                    "unit",
                    format!("energy rows (MWh) are only kept for DE, IMP and EXP, not {f}"),
                );
            }
        }
        Some(_) => {}
    }
    let factor = unit.map(|(_, f)| f).unwrap_or(1.0);

    let value_text = cell("value");
    let value = match parse_number(value_text) {
        Some(v) if v < 0.0 => {
            err(
                "value",
                format!(
                    "negative value {value_text}: flows are amounts ≥ 0 (the flow type gives the direction)"
                ),
            );
            None
        }
        Some(v) => Some(v * factor),
        None => {
            err("value", format!("value '{value_text}' is not a number"));
            None
        }
    };

    let uncertainty_text = cell("uncertainty");
    let uncertainty = if uncertainty_text.is_empty() {
        None
    } else {
        match Uncertainty::parse(uncertainty_text) {
            Ok(u) => Some(u.scaled(factor)),
            Err(m) => {
                err("uncertainty", m);
                None
            }
        }
    };

    if errors.len() > before {
        return None;
    }
    Some(AccountRow {
        territory,
        year: year?,
        flow: flow?,
        family: family?,
        partner,
        value: value?,
        unit: unit?.0,
        uncertainty,
        source: opt_text(cell("source")),
        note: opt_text(cell("note")),
    })
}

/// Writes rows in the tidy format (header first), values in their stored unit (`t` or `MWh`), in
/// the English convention (`,` and `.`, no BOM); see [`write_account_csv_in`].
pub fn write_account_csv<W: Write>(writer: W, rows: &[AccountRow]) -> Result<(), AfmeError> {
    write_account_csv_in(writer, rows, Lang::En)
}

/// Writes rows in the tidy format in the reader's convention: French → `;`, decimal comma and a
/// UTF-8 BOM (what French spreadsheets expect); English → `,` and `.`. Values are rounded to the
/// kilogram (3 decimals of a tonne; float noise gone, nothing a re-import would miss), and a last
/// column `family_label` names the family in the reader's language (ignored on import). The
/// importer reads both conventions, so an export is re-importable as is.
pub fn write_account_csv_in<W: Write>(
    mut writer: W,
    rows: &[AccountRow],
    lang: Lang,
) -> Result<(), AfmeError> {
    writer
        .write_all(lang.csv_preamble().as_bytes())
        .map_err(|e| AfmeError::Csv(e.to_string()))?;
    let mut w = ::csv::WriterBuilder::new()
        .delimiter(lang.csv_delimiter())
        .from_writer(writer);
    let map = |e: ::csv::Error| AfmeError::Csv(e.to_string());
    w.write_record(COLUMNS.iter().chain(std::iter::once(&FAMILY_LABEL)))
        .map_err(map)?;
    for r in rows {
        let year = r.year.to_string();
        let value = lang.number(r.value, 3);
        let uncertainty = match r.uncertainty {
            Some(Uncertainty::Percent(p)) => format!("{}%", lang.number(p, 3)),
            Some(Uncertainty::Sd(sd)) => lang.number(sd, 3),
            None => String::new(),
        };
        let family_label = super::labels::family_label(r.family, lang);
        w.write_record([
            r.territory.as_str(),
            year.as_str(),
            r.flow.as_str(),
            r.family.as_str(),
            r.partner.as_ref().map(|p| p.as_str()).unwrap_or(""),
            value.as_str(),
            r.unit.as_str(),
            uncertainty.as_str(),
            r.source.as_deref().unwrap_or(""),
            r.note.as_deref().unwrap_or(""),
            family_label.as_str(),
        ])
        .map_err(map)?;
    }
    w.flush().map_err(|e| AfmeError::Csv(e.to_string()))
}

/// Rows as CSV text (English convention).
pub fn account_csv_string(rows: &[AccountRow]) -> Result<String, AfmeError> {
    account_csv_string_in(rows, Lang::En)
}

/// Rows as CSV text in the reader's convention (see [`write_account_csv_in`]).
pub fn account_csv_string_in(rows: &[AccountRow], lang: Lang) -> Result<String, AfmeError> {
    let mut buf = Vec::new();
    write_account_csv_in(&mut buf, rows, lang)?;
    String::from_utf8(buf).map_err(|e| AfmeError::Csv(e.to_string()))
}

/// A value as published, kept to compare what the service computes against (e.g. DMI, or a
/// per-capita figure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmePublishedValue)]
pub struct PublishedValue {
    pub territory: String,
    pub year: i32,
    /// The file's flow cell: a flow type (`DE`), an indicator (`DMI`) or a memo code
    /// (`RECYCLING_MEMO_LOW`).
    pub code: String,
    /// The family as written in the file (`all`, `wood`, …).
    pub family_label: String,
    /// In tonnes (the file gives kt).
    pub value_t: f64,
    pub per_capita_t: Option<f64>,
    /// `published` or `derived` (a published share applied to a published total).
    pub kind: String,
    pub note: Option<String>,
}

/// A published account: its rows, and the published values (indicators, per-capita figures, memo
/// ranges) to check computations against.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmePublishedAccount)]
pub struct PublishedAccount {
    pub territory: String,
    pub territory_name: String,
    pub rows: Vec<AccountRow>,
    pub references: Vec<PublishedValue>,
}

impl PublishedAccount {
    /// The published value with this code and family label (`("DMI", "all")`).
    pub fn reference(&self, code: &str, family_label: &str) -> Option<&PublishedValue> {
        self.references
            .iter()
            .find(|r| r.code == code && r.family_label == family_label)
    }
}

/// Source cell given to rows read from the published Bourgogne file.
pub const BOURGOGNE_SOURCE: &str =
    "Alterre Bourgogne, Repères n°64 « La Bourgogne comptabilise ses flux de matières » (2013)";

/// Reads the published-account format (`territory_code,territory_name,year,flow,family,value_kt,
/// per_capita_t,kind,note`).
///
/// - values in kt become tonnes;
/// - `DMI` is an indicator, not a flow: it goes to `references` only;
/// - `RECYCLING_MEMO_LOW`/`_HIGH` (a published range) become one `RECYCLING` row at the midpoint
///   with a standard deviation of (high − low)/√12 (a uniform distribution over the range), and
///   both ends stay in `references`;
/// - families are resolved with the family table (`wood` → agricultural_food,
///   `industrial_minerals` → construction_materials); rows that land on the same family are summed
///   and their notes kept;
/// - every row with a value also goes to `references` with its per-capita figure.
pub fn parse_published_csv<R: Read>(reader: R) -> Result<PublishedAccount, AfmeError> {
    parse_published_csv_with(reader, FamilyTable::builtin())
}

/// As [`parse_published_csv`], with a given family table.
pub fn parse_published_csv_with<R: Read>(
    reader: R,
    table: &FamilyTable,
) -> Result<PublishedAccount, AfmeError> {
    const COLS: [&str; 9] = [
        "territory_code",
        "territory_name",
        "year",
        "flow",
        "family",
        "value_kt",
        "per_capita_t",
        "kind",
        "note",
    ];
    let (text, delimiter) = open(reader)?;
    let mut records = csv_reader(&text, delimiter).into_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(AfmeError::Csv(e.to_string())),
        None => {
            return Err(AfmeError::InvalidRows(vec![RowError::new(
                1,
                "",
                "empty file",
            )]));
        }
    };
    let mut errors = Vec::new();
    let mut position: HashMap<&'static str, usize> = HashMap::new();
    for c in COLS {
        match header.iter().position(|h| h.trim().eq_ignore_ascii_case(c)) {
            Some(i) => {
                position.insert(c, i);
            }
            None if c == "territory_name" || c == "note" || c == "per_capita_t" => {}
            None => errors.push(RowError::new(1, c, "required column missing")),
        }
    }
    if !errors.is_empty() {
        return Err(AfmeError::InvalidRows(errors));
    }

    let mut territory: Option<String> = None;
    let mut territory_name = String::new();
    let mut references = Vec::new();
    // (row, memo low/high) collected for the recycling range
    let mut memo: HashMap<(String, i32), (Option<f64>, Option<f64>)> = HashMap::new();
    let mut rows: Vec<AccountRow> = Vec::new();

    let mut last_line = record_line(&text, &header, 0).max(1);
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row_no = error_line(&text, &e, last_line);
                errors.push(RowError::new(row_no, "", format!("unreadable row: {e}")));
                continue;
            }
        };
        let row_no = record_line(&text, &record, last_line);
        last_line = row_no;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cells = Cells {
            record: &record,
            position: &position,
        };
        let cell = |name: &str| cells.get(name);
        let before = errors.len();
        let code = cell("territory_code").to_string();
        if code.is_empty() {
            errors.push(RowError::new(
                row_no,
                "territory_code",
                "empty territory code",
            ));
        }
        match &territory {
            Some(t) if *t != code => errors.push(RowError::new(
                row_no,
                "territory_code",
                format!("one territory per file: '{code}' after '{t}'"),
            )),
            Some(_) => {}
            None => {
                territory = Some(code.clone());
                territory_name = cell("territory_name").to_string();
            }
        }
        let year = match cell("year").parse::<i32>() {
            Ok(y) if (1900..=2100).contains(&y) => y,
            _ => {
                errors.push(RowError::new(
                    row_no,
                    "year",
                    format!("bad year '{}'", cell("year")),
                ));
                0
            }
        };
        let value_kt = match parse_number(cell("value_kt")) {
            Some(v) if v >= 0.0 => v,
            Some(_) => {
                errors.push(RowError::new(row_no, "value_kt", "negative value"));
                0.0
            }
            None => {
                errors.push(RowError::new(
                    row_no,
                    "value_kt",
                    format!("value '{}' is not a number", cell("value_kt")),
                ));
                0.0
            }
        };
        let per_capita_text = cell("per_capita_t");
        let per_capita = if per_capita_text.is_empty() {
            None
        } else {
            match parse_number(per_capita_text) {
                Some(v) => Some(v),
                None => {
                    errors.push(RowError::new(row_no, "per_capita_t", "not a number"));
                    None
                }
            }
        };
        let flow_code = cell("flow").trim().to_ascii_uppercase();
        let family_label = cell("family").to_string();
        let kind = cell("kind").to_string();
        let note = opt_text(cell("note"));

        let family = table.resolve(&family_label);
        let flow = match flow_code.as_str() {
            "DMI" | "DMC" | "PTB" | "DPO_TOTAL" | "RECYCLING_MEMO_LOW" | "RECYCLING_MEMO_HIGH" => {
                None
            }
            other => match FlowType::parse(other) {
                Some(f) => Some(f),
                None => {
                    errors.push(RowError::new(
                        row_no,
                        "flow",
                        format!("unknown flow or indicator '{other}'"),
                    ));
                    None
                }
            },
        };
        if family.is_none() {
            errors.push(RowError::new(
                row_no,
                "family",
                format!("unknown family '{family_label}'"),
            ));
        }
        if errors.len() > before {
            continue;
        }

        let value_t = value_kt * 1_000.0;
        references.push(PublishedValue {
            territory: code.clone(),
            year,
            code: flow_code.clone(),
            family_label: family_label.clone(),
            value_t,
            per_capita_t: per_capita,
            kind: kind.clone(),
            note: note.clone(),
        });
        match flow_code.as_str() {
            "RECYCLING_MEMO_LOW" => memo.entry((code.clone(), year)).or_default().0 = Some(value_t),
            "RECYCLING_MEMO_HIGH" => {
                memo.entry((code.clone(), year)).or_default().1 = Some(value_t)
            }
            _ => {}
        }
        let (Some(flow), Some(family)) = (flow, family) else {
            continue;
        };
        let original = family_label.trim().to_lowercase();
        let labelled_note = {
            let base = note.clone().unwrap_or_default();
            let mapped = if original != family.as_str() {
                format!("{original} → {family}: ")
            } else {
                String::new()
            };
            let kind_part = if kind.is_empty() {
                String::new()
            } else {
                format!(" [{kind}]")
            };
            opt_text(&format!("{mapped}{base}{kind_part}"))
        };
        if let Some(existing) = rows
            .iter_mut()
            .find(|r| r.territory == code && r.year == year && r.flow == flow && r.family == family)
        {
            existing.value += value_t;
            existing.note = match (existing.note.take(), labelled_note) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
        } else {
            rows.push(AccountRow {
                territory: code.clone(),
                year,
                flow,
                family,
                partner: None,
                value: value_t,
                unit: Unit::Tonne,
                uncertainty: None,
                source: Some(BOURGOGNE_SOURCE.to_string()),
                note: labelled_note,
            });
        }
    }

    for ((code, year), (low, high)) in memo {
        let (value, uncertainty, note) = match (low, high) {
            (Some(l), Some(h)) => (
                (l + h) / 2.0,
                Some(Uncertainty::Sd((h - l).abs() / 12f64.sqrt())),
                format!(
                    "midpoint of the published range {} – {} kt",
                    l / 1e3,
                    h / 1e3
                ),
            ),
            (Some(v), None) | (None, Some(v)) => (v, None, "one end of the published range".into()),
            (None, None) => continue,
        };
        rows.push(AccountRow {
            territory: code,
            year,
            flow: FlowType::Recycling,
            family: Family::All,
            partner: None,
            value,
            unit: Unit::Tonne,
            uncertainty,
            source: Some(BOURGOGNE_SOURCE.to_string()),
            note: Some(note),
        });
    }

    if !errors.is_empty() {
        return Err(AfmeError::InvalidRows(errors));
    }
    let Some(territory) = territory else {
        return Err(AfmeError::InvalidRows(vec![RowError::new(
            2,
            "",
            "no data rows",
        )]));
    };
    Ok(PublishedAccount {
        territory,
        territory_name,
        rows,
        references,
    })
}

#[cfg(test)]
mod tests;
