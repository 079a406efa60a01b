//! Ad-hoc matching: a resource described in a request, not stored (`POST /match`, and a stored
//! resource the last build does not know yet), matched against a snapshot as if it were in it.

use crate::domain::resource::{ALL_MONTHS, Period, ResourceKind, yearly_amount};
use crate::matching::knowledge::{NaceKey, ReceiverRule};
use crate::matching::score::TerritorialPriority;
use crate::matching::snapshot::{IndexedActor, IndexedResource, Snapshot};
use crate::matching::taxonomy::EwcCode;
use crate::matching::{MatchingError, MatchingSettings, Result};

use super::*;

impl AdhocQuery {
    fn to_resource(
        &self,
        snap: &Snapshot,
    ) -> Result<(IndexedResource, IndexedActor, Vec<ReceiverRule>)> {
        let tax = &snap.taxonomy;
        let invalid = |field: &'static str, message: &str| MatchingError::InvalidQuery {
            field,
            message: message.into(),
        };
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(invalid("lat", "must be within [-90, 90]"));
        }
        if !(self.lng.is_finite() && (-180.0..=180.0).contains(&self.lng)) {
            return Err(invalid("lng", "must be within [-180, 180]"));
        }
        let ewc = match self
            .ewc_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => Some(
                EwcCode::parse(c)
                    .ok_or_else(|| invalid("ewc_code", "expected six digits such as 10 01 02"))?,
            ),
            None => None,
        };
        let class = match (self.class.as_deref(), ewc) {
            (Some(c), _) => tax
                .id(c)
                .ok_or_else(|| MatchingError::UnknownClass(c.to_owned()))?,
            (None, Some(code)) => tax
                .class_id_of_ewc(code)
                .ok_or_else(|| invalid("ewc_code", "no class for this code"))?,
            (None, None) => return Err(invalid("class", "give a class or an EWC code")),
        };
        let accepted = self
            .accepted_ewc
            .iter()
            .map(|c| {
                EwcCode::parse(c).ok_or_else(|| invalid("accepted_ewc", "expected six-digit codes"))
            })
            .collect::<Result<Vec<_>>>()?;
        let (yearly_quantity, base_unit) = match (self.quantity, self.unit, self.yearly_quantity) {
            (Some(q), Some(unit), _) => {
                let (v, b) = yearly_amount(q, unit, self.period.unwrap_or(Period::Year));
                (Some(v), Some(b))
            }
            (Some(_), None, _) => return Err(invalid("unit", "required with quantity")),
            (None, _, Some(y)) => (Some(y), self.base_unit),
            (None, _, None) => (None, self.base_unit),
        };
        if yearly_quantity.is_some_and(|q| !q.is_finite() || q < 0.0) {
            return Err(invalid("quantity", "must be a non-negative number"));
        }
        if self
            .max_distance_km
            .is_some_and(|d| !d.is_finite() || d <= 0.0)
        {
            return Err(invalid("max_distance_km", "must be positive"));
        }
        let months = self.months.map_or(ALL_MONTHS, |m| {
            if m & ALL_MONTHS == 0 {
                ALL_MONTHS
            } else {
                m & ALL_MONTHS
            }
        });
        let hazardous = self.hazardous.unwrap_or_else(|| {
            self.ewc_code
                .as_deref()
                .is_some_and(|c| c.trim_end().ends_with('*'))
        });
        let label = self
            .label
            .clone()
            .unwrap_or_else(|| tax.class(class).label_fr.clone());
        let stored = self.stored.clone().unwrap_or_default();
        let res = IndexedResource {
            id: stored.resource_id,
            actor: u32::MAX,
            kind: self.kind,
            class,
            ewc,
            accepted: accepted.into_boxed_slice(),
            hazardous,
            yearly_quantity,
            base_unit,
            months,
            temperature_c: self.temperature_c.filter(|t| t.is_finite()),
            max_distance_km: self.max_distance_km,
            label,
        };
        let actor = IndexedActor::new(
            stored.actor_id,
            // No name for a plain query: the sentences then speak of "your resource".
            stored.actor_name,
            self.naf_code.clone(),
            self.lat,
            self.lng,
            stored.commune,
        );
        let rules = match self.kind {
            ResourceKind::Offer => {
                let provider = actor.nace.map(NaceKey::division);
                snap.knowledge.receiver_rules(tax, ewc, class, provider)
            }
            ResourceKind::Need => Vec::new(),
        };
        Ok((res, actor, rules))
    }
}

/// Ranked candidates for a resource described in the request (nothing stored). The query side has the
/// nil UUID as resource and actor id.
pub fn match_adhoc(
    snap: &Snapshot,
    query: &AdhocQuery,
    settings: &MatchingSettings,
    priority: &dyn TerritorialPriority,
) -> Result<Vec<Synergy>> {
    settings.validate()?;
    let (res, built_actor, rules) = query.to_resource(snap)?;
    let ctx = Ctx {
        snap,
        settings,
        priority,
    };
    // A stored resource of an actor the snapshot knows is never matched with that actor's other
    // resources; the actor is taken as stored now (it may have moved since the snapshot).
    let actor_index = query
        .stored
        .as_ref()
        .and_then(|s| snap.actor_index(s.actor_id));
    let actor = &built_actor;
    let party = Party {
        res: &res,
        actor,
        actor_index,
        priority: ctx.priority(&res),
    };
    let mut scratch = Scratch::default();
    let limits = &settings.query;
    let mut out: Vec<Synergy> = match query.kind {
        ResourceKind::Offer => {
            ctx.offer_candidates(party, u32::MAX, &rules, &mut scratch, limits);
            let found = std::mem::take(&mut scratch.found);
            found
                .iter()
                .filter_map(|c| {
                    if c.latent {
                        let receiver = snap.actor(c.target);
                        let a = ctx.assess_latent(party, &rules, receiver)?;
                        Some(ctx.synergy(party, None, receiver, &a))
                    } else {
                        let n = snap.resource(c.target);
                        let need = ctx.party_of(n);
                        let a = ctx.assess_pair(party, need).ok()?;
                        Some(ctx.synergy(party, Some(need), need.actor, &a))
                    }
                })
                .collect()
        }
        ResourceKind::Need => {
            let mut found = ctx.need_providers(party, &mut scratch, limits);
            found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.0.cmp(&b.0)));
            found.truncate(limits.max_results);
            found
                .iter()
                .map(|(o, a)| {
                    let offer = snap.resource(*o);
                    let op = ctx.party_of(offer);
                    ctx.synergy(op, Some(party), actor, a)
                })
                .collect()
        }
    };
    sort_synergies(&mut out);
    Ok(out)
}
