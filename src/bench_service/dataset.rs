//! The bench's data: the seeded synthetic national dataset of the engine benches as the import CSV
//! of docs/IMPORT.md (split below the server's import limit, never within an actor), and the body of
//! a new resource for the incremental writes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::domain::resource::ALL_MONTHS;
use crate::matching::synth::{self, Commune};
use crate::matching::{SnapActor, SnapResource, Taxonomy};

/// The synthetic dataset with what the CSV needs besides it.
pub struct Dataset {
    pub actors: Vec<SnapActor>,
    pub resources: Vec<SnapResource>,
    /// Commune INSEE code → département.
    pub(super) departements: HashMap<String, String>,
}

impl Dataset {
    /// About `n` resources (never fewer) over the communes of `reference_dir/geo/fr_communes.csv`.
    pub fn generate(reference_dir: &Path, n: usize, seed: u64) -> anyhow::Result<Dataset> {
        let path = reference_dir.join("geo/fr_communes.csv");
        let communes = synth::load_communes_path(&path)
            .with_context(|| format!("reading the communes of {}", path.display()))?;
        Ok(Dataset::from_communes(&communes, n, seed)?)
    }

    pub fn from_communes(
        communes: &[Commune],
        n: usize,
        seed: u64,
    ) -> crate::matching::Result<Dataset> {
        let (actors, resources) = synth::generate(communes, n, seed)?;
        let departements = communes
            .iter()
            .map(|c| (c.insee.clone(), c.departement.clone()))
            .collect();
        Ok(Dataset {
            actors,
            resources,
            departements,
        })
    }

    pub(super) fn departement(&self, actor: &SnapActor) -> &str {
        self.departements
            .get(&actor.commune)
            .map_or("", String::as_str)
    }

    /// `21` when it has actors (the demo's département), else the département with the most.
    pub fn busy_departement(&self) -> Option<String> {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for a in &self.actors {
            *count.entry(self.departement(a)).or_insert(0) += 1;
        }
        count.remove("");
        if count.contains_key("21") {
            return Some("21".into());
        }
        count
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(d, _)| d.to_owned())
    }

    /// Resources grouped by actor, in actor order (the generator writes an actor's consecutively).
    pub(super) fn groups(&self) -> Vec<(usize, &[SnapResource])> {
        let index: HashMap<uuid::Uuid, usize> = self
            .actors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i))
            .collect();
        let mut out = Vec::with_capacity(self.actors.len());
        let mut start = 0;
        for end in 1..=self.resources.len() {
            if end == self.resources.len()
                || self.resources[end].actor_id != self.resources[start].actor_id
            {
                if let Some(&i) = index.get(&self.resources[start].actor_id) {
                    out.push((i, &self.resources[start..end]));
                }
                start = end;
            }
        }
        out
    }
}

/// The columns written, a subset of the import's (`import::COLUMNS`), in its order.
pub const CSV_COLUMNS: &[&str] = &[
    "actor_ref",
    "actor_name",
    "siret",
    "naf_code",
    "commune_insee",
    "lat",
    "lng",
    "share_with_partners",
    "kind",
    "category",
    "class",
    "label",
    "ewc_code",
    "accepted_ewc",
    "quantity",
    "unit",
    "period",
    "availability",
    "months",
    "temperature_c",
    "max_distance_km",
];

/// A Luhn-valid SIRET for actor number `i` (unique per actor).
pub(super) fn siret(i: usize) -> String {
    crate::domain::actor::complete_siret(&format!("9{:012}", i % 1_000_000_000_000))
        .unwrap_or_default()
}

pub(super) fn months_text(mask: u16) -> String {
    (0..12)
        .filter(|m| mask & (1 << m) != 0)
        .map(|m| (m + 1).to_string())
        .collect::<Vec<_>>()
        .join(";")
}

pub(super) fn number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV rows of actor `i` and its resources.
pub(super) fn actor_rows(
    tax: &Taxonomy,
    i: usize,
    actor: &SnapActor,
    resources: &[SnapResource],
    out: &mut csv::Writer<Vec<u8>>,
) -> anyhow::Result<()> {
    let siret = siret(i);
    for r in resources {
        let class = tax
            .get(&r.class)
            .with_context(|| format!("generated class `{}` is not in the taxonomy", r.class))?;
        let quantity = r.yearly_quantity.map(|q| q.max(0.1));
        let seasonal = r.months != 0 && r.months != ALL_MONTHS;
        out.write_record([
            format!("a{i}").as_str(),
            &actor.name,
            &siret,
            actor.naf_code.as_deref().unwrap_or(""),
            &actor.commune,
            &format!("{:.6}", actor.lat),
            &format!("{:.6}", actor.lng),
            if i.is_multiple_of(3) { "false" } else { "true" },
            r.kind.as_str(),
            class.category.as_str(),
            &r.class,
            &r.label,
            r.ewc_code.as_deref().unwrap_or(""),
            &r.accepted_ewc.join("|"),
            &number(quantity),
            if quantity.is_some() {
                r.base_unit.unwrap_or(class.base_unit).as_str()
            } else {
                ""
            },
            if quantity.is_some() { "year" } else { "" },
            if seasonal { "seasonal" } else { "" },
            &if seasonal {
                months_text(r.months)
            } else {
                String::new()
            },
            &number(r.temperature_c),
            &number(r.max_distance_km),
        ])?;
    }
    Ok(())
}

/// Writes the dataset as import CSV files in `dir`, each below `limit_bytes` (an actor's rows
/// stay in one file). Returns the files in order.
pub fn write_csv_files(
    data: &Dataset,
    dir: &Path,
    limit_bytes: usize,
) -> anyhow::Result<Vec<PathBuf>> {
    let tax = Taxonomy::builtin()?;
    let header = {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_COLUMNS)?;
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let mut files = Vec::new();
    let mut current: Option<(std::io::BufWriter<std::fs::File>, usize)> = None;
    for (i, resources) in data.groups() {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        actor_rows(&tax, i, &data.actors[i], resources, &mut w)?;
        let rows = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        if header.len() + rows.len() > limit_bytes {
            bail!(
                "the rows of one actor ({} bytes) do not fit in an import of {limit_bytes} bytes",
                rows.len()
            );
        }
        let full = current
            .as_ref()
            .is_some_and(|(_, size)| size + rows.len() > limit_bytes);
        if full && let Some((mut file, _)) = current.take() {
            file.flush()?;
        }
        if current.is_none() {
            let path = dir.join(format!("import-{:03}.csv", files.len() + 1));
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            file.write_all(&header)?;
            files.push(path);
            current = Some((file, header.len()));
        }
        if let Some((file, size)) = current.as_mut() {
            file.write_all(&rows)?;
            *size += rows.len();
        }
    }
    if let Some((mut file, _)) = current {
        file.flush()?;
    }
    Ok(files)
}

/// The JSON body of `POST /actors/{id}/resources` for a generated resource.
pub(super) fn resource_body(tax: &Taxonomy, r: &SnapResource) -> Value {
    let category = tax
        .get(&r.class)
        .map_or("material", |c| c.category.as_str());
    let mut body = json!({
        "kind": r.kind.as_str(),
        "category": category,
        "class": r.class,
        "label": format!("{} (bench)", r.label),
        "accepted_ewc": r.accepted_ewc,
    });
    if let Some(code) = &r.ewc_code {
        body["ewc_code"] = json!(code);
    }
    if let (Some(q), Some(unit)) = (r.yearly_quantity, r.base_unit) {
        body["quantity"] = json!({"value": q.max(0.1), "unit": unit.as_str(), "period": "year"});
    }
    if r.months != 0 && r.months != ALL_MONTHS {
        let months: Vec<u8> = (0..12u8)
            .filter(|m| r.months & (1 << m) != 0)
            .map(|m| m + 1)
            .collect();
        body["availability"] = json!({"kind": "seasonal", "months": months});
    }
    if let Some(t) = r.temperature_c {
        body["temperature_c"] = json!(t);
    }
    if let Some(d) = r.max_distance_km {
        body["max_distance_km"] = json!(d);
    }
    body
}
