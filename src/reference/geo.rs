//! French administrative geography: régions, départements, EPCI (where the reference has them:
//! Bourgogne), communes with centroid and population; the hierarchy and code resolution.
//!
//! Territory codes: `FR` (country), `R` + INSEE région code (`R27`), INSEE département code (`21`,
//! `2A`, `971`), EPCI SIREN (9 digits), INSEE commune code (5 characters). Custom zones (stored in
//! the database) use any other code, e.g. `27-BOURGOGNE`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ReferenceError, malformed, read_records};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Commune {
    pub insee: String,
    pub name: String,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub population: u64,
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerritoryKind {
    Country,
    Region,
    Departement,
    Epci,
    Commune,
    Zone,
}

/// A territory of the reference hierarchy, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerritoryRef {
    pub code: String,
    pub kind: TerritoryKind,
    pub name: String,
    pub parent: Option<String>,
    pub population: u64,
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone)]
struct Area {
    name: String,
    parent: Option<String>,
    lat: f64,
    lng: f64,
    population: u64,
    children: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Geography {
    communes: Vec<Commune>,
    by_insee: HashMap<String, usize>,
    regions: BTreeMap<String, Area>,
    departements: BTreeMap<String, Area>,
    epcis: BTreeMap<String, Area>,
}

#[derive(Deserialize)]
struct CommuneRow {
    insee_com: String,
    insee_reg: String,
    insee_dep: String,
    commune: String,
    commune_type: String,
    insee_parente: String,
    lat: Option<f64>,
    lng: Option<f64>,
    population_2021: Option<u64>,
}

#[derive(Deserialize)]
struct BourgogneRow {
    insee: String,
    lat: Option<f64>,
    lng: Option<f64>,
    epci_siren: String,
}

#[derive(Deserialize)]
struct EpciRow {
    epci_siren: String,
    nom: String,
}

#[derive(Deserialize)]
struct DepRow {
    insee_dep: String,
    insee_reg: String,
    departement: String,
    lng: f64,
    lat: f64,
}

#[derive(Deserialize)]
struct RegRow {
    insee_reg: String,
    region: String,
    lng: f64,
    lat: f64,
}

impl Geography {
    pub fn load(dir: &Path) -> Result<Geography, ReferenceError> {
        let mut geo = Geography::default();
        let regions = dir.join("geo/fr_regions.csv");
        for (_, r) in read_records::<RegRow>(&regions)? {
            geo.regions
                .insert(r.insee_reg, area(r.region, Some("FR".into()), r.lat, r.lng));
        }
        let deps = dir.join("geo/fr_departements.csv");
        for (line, d) in read_records::<DepRow>(&deps)? {
            let Some(region) = geo.regions.get_mut(&d.insee_reg) else {
                return Err(malformed(
                    &deps,
                    line,
                    format!("unknown région `{}`", d.insee_reg),
                ));
            };
            region.children.push(d.insee_dep.clone());
            geo.departements.insert(
                d.insee_dep,
                area(
                    d.departement,
                    Some(format!("R{}", d.insee_reg)),
                    d.lat,
                    d.lng,
                ),
            );
        }
        let bourgogne_path = dir.join("geo/bourgogne_communes_geo.csv");
        let bourgogne: HashMap<String, BourgogneRow> =
            read_records::<BourgogneRow>(&bourgogne_path)?
                .into_iter()
                .map(|(_, r)| (r.insee.clone(), r))
                .collect();
        let epci_path = dir.join("geo/bourgogne_epci.csv");
        for (_, e) in read_records::<EpciRow>(&epci_path)? {
            geo.epcis.insert(e.epci_siren, area(e.nom, None, 0.0, 0.0));
        }
        let communes = dir.join("geo/fr_communes.csv");
        let mut arrondissements: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (line, row) in read_records::<CommuneRow>(&communes)? {
            // One row per commune and postcode. Communes déléguées are left out; the arrondissements
            // of Paris, Lyon and Marseille are kept (their parent commune is made from them below).
            if !matches!(row.commune_type.as_str(), "COM" | "ARM")
                || geo.by_insee.contains_key(&row.insee_com)
            {
                continue;
            }
            if row.commune_type == "ARM" && !row.insee_parente.is_empty() {
                arrondissements
                    .entry(row.insee_parente.clone())
                    .or_default()
                    .push(row.insee_com.clone());
            }
            let Some(dep) = geo.departements.get_mut(&row.insee_dep) else {
                return Err(malformed(
                    &communes,
                    line,
                    format!("unknown département `{}`", row.insee_dep),
                ));
            };
            let extra = bourgogne.get(&row.insee_com);
            let lat = row.lat.or(extra.and_then(|b| b.lat)).unwrap_or(dep.lat);
            let lng = row.lng.or(extra.and_then(|b| b.lng)).unwrap_or(dep.lng);
            let population = row.population_2021.unwrap_or(0);
            dep.children.push(row.insee_com.clone());
            dep.population += population;
            let epci = extra
                .map(|b| b.epci_siren.clone())
                .filter(|s| geo.epcis.contains_key(s));
            if let Some(area) = epci.as_ref().and_then(|s| geo.epcis.get_mut(s)) {
                area.children.push(row.insee_com.clone());
                area.population += population;
                if area.parent.is_none() {
                    area.parent = Some(row.insee_dep.clone());
                }
            }
            geo.by_insee
                .insert(row.insee_com.clone(), geo.communes.len());
            geo.communes.push(Commune {
                insee: row.insee_com,
                name: row.commune,
                departement: row.insee_dep,
                region: row.insee_reg,
                epci,
                population,
                lat,
                lng,
            });
        }
        if geo.communes.is_empty() {
            return Err(malformed(&communes, 1, "no communes"));
        }
        geo.add_parent_communes(&arrondissements);
        for region in geo.regions.values_mut() {
            region.population = region
                .children
                .iter()
                .filter_map(|d| geo.departements.get(d))
                .map(|d| d.population)
                .sum();
        }
        // EPCI centroid: population-weighted mean of member communes.
        for area in geo.epcis.values_mut() {
            let members: Vec<&Commune> = area
                .children
                .iter()
                .filter_map(|c| geo.by_insee.get(c))
                .map(|&i| &geo.communes[i])
                .collect();
            let weight: f64 = members.iter().map(|c| c.population.max(1) as f64).sum();
            if weight > 0.0 {
                area.lat = members
                    .iter()
                    .map(|c| c.lat * c.population.max(1) as f64)
                    .sum::<f64>()
                    / weight;
                area.lng = members
                    .iter()
                    .map(|c| c.lng * c.population.max(1) as f64)
                    .sum::<f64>()
                    / weight;
            }
        }
        Ok(geo)
    }

    /// Paris, Lyon and Marseille appear only as arrondissements: their commune is made from them
    /// (population summed, centroid population-weighted) so that `75056` resolves too. Their
    /// population is already counted in the département through the arrondissements.
    fn add_parent_communes(&mut self, arrondissements: &BTreeMap<String, Vec<String>>) {
        for (parent, members) in arrondissements {
            if self.by_insee.contains_key(parent) {
                continue;
            }
            let parts: Vec<Commune> = members
                .iter()
                .filter_map(|m| self.commune(m))
                .cloned()
                .collect();
            let Some(first) = parts.first() else { continue };
            let population: u64 = parts.iter().map(|c| c.population).sum();
            let weight = parts
                .iter()
                .map(|c| c.population.max(1) as f64)
                .sum::<f64>();
            let lat = parts
                .iter()
                .map(|c| c.lat * c.population.max(1) as f64)
                .sum::<f64>()
                / weight;
            let lng = parts
                .iter()
                .map(|c| c.lng * c.population.max(1) as f64)
                .sum::<f64>()
                / weight;
            let name = first
                .name
                .split(" 1er")
                .next()
                .unwrap_or(&first.name)
                .trim()
                .to_owned();
            let commune = Commune {
                insee: parent.clone(),
                name,
                departement: first.departement.clone(),
                region: first.region.clone(),
                epci: None,
                population,
                lat,
                lng,
            };
            self.by_insee.insert(parent.clone(), self.communes.len());
            self.communes.push(commune);
        }
    }

    pub fn commune(&self, insee: &str) -> Option<&Commune> {
        self.by_insee.get(insee).map(|&i| &self.communes[i])
    }

    pub fn communes(&self) -> &[Commune] {
        &self.communes
    }

    /// Resolves a code of the reference hierarchy (not custom zones).
    pub fn territory(&self, code: &str) -> Option<TerritoryRef> {
        let code = code.trim();
        if code.eq_ignore_ascii_case("FR") {
            let population = self.regions.values().map(|r| r.population).sum();
            return Some(TerritoryRef {
                code: "FR".into(),
                kind: TerritoryKind::Country,
                name: "France".into(),
                parent: None,
                population,
                lat: 46.6,
                lng: 2.45,
            });
        }
        if let Some(reg) = code.strip_prefix('R').or_else(|| code.strip_prefix('r')) {
            return self
                .regions
                .get(reg)
                .map(|a| to_ref(format!("R{reg}"), TerritoryKind::Region, a));
        }
        if let Some(a) = self.departements.get(&code.to_uppercase()) {
            return Some(to_ref(code.to_uppercase(), TerritoryKind::Departement, a));
        }
        if let Some(a) = self.epcis.get(code) {
            return Some(to_ref(code.to_owned(), TerritoryKind::Epci, a));
        }
        self.commune(&code.to_uppercase()).map(|c| TerritoryRef {
            code: c.insee.clone(),
            kind: TerritoryKind::Commune,
            name: c.name.clone(),
            parent: Some(c.epci.clone().unwrap_or_else(|| c.departement.clone())),
            population: c.population,
            lat: c.lat,
            lng: c.lng,
        })
    }

    /// Children of a reference territory: régions of FR, départements of a région, EPCI (where
    /// known) and then the remaining communes of a département, communes of an EPCI.
    pub fn children(&self, parent: &TerritoryRef) -> Vec<TerritoryRef> {
        match parent.kind {
            TerritoryKind::Country => self
                .regions
                .iter()
                .map(|(c, a)| to_ref(format!("R{c}"), TerritoryKind::Region, a))
                .collect(),
            TerritoryKind::Region => self
                .regions
                .get(parent.code.trim_start_matches('R'))
                .map(|r| {
                    r.children
                        .iter()
                        .filter_map(|d| self.territory(d))
                        .collect()
                })
                .unwrap_or_default(),
            TerritoryKind::Departement => {
                let mut out: Vec<TerritoryRef> = self
                    .epcis
                    .iter()
                    .filter(|(_, a)| a.parent.as_deref() == Some(parent.code.as_str()))
                    .map(|(c, a)| to_ref(c.clone(), TerritoryKind::Epci, a))
                    .collect();
                if let Some(dep) = self.departements.get(&parent.code) {
                    out.extend(
                        dep.children
                            .iter()
                            .filter_map(|c| self.commune(c))
                            // Communes whose EPCI hangs under another département are listed here.
                            .filter(|c| {
                                c.epci.as_ref().is_none_or(|e| {
                                    self.epcis.get(e).and_then(|a| a.parent.as_deref())
                                        != Some(parent.code.as_str())
                                })
                            })
                            .filter_map(|c| self.territory(&c.insee)),
                    );
                }
                out
            }
            TerritoryKind::Epci => self
                .epcis
                .get(&parent.code)
                .map(|a| {
                    a.children
                        .iter()
                        .filter_map(|c| self.territory(c))
                        .collect()
                })
                .unwrap_or_default(),
            TerritoryKind::Commune | TerritoryKind::Zone => Vec::new(),
        }
    }

    /// The départements a territory of the hierarchy lies in (none for the country, a custom zone or
    /// an unknown code): the territory lists narrow their search to these.
    pub fn departements_of(&self, kind: TerritoryKind, code: &str) -> Vec<String> {
        let of_communes = |codes: &[String]| {
            let mut out: Vec<String> = codes
                .iter()
                .filter_map(|c| self.commune(c))
                .map(|c| c.departement.clone())
                .collect();
            out.sort();
            out.dedup();
            out
        };
        match kind {
            TerritoryKind::Region => self
                .regions
                .get(code.trim_start_matches('R'))
                .map(|r| r.children.clone())
                .unwrap_or_default(),
            TerritoryKind::Departement => vec![code.to_owned()],
            TerritoryKind::Epci => self
                .epcis
                .get(code)
                .map(|a| of_communes(&a.children))
                .unwrap_or_default(),
            TerritoryKind::Commune => of_communes(&[code.to_owned()]),
            TerritoryKind::Country | TerritoryKind::Zone => Vec::new(),
        }
    }

    /// INSEE codes of the communes of the given départements (for custom zones defined by département).
    pub fn communes_of_departement(&self, dep: &str) -> Vec<String> {
        self.departements
            .get(dep)
            .map(|d| d.children.clone())
            .unwrap_or_default()
    }
}

fn area(name: String, parent: Option<String>, lat: f64, lng: f64) -> Area {
    Area {
        name,
        parent,
        lat,
        lng,
        population: 0,
        children: Vec::new(),
    }
}

fn to_ref(code: String, kind: TerritoryKind, a: &Area) -> TerritoryRef {
    TerritoryRef {
        code,
        kind,
        name: a.name.clone(),
        parent: a.parent.clone(),
        population: a.population,
        lat: a.lat,
        lng: a.lng,
    }
}
