//! A detection after a change, from the previous one: the offers a change can reach are matched again,
//! every other offer keeps its candidates, their indexes moved to the new snapshot.
//!
//! Why this gives what a full detection gives. An offer's candidates are a function of what its searches
//! return — the first points of a tree in (distance, index) order within its radius
//! ([`nearest_within`]) — and of the entities so found (needs, receiving actors and their resources).
//! A change (a resource or an actor added, removed or altered) is a point in some trees, at its actor's
//! position, before or after or both. If that point is not in the answer of any search an offer runs,
//! before nor after, each search answers the same entities (a point beyond the last one kept does not
//! enter, removing one that was not kept changes nothing) and those entities are unchanged: the offer's
//! candidates are the same, in the same order, since snapshot indexes follow a total order on keys that
//! a change does not alter for the others. [`Carry::plan`] runs, for each changed point, the searches
//! that could return it — those of the offers of a class, code or receiver rule that searches its tree,
//! within their radius — and marks the offers whose answer holds it.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::offer_radius;
use crate::domain::resource::ResourceKind;
use crate::matching::compat::accepts_code;
use crate::matching::snapshot::{
    Frontier, IndexedResource, Snapshot, Tree, nearest_within, search_radius2,
};
use crate::matching::{Candidate, ClassId, EwcCode, NaceKey, SearchLimits};

/// An index of the previous snapshot without a counterpart in the new one (gone or changed).
const GONE: u32 = u32::MAX;

/// Which offers of a new snapshot keep the candidates they had in the previous one, and where the
/// previous indexes went.
#[derive(Debug)]
pub struct Carry {
    /// Previous resource index → its index in the new snapshot when it is unchanged, else [`GONE`].
    resources: Vec<u32>,
    /// Previous actor index → its index in the new snapshot when it is unchanged, else [`GONE`].
    actors: Vec<u32>,
    /// By previous resource index: an offer whose candidates carry over.
    carried: Vec<bool>,
    /// Offers of the new snapshot to match again, ascending.
    rematch: Vec<u32>,
    /// Actors and resources added, removed or changed.
    changes: usize,
}

/// One of the two snapshots, seen from a changed point.
#[derive(Clone, Copy)]
struct Side<'a> {
    snap: &'a Snapshot,
    /// New offer index → its index in this snapshot (`None` for the new snapshot itself).
    from_next: Option<&'a [u32]>,
}

impl Side<'_> {
    fn offer_here(&self, next_index: u32) -> u32 {
        self.from_next
            .map_or(next_index, |map| map[next_index as usize])
    }
}

impl Carry {
    /// Compares two snapshots (matched with the same knowledge and settings) and finds the offers a
    /// change reaches; `None` when more than `max_changes` actors and resources changed (a full
    /// detection is then as quick).
    pub fn plan(
        previous: &Snapshot,
        next: &Snapshot,
        limits: &SearchLimits,
        max_changes: usize,
    ) -> Option<Carry> {
        let actors = map_actors(previous, next);
        let resources = map_resources(previous, next, &actors);
        let before = |map: &[u32], len: usize| {
            let mut inverse = vec![GONE; len];
            for (old, new) in map.iter().enumerate() {
                if *new != GONE {
                    inverse[*new as usize] = old as u32;
                }
            }
            inverse
        };
        let old_resource = before(&resources, next.resources.len());
        let old_actor = before(&actors, next.actors.len());
        let gone = |map: &[u32]| map.iter().filter(|i| **i == GONE).count();
        let changes = gone(&resources) + gone(&actors) + gone(&old_resource) + gone(&old_actor);
        if changes > max_changes {
            return None;
        }
        let mut affected: Vec<bool> = next
            .resources
            .iter()
            .zip(&old_resource)
            .map(|(r, old)| r.kind == ResourceKind::Offer && *old == GONE)
            .collect();
        let sides = [
            Side {
                snap: previous,
                from_next: Some(&old_resource),
            },
            Side {
                snap: next,
                from_next: None,
            },
        ];
        // The class of the offers of each rule set (a set is made for one code, class and division).
        let mut set_class = vec![None; next.rule_sets().len()];
        for (o, r) in next.resources.iter().enumerate() {
            if let Some(class) = set_class.get_mut(next.rule_set_of(o as u32) as usize) {
                *class = Some(r.class);
            }
        }
        let mut probe = Probe {
            next,
            unchanged: &old_resource,
            limits,
            affected: &mut affected,
            frontier: Frontier::default(),
            found: Vec::new(),
            widest: search_radius2(widest_radius(next)),
            set_class,
            searchers: HashMap::new(),
        };
        // Points of the previous snapshot without a counterpart, then of the new one.
        let changed = [(&resources, &actors), (&old_resource, &old_actor)];
        for (side, (resources, actors)) in sides.iter().zip(changed) {
            // Actors whose resources changed, or which changed themselves (`None`: every offer
            // that finds them may be touched).
            let mut touched: BTreeMap<u32, Option<Vec<u32>>> = (0..actors.len() as u32)
                .filter(|a| actors[*a as usize] == GONE)
                .map(|a| (a, None))
                .collect();
            for (r, _) in resources.iter().enumerate().filter(|(_, i)| **i == GONE) {
                let res = side.snap.resource(r as u32);
                if res.kind == ResourceKind::Need {
                    probe.need(*side, r as u32, res);
                }
                // Offers that find its actor read its resources (its needs, and whether it offers
                // the same or declares a related need).
                if let Some(list) = touched.entry(res.actor).or_insert(Some(Vec::new())) {
                    list.push(r as u32);
                }
            }
            for (a, resources) in touched {
                probe.actor(*side, a, resources.as_deref());
            }
        }
        let rematch: Vec<u32> = (0..next.resources.len() as u32)
            .filter(|i| affected[*i as usize])
            .collect();
        let carried = resources
            .iter()
            .enumerate()
            .map(|(old, new)| {
                previous.resource(old as u32).kind == ResourceKind::Offer
                    && *new != GONE
                    && !affected[*new as usize]
            })
            .collect();
        Some(Carry {
            resources,
            actors,
            carried,
            rematch,
            changes,
        })
    }

    /// Offers of the new snapshot to match again ([`crate::matching::detect_offers`]), ascending.
    pub fn rematched(&self) -> &[u32] {
        &self.rematch
    }

    /// Actors and resources added, removed or changed.
    pub fn changes(&self) -> usize {
        self.changes
    }

    /// Whether the candidates of a previous offer carry over.
    pub fn carries(&self, previous_offer: u32) -> bool {
        self.carried
            .get(previous_offer as usize)
            .copied()
            .unwrap_or(false)
    }

    /// A candidate of a carried offer with the new snapshot's indexes; `None` if one of its parties
    /// has no counterpart, which [`Carry::plan`] rules out (the caller then detects in full).
    pub fn moved(&self, c: &Candidate) -> Option<Candidate> {
        let new = |map: &[u32], i: u32| map.get(i as usize).copied().filter(|i| *i != GONE);
        let offer = new(&self.resources, c.offer)?;
        let target = if c.latent {
            new(&self.actors, c.target)?
        } else {
            new(&self.resources, c.target)?
        };
        Some(Candidate {
            offer,
            target,
            ..*c
        })
    }
}

/// By rule set, whether it searches a tree of receivers; by class, whether offers of that class use
/// such a set.
type Searchers = (Rc<[bool]>, Rc<[bool]>);

/// Runs the searches that could return a changed point and marks the offers whose answer holds it.
struct Probe<'a> {
    next: &'a Snapshot,
    /// New resource index → previous index ([`GONE`] when new or changed).
    unchanged: &'a [u32],
    limits: &'a SearchLimits,
    affected: &'a mut Vec<bool>,
    frontier: Frontier<'a>,
    found: Vec<u32>,
    /// The squared chord of the widest class radius.
    widest: f32,
    /// The class of the offers of each of the new snapshot's rule sets.
    set_class: Vec<Option<ClassId>>,
    searchers: HashMap<NaceKey, Searchers>,
}

impl<'a> Probe<'a> {
    /// A need added, removed or changed: the offers that search its class's tree or its codes' trees.
    fn need(&mut self, side: Side<'a>, need: u32, res: &IndexedResource) {
        let snap = side.snap;
        let at = snap.actor(res.actor).xyz;
        let tax = &self.next.taxonomy;
        let tree = &snap.needs_by_class[res.class.index()];
        let searched_by = |offer_class: ClassId| tax.relation(offer_class, res.class).is_some();
        for o in offers_around(self.next, &at, searched_by) {
            self.check(side, o, tree, self.limits.neighbour_pool, false, need);
        }
        let mut codes: Vec<EwcCode> = res
            .ewc
            .into_iter()
            .chain(res.accepted.iter().copied())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let widest = self.widest;
        for code in codes {
            let (Some(tree), Some(offers)) = (
                snap.needs_by_code.get(&code),
                self.next.offers_by_code.get(&code),
            ) else {
                continue;
            };
            let around: Vec<u32> = offers
                .locate_within_distance(at, widest)
                .map(|p| p.data)
                .filter(|o| self.next.resource(*o).ewc == Some(code))
                .collect();
            for o in around {
                self.check(side, o, tree, self.limits.neighbour_pool, false, need);
            }
        }
    }

    /// An actor added, removed or changed (`resources` is `None`), or whose `resources` changed: the
    /// offers whose receiver rules search a tree of its activity, and which read what changed — an
    /// offer reads a receiver's needs of a related class or accepting its code, and its offers of its
    /// own class (`Ctx::offer_candidates`).
    fn actor(&mut self, side: Side<'a>, actor: u32, resources: Option<&[u32]>) {
        let snap = side.snap;
        let a = snap.actor(actor);
        let tax = &snap.taxonomy;
        let reads = |offer: &IndexedResource| {
            resources.is_none_or(|changed| {
                changed
                    .iter()
                    .map(|r| snap.resource(*r))
                    .any(|r| match r.kind {
                        ResourceKind::Need => {
                            tax.relation(offer.class, r.class).is_some() || accepts_code(offer, r)
                        }
                        ResourceKind::Offer => r.class == offer.class,
                    })
            })
        };
        let keys: Vec<_> = a
            .nace
            .into_iter()
            .flat_map(|k| k.prefixes())
            .filter_map(|k| snap.actors_by_nace.get(&k).map(|tree| (k, tree)))
            .collect();
        let next = self.next;
        for (key, tree) in keys {
            let (searching, classes) = self.searchers(key);
            for o in offers_around(next, &a.xyz, |c| classes[c.index()]) {
                let set = next.rule_set_of(o) as usize;
                if searching.get(set).copied().unwrap_or(false) && reads(next.resource(o)) {
                    self.check(side, o, tree, self.limits.receiver_pool, true, actor);
                }
            }
        }
    }

    /// The rule sets that search the tree of `key`, and the classes of their offers (kept for the
    /// other actors of that activity).
    fn searchers(&mut self, key: NaceKey) -> Searchers {
        let next = self.next;
        let set_class = &self.set_class;
        self.searchers
            .entry(key)
            .or_insert_with(|| {
                let searching: Rc<[bool]> = next
                    .rule_sets()
                    .iter()
                    .map(|rules| rules.iter().any(|r| r.key == key))
                    .collect();
                let mut classes = vec![false; next.taxonomy.len()];
                for (set, class) in set_class.iter().enumerate() {
                    if let (true, Some(class)) = (searching[set], class) {
                        classes[class.index()] = true;
                    }
                }
                (searching, classes.into())
            })
            .clone()
    }

    /// Marks offer `o` (new index) when its search of `tree` on `side` returns `point`.
    fn check(
        &mut self,
        side: Side<'a>,
        o: u32,
        tree: &'a Tree,
        pool: usize,
        skip_own: bool,
        point: u32,
    ) {
        if self.affected[o as usize] || self.unchanged[o as usize] == GONE {
            return;
        }
        let here = side.offer_here(o);
        let res = side.snap.resource(here);
        let at = side.snap.actor(res.actor).xyz;
        let skip = skip_own.then_some(res.actor);
        self.found.clear();
        let radius = offer_radius(side.snap, res);
        nearest_within(
            tree,
            &at,
            radius,
            pool,
            skip,
            &mut self.frontier,
            &mut self.found,
        );
        if self.found.contains(&point) {
            self.affected[o as usize] = true;
        }
    }
}

/// Offers of the snapshot within their class's radius of `at`, for the classes `class_ok` accepts.
fn offers_around(snap: &Snapshot, at: &[f32; 3], class_ok: impl Fn(ClassId) -> bool) -> Vec<u32> {
    let mut around = Vec::new();
    for (i, tree) in snap.offers_by_class.iter().enumerate() {
        let class = ClassId(i as u16);
        if tree.size() == 0 || !class_ok(class) {
            continue;
        }
        let r2 = search_radius2(snap.taxonomy.class(class).max_distance_km);
        around.extend(tree.locate_within_distance(*at, r2).map(|p| p.data));
    }
    around
}

/// The largest class radius: no search reaches farther.
fn widest_radius(snap: &Snapshot) -> f64 {
    (0..snap.taxonomy.len())
        .map(|i| snap.taxonomy.class(ClassId(i as u16)).max_distance_km)
        .fold(0.0, f64::max)
}

/// Previous actor index → new index of the same actor, when nothing the matching reads of it changed
/// (position, activity).
fn map_actors(previous: &Snapshot, next: &Snapshot) -> Vec<u32> {
    let mut map = vec![GONE; previous.actors.len()];
    merge_ids(previous.actor_ids(), next.actor_ids(), |old, new| {
        let (a, b) = (previous.actor(old), next.actor(new));
        if a.lat == b.lat && a.lng == b.lng && a.nace == b.nace {
            map[old as usize] = new;
        }
    });
    map
}

/// Previous resource index → new index of the same resource, when it and its actor are unchanged for
/// the matching (its label is not read by it).
fn map_resources(previous: &Snapshot, next: &Snapshot, actors: &[u32]) -> Vec<u32> {
    let mut map = vec![GONE; previous.resources.len()];
    merge_ids(previous.resource_ids(), next.resource_ids(), |old, new| {
        let (a, b) = (previous.resource(old), next.resource(new));
        let same = actors[a.actor as usize] == b.actor
            && a.kind == b.kind
            && a.class == b.class
            && a.ewc == b.ewc
            && a.accepted == b.accepted
            && a.hazardous == b.hazardous
            && a.yearly_quantity == b.yearly_quantity
            && a.base_unit == b.base_unit
            && a.months == b.months
            && a.temperature_c == b.temperature_c
            && a.max_distance_km == b.max_distance_km;
        if same {
            map[old as usize] = new;
        }
    });
    map
}

/// Calls `same(old, new)` for each id in both lists (sorted by id).
fn merge_ids(old: &[(uuid::Uuid, u32)], new: &[(uuid::Uuid, u32)], mut same: impl FnMut(u32, u32)) {
    let (mut i, mut j) = (0, 0);
    while let (Some(a), Some(b)) = (old.get(i), new.get(j)) {
        match a.0.cmp(&b.0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                same(a.1, b.1);
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
