//! The demo's resource templates: for each activity profile, the offers and needs a facilitator would
//! expect, with magnitudes from sector averages, and the shared needs neighbours can pool.
//!
//! The data lives in `knowledge/demo_resources.toml` (its header cites the sources, each entry's note
//! the one behind its figure), embedded at build time and parsed and checked when the demo is built:
//! this module holds the types, the loader and its checks.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::anyhow;
use serde::Deserialize;
use serde::de::value::{Error as DeError, StrDeserializer};

use crate::domain::resource::{
    Availability, AvailabilityKind, Category, Period, PhysicalState, Quantity, ResourceInput,
    ResourceKind, Unit,
};

use super::activity::all_profiles;
use super::{ILLUSTRATIVE_PREFIX, Profile, round2};

/// The file, as errors name it.
pub(super) const SOURCE: &str = "knowledge/demo_resources.toml";
/// The embedded file.
const BUILTIN_TOML: &str = include_str!("../../knowledge/demo_resources.toml");

/// A resource template: a yearly quantity at the scale of a typical site, varied per site.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) kind: ResourceKind,
    pub(super) category: Category,
    /// Only for resources without an EWC code (heat, water, services, products): with a code, the
    /// class is derived from it.
    pub(super) class: Option<String>,
    pub(super) label: String,
    /// What it is and what grounds the magnitude.
    pub(super) note: String,
    /// As printed in the List of Waste: `10 01 02`, with `*` for hazardous entries.
    pub(super) ewc: Option<String>,
    pub(super) accepts: Vec<String>,
    pub(super) value: f64,
    pub(super) unit: Unit,
    /// Empty: all year.
    pub(super) months: Vec<u8>,
    pub(super) temperature_c: Option<f64>,
    pub(super) max_distance_km: Option<f64>,
    pub(super) state: PhysicalState,
}

impl Spec {
    /// The resource input for one site, its quantity scaled by `factor`.
    pub(super) fn input(&self, factor: f64) -> ResourceInput {
        let value = if self.unit == Unit::Piece {
            (self.value * factor).round().max(1.0)
        } else {
            round2(self.value * factor)
        };
        ResourceInput {
            kind: self.kind,
            category: self.category,
            class: self.class.clone(),
            label: self.label.clone(),
            description: Some(format!(
                "{ILLUSTRATIVE_PREFIX}{} Ressource déduite de l'activité probable du site, non déclarée par l'établissement.",
                self.note
            )),
            ewc_code: self.ewc.clone(),
            accepted_ewc: self.accepts.clone(),
            quantity: Some(Quantity {
                value,
                unit: self.unit,
                period: Period::Year,
            }),
            availability: Some(if self.months.is_empty() {
                Availability::default()
            } else {
                Availability {
                    kind: AvailabilityKind::Seasonal,
                    months: self.months.clone(),
                    from: None,
                    until: None,
                }
            }),
            temperature_c: self.temperature_c,
            max_distance_km: self.max_distance_km,
            physical_state: Some(self.state),
        }
    }
}

/// The heat class of a temperature, as the taxonomy bands it (< 90 °C, 90–200 °C, > 200 °C).
pub(super) fn heat_class(celsius: f64) -> &'static str {
    if celsius < 90.0 {
        "energy/heat/low_temperature"
    } else if celsius <= 200.0 {
        "energy/heat/medium_temperature"
    } else {
        "energy/heat/high_temperature"
    }
}

/// The templates of every profile, as loaded from `knowledge/demo_resources.toml`.
#[derive(Debug)]
pub(super) struct Templates {
    profiles: HashMap<Profile, ProfileTemplates>,
    shared: Vec<(Spec, u64)>,
}

#[derive(Debug)]
struct ProfileTemplates {
    gets_shared: bool,
    specs: Vec<Spec>,
}

impl Templates {
    /// The embedded file, parsed and checked.
    pub(super) fn builtin() -> anyhow::Result<Templates> {
        Templates::parse(BUILTIN_TOML, SOURCE)
    }

    /// Parses and checks a file in the format of `knowledge/demo_resources.toml`; every error names
    /// `source` and the entry.
    pub(super) fn parse(text: &str, source: &str) -> anyhow::Result<Templates> {
        let raw: RawFile = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| anyhow!("{source}: {e}"))?;
        let sets = Sets::new(&raw, source)?;

        let mut shared = Vec::with_capacity(raw.shared.len());
        for (i, entry) in raw.shared.iter().enumerate() {
            let place = format!("shared resource {} « {} »", i + 1, entry.label);
            let fail = |message: String| anyhow!("{source}, {place}: {message}");
            let percent = entry.percent.filter(|p| *p <= 100).ok_or_else(|| {
                fail("`percent` (0–100) is required for a shared resource".into())
            })?;
            shared.push((entry.spec(&sets).map_err(fail)?, percent));
        }

        let mut profiles = HashMap::new();
        let assigned = all_profiles();
        for (name, raw_profile) in &raw.profile {
            let profile = Profile::deserialize(StrDeserializer::<DeError>::new(name))
                .map_err(|e| anyhow!("{source}, profile {name}: {e}"))?;
            if !assigned.contains(&profile) {
                return Err(anyhow!(
                    "{source}, profile {name}: no site is given this profile (a farm whose animals are unknown is resolved to one of the farm profiles)"
                ));
            }
            let mut specs = Vec::with_capacity(raw_profile.resource.len());
            for (i, entry) in raw_profile.resource.iter().enumerate() {
                let place = format!("profile {name}, resource {} « {} »", i + 1, entry.label);
                if entry.percent.is_some() {
                    return Err(anyhow!(
                        "{source}, {place}: `percent` is only for shared resources"
                    ));
                }
                specs.push(
                    entry
                        .spec(&sets)
                        .map_err(|message| anyhow!("{source}, {place}: {message}"))?,
                );
            }
            if specs.is_empty() {
                return Err(anyhow!("{source}, profile {name}: no resource"));
            }
            profiles.insert(
                profile,
                ProfileTemplates {
                    gets_shared: raw_profile.shared,
                    specs,
                },
            );
        }
        if let Some(missing) = assigned.iter().find(|p| !profiles.contains_key(p)) {
            return Err(anyhow!(
                "{source}: profile {missing:?} has no [profile.…] table"
            ));
        }
        Ok(Templates { profiles, shared })
    }

    /// The offers and needs of a profile, at the scale of a typical site.
    pub(super) fn specs(&self, profile: Profile) -> &[Spec] {
        self.profile(profile).map_or(&[], |p| &p.specs)
    }

    /// Whether a profile gets the common packaging offers and shared needs of industrial sites.
    pub(super) fn gets_shared(&self, profile: Profile) -> bool {
        self.profile(profile).is_some_and(|p| p.gets_shared)
    }

    /// Offers and needs common to most industrial sites, each drawn per site with a probability (%).
    /// They make pooling visible: neighbours sharing a collection need or the same packaging waste.
    pub(super) fn shared(&self) -> &[(Spec, u64)] {
        &self.shared
    }

    fn profile(&self, profile: Profile) -> Option<&ProfileTemplates> {
        // Resolved per site before resources are built; answered for completeness.
        let profile = match profile {
            Profile::AnyFarm => Profile::MixedFarm,
            other => other,
        };
        self.profiles.get(&profile)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    months: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    codes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    shared: Vec<RawEntry>,
    profile: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    shared: bool,
    #[serde(default)]
    resource: Vec<RawEntry>,
}

/// A list written out, or the name of a list of the file's `[months]` or `[codes]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NamedOr<T> {
    Name(String),
    List(Vec<T>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    kind: String,
    category: String,
    label: String,
    #[serde(default)]
    ewc: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    accepts: Option<NamedOr<String>>,
    value: f64,
    unit: String,
    #[serde(default)]
    months: Option<NamedOr<u8>>,
    #[serde(default)]
    temperature_c: Option<f64>,
    #[serde(default)]
    max_distance_km: Option<f64>,
    state: String,
    #[serde(default)]
    percent: Option<u64>,
    #[serde(default)]
    note: String,
}

/// The file's named month sets and code lists, checked.
struct Sets<'a> {
    months: &'a BTreeMap<String, Vec<u8>>,
    codes: &'a BTreeMap<String, Vec<String>>,
}

impl<'a> Sets<'a> {
    fn new(raw: &'a RawFile, source: &str) -> anyhow::Result<Sets<'a>> {
        for (name, months) in &raw.months {
            check_months(months).map_err(|m| anyhow!("{source}, [months] {name}: {m}"))?;
        }
        for (name, codes) in &raw.codes {
            if codes.is_empty() {
                return Err(anyhow!("{source}, [codes] {name}: empty list"));
            }
            for code in codes {
                check_ewc(code).map_err(|m| anyhow!("{source}, [codes] {name}: {m}"))?;
            }
        }
        Ok(Sets {
            months: &raw.months,
            codes: &raw.codes,
        })
    }

    fn resolve<'s, T>(
        named: &'s BTreeMap<String, Vec<T>>,
        value: &'s NamedOr<T>,
        what: &str,
    ) -> Result<&'s [T], String> {
        match value {
            NamedOr::List(list) => Ok(list),
            NamedOr::Name(name) => named.get(name).map(Vec::as_slice).ok_or_else(|| {
                format!(
                    "no {what} named `{name}` (known: {})",
                    named.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
        }
    }
}

fn check_months(months: &[u8]) -> Result<(), String> {
    if months.is_empty() {
        return Err("empty list of months (leave `months` out for all year)".into());
    }
    let mut seen = HashSet::new();
    for m in months {
        if !(1..=12).contains(m) {
            return Err(format!("month {m} is not 1–12"));
        }
        if !seen.insert(m) {
            return Err(format!("month {m} listed twice"));
        }
    }
    Ok(())
}

/// The List of Waste's printed form: `10 01 02`, `*` for hazardous entries. Whether the code exists
/// is checked against the reference by the unit tests.
fn check_ewc(code: &str) -> Result<(), String> {
    let digits = code.strip_suffix('*').unwrap_or(code);
    let ok = digits.len() == 8
        && digits.char_indices().all(|(i, c)| {
            if i == 2 || i == 5 {
                c == ' '
            } else {
                c.is_ascii_digit()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{code}` is not an EWC code as printed in the List of Waste (`10 01 02`, `*` if hazardous)"
        ))
    }
}

fn parse_text<T>(
    text: &str,
    field: &str,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
) -> Result<T, String> {
    parse(text).ok_or_else(|| format!("{field} `{text}` is not one of {}", expected()))
}

impl RawEntry {
    fn spec(&self, sets: &Sets<'_>) -> Result<Spec, String> {
        let kind = parse_text(
            &self.kind,
            "kind",
            ResourceKind::parse,
            ResourceKind::expected,
        )?;
        let category = parse_text(
            &self.category,
            "category",
            Category::parse,
            Category::expected,
        )?;
        let unit = parse_text(&self.unit, "unit", Unit::parse, Unit::expected)?;
        let state = parse_text(
            &self.state,
            "state",
            PhysicalState::parse,
            PhysicalState::expected,
        )?;
        if self.label.trim().is_empty() {
            return Err("empty label".into());
        }
        if self.note.trim().is_empty() {
            return Err("`note` is required: what it is and the source of its figure".into());
        }
        match (&self.ewc, &self.class) {
            (Some(code), None) => check_ewc(code)?,
            (None, Some(class)) => {
                if class.split('/').next() != Some(category.as_str()) {
                    return Err(format!("class `{class}` is not of category `{category}`"));
                }
            }
            _ => return Err("give `ewc` or `class`, not both nor neither".into()),
        }
        let accepts = match &self.accepts {
            None => Vec::new(),
            Some(_) if kind == ResourceKind::Offer => {
                return Err("`accepts` is for needs".into());
            }
            Some(value) => Sets::resolve(sets.codes, value, "[codes] list")?.to_vec(),
        };
        for code in &accepts {
            check_ewc(code)?;
        }
        if !(self.value.is_finite() && self.value > 0.0) {
            return Err(format!("value {} must be a positive number", self.value));
        }
        let months = match &self.months {
            None => Vec::new(),
            Some(value) => {
                let months = Sets::resolve(sets.months, value, "[months] set")?;
                check_months(months)?;
                months.to_vec()
            }
        };
        if let Some(t) = self.temperature_c {
            if !t.is_finite() {
                return Err("temperature_c must be a number".into());
            }
            if let Some(class) = self
                .class
                .as_deref()
                .filter(|c| c.starts_with("energy/heat/"))
                && class != heat_class(t)
            {
                return Err(format!(
                    "class `{class}` does not match {t} °C (`{}`)",
                    heat_class(t)
                ));
            }
        }
        if let Some(km) = self.max_distance_km
            && !(km.is_finite() && km > 0.0)
        {
            return Err(format!("max_distance_km {km} must be a positive number"));
        }
        Ok(Spec {
            kind,
            category,
            class: self.class.clone(),
            label: self.label.clone(),
            note: self.note.clone(),
            ewc: self.ewc.clone(),
            accepts,
            value: self.value,
            unit,
            months,
            temperature_c: self.temperature_c,
            max_distance_km: self.max_distance_km,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Templates {
        match Templates::builtin() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// The smallest valid file: every assigned profile with one resource.
    fn minimal(entry: &str) -> String {
        let mut text = String::from("[months]\nharvest = [7, 8, 9]\n");
        for (i, p) in all_profiles().into_iter().enumerate() {
            let name = snake(&format!("{p:?}"));
            text.push_str(&format!("[profile.{name}]\nshared = false\n"));
            let body = if i == 0 {
                entry.to_owned()
            } else {
                OFFER.to_owned()
            };
            text.push_str(&format!("[[profile.{name}.resource]]\n{body}\n"));
        }
        text
    }

    const OFFER: &str = "kind = \"offer\"\ncategory = \"material\"\nlabel = \"Sciures\"\newc = \"03 01 05\"\nvalue = 10\nunit = \"t\"\nstate = \"solid\"\nnote = \"Source.\"";

    fn snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        }
        out
    }

    #[test]
    fn every_profile_has_resources() {
        let t = builtin();
        for p in all_profiles() {
            assert!(!t.specs(p).is_empty(), "{p:?}");
        }
        // A farm of unknown animals answers as a mixed farm.
        assert_eq!(
            t.specs(Profile::AnyFarm).len(),
            t.specs(Profile::MixedFarm).len()
        );
        assert!(!t.gets_shared(Profile::PigFarm));
        assert!(t.gets_shared(Profile::Cement));
        assert_eq!(t.shared().len(), 6);
    }

    #[test]
    fn known_rows_read_as_written() {
        let t = builtin();
        let pig = &t.specs(Profile::PigFarm)[0];
        assert_eq!(pig.kind, ResourceKind::Offer);
        assert_eq!(pig.category, Category::Material);
        assert_eq!(pig.label, "Lisier de porcs");
        assert_eq!(pig.ewc.as_deref(), Some("02 01 06"));
        assert_eq!(pig.class, None);
        assert_eq!((pig.value, pig.unit), (4000.0, Unit::Tonne));
        assert_eq!(pig.state, PhysicalState::Liquid);
        assert_eq!(pig.max_distance_km, Some(30.0));
        assert!(pig.note.starts_with("Lisier d'un élevage porcin"));
        // A named code list and a named month set.
        let liquids = &t.specs(Profile::HazardousWaste)[0];
        assert_eq!(liquids.accepts.len(), 5);
        assert!(liquids.accepts.iter().any(|c| c == "14 06 03*"));
        let (heating, percent) = &t.shared()[5];
        assert_eq!(*percent, 30);
        assert_eq!(heating.months, vec![1, 2, 3, 4, 10, 11, 12]);
        assert_eq!(heating.temperature_c, Some(60.0));
        assert_eq!(
            heating.class.as_deref(),
            Some("energy/heat/low_temperature")
        );
        assert_eq!(heating.unit, Unit::Megawatthour);
    }

    #[test]
    fn a_minimal_file_loads() {
        let t = Templates::parse(&minimal(OFFER), "test.toml");
        assert!(t.is_ok(), "{:?}", t.err());
    }

    #[test]
    fn errors_name_the_file_and_the_entry() {
        let first = snake(&format!("{:?}", all_profiles()[0]));
        let cases = [
            (OFFER.replace("\"t\"", "\"tonnes\""), "unit `tonnes`"),
            (
                format!("{OFFER}\nmonths = \"winter\""),
                "no [months] set named `winter`",
            ),
            (format!("{OFFER}\nmonths = [7, 13]"), "month 13 is not 1–12"),
            (
                OFFER.replace("03 01 05", "030105"),
                "`030105` is not an EWC code",
            ),
            (
                format!("{OFFER}\nclass = \"material/biomass\""),
                "not both nor neither",
            ),
            (
                OFFER.replace("note = \"Source.\"", ""),
                "`note` is required",
            ),
        ];
        for (entry, expected) in cases {
            let err = Templates::parse(&minimal(&entry), "test.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("test.toml")
                    && err.contains(&format!("profile {first}, resource 1 « Sciures »"))
                    && err.contains(expected),
                "{expected}: {err}"
            );
        }
        // A value of the wrong type: the parser's message, with the file's name.
        let err = Templates::parse(&minimal(&OFFER.replace("10", "\"ten\"")), "test.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("test.toml: "), "{err}");
    }

    #[test]
    fn a_missing_or_unknown_profile_is_named() {
        let text = minimal(OFFER);
        let last = snake(&format!("{:?}", all_profiles()[all_profiles().len() - 1]));
        let cut = text
            .find(&format!("[profile.{last}]"))
            .unwrap_or(text.len());
        let err = Templates::parse(&text[..cut], "test.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("test.toml") && err.contains("has no [profile"),
            "{err}"
        );
        let unknown = format!("{text}[profile.bakeryy]\nshared = false\n");
        let err = Templates::parse(&unknown, "test.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("profile bakeryy: unknown variant"), "{err}");
        let any = format!("{text}[profile.any_farm]\nshared = false\n");
        let err = Templates::parse(&any, "test.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("profile any_farm: no site"), "{err}");
    }
}
