//! Types of a territorial material flow account (AFME): one tidy row per territory, year, flow type,
//! product family and partner.
//!
//! The flow vocabulary follows Eurostat's economy-wide material flow accounts (EW-MFA handbook, 2018
//! edition) as adapted to French régions and départements by the SOeS/CGDD *Guide méthodologique :
//! comptabilité des flux de matières dans les régions et les départements* (2014) and used by Alterre
//! Bourgogne (*Repères* n°64, 2013).
//!
//! Wire spellings (CSV cells and JSON strings):
//!
//! | flow | spelling | meaning |
//! |---|---|---|
//! | domestic extraction used | `DE` | *extraction intérieure utilisée* |
//! | unused domestic extraction | `UDE` | *extraction inutilisée* (outside DMI) |
//! | imports | `IMP` | from the rest of France and abroad |
//! | exports | `EXP` | to the rest of France and abroad |
//! | emissions to air | `DPO_AIR` | part of DPO |
//! | emissions to water | `DPO_WATER` | part of DPO |
//! | dissipative flows and emissions to soil | `DPO_SOIL` | part of DPO |
//! | waste landfilled | `DPO_LANDFILL` | part of DPO |
//! | domestic processed output, undivided | `DPO` | the total, when its parts are unknown |
//! | balancing item, input side | `BI_IN` | e.g. oxygen for combustion |
//! | balancing item, output side | `BI_OUT` | e.g. water vapour |
//! | net addition to stock | `NAS` | *addition nette au stock* |
//! | recycling (memo item) | `RECYCLING` | not part of the balance |
//!
//! Families: `agricultural_food`, `ores_metallurgical`, `construction_materials`,
//! `fertilisers_chemicals`, `manufactured_products`, `fossil_fuels`, `waste`, `other`, and `all` for a
//! row that is a total over families. Partners: `rest_of_france`, `abroad`, or a territory code.
//! Units: `t` (mass) and `MWh` (energy, kept apart and never summed with mass).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-coded enum: `ALL`, `as_str`, `parse` (exact spelling), `expected`, `Display`.
/// The spellings are `tt`, not `literal`: utoipa's derive does not see a `literal` fragment in
/// `#[serde(rename = …)]` and would document the Rust variant names.
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident as $schema:ident { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[schema(as = $schema)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the exact wire spelling; `None` for anything else.
            pub fn parse_exact(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum! {
    /// Flow type of an account row (EW-MFA categories, DPO split as in the regional guide).
    FlowType as AfmeFlowType {
        De => "DE",
        Ude => "UDE",
        Imp => "IMP",
        Exp => "EXP",
        DpoAir => "DPO_AIR",
        DpoWater => "DPO_WATER",
        /// Emissions to soil and dissipative uses (fertilisers, de-icing salt, …).
        DpoSoil => "DPO_SOIL",
        DpoLandfill => "DPO_LANDFILL",
        /// Undivided DPO: allowed when its parts are unknown; when both are given the undivided row is
        /// the total and the parts are detail.
        Dpo => "DPO",
        BiIn => "BI_IN",
        BiOut => "BI_OUT",
        Nas => "NAS",
        /// Memo item: material recycled within the territory; outside the balance.
        Recycling => "RECYCLING",
    }
}

impl FlowType {
    /// The parts of DPO, in display order.
    pub const DPO_PARTS: &'static [FlowType] = &[
        FlowType::DpoAir,
        FlowType::DpoWater,
        FlowType::DpoSoil,
        FlowType::DpoLandfill,
    ];

    /// Case-insensitive parse of the wire spelling (`de`, `Bi_In` are accepted).
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_exact(&text.trim().to_ascii_uppercase())
    }

    /// Input side of the material balance: DE, IMP, BI_IN.
    pub fn is_input(self) -> bool {
        matches!(self, FlowType::De | FlowType::Imp | FlowType::BiIn)
    }

    /// Output side of the material balance: EXP, DPO (and parts), NAS, BI_OUT.
    pub fn is_output(self) -> bool {
        matches!(self, FlowType::Exp | FlowType::Nas | FlowType::BiOut) || self.is_dpo()
    }

    /// DPO or one of its parts.
    pub fn is_dpo(self) -> bool {
        self == FlowType::Dpo || self.is_dpo_part()
    }

    /// One of DPO_AIR, DPO_WATER, DPO_SOIL, DPO_LANDFILL.
    pub fn is_dpo_part(self) -> bool {
        Self::DPO_PARTS.contains(&self)
    }

    /// Only trade flows have a partner (where the goods come from or go to).
    pub fn has_partner(self) -> bool {
        matches!(self, FlowType::Imp | FlowType::Exp)
    }

    /// Energy rows (MWh) are kept for local production and trade only: DE (e.g. renewable
    /// production), IMP and EXP. An energy "emission" or "stock addition" has no meaning in AFME.
    pub fn allows_energy(self) -> bool {
        matches!(self, FlowType::De | FlowType::Imp | FlowType::Exp)
    }

    /// A short human label (English).
    pub fn label(self) -> &'static str {
        match self {
            FlowType::De => "domestic extraction used",
            FlowType::Ude => "unused domestic extraction",
            FlowType::Imp => "imports",
            FlowType::Exp => "exports",
            FlowType::DpoAir => "emissions to air",
            FlowType::DpoWater => "emissions to water",
            FlowType::DpoSoil => "emissions to soil and dissipative flows",
            FlowType::DpoLandfill => "waste landfilled",
            FlowType::Dpo => "domestic processed output",
            FlowType::BiIn => "balancing items (input side)",
            FlowType::BiOut => "balancing items (output side)",
            FlowType::Nas => "net addition to stock",
            FlowType::Recycling => "recycling (memo item)",
        }
    }
}

coded_enum! {
    /// Product family: the six AFME families of the Bourgogne study, plus waste and other, plus `all`
    /// for a row that totals every family. Mapping to Eurostat MF1–MF6 and aliases (`wood`,
    /// `industrial_minerals`, …) live in the family table (`knowledge/afme_families.toml`).
    Family as AfmeFamily {
        AgriculturalFood => "agricultural_food",
        OresMetallurgical => "ores_metallurgical",
        ConstructionMaterials => "construction_materials",
        FertilisersChemicals => "fertilisers_chemicals",
        ManufacturedProducts => "manufactured_products",
        FossilFuels => "fossil_fuels",
        Waste => "waste",
        Other => "other",
        /// A total over families.
        All => "all",
    }
}

impl Family {
    /// Every family except `all`.
    pub const SPECIFIC: &'static [Family] = &[
        Family::AgriculturalFood,
        Family::OresMetallurgical,
        Family::ConstructionMaterials,
        Family::FertilisersChemicals,
        Family::ManufacturedProducts,
        Family::FossilFuels,
        Family::Waste,
        Family::Other,
    ];

    /// Case-insensitive parse of the canonical spelling. Aliases are resolved by
    /// [`crate::afme::families::FamilyTable::resolve`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_exact(&text.trim().to_ascii_lowercase())
    }

    pub fn is_all(self) -> bool {
        self == Family::All
    }
}

coded_enum! {
    /// Unit of an account row. Mass and energy are never added together.
    Unit as AfmeUnit {
        Tonne => "t",
        Megawatthour => "MWh",
    }
}

impl Unit {
    pub fn is_energy(self) -> bool {
        self == Unit::Megawatthour
    }

    /// Accepts `t`, `MWh` and the scaled spellings `kt` (×1000 t) and `GWh` (×1000 MWh); returns the
    /// unit and the factor to convert a value into it.
    pub fn parse_scaled(text: &str) -> Option<(Unit, f64)> {
        match text.trim() {
            "t" | "T" | "tonnes" | "tonne" => Some((Unit::Tonne, 1.0)),
            "kt" | "kT" => Some((Unit::Tonne, 1_000.0)),
            "MWh" | "mwh" | "MWH" => Some((Unit::Megawatthour, 1.0)),
            "GWh" | "gwh" | "GWH" => Some((Unit::Megawatthour, 1_000.0)),
            _ => None,
        }
    }
}

/// Trade partner of an IMP or EXP row.
///
/// On the wire a plain string: `rest_of_france`, `abroad`, or a territory code (`21`, `27-BOURGOGNE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Partner {
    RestOfFrance,
    Abroad,
    Territory(String),
}

impl Partner {
    pub fn as_str(&self) -> &str {
        match self {
            Partner::RestOfFrance => "rest_of_france",
            Partner::Abroad => "abroad",
            Partner::Territory(code) => code,
        }
    }

    /// Parses a partner cell. Anything that is not `rest_of_france`/`abroad` must look like a
    /// territory code (letters, digits, `-`, `_`; at most 40 characters); whether the territory exists
    /// is for the caller to check.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        match t.to_ascii_lowercase().as_str() {
            "rest_of_france" | "rest-of-france" | "reste_de_la_france" => {
                return Ok(Partner::RestOfFrance);
            }
            "abroad" | "etranger" | "étranger" => return Ok(Partner::Abroad),
            _ => {}
        }
        if t.is_empty() {
            return Err("empty partner".into());
        }
        if t.len() > 40
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "partner '{t}' is neither rest_of_france, abroad nor a territory code"
            ));
        }
        Ok(Partner::Territory(t.to_string()))
    }

    pub fn territory_code(&self) -> Option<&str> {
        match self {
            Partner::Territory(code) => Some(code),
            _ => None,
        }
    }
}

impl std::fmt::Display for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Partner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Partner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Partner::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Partner {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Trade partner: `rest_of_france`, `abroad`, or a territory code",
            ))
            .examples(["rest_of_france", "abroad", "71"])
            .into()
    }
}

impl utoipa::ToSchema for Partner {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("AfmePartner")
    }
}

/// Uncertainty of a value: an absolute standard deviation (same unit as the value) or a percentage
/// of the value (read as a relative standard deviation). CSV spelling: `1200` or `5%`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AfmeUncertainty)]
pub enum Uncertainty {
    Sd(f64),
    Percent(f64),
}

impl Uncertainty {
    /// The standard deviation for a given value.
    pub fn sd(&self, value: f64) -> f64 {
        match *self {
            Uncertainty::Sd(sd) => sd,
            Uncertainty::Percent(p) => value.abs() * p / 100.0,
        }
    }

    /// Parses `5%`, `5 %` (percent) or `1200` (standard deviation); both must be finite and ≥ 0.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (number, percent) = match t.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (t, false),
        };
        let v = parse_number(number)
            .ok_or_else(|| format!("uncertainty '{t}' is not a number or a percentage"))?;
        if v < 0.0 {
            return Err(format!("uncertainty '{t}' is negative"));
        }
        Ok(if percent {
            Uncertainty::Percent(v)
        } else {
            Uncertainty::Sd(v)
        })
    }

    /// Multiplies an absolute standard deviation (unit conversion); percentages are unchanged.
    pub fn scaled(self, factor: f64) -> Self {
        match self {
            Uncertainty::Sd(sd) => Uncertainty::Sd(sd * factor),
            p => p,
        }
    }
}

impl std::fmt::Display for Uncertainty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uncertainty::Sd(sd) => write!(f, "{sd}"),
            Uncertainty::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Parses a number as people type it in French or English spreadsheets: `27800`, `27 800`,
/// `27800.5`, `27800,5`. Returns `None` unless the result is finite.
pub fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '_'))
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    let normalised = if cleaned.contains(',') && !cleaned.contains('.') {
        cleaned.replace(',', ".")
    } else {
        cleaned
    };
    normalised.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// One line of a territorial account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeAccountRow)]
pub struct AccountRow {
    /// Territory code (INSEE code of a région/département/EPCI/commune, or a custom zone code).
    pub territory: String,
    pub year: i32,
    pub flow: FlowType,
    pub family: Family,
    /// Only for IMP and EXP; `None` means "all partners" (or unknown).
    pub partner: Option<Partner>,
    /// Non-negative amount in `unit`.
    pub value: f64,
    pub unit: Unit,
    pub uncertainty: Option<Uncertainty>,
    pub source: Option<String>,
    pub note: Option<String>,
}

impl AccountRow {
    /// A mass row without partner, uncertainty, source or note: handy for tests and synthesised
    /// totals.
    pub fn new(territory: &str, year: i32, flow: FlowType, family: Family, value_t: f64) -> Self {
        Self {
            territory: territory.to_string(),
            year,
            flow,
            family,
            partner: None,
            value: value_t,
            unit: Unit::Tonne,
            uncertainty: None,
            source: None,
            note: None,
        }
    }

    pub fn with_partner(mut self, partner: Partner) -> Self {
        self.partner = Some(partner);
        self
    }

    pub fn with_uncertainty(mut self, uncertainty: Uncertainty) -> Self {
        self.uncertainty = Some(uncertainty);
        self
    }

    pub fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }

    /// Absolute standard deviation, if an uncertainty is given.
    pub fn sd(&self) -> Option<f64> {
        self.uncertainty.map(|u| u.sd(self.value))
    }

    /// The identity of a row: two rows with the same key (in any unit) may not coexist.
    pub fn key(&self) -> RowKey {
        RowKey {
            territory: self.territory.clone(),
            year: self.year,
            flow: self.flow,
            family: self.family,
            partner: self.partner.clone(),
        }
    }
}

/// Identity of a row: territory, year, flow, family, partner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub territory: String,
    pub year: i32,
    pub flow: FlowType,
    pub family: Family,
    pub partner: Option<Partner>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_type_spellings_round_trip() {
        for f in FlowType::ALL {
            assert_eq!(FlowType::parse(f.as_str()), Some(*f));
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            let back: FlowType = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *f);
        }
        assert_eq!(FlowType::parse(" bi_in "), Some(FlowType::BiIn));
        assert_eq!(FlowType::parse("DMI"), None);
    }

    #[test]
    fn flow_sides() {
        assert!(FlowType::De.is_input() && FlowType::BiIn.is_input());
        assert!(FlowType::DpoLandfill.is_output() && FlowType::Nas.is_output());
        assert!(!FlowType::Recycling.is_input() && !FlowType::Recycling.is_output());
        assert!(!FlowType::Ude.is_input() && !FlowType::Ude.is_output());
        assert!(FlowType::Dpo.is_dpo() && !FlowType::Dpo.is_dpo_part());
        assert!(FlowType::Imp.allows_energy() && !FlowType::Nas.allows_energy());
    }

    #[test]
    fn family_spellings() {
        assert_eq!(
            Family::parse("Construction_Materials"),
            Some(Family::ConstructionMaterials)
        );
        assert_eq!(Family::parse("all"), Some(Family::All));
        assert_eq!(
            Family::parse("wood"),
            None,
            "aliases are the family table's job"
        );
        assert_eq!(Family::SPECIFIC.len(), Family::ALL.len() - 1);
        assert_eq!(
            serde_json::to_string(&Family::FossilFuels).unwrap(),
            "\"fossil_fuels\""
        );
    }

    #[test]
    fn partner_parse_and_serde() {
        assert_eq!(Partner::parse("rest_of_france"), Ok(Partner::RestOfFrance));
        assert_eq!(Partner::parse("Abroad"), Ok(Partner::Abroad));
        assert_eq!(Partner::parse("71"), Ok(Partner::Territory("71".into())));
        assert!(Partner::parse("71; DROP").is_err());
        assert!(Partner::parse("").is_err());
        let json = serde_json::to_string(&Partner::Territory("2A".into())).unwrap();
        assert_eq!(json, "\"2A\"");
        let back: Partner = serde_json::from_str("\"abroad\"").unwrap();
        assert_eq!(back, Partner::Abroad);
    }

    #[test]
    fn uncertainty_parse_and_sd() {
        assert_eq!(Uncertainty::parse("5%"), Ok(Uncertainty::Percent(5.0)));
        assert_eq!(Uncertainty::parse(" 2,5 % "), Ok(Uncertainty::Percent(2.5)));
        assert_eq!(Uncertainty::parse("1200"), Ok(Uncertainty::Sd(1200.0)));
        assert!(Uncertainty::parse("-3").is_err());
        assert!(Uncertainty::parse("abc").is_err());
        assert_eq!(Uncertainty::Percent(5.0).sd(2000.0), 100.0);
        assert_eq!(Uncertainty::Sd(7.0).sd(2000.0), 7.0);
        assert_eq!(Uncertainty::Sd(2.0).scaled(1000.0), Uncertainty::Sd(2000.0));
        assert_eq!(Uncertainty::Percent(5.0).to_string(), "5%");
        let json = serde_json::to_string(&Uncertainty::Percent(5.0)).unwrap();
        assert_eq!(json, r#"{"percent":5.0}"#);
    }

    #[test]
    fn numbers_as_typed() {
        assert_eq!(parse_number("27 800"), Some(27800.0));
        assert_eq!(parse_number("27800,5"), Some(27800.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn scaled_units() {
        assert_eq!(Unit::parse_scaled("kt"), Some((Unit::Tonne, 1000.0)));
        assert_eq!(Unit::parse_scaled("MWh"), Some((Unit::Megawatthour, 1.0)));
        assert_eq!(Unit::parse_scaled("m3"), None);
    }

    #[test]
    fn row_serde_round_trip() {
        let row = AccountRow::new("21", 2010, FlowType::Imp, Family::FossilFuels, 1500.0)
            .with_partner(Partner::Abroad)
            .with_uncertainty(Uncertainty::Percent(10.0));
        let json = serde_json::to_string(&row).unwrap();
        let back: AccountRow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, row);
        assert_eq!(row.sd(), Some(150.0));
    }
}
