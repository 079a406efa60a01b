//! Resources: one line of an actor's inventory, an offer or a need.
//!
//! Quantities are kept as declared (value, unit, period) and normalised to a yearly amount in a base
//! unit (t, m3, MWh, or unit) so that offers and needs can be compared.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire/database spelling; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
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

text_enum! {
    /// Whether a resource is available (offer) or wanted (need).
    ResourceKind { Offer => "offer", Need => "need" }
}

text_enum! {
    /// Broad category, the first level of the resource-class taxonomy.
    Category {
        Material => "material",
        Energy => "energy",
        Water => "water",
        Service => "service",
        Equipment => "equipment",
    }
}

text_enum! {
    /// Unit a quantity is declared in.
    Unit {
        Tonne => "t",
        Kilogram => "kg",
        CubicMetre => "m3",
        Litre => "L",
        Megawatthour => "MWh",
        Kilowatthour => "kWh",
        Gigajoule => "GJ",
        Piece => "unit",
    }
}

text_enum! {
    /// Period a declared quantity refers to.
    Period { Day => "day", Week => "week", Month => "month", Year => "year" }
}

text_enum! {
    /// Base unit of a normalised yearly amount: mass, volume, energy, or a count.
    BaseUnit { Tonne => "t", CubicMetre => "m3", Megawatthour => "MWh", Piece => "unit" }
}

text_enum! {
    /// When a resource is available (offer) or wanted (need).
    AvailabilityKind { Continuous => "continuous", Seasonal => "seasonal", OneOff => "one_off" }
}

text_enum! {
    /// Physical state of the resource.
    PhysicalState {
        Solid => "solid",
        Liquid => "liquid",
        Gas => "gas",
        Sludge => "sludge",
        Powder => "powder",
        Mixed => "mixed",
        NotApplicable => "not_applicable",
    }
}

impl Unit {
    /// The base unit this unit normalises to, and the factor to get there.
    pub fn to_base(self) -> (BaseUnit, f64) {
        match self {
            Unit::Tonne => (BaseUnit::Tonne, 1.0),
            Unit::Kilogram => (BaseUnit::Tonne, 1e-3),
            Unit::CubicMetre => (BaseUnit::CubicMetre, 1.0),
            Unit::Litre => (BaseUnit::CubicMetre, 1e-3),
            Unit::Megawatthour => (BaseUnit::Megawatthour, 1.0),
            Unit::Kilowatthour => (BaseUnit::Megawatthour, 1e-3),
            // 1 GJ = 1e9 J; 1 MWh = 3.6e9 J.
            Unit::Gigajoule => (BaseUnit::Megawatthour, 1.0 / 3.6),
            Unit::Piece => (BaseUnit::Piece, 1.0),
        }
    }
}

impl Period {
    /// How many such periods in a year (365 days, 52 weeks, 12 months).
    pub fn per_year(self) -> f64 {
        match self {
            Period::Day => 365.0,
            Period::Week => 52.0,
            Period::Month => 12.0,
            Period::Year => 1.0,
        }
    }
}

/// The largest yearly amount one declaration may carry, in its base unit. The largest single
/// industrial flows in France are of the order of 10^9 (a nuclear plant's cooling water in m3, a
/// steelworks' tonnes are 10^7); ten times that leaves room for any real site, and keeps every
/// derived figure (transport t·km, CO2e, MWh) finite, so impacts never become `null`.
pub const MAX_YEARLY_AMOUNT: f64 = 1e10;

/// A quantity normalised to a yearly amount in its base unit.
pub fn yearly_amount(value: f64, unit: Unit, period: Period) -> (f64, BaseUnit) {
    let (base, factor) = unit.to_base();
    (value * factor * period.per_year(), base)
}

/// Months mask (bit 0 = January) of a seasonal availability; all twelve for continuous.
pub const ALL_MONTHS: u16 = 0x0FFF;

pub fn months_mask(months: &[u8]) -> u16 {
    months
        .iter()
        .filter(|m| (1..=12).contains(*m))
        .fold(0u16, |mask, m| mask | (1 << (m - 1)))
}

/// A declared quantity: value per period, in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quantity {
    pub value: f64,
    pub unit: Unit,
    pub period: Period,
}

/// When a resource is available or wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    pub kind: AvailabilityKind,
    /// Months 1–12, for `seasonal`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<u8>,
    /// First and last day, for `one_off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::NaiveDate>,
}

impl Default for Availability {
    fn default() -> Self {
        Availability {
            kind: AvailabilityKind::Continuous,
            months: Vec::new(),
            from: None,
            until: None,
        }
    }
}

/// A resource as a client creates or replaces it. The hazardous flag is derived from the EWC code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceInput {
    pub kind: ResourceKind,
    pub category: Category,
    /// Resource class (`material/biomass/wood`); derived from the EWC code when absent.
    #[serde(default)]
    pub class: Option<String>,
    pub label: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Six-digit List of Waste code, spaces and `*` allowed (`10 01 02`).
    #[serde(default)]
    pub ewc_code: Option<String>,
    /// For needs: the EWC codes this receiver accepts (hazardous offers go only to receivers
    /// that accept their code).
    #[serde(default)]
    pub accepted_ewc: Vec<String>,
    #[serde(default)]
    pub quantity: Option<Quantity>,
    #[serde(default)]
    pub availability: Option<Availability>,
    /// Temperature in °C, for heat.
    #[serde(default)]
    pub temperature_c: Option<f64>,
    /// Farthest the resource may travel, in km.
    #[serde(default)]
    pub max_distance_km: Option<f64>,
    #[serde(default)]
    pub physical_state: Option<PhysicalState>,
}

/// A validated resource, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidResource {
    pub kind: ResourceKind,
    pub category: Category,
    pub class: String,
    pub label: String,
    pub description: Option<String>,
    pub ewc_code: Option<String>,
    pub hazardous: bool,
    pub accepted_ewc: Vec<String>,
    pub quantity: Option<Quantity>,
    pub yearly: Option<(f64, BaseUnit)>,
    pub availability: Availability,
    pub months: u16,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
    pub physical_state: Option<PhysicalState>,
}

/// Decides a resource's class: from the client's class (checked) or from its EWC code and category.
pub trait Classifier {
    /// `Err` explains why a client-given class is refused.
    fn classify(
        &self,
        client: Option<&str>,
        ewc_code: Option<&str>,
        category: Category,
    ) -> Result<String, String>;
}

/// Classifies by the client's class when given, else by the category alone (used where no
/// taxonomy is loaded).
pub struct CategoryClassifier;

impl Classifier for CategoryClassifier {
    fn classify(
        &self,
        client: Option<&str>,
        _ewc_code: Option<&str>,
        category: Category,
    ) -> Result<String, String> {
        match client.map(str::trim).filter(|c| !c.is_empty()) {
            Some(class) if class.split('/').next() == Some(category.as_str()) => {
                Ok(class.to_owned())
            }
            Some(class) => Err(format!("`{class}` is not a class of category {category}")),
            None => Ok(category.as_str().to_owned()),
        }
    }
}

impl ResourceInput {
    pub fn validate(
        &self,
        reference: &crate::reference::Reference,
        classifier: &dyn Classifier,
    ) -> Result<ValidResource, Vec<super::validation::FieldError>> {
        use super::actor::{MAX_TEXT, clean_text};
        let mut v = super::validation::Violations::new();
        let label = self.label.trim().to_owned();
        if label.is_empty() {
            v.add("label", "must not be empty");
        } else if label.chars().count() > 500 {
            v.add("label", "must be at most 500 characters");
        } else if let Some(problem) = super::validation::line_problem(&label) {
            v.add("label", problem);
        }
        let description = clean_text(&mut v, "description", self.description.as_deref(), MAX_TEXT);
        let ewc = match self
            .ewc_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(code) => match reference.ewc.get(code) {
                Some(entry) => Some(entry),
                None => {
                    v.add("ewc_code", format!("`{code}` is not a List of Waste code"));
                    None
                }
            },
        };
        let mut accepted_ewc = Vec::new();
        for (i, code) in self.accepted_ewc.iter().enumerate() {
            match reference.ewc.get(code) {
                Some(entry) => accepted_ewc.push(entry.code.clone()),
                None => v.add(
                    format!("accepted_ewc[{i}]"),
                    format!("`{code}` is not a List of Waste code"),
                ),
            }
        }
        let class = match classifier.classify(
            self.class.as_deref(),
            ewc.map(|e| e.code.as_str()),
            self.category,
        ) {
            Ok(class) => class,
            Err(message) => {
                v.add("class", message);
                String::new()
            }
        };
        if let Some(q) = &self.quantity
            && (!q.value.is_finite() || q.value <= 0.0)
        {
            v.add("quantity.value", "must be a positive number");
        }
        let availability = self.availability.clone().unwrap_or_default();
        let months = match availability.kind {
            AvailabilityKind::Continuous => {
                if !availability.months.is_empty()
                    || availability.from.is_some()
                    || availability.until.is_some()
                {
                    v.add(
                        "availability",
                        "continuous availability takes no months or dates",
                    );
                }
                ALL_MONTHS
            }
            AvailabilityKind::Seasonal => {
                if availability.months.is_empty() {
                    v.add(
                        "availability.months",
                        "seasonal availability needs at least one month",
                    );
                }
                if let Some(bad) = availability.months.iter().find(|m| !(1..=12).contains(*m)) {
                    v.add(
                        "availability.months",
                        format!("month {bad} is not between 1 and 12"),
                    );
                }
                months_mask(&availability.months)
            }
            AvailabilityKind::OneOff => match (availability.from, availability.until) {
                (Some(from), Some(until)) if from <= until => months_between(from, until),
                (Some(_), Some(_)) => {
                    v.add("availability.until", "must not be before availability.from");
                    0
                }
                _ => {
                    v.add(
                        "availability.from",
                        "one-off availability needs from and until dates",
                    );
                    0
                }
            },
        };
        if let Some(t) = self.temperature_c
            && (!t.is_finite() || !(-273.15..=2000.0).contains(&t))
        {
            v.add("temperature_c", "must be between -273.15 and 2000 °C");
        }
        if let Some(d) = self.max_distance_km
            && (!d.is_finite() || d <= 0.0 || d > 20_000.0)
        {
            v.add(
                "max_distance_km",
                "must be a positive distance up to 20000 km",
            );
        }
        let yearly = self
            .quantity
            .map(|q| yearly_amount(q.value, q.unit, q.period));
        if yearly.is_some_and(|(amount, _)| !amount.is_finite() || amount > MAX_YEARLY_AMOUNT) {
            v.add(
                "quantity.value",
                format!(
                    "is too large once counted per year (at most {MAX_YEARLY_AMOUNT:e} t, m3, MWh or units a year)"
                ),
            );
        }
        v.finish(ValidResource {
            kind: self.kind,
            category: self.category,
            class,
            label,
            description,
            ewc_code: ewc.map(|e| e.code.clone()),
            hazardous: ewc.is_some_and(|e| e.hazardous),
            accepted_ewc,
            quantity: self.quantity,
            yearly,
            availability,
            months,
            temperature_c: self.temperature_c,
            max_distance_km: self.max_distance_km,
            physical_state: self.physical_state,
        })
    }
}

/// Months touched by a date range (a range over a year or more covers all months).
fn months_between(from: chrono::NaiveDate, until: chrono::NaiveDate) -> u16 {
    use chrono::Datelike;
    let span = (until.year() - from.year()) * 12 + until.month() as i32 - from.month() as i32;
    if span >= 11 {
        return ALL_MONTHS;
    }
    (0..=span).fold(0u16, |mask, k| {
        mask | (1 << ((from.month0() as i32 + k) % 12))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_yearly_base_units() {
        assert_eq!(
            yearly_amount(2.0, Unit::Tonne, Period::Week),
            (104.0, BaseUnit::Tonne)
        );
        let (kg_per_day, base) = yearly_amount(500.0, Unit::Kilogram, Period::Day);
        assert_eq!(base, BaseUnit::Tonne);
        assert!((kg_per_day - 182.5).abs() < 1e-9);
        let (gj, base) = yearly_amount(36.0, Unit::Gigajoule, Period::Month);
        assert_eq!(base, BaseUnit::Megawatthour);
        assert!((gj - 120.0).abs() < 1e-9);
        assert_eq!(
            yearly_amount(1000.0, Unit::Litre, Period::Year).1,
            BaseUnit::CubicMetre
        );
    }

    #[test]
    fn parses_only_known_spellings() {
        assert_eq!(Unit::parse("m3"), Some(Unit::CubicMetre));
        assert_eq!(Unit::parse("M3"), None);
        assert_eq!(ResourceKind::parse("offer"), Some(ResourceKind::Offer));
        assert!(Category::expected().contains("equipment"));
    }

    #[test]
    fn wire_spelling_is_the_text_spelling() {
        for unit in Unit::ALL {
            let json = serde_json::to_string(unit).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", unit.as_str()));
            assert_eq!(serde_json::from_str::<Unit>(&json).ok(), Some(*unit));
        }
        assert_eq!(
            serde_json::to_string(&BaseUnit::CubicMetre).unwrap_or_default(),
            "\"m3\""
        );
        assert_eq!(
            serde_json::to_string(&AvailabilityKind::OneOff).unwrap_or_default(),
            "\"one_off\""
        );
    }

    #[test]
    fn months_mask_ignores_out_of_range() {
        assert_eq!(months_mask(&[1, 12, 13, 0]), 0b1000_0000_0001);
    }
}
