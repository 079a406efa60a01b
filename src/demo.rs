//! The illustrative Bourgogne demo dataset, loaded by `symbiose serve --demo`.
//!
//! **What is real and what is not.** The actors are the 301 real establishments of Bourgogne
//! declared to the French pollutant register IREP in 2021 (`facilities/bourgogne_irep2021_etablissements.csv`
//! in the reference directory): real names, coordinates and communes. Everything else is
//! *illustrative*: the file carries no activity code, so the NAF sub-class is guessed from the
//! establishment's name with keyword rules ([`activity`]), and the offers and needs are the ones a
//! facilitator would expect from that activity, with magnitudes taken from sector averages (BREF,
//! ADEME, trade bodies — cited in each resource's description) and varied deterministically per site.
//! They are **not declarations** of the establishments; every description starts with
//! « Illustratif — » and the loader flags the whole dataset `illustrative`.
//!
//! The resources are chosen so that the demo shows the usual synergies of a territory: wood residues
//! towards panel makers and heat networks, manure and food co-products towards anaerobic digestion,
//! scrap towards steelworks and foundries, inert materials towards quarry restoration, waste heat
//! towards nearby heat users, and shared needs (collection, pallets) that neighbours can pool.
//!
//! Everything goes through the normal validators (`ActorInput::validate`, `ResourceInput::validate`):
//! a failure here is a bug in the activity rules or in the templates of `knowledge/demo_resources.toml`
//! ([`templates`]), which the unit tests catch.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::Deserialize;

use crate::domain::actor::ActorInput;
use crate::domain::resource::{Classifier, ResourceInput};
use crate::domain::validation::FieldError;
use crate::import::{ImportPlan, ImportedActor};
use crate::reference::Reference;

mod activity;
mod templates;
pub use activity::{Activity, Profile, activity, all_naf_codes};
use templates::Templates;

/// The IREP sites, relative to the reference directory.
pub const FACILITIES_FILE: &str = "facilities/bourgogne_irep2021_etablissements.csv";

/// Every resource description starts with this, so nobody mistakes the data for declarations.
pub const ILLUSTRATIVE_PREFIX: &str = "Illustratif — ";

/// One row of the IREP extract (columns identifiant, nom_etablissement, latitude, longitude,
/// nearest_commune_insee, nearest_commune_nom, dep, dist_km_to_commune_centroid).
#[derive(Debug, Clone, Deserialize)]
struct Site {
    identifiant: String,
    nom_etablissement: String,
    latitude: f64,
    longitude: f64,
    nearest_commune_insee: String,
    // nearest_commune_nom, dep and dist_km_to_commune_centroid are not needed: the commune's name
    // and département come from the reference geography through the INSEE code.
}

/// Builds the demo plan from the IREP sites under `reference.dir`. As in a file import, `rows`
/// counts one row per resource; `first_row` is the site's line in the IREP extract, so that an
/// error names where the site came from.
pub fn build(reference: &Reference, classifier: &dyn Classifier) -> anyhow::Result<ImportPlan> {
    let templates = Templates::builtin()?;
    let path = reference.dir.join(FACILITIES_FILE);
    let sites = read_sites(&path)?;
    let mut actors = Vec::with_capacity(sites.len());
    let mut rows = 0usize;
    for (line, site) in sites {
        let act = activity(&site.nom_etablissement, &site.identifiant);
        let context = || {
            format!(
                "demo site {} « {} » ({}, line {line})",
                site.identifiant,
                site.nom_etablissement,
                path.display()
            )
        };
        let input = ActorInput {
            name: site.nom_etablissement.trim().to_owned(),
            siret: None,
            naf_code: act.naf.to_owned(),
            address: None,
            commune_insee: site.nearest_commune_insee.trim().to_owned(),
            lat: Some(site.latitude),
            lng: Some(site.longitude),
            contact: None,
            share_with_partners: hash(&site.identifiant, "share").is_multiple_of(2),
        };
        let actor = input
            .validate(reference)
            .map_err(|errors| anyhow!("{}: invalid actor: {}", context(), describe(&errors)))?;
        let mut resources = Vec::new();
        for resource in resources_for(&templates, &site.identifiant, act.profile) {
            let valid = resource.validate(reference, classifier).map_err(|errors| {
                anyhow!(
                    "{}: invalid resource « {} »: {}",
                    context(),
                    resource.label,
                    describe(&errors)
                )
            })?;
            resources.push((line, valid));
        }
        if resources.is_empty() {
            return Err(anyhow!(
                "{}: no resource for profile {:?}",
                context(),
                act.profile
            ));
        }
        rows += resources.len();
        actors.push(ImportedActor {
            first_row: line,
            actor_ref: String::new(),
            actor,
            resources,
        });
    }
    Ok(ImportPlan { rows, actors })
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads the IREP extract; every problem names the file and the line.
fn read_sites(path: &Path) -> anyhow::Result<Vec<(u64, Site)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("demo sites file {}: cannot read", path.display()))?;
    let mut sites = Vec::new();
    let mut seen = HashSet::new();
    for (i, record) in reader.deserialize::<Site>().enumerate() {
        let fallback = i as u64 + 2;
        let site = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(fallback);
            anyhow!("demo sites file {}, line {line}: {e}", path.display())
        })?;
        let line = fallback;
        let bad =
            |message: &str| anyhow!("demo sites file {}, line {line}: {message}", path.display());
        if site.identifiant.is_empty() || site.nom_etablissement.is_empty() {
            return Err(bad("identifiant and nom_etablissement must not be empty"));
        }
        if !site.latitude.is_finite() || !site.longitude.is_finite() {
            return Err(bad("latitude and longitude must be numbers"));
        }
        if !seen.insert(site.identifiant.clone()) {
            return Err(bad(&format!(
                "identifiant {} appears twice",
                site.identifiant
            )));
        }
        sites.push((line, site));
    }
    if sites.is_empty() {
        return Err(anyhow!("demo sites file {}: no sites", path.display()));
    }
    Ok(sites)
}

/// The resources of one site: its profile's, plus a deterministic draw of the shared ones, each
/// quantity scaled by a site factor (×0.5–2) and a per-resource jitter (×0.8–1.25).
fn resources_for(templates: &Templates, id: &str, profile: Profile) -> Vec<ResourceInput> {
    let site = 0.5 * 4f64.powf(unit_interval(hash(id, "scale")));
    let mut specs: Vec<&templates::Spec> = templates.specs(profile).iter().collect();
    if templates.gets_shared(profile) {
        for (i, (spec, percent)) in templates.shared().iter().enumerate() {
            if hash(id, &format!("shared{i}")) % 100 >= *percent {
                continue;
            }
            let duplicate = specs.iter().any(|s| {
                s.kind == spec.kind
                    && match &spec.ewc {
                        Some(code) => s.ewc.as_ref() == Some(code),
                        // One heat need, one collection need, one container need per site.
                        None => {
                            s.class.as_deref().map(class_family)
                                == spec.class.as_deref().map(class_family)
                        }
                    }
            });
            if !duplicate {
                specs.push(spec);
            }
        }
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let jitter = 0.8 * 1.5625f64.powf(unit_interval(hash(id, &format!("qty{i}"))));
            spec.input(site * jitter)
        })
        .collect()
}

/// `energy/heat/low_temperature` → `energy/heat`: heat needs of any band count as one family.
fn class_family(class: &str) -> &str {
    match class.match_indices('/').nth(1) {
        Some((i, _)) if class.starts_with("energy/heat") => &class[..i],
        _ => class,
    }
}

/// Two significant digits: illustrative figures should not look measured.
fn round2(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return x;
    }
    let exponent = x.log10().floor() as i32 - 1;
    if exponent >= 0 {
        let m = 10f64.powi(exponent);
        (x / m).round() * m
    } else {
        // Dividing by an exact power of ten keeps 0.46 as 0.46.
        let m = 10f64.powi(-exponent);
        (x * m).round() / m
    }
}

/// FNV-1a 64 of the site id and a salt: stable across Rust versions and platforms, unlike
/// `DefaultHasher`, so the demo is the same everywhere.
fn hash(id: &str, salt: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain(std::iter::once(0xff)).chain(salt.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche (from SplitMix64) so that close ids give unrelated draws.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A hash mapped to [0, 1).
fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::activity::{FARM_CHOICES, all_profiles};
    use super::templates::{Spec, heat_class};
    use super::*;
    use crate::domain::resource::{CategoryClassifier, ResourceKind};
    use crate::reference::ewc::normalise_code;

    fn reference() -> Reference {
        Reference::load(Path::new("../shared/reference"))
            .expect("reference data in ../shared/reference")
    }

    #[test]
    fn every_rule_code_is_a_naf_subclass() {
        let r = reference();
        for code in all_naf_codes() {
            let entry = r
                .naf
                .get(code)
                .unwrap_or_else(|| panic!("{code} is not in NAF"));
            assert_eq!(entry.level, "subclass", "{code}");
        }
    }

    #[test]
    fn rules_place_typical_names() {
        let cases = [
            ("Ciments Vicat", "23.51Z"),
            ("LAFARGE GRANULATS FRANCE", "08.12Z"),
            ("Scierie du Morvan", "16.10A"),
            ("Fromagerie de Bourgogne", "10.51C"),
            ("Sucrerie d'Aiserey", "10.81Z"),
            ("Station d'épuration de Nevers", "37.00Z"),
            ("UIOM de Chalon", "38.21Z"),
            ("Fonderie de Matour", "24.51Z"),
            ("Porcherie du Val", "01.46Z"),
            ("PAPREC METAL", "38.32Z"),
            ("SARL LHUILLIER RECYCLAGE AUTOMOBILE", "38.31Z"),
            ("FRAMATOME-CREUSOT-FORGE", "25.50A"),
            ("AUTOMOTIVE LIGHTING", "29.31Z"),
            ("SOKAKI Jean Pierre", "32.99Z"),
            ("A.E.D. (AGRI ENERGIE DONDAINE)", "35.21Z"),
            ("DIJON ENERGIES (ex DALKIA)", "35.30Z"),
            ("COVED (PAPREC)", "38.21Z"),
            ("AMCOR FLEXIBLE CAPSULES FRANCE", "25.92Z"),
            ("AMCOR FLEXIBLES PACKAGING France", "22.22Z"),
            ("SUMIRIKO Rubber Compounding France", "22.19Z"),
            ("Installation de Stockage de Déchets Inertes", "38.21Z"),
        ];
        for (name, naf) in cases {
            assert_eq!(activity(name, "x").naf, naf, "{name}");
        }
        let farm = activity("EARL DU BOIS DES BERGERIES", "0058900001").naf;
        assert!(FARM_CHOICES.iter().any(|(code, _)| *code == farm), "{farm}");
    }

    #[test]
    fn templates_use_valid_codes_and_classes() {
        let r = reference();
        let classes: HashSet<String> = std::fs::read_to_string("knowledge/resource_classes.csv")
            .expect("knowledge/resource_classes.csv")
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next().map(str::to_owned))
            .collect();
        // EWC code → class, the most specific rule first (six digits, four, two).
        let rules: HashMap<String, String> =
            std::fs::read_to_string("knowledge/ewc_class_rules.csv")
                .expect("knowledge/ewc_class_rules.csv")
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let mut f = l.split(',');
                    Some((f.next()?.to_owned(), f.next()?.to_owned()))
                })
                .collect();
        let templates = Templates::builtin().expect("demo templates");
        let mut all: Vec<&Spec> = all_profiles()
            .into_iter()
            .flat_map(|p| templates.specs(p))
            .collect();
        all.extend(templates.shared().iter().map(|(s, _)| s));
        // Every hazardous offer must have a receiver among the templates' needs.
        let accepted_hazardous: HashSet<String> = all
            .iter()
            .filter(|s| s.kind == ResourceKind::Need)
            .flat_map(|s| s.accepts.iter().chain(s.ewc.iter()))
            .map(|c| normalise_code(c))
            .collect();
        for s in all {
            assert!(s.value > 0.0, "{}", s.label);
            for code in s.ewc.iter().chain(s.accepts.iter()) {
                let entry = r
                    .ewc
                    .get(code)
                    .unwrap_or_else(|| panic!("{code} ({}) is not in the List of Waste", s.label));
                assert_eq!(
                    entry.hazardous,
                    code.ends_with('*'),
                    "{code} ({}): star and hazard disagree",
                    s.label
                );
            }
            match (s.ewc.as_deref(), s.class.as_deref()) {
                (Some(code), None) => {
                    let c = normalise_code(code);
                    let class = [&c[..], &c[..4], &c[..2]]
                        .iter()
                        .find_map(|k| rules.get(*k))
                        .unwrap_or_else(|| panic!("no class rule for {code}"));
                    let top = class.split('/').next().unwrap_or_default();
                    assert_eq!(top, s.category.as_str(), "{} ({code} → {class})", s.label);
                }
                (None, Some(class)) => {
                    assert!(
                        classes.contains(class),
                        "{class} ({}) is not a resource class",
                        s.label
                    );
                    assert_eq!(
                        class.split('/').next(),
                        Some(s.category.as_str()),
                        "{}",
                        s.label
                    );
                    if let Some(t) = s.temperature_c {
                        assert_eq!(heat_class(t), class, "{}", s.label);
                    }
                }
                _ => panic!(
                    "{}: give an EWC code or a class, not both nor neither",
                    s.label
                ),
            }
            if s.kind == ResourceKind::Offer && s.ewc.as_ref().is_some_and(|c| c.ends_with('*')) {
                let code = normalise_code(s.ewc.as_deref().unwrap_or_default());
                assert!(
                    accepted_hazardous.contains(&code),
                    "hazardous offer {} ({code}) has no receiver",
                    s.label
                );
            }
        }
    }

    #[test]
    fn builds_the_bourgogne_plan() {
        let r = reference();
        let plan = build(&r, &CategoryClassifier).expect("demo plan");
        assert_eq!(plan.actors.len(), 301);
        assert!(plan.actors.iter().all(|a| !a.resources.is_empty()));
        assert!(
            plan.actors
                .iter()
                .all(|a| a.actor.siret.is_none() && a.actor.address.is_none())
        );
        assert_eq!(plan.rows, plan.resource_count());
        assert!(plan.resource_count() >= 600, "{}", plan.resource_count());
        let resources: Vec<_> = plan
            .actors
            .iter()
            .flat_map(|a| a.resources.iter().map(|(_, r)| r))
            .collect();
        assert!(resources.iter().any(|r| r.kind == ResourceKind::Offer));
        assert!(resources.iter().any(|r| r.kind == ResourceKind::Need));
        assert!(resources.iter().all(|r| {
            r.description
                .as_deref()
                .is_some_and(|d| d.starts_with(ILLUSTRATIVE_PREFIX))
        }));
        let accepted: HashSet<&str> = resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Need)
            .flat_map(|r| {
                r.accepted_ewc
                    .iter()
                    .map(String::as_str)
                    .chain(r.ewc_code.as_deref())
            })
            .collect();
        for r in resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Offer && r.hazardous)
        {
            let code = r.ewc_code.as_deref().unwrap_or_default();
            assert!(
                accepted.contains(code),
                "hazardous offer {} ({code}) accepted by no need",
                r.label
            );
        }
        let divisions: BTreeSet<&str> =
            plan.actors.iter().map(|a| &a.actor.naf_code[..2]).collect();
        assert!(divisions.len() >= 8, "{divisions:?}");
        let shared = plan
            .actors
            .iter()
            .filter(|a| a.actor.share_with_partners)
            .count();
        assert!((100..=200).contains(&shared), "{shared}");
        // Deterministic: the same input gives the same plan.
        let again = build(&r, &CategoryClassifier).expect("demo plan");
        assert_eq!(again.resource_count(), plan.resource_count());
        assert_eq!(again.actors[17].resources, plan.actors[17].resources);
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = read_sites(&dir.path().join(FACILITIES_FILE)).expect_err("missing file");
        assert!(
            err.to_string()
                .contains("bourgogne_irep2021_etablissements.csv"),
            "{err}"
        );
        let path = dir.path().join("sites.csv");
        std::fs::write(
            &path,
            "identifiant,nom_etablissement,latitude,longitude,nearest_commune_insee,nearest_commune_nom,dep,dist_km_to_commune_centroid\n\
             1,A,47.0,4.0,21231,Dijon,21,1.0\n\
             2,B,north,4.0,21231,Dijon,21,1.0\n",
        )
        .expect("write");
        let err = read_sites(&path).expect_err("malformed").to_string();
        assert!(err.contains("sites.csv") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn rounding_and_hash_are_stable() {
        assert_eq!(round2(12345.0), 12000.0);
        assert_eq!(round2(0.456), 0.46);
        assert_eq!(hash("0005402816", "scale"), hash("0005402816", "scale"));
        assert_ne!(hash("0005402816", "scale"), hash("0005402817", "scale"));
        let u = unit_interval(hash("a", "b"));
        assert!((0.0..1.0).contains(&u));
    }
}
