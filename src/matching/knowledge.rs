//! Knowledge of reuse: which activities are known to take which resources.
//!
//! (a) **Reuse pathways** learned from documented exchanges (the MAESTRI exchanges database,
//! `../shared/reference/cases/maestri_exchanges_part_a.csv`): for each EWC code, subchapter and class,
//! the receiving NACE divisions, groups and classes with the number of exchanges that document them.
//! (b) **Sector profiles** written for the project (`knowledge/sector_profiles.csv`): for the NAF
//! divisions, groups and classes that matter in industrial ecology, their typical outflows and inputs,
//! each with a source. Both feed latent synergies and the pathway / profile levels of compatibility.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::compat::FitLevel;
use super::impact::ImpactFactors;
use super::taxonomy::{ClassId, EwcCode, Taxonomy, csv_rows};
use super::{MatchingError, Result};

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

/// What a pathway was learned from: the exact EWC code, its subchapter, or the code's class.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PathwayLevel {
    Code,
    Subchapter,
    Class,
}

/// One receiving activity of a pathway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PathwayReceiver {
    /// NACE division (`35`), group (`23.1`) or class (`35.11`).
    pub nace: String,
    /// Number of documented exchanges.
    pub evidence: u32,
    pub level: PathwayLevel,
}

type Receivers = BTreeMap<NaceKey, u32>;

/// Reuse pathways: EWC code / subchapter / class → receiving NACE with evidence counts.
#[derive(Debug, Clone, Default)]
pub struct Pathways {
    by_code: HashMap<u32, Receivers>,
    by_subchapter: HashMap<u32, Receivers>,
    by_class: HashMap<String, Receivers>,
    exchanges: usize,
}

/// Learns pathways from a MAESTRI-style exchanges table (columns `EWC code` and
/// `NACE code - Receiving industry`; several codes separated by `;`; markers `*`, `#`, `^` ignored).
pub fn load_pathways(reader: impl Read, taxonomy: &Taxonomy) -> Result<Pathways> {
    let src = "exchanges";
    let csv_err = |error| MatchingError::Csv {
        source_name: src.into(),
        error,
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| MatchingError::Data {
                source_name: src.into(),
                line: 1,
                message: format!("missing column `{name}`"),
            })
    };
    let (ewc_col, receiver_col) = (col("EWC code")?, col("NACE code - Receiving industry")?);
    let mut pathways = Pathways::default();
    for record in rdr.records() {
        let record = record.map_err(csv_err)?;
        let codes: BTreeSet<EwcCode> = record
            .get(ewc_col)
            .unwrap_or_default()
            .split(';')
            .filter_map(EwcCode::parse)
            .collect();
        let receivers: BTreeSet<NaceKey> = record
            .get(receiver_col)
            .unwrap_or_default()
            .split(';')
            .filter_map(NaceKey::parse)
            .flat_map(|k| [k, k.division()])
            .collect();
        if codes.is_empty() || receivers.is_empty() {
            continue;
        }
        pathways.exchanges += 1;
        let subchapters: BTreeSet<u32> = codes.iter().map(|c| c.subchapter()).collect();
        let classes: BTreeSet<String> = codes
            .iter()
            .filter_map(|c| taxonomy.class_id_of_ewc(*c))
            .map(|id| taxonomy.class(id).name.clone())
            .collect();
        for key in &receivers {
            for code in &codes {
                *pathways
                    .by_code
                    .entry(code.value())
                    .or_default()
                    .entry(*key)
                    .or_default() += 1;
            }
            for sub in &subchapters {
                *pathways
                    .by_subchapter
                    .entry(*sub)
                    .or_default()
                    .entry(*key)
                    .or_default() += 1;
            }
            for class in &classes {
                *pathways
                    .by_class
                    .entry(class.clone())
                    .or_default()
                    .entry(*key)
                    .or_default() += 1;
            }
        }
    }
    Ok(pathways)
}

impl Pathways {
    /// Reads an exchanges file from disk.
    pub fn from_path(path: &Path, taxonomy: &Taxonomy) -> Result<Pathways> {
        let file = std::fs::File::open(path).map_err(|error| MatchingError::Io {
            path: path.to_owned(),
            error,
        })?;
        load_pathways(std::io::BufReader::new(file), taxonomy)
    }

    /// Number of exchanges the pathways were learned from.
    pub fn exchanges(&self) -> usize {
        self.exchanges
    }

    /// Receiving activities for an EWC code (any usual spelling) and a class, most specific level
    /// first, then by evidence.
    pub fn receivers_for(&self, ewc_code: Option<&str>, class: &str) -> Vec<PathwayReceiver> {
        let code = ewc_code.and_then(EwcCode::parse);
        let mut out = Vec::new();
        let mut push = |level, receivers: Option<&Receivers>| {
            let mut part: Vec<PathwayReceiver> = receivers
                .into_iter()
                .flatten()
                .map(|(k, n)| PathwayReceiver {
                    nace: k.to_string(),
                    evidence: *n,
                    level,
                })
                .collect();
            part.sort_by(|a, b| {
                b.evidence
                    .cmp(&a.evidence)
                    .then_with(|| a.nace.cmp(&b.nace))
            });
            out.extend(part);
        };
        if let Some(c) = code {
            push(PathwayLevel::Code, self.by_code.get(&c.value()));
            push(
                PathwayLevel::Subchapter,
                self.by_subchapter.get(&c.subchapter()),
            );
        }
        push(PathwayLevel::Class, self.by_class.get(class));
        out
    }

    fn entries(&self, code: Option<EwcCode>, class: &str) -> Vec<(PathwayLevel, NaceKey, u32)> {
        let mut out = Vec::new();
        if let Some(c) = code {
            for (k, n) in self.by_code.get(&c.value()).into_iter().flatten() {
                out.push((PathwayLevel::Code, *k, *n));
            }
            for (k, n) in self
                .by_subchapter
                .get(&c.subchapter())
                .into_iter()
                .flatten()
            {
                out.push((PathwayLevel::Subchapter, *k, *n));
            }
        }
        for (k, n) in self.by_class.get(class).into_iter().flatten() {
            out.push((PathwayLevel::Class, *k, *n));
        }
        out
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

/// A receiving activity for a given resource, with the fit it earns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverRule {
    pub key: NaceKey,
    pub level: FitLevel,
    pub value: f32,
    pub evidence: u32,
}

/// What an activity is known to receive (for searches from the need side).
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    pub codes: BTreeSet<EwcCode>,
    pub subchapters: BTreeSet<u32>,
    pub classes: BTreeSet<ClassId>,
}

/// Reference knowledge used by the engine: pathways, sector profiles and impact factors.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub pathways: Pathways,
    pub profiles: SectorProfiles,
    pub impacts: ImpactFactors,
}

impl Knowledge {
    pub fn new(pathways: Pathways, profiles: SectorProfiles, impacts: ImpactFactors) -> Knowledge {
        Knowledge {
            pathways,
            profiles,
            impacts,
        }
    }

    /// Embedded profiles and impact factors, no pathways.
    pub fn builtin(taxonomy: &Taxonomy) -> Result<Knowledge> {
        Ok(Knowledge {
            pathways: Pathways::default(),
            profiles: SectorProfiles::builtin(taxonomy)?,
            impacts: ImpactFactors::builtin(taxonomy)?,
        })
    }

    /// Embedded profiles and impact factors plus pathways learned from an exchanges file.
    pub fn load(exchanges_csv: &Path, taxonomy: &Taxonomy) -> Result<Knowledge> {
        Ok(Knowledge {
            pathways: Pathways::from_path(exchanges_csv, taxonomy)?,
            ..Knowledge::builtin(taxonomy)?
        })
    }

    /// Receiving activities of a resource (EWC code and class), best fit first; one rule per NACE key.
    pub(crate) fn receiver_rules(
        &self,
        tax: &Taxonomy,
        code: Option<EwcCode>,
        class: ClassId,
    ) -> Vec<ReceiverRule> {
        let mut best: BTreeMap<NaceKey, ReceiverRule> = BTreeMap::new();
        let mut offer = |rule: ReceiverRule| {
            let slot = best.entry(rule.key).or_insert(rule);
            if rule.value > slot.value {
                *slot = rule;
            }
        };
        // Pathways 0.44–0.68: level of what was documented, precision of the receiving activity
        // (class > group > division), evidence. Profiles 0.36–0.48, always below a documented pathway
        // of the same precision.
        let precision = |k: NaceKey, class: f32, group: f32| match k.len() {
            4 => class,
            3 => group,
            _ => 0.0,
        };
        for (level, key, n) in self.pathways.entries(code, &tax.class(class).name) {
            let base = match level {
                PathwayLevel::Code => 0.52,
                PathwayLevel::Subchapter => 0.48,
                PathwayLevel::Class => 0.44,
            };
            let value =
                base + precision(key, 0.08, 0.04) + 0.02 * n.saturating_sub(1).min(4) as f32;
            offer(ReceiverRule {
                key,
                level: FitLevel::Pathway,
                value,
                evidence: n,
            });
        }
        let code_text = code.map(EwcCode::compact);
        for p in &self.profiles.profiles {
            let Some(key) = p.key else { continue };
            let by_code = code_text.as_ref().is_some_and(|c| p.input_ewc.contains(c));
            let by_class = p.input_classes.iter().filter_map(|c| tax.id(c)).fold(
                None,
                |acc: Option<f32>, c| {
                    let v = if c == class {
                        0.40
                    } else if tax.is_ancestor_or_self(c, class) {
                        0.36
                    } else {
                        return acc;
                    };
                    Some(acc.map_or(v, |a| a.max(v)))
                },
            );
            let value = match (by_code, by_class) {
                (true, _) => 0.44,
                (false, Some(v)) => v,
                (false, None) => continue,
            };
            offer(ReceiverRule {
                key,
                level: FitLevel::Profile,
                value: value + precision(key, 0.04, 0.02),
                evidence: 0,
            });
        }
        let mut rules: Vec<ReceiverRule> = best.into_values().collect();
        rules.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.key.cmp(&b.key)));
        rules
    }

    /// Every NACE key a receiver rule can name (pathway receivers and profiles with inputs).
    pub(crate) fn receiver_keys(&self) -> BTreeSet<NaceKey> {
        let p = &self.pathways;
        let mut keys: BTreeSet<NaceKey> = [&p.by_code, &p.by_subchapter]
            .into_iter()
            .flat_map(|m| m.values())
            .chain(p.by_class.values())
            .flat_map(|r| r.keys().copied())
            .collect();
        keys.extend(
            self.profiles
                .profiles
                .iter()
                .filter(|p| !p.input_ewc.is_empty() || !p.input_classes.is_empty())
                .filter_map(|p| p.key),
        );
        keys
    }

    /// Everything an activity is documented or profiled to receive.
    pub(crate) fn received_by(&self, tax: &Taxonomy, actor: NaceKey) -> Received {
        let mut out = Received::default();
        let hit = |r: &Receivers| r.keys().any(|k| k.contains(actor));
        for (code, r) in &self.pathways.by_code {
            if hit(r) {
                out.codes.extend(EwcCode::from_value(*code));
            }
        }
        for (sub, r) in &self.pathways.by_subchapter {
            if hit(r) {
                out.subchapters.insert(*sub);
            }
        }
        for (class, r) in &self.pathways.by_class {
            if let (true, Some(id)) = (hit(r), tax.id(class)) {
                out.classes.insert(id);
            }
        }
        for p in &self.profiles.profiles {
            if p.key.is_some_and(|k| k.contains(actor)) {
                out.codes
                    .extend(p.input_ewc.iter().filter_map(|c| EwcCode::parse(c)));
                out.classes
                    .extend(p.input_classes.iter().filter_map(|c| tax.id(c)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin().expect("taxonomy")
    }

    fn maestri(t: &Taxonomy) -> Pathways {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/cases/maestri_exchanges_part_a.csv"
        );
        Pathways::from_path(Path::new(path), t).expect("exchanges parse")
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
    fn pathways_learned_from_documented_exchanges() {
        let t = tax();
        let p = maestri(&t);
        assert!(p.exchanges() > 150, "{}", p.exchanges());
        // Coal fly ash (10 01 02) goes to cement (23.51) several times in the database.
        let r = p.receivers_for(Some("10 01 02"), "material/mineral/ash");
        let cement = r
            .iter()
            .find(|x| x.level == PathwayLevel::Code && x.nace == "23.51")
            .expect("fly ash → cement documented");
        assert!(cement.evidence >= 3, "{cement:?}");
        assert!(
            r.iter()
                .any(|x| x.level == PathwayLevel::Code && x.nace == "23")
        );
        assert!(r.iter().any(|x| x.level == PathwayLevel::Class));
        // Markers are stripped: 130701* fuel oil → power (35.11).
        let fuel = p.receivers_for(Some("130701"), "energy/fuel/liquid");
        assert!(fuel.iter().any(|x| x.nace == "35.11"), "{fuel:?}");
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
    fn receiver_rules_rank_code_pathways_above_profiles() {
        let t = tax();
        let k = Knowledge {
            pathways: maestri(&t),
            ..Knowledge::builtin(&t).expect("builtin")
        };
        let ash = t.id("material/mineral/ash").expect("ash");
        let rules = k.receiver_rules(&t, EwcCode::parse("100102"), ash);
        let first = rules.first().expect("rules");
        assert_eq!(first.level, FitLevel::Pathway);
        let cement = rules
            .iter()
            .find(|r| r.key.to_string() == "23.51")
            .expect("cement rule");
        assert!(cement.value >= 0.6, "{cement:?}");
        // Bricks (23.32) come from the profile only.
        let bricks = rules
            .iter()
            .find(|r| r.key.to_string() == "23.32")
            .expect("brick rule");
        assert!(bricks.value < cement.value);
        let received = k.received_by(&t, NaceKey::parse("23.51Z").expect("naf"));
        assert!(
            received
                .codes
                .contains(&EwcCode::parse("100102").expect("code"))
        );
    }
}
