//! Territory scopes of keys: which communes a list of territory codes covers, whether a territory
//! lies inside them, and the 403s handlers answer when it does not.

use std::collections::HashSet;

use crate::api::error::ApiError;
use crate::api::{AppState, State};
use crate::db::{self, DbConnection, DbError};
use crate::reference::Reference;
use crate::reference::geo::TerritoryKind;

use super::Caller;

/// One territory of a scope, resolved once so that many communes can be tested against it.
#[derive(Debug, Clone)]
enum Area {
    Country,
    Region(String),
    Departement(String),
    Epci(String),
    Commune(String),
    /// A custom zone's communes (empty when the zone no longer exists: it covers nothing).
    Zone(HashSet<String>),
}

/// The communes a list of territory codes covers; an empty list covers all of France.
#[derive(Debug, Clone)]
pub struct Coverage {
    areas: Vec<Area>,
}

impl Coverage {
    pub fn national() -> Coverage {
        Coverage {
            areas: vec![Area::Country],
        }
    }

    /// Resolves `territories` (reference codes or custom zones, which need the database).
    pub fn load(
        conn: &mut DbConnection,
        reference: &Reference,
        territories: &[String],
    ) -> Result<Coverage, DbError> {
        if territories.is_empty() {
            return Ok(Coverage::national());
        }
        let mut areas = Vec::with_capacity(territories.len());
        for code in territories {
            let area = match reference.geo.territory(code) {
                Some(t) => match t.kind {
                    TerritoryKind::Country => Area::Country,
                    TerritoryKind::Region => {
                        Area::Region(t.code.trim_start_matches('R').to_owned())
                    }
                    TerritoryKind::Departement => Area::Departement(t.code),
                    TerritoryKind::Epci => Area::Epci(t.code),
                    TerritoryKind::Commune | TerritoryKind::Zone => Area::Commune(t.code),
                },
                None => Area::Zone(db::zones::communes(conn, code)?.into_iter().collect()),
            };
            areas.push(area);
        }
        Ok(Coverage { areas })
    }

    pub fn is_national(&self) -> bool {
        self.areas.iter().any(|a| matches!(a, Area::Country))
    }

    /// Whether the commune (INSEE code) lies in one of the territories.
    pub fn covers_commune(&self, reference: &Reference, insee: &str) -> bool {
        if self.is_national() {
            return true;
        }
        let commune = reference.geo.commune(insee);
        self.areas.iter().any(|area| match (area, commune) {
            (Area::Country, _) => true,
            (Area::Commune(code), _) => code == insee,
            (Area::Zone(communes), _) => communes.contains(insee),
            (Area::Region(code), Some(c)) => &c.region == code,
            (Area::Departement(code), Some(c)) => &c.departement == code,
            (Area::Epci(code), Some(c)) => c.epci.as_ref() == Some(code),
            (_, None) => false,
        })
    }

    /// Whether every commune of territory `code` lies in the coverage (a territory with no known
    /// commune lies nowhere, except in a national coverage).
    pub fn covers_territory(
        &self,
        conn: &mut DbConnection,
        reference: &Reference,
        code: &str,
    ) -> Result<bool, DbError> {
        if self.is_national() {
            return Ok(true);
        }
        let inner = Coverage::load(conn, reference, &[code.to_owned()])?;
        let communes: Vec<String> = match inner.areas.first() {
            Some(Area::Zone(communes)) => communes.iter().cloned().collect(),
            Some(Area::Commune(code)) => vec![code.clone()],
            Some(_) => reference
                .geo
                .communes()
                .iter()
                .filter(|c| inner.covers_commune(reference, &c.insee))
                .map(|c| c.insee.clone())
                .collect(),
            None => Vec::new(),
        };
        Ok(self.covers_all(reference, &communes))
    }

    /// Whether every one of `communes` lies in the coverage (none lies nowhere, except in a national
    /// coverage): the rule for a territory made of these communes.
    pub fn covers_all(&self, reference: &Reference, communes: &[String]) -> bool {
        self.is_national()
            || !communes.is_empty() && communes.iter().all(|c| self.covers_commune(reference, c))
    }
}

/// Whether `territories` (a key's scope; empty = national) cover the commune.
pub fn territories_cover_commune(
    conn: &mut DbConnection,
    reference: &Reference,
    territories: &[String],
    commune: &str,
) -> Result<bool, DbError> {
    Ok(Coverage::load(conn, reference, territories)?.covers_commune(reference, commune))
}

fn outside(caller: &Caller, what: String) -> ApiError {
    ApiError::Forbidden(format!(
        "{what} is outside the territories of this key ({})",
        caller.territories().join(", ")
    ))
}

impl Caller {
    /// 403 unless territory `code` lies within the caller's territories.
    pub async fn check_territory(&self, state: &State, code: &str) -> Result<(), ApiError> {
        if self.territories().is_empty() {
            return Ok(());
        }
        // An unknown territory is a 404 for everyone, not a 403.
        crate::api::territories::resolve(state, code.trim()).await?;
        let territories = self.territories().to_vec();
        let (code_owned, reference) = (code.trim().to_owned(), state.reference.clone());
        let inside = db::run(&state.pool, move |conn| {
            Coverage::load(conn, &reference, &territories)?.covers_territory(
                conn,
                &reference,
                &code_owned,
            )
        })
        .await?;
        if inside {
            Ok(())
        } else {
            Err(outside(self, format!("territory `{}`", code.trim())))
        }
    }

    /// The territory a list is limited to: the requested one (403 when outside the caller's
    /// territories), else the caller's only territory; a key with several territories must name one.
    pub async fn list_territory(
        &self,
        state: &State,
        requested: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        match (
            requested.map(str::trim).filter(|t| !t.is_empty()),
            self.territories(),
        ) {
            (Some(code), _) => {
                self.check_territory(state, code).await?;
                Ok(Some(code.to_owned()))
            }
            (None, []) => Ok(None),
            (None, [only]) => Ok(Some(only.clone())),
            (None, _) => Err(ApiError::field(
                "territory",
                "this key covers several territories: name one of them",
            )),
        }
    }

    /// 403 unless the commune (an actor's, or a new actor's) lies within the caller's territories.
    pub async fn check_commune(&self, state: &State, insee: &str) -> Result<(), ApiError> {
        if self.territories().is_empty() {
            return Ok(());
        }
        if self.covers_communes(state, &[insee.to_owned()]).await? {
            Ok(())
        } else {
            Err(outside(self, format!("commune `{insee}`")))
        }
    }

    /// Whether the caller's territories cover at least one of the communes.
    pub async fn covers_communes(
        &self,
        state: &AppState,
        communes: &[String],
    ) -> Result<bool, ApiError> {
        if self.territories().is_empty() {
            return Ok(true);
        }
        let territories = self.territories().to_vec();
        let communes = communes.to_vec();
        let reference = state.reference.clone();
        Ok(db::run(&state.pool, move |conn| {
            let coverage = Coverage::load(conn, &reference, &territories)?;
            Ok(communes
                .iter()
                .any(|c| coverage.covers_commune(&reference, c)))
        })
        .await?)
    }

    /// The caller's coverage, resolved once for many checks.
    pub async fn coverage(&self, state: &AppState) -> Result<Coverage, ApiError> {
        if self.territories().is_empty() {
            return Ok(Coverage::national());
        }
        let territories = self.territories().to_vec();
        let reference = state.reference.clone();
        Ok(db::run(&state.pool, move |conn| {
            Coverage::load(conn, &reference, &territories)
        })
        .await?)
    }
}
