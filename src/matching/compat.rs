//! Compatibility of an offer with a declared need, strongest first (DESIGN §4.2):
//!
//! 1. **code** — same EWC code, or the need accepts the offer's code (1.0);
//! 2. **same class** (0.9);
//! 3. **parent class** — one class is an ancestor of the other (0.8 when the need is the more general,
//!    0.7 when the offer is, minus 0.05 per extra level); heat of another temperature band also lands
//!    here (0.8), the temperature rule deciding.
//!
//! Nothing else relates an offer to a declared need: what the receiver's *activity* is known to take
//! (the receiver model) is evidence about the actor, not about that need, so it produces a latent
//! synergy with the actor ([`FitLevel::Pathway`], [`FitLevel::Profile`], [`FitLevel::Prior`]), never a
//! match with an unrelated need. Hard rules, checked first: base units must agree when both are known
//! (t never meets MWh); a hazardous offer only goes to a need that accepts its exact code; heat needs
//! `T_offer ≥ T_need + ΔT` (with unknown temperatures, the offer's band must be at least the need's).

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
    /// Latent: documented exchanges towards the receiver's activity.
    Pathway,
    /// Latent: sector profiles or statistics list the resource among the activity's inputs.
    Profile,
    /// Latent: the activity often takes secondary resources of this category, nothing more specific.
    Prior,
}

impl FitLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FitLevel::Code => "code",
            FitLevel::SameClass => "same_class",
            FitLevel::ParentClass => "parent_class",
            FitLevel::Pathway => "pathway",
            FitLevel::Profile => "profile",
            FitLevel::Prior => "prior",
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

/// Fit by the class tree alone (no hard rule): same class, ancestor, descendant, heat cascade.
pub(crate) fn class_fit(
    tax: &Taxonomy,
    offer: &IndexedResource,
    need: &IndexedResource,
) -> Option<Fit> {
    let step = |n: u8| 0.05 * f64::from(n.saturating_sub(1));
    match tax.relation(offer.class, need.class) {
        Some(Relation::Same) => Some(Fit {
            level: FitLevel::SameClass,
            value: 0.9,
        }),
        Some(Relation::Ancestor(n)) => Some(Fit {
            level: FitLevel::ParentClass,
            value: (0.8 - step(n)).max(0.6),
        }),
        Some(Relation::Descendant(n)) => Some(Fit {
            level: FitLevel::ParentClass,
            value: (0.7 - step(n)).max(0.55),
        }),
        Some(Relation::HeatCascade) => Some(Fit {
            level: FitLevel::ParentClass,
            value: 0.8,
        }),
        None => None,
    }
}

/// Second-law efficiency of an industrial heat pump: the share of the Carnot COP reached in practice
/// (0.4–0.6 for industrial vapour-compression units; Arpagaus et al., "High temperature heat pumps:
/// market overview, state of the art, research status, refrigerants, and application potentials",
/// Energy 152, 2018; IEA HPT Annex 35, 2014).
pub const HEAT_PUMP_EFFICIENCY: f64 = 0.5;
/// Largest temperature lift proposed (K) and hottest delivery (°C) of commercial industrial heat pumps
/// (same sources).
pub const HEAT_PUMP_MAX_LIFT_K: f64 = 60.0;
pub const HEAT_PUMP_MAX_DELIVERY_C: f64 = 150.0;
/// Quality component of heat served through a heat pump: below any direct use (0.5 and up).
pub const HEAT_PUMP_QUALITY: f64 = 0.35;

/// Heat raised by a heat pump from a source too cold for the need.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct HeatPump {
    /// Temperature lift, from the source to the need plus the exchanger's ΔT (K).
    pub lift_k: f64,
    /// Coefficient of performance: Carnot COP × [`HEAT_PUMP_EFFICIENCY`].
    pub cop: f64,
    /// Share of the Carnot limit assumed.
    pub efficiency: f64,
    /// Electricity the pump uses per year to deliver the exchangeable heat (MWh), when quantities
    /// are known.
    pub electricity_mwh_per_year: Option<f64>,
}

/// A heat-pump variant for heat too cold for a need: both temperatures known, a lift of at most
/// [`HEAT_PUMP_MAX_LIFT_K`], a delivery of at most [`HEAT_PUMP_MAX_DELIVERY_C`].
pub(crate) fn heat_pump(
    offer: &IndexedResource,
    need: &IndexedResource,
    delta_t: f64,
) -> Option<HeatPump> {
    let (source, sink) = (offer.temperature_c?, need.temperature_c?);
    let delivery = sink + delta_t;
    let lift = delivery - source;
    if !(lift > 0.0 && lift <= HEAT_PUMP_MAX_LIFT_K && delivery <= HEAT_PUMP_MAX_DELIVERY_C) {
        return None;
    }
    let carnot = (delivery + 273.15) / lift;
    let cop = carnot * HEAT_PUMP_EFFICIENCY;
    (cop > 1.0).then_some(HeatPump {
        lift_k: lift,
        cop,
        efficiency: HEAT_PUMP_EFFICIENCY,
        electricity_mwh_per_year: None,
    })
}

/// Compatibility of `offer` with a declared `need`.
pub fn fit(
    tax: &Taxonomy,
    offer: &IndexedResource,
    need: &IndexedResource,
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
    class_fit(tax, offer, need).ok_or(Rejection::Class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::resource::{ALL_MONTHS, BaseUnit, ResourceKind};
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
        let mut ash = res(&t, ResourceKind::Offer, "material/mineral/ash");
        ash.ewc = EwcCode::parse("100102");
        let mut need = res(&t, ResourceKind::Need, "material/mineral/ash");
        let f = |o: &IndexedResource, n: &IndexedResource, _: Option<&str>| fit(&t, o, n, 10.0);
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
        // A cement works (known to take fly ash) needing aggregates: the activity's knowledge makes a
        // latent synergy with the actor, never a match with this unrelated need.
        assert_eq!(f(&ash, &aggregates, Some("23.51Z")), Err(Rejection::Class));
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
        assert_eq!(fit(&t, &oil, &need, 10.0), Err(Rejection::Hazardous));
        need.accepted = vec![EwcCode::parse("130205").expect("code")].into_boxed_slice();
        assert_eq!(
            fit(&t, &oil, &need, 10.0).map(|f| f.level),
            Ok(FitLevel::Code)
        );

        let mut heat = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        heat.temperature_c = Some(65.0);
        let mut warm = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        warm.temperature_c = Some(50.0);
        assert!(fit(&t, &heat, &warm, 10.0).is_ok());
        warm.temperature_c = Some(60.0);
        assert_eq!(fit(&t, &heat, &warm, 10.0), Err(Rejection::Temperature));
        // Steam serves a low-temperature need; low-temperature heat does not serve a steam need.
        let steam = res(&t, ResourceKind::Offer, "energy/heat/high_temperature");
        let low_need = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        assert_eq!(
            fit(&t, &steam, &low_need, 10.0).map(|f| f.level),
            Ok(FitLevel::ParentClass)
        );
        let low_offer = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        let steam_need = res(&t, ResourceKind::Need, "energy/heat/high_temperature");
        assert_eq!(
            fit(&t, &low_offer, &steam_need, 10.0),
            Err(Rejection::Temperature)
        );

        let mut tonnes = res(&t, ResourceKind::Offer, "material/biomass/wood");
        tonnes.base_unit = Some(BaseUnit::Tonne);
        let mut mwh = res(&t, ResourceKind::Need, "material/biomass/wood");
        mwh.base_unit = Some(BaseUnit::Megawatthour);
        assert_eq!(fit(&t, &tonnes, &mwh, 10.0), Err(Rejection::BaseUnit));

        let mut summer = res(&t, ResourceKind::Offer, "energy/heat/low_temperature");
        summer.months = 0b0000_1110_0000;
        let mut winter = res(&t, ResourceKind::Need, "energy/heat/low_temperature");
        winter.months = 0b1000_0000_0011;
        assert_eq!(fit(&t, &summer, &winter, 10.0), Err(Rejection::Season));
    }
}
