//! The engine's input: actors and active resources, validated, sorted by id, with spatial indexes.
//!
//! Positions are indexed as 3-D points on the sphere (km from the Earth's centre), so a radius query is a
//! chord-length query that is exact everywhere (mainland, Corsica and overseas alike); distances reported
//! are great-circle (haversine) km. Indexes (R-trees, `rstar`): needs and offers per class and per EWC code
//! (a need is indexed under its own code and every code it accepts), and actors per NACE division, group
//! and class for latent receivers.

use std::collections::{BinaryHeap, HashMap};

use rstar::primitives::GeomWithData;
use rstar::{PointDistance, RTree, RTreeNode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::knowledge::{Knowledge, NaceKey, ReceiverRule};
use super::taxonomy::{ClassId, EwcCode, Taxonomy};
use crate::domain::resource::{ALL_MONTHS, BaseUnit, ResourceKind};

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// An actor as given to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapActor {
    pub id: Uuid,
    pub name: String,
    /// NAF rév.2 sub-class such as `16.10A`.
    pub naf_code: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub commune: String,
}

/// An active resource as given to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapResource {
    pub id: Uuid,
    pub actor_id: Uuid,
    pub kind: ResourceKind,
    /// Taxonomy class; may be empty when `ewc_code` is given (the code's class is used).
    pub class: String,
    /// EWC code, six digits (spaces and a trailing `*` are tolerated).
    pub ewc_code: Option<String>,
    /// Codes a need accepts (recyclers, users of secondary raw materials).
    pub accepted_ewc: Vec<String>,
    pub hazardous: bool,
    /// Yearly quantity in `base_unit`.
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<BaseUnit>,
    /// Months mask, bit 0 = January; 0 means all year.
    pub months: u16,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
    pub label: String,
}

/// A validated actor of the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedActor {
    pub id: Uuid,
    pub name: String,
    pub naf_code: Option<String>,
    /// The NAF code as a NACE key (division, group, class).
    pub nace: Option<NaceKey>,
    pub lat: f64,
    pub lng: f64,
    pub commune: String,
    pub(crate) xyz: [f32; 3],
}

impl IndexedActor {
    pub(crate) fn new(
        id: Uuid,
        name: String,
        naf_code: Option<String>,
        lat: f64,
        lng: f64,
        commune: String,
    ) -> Self {
        let nace = naf_code.as_deref().and_then(NaceKey::parse);
        IndexedActor {
            id,
            name,
            naf_code,
            nace,
            lat,
            lng,
            commune,
            xyz: to_xyz(lat, lng),
        }
    }
}

/// A validated resource of the snapshot (class interned, EWC codes parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedResource {
    pub id: Uuid,
    /// Index of its actor in [`Snapshot::actors`].
    pub actor: u32,
    pub kind: ResourceKind,
    pub class: ClassId,
    pub ewc: Option<EwcCode>,
    pub accepted: Box<[EwcCode]>,
    pub hazardous: bool,
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<BaseUnit>,
    /// Never 0 (normalised to all year).
    pub months: u16,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
    pub label: String,
}

/// An input row left out of the snapshot, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Skipped {
    pub id: Uuid,
    pub reason: String,
}

/// Points are `f32` km on the sphere (sub-metre precision, half the memory of `f64`).
pub(crate) type Point = GeomWithData<[f32; 3], u32>;
pub(crate) type Tree = RTree<Point, TreeParams>;

/// Wider nodes than rstar's default (6): bulk-loaded, read-only trees get shallower and k-nearest
/// queries push fewer nodes through the heap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeParams;

impl rstar::RTreeParams for TreeParams {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = rstar::RStarInsertionStrategy;
}

/// Immutable, indexed view of the active offers and needs of a territory (or the whole country).
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) taxonomy: Taxonomy,
    pub(crate) knowledge: Knowledge,
    pub(crate) actors: Vec<IndexedActor>,
    pub(crate) resources: Vec<IndexedResource>,
    /// (id, index) sorted by id, for lookups.
    actor_ids: Vec<(Uuid, u32)>,
    resource_ids: Vec<(Uuid, u32)>,
    skipped: Vec<Skipped>,
    /// Resources of each actor (CSR: `actor_start[a]..actor_start[a+1]` in `actor_resources`).
    actor_start: Vec<u32>,
    actor_resources: Vec<u32>,
    pub(crate) needs_by_class: Vec<Tree>,
    pub(crate) offers_by_class: Vec<Tree>,
    pub(crate) needs_by_code: HashMap<EwcCode, Tree>,
    pub(crate) offers_by_code: HashMap<EwcCode, Tree>,
    pub(crate) actors_by_nace: HashMap<NaceKey, Tree>,
    /// Receiver rules of each offer (index into `rule_sets`; `u32::MAX` for needs).
    offer_rules: Vec<u32>,
    rule_sets: Vec<Vec<ReceiverRule>>,
}

pub(crate) fn to_xyz(lat: f64, lng: f64) -> [f32; 3] {
    let (la, lo) = (lat.to_radians(), lng.to_radians());
    [
        (EARTH_RADIUS_KM * la.cos() * lo.cos()) as f32,
        (EARTH_RADIUS_KM * la.cos() * lo.sin()) as f32,
        (EARTH_RADIUS_KM * la.sin()) as f32,
    ]
}

/// Squared chord length of a great-circle distance.
pub(crate) fn chord2(distance_km: f64) -> f64 {
    let half = (distance_km.max(0.0) / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2);
    let c = 2.0 * EARTH_RADIUS_KM * half.sin();
    c * c
}

/// Great-circle distance (haversine), km.
pub fn haversine_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Appends to `out` the points of `tree` nearest to `at` within `radius_km`, `skip` left out: the first
/// `pool` of them in the order of (distance, index), so nearest first. Which points are kept depends only
/// on the points, never on the tree's shape: among points at the same distance as the last one kept, the
/// smallest indexes are kept. Indexes follow a total order on the points' keys (`Snapshot::build`), so a
/// point added or removed elsewhere in the tree changes no other search's answer
/// (`matching::engine::incremental` relies on it).
///
/// A best-first walk of the tree that never queues what lies beyond the radius, on a frontier kept by the
/// caller (no allocation per search).
pub(crate) fn nearest_within<'t>(
    tree: &'t Tree,
    at: &[f32; 3],
    radius_km: f64,
    pool: usize,
    skip: Option<u32>,
    frontier: &mut Frontier<'t>,
    out: &mut Vec<u32>,
) {
    if tree.size() == 0 || radius_km.is_nan() || pool == 0 {
        return;
    }
    frontier.walk(tree, at, search_radius2(radius_km), pool, skip, out);
}

/// The squared chord a search of `radius_km` reaches: a hair wider, so that f32 rounding does not drop a
/// point right on the limit (callers check distances).
pub(crate) fn search_radius2(radius_km: f64) -> f32 {
    (chord2(radius_km) * (1.0 + 1e-5) + 1e-6) as f32
}

/// Frontier of a best-first walk: nodes and points by squared distance, nearest on top.
#[derive(Default)]
pub(crate) struct Frontier<'t> {
    queue: BinaryHeap<Queued<'t>>,
    /// Smallest squared distances of the points queued (at most `pool`, ascending): once there are
    /// `pool`, nothing farther than the last can be reached before the walk ends, so it is not queued.
    nearest: Vec<f32>,
}

struct Queued<'t> {
    d2: f32,
    node: &'t RTreeNode<Point>,
}

impl PartialEq for Queued<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Queued<'_> {}

impl PartialOrd for Queued<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued<'_> {
    /// Reversed: the nearest is the greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.d2.total_cmp(&self.d2)
    }
}

impl<'t> Frontier<'t> {
    /// The walk of [`nearest_within`]: points come off the frontier by distance; once `pool` are kept,
    /// the points at the same distance as the last one still come, and the tie is settled by index.
    fn walk(
        &mut self,
        tree: &'t Tree,
        at: &[f32; 3],
        r2: f32,
        pool: usize,
        skip: Option<u32>,
        out: &mut Vec<u32>,
    ) {
        self.queue.clear();
        self.nearest.clear();
        let start = out.len();
        let mut limit = r2;
        self.enqueue(tree.root().children(), at, &mut limit, pool, skip);
        // Where the points at the distance of the last one kept begin in `out`, and that distance.
        let (mut tied_from, mut tied_d2) = (start, f32::NAN);
        // The distance of the `pool`-th point, once reached.
        let mut cut: Option<f32> = None;
        while let Some(Queued { d2, node }) = self.queue.pop() {
            match node {
                RTreeNode::Parent(p) => self.enqueue(p.children(), at, &mut limit, pool, skip),
                RTreeNode::Leaf(p) => {
                    if cut.is_some_and(|cut| d2 != cut) {
                        break;
                    }
                    if skip == Some(p.data) {
                        continue;
                    }
                    if d2 != tied_d2 {
                        (tied_from, tied_d2) = (out.len(), d2);
                    }
                    out.push(p.data);
                    if cut.is_none() && out.len() - start >= pool {
                        cut = Some(d2);
                        limit = d2;
                    }
                }
            }
        }
        if out.len() - start > pool {
            out[tied_from..].sort_unstable();
            out.truncate(start + pool);
        }
    }

    fn enqueue(
        &mut self,
        nodes: &'t [RTreeNode<Point>],
        at: &[f32; 3],
        limit: &mut f32,
        pool: usize,
        skip: Option<u32>,
    ) {
        for node in nodes {
            let d2 = match node {
                RTreeNode::Parent(p) => p.envelope().distance_2(at),
                RTreeNode::Leaf(p) => p.distance_2(at),
            };
            if d2 > *limit {
                continue;
            }
            if let RTreeNode::Leaf(p) = node
                && skip != Some(p.data)
            {
                let rank = self.nearest.partition_point(|x| *x <= d2);
                if rank < pool {
                    self.nearest.insert(rank, d2);
                    self.nearest.truncate(pool);
                    if let Some(bound) = self.nearest.get(pool - 1) {
                        *limit = limit.min(*bound);
                    }
                }
            }
            self.queue.push(Queued { d2, node });
        }
    }
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn valid_coords(lat: f64, lng: f64) -> bool {
    lat.is_finite()
        && lng.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lng)
}

/// Z-order key of a position (16 bits of latitude and of longitude, interleaved).
fn morton(lat: f64, lng: f64) -> u64 {
    fn spread(v: u64) -> u64 {
        let mut x = v & 0xFFFF;
        x = (x | (x << 8)) & 0x00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333;
        (x | (x << 1)) & 0x5555_5555
    }
    let y = ((lat + 90.0) / 180.0 * 65535.0) as u64;
    let x = ((lng + 180.0) / 360.0 * 65535.0) as u64;
    spread(x) | (spread(y) << 1)
}

fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

impl Snapshot {
    /// Validates, interns and indexes. Rows that cannot be used (unknown actor, unknown class, bad code,
    /// bad coordinates, duplicate id) are left out and listed in [`Snapshot::skipped`].
    pub fn build(
        actors: Vec<SnapActor>,
        resources: Vec<SnapResource>,
        taxonomy: &Taxonomy,
        knowledge: &Knowledge,
    ) -> Snapshot {
        let mut skipped = Vec::new();
        // Sorts with a cached key move each (large) row about once, where a merge sort moves it log n times.
        let mut actors = actors;
        actors.sort_by_cached_key(|a| a.id);
        let mut kept_actors: Vec<IndexedActor> = Vec::with_capacity(actors.len());
        for a in actors {
            if kept_actors.last().is_some_and(|k| k.id == a.id) {
                skipped.push(Skipped {
                    id: a.id,
                    reason: "duplicate actor id".into(),
                });
            } else if !valid_coords(a.lat, a.lng) {
                skipped.push(Skipped {
                    id: a.id,
                    reason: "actor coordinates out of range".into(),
                });
            } else {
                kept_actors.push(IndexedActor::new(
                    a.id, a.name, a.naf_code, a.lat, a.lng, a.commune,
                ));
            }
        }
        // Spatial (Morton) order, so that neighbours are also neighbours in memory.
        kept_actors.sort_by_cached_key(|a| (morton(a.lat, a.lng), a.id));
        let mut actor_ids: Vec<(Uuid, u32)> = kept_actors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i as u32))
            .collect();
        actor_ids.sort_unstable();
        let actor_index = |id: Uuid| {
            actor_ids
                .binary_search_by_key(&id, |(a, _)| *a)
                .ok()
                .map(|i| actor_ids[i].1)
        };

        let mut resources = resources;
        resources.sort_by_cached_key(|r| r.id);
        // Rows are validated independently (the duplicate check only looks at the previous id): two
        // halves on two threads, concatenated in order. Each thread also frees its rows' strings.
        let second_half = resources.split_off(resources.len() / 2);
        let last_of_first = resources.last().map(|r| r.id);
        let (mut kept, skipped_resources) = std::thread::scope(|s| {
            let tail = s.spawn(|| {
                Self::index_resources(second_half, last_of_first, taxonomy, &actor_index)
            });
            let (mut kept, mut skipped) =
                Self::index_resources(resources, None, taxonomy, &actor_index);
            let (kept_tail, skipped_tail) = join(tail);
            kept.extend(kept_tail);
            skipped.extend(skipped_tail);
            (kept, skipped)
        });
        skipped.extend(skipped_resources);
        // Grouped by actor (so in spatial order too), then by id.
        kept.sort_by_cached_key(|r| (r.actor, r.id));
        let mut resource_ids: Vec<(Uuid, u32)> = kept
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, i as u32))
            .collect();
        resource_ids.sort_unstable();

        // Actor → resources table and receiver rules: on this thread while the trees are built.
        let tables = || {
            let n_actors = kept_actors.len();
            let mut counts = vec![0u32; n_actors + 1];
            for r in &kept {
                counts[r.actor as usize + 1] += 1;
            }
            for i in 1..counts.len() {
                counts[i] += counts[i - 1];
            }
            let actor_start = counts.clone();
            let mut fill = counts;
            let mut actor_resources = vec![0u32; kept.len()];
            for (i, r) in kept.iter().enumerate() {
                let slot = &mut fill[r.actor as usize];
                actor_resources[*slot as usize] = i as u32;
                *slot += 1;
            }

            // Receiver rules, computed once per distinct (code, class, provider division) of the offers.
            let mut rule_index: HashMap<(Option<EwcCode>, ClassId, Option<NaceKey>), u32> =
                HashMap::new();
            let mut rule_sets: Vec<Vec<ReceiverRule>> = Vec::new();
            let offer_rules: Vec<u32> = kept
                .iter()
                .map(|r| {
                    if r.kind != ResourceKind::Offer {
                        return u32::MAX;
                    }
                    let provider = kept_actors[r.actor as usize].nace.map(NaceKey::division);
                    *rule_index
                        .entry((r.ewc, r.class, provider))
                        .or_insert_with(|| {
                            rule_sets
                                .push(knowledge.receiver_rules(taxonomy, r.ewc, r.class, provider));
                            (rule_sets.len() - 1) as u32
                        })
                })
                .collect();
            (actor_start, actor_resources, offer_rules, rule_sets)
        };
        let n_classes = taxonomy.len();
        let (
            (needs_by_class, offers_by_class, needs_by_code, offers_by_code, actors_by_nace),
            (actor_start, actor_resources, offer_rules, rule_sets),
        ) = std::thread::scope(|s| {
            let kept = &kept;
            let actors = &kept_actors;
            let by_class = |kind: ResourceKind| {
                let mut pts: Vec<Vec<Point>> = vec![Vec::new(); n_classes];
                for (i, r) in kept.iter().enumerate().filter(|(_, r)| r.kind == kind) {
                    pts[r.class.index()].push(Point::new(actors[r.actor as usize].xyz, i as u32));
                }
                pts.into_iter()
                    .map(Tree::bulk_load_with_params)
                    .collect::<Vec<_>>()
            };
            let by_code = |kind: ResourceKind| {
                let mut pts: HashMap<EwcCode, Vec<Point>> = HashMap::new();
                for (i, r) in kept.iter().enumerate().filter(|(_, r)| r.kind == kind) {
                    let p = Point::new(actors[r.actor as usize].xyz, i as u32);
                    let mut codes: Vec<EwcCode> = r
                        .ewc
                        .into_iter()
                        .chain(r.accepted.iter().copied())
                        .collect();
                    codes.sort_unstable();
                    codes.dedup();
                    for c in codes {
                        pts.entry(c).or_default().push(p);
                    }
                }
                pts.into_iter()
                    .map(|(c, v)| (c, Tree::bulk_load_with_params(v)))
                    .collect::<HashMap<_, _>>()
            };
            let needs_class = s.spawn(move || by_class(ResourceKind::Need));
            let offers_class = s.spawn(move || by_class(ResourceKind::Offer));
            let needs_code = s.spawn(move || by_code(ResourceKind::Need));
            let offers_code = s.spawn(move || by_code(ResourceKind::Offer));
            let tables = tables();
            let mut pts: HashMap<NaceKey, Vec<Point>> = HashMap::new();
            let receivers = knowledge.receiver_keys();
            for (i, a) in actors.iter().enumerate() {
                let keys = a.nace.into_iter().flat_map(NaceKey::prefixes);
                for k in keys.filter(|k| receivers.contains(k)) {
                    pts.entry(k).or_default().push(Point::new(a.xyz, i as u32));
                }
            }
            let by_nace: HashMap<NaceKey, Tree> = pts
                .into_iter()
                .map(|(k, v)| (k, Tree::bulk_load_with_params(v)))
                .collect();
            (
                (
                    join(needs_class),
                    join(offers_class),
                    join(needs_code),
                    join(offers_code),
                    by_nace,
                ),
                tables,
            )
        });

        Snapshot {
            taxonomy: taxonomy.clone(),
            knowledge: knowledge.clone(),
            actors: kept_actors,
            actor_ids,
            resource_ids,
            resources: kept,
            skipped,
            actor_start,
            actor_resources,
            needs_by_class,
            offers_by_class,
            needs_by_code,
            offers_by_code,
            actors_by_nace,
            offer_rules,
            rule_sets,
        }
    }

    /// Validates rows sorted by id; `previous` is the id of the row before the first one.
    fn index_resources(
        rows: Vec<SnapResource>,
        mut previous: Option<Uuid>,
        taxonomy: &Taxonomy,
        actor_index: &impl Fn(Uuid) -> Option<u32>,
    ) -> (Vec<IndexedResource>, Vec<Skipped>) {
        let mut kept = Vec::with_capacity(rows.len());
        let mut skipped = Vec::new();
        for r in rows {
            let id = r.id;
            match Self::index_resource(r, taxonomy, actor_index, previous) {
                Ok(ir) => kept.push(ir),
                Err(s) => skipped.push(s),
            }
            previous = Some(id);
        }
        (kept, skipped)
    }

    fn index_resource(
        r: SnapResource,
        taxonomy: &Taxonomy,
        actor_index: &impl Fn(Uuid) -> Option<u32>,
        previous: Option<Uuid>,
    ) -> Result<IndexedResource, Skipped> {
        let skip = |reason: String| Skipped { id: r.id, reason };
        if previous == Some(r.id) {
            return Err(skip("duplicate resource id".into()));
        }
        let actor =
            actor_index(r.actor_id).ok_or_else(|| skip(format!("unknown actor {}", r.actor_id)))?;
        let ewc = match r
            .ewc_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(text) => Some(
                EwcCode::parse(text).ok_or_else(|| skip(format!("invalid EWC code `{text}`")))?,
            ),
            None => None,
        };
        let class = match taxonomy.id(r.class.trim()) {
            Some(id) => id,
            None => ewc
                .and_then(|c| taxonomy.class_id_of_ewc(c))
                .ok_or_else(|| skip(format!("unknown class `{}`", r.class)))?,
        };
        let mut accepted: Vec<EwcCode> = r
            .accepted_ewc
            .iter()
            .filter_map(|c| EwcCode::parse(c))
            .collect();
        accepted.sort_unstable();
        accepted.dedup();
        let hazardous = r.hazardous
            || r.ewc_code
                .as_deref()
                .is_some_and(|c| c.trim_end().ends_with('*'));
        let months = if r.months & ALL_MONTHS == 0 {
            ALL_MONTHS
        } else {
            r.months & ALL_MONTHS
        };
        Ok(IndexedResource {
            id: r.id,
            actor,
            kind: r.kind,
            class,
            ewc,
            accepted: accepted.into_boxed_slice(),
            hazardous,
            yearly_quantity: positive(r.yearly_quantity),
            base_unit: r.base_unit,
            months,
            temperature_c: r.temperature_c.filter(|t| t.is_finite()),
            max_distance_km: r.max_distance_km.filter(|d| d.is_finite() && *d > 0.0),
            label: r.label,
        })
    }

    /// The same snapshot with every actor at `position(actor)` (latitude, longitude): the engine
    /// run on it computes what someone who knows only those positions can compute. Anonymised views
    /// use it to derive every distance-dependent figure from a hidden actor's commune centroid.
    pub fn moved(&self, position: impl Fn(&IndexedActor) -> (f64, f64)) -> Snapshot {
        let actors: Vec<SnapActor> = self
            .actors
            .iter()
            .map(|a| {
                let (lat, lng) = position(a);
                SnapActor {
                    id: a.id,
                    name: a.name.clone(),
                    naf_code: a.naf_code.clone(),
                    lat,
                    lng,
                    commune: a.commune.clone(),
                }
            })
            .collect();
        let resources: Vec<SnapResource> =
            self.resources.iter().map(|r| self.input_of(r)).collect();
        Snapshot::build(actors, resources, &self.taxonomy, &self.knowledge)
    }

    /// The input row an indexed resource of this snapshot was made from, as far as indexing reads
    /// it: the indexed resources are already validated and normalised, so they index back unchanged.
    pub fn input_of(&self, r: &IndexedResource) -> SnapResource {
        SnapResource {
            id: r.id,
            actor_id: self.actors[r.actor as usize].id,
            kind: r.kind,
            class: self.taxonomy.class(r.class).name.clone(),
            ewc_code: r.ewc.map(EwcCode::compact),
            accepted_ewc: r.accepted.iter().map(|c| c.compact()).collect(),
            hazardous: r.hazardous,
            yearly_quantity: r.yearly_quantity,
            base_unit: r.base_unit,
            months: r.months,
            temperature_c: r.temperature_c,
            max_distance_km: r.max_distance_km,
            label: r.label.clone(),
        }
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// Actors, in spatial (Morton) order; see [`Snapshot::actor_index`] to find one by id.
    pub fn actors(&self) -> &[IndexedActor] {
        &self.actors
    }

    /// Resources, grouped by actor (so in spatial order), then by id.
    pub fn resources(&self) -> &[IndexedResource] {
        &self.resources
    }

    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    pub fn actor(&self, index: u32) -> &IndexedActor {
        &self.actors[index as usize]
    }

    pub fn resource(&self, index: u32) -> &IndexedResource {
        &self.resources[index as usize]
    }

    /// (id, index) of every actor, sorted by id.
    pub(crate) fn actor_ids(&self) -> &[(Uuid, u32)] {
        &self.actor_ids
    }

    /// (id, index) of every resource, sorted by id.
    pub(crate) fn resource_ids(&self) -> &[(Uuid, u32)] {
        &self.resource_ids
    }

    pub fn actor_index(&self, id: Uuid) -> Option<u32> {
        let i = self.actor_ids.binary_search_by_key(&id, |(a, _)| *a).ok()?;
        Some(self.actor_ids[i].1)
    }

    pub fn resource_index(&self, id: Uuid) -> Option<u32> {
        let i = self
            .resource_ids
            .binary_search_by_key(&id, |(r, _)| *r)
            .ok()?;
        Some(self.resource_ids[i].1)
    }

    /// Indexes of an actor's resources (offers and needs).
    pub fn resources_of_actor(&self, actor: u32) -> &[u32] {
        let a = actor as usize;
        match (self.actor_start.get(a), self.actor_start.get(a + 1)) {
            (Some(s), Some(e)) => &self.actor_resources[*s as usize..*e as usize],
            _ => &[],
        }
    }

    /// Receiver rules of an offer (empty for a need).
    pub(crate) fn rules_of(&self, resource: u32) -> &[ReceiverRule] {
        self.offer_rules
            .get(resource as usize)
            .and_then(|i| self.rule_sets.get(*i as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// The index in [`Snapshot::rule_sets`] of an offer's receiver rules (`u32::MAX` for a need).
    pub(crate) fn rule_set_of(&self, resource: u32) -> u32 {
        self.offer_rules
            .get(resource as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// The distinct receiver rule sets of the offers (one per code, class and provider division).
    pub(crate) fn rule_sets(&self) -> &[Vec<ReceiverRule>] {
        &self.rule_sets
    }

    /// Great-circle distance between two actors, km.
    pub fn distance_km(&self, a: u32, b: u32) -> f64 {
        let (a, b) = (self.actor(a), self.actor(b));
        haversine_km(a.lat, a.lng, b.lat, b.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_and_haversine_agree() {
        // Paris – Lyon ≈ 392 km.
        let d = haversine_km(48.8566, 2.3522, 45.764, 4.8357);
        assert!((d - 392.0).abs() < 3.0, "{d}");
        let (a, b) = (to_xyz(48.8566, 2.3522), to_xyz(45.764, 4.8357));
        let c2: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        assert!((c2 - chord2(d)).abs() / c2 < 1e-5);
    }

    #[test]
    fn a_moved_snapshot_keeps_every_resource_and_moves_only_positions() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let k = Knowledge::builtin(&t).expect("knowledge");
        let actor = |n: u128, lat: f64| SnapActor {
            id: Uuid::from_u128(n),
            name: format!("A{n}"),
            naf_code: Some("23.51Z".into()),
            lat,
            lng: 4.0,
            commune: "X".into(),
        };
        let res =
            |n: u128, actor: u128, kind, code: Option<&str>, accepted: &[&str]| SnapResource {
                id: Uuid::from_u128(n),
                actor_id: Uuid::from_u128(actor),
                kind,
                class: String::new(),
                ewc_code: code.map(Into::into),
                accepted_ewc: accepted.iter().map(|c| c.to_string()).collect(),
                hazardous: false,
                yearly_quantity: Some(12.0),
                base_unit: Some(BaseUnit::Tonne),
                months: 0b11,
                temperature_c: Some(60.0),
                max_distance_km: Some(30.0),
                label: format!("r{n}"),
            };
        let snap = Snapshot::build(
            vec![actor(1, 47.0), actor(2, 47.1)],
            vec![
                res(10, 1, ResourceKind::Offer, Some("10 01 02"), &[]),
                res(11, 2, ResourceKind::Offer, Some("13 02 05*"), &[]),
                res(
                    12,
                    2,
                    ResourceKind::Need,
                    Some("10 01 02"),
                    &["10 01 02", "10 01 03"],
                ),
            ],
            &t,
            &k,
        );
        let same = snap.moved(|a| (a.lat, a.lng));
        assert_eq!(same.actors(), snap.actors());
        assert_eq!(same.resources(), snap.resources());
        let moved = snap.moved(|a| (a.lat + 0.5, a.lng));
        let a1 = moved.actor_index(Uuid::from_u128(1)).expect("actor 1");
        assert_eq!(moved.actor(a1).lat, 47.5);
        let by_id = |s: &Snapshot| {
            let mut r: Vec<(Uuid, bool, u16)> = s
                .resources()
                .iter()
                .map(|r| (r.id, r.hazardous, r.months))
                .collect();
            r.sort();
            r
        };
        assert_eq!(by_id(&moved), by_id(&snap));
    }

    #[test]
    fn build_skips_unusable_rows() {
        let t = Taxonomy::builtin().expect("taxonomy");
        let k = Knowledge::builtin(&t).expect("knowledge");
        let actor = |n: u128, lat: f64| SnapActor {
            id: Uuid::from_u128(n),
            name: format!("A{n}"),
            naf_code: Some("23.51Z".into()),
            lat,
            lng: 4.0,
            commune: "X".into(),
        };
        let res = |n: u128, actor: u128, class: &str, code: Option<&str>| SnapResource {
            id: Uuid::from_u128(n),
            actor_id: Uuid::from_u128(actor),
            kind: ResourceKind::Offer,
            class: class.into(),
            ewc_code: code.map(Into::into),
            accepted_ewc: vec![],
            hazardous: false,
            yearly_quantity: Some(-3.0),
            base_unit: None,
            months: 0,
            temperature_c: None,
            max_distance_km: None,
            label: "x".into(),
        };
        let snap = Snapshot::build(
            vec![actor(1, 47.0), actor(2, 123.0), actor(1, 47.0)],
            vec![
                res(10, 1, "", Some("10 01 02")),
                res(11, 1, "no/such/class", None),
                res(12, 9, "material", None),
                res(13, 1, "material", Some("12")),
                res(14, 1, "material/plastic", Some("13 02 05*")),
            ],
            &t,
            &k,
        );
        assert_eq!(snap.actors().len(), 1);
        assert_eq!(snap.resources().len(), 2);
        assert_eq!(snap.skipped().len(), 5);
        let r = snap.resource(0);
        assert_eq!(t.class(r.class).name, "material/mineral/ash");
        assert_eq!(r.months, ALL_MONTHS);
        assert_eq!(r.yearly_quantity, None);
        assert!(snap.resource(1).hazardous);
        assert_eq!(snap.resources_of_actor(0), &[0, 1]);
        assert!(!snap.rules_of(0).is_empty());
    }

    #[test]
    fn nearest_within_keeps_the_first_points_by_distance_then_index_whatever_the_tree() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Sites around Lyon, several points per site (exact ties), as in a snapshot.
        let sites: Vec<[f32; 3]> = (0..400)
            .map(|_| {
                to_xyz(
                    45.7 + rng.random_range(-0.5..0.5),
                    4.8 + rng.random_range(-0.7..0.7),
                )
            })
            .collect();
        let mut points: Vec<Point> = (0..1_500u32)
            .map(|i| Point::new(sites[rng.random_range(0..sites.len())], i))
            .collect();
        let tree = Tree::bulk_load_with_params(points.clone());
        // The same points in another order, less one: another tree shape.
        points.shuffle(&mut rng);
        let removed = points.pop().map(|p| p.data);
        let other = Tree::bulk_load_with_params(points);
        let mut frontier = Frontier::default();
        let mut ties_cut = 0;
        for (i, at) in sites.iter().enumerate().take(200) {
            for (radius, pool) in [(5.0, 1), (20.0, 8), (40.0, 3), (80.0, 24), (0.0, 8)] {
                let skip = (i % 2 == 0).then_some(i as u32);
                let r2 = search_radius2(radius);
                let expected = |tree: &Tree| {
                    let mut all: Vec<(f32, u32)> =
                        tree.iter().map(|p| (p.distance_2(at), p.data)).collect();
                    all.retain(|(d2, i)| *d2 <= r2 && Some(*i) != skip);
                    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    all.truncate(pool);
                    let mut kept: Vec<u32> = all.into_iter().map(|(_, i)| i).collect();
                    kept.sort_unstable();
                    kept
                };
                let mut answers = Vec::new();
                for tree in [&tree, &other] {
                    let mut found = Vec::new();
                    nearest_within(tree, at, radius, pool, skip, &mut frontier, &mut found);
                    found.sort_unstable();
                    assert_eq!(
                        found,
                        expected(tree),
                        "site {i}, radius {radius}, pool {pool}"
                    );
                    answers.push(found);
                }
                // A point removed beyond a search's answer changes nothing in it.
                if !answers[0].iter().any(|i| Some(*i) == removed) {
                    assert_eq!(answers[0], answers[1]);
                }
                let mut all = Vec::new();
                nearest_within(&tree, at, radius, usize::MAX, skip, &mut frontier, &mut all);
                let dist = |i: &u32| tree.iter().find(|p| p.data == *i).map(|p| p.distance_2(at));
                if all.len() > pool && dist(&all[pool - 1]) == dist(&all[pool]) {
                    ties_cut += 1;
                }
            }
        }
        // The case that matters: the cut falls inside a group of points at one distance.
        assert!(ties_cut > 50, "{ties_cut} searches cut a tie");
        let mut none = Vec::new();
        nearest_within(&tree, &sites[0], 40.0, 0, None, &mut frontier, &mut none);
        assert!(none.is_empty(), "a pool of 0 keeps nothing");
    }
}
