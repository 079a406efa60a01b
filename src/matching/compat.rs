//! Compatibility of an offer with a need, strongest first (DESIGN §4.2):
//!
//! 1. **code** — same EWC code, or the need accepts the offer's code (1.0);
//! 2. **same class** (0.9);
//! 3. **parent class** — one class is an ancestor of the other (0.8 when the need is the more general,
//!    0.7 when the offer is, minus 0.05 per extra level); heat of another temperature band also lands
//!    here (0.8), the temperature rule deciding;
//! 4. **pathway** — the receiver's activity is documented as a user of that code / subchapter / class
//!    (0.46–0.69 by level, precision and evidence);
//! 5. **profile** — the receiver's sector profile lists it as an input (0.36–0.44).
//!
//! Levels 4–5 need the two classes to be in the same category (material, energy, …). Hard rules, checked
//! first: base units must agree when both are known (t never meets MWh); a hazardous offer only goes to a
//! need that accepts its exact code; heat needs `T_offer ≥ T_need + ΔT` (with unknown temperatures, the
//! offer's band must be at least the need's).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::knowledge::{NaceKey, ReceiverRule};
use super::snapshot::IndexedResource;
use super::taxonomy::{Relation, Taxonomy};
use crate::domain::resource::Category;

/// Level of compatibility, strongest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FitLevel {
    /// Same EWC code, or the need accepts the offer's code.
    Code,
    SameClass,
    /// One class is an ancestor of the other (or another heat band).
    ParentClass,
    /// Documented reuse pathway towards the receiver's activity.
    Pathway,
    /// The receiver's sector profile lists the resource as an input.
    Profile,
}

impl FitLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FitLevel::Code => "code",
            FitLevel::SameClass => "same_class",
            FitLevel::ParentClass => "parent_class",
            FitLevel::Pathway => "pathway",
            FitLevel::Profile => "profile",
        }
    }
}

/// Compatibility of an offer with a need: a level and a value in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Fit {
    pub level: FitLevel,
    pub value: f64,
}

/// Why a pair is not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Offer and need belong to the same actor.
    SameActor,
    /// Base units differ (e.g. t and MWh).
    BaseUnit,
    /// Hazardous offer and the need does not accept its exact code.
    Hazardous,
    /// Heat too cold for the need.
    Temperature,
    /// Energy or water available in none of the months it is needed.
    Season,
    /// Nothing relates the two resources.
    Class,
    /// Farther than the smallest of the maximum distances.
    Distance,
}

/// Whether `need` accepts the offer's exact EWC code (same code or listed in its accepted codes).
pub(crate) fn accepts_code(offer: &IndexedResource, need: &IndexedResource) -> bool {
    offer
        .ewc
        .is_some_and(|c| need.ewc == Some(c) || need.accepted.contains(&c))
}

/// Heat rule; returns the temperature margin above `T_need + ΔT` when both temperatures are known.
pub(crate) fn heat_rule(
    tax: &Taxonomy,
    offer: &IndexedResource,
    need: &IndexedResource,
    delta_t: f64,
) -> Result<Option<f64>, Rejection> {
    if !(tax.is_heat(offer.class) && tax.is_heat(need.class)) {
        return Ok(None);
    }
    match (offer.temperature_c, need.temperature_c) {
        (Some(to), Some(tn)) => {
            let margin = to - (tn + delta_t);
            if margin >= 0.0 {
                Ok(Some(margin))
            } else {
                Err(Rejection::Temperature)
            }
        }
        _ => match (tax.heat_band(offer.class), tax.heat_band(need.class)) {
            (Some(bo), Some(bn)) if bo < bn => Err(Rejection::Temperature),
            _ => Ok(None),
        },
    }
}

/// Energy and water cannot be stored between seasons: they need at least one common month.
pub(crate) fn season_rule(
    tax: &Taxonomy,
    offer: &IndexedResource,
    need: &IndexedResource,
) -> Result<(), Rejection> {
    let perishable = matches!(
        tax.class(offer.class).category,
        Category::Energy | Category::Water
    );
    if perishable && offer.months & need.months == 0 {
        Err(Rejection::Season)
    } else {
        Ok(())
    }
}

/// The best receiver rule that applies to an activity.
pub(crate) fn best_rule(
    rules: &[ReceiverRule],
    receiver: Option<NaceKey>,
) -> Option<&ReceiverRule> {
    let nace = receiver?;
    // Rules are sorted best first.
    rules.iter().find(|r| r.key.contains(nace))
}

/// Compatibility of `offer` with `need`. `rules` are the offer's receiver rules and `receiver` the
/// need's actor activity (both only used for the pathway and profile levels).
pub fn fit(
    tax: &Taxonomy,
    offer: &IndexedResource,
    need: &IndexedResource,
    receiver: Option<NaceKey>,
    rules: &[ReceiverRule],
    delta_t: f64,
) -> Result<Fit, Rejection> {
    if let (Some(a), Some(b)) = (offer.base_unit, need.base_unit)
        && a != b
    {
        return Err(Rejection::BaseUnit);
    }
    let exact = accepts_code(offer, need);
    if offer.hazardous && !exact {
        return Err(Rejection::Hazardous);
    }
    heat_rule(tax, offer, need, delta_t)?;
    season_rule(tax, offer, need)?;
    if exact {
        return Ok(Fit {
            level: FitLevel::Code,
            value: 1.0,
        });
    }
    let step = |n: u8| 0.05 * f64::from(n.saturating_sub(1));
    match tax.relation(offer.class, need.class) {
        Some(Relation::Same) => Ok(Fit {
            level: FitLevel::SameClass,
            value: 0.9,
        }),
        Some(Relation::Ancestor(n)) => Ok(Fit {
            level: FitLevel::ParentClass,
            value: (0.8 - step(n)).max(0.6),
        }),
        Some(Relation::Descendant(n)) => Ok(Fit {
            level: FitLevel::ParentClass,
            value: (0.7 - step(n)).max(0.55),
        }),
        Some(Relation::HeatCascade) => Ok(Fit {
            level: FitLevel::ParentClass,
            value: 0.8,
        }),
        None => {
            if tax.class(offer.class).category != tax.class(need.class).category {
                return Err(Rejection::Class);
            }
            best_rule(rules, receiver)
                .map(|r| Fit {
                    level: r.level,
                    value: f64::from(r.value),
                })
                .ok_or(Rejection::Class)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resource::{ALL_MONTHS, BaseUnit, ResourceKind};
    use crate::matching::knowledge::Knowledge;
    use crate::matching::taxonomy::EwcCode;

    fn res(tax: &Taxonomy, kind: ResourceKind, class: &str) -> IndexedResource {
        IndexedResource {
            id: uuid::Uuid::nil(),
            actor: 0,
            kind,
            class: tax.id(class).expect("class"),
            ewc: None,
            accepted: Box::new([]),
            hazardous: false,
            yearly_quantity: None,
            base_unit: None,
            months: ALL_MONTHS,
            temperature_c: None,
            max_distance_km: None,
            label: class.into(),
        }
    }

    #[test]
    fn levels_in_order() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let k = Knowledge::builtin(&t).expect("knowledge");
        let mut ash = res(&t, ResourceKind::Offer, "material/mineral/ash");
        ash.ewc = EwcCode::parse("100102");
        let mut need = res(&t, ResourceKind::Need, "material/mineral/ash");
        let f = |o: &IndexedResource, n: &IndexedResource, nace: Option<&str>| {
            let rules = k.receiver_rules(&t, o.ewc, o.class);
            fit(&t, o, n, nace.and_then(NaceKey::parse), &rules, 10.0)
        };
        assert_eq!(
            f(&ash, &need, None).map(|f| f.level),
            Ok(FitLevel::SameClass)
        );
        need.accepted = vec![EwcCode::parse("100102").expect("code")].into_boxed_slice();
        assert_eq!(f(&ash, &need, None).map(|f| f.level), Ok(FitLevel::Code));
        let general = res(&t, ResourceKind::Need, "material/mineral");
        assert_eq!(
            f(&ash, &general, None).map(|f| f.level),
            Ok(FitLevel::ParentClass)
        );
        let aggregates = res(&t, ResourceKind::Need, "material/mineral/aggregates");
        assert_eq!(f(&ash, &aggregates, None), Err(Rejection::Class));
        // A cement works (profile lists 10 01 02 as input) needing aggregates: profile level.
        let p = f(&ash, &aggregates, Some("23.51Z")).expect("profile fit");
        assert_eq!(p.level, FitLevel::Profile);
        assert!(p.value < 0.6);
        // Different category never matches through a profile.
        let heat = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        assert_eq!(f(&ash, &heat, Some("23.51Z")), Err(Rejection::Class));
    }

    #[test]
    fn hard_rules() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let mut oil = res(&t, ResourceKind::Offer, "material/oil/mineral_oil");
        oil.ewc = EwcCode::parse("130205");
        oil.hazardous = true;
        let mut need = res(&t, ResourceKind::Need, "material/oil/mineral_oil");
        assert_eq!(
            fit(&t, &oil, &need, None, &[], 10.0),
            Err(Rejection::Hazardous)
        );
        need.accepted = vec![EwcCode::parse("130205").expect("code")].into_boxed_slice();
        assert_eq!(
            fit(&t, &oil, &need, None, &[], 10.0).map(|f| f.level),
            Ok(FitLevel::Code)
        );

        let mut heat = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        heat.temperature_c = Some(65.0);
        let mut warm = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        warm.temperature_c = Some(50.0);
        assert!(fit(&t, &heat, &warm, None, &[], 10.0).is_ok());
        warm.temperature_c = Some(60.0);
        assert_eq!(
            fit(&t, &heat, &warm, None, &[], 10.0),
            Err(Rejection::Temperature)
        );
        // Steam serves a low-temperature need; low-temperature heat does not serve a steam need.
        let steam = res(&t, ResourceKind::Offer, "energy/heat/high_temperature");
        let low_need = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        assert_eq!(
            fit(&t, &steam, &low_need, None, &[], 10.0).map(|f| f.level),
            Ok(FitLevel::ParentClass)
        );
        let low_offer = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        let steam_need = res(&t, ResourceKind::Need, "energy/heat/high_temperature");
        assert_eq!(
            fit(&t, &low_offer, &steam_need, None, &[], 10.0),
            Err(Rejection::Temperature)
        );

        let mut tonnes = res(&t, ResourceKind::Offer, "material/biomass/wood");
        tonnes.base_unit = Some(BaseUnit::Tonne);
        let mut mwh = res(&t, ResourceKind::Need, "material/biomass/wood");
        mwh.base_unit = Some(BaseUnit::Megawatthour);
        assert_eq!(
            fit(&t, &tonnes, &mwh, None, &[], 10.0),
            Err(Rejection::BaseUnit)
        );

        let mut summer = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        summer.months = 0b0000_1110_0000;
        let mut winter = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        winter.months = 0b1000_0000_0011;
        assert_eq!(
            fit(&t, &summer, &winter, None, &[], 10.0),
            Err(Rejection::Season)
        );
    }
}
