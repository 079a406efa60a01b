//! Resource classes: a hierarchical taxonomy of the project's own (`material/mineral/ash`,
//! `energy/heat/low_temperature`, …) with, per class, a rationale, a default maximum transport distance,
//! a distance-decay scale and the base unit it is usually counted in; and the rules that give every EWC
//! code a class (chapter, then subchapter, then per-code overrides; the most specific wins).
//!
//! Both tables are embedded from `knowledge/resource_classes.csv` and `knowledge/ewc_class_rules.csv`.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MatchingError, Result};
use crate::domain::resource::{BaseUnit, Category};

const CLASSES_CSV: &str = include_str!("../../knowledge/resource_classes.csv");
const EWC_RULES_CSV: &str = include_str!("../../knowledge/ewc_class_rules.csv");

/// Compact id of a class inside one [`Taxonomy`] (index in its table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub(crate) u16);

impl ClassId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A European List of Waste code, kept as its six-digit number (`100102`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EwcCode(u32);

impl EwcCode {
    /// Parses `10 01 02`, `100102`, `10 01 02*` or the MAESTRI spellings `050799#`, `130701*`:
    /// spaces are ignored, a trailing `*`, `#` or `^` marker is dropped; six digits must remain.
    pub fn parse(text: &str) -> Option<EwcCode> {
        let trimmed = text.trim().trim_end_matches(['*', '#', '^']);
        let mut value = 0u32;
        let mut digits = 0;
        for c in trimmed.chars() {
            match c {
                ' ' | '\u{a0}' => continue,
                '0'..='9' => {
                    value = value * 10 + (c as u32 - '0' as u32);
                    digits += 1;
                }
                _ => return None,
            }
        }
        (digits == 6).then_some(EwcCode(value))
    }

    /// From the six-digit number (`100102`); `None` above 999999.
    pub fn from_value(value: u32) -> Option<EwcCode> {
        (value < 1_000_000).then_some(EwcCode(value))
    }

    pub fn value(self) -> u32 {
        self.0
    }

    /// Two-digit chapter (`10`).
    pub fn chapter(self) -> u32 {
        self.0 / 10_000
    }

    /// Four-digit subchapter (`1001`).
    pub fn subchapter(self) -> u32 {
        self.0 / 100
    }

    /// The six digits without spaces (`100102`), as stored and sent on the wire.
    pub fn compact(self) -> String {
        format!("{:06}", self.0)
    }

    /// Writes the six digits into `buf` and returns them as `&str`, without allocating.
    pub fn write_compact(self, buf: &mut [u8; 6]) -> &str {
        let mut v = self.0;
        for slot in buf.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        // Only ASCII digits were written.
        std::str::from_utf8(buf).unwrap_or("000000")
    }
}

/// Displays as the official `10 01 02`.
impl fmt::Display for EwcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(f, "{:02} {:02} {:02}", v / 10_000, (v / 100) % 100, v % 100)
    }
}

/// One class of the taxonomy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ResourceClass {
    /// Path-like name, e.g. `material/mineral/ash`.
    pub name: String,
    pub label_en: String,
    pub label_fr: String,
    pub category: Category,
    /// Name of the parent class (`None` for the five roots).
    pub parent: Option<String>,
    /// 0 for a root.
    pub depth: u8,
    /// Unit the class is usually counted in.
    pub base_unit: BaseUnit,
    /// Default maximum distance between partners (km).
    pub max_distance_km: f64,
    /// Scale of the distance decay `exp(-d / scale)` (km).
    pub decay_km: f64,
    /// AFME product family the class belongs to, if any.
    pub afme_family: Option<String>,
    pub rationale: String,
}

/// One EWC → class rule: `pattern` is a chapter (2 digits), a subchapter (4) or a code (6).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EwcRule {
    pub pattern: String,
    pub class: String,
    pub rationale: String,
}

/// How two classes relate, seen from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    Same,
    /// The other class is an ancestor, `n` levels up.
    Ancestor(u8),
    /// The other class is a descendant, `n` levels down.
    Descendant(u8),
    /// Both are heat classes (heat cascades across temperature bands; the temperature rule decides).
    HeatCascade,
}

#[derive(Debug, Clone)]
pub struct Taxonomy {
    classes: Vec<ResourceClass>,
    parents: Vec<Option<ClassId>>,
    by_name: HashMap<String, ClassId>,
    related: Vec<Vec<(ClassId, Relation)>>,
    heat_root: Option<ClassId>,
    rules: Vec<EwcRule>,
    by_code: HashMap<u32, ClassId>,
    by_subchapter: HashMap<u32, ClassId>,
    by_chapter: HashMap<u32, ClassId>,
}

#[derive(Deserialize)]
struct ClassRow {
    class: String,
    label_en: String,
    label_fr: String,
    base_unit: String,
    max_distance_km: f64,
    decay_km: f64,
    afme_family: String,
    rationale: String,
}

#[derive(Deserialize)]
struct RuleRow {
    pattern: String,
    class: String,
    rationale: String,
}

pub(crate) fn csv_rows<T: serde::de::DeserializeOwned>(
    source_name: &str,
    reader: impl Read,
) -> Result<Vec<(u64, T)>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut out = Vec::new();
    for row in rdr.deserialize::<T>() {
        let row = row.map_err(|error| MatchingError::Csv {
            source_name: source_name.to_owned(),
            error,
        })?;
        out.push((out.len() as u64 + 2, row));
    }
    Ok(out)
}

impl Taxonomy {
    /// The taxonomy embedded in the binary.
    pub fn builtin() -> Result<Taxonomy> {
        Taxonomy::from_readers(CLASSES_CSV.as_bytes(), EWC_RULES_CSV.as_bytes())
    }

    /// Reads a class table and an EWC rule table (same columns as the embedded files).
    pub fn from_readers(classes: impl Read, rules: impl Read) -> Result<Taxonomy> {
        let src = "resource_classes.csv";
        let bad = |line: u64, message: String| MatchingError::Data {
            source_name: src.into(),
            line,
            message,
        };
        let rows: Vec<(u64, ClassRow)> = csv_rows(src, classes)?;
        if rows.len() >= usize::from(u16::MAX) {
            return Err(bad(0, "too many classes".into()));
        }
        let mut by_name = HashMap::new();
        for (i, (line, row)) in rows.iter().enumerate() {
            if row.class.is_empty() || row.class.split('/').any(str::is_empty) {
                return Err(bad(*line, format!("bad class name `{}`", row.class)));
            }
            if by_name
                .insert(row.class.clone(), ClassId(i as u16))
                .is_some()
            {
                return Err(bad(*line, format!("duplicate class `{}`", row.class)));
            }
        }
        let mut classes = Vec::with_capacity(rows.len());
        let mut parents = Vec::with_capacity(rows.len());
        for (line, row) in rows {
            let root = row.class.split('/').next().unwrap_or_default();
            let category = Category::parse(root).ok_or_else(|| {
                bad(
                    line,
                    format!(
                        "`{}` is not under one of {}",
                        row.class,
                        Category::expected()
                    ),
                )
            })?;
            let base_unit = BaseUnit::parse(&row.base_unit).ok_or_else(|| {
                bad(
                    line,
                    format!(
                        "base_unit `{}`: expected {}",
                        row.base_unit,
                        BaseUnit::expected()
                    ),
                )
            })?;
            let parent_name = row.class.rsplit_once('/').map(|(p, _)| p.to_owned());
            let parent = match &parent_name {
                Some(p) => Some(
                    *by_name
                        .get(p)
                        .ok_or_else(|| bad(line, format!("parent `{p}` is not declared")))?,
                ),
                None => None,
            };
            let positive = |v: f64| v.is_finite() && v > 0.0;
            if !positive(row.max_distance_km) || !positive(row.decay_km) {
                return Err(bad(
                    line,
                    "max_distance_km and decay_km must be positive".into(),
                ));
            }
            parents.push(parent);
            classes.push(ResourceClass {
                depth: row.class.matches('/').count() as u8,
                name: row.class,
                label_en: row.label_en,
                label_fr: row.label_fr,
                category,
                parent: parent_name,
                base_unit,
                max_distance_km: row.max_distance_km,
                decay_km: row.decay_km,
                afme_family: (!row.afme_family.is_empty()).then_some(row.afme_family),
                rationale: row.rationale,
            });
        }
        let heat_root = by_name.get("energy/heat").copied();
        let mut tax = Taxonomy {
            classes,
            parents,
            by_name,
            related: Vec::new(),
            heat_root,
            rules: Vec::new(),
            by_code: HashMap::new(),
            by_subchapter: HashMap::new(),
            by_chapter: HashMap::new(),
        };
        tax.related = (0..tax.classes.len())
            .map(|i| tax.compute_related(ClassId(i as u16)))
            .collect();
        tax.load_rules(rules)?;
        Ok(tax)
    }

    fn load_rules(&mut self, reader: impl Read) -> Result<()> {
        let src = "ewc_class_rules.csv";
        for (line, row) in csv_rows::<RuleRow>(src, reader)? {
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line,
                message,
            };
            let class = self
                .id(&row.class)
                .ok_or_else(|| bad(format!("unknown class `{}`", row.class)))?;
            if !row.pattern.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad(format!("pattern `{}` must be digits", row.pattern)));
            }
            let value: u32 = row
                .pattern
                .parse()
                .map_err(|_| bad(format!("bad pattern `{}`", row.pattern)))?;
            let map = match row.pattern.len() {
                2 => &mut self.by_chapter,
                4 => &mut self.by_subchapter,
                6 => &mut self.by_code,
                _ => {
                    return Err(bad(format!(
                        "pattern `{}` must have 2, 4 or 6 digits",
                        row.pattern
                    )));
                }
            };
            if map.insert(value, class).is_some() {
                return Err(bad(format!("duplicate pattern `{}`", row.pattern)));
            }
            self.rules.push(EwcRule {
                pattern: row.pattern,
                class: row.class,
                rationale: row.rationale,
            });
        }
        Ok(())
    }

    fn compute_related(&self, id: ClassId) -> Vec<(ClassId, Relation)> {
        let mut out = vec![(id, Relation::Same)];
        let mut up = self.parents[id.index()];
        let mut n = 1u8;
        while let Some(p) = up {
            out.push((p, Relation::Ancestor(n)));
            up = self.parents[p.index()];
            n = n.saturating_add(1);
        }
        for i in 0..self.classes.len() {
            let other = ClassId(i as u16);
            if other == id {
                continue;
            }
            if let Some(n) = self.levels_below(id, other) {
                out.push((other, Relation::Descendant(n)));
            } else if self.is_heat(id)
                && self.is_heat(other)
                && self.levels_below(other, id).is_none()
            {
                out.push((other, Relation::HeatCascade));
            }
        }
        out
    }

    /// `Some(n)` when `descendant` is `n ≥ 1` levels below `ancestor`.
    fn levels_below(&self, ancestor: ClassId, descendant: ClassId) -> Option<u8> {
        let mut up = self.parents[descendant.index()];
        let mut n = 1u8;
        while let Some(p) = up {
            if p == ancestor {
                return Some(n);
            }
            up = self.parents[p.index()];
            n = n.saturating_add(1);
        }
        None
    }

    pub fn classes(&self) -> &[ResourceClass] {
        &self.classes
    }

    pub fn rules(&self) -> &[EwcRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    pub fn id(&self, class: &str) -> Option<ClassId> {
        self.by_name.get(class).copied()
    }

    /// The class named `class`.
    pub fn get(&self, class: &str) -> Option<&ResourceClass> {
        self.id(class).map(|id| self.class(id))
    }

    /// The class of an id from this taxonomy.
    pub fn class(&self, id: ClassId) -> &ResourceClass {
        &self.classes[id.index()]
    }

    pub fn parent_id(&self, id: ClassId) -> Option<ClassId> {
        self.parents[id.index()]
    }

    /// The parent of `class` (`None` for a root or an unknown class).
    pub fn parent(&self, class: &str) -> Option<&ResourceClass> {
        self.id(class)
            .and_then(|id| self.parent_id(id))
            .map(|p| self.class(p))
    }

    /// Whether `ancestor` is a strict ancestor of `descendant` (`material` of `material/mineral/ash`).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        match (self.id(ancestor), self.id(descendant)) {
            (Some(a), Some(d)) => self.levels_below(a, d).is_some(),
            _ => false,
        }
    }

    pub(crate) fn is_ancestor_or_self(&self, ancestor: ClassId, descendant: ClassId) -> bool {
        ancestor == descendant || self.levels_below(ancestor, descendant).is_some()
    }

    /// The classes related to `id` (itself, ancestors, descendants, other heat bands).
    pub fn related(&self, id: ClassId) -> &[(ClassId, Relation)] {
        &self.related[id.index()]
    }

    pub fn relation(&self, from: ClassId, to: ClassId) -> Option<Relation> {
        self.related(from)
            .iter()
            .find(|(c, _)| *c == to)
            .map(|(_, r)| *r)
    }

    /// Whether the class is `energy/heat` or below it.
    pub fn is_heat(&self, id: ClassId) -> bool {
        self.heat_root
            .is_some_and(|h| self.is_ancestor_or_self(h, id))
    }

    /// Temperature band of a heat class: 0 low, 1 medium, 2 high; `None` for generic heat or non-heat.
    pub fn heat_band(&self, id: ClassId) -> Option<u8> {
        if !self.is_heat(id) {
            return None;
        }
        let name = &self.class(id).name;
        if name.contains("low_temperature") {
            Some(0)
        } else if name.contains("medium_temperature") {
            Some(1)
        } else if name.contains("high_temperature") {
            Some(2)
        } else {
            None
        }
    }

    /// Class id of a parsed EWC code: the code's override, else its subchapter rule, else its chapter rule.
    pub fn class_id_of_ewc(&self, code: EwcCode) -> Option<ClassId> {
        self.by_code
            .get(&code.value())
            .or_else(|| self.by_subchapter.get(&code.subchapter()))
            .or_else(|| self.by_chapter.get(&code.chapter()))
            .copied()
    }

    /// The class of an EWC code written in any usual form (`10 01 02`, `100102`, `13 02 05*`).
    pub fn class_of_ewc(&self, code: &str) -> Option<&ResourceClass> {
        EwcCode::parse(code)
            .and_then(|c| self.class_id_of_ewc(c))
            .map(|id| self.class(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin().expect("embedded taxonomy parses")
    }

    #[derive(Deserialize)]
    struct LowRow {
        code: String,
        code_display: String,
        hazardous: bool,
    }

    #[test]
    fn every_code_of_the_list_of_waste_has_a_class() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/ewc/list_of_waste.csv"
        );
        let file = std::fs::File::open(path).expect("reference list of waste present");
        let rows: Vec<(u64, LowRow)> = csv_rows("list_of_waste.csv", file).expect("parses");
        assert_eq!(rows.len(), 842);
        let t = tax();
        let unmapped: Vec<&str> = rows
            .iter()
            .filter(|(_, r)| t.class_of_ewc(&r.code).is_none())
            .map(|(_, r)| r.code.as_str())
            .collect();
        assert!(unmapped.is_empty(), "unmapped codes: {unmapped:?}");
        for (_, r) in &rows {
            let shown = EwcCode::parse(&r.code_display).map(|c| c.to_string());
            assert_eq!(shown.as_deref(), Some(r.code_display.trim_end_matches('*')));
            assert_eq!(
                r.hazardous,
                r.code_display.ends_with('*'),
                "{}",
                r.code_display
            );
        }
        // Every per-code override names a code of the list.
        let codes: std::collections::HashSet<&str> =
            rows.iter().map(|(_, r)| r.code.as_str()).collect();
        for rule in t.rules().iter().filter(|r| r.pattern.len() == 6) {
            assert!(
                codes.contains(rule.pattern.as_str()),
                "override for unknown code {}",
                rule.pattern
            );
        }
    }

    #[test]
    fn spot_checks_of_the_ewc_mapping() {
        let t = tax();
        let class = |code: &str| t.class_of_ewc(code).map(|c| c.name.as_str());
        assert_eq!(class("10 01 02"), Some("material/mineral/ash"));
        assert_eq!(class("030105"), Some("material/biomass/wood"));
        assert_eq!(class("02 05 01"), Some("material/biomass/food"));
        assert_eq!(class("17 05 04"), Some("material/construction/inert"));
        assert_eq!(class("12 01 01"), Some("material/metal/ferrous"));
        assert_eq!(class("13 02 05*"), Some("material/oil/mineral_oil"));
        assert_eq!(class("10 02 02"), Some("material/mineral/slag"));
        assert_eq!(class("15 01 02"), Some("material/plastic"));
        assert_eq!(class("19 12 10"), Some("energy/fuel/solid_recovered"));
        assert_eq!(class("not a code"), None);
    }

    #[test]
    fn tree_navigation() {
        let t = tax();
        assert!(t.len() >= 40);
        assert!(t.is_ancestor("material", "material/mineral/ash"));
        assert!(t.is_ancestor("material/mineral", "material/mineral/ash"));
        assert!(!t.is_ancestor("material/mineral/ash", "material/mineral"));
        assert!(!t.is_ancestor("material/mineral/ash", "material/mineral/ash"));
        assert_eq!(
            t.parent("material/biomass/wood").map(|c| c.name.as_str()),
            Some("material/biomass")
        );
        assert!(t.parent("energy").is_none());
        let ash = t.get("material/mineral/ash").expect("ash class");
        assert_eq!(ash.base_unit, BaseUnit::Tonne);
        assert_eq!(ash.depth, 2);
        let low = t.id("energy/heat/low_temperature").expect("low heat");
        let high = t.id("energy/heat/high_temperature").expect("high heat");
        assert_eq!(t.relation(low, high), Some(Relation::HeatCascade));
        assert_eq!(t.heat_band(high), Some(2));
        // heat travels km, metals hundreds of km
        assert!(t.class(low).max_distance_km < 10.0);
        assert!(
            t.get("material/metal/ferrous")
                .expect("ferrous")
                .max_distance_km
                >= 300.0
        );
    }

    #[test]
    fn ewc_code_forms() {
        let c = EwcCode::parse("10 01 02").expect("valid");
        assert_eq!(c.compact(), "100102");
        assert_eq!(c.to_string(), "10 01 02");
        assert_eq!(c.subchapter(), 1001);
        assert_eq!(
            EwcCode::parse("050799#").map(EwcCode::compact),
            Some("050799".into())
        );
        assert_eq!(EwcCode::parse("1001"), None);
        let mut buf = [0u8; 6];
        assert_eq!(
            EwcCode::parse("020501")
                .expect("valid")
                .write_compact(&mut buf),
            "020501"
        );
    }

    #[test]
    fn rejects_bad_tables() {
        let classes = "class,label_en,label_fr,base_unit,max_distance_km,decay_km,afme_family,rationale\n\
                       material/x,X,X,t,10,5,,orphan\n";
        assert!(
            Taxonomy::from_readers(classes.as_bytes(), "pattern,class,rationale\n".as_bytes())
                .is_err()
        );
    }
}
