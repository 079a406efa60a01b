//! Seeded synthetic dataset at national scale, for benches and load tests.
//!
//! Actors are spread over the real communes of `fr_communes.csv` in proportion to their population (one
//! row per commune *and* postcode in the file: rows are deduplicated by INSEE code; communes déléguées are
//! dropped, Paris / Lyon / Marseille arrondissements kept), jittered within the commune's area. Each actor
//! gets an activity from a weighted mix of the sectors that matter in industrial ecology, then offers
//! from its sector profile's outflows and needs from its inputs, with log-normal yearly quantities.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use uuid::Uuid;

use super::knowledge::SectorProfiles;
use super::snapshot::{SnapActor, SnapResource};
use super::taxonomy::{ClassId, EwcCode, Taxonomy, csv_rows};
use super::{MatchingError, Result};
use crate::domain::resource::{ALL_MONTHS, BaseUnit, ResourceKind};

/// A commune with its centre and population.
#[derive(Debug, Clone, PartialEq)]
pub struct Commune {
    pub insee: String,
    pub departement: String,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    pub population: u64,
    pub area_km2: f64,
}

#[derive(Deserialize)]
struct CommuneRow {
    insee_com: String,
    insee_dep: String,
    commune: String,
    commune_type: String,
    lat: Option<f64>,
    lng: Option<f64>,
    superficie_km2: Option<f64>,
    population_2021: Option<u64>,
}

/// Reads `fr_communes.csv` (or the same columns), one commune per INSEE code.
pub fn load_communes(reader: impl Read) -> Result<Vec<Commune>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (_, row) in csv_rows::<CommuneRow>("communes", reader)? {
        if row.commune_type == "COMD" || !seen.insert(row.insee_com.clone()) {
            continue;
        }
        let (Some(lat), Some(lng)) = (row.lat, row.lng) else {
            continue;
        };
        out.push(Commune {
            insee: row.insee_com,
            departement: row.insee_dep,
            name: row.commune,
            lat,
            lng,
            population: row.population_2021.unwrap_or(0),
            area_km2: row.superficie_km2.unwrap_or(10.0).max(0.1),
        });
    }
    Ok(out)
}

pub fn load_communes_path(path: &Path) -> Result<Vec<Commune>> {
    let file = std::fs::File::open(path).map_err(|error| MatchingError::Io {
        path: path.to_owned(),
        error,
    })?;
    load_communes(std::io::BufReader::new(file))
}

/// Activities of the synthetic mix: NAF sub-class and relative number of establishments.
const SECTORS: &[(&str, f64)] = &[
    ("01.11Z", 10.0),
    ("01.13Z", 3.0),
    ("01.41Z", 6.0),
    ("01.46Z", 2.0),
    ("02.20Z", 1.5),
    ("08.12Z", 1.5),
    ("10.11Z", 1.5),
    ("10.13A", 1.5),
    ("10.39A", 1.0),
    ("10.51A", 1.5),
    ("10.61A", 0.5),
    ("10.71A", 1.0),
    ("10.81Z", 0.2),
    ("10.91Z", 0.5),
    ("11.01Z", 0.3),
    ("11.02A", 2.0),
    ("11.05Z", 1.0),
    ("13.20Z", 0.5),
    ("16.10A", 1.5),
    ("16.21Z", 0.3),
    ("16.23Z", 1.0),
    ("17.12Z", 0.3),
    ("17.21A", 0.5),
    ("19.20Z", 0.05),
    ("20.14Z", 0.3),
    ("20.15Z", 0.2),
    ("20.30Z", 0.3),
    ("22.22Z", 1.0),
    ("22.29A", 1.0),
    ("23.13Z", 0.2),
    ("23.32Z", 0.2),
    ("23.51Z", 0.1),
    ("23.52Z", 0.1),
    ("23.61Z", 0.5),
    ("23.63Z", 1.0),
    ("24.10Z", 0.1),
    ("24.42Z", 0.1),
    ("24.51Z", 0.2),
    ("24.53Z", 0.2),
    ("25.11Z", 2.0),
    ("25.61Z", 1.0),
    ("25.62B", 2.5),
    ("28.29B", 1.0),
    ("29.32Z", 0.5),
    ("31.09B", 1.0),
    ("35.11Z", 0.3),
    ("35.21Z", 0.5),
    ("35.30Z", 0.5),
    ("36.00Z", 0.5),
    ("37.00Z", 1.0),
    ("38.11Z", 1.0),
    ("38.21Z", 0.7),
    ("38.22Z", 0.2),
    ("38.31Z", 0.3),
    ("38.32Z", 1.0),
    ("41.20A", 4.0),
    ("42.11Z", 1.5),
    ("43.99C", 3.0),
    ("43.12A", 2.0),
    ("45.20A", 4.0),
    ("46.77Z", 0.7),
    ("49.41A", 2.0),
    ("52.10B", 1.0),
    ("56.10A", 6.0),
    ("63.11Z", 0.3),
    ("86.10Z", 1.0),
    ("93.11Z", 0.7),
];

/// Hazardous entries of the List of Waste among the codes the sector profiles use.
const HAZARDOUS: &[u32] = &[
    50103, 50106, 60101, 60102, 60204, 60602, 70101, 70104, 70108, 70704, 80111, 80113, 100304,
    100308, 100309, 110105, 110106, 110107, 110109, 110111, 120109, 130205, 130208, 130701, 130802,
    140603, 150110, 160107, 160113, 160504, 160601, 180103, 190105, 190111, 190113,
];

/// What one activity releases and takes in, resolved against the taxonomy.
struct SectorMix {
    naf: &'static str,
    label: String,
    outflows: Vec<(Option<EwcCode>, ClassId)>,
    inputs: Vec<(Option<EwcCode>, ClassId)>,
}

fn sector_mixes(tax: &Taxonomy, profiles: &SectorProfiles) -> Vec<SectorMix> {
    SECTORS
        .iter()
        .map(|(naf, _)| {
            let ps = profiles.for_naf(naf);
            let mut outflows = Vec::new();
            let mut inputs = Vec::new();
            for p in &ps {
                for (codes, classes, into) in [
                    (&p.outflow_ewc, &p.outflow_classes, &mut outflows),
                    (&p.input_ewc, &p.input_classes, &mut inputs),
                ] {
                    for c in codes.iter().filter_map(|c| EwcCode::parse(c)) {
                        if let Some(class) = tax.class_id_of_ewc(c) {
                            into.push((Some(c), class));
                        }
                    }
                    into.extend(classes.iter().filter_map(|c| tax.id(c)).map(|c| (None, c)));
                }
            }
            let label = ps
                .last()
                .map_or_else(|| (*naf).to_owned(), |p| p.label_fr.clone());
            SectorMix {
                naf,
                label,
                outflows,
                inputs,
            }
        })
        .collect()
}

fn uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

fn seasonal_mask(rng: &mut StdRng) -> u16 {
    let start = rng.random_range(0..12u16);
    let len = rng.random_range(3..=8u16);
    (0..len).fold(0u16, |m, i| m | (1 << ((start + i) % 12)))
}

/// Generates about `n_resources` resources (and the actors holding them), deterministically from `seed`.
pub fn generate(
    communes: &[Commune],
    n_resources: usize,
    seed: u64,
) -> Result<(Vec<SnapActor>, Vec<SnapResource>)> {
    let tax = Taxonomy::builtin()?;
    let profiles = SectorProfiles::builtin(&tax)?;
    let mixes = sector_mixes(&tax, &profiles);
    let bad = |m: &str| MatchingError::Data {
        source_name: "communes".into(),
        line: 0,
        message: m.into(),
    };
    let by_pop = WeightedIndex::new(communes.iter().map(|c| c.population.max(1) as f64))
        .map_err(|_| bad("no commune to place actors in"))?;
    let by_sector =
        WeightedIndex::new(SECTORS.iter().map(|(_, w)| *w)).map_err(|_| bad("empty sector mix"))?;
    let hazardous: HashSet<u32> = HAZARDOUS.iter().copied().collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut actors = Vec::with_capacity(n_resources / 3 + 1);
    let mut resources = Vec::with_capacity(n_resources + 8);
    while resources.len() < n_resources {
        let commune = &communes[by_pop.sample(&mut rng)];
        let mix = &mixes[by_sector.sample(&mut rng)];
        if mix.outflows.is_empty() && mix.inputs.is_empty() {
            continue;
        }
        let side = commune.area_km2.sqrt();
        let lat = (commune.lat + (rng.random::<f64>() - 0.5) * side / 111.0).clamp(-89.9, 89.9);
        let lng_scale = 111.0 * lat.to_radians().cos().max(0.05);
        let lng =
            (commune.lng + (rng.random::<f64>() - 0.5) * side / lng_scale).clamp(-179.9, 179.9);
        let actor_id = uuid(&mut rng);
        actors.push(SnapActor {
            id: actor_id,
            name: format!("{} — {} #{}", mix.label, commune.name, actors.len() + 1),
            naf_code: Some(mix.naf.to_owned()),
            lat,
            lng,
            commune: commune.insee.clone(),
        });
        let count = 1 + (log_normal(&mut rng, 2.0, 0.6).round() as usize).min(11);
        for _ in 0..count {
            let want_need =
                !mix.inputs.is_empty() && (mix.outflows.is_empty() || rng.random_bool(0.4));
            let (kind, pool) = if want_need {
                (ResourceKind::Need, &mix.inputs)
            } else {
                (ResourceKind::Offer, &mix.outflows)
            };
            let (code, class) = pool[rng.random_range(0..pool.len())];
            let info = tax.class(class);
            let base_unit = info.base_unit;
            let median = match base_unit {
                BaseUnit::Tonne => 80.0,
                BaseUnit::Megawatthour => 800.0,
                BaseUnit::CubicMetre => 5000.0,
                BaseUnit::Piece => 3.0,
            };
            let quantity = rng
                .random_bool(0.9)
                .then(|| (log_normal(&mut rng, median, 1.3) * 10.0).round() / 10.0);
            let temperature_c = tax.heat_band(class).map(|band| {
                let (lo, hi): (f64, f64) = match (band, kind) {
                    (0, ResourceKind::Offer) => (30.0, 85.0),
                    (0, ResourceKind::Need) => (25.0, 70.0),
                    (1, ResourceKind::Offer) => (90.0, 190.0),
                    (1, ResourceKind::Need) => (80.0, 160.0),
                    (_, ResourceKind::Offer) => (200.0, 450.0),
                    (_, ResourceKind::Need) => (150.0, 300.0),
                };
                rng.random_range(lo..hi).round()
            });
            let months = if rng.random_bool(0.12) {
                seasonal_mask(&mut rng)
            } else {
                ALL_MONTHS
            };
            let max_distance_km = rng.random_bool(0.2).then(|| {
                (info.max_distance_km * rng.random_range(0.3..1.0))
                    .round()
                    .max(1.0)
            });
            let accepted_ewc = match (kind, code) {
                (ResourceKind::Need, Some(c)) => vec![c.compact()],
                (ResourceKind::Need, None) => mix
                    .inputs
                    .iter()
                    .filter_map(|(c, k)| c.filter(|_| tax.is_ancestor_or_self(class, *k)))
                    .take(4)
                    .map(EwcCode::compact)
                    .collect(),
                _ => Vec::new(),
            };
            let ewc_code = if kind == ResourceKind::Offer {
                code.map(EwcCode::compact)
            } else {
                None
            };
            let hazardous =
                kind == ResourceKind::Offer && code.is_some_and(|c| hazardous.contains(&c.value()));
            resources.push(SnapResource {
                id: uuid(&mut rng),
                actor_id,
                kind,
                class: info.name.clone(),
                ewc_code,
                accepted_ewc,
                hazardous,
                yearly_quantity: quantity,
                base_unit: Some(base_unit),
                months,
                temperature_c,
                max_distance_km,
                label: info.label_fr.clone(),
            });
        }
    }
    Ok((actors, resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn communes() -> Vec<Commune> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/geo/fr_communes.csv"
        );
        load_communes_path(Path::new(path)).expect("communes")
    }

    #[test]
    fn communes_are_deduplicated() {
        let c = communes();
        assert!(c.len() > 34_000 && c.len() < 36_000, "{}", c.len());
        let unique: HashSet<&str> = c.iter().map(|c| c.insee.as_str()).collect();
        assert_eq!(unique.len(), c.len());
        assert!(
            c.iter().any(|c| c.insee == "75101"),
            "Paris arrondissements kept"
        );
        let pop: u64 = c.iter().map(|c| c.population).sum();
        assert!(pop > 60_000_000 && pop < 70_000_000, "{pop}");
    }

    #[test]
    fn generation_is_seeded_and_valid() {
        let c = communes();
        let (a1, r1) = generate(&c, 2_000, 7).expect("generate");
        let (a2, r2) = generate(&c, 2_000, 7).expect("generate");
        assert_eq!(r1, r2);
        assert_eq!(a1, a2);
        assert!(r1.len() >= 2_000 && r1.len() < 2_020);
        let (_, r3) = generate(&c, 2_000, 8).expect("generate");
        assert_ne!(r1, r3);
        let t = Taxonomy::builtin().expect("taxonomy");
        assert!(r1.iter().all(|r| t.id(&r.class).is_some()));
        let offers = r1.iter().filter(|r| r.kind == ResourceKind::Offer).count();
        assert!(offers > 800 && offers < 1_800, "{offers}");
        assert!(r1.iter().any(|r| r.hazardous));
        assert!(r1.iter().any(|r| r.temperature_c.is_some()));
    }
}
