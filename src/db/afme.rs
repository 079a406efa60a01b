//! Territorial material flow accounts (AFME): storage of account rows and per-year population
//! overrides, and the loader of the published Bourgogne 2010 account for the demo.
//!
//! # Import semantics
//!
//! An import **replaces the whole account of every (territory, year) it contains**: the rows stored
//! for that territory and year are deleted and the file's rows inserted, in one transaction (all or
//! nothing). Years (and territories) absent from the file are left untouched. This is what a
//! facilitator re-importing a corrected file expects: a row removed from the file disappears, rather
//! than lingering from the previous import as a key-by-key upsert would leave it.
//!
//! Rows keep the order of the imported file (`position`): indicators, the Sankey and reconciliation
//! constraints name rows by their index in that order, so `GET …/afme?year=` lists them in it.
//!
//! A row without partner stores `partner = ''` (not NULL) so that the UNIQUE key (territory, year,
//! flow, family, partner, unit) also holds for those rows on both backends.

use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use super::models::ZoneRow;
use super::{DbConnection, DbError, conflict_on_unique};
use crate::afme::{AccountRow, AfmeError, Family, FlowType, Partner, Uncertainty, Unit};
use crate::reference::Reference;

diesel::table! {
    /// One line of a territorial account.
    afme_rows (id) {
        id -> Text,
        territory -> Text,
        year -> Integer,
        position -> Integer,
        flow -> Text,
        family -> Text,
        partner -> Text,
        value -> Double,
        unit -> Text,
        uncertainty_kind -> Nullable<Text>,
        uncertainty -> Nullable<Double>,
        source -> Nullable<Text>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Population of a territory for one year, overriding the reference communes' population.
    afme_population (territory, year) {
        territory -> Text,
        year -> Integer,
        population -> BigInt,
        updated_at -> Timestamp,
    }
}

/// Rows per INSERT: 14 columns × 400 rows stays far below SQLite's 32,766 bound parameters.
const CHUNK: usize = 400;

/// A stored account row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = afme_rows)]
pub struct AfmeRowRecord {
    pub id: String,
    pub territory: String,
    pub year: i32,
    pub position: i32,
    pub flow: String,
    pub family: String,
    /// `''` when the row names no partner.
    pub partner: String,
    pub value: f64,
    pub unit: String,
    /// `sd` or `percent`.
    pub uncertainty_kind: Option<String>,
    pub uncertainty: Option<f64>,
    pub source: Option<String>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

impl AfmeRowRecord {
    fn from_row(row: &AccountRow, position: i32, now: NaiveDateTime) -> Self {
        let (uncertainty_kind, uncertainty) = match row.uncertainty {
            Some(Uncertainty::Sd(sd)) => (Some("sd".to_owned()), Some(sd)),
            Some(Uncertainty::Percent(p)) => (Some("percent".to_owned()), Some(p)),
            None => (None, None),
        };
        AfmeRowRecord {
            id: uuid::Uuid::new_v4().to_string(),
            territory: row.territory.clone(),
            year: row.year,
            position,
            flow: row.flow.as_str().to_owned(),
            family: row.family.as_str().to_owned(),
            partner: row
                .partner
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            value: row.value,
            unit: row.unit.as_str().to_owned(),
            uncertainty_kind,
            uncertainty,
            source: row.source.clone(),
            note: row.note.clone(),
            created_at: now,
        }
    }

    /// The account row; an error when a stored code is not one this version knows (a database
    /// edited by hand, or written by a newer version).
    pub fn to_account_row(&self) -> Result<AccountRow, DbError> {
        let bad = |what: &str, text: &str| {
            DbError::Query(diesel::result::Error::DeserializationError(
                format!("afme_rows {}: unknown {what} `{text}`", self.id).into(),
            ))
        };
        let flow = FlowType::parse_exact(&self.flow).ok_or_else(|| bad("flow", &self.flow))?;
        let family =
            Family::parse_exact(&self.family).ok_or_else(|| bad("family", &self.family))?;
        let unit = Unit::parse_exact(&self.unit).ok_or_else(|| bad("unit", &self.unit))?;
        let partner = if self.partner.is_empty() {
            None
        } else {
            Some(Partner::parse(&self.partner).map_err(|_| bad("partner", &self.partner))?)
        };
        let uncertainty = match (self.uncertainty_kind.as_deref(), self.uncertainty) {
            (Some("sd"), Some(v)) => Some(Uncertainty::Sd(v)),
            (Some("percent"), Some(v)) => Some(Uncertainty::Percent(v)),
            (None, None) => None,
            (kind, _) => return Err(bad("uncertainty kind", kind.unwrap_or("(none)"))),
        };
        Ok(AccountRow {
            territory: self.territory.clone(),
            year: self.year,
            flow,
            family,
            partner,
            value: self.value,
            unit,
            uncertainty,
            source: self.source.clone(),
            note: self.note.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = afme_population)]
pub struct PopulationRow {
    pub territory: String,
    pub year: i32,
    pub population: i64,
    pub updated_at: NaiveDateTime,
}

/// What an import did to one (territory, year) account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedAccount {
    pub territory: String,
    pub year: i32,
    /// Rows of the file stored for this account.
    pub rows_stored: usize,
    /// Rows previously stored for this account, now deleted.
    pub rows_replaced: usize,
}

macro_rules! insert_chunks {
    ($conn:expr, $records:expr) => {{
        for chunk in $records.chunks(CHUNK) {
            diesel::insert_into(afme_rows::table)
                .values(chunk)
                .execute($conn)
                .map_err(|e| {
                    conflict_on_unique(
                        e,
                        "an AFME row with the same territory, year, flow, family, partner and unit \
                         was stored concurrently; retry the import",
                    )
                })?;
        }
        Ok::<(), DbError>(())
    }};
}

/// Replaces the accounts of every (territory, year) present in `rows` by those rows, in one
/// transaction. Returns one entry per account, in order of first appearance in `rows`.
pub fn replace_accounts(
    conn: &mut DbConnection,
    rows: &[AccountRow],
) -> Result<Vec<ReplacedAccount>, DbError> {
    let now = Utc::now().naive_utc();
    let mut accounts: Vec<ReplacedAccount> = Vec::new();
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let index = match accounts
            .iter()
            .position(|a| a.territory == row.territory && a.year == row.year)
        {
            Some(i) => i,
            None => {
                accounts.push(ReplacedAccount {
                    territory: row.territory.clone(),
                    year: row.year,
                    rows_stored: 0,
                    rows_replaced: 0,
                });
                accounts.len() - 1
            }
        };
        let Some(account) = accounts.get_mut(index) else {
            continue;
        };
        let position = i32::try_from(account.rows_stored).unwrap_or(i32::MAX);
        account.rows_stored += 1;
        records.push(AfmeRowRecord::from_row(row, position, now));
    }
    super::transaction(conn, |conn| {
        for account in &mut accounts {
            account.rows_replaced = diesel::delete(
                afme_rows::table
                    .filter(afme_rows::territory.eq(&account.territory))
                    .filter(afme_rows::year.eq(account.year)),
            )
            .execute(conn)?;
        }
        match conn {
            DbConnection::Sqlite(c) => insert_chunks!(c, records),
            DbConnection::Postgresql(c) => insert_chunks!(c, records),
        }
    })?;
    Ok(accounts)
}

/// The rows of a territory (all years, or one), by year then file order.
pub fn list_rows(
    conn: &mut DbConnection,
    territory: &str,
    year: Option<i32>,
) -> Result<Vec<AccountRow>, DbError> {
    let mut query = afme_rows::table
        .filter(afme_rows::territory.eq(territory))
        .into_boxed();
    if let Some(y) = year {
        query = query.filter(afme_rows::year.eq(y));
    }
    query
        .order((afme_rows::year, afme_rows::position))
        .select(AfmeRowRecord::as_select())
        .load(conn)?
        .iter()
        .map(AfmeRowRecord::to_account_row)
        .collect()
}

/// The rows of several territories for one year, by territory then file order.
pub fn list_rows_of(
    conn: &mut DbConnection,
    territories: &[String],
    year: i32,
) -> Result<Vec<AccountRow>, DbError> {
    let mut out = Vec::new();
    for chunk in territories.chunks(CHUNK) {
        let records: Vec<AfmeRowRecord> = afme_rows::table
            .filter(afme_rows::territory.eq_any(chunk))
            .filter(afme_rows::year.eq(year))
            .order((afme_rows::territory, afme_rows::position))
            .select(AfmeRowRecord::as_select())
            .load(conn)?;
        for r in &records {
            out.push(r.to_account_row()?);
        }
    }
    Ok(out)
}

/// The years for which any of `territories` has an account, ascending.
pub fn years(conn: &mut DbConnection, territories: &[String]) -> Result<Vec<i32>, DbError> {
    let mut out: Vec<i32> = Vec::new();
    for chunk in territories.chunks(CHUNK) {
        let found: Vec<i32> = afme_rows::table
            .filter(afme_rows::territory.eq_any(chunk))
            .select(afme_rows::year)
            .distinct()
            .load(conn)?;
        out.extend(found);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The population override of a territory for a year, if one is set.
pub fn population(
    conn: &mut DbConnection,
    territory: &str,
    year: i32,
) -> Result<Option<i64>, DbError> {
    Ok(afme_population::table
        .find((territory, year))
        .select(afme_population::population)
        .first(conn)
        .optional()?)
}

/// Sets (inserts or replaces) the population override of a territory for a year.
pub fn set_population(
    conn: &mut DbConnection,
    territory: &str,
    year: i32,
    population: i64,
) -> Result<(), DbError> {
    let row = PopulationRow {
        territory: territory.to_owned(),
        year,
        population,
        updated_at: Utc::now().naive_utc(),
    };
    macro_rules! upsert {
        ($c:expr) => {
            diesel::insert_into(afme_population::table)
                .values(&row)
                .on_conflict((afme_population::territory, afme_population::year))
                .do_update()
                .set((
                    afme_population::population.eq(row.population),
                    afme_population::updated_at.eq(row.updated_at),
                ))
                .execute($c)
        };
    }
    match conn {
        DbConnection::Sqlite(c) => upsert!(c)?,
        DbConnection::Postgresql(c) => upsert!(c)?,
    };
    Ok(())
}

/// Removes the population override of a territory for a year; `NotFound` when none is set.
pub fn delete_population(
    conn: &mut DbConnection,
    territory: &str,
    year: i32,
) -> Result<(), DbError> {
    let n = diesel::delete(afme_population::table.find((territory, year))).execute(conn)?;
    if n == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Deletes a territory's whole account (every year) and its population overrides; returns the
/// number of account rows deleted. Call it in the transaction that deletes a custom zone.
pub fn delete_territory(conn: &mut DbConnection, territory: &str) -> Result<usize, DbError> {
    let rows = diesel::delete(afme_rows::table.filter(afme_rows::territory.eq(territory)))
        .execute(conn)?;
    diesel::delete(afme_population::table.filter(afme_population::territory.eq(territory)))
        .execute(conn)?;
    Ok(rows)
}

/// Code of the demo's custom zone: the former région Bourgogne, as the published file names it.
pub const BOURGOGNE_ZONE: &str = "27-BOURGOGNE";

/// Départements of the former région Bourgogne.
pub const BOURGOGNE_DEPARTEMENTS: [&str; 4] = ["21", "58", "71", "89"];

/// Year of the published Bourgogne account.
pub const BOURGOGNE_YEAR: i32 = 2010;

/// Population of the former région Bourgogne used for its 2010 per-capita figures: INSEE legal
/// population (*population municipale*) from the 2010 census (reference date 1 January 2010,
/// in force from 1 January 2013), the population of the account's year. The reference communes
/// carry 2021 and 2015 populations (1,620,593 and 1,641,205), which would give 33.9 and
/// 33.45 t of DMI per inhabitant instead of the published 33.4; neighbouring INSEE legal
/// populations: 1,638,588 (2008), 1,642,734 (2011), 1,641,130 (2012).
pub const BOURGOGNE_POPULATION_2010: i64 = 1_642_115;

/// Path of the published account under the reference directory.
pub fn bourgogne_file(reference_dir: &Path) -> PathBuf {
    reference_dir.join("afme/bourgogne_2010.csv")
}

/// Why the demo account could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DemoLoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Afme { path: String, source: AfmeError },
    #[error("{path}: {message}")]
    Content { path: String, message: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Loads the published Bourgogne 2010 account (`afme/bourgogne_2010.csv` under the reference
/// directory, Alterre Bourgogne, *Repères* n°64, 2013) into the demo, idempotently:
/// - the custom zone `27-BOURGOGNE` (communes of départements 21, 58, 71, 89) when it does not
///   exist (an existing zone of that code is kept as it is);
/// - its account rows, replacing the stored 2010 account of the zone (so a second run stores the
///   same rows again);
/// - the 2010 population override ([`BOURGOGNE_POPULATION_2010`]) unless one is already set.
///
/// All in one transaction. Returns the number of account rows stored.
pub fn load_bourgogne_demo(
    conn: &mut DbConnection,
    reference: &Reference,
) -> Result<usize, DemoLoadError> {
    let path = bourgogne_file(&reference.dir);
    let shown = path.display().to_string();
    let file = std::fs::File::open(&path).map_err(|source| DemoLoadError::Io {
        path: shown.clone(),
        source,
    })?;
    let published =
        crate::afme::csv::parse_published_csv(file).map_err(|source| DemoLoadError::Afme {
            path: shown.clone(),
            source,
        })?;
    if published.territory != BOURGOGNE_ZONE {
        return Err(DemoLoadError::Content {
            path: shown,
            message: format!(
                "expected the account of {BOURGOGNE_ZONE}, found {}",
                published.territory
            ),
        });
    }
    let mut communes: Vec<String> = BOURGOGNE_DEPARTEMENTS
        .iter()
        .flat_map(|d| reference.geo.communes_of_departement(d))
        .collect();
    communes.sort();
    communes.dedup();
    if communes.is_empty() {
        return Err(DemoLoadError::Content {
            path: shown,
            message: "the reference data has no commune in départements 21, 58, 71, 89".into(),
        });
    }
    let name = if published.territory_name.trim().is_empty() {
        "Bourgogne (ancienne région)".to_owned()
    } else {
        published.territory_name.trim().to_owned()
    };
    let rows = published.rows;
    let stored = super::transaction(conn, |conn| {
        if super::zones::get(conn, BOURGOGNE_ZONE)?.is_none() {
            let zone = ZoneRow {
                code: BOURGOGNE_ZONE.to_owned(),
                name,
                created_at: Utc::now().naive_utc(),
            };
            super::zones::insert(conn, &zone, &communes)?;
        }
        let accounts = replace_accounts(conn, &rows)?;
        if population(conn, BOURGOGNE_ZONE, BOURGOGNE_YEAR)?.is_none() {
            set_population(
                conn,
                BOURGOGNE_ZONE,
                BOURGOGNE_YEAR,
                BOURGOGNE_POPULATION_2010,
            )?;
        }
        Ok::<usize, DbError>(accounts.iter().map(|a| a.rows_stored).sum())
    })?;
    Ok(stored)
}
