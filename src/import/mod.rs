//! Bulk import of actors with their resources from one CSV file (format in docs/IMPORT.md):
//! one row per resource, the actor's columns repeated on each of its rows. The whole file is
//! validated, row by row as it is read, before anything is stored; the report names the first
//! [`MAX_REPORTED_ERRORS`] bad cells and counts the others, so that a huge bad file costs no more
//! memory than a small one.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::domain::actor::{ActorInput, Contact, ValidActor};
use crate::domain::resource::{
    Availability, AvailabilityKind, Category, Classifier, Period, PhysicalState, Quantity,
    ResourceInput, ResourceKind, Unit, ValidResource,
};
use crate::domain::validation::FieldError;
use crate::reference::Reference;

/// The columns, in the documented order. Only `actor_name`, `naf_code` and `commune_insee` are
/// needed for an actor; a row with an empty `kind` declares the actor alone.
pub const COLUMNS: &[&str] = &[
    "actor_ref",
    "actor_name",
    "siret",
    "naf_code",
    "address",
    "commune_insee",
    "lat",
    "lng",
    "contact_name",
    "contact_email",
    "contact_phone",
    "share_with_partners",
    "kind",
    "category",
    "class",
    "label",
    "description",
    "ewc_code",
    "accepted_ewc",
    "quantity",
    "unit",
    "period",
    "availability",
    "months",
    "available_from",
    "available_until",
    "temperature_c",
    "max_distance_km",
    "physical_state",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Row {
    actor_ref: String,
    actor_name: String,
    siret: String,
    naf_code: String,
    address: String,
    commune_insee: String,
    lat: String,
    lng: String,
    contact_name: String,
    contact_email: String,
    contact_phone: String,
    share_with_partners: String,
    kind: String,
    category: String,
    class: String,
    label: String,
    description: String,
    ewc_code: String,
    accepted_ewc: String,
    quantity: String,
    unit: String,
    period: String,
    availability: String,
    months: String,
    available_from: String,
    available_until: String,
    temperature_c: String,
    max_distance_km: String,
    physical_state: String,
}

/// An actor of the file with its resources, all valid.
#[derive(Debug, Clone)]
pub struct ImportedActor {
    pub first_row: u64,
    /// The file's `actor_ref` for this actor (empty when the file grouped rows by SIRET or name).
    pub actor_ref: String,
    pub actor: ValidActor,
    /// Each resource with the line it came from.
    pub resources: Vec<(u64, ValidResource)>,
}

#[derive(Debug)]
pub struct ImportPlan {
    pub rows: usize,
    pub actors: Vec<ImportedActor>,
}

impl ImportPlan {
    pub fn resource_count(&self) -> usize {
        self.actors.iter().map(|a| a.resources.len()).sum()
    }
}

/// Most errors an import lists; the others are only counted.
pub const MAX_REPORTED_ERRORS: usize = 1_000;
/// Longest piece of a cell quoted in an error message.
const MAX_QUOTED_CHARS: usize = 60;
/// Longest error message kept (domain messages quote whole values).
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a file is refused: its first errors, in file order, and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportErrors {
    pub errors: Vec<FieldError>,
    pub error_count: usize,
}

impl ImportErrors {
    /// Keeps the first [`MAX_REPORTED_ERRORS`] of `errors`.
    pub fn capped(mut errors: Vec<FieldError>) -> ImportErrors {
        let error_count = errors.len();
        errors.truncate(MAX_REPORTED_ERRORS);
        ImportErrors {
            errors,
            error_count,
        }
    }

    /// Whether errors were left out of the list.
    pub fn truncated(&self) -> bool {
        self.error_count > self.errors.len()
    }
}

/// The errors found so far: the first ones kept, all counted.
struct Errors {
    kept: Vec<FieldError>,
    count: usize,
}

impl Errors {
    fn add(&mut self, row: u64, column: &str, message: impl Into<String>) {
        self.count += 1;
        if self.kept.len() < MAX_REPORTED_ERRORS {
            self.kept.push(FieldError {
                field: column.to_owned(),
                message: clip(message.into(), MAX_MESSAGE_CHARS),
                row: Some(row),
            });
        }
    }

    fn finish(self) -> ImportErrors {
        ImportErrors {
            errors: self.kept,
            error_count: self.count,
        }
    }
}

/// A cell as quoted in an error message: at most [`MAX_QUOTED_CHARS`] characters of it.
fn quote(text: &str) -> String {
    clip(text.to_owned(), MAX_QUOTED_CHARS)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(mut text: String, max: usize) -> String {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
        text.push('…');
    }
    text
}

fn opt(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn number(errors: &mut Errors, line: u64, column: &str, text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.replace(',', ".").parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            errors.add(line, column, format!("`{}` is not a number", quote(t)));
            None
        }
    }
}

fn choice<T>(
    errors: &mut Errors,
    line: u64,
    column: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
    expected: String,
) -> Option<T> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let parsed = parse(t);
    if parsed.is_none() {
        errors.add(
            line,
            column,
            format!("`{}` is not one of: {expected}", quote(t)),
        );
    }
    parsed
}

fn date(errors: &mut Errors, line: u64, column: &str, text: &str) -> Option<chrono::NaiveDate> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let parsed = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok();
    if parsed.is_none() {
        errors.add(
            line,
            column,
            format!("`{}` is not a date YYYY-MM-DD", quote(t)),
        );
    }
    parsed
}

/// What the later rows of an actor are checked against: where its first row is, and hashes of the
/// columns they must repeat (trimmed, as validation reads them).
struct FirstRow {
    /// In the plan's `actors`; `None` once the file has errors (the plan is no longer built).
    index: Option<usize>,
    line: u64,
    name: u64,
    naf_code: u64,
    commune: u64,
    siret: u64,
}

impl FirstRow {
    fn of(input: &ActorInput, line: u64) -> FirstRow {
        let hash = |text: &str| xxh3_64(text.trim().as_bytes());
        FirstRow {
            index: None,
            line,
            name: hash(&input.name),
            naf_code: hash(&input.naf_code),
            commune: hash(&input.commune_insee),
            siret: input.siret.as_deref().map_or(0, hash),
        }
    }
}

/// Maps a field path of a domain validation error to the CSV column it came from.
fn column_of(field: &str) -> &str {
    match field {
        "name" => "actor_name",
        "contact.name" => "contact_name",
        "contact.email" => "contact_email",
        "contact.phone" => "contact_phone",
        "quantity.value" => "quantity",
        "availability.months" => "months",
        "availability.from" => "available_from",
        "availability.until" => "available_until",
        f if f.starts_with("accepted_ewc") => "accepted_ewc",
        f => f,
    }
}

/// Parses and validates a whole file, reading it as a stream. `Err` lists the first problems found,
/// row by row, and counts them all. A read error of `input` (the upload broke off) ends the
/// validation.
pub fn plan(
    input: impl Read,
    reference: &Reference,
    classifier: &dyn Classifier,
) -> Result<ImportPlan, ImportErrors> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let mut errors = Errors {
        kept: Vec::new(),
        count: 0,
    };
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.add(1, "header", format!("cannot read the header: {e}"));
            return Err(errors.finish());
        }
    };
    for required in ["actor_name", "naf_code", "commune_insee"] {
        if !headers.iter().any(|h| h == required) {
            errors.add(1, required, "required column is missing");
        }
    }
    for h in headers.iter() {
        if !COLUMNS.contains(&h) {
            errors.add(1, &quote(h), "unknown column");
        }
    }
    if errors.count > 0 {
        return Err(errors.finish());
    }
    let mut actors: Vec<ImportedActor> = Vec::new();
    // Hashes of the actor keys and of the SIRETs seen: a file of a million actors costs tens of
    // bytes per actor to check, besides the plan.
    let mut by_key: HashMap<u128, FirstRow> = HashMap::new();
    let mut by_siret: HashMap<u64, u64> = HashMap::new();
    let mut rows = 0usize;
    for (i, record) in reader.records().enumerate() {
        if errors.count > 0 && actors.capacity() > 0 {
            // The file is refused: the plan will never be stored, stop holding it.
            actors = Vec::new();
        }
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line())
            .unwrap_or(i as u64 + 2);
        rows += 1;
        if let Err(e) = &record
            && let csv::ErrorKind::Io(io) = e.kind()
        {
            errors.add(line, "row", format!("cannot read the file: {io}"));
            break;
        }
        if let Ok(r) = &record
            && let Some(column) = r.iter().position(|cell| cell.contains('\0'))
        {
            errors.add(
                line,
                headers.get(column).unwrap_or("row"),
                "must not contain NUL characters",
            );
            continue;
        }
        let row: Row = match record.and_then(|r| r.deserialize(Some(&headers))) {
            Ok(row) => row,
            Err(e) => {
                errors.add(line, "row", format!("unreadable row: {e}"));
                continue;
            }
        };
        let actor_input = ActorInput {
            name: row.actor_name.clone(),
            siret: opt(&row.siret),
            naf_code: row.naf_code.clone(),
            address: opt(&row.address),
            commune_insee: row.commune_insee.clone(),
            lat: number(&mut errors, line, "lat", &row.lat),
            lng: number(&mut errors, line, "lng", &row.lng),
            contact: Some(Contact {
                name: opt(&row.contact_name),
                email: opt(&row.contact_email),
                phone: opt(&row.contact_phone),
            }),
            share_with_partners: match row.share_with_partners.trim().to_lowercase().as_str() {
                "" | "false" | "0" | "no" | "non" => false,
                "true" | "1" | "yes" | "oui" => true,
                other => {
                    errors.add(
                        line,
                        "share_with_partners",
                        format!("`{}` is not true/false", quote(other)),
                    );
                    false
                }
            },
        };
        let key = opt(&row.actor_ref)
            .or_else(|| opt(&row.siret).map(|s| format!("siret:{}", s.replace(' ', ""))))
            .unwrap_or_else(|| {
                format!(
                    "name:{}|{}",
                    row.actor_name.trim().to_lowercase(),
                    row.commune_insee.trim()
                )
            });
        let fields = FirstRow::of(&actor_input, line);
        let index = match by_key.get(&xxh3_128(key.as_bytes())) {
            Some(first) => {
                for (column, differs) in [
                    ("actor_name", first.name != fields.name),
                    ("naf_code", first.naf_code != fields.naf_code),
                    ("commune_insee", first.commune != fields.commune),
                    ("siret", first.siret != fields.siret),
                ] {
                    if differs {
                        errors.add(
                            line,
                            column,
                            format!("differs from this actor's first row (line {})", first.line),
                        );
                    }
                }
                first.index
            }
            None => match actor_input.validate(reference) {
                Ok(valid) => {
                    if let Some(siret) = &valid.siret
                        && let Some(other) = by_siret.insert(xxh3_64(siret.as_bytes()), line)
                    {
                        errors.add(
                            line,
                            "siret",
                            format!("already used by another actor of this file (line {other})"),
                        );
                    }
                    let index = (errors.count == 0).then(|| {
                        actors.push(ImportedActor {
                            first_row: line,
                            actor_ref: row.actor_ref.trim().to_owned(),
                            actor: valid,
                            resources: Vec::new(),
                        });
                        actors.len() - 1
                    });
                    by_key.insert(xxh3_128(key.as_bytes()), FirstRow { index, ..fields });
                    index
                }
                Err(field_errors) => {
                    for e in field_errors {
                        errors.add(line, column_of(&e.field), e.message);
                    }
                    None
                }
            },
        };
        if row.kind.trim().is_empty() {
            continue;
        }
        if let Some(resource) = resource_input(&mut errors, line, &row) {
            match resource.validate(reference, classifier) {
                Ok(valid) => {
                    if let Some(actor) = index.and_then(|i| actors.get_mut(i)) {
                        actor.resources.push((line, valid));
                    }
                }
                Err(field_errors) => {
                    for e in field_errors {
                        errors.add(line, column_of(&e.field), e.message);
                    }
                }
            }
        }
    }
    if rows == 0 {
        errors.add(1, "row", "the file has no data rows");
    }
    if errors.count == 0 {
        Ok(ImportPlan { rows, actors })
    } else {
        Err(errors.finish())
    }
}

fn resource_input(errors: &mut Errors, line: u64, row: &Row) -> Option<ResourceInput> {
    let before = errors.count;
    let kind = choice(
        errors,
        line,
        "kind",
        &row.kind,
        ResourceKind::parse,
        ResourceKind::expected(),
    );
    let category = choice(
        errors,
        line,
        "category",
        &row.category,
        Category::parse,
        Category::expected(),
    );
    if row.category.trim().is_empty() {
        errors.add(line, "category", "is required for a resource");
    }
    let value = number(errors, line, "quantity", &row.quantity);
    let unit = choice(
        errors,
        line,
        "unit",
        &row.unit,
        Unit::parse,
        Unit::expected(),
    );
    let period = choice(
        errors,
        line,
        "period",
        &row.period,
        Period::parse,
        Period::expected(),
    );
    let quantity = match (value, unit, period) {
        (Some(value), Some(unit), Some(period)) => Some(Quantity {
            value,
            unit,
            period,
        }),
        (None, None, None) => None,
        _ => {
            if errors.count == before {
                errors.add(line, "quantity", "quantity, unit and period go together");
            }
            None
        }
    };
    let availability_kind = match row.availability.trim() {
        "" => AvailabilityKind::Continuous,
        text => choice(
            errors,
            line,
            "availability",
            text,
            AvailabilityKind::parse,
            AvailabilityKind::expected(),
        )
        .unwrap_or(AvailabilityKind::Continuous),
    };
    let mut months = Vec::new();
    for m in row
        .months
        .split([';', ' ', '|'])
        .filter(|m| !m.trim().is_empty())
    {
        match m.trim().parse::<u8>() {
            Ok(m) => months.push(m),
            Err(_) => errors.add(
                line,
                "months",
                format!("`{}` is not a month number", quote(m)),
            ),
        }
    }
    let availability = Availability {
        kind: availability_kind,
        months,
        from: date(errors, line, "available_from", &row.available_from),
        until: date(errors, line, "available_until", &row.available_until),
    };
    let temperature_c = number(errors, line, "temperature_c", &row.temperature_c);
    let max_distance_km = number(errors, line, "max_distance_km", &row.max_distance_km);
    let physical_state = choice(
        errors,
        line,
        "physical_state",
        &row.physical_state,
        PhysicalState::parse,
        PhysicalState::expected(),
    );
    let accepted_ewc = row.accepted_ewc.split(['|', ';']).filter_map(opt).collect();
    if errors.count > before {
        return None;
    }
    Some(ResourceInput {
        kind: kind?,
        category: category?,
        class: opt(&row.class),
        label: row.label.clone(),
        description: opt(&row.description),
        ewc_code: opt(&row.ewc_code),
        accepted_ewc,
        quantity,
        availability: Some(availability),
        temperature_c,
        max_distance_km,
        physical_state,
    })
}
