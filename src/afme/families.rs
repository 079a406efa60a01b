//! The AFME family table: each family's Eurostat MF codes, labels and aliases, and the mapping of EWC
//! chapters and resource classes to families (used by the matching engine's territorial-priority
//! component).
//!
//! The table lives in `knowledge/afme_families.toml` (sources and decisions are cited there) and is
//! embedded at build time; [`FamilyTable::from_toml_str`] loads a replacement.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::AfmeError;
use super::model::Family;

/// The embedded table.
pub const BUILTIN_TOML: &str = include_str!("../../knowledge/afme_families.toml");

/// One family of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeFamilyInfo)]
pub struct FamilyInfo {
    pub family: Family,
    /// Eurostat EW-MFA main categories (MF1–MF6) the family corresponds to.
    pub mf_codes: Vec<String>,
    pub label_fr: String,
    pub label_en: String,
    /// Other spellings accepted in imported files (lower case).
    pub aliases: Vec<String>,
    pub note: String,
}

/// EWC prefix (2 digits = chapter, 4 = sub-chapter, 6 = entry) → family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeEwcRule)]
pub struct EwcRule {
    pub prefix: String,
    pub family: Family,
    pub label: String,
}

/// Resource-class prefix → family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeClassRule)]
pub struct ClassRule {
    pub prefix: String,
    pub family: Family,
}

#[derive(Debug, Deserialize)]
struct RawFamily {
    code: String,
    #[serde(default)]
    mf_codes: Vec<String>,
    label_fr: String,
    label_en: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
struct RawEwc {
    prefix: String,
    family: String,
    #[serde(default)]
    label: String,
}

#[derive(Debug, Deserialize)]
struct RawClass {
    prefix: String,
    family: String,
}

#[derive(Debug, Deserialize)]
struct RawTable {
    family: Vec<RawFamily>,
    #[serde(default)]
    ewc: Vec<RawEwc>,
    #[serde(default)]
    class: Vec<RawClass>,
}

/// The validated table.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeFamilyTable)]
pub struct FamilyTable {
    pub families: Vec<FamilyInfo>,
    pub ewc: Vec<EwcRule>,
    pub classes: Vec<ClassRule>,
    #[serde(skip)]
    aliases: HashMap<String, Family>,
}

fn normalise_name(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

fn normalise_class(text: &str) -> String {
    text.trim().trim_matches('/').to_lowercase()
}

fn ewc_digits(code: &str) -> Option<String> {
    let digits: String = code
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '*' | '\u{a0}'))
        .collect();
    if digits.len() < 2 || digits.len() > 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(digits)
}

impl FamilyTable {
    /// Parses and validates a table in the format of `knowledge/afme_families.toml`: every specific
    /// family must be described once, aliases must be unique, EWC prefixes must be 2, 4 or 6 digits of
    /// chapters 01–20, and every rule must name a known family.
    pub fn from_toml_str(text: &str) -> Result<Self, AfmeError> {
        let raw: RawTable = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| AfmeError::FamilyTable(e.to_string()))?;

        let parse_family = |code: &str, context: &str| {
            Family::parse(code).filter(|f| !f.is_all()).ok_or_else(|| {
                AfmeError::FamilyTable(format!(
                    "{context}: unknown family '{code}' (expected one of {})",
                    Family::SPECIFIC
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };

        let mut families = Vec::new();
        let mut aliases: HashMap<String, Family> = HashMap::new();
        for f in raw.family {
            let family = parse_family(&f.code, "family")?;
            if families.iter().any(|i: &FamilyInfo| i.family == family) {
                return Err(AfmeError::FamilyTable(format!(
                    "family '{}' described twice",
                    f.code
                )));
            }
            for mf in &f.mf_codes {
                let ok = mf
                    .strip_prefix("MF")
                    .and_then(|n| n.split('.').next())
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| (1..=6).contains(&n));
                if !ok {
                    return Err(AfmeError::FamilyTable(format!(
                        "family '{}': '{mf}' is not an EW-MFA code MF1–MF6",
                        f.code
                    )));
                }
            }
            let names = std::iter::once(family.as_str().to_string())
                .chain(f.aliases.iter().map(|a| normalise_name(a)));
            for name in names {
                if let Some(previous) = aliases.insert(name.clone(), family)
                    && previous != family
                {
                    return Err(AfmeError::FamilyTable(format!(
                        "alias '{name}' names both {previous} and {family}"
                    )));
                }
            }
            families.push(FamilyInfo {
                family,
                mf_codes: f.mf_codes,
                label_fr: f.label_fr,
                label_en: f.label_en,
                aliases: f.aliases.iter().map(|a| normalise_name(a)).collect(),
                note: f.note,
            });
        }
        if let Some(missing) = Family::SPECIFIC
            .iter()
            .find(|s| !families.iter().any(|i| i.family == **s))
        {
            return Err(AfmeError::FamilyTable(format!(
                "family '{missing}' is not described"
            )));
        }
        aliases.insert("all".into(), Family::All);
        aliases.insert("total".into(), Family::All);

        let mut ewc = Vec::new();
        for rule in raw.ewc {
            let family = parse_family(&rule.family, &format!("ewc {}", rule.prefix))?;
            let digits = ewc_digits(&rule.prefix)
                .filter(|d| matches!(d.len(), 2 | 4 | 6))
                .ok_or_else(|| {
                    AfmeError::FamilyTable(format!(
                        "ewc prefix '{}' is not 2, 4 or 6 digits",
                        rule.prefix
                    ))
                })?;
            let chapter: u8 = digits[..2].parse().unwrap_or(0);
            if !(1..=20).contains(&chapter) {
                return Err(AfmeError::FamilyTable(format!(
                    "ewc prefix '{}': chapter must be 01–20",
                    rule.prefix
                )));
            }
            if ewc.iter().any(|r: &EwcRule| r.prefix == digits) {
                return Err(AfmeError::FamilyTable(format!(
                    "ewc prefix '{digits}' listed twice"
                )));
            }
            ewc.push(EwcRule {
                prefix: digits,
                family,
                label: rule.label,
            });
        }

        let mut classes = Vec::new();
        for rule in raw.class {
            let family = parse_family(&rule.family, &format!("class {}", rule.prefix))?;
            let prefix = normalise_class(&rule.prefix);
            if prefix.is_empty() {
                return Err(AfmeError::FamilyTable("empty class prefix".into()));
            }
            if classes.iter().any(|r: &ClassRule| r.prefix == prefix) {
                return Err(AfmeError::FamilyTable(format!(
                    "class prefix '{prefix}' listed twice"
                )));
            }
            classes.push(ClassRule { prefix, family });
        }

        Ok(Self {
            families,
            ewc,
            classes,
            aliases,
        })
    }

    /// The embedded table (parsed once). Its validity is checked by the unit tests; should it ever
    /// fail to parse, a table with no aliases and no rules is used (everything maps to `other`).
    pub fn builtin() -> &'static FamilyTable {
        static TABLE: OnceLock<FamilyTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            FamilyTable::from_toml_str(BUILTIN_TOML).unwrap_or_else(|_| FamilyTable::bare())
        })
    }

    /// A table that knows only the canonical spellings.
    fn bare() -> Self {
        let mut aliases: HashMap<String, Family> = Family::ALL
            .iter()
            .map(|f| (f.as_str().to_string(), *f))
            .collect();
        aliases.insert("total".into(), Family::All);
        Self {
            families: Vec::new(),
            ewc: Vec::new(),
            classes: Vec::new(),
            aliases,
        }
    }

    /// Resolves a family cell: the canonical spelling, `all`/`total`, or an alias (case-insensitive;
    /// spaces and dashes read as underscores). `wood` → agricultural_food,
    /// `industrial_minerals` → construction_materials.
    pub fn resolve(&self, text: &str) -> Option<Family> {
        self.aliases.get(&normalise_name(text)).copied()
    }

    pub fn info(&self, family: Family) -> Option<&FamilyInfo> {
        self.families.iter().find(|i| i.family == family)
    }

    /// Family of a resource: from its class, else (class of no family) from its EWC code.
    pub fn family_for_resource(&self, class: &str, ewc_code: Option<&str>) -> Family {
        match (self.family_for_class(class), ewc_code) {
            (Family::Other, Some(code)) => self.family_for_ewc(code),
            (family, _) => family,
        }
    }

    /// Family of an EWC code or prefix (`10`, `10 01`, `10 01 02*`, `100102`): the longest rule prefix
    /// that matches wins; `other` for anything unrecognised.
    pub fn family_for_ewc(&self, code: &str) -> Family {
        let Some(digits) = ewc_digits(code) else {
            return Family::Other;
        };
        self.ewc
            .iter()
            .filter(|r| digits.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .map(|r| r.family)
            .unwrap_or(Family::Other)
    }

    /// Family of a resource class (`material/metal/ferrous`): the longest rule prefix matching whole
    /// path segments wins; `other` when nothing matches.
    pub fn family_for_class(&self, class: &str) -> Family {
        let class = normalise_class(class);
        self.classes
            .iter()
            .filter(|r| {
                class == r.prefix
                    || (class.starts_with(&r.prefix)
                        && class.as_bytes().get(r.prefix.len()) == Some(&b'/'))
            })
            .max_by_key(|r| r.prefix.len())
            .map(|r| r.family)
            .unwrap_or(Family::Other)
    }
}

/// Family of an EWC chapter (`"17"`) or longer code, from the embedded table.
pub fn family_for_ewc_chapter(code: &str) -> Family {
    FamilyTable::builtin().family_for_ewc(code)
}

/// Family of a resource class, from the embedded table (longest-prefix rule).
pub fn family_for_class(class: &str) -> Family {
    FamilyTable::builtin().family_for_class(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_covers_every_family() {
        let table = FamilyTable::from_toml_str(BUILTIN_TOML).unwrap();
        for f in Family::SPECIFIC {
            let info = table.info(*f).unwrap();
            assert!(!info.mf_codes.is_empty(), "{f} has no MF code");
            assert!(!info.label_fr.is_empty() && !info.label_en.is_empty());
        }
        assert_eq!(
            table.info(Family::AgriculturalFood).unwrap().mf_codes,
            vec!["MF1"]
        );
        assert_eq!(table.info(Family::Waste).unwrap().mf_codes, vec!["MF6"]);
        // every EWC chapter 01–20 has a rule
        for ch in 1..=20 {
            let code = format!("{ch:02}");
            assert!(table.ewc.iter().any(|r| r.prefix == code), "chapter {code}");
        }
        assert!(!FamilyTable::builtin().families.is_empty());
    }

    #[test]
    fn aliases_resolve() {
        let t = FamilyTable::builtin();
        assert_eq!(t.resolve("wood"), Some(Family::AgriculturalFood));
        assert_eq!(
            t.resolve("industrial_minerals"),
            Some(Family::ConstructionMaterials)
        );
        assert_eq!(
            t.resolve("Industrial minerals"),
            Some(Family::ConstructionMaterials)
        );
        assert_eq!(t.resolve("biomass"), Some(Family::AgriculturalFood));
        assert_eq!(t.resolve("all"), Some(Family::All));
        assert_eq!(t.resolve("fossil_fuels"), Some(Family::FossilFuels));
        assert_eq!(t.resolve("unobtainium"), None);
    }

    #[test]
    fn ewc_chapters_map_to_families() {
        assert_eq!(family_for_ewc_chapter("17"), Family::ConstructionMaterials);
        assert_eq!(family_for_ewc_chapter("02"), Family::AgriculturalFood);
        assert_eq!(family_for_ewc_chapter("13"), Family::FossilFuels);
        assert_eq!(family_for_ewc_chapter("20"), Family::Waste);
        assert_eq!(family_for_ewc_chapter("10"), Family::OresMetallurgical);
        // sub-chapter overrides, full codes with spaces and hazard star
        assert_eq!(
            family_for_ewc_chapter("10 01 02"),
            Family::ConstructionMaterials
        );
        assert_eq!(
            family_for_ewc_chapter("17 04 05"),
            Family::OresMetallurgical
        );
        assert_eq!(
            family_for_ewc_chapter("17 05 03*"),
            Family::ConstructionMaterials
        );
        // nonsense
        assert_eq!(family_for_ewc_chapter("21"), Family::Other);
        assert_eq!(family_for_ewc_chapter("x"), Family::Other);
        assert_eq!(family_for_ewc_chapter(""), Family::Other);
    }

    #[test]
    fn classes_use_longest_segment_prefix() {
        assert_eq!(
            family_for_class("material/mineral/slag"),
            Family::ConstructionMaterials
        );
        assert_eq!(
            family_for_class("material/metal"),
            Family::OresMetallurgical
        );
        assert_eq!(
            family_for_class("material/metal/ferrous"),
            Family::OresMetallurgical
        );
        assert_eq!(
            family_for_class("material/biomass/wood"),
            Family::AgriculturalFood
        );
        assert_eq!(
            family_for_class("material/chemical/acid"),
            Family::FertilisersChemicals
        );
        assert_eq!(
            family_for_class("material/plastic/pe"),
            Family::FertilisersChemicals
        );
        assert_eq!(
            family_for_class("energy/fuel/biomass/pellets"),
            Family::AgriculturalFood
        );
        assert_eq!(family_for_class("energy/fuel/solvent"), Family::FossilFuels);
        assert_eq!(
            family_for_class("energy/heat/low-temp"),
            Family::FossilFuels
        );
        assert_eq!(family_for_class("energy/electricity"), Family::Other);
        // segment-wise: `material/metallic` is not under `material/metal`
        assert_eq!(family_for_class("material/metallic"), Family::Other);
        assert_eq!(
            family_for_class("/Material/Metal/"),
            Family::OresMetallurgical
        );
        assert_eq!(family_for_class("unknown/thing"), Family::Other);
    }

    #[test]
    fn bad_tables_are_refused() {
        let missing = r#"
[[family]]
code = "agricultural_food"
mf_codes = ["MF1"]
label_fr = "a"
label_en = "a"
"#;
        assert!(matches!(
            FamilyTable::from_toml_str(missing),
            Err(AfmeError::FamilyTable(m)) if m.contains("not described")
        ));
        let bad_family = BUILTIN_TOML.replace(
            "prefix = \"02\"\nfamily = \"agricultural_food\"",
            "prefix = \"02\"\nfamily = \"cheese\"",
        );
        assert!(FamilyTable::from_toml_str(&bad_family).is_err());
        let bad_chapter = BUILTIN_TOML.replace("prefix = \"20\"", "prefix = \"42\"");
        assert!(FamilyTable::from_toml_str(&bad_chapter).is_err());
        let dup_alias = BUILTIN_TOML.replace("\"nec\"]", "\"nec\", \"wood\"]");
        assert!(matches!(
            FamilyTable::from_toml_str(&dup_alias),
            Err(AfmeError::FamilyTable(m)) if m.contains("wood")
        ));
        let bad_mf = BUILTIN_TOML.replace("mf_codes = [\"MF6\"]", "mf_codes = [\"MF9\"]");
        assert!(FamilyTable::from_toml_str(&bad_mf).is_err());
        assert!(FamilyTable::from_toml_str("not toml [").is_err());
    }

    #[test]
    fn a_replacement_table_can_remap() {
        let remapped = BUILTIN_TOML.replace(
            "prefix = \"material/plastic\"\nfamily = \"fertilisers_chemicals\"",
            "prefix = \"material/plastic\"\nfamily = \"manufactured_products\"",
        );
        let t = FamilyTable::from_toml_str(&remapped).unwrap();
        assert_eq!(
            t.family_for_class("material/plastic/pet"),
            Family::ManufacturedProducts
        );
    }
}
