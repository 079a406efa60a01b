//! Knowledge of reuse: which activities take which resources, as the engine uses it.
//!
//! - The **receiver model** ([`super::receiver_model`]) fitted on the evidence base
//!   ([`super::evidence`]: documented exchanges, eco-industrial parks, US EPA statistics, sector input
//!   profiles) gives, for a resource and its provider, the probability of each receiving activity:
//!   the receiver rules that latent synergies are built from.
//! - **Sector profiles** (`knowledge/sector_profiles.csv`): for the NAF divisions, groups and classes
//!   that matter in industrial ecology, their typical outflows and inputs, each with a source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::compat::FitLevel;
use super::evidence::{EvidenceBase, Source};
use super::impact::ImpactFactors;
use super::receiver_model::{Basis, ModelParams, ReceiverModel};
use super::taxonomy::{ClassId, EwcCode, Taxonomy, csv_rows};
use super::{MatchingError, Result};
use crate::domain::resource::Category;

const PROFILES_CSV: &str = include_str!("../../knowledge/sector_profiles.csv");

/// A NACE / NAF code cut at division (2 digits), group (3) or class (4) level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NaceKey {
    len: u8,
    digits: u16,
}

impl NaceKey {
    /// Parses `35`, `23.1`, `23.51`, a NAF sub-class `23.51Z`, or the compact MAESTRI forms `2351`,
    /// `231`, `4120*`, `3811#`. Dots are ignored; a trailing letter or marker after the digits is dropped.
    pub fn parse(text: &str) -> Option<NaceKey> {
        let mut digits = 0u16;
        let mut len = 0u8;
        let mut tail = false;
        for c in text.trim().chars() {
            match c {
                '.' if !tail => {}
                '0'..='9' if !tail => {
                    if len == 4 {
                        return None;
                    }
                    digits = digits * 10 + (c as u16 - '0' as u16);
                    len += 1;
                }
                'A'..='Z' | '*' | '#' | '^' => tail = true,
                _ => return None,
            }
        }
        (len >= 2).then_some(NaceKey { len, digits })
    }

    /// Number of digits: 2 (division), 3 (group) or 4 (class).
    pub fn len(self) -> u8 {
        self.len
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The key cut to `len` digits (no-op when already as short).
    pub fn truncate(self, len: u8) -> NaceKey {
        if len >= self.len {
            return self;
        }
        let cut = 10u16.pow(u32::from(self.len - len));
        NaceKey {
            len,
            digits: self.digits / cut,
        }
    }

    pub fn division(self) -> NaceKey {
        self.truncate(2)
    }

    /// Whether `self` is `other` or one of its prefixes (`23` contains `23.51`).
    pub fn contains(self, other: NaceKey) -> bool {
        other.len >= self.len && other.truncate(self.len) == self
    }

    /// Division, group and class prefixes of this key (as many as it has digits for).
    pub fn prefixes(self) -> impl Iterator<Item = NaceKey> {
        (2..=self.len).map(move |l| self.truncate(l))
    }
}

/// `35`, `23.1`, `35.11`.
impl fmt::Display for NaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.len {
            2 => write!(f, "{:02}", self.digits),
            3 => write!(f, "{:02}.{}", self.digits / 10, self.digits % 10),
            _ => write!(f, "{:02}.{:02}", self.digits / 100, self.digits % 100),
        }
    }
}

/// Typical outflows and inputs of one activity.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SectorProfile {
    /// NAF / NACE division, group or class as written (`16`, `10.5`, `23.51`).
    pub naf: String,
    pub label_en: String,
    pub label_fr: String,
    /// EWC codes the activity typically produces (six digits).
    pub outflow_ewc: Vec<String>,
    pub outflow_classes: Vec<String>,
    /// EWC codes the activity is known to accept as inputs.
    pub input_ewc: Vec<String>,
    /// Classes it uses as inputs (a class also covers its descendants).
    pub input_classes: Vec<String>,
    /// Sources or rationale.
    pub sources: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub(crate) key: Option<NaceKey>,
}

impl SectorProfile {
    pub fn nace_key(&self) -> Option<NaceKey> {
        self.key
    }
}

#[derive(Debug, Clone, Default)]
pub struct SectorProfiles {
    profiles: Vec<SectorProfile>,
}

#[derive(Deserialize)]
struct ProfileRow {
    naf: String,
    label_en: String,
    label_fr: String,
    direction: String,
    ewc_codes: String,
    classes: String,
    source: String,
}

impl SectorProfiles {
    /// The profiles embedded in the binary.
    pub fn builtin(taxonomy: &Taxonomy) -> Result<SectorProfiles> {
        SectorProfiles::from_reader(PROFILES_CSV.as_bytes(), taxonomy)
    }

    /// Reads profiles (`naf,label_en,label_fr,direction,ewc_codes,classes,source`; direction is
    /// `outflow` or `input`; codes and classes separated by spaces). Classes must exist.
    pub fn from_reader(reader: impl Read, taxonomy: &Taxonomy) -> Result<SectorProfiles> {
        let src = "sector_profiles.csv";
        let mut by_naf: BTreeMap<String, SectorProfile> = BTreeMap::new();
        for (line, row) in csv_rows::<ProfileRow>(src, reader)? {
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line,
                message,
            };
            let key = NaceKey::parse(&row.naf)
                .ok_or_else(|| bad(format!("bad NAF code `{}`", row.naf)))?;
            let codes = row
                .ewc_codes
                .split_whitespace()
                .map(|c| {
                    EwcCode::parse(c)
                        .map(EwcCode::compact)
                        .ok_or_else(|| bad(format!("bad EWC code `{c}`")))
                })
                .collect::<Result<Vec<_>>>()?;
            let classes: Vec<String> = row.classes.split_whitespace().map(str::to_owned).collect();
            if let Some(c) = classes.iter().find(|c| taxonomy.id(c).is_none()) {
                return Err(bad(format!("unknown class `{c}`")));
            }
            let profile = by_naf
                .entry(row.naf.clone())
                .or_insert_with(|| SectorProfile {
                    naf: row.naf.clone(),
                    label_en: row.label_en.clone(),
                    label_fr: row.label_fr.clone(),
                    outflow_ewc: Vec::new(),
                    outflow_classes: Vec::new(),
                    input_ewc: Vec::new(),
                    input_classes: Vec::new(),
                    sources: Vec::new(),
                    key: Some(key),
                });
            match row.direction.as_str() {
                "outflow" => {
                    profile.outflow_ewc.extend(codes);
                    profile.outflow_classes.extend(classes);
                }
                "input" => {
                    profile.input_ewc.extend(codes);
                    profile.input_classes.extend(classes);
                }
                other => {
                    return Err(bad(format!(
                        "direction `{other}`: expected outflow or input"
                    )));
                }
            }
            if !row.source.is_empty() && !profile.sources.contains(&row.source) {
                profile.sources.push(row.source);
            }
        }
        Ok(SectorProfiles {
            profiles: by_naf.into_values().collect(),
        })
    }

    pub fn all(&self) -> &[SectorProfile] {
        &self.profiles
    }

    /// The profiles that apply to an activity (its division, group and class), most specific last.
    pub fn for_naf(&self, naf: &str) -> Vec<&SectorProfile> {
        let Some(actor) = NaceKey::parse(naf) else {
            return Vec::new();
        };
        let mut out: Vec<&SectorProfile> = self
            .profiles
            .iter()
            .filter(|p| p.key.is_some_and(|k| k.contains(actor)))
            .collect();
        out.sort_by_key(|p| p.key.map(NaceKey::len));
        out
    }
}

/// A receiving activity for a given resource, with the fit it earns: the receiver model's
/// probability that the activity takes the resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverRule {
    pub key: NaceKey,
    pub level: FitLevel,
    /// The fit of a latent synergy: the division's probability, raised for the group or class its
    /// evidence names (`class_boost`), at most 1.
    pub value: f64,
    /// The model's probability that the key's division takes the resource.
    pub probability: f64,
    /// What the probability rests on (the most specific context with evidence for the division).
    pub basis: Basis,
    /// Documented exchanges at that context, each counted once (0 when only profiles or statistics).
    pub exchanges: f64,
}

/// Reference knowledge used by the engine: the receiver model, sector profiles and impact factors.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub model: ReceiverModel,
    pub profiles: SectorProfiles,
    pub impacts: ImpactFactors,
    /// Documented exchanges the model was fitted on (case base and parks).
    pub exchanges: usize,
}

impl Knowledge {
    /// The model fitted on `evidence` with the embedded parameters, embedded profiles and factors.
    pub fn new(evidence: &EvidenceBase, taxonomy: &Taxonomy) -> Result<Knowledge> {
        let params = ModelParams::builtin()?;
        Ok(Knowledge {
            model: ReceiverModel::fit(evidence, params, taxonomy, |_| true),
            profiles: SectorProfiles::builtin(taxonomy)?,
            impacts: ImpactFactors::builtin(taxonomy)?,
            exchanges: evidence.exchanges.len()
                + evidence
                    .observations
                    .iter()
                    .filter(|o| o.source == Source::Park)
                    .count(),
        })
    }

    /// The embedded evidence only (parks, EPA REI, profiles), no case base.
    pub fn builtin(taxonomy: &Taxonomy) -> Result<Knowledge> {
        Knowledge::new(&EvidenceBase::builtin(taxonomy)?, taxonomy)
    }

    /// The embedded evidence plus the case base read from an exchanges file.
    pub fn load(exchanges_csv: &Path, taxonomy: &Taxonomy) -> Result<Knowledge> {
        Knowledge::new(&EvidenceBase::load(exchanges_csv, taxonomy)?, taxonomy)
    }

    /// Receiving activities of a resource (EWC code, class, provider's activity), most probable first:
    /// a rule for each group and class of a division that the evidence names, and one for the rest of
    /// the division ([`super::receiver_model::Prediction::value_for`]).
    pub(crate) fn receiver_rules(
        &self,
        tax: &Taxonomy,
        code: Option<EwcCode>,
        class: ClassId,
        provider: Option<NaceKey>,
    ) -> Vec<ReceiverRule> {
        // Services and equipment are shared (pooling), not taken in: an activity that "receives" a
        // collection service or a forklift is no receiver of a substitution.
        if matches!(
            tax.class(class).category,
            Category::Service | Category::Equipment
        ) {
            return Vec::new();
        }
        let mut rules = Vec::new();
        for p in self.model.predict(tax, code, class, provider) {
            let level = match p.basis {
                Basis::Prior => FitLevel::Prior,
                _ if p.exchanges > 0.0 => FitLevel::Pathway,
                _ => FitLevel::Profile,
            };
            let rule = |key, value: f64| ReceiverRule {
                key,
                level,
                value: value.min(1.0),
                probability: p.probability,
                basis: p.basis,
                exchanges: p.exchanges,
            };
            let rest = p.value_of_share(0.0);
            // A group or class gets its own rule only when the evidence prefers it within the
            // division: otherwise it would only spend the search's budget of rules on the same actors.
            for (key, share) in &p.finer {
                let value = p.value_of_share(*share);
                if value > rest * (1.0 + 1e-6) {
                    rules.push(rule(*key, value));
                }
            }
            rules.push(rule(p.division, rest));
        }
        rules.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.key.cmp(&b.key)));
        rules
    }

    /// Every NACE key a receiver rule can name.
    pub(crate) fn receiver_keys(&self) -> BTreeSet<NaceKey> {
        self.model.receiver_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin().expect("taxonomy")
    }

    fn knowledge(t: &Taxonomy) -> Knowledge {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/cases/maestri_exchanges_part_a.csv"
        );
        Knowledge::load(Path::new(path), t).expect("knowledge")
    }

    #[test]
    fn nace_keys() {
        let k = NaceKey::parse("23.51Z").expect("naf");
        assert_eq!(k.to_string(), "23.51");
        assert_eq!(k.division().to_string(), "23");
        assert_eq!(
            NaceKey::parse("231").map(|k| k.to_string()),
            Some("23.1".into())
        );
        assert_eq!(
            NaceKey::parse("4120*").map(|k| k.to_string()),
            Some("41.20".into())
        );
        assert_eq!(
            NaceKey::parse("01").map(|k| k.to_string()),
            Some("01".into())
        );
        assert!(NaceKey::parse("23").expect("div").contains(k));
        assert!(!NaceKey::parse("24").expect("div").contains(k));
        assert!(NaceKey::parse("2").is_none());
        assert!(NaceKey::parse("abc").is_none());
    }

    #[test]
    fn profiles_load_with_sources() {
        let t = tax();
        let profiles = SectorProfiles::builtin(&t).expect("profiles");
        assert!(profiles.all().len() >= 25);
        assert!(profiles.all().iter().all(|p| !p.sources.is_empty()));
        let cement = profiles.for_naf("23.51Z");
        assert!(
            cement
                .iter()
                .any(|p| p.input_ewc.contains(&"100102".to_string()))
        );
        assert!(profiles.for_naf("99.99Z").is_empty());
    }

    #[test]
    fn receiver_rules_put_the_documented_receiver_first() {
        let t = tax();
        let k = knowledge(&t);
        assert!(k.exchanges > 150, "{}", k.exchanges);
        let ash = t.id("material/mineral/ash").expect("ash");
        let rules = k.receiver_rules(&t, EwcCode::parse("100102"), ash, None);
        // Coal fly ash goes to cement kilns, documented several times, for the exact code.
        let first = rules.first().expect("rules");
        assert_eq!(first.key.division().to_string(), "23", "{rules:?}");
        assert_eq!(first.level, FitLevel::Pathway);
        assert!(first.exchanges >= 2.0, "{first:?}");
        // Continuous, calibrated values: one rule per division, summing to 1 over divisions.
        let divisions: f64 = rules
            .iter()
            .filter(|r| r.key.len() == 2)
            .map(|r| r.value)
            .sum();
        assert!((divisions - 1.0).abs() < 1e-6, "{divisions}");
        // Services are shared, never taken in: no latent receiver.
        let collection = t.id("service/collection").expect("service class");
        assert!(k.receiver_rules(&t, None, collection, None).is_empty());
        // Hazardous codes get receivers too (fuel oil → power).
        let fuel = t.id("energy/fuel/liquid").expect("fuel");
        let rules = k.receiver_rules(&t, EwcCode::parse("130701"), fuel, None);
        assert!(
            rules
                .iter()
                .take(3)
                .any(|r| r.key.division().to_string() == "35"),
            "{rules:?}"
        );
    }
}
