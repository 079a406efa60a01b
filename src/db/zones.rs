//! Custom zones: a named set of communes.

use diesel::prelude::*;

use super::models::{ZoneCommuneRow, ZoneRow};
use super::schema::{zone_communes, zones};
use super::{DbConnection, DbError, conflict_on_unique};

/// Stores a zone and its communes in one transaction.
pub fn insert(conn: &mut DbConnection, zone: &ZoneRow, communes: &[String]) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::insert_into(zones::table)
            .values(zone)
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, "a zone with this code already exists"))?;
        for chunk in communes.chunks(500) {
            let rows: Vec<ZoneCommuneRow> = chunk
                .iter()
                .map(|c| ZoneCommuneRow {
                    zone_code: zone.code.clone(),
                    commune_insee: c.clone(),
                })
                .collect();
            for row in &rows {
                diesel::insert_into(zone_communes::table)
                    .values(row)
                    .execute(conn)?;
            }
        }
        Ok(())
    })
}

pub fn get(conn: &mut DbConnection, code: &str) -> Result<Option<ZoneRow>, DbError> {
    Ok(zones::table
        .find(code)
        .select(ZoneRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn communes(conn: &mut DbConnection, code: &str) -> Result<Vec<String>, DbError> {
    Ok(zone_communes::table
        .filter(zone_communes::zone_code.eq(code))
        .select(zone_communes::commune_insee)
        .order(zone_communes::commune_insee)
        .load(conn)?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<ZoneRow>, DbError> {
    Ok(zones::table
        .select(ZoneRow::as_select())
        .order(zones::code)
        .load(conn)?)
}

/// Deletes a custom zone with its material flow account and population overrides, in one
/// transaction: a zone created later under the same code must not inherit them.
pub fn delete(conn: &mut DbConnection, code: &str) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        let n = diesel::delete(zones::table.find(code)).execute(conn)?;
        if n == 0 {
            return Err(DbError::NotFound);
        }
        super::afme::delete_territory(conn, code)?;
        Ok(())
    })
}
