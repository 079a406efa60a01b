//! Pooling synergies (*synergies de mutualisation*): nearby actors that share a need (joint purchasing,
//! shared equipment or service) or an outflow (joint collection of the same waste) can organise it
//! together. A group is worth proposing from three actors on: two is a bilateral deal, which the
//! substitution synergies already cover.
//!
//! Algorithm, chosen to stay near-linear at national scale:
//! 1. resources are grouped by key first — the need class of needs, the (normalised) EWC code of offers —
//!    so actors are only ever compared with actors sharing the key;
//! 2. within a key, each actor becomes one point (its resources of that key merged), indexed in an R-tree
//!    over 3-D unit-sphere vectors (the chord length is monotonic in great-circle distance, so a
//!    Euclidean radius query is exact, with no distortion at any latitude and no antimeridian seam);
//! 3. seeds are taken by decreasing density (number of actors within the radius, capped), ties by actor
//!    id; a seed with at least `min_members` still-free actors within the radius (itself included) forms
//!    a group with its nearest free neighbours (up to `max_members`), which are then removed from the
//!    index: each actor is in at most one group per key, and every member is within `radius_km` of the
//!    seed. Deterministic: the same input gives the same groups and the same group ids.

use std::collections::{BTreeMap, BTreeSet};

use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::resource::{BaseUnit, ResourceKind};

pub use super::snapshot::{EARTH_RADIUS_KM, haversine_km};

/// One resource as pooling sees it; the caller converts from its own types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolingResource {
    pub resource_id: Uuid,
    pub actor_id: Uuid,
    pub kind: ResourceKind,
    /// Resource class (taxonomy path): the pooling key of needs.
    pub class: String,
    /// EWC code: the pooling key of offers (offers without one are not pooled).
    pub ewc_code: Option<String>,
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<BaseUnit>,
    pub lat: f64,
    pub lng: f64,
}

/// Tuning of the group search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolingParams {
    /// Every member is within this distance of the group's seed actor (km).
    pub radius_km: f64,
    /// Smallest group: at least 3 distinct actors.
    pub min_members: usize,
    /// Largest group: denser areas are split into several groups. Also bounds the work per seed.
    pub max_members: usize,
}

impl Default for PoolingParams {
    fn default() -> Self {
        Self {
            radius_km: 15.0,
            min_members: 3,
            max_members: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolingError {
    #[error("invalid pooling parameters: {0}")]
    InvalidParams(&'static str),
    /// Coordinates are validated on intake, so this reveals an upstream bug; failing beats grouping
    /// actors at a wrong place.
    #[error("resource {resource_id} has invalid coordinates (lat {lat}, lng {lng})")]
    InvalidCoordinates {
        resource_id: Uuid,
        lat: f64,
        lng: f64,
    },
}

/// What the members share.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PoolingKeyKind {
    /// Needs of the same resource class (joint purchasing, shared supply).
    NeedClass,
    /// Offers with the same EWC code (joint collection or treatment).
    OfferEwc,
}

impl PoolingKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolingKeyKind::NeedClass => "need_class",
            PoolingKeyKind::OfferEwc => "offer_ewc",
        }
    }
}

/// A yearly amount in one base unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitQuantity {
    pub base_unit: BaseUnit,
    pub yearly_quantity: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// One actor of a group, with all its resources of the group's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolingMember {
    pub actor_id: Uuid,
    /// Sorted.
    pub resource_ids: Vec<Uuid>,
    /// Known yearly quantities, one entry per base unit (never summed across units); empty when unknown.
    pub quantities: Vec<UnitQuantity>,
    pub distance_to_centroid_km: f64,
}

/// A pooling synergy: at least `min_members` distinct actors within the radius sharing a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolingGroup {
    /// UUID v5 of (key kind, key, sorted member actor ids): the same group keeps its id across runs.
    pub id: Uuid,
    pub key_kind: PoolingKeyKind,
    /// The need class, or the EWC code normalised as `NN NN NN` (with `*` when hazardous).
    pub key: String,
    /// Sorted by actor id.
    pub members: Vec<PoolingMember>,
    /// Known yearly quantities summed per base unit (sorted by unit).
    pub totals: Vec<UnitQuantity>,
    /// The total when all known quantities share one unit (the usual case), else `None`.
    pub total_yearly_quantity: Option<f64>,
    /// The unit of `total_yearly_quantity`.
    pub base_unit: Option<BaseUnit>,
    /// Resources whose quantity or unit is unknown, hence missing from the totals.
    pub resources_without_quantity: usize,
    /// Spherical mean of the members' positions.
    pub centroid: LatLng,
    /// Largest distance from a member to the centroid, km.
    pub radius_km: f64,
}

/// Namespace of pooling group ids. Never change it: group ids are stored and referenced.
const POOLING_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_93b7_4d20_8c41_2e7a_9d3f_0b15);

/// What groups resources: the class of a need, the EWC code of an offer.
pub type PoolingKey = (PoolingKeyKind, String);

/// The key a resource pools under, if any.
fn pooling_key(resource: &PoolingResource) -> Option<PoolingKey> {
    key_of(resource.kind, &resource.class, resource.ewc_code.as_deref())
}

/// The key a resource of this kind, class and code pools under, if any.
pub fn key_of(kind: ResourceKind, class: &str, ewc_code: Option<&str>) -> Option<PoolingKey> {
    match kind {
        ResourceKind::Need => {
            let class = class.trim();
            (!class.is_empty()).then(|| (PoolingKeyKind::NeedClass, class.to_owned()))
        }
        ResourceKind::Offer => ewc_code
            .and_then(normalise_ewc)
            .map(|code| (PoolingKeyKind::OfferEwc, code)),
    }
}

/// `100102`, `10 01 02`, `10-01-02` → `10 01 02`; a trailing `*` (hazardous entry) is kept, as
/// `10 01 04*` and `10 01 04` are different entries of the list. Anything else: `None`.
fn normalise_ewc(code: &str) -> Option<String> {
    let compact: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '.')
        .collect();
    let (digits, hazardous) = match compact.strip_suffix('*') {
        Some(digits) => (digits, true),
        None => (compact.as_str(), false),
    };
    if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{} {} {}{}",
        &digits[0..2],
        &digits[2..4],
        &digits[4..6],
        if hazardous { "*" } else { "" }
    ))
}

/// Unit vector of a position (x towards lat 0 lng 0, z towards the north pole).
fn unit_vector(lat: f64, lng: f64) -> [f64; 3] {
    let (phi, lambda) = (lat.to_radians(), lng.to_radians());
    [
        phi.cos() * lambda.cos(),
        phi.cos() * lambda.sin(),
        phi.sin(),
    ]
}

/// Position of a (non-zero) vector, `None` for a vector too short to have a direction.
fn to_lat_lng(v: [f64; 3]) -> Option<LatLng> {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if norm.is_nan() || norm <= 1e-12 {
        return None;
    }
    let z = (v[2] / norm).clamp(-1.0, 1.0);
    Some(LatLng {
        lat: z.asin().to_degrees(),
        lng: v[1].atan2(v[0]).to_degrees(),
    })
}

/// Chord length on the unit sphere of a great-circle distance.
fn chord_for_km(km: f64) -> f64 {
    let half_angle = (km / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2);
    2.0 * half_angle.sin()
}

/// An actor's resources under one key.
struct ActorEntry<'a> {
    actor_id: Uuid,
    resources: Vec<&'a PoolingResource>,
    position: LatLng,
    vector: [f64; 3],
}

/// Finds pooling groups. Errors only on bad parameters or invalid coordinates; resources without a key
/// (needs without class, offers without a valid EWC code) are simply not pooled.
pub fn find_pooling_groups(
    resources: &[PoolingResource],
    params: &PoolingParams,
) -> Result<Vec<PoolingGroup>, PoolingError> {
    if !(params.radius_km.is_finite() && params.radius_km > 0.0) {
        return Err(PoolingError::InvalidParams(
            "radius_km must be a positive number",
        ));
    }
    if params.min_members < 3 {
        return Err(PoolingError::InvalidParams(
            "min_members must be at least 3",
        ));
    }
    if params.max_members < params.min_members {
        return Err(PoolingError::InvalidParams(
            "max_members must be at least min_members",
        ));
    }

    // 1. Group by key, then by actor (BTreeMaps: deterministic order).
    let mut by_key: BTreeMap<(PoolingKeyKind, String), BTreeMap<Uuid, Vec<&PoolingResource>>> =
        BTreeMap::new();
    for resource in resources {
        let valid = resource.lat.is_finite()
            && resource.lng.is_finite()
            && (-90.0..=90.0).contains(&resource.lat)
            && (-180.0..=180.0).contains(&resource.lng);
        if !valid {
            return Err(PoolingError::InvalidCoordinates {
                resource_id: resource.resource_id,
                lat: resource.lat,
                lng: resource.lng,
            });
        }
        if let Some(key) = pooling_key(resource) {
            by_key
                .entry(key)
                .or_default()
                .entry(resource.actor_id)
                .or_default()
                .push(resource);
        }
    }

    let mut groups = Vec::new();
    for ((key_kind, key), actors) in by_key {
        if actors.len() < params.min_members {
            continue;
        }
        let entries: Vec<ActorEntry<'_>> = actors
            .into_iter()
            .map(|(actor_id, mut resources)| {
                resources.sort_by_key(|r| r.resource_id);
                // An actor is one site, so its resources share a position; averaging keeps this sound
                // if they do not.
                let sum = resources.iter().fold([0.0; 3], |acc, r| {
                    let v = unit_vector(r.lat, r.lng);
                    [acc[0] + v[0], acc[1] + v[1], acc[2] + v[2]]
                });
                let first = resources
                    .first()
                    .map_or(LatLng { lat: 0.0, lng: 0.0 }, |r| LatLng {
                        lat: r.lat,
                        lng: r.lng,
                    });
                let position = to_lat_lng(sum).unwrap_or(first);
                ActorEntry {
                    actor_id,
                    resources,
                    vector: unit_vector(position.lat, position.lng),
                    position,
                }
            })
            .collect();
        for members in cluster(&entries, params) {
            groups.push(make_group(key_kind, &key, &entries, &members));
        }
    }
    groups.sort_by(largest_first);
    Ok(groups)
}

/// The groups [`find_pooling_groups`] gives for all the resources, from an earlier run's groups and
/// the resources of the keys that changed since (`resources` may hold others: they are left out).
/// A key's groups depend only on that key's resources, so the other keys keep theirs.
pub fn regroup(
    previous: &[PoolingGroup],
    resources: &[PoolingResource],
    changed: &BTreeSet<PoolingKey>,
    params: &PoolingParams,
) -> Result<Vec<PoolingGroup>, PoolingError> {
    let touched: Vec<PoolingResource> = resources
        .iter()
        .filter(|r| pooling_key(r).is_some_and(|k| changed.contains(&k)))
        .cloned()
        .collect();
    let mut groups = find_pooling_groups(&touched, params)?;
    groups.extend(
        previous
            .iter()
            .filter(|g| !changed.contains(&(g.key_kind, g.key.clone())))
            .cloned(),
    );
    groups.sort_by(largest_first);
    Ok(groups)
}

/// The order of groups: most members first, then key, then id.
fn largest_first(a: &PoolingGroup, b: &PoolingGroup) -> std::cmp::Ordering {
    b.members
        .len()
        .cmp(&a.members.len())
        .then(a.key_kind.cmp(&b.key_kind))
        .then_with(|| a.key.cmp(&b.key))
        .then(a.id.cmp(&b.id))
}

/// Greedy seeded clustering of one key's actors; returns groups as indices into `entries`.
fn cluster(entries: &[ActorEntry<'_>], params: &PoolingParams) -> Vec<Vec<usize>> {
    let chord = chord_for_km(params.radius_km);
    // A hair of tolerance so that a member exactly at the radius is not lost to rounding; the haversine
    // check below has the last word.
    let chord_2 = chord * chord * (1.0 + 1e-9);
    let mut tree = RTree::bulk_load(
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| GeomWithData::new(e.vector, i))
            .collect(),
    );

    let mut seeds: Vec<(usize, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let density = tree
                .locate_within_distance(e.vector, chord_2)
                .take(params.max_members)
                .count();
            (density, i)
        })
        .collect();
    // Densest first; entries are in actor-id order, so the index breaks ties by actor id.
    seeds.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

    let mut assigned = vec![false; entries.len()];
    let mut groups = Vec::new();
    for (density, seed) in seeds {
        if density < params.min_members {
            break; // densities only decrease from here
        }
        if assigned[seed] {
            continue;
        }
        let centre = &entries[seed];
        let members: Vec<usize> = tree
            .nearest_neighbor_iter_with_distance_2(&centre.vector)
            .take_while(|(_, d2)| *d2 <= chord_2)
            .map(|(point, _)| point.data)
            .filter(|&i| {
                let p = entries[i].position;
                haversine_km(centre.position.lat, centre.position.lng, p.lat, p.lng)
                    <= params.radius_km * (1.0 + 1e-9)
            })
            .take(params.max_members)
            .collect();
        if members.len() < params.min_members {
            continue;
        }
        for &i in &members {
            assigned[i] = true;
            tree.remove(&GeomWithData::new(entries[i].vector, i));
        }
        groups.push(members);
    }
    groups
}

/// Adds `quantity` of `unit` to a per-unit list kept sorted by unit.
fn add_quantity(totals: &mut BTreeMap<&'static str, UnitQuantity>, unit: BaseUnit, quantity: f64) {
    totals
        .entry(unit.as_str())
        .and_modify(|t| t.yearly_quantity += quantity)
        .or_insert(UnitQuantity {
            base_unit: unit,
            yearly_quantity: quantity,
        });
}

fn make_group(
    key_kind: PoolingKeyKind,
    key: &str,
    entries: &[ActorEntry<'_>],
    members: &[usize],
) -> PoolingGroup {
    let mut members: Vec<&ActorEntry<'_>> = members.iter().map(|&i| &entries[i]).collect();
    members.sort_by_key(|e| e.actor_id);

    let sum = members.iter().fold([0.0; 3], |acc, e| {
        [
            acc[0] + e.vector[0],
            acc[1] + e.vector[1],
            acc[2] + e.vector[2],
        ]
    });
    // Members lie within a few tens of km, so the mean vector cannot vanish; the fallback only guards
    // the arithmetic.
    let centroid = to_lat_lng(sum)
        .or_else(|| members.first().map(|e| e.position))
        .unwrap_or(LatLng { lat: 0.0, lng: 0.0 });

    let mut totals = BTreeMap::new();
    let mut resources_without_quantity = 0;
    let mut radius_km: f64 = 0.0;
    let group_members: Vec<PoolingMember> = members
        .iter()
        .map(|entry| {
            let mut quantities = BTreeMap::new();
            for resource in &entry.resources {
                match (resource.yearly_quantity, resource.base_unit) {
                    (Some(q), Some(unit)) if q.is_finite() && q >= 0.0 => {
                        add_quantity(&mut quantities, unit, q);
                        add_quantity(&mut totals, unit, q);
                    }
                    _ => resources_without_quantity += 1,
                }
            }
            let distance = haversine_km(
                centroid.lat,
                centroid.lng,
                entry.position.lat,
                entry.position.lng,
            );
            radius_km = radius_km.max(distance);
            PoolingMember {
                actor_id: entry.actor_id,
                resource_ids: entry.resources.iter().map(|r| r.resource_id).collect(),
                quantities: quantities.into_values().collect(),
                distance_to_centroid_km: distance,
            }
        })
        .collect();

    let member_ids: Vec<String> = group_members
        .iter()
        .map(|m| m.actor_id.to_string())
        .collect();
    let name = format!("{}|{}|{}", key_kind.as_str(), key, member_ids.join(","));
    let totals: Vec<UnitQuantity> = totals.into_values().collect();
    let (total_yearly_quantity, base_unit) = match totals.as_slice() {
        [only] => (Some(only.yearly_quantity), Some(only.base_unit)),
        _ => (None, None),
    };
    PoolingGroup {
        id: Uuid::new_v5(&POOLING_NAMESPACE, name.as_bytes()),
        key_kind,
        key: key.to_owned(),
        members: group_members,
        totals,
        total_yearly_quantity,
        base_unit,
        resources_without_quantity,
        centroid,
        radius_km,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0.01° of latitude ≈ 1.11 km.
    const LAT: f64 = 47.0;
    const LNG: f64 = 4.8;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn need(resource: u128, actor: u128, class: &str, lat: f64, lng: f64) -> PoolingResource {
        PoolingResource {
            resource_id: id(1000 + resource),
            actor_id: id(actor),
            kind: ResourceKind::Need,
            class: class.to_owned(),
            ewc_code: None,
            yearly_quantity: Some(100.0),
            base_unit: Some(BaseUnit::Tonne),
            lat,
            lng,
        }
    }

    fn offer(resource: u128, actor: u128, code: &str, lat: f64, lng: f64) -> PoolingResource {
        PoolingResource {
            resource_id: id(1000 + resource),
            actor_id: id(actor),
            kind: ResourceKind::Offer,
            class: "material/paper".to_owned(),
            ewc_code: Some(code.to_owned()),
            yearly_quantity: Some(10.0),
            base_unit: Some(BaseUnit::Tonne),
            lat,
            lng,
        }
    }

    const PALLETS: &str = "material/biomass/wood";

    fn groups(resources: &[PoolingResource]) -> Vec<PoolingGroup> {
        find_pooling_groups(resources, &PoolingParams::default()).unwrap()
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Paris (48.8566, 2.3522) – Lyon (45.7640, 4.8357): about 392 km.
        let d = haversine_km(48.8566, 2.3522, 45.7640, 4.8357);
        assert!((d - 392.0).abs() < 2.0, "{d}");
        assert!(haversine_km(LAT, LNG, LAT, LNG).abs() < 1e-9);
        // One degree of latitude: about 111.2 km.
        assert!((haversine_km(0.0, 0.0, 1.0, 0.0) - 111.19).abs() < 0.05);
    }

    #[test]
    fn three_actors_within_radius_form_a_group() {
        let resources = vec![
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 2, PALLETS, LAT + 0.05, LNG),
            need(3, 3, PALLETS, LAT, LNG + 0.05),
        ];
        let found = groups(&resources);
        assert_eq!(found.len(), 1);
        let group = &found[0];
        assert_eq!(group.key_kind, PoolingKeyKind::NeedClass);
        assert_eq!(group.key, PALLETS);
        let members: Vec<Uuid> = group.members.iter().map(|m| m.actor_id).collect();
        assert_eq!(members, vec![id(1), id(2), id(3)]);
        assert_eq!(group.total_yearly_quantity, Some(300.0));
        assert_eq!(group.base_unit, Some(BaseUnit::Tonne));
        assert_eq!(group.resources_without_quantity, 0);
        // Centroid near the mean of the three points; radius a few km.
        assert!((group.centroid.lat - (LAT + 0.05 / 3.0)).abs() < 1e-3);
        assert!((group.centroid.lng - (LNG + 0.05 / 3.0)).abs() < 1e-3);
        assert!(group.radius_km > 1.0 && group.radius_km < 5.0);
        let max_member = group
            .members
            .iter()
            .map(|m| m.distance_to_centroid_km)
            .fold(0.0, f64::max);
        assert!((group.radius_km - max_member).abs() < 1e-12);

        // Stable id: input order does not matter; it is the v5 of kind, key and sorted members.
        let mut reversed = resources.clone();
        reversed.reverse();
        assert_eq!(groups(&reversed)[0].id, group.id);
        let expected = Uuid::new_v5(
            &POOLING_NAMESPACE,
            format!("need_class|{PALLETS}|{},{},{}", id(1), id(2), id(3)).as_bytes(),
        );
        assert_eq!(group.id, expected);
    }

    #[test]
    fn two_actors_do_not_form_a_group() {
        let resources = vec![
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 2, PALLETS, LAT + 0.05, LNG),
        ];
        assert!(groups(&resources).is_empty());
    }

    #[test]
    fn an_actor_beyond_the_radius_does_not_join() {
        // Third actor 0.3° north: about 33 km, beyond 15 km from both others.
        let far = vec![
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 2, PALLETS, LAT + 0.05, LNG),
            need(3, 3, PALLETS, LAT + 0.3, LNG),
        ];
        assert!(groups(&far).is_empty());

        // With three close actors, the far fourth stays out of their group.
        let mut four = far.clone();
        four.push(need(4, 4, PALLETS, LAT, LNG + 0.05));
        let found = groups(&four);
        assert_eq!(found.len(), 1);
        let members: Vec<Uuid> = found[0].members.iter().map(|m| m.actor_id).collect();
        assert_eq!(members, vec![id(1), id(2), id(4)]);

        // A smaller radius excludes the 5.6 km neighbour too.
        let tight = PoolingParams {
            radius_km: 2.0,
            ..PoolingParams::default()
        };
        assert!(find_pooling_groups(&four, &tight).unwrap().is_empty());
    }

    #[test]
    fn two_resources_of_one_actor_count_once() {
        let two_actors = vec![
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 1, PALLETS, LAT, LNG),
            need(3, 2, PALLETS, LAT + 0.05, LNG),
        ];
        assert!(groups(&two_actors).is_empty());

        let mut three = two_actors.clone();
        three.push(need(4, 3, PALLETS, LAT, LNG + 0.05));
        let found = groups(&three);
        assert_eq!(found.len(), 1);
        let group = &found[0];
        assert_eq!(group.members.len(), 3);
        let first = &group.members[0];
        assert_eq!(first.actor_id, id(1));
        assert_eq!(first.resource_ids, vec![id(1001), id(1002)]);
        assert_eq!(
            first.quantities,
            vec![UnitQuantity {
                base_unit: BaseUnit::Tonne,
                yearly_quantity: 200.0
            }]
        );
        assert_eq!(group.total_yearly_quantity, Some(400.0));
    }

    #[test]
    fn keys_separate_classes_codes_and_kinds() {
        let resources = vec![
            // Same class, three actors → a group.
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 2, PALLETS, LAT + 0.01, LNG),
            need(3, 3, "water/process", LAT, LNG + 0.01),
            need(4, 4, PALLETS, LAT + 0.01, LNG + 0.01),
            // The same EWC code written three ways → one key; a hazardous variant is another key.
            offer(5, 1, "15 01 01", LAT, LNG),
            offer(6, 2, "150101", LAT + 0.01, LNG),
            offer(7, 3, "15-01-01", LAT, LNG + 0.01),
            offer(8, 4, "15 01 10*", LAT + 0.01, LNG + 0.01),
            // Offers without a code, or with a malformed one, are not pooled.
            offer(9, 5, "not a code", LAT, LNG),
        ];
        let found = groups(&resources);
        let keys: Vec<(PoolingKeyKind, &str, usize)> = found
            .iter()
            .map(|g| (g.key_kind, g.key.as_str(), g.members.len()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (PoolingKeyKind::NeedClass, PALLETS, 3),
                (PoolingKeyKind::OfferEwc, "15 01 01", 3),
            ]
        );
        assert_eq!(normalise_ewc("15 01 10 *").as_deref(), Some("15 01 10*"));
        assert_eq!(normalise_ewc("1501"), None);
    }

    #[test]
    fn units_are_never_summed_together() {
        let mut resources = vec![
            need(1, 1, PALLETS, LAT, LNG),
            need(2, 2, PALLETS, LAT + 0.01, LNG),
            need(3, 3, PALLETS, LAT, LNG + 0.01),
        ];
        resources[2].base_unit = Some(BaseUnit::CubicMetre);
        resources[1].yearly_quantity = None;
        let found = groups(&resources);
        let group = &found[0];
        assert_eq!(group.total_yearly_quantity, None);
        assert_eq!(group.base_unit, None);
        assert_eq!(group.resources_without_quantity, 1);
        // Sorted by unit spelling: "m3" before "t".
        assert_eq!(
            group.totals,
            vec![
                UnitQuantity {
                    base_unit: BaseUnit::CubicMetre,
                    yearly_quantity: 100.0
                },
                UnitQuantity {
                    base_unit: BaseUnit::Tonne,
                    yearly_quantity: 100.0
                },
            ]
        );
    }

    #[test]
    fn each_actor_joins_at_most_one_group_per_key() {
        // Two clusters 50 km apart, plus a dense cluster of five split by max_members = 3.
        let mut resources = Vec::new();
        for (i, (dlat, dlng)) in [(0.0, 0.0), (0.01, 0.0), (0.0, 0.01)].iter().enumerate() {
            let n = i as u128;
            resources.push(need(n, 1 + n, PALLETS, LAT + dlat, LNG + dlng));
            resources.push(need(10 + n, 11 + n, PALLETS, LAT + 0.45 + dlat, LNG + dlng));
        }
        let found = groups(&resources);
        assert_eq!(found.len(), 2);
        let mut seen: Vec<Uuid> = found
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.actor_id))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);

        let dense: Vec<PoolingResource> = (0..7u128)
            .map(|n| need(n, 1 + n, PALLETS, LAT + n as f64 * 0.001, LNG))
            .collect();
        let params = PoolingParams {
            max_members: 3,
            ..PoolingParams::default()
        };
        let found = find_pooling_groups(&dense, &params).unwrap();
        // 7 actors, groups of at most 3: two groups, one actor left over.
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|g| g.members.len() == 3));
        let mut members: Vec<Uuid> = found
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.actor_id))
            .collect();
        members.sort();
        members.dedup();
        assert_eq!(members.len(), 6);
        // Deterministic: same result twice.
        assert_eq!(find_pooling_groups(&dense, &params).unwrap(), found);
    }

    #[test]
    fn bad_parameters_and_coordinates_are_rejected() {
        let ok = vec![need(1, 1, PALLETS, LAT, LNG)];
        for params in [
            PoolingParams {
                radius_km: 0.0,
                ..PoolingParams::default()
            },
            PoolingParams {
                radius_km: f64::NAN,
                ..PoolingParams::default()
            },
            PoolingParams {
                min_members: 2,
                ..PoolingParams::default()
            },
            PoolingParams {
                max_members: 2,
                ..PoolingParams::default()
            },
        ] {
            assert!(matches!(
                find_pooling_groups(&ok, &params),
                Err(PoolingError::InvalidParams(_))
            ));
        }
        let bad = vec![need(1, 1, PALLETS, 123.0, LNG)];
        assert!(matches!(
            find_pooling_groups(&bad, &PoolingParams::default()),
            Err(PoolingError::InvalidCoordinates { .. })
        ));
    }

    /// Grouping again only the keys that changed gives the groups of a full run.
    #[test]
    fn regrouping_the_changed_keys_gives_the_full_groups() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let classes = [PALLETS, "material/plastic", "material/metal"];
        let codes = ["15 01 01", "20 01 01", "15 01 03"];
        let mut resources: Vec<PoolingResource> = (0..400u128)
            .map(|n| {
                let (lat, lng) = (
                    LAT + rng.random_range(-0.2..0.2),
                    LNG + rng.random_range(-0.2..0.2),
                );
                let actor = n / 2;
                if n % 3 == 0 {
                    offer(n, actor, codes[(n % 9 / 3) as usize], lat, lng)
                } else {
                    need(n, actor, classes[(n % 3) as usize], lat, lng)
                }
            })
            .collect();
        let params = PoolingParams::default();
        let mut previous = groups(&resources);
        assert!(previous.len() > 10, "{} groups", previous.len());
        for round in 0..30u128 {
            let mut changed = BTreeSet::new();
            let i = rng.random_range(0..resources.len());
            changed.extend(pooling_key(&resources[i]));
            match round % 3 {
                0 => {
                    resources.swap_remove(i);
                }
                1 => resources[i].yearly_quantity = Some(rng.random_range(1.0..500.0)),
                _ => {
                    let mut copy = resources[i].clone();
                    copy.resource_id = id(10_000 + round);
                    copy.actor_id = id(5_000 + round);
                    copy.class = classes[(round % 3) as usize].to_owned();
                    changed.extend(pooling_key(&copy));
                    resources.push(copy);
                }
            }
            let full = groups(&resources);
            let again = regroup(&previous, &resources, &changed, &params).unwrap();
            assert_eq!(again, full, "round {round}");
            previous = full;
        }
        // Without the changed key, the stale groups stay: the test can tell.
        let member = previous[0].members[0].resource_ids[0];
        let i = resources
            .iter()
            .position(|r| r.resource_id == member)
            .unwrap();
        resources[i].yearly_quantity = Some(12_345.0);
        let stale = regroup(&previous, &resources, &BTreeSet::new(), &params).unwrap();
        assert_ne!(stale, groups(&resources));
    }
}
