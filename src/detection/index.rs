//! Lookups kept with each build: a synergy by id, when each was first detected, and which
//! synergies touch each département and actor (for territory and actor lists).

use std::collections::HashMap;

use rayon::prelude::*;
use uuid::Uuid;

use super::substitutions::Substitutions;
use super::{Actors, Built};
use crate::matching::Snapshot;
use crate::matching::pooling::PoolingGroup;

/// Where a synergy sits in a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Substitution(u32),
    Pooling(u32),
}

/// Synergy id → its place in a build: one synergy is found without a scan. Substitutions are their
/// positions in the build's list, in the order of their ids: 4 bytes a synergy, the ids being read
/// from the list itself. With the ids copied beside the positions it was 20 bytes: at 6.5M synergies,
/// 104 MB more in each of the three builds and views a rebuild's end holds.
#[derive(Debug, Default)]
pub struct SynergyIndex {
    by_id: Vec<u32>,
    pooling: HashMap<Uuid, u32>,
}

impl SynergyIndex {
    pub fn new(synergies: &Substitutions, pooling: &[PoolingGroup]) -> SynergyIndex {
        // Sorted with their ids beside them (reading each id through its position while sorting
        // would be a random read per comparison), then only the positions are kept.
        // Positions fit in u32: a build of more than 4 billion synergies is out of reach anyway.
        let mut sorted: Vec<(Uuid, u32)> = synergies
            .as_slice()
            .par_iter()
            .enumerate()
            .map(|(i, d)| (d.id, i as u32))
            .collect();
        sorted.par_sort_unstable_by_key(|(id, _)| *id);
        let by_id = sorted.into_par_iter().map(|(_, i)| i).collect();
        let pooling = pooling
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id, i as u32))
            .collect();
        SynergyIndex { by_id, pooling }
    }

    /// Where synergy `id` is, `synergies` being the list this index was made for.
    pub fn get(&self, synergies: &Substitutions, id: &Uuid) -> Option<Slot> {
        let found = self
            .by_id
            .binary_search_by(|&i| id_at(synergies, i).cmp(id));
        match found {
            Ok(i) => Some(Slot::Substitution(self.by_id[i])),
            Err(_) => self.pooling.get(id).map(|&i| Slot::Pooling(i)),
        }
    }

    /// Every id of this index or of `other`, in id order for substitutions (then pooling groups),
    /// with its slot in each: one merge over the two id orders (`synergies` and `other_synergies`
    /// are the lists the two indexes were made for). Comparing two builds this way reads the
    /// indexes in order; looking each id up in the other build (a binary search over millions)
    /// was a large part of a rebuild and of an anonymous view at national scale.
    pub fn each_pair(
        &self,
        synergies: &Substitutions,
        other: &SynergyIndex,
        other_synergies: &Substitutions,
        mut f: impl FnMut(&Uuid, Option<Slot>, Option<Slot>),
    ) {
        let mine = self.by_id.iter().map(|&i| (id_at(synergies, i), i));
        let theirs = other.by_id.iter().map(|&j| (id_at(other_synergies, j), j));
        let (mut mine, mut theirs) = (mine.peekable(), theirs.peekable());
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            match order {
                std::cmp::Ordering::Less => {
                    if let Some((id, i)) = mine.next() {
                        f(&id, Some(Slot::Substitution(i)), None);
                    }
                }
                std::cmp::Ordering::Greater => {
                    if let Some((id, j)) = theirs.next() {
                        f(&id, None, Some(Slot::Substitution(j)));
                    }
                }
                std::cmp::Ordering::Equal => {
                    if let (Some((id, i)), Some((_, j))) = (mine.next(), theirs.next()) {
                        f(
                            &id,
                            Some(Slot::Substitution(i)),
                            Some(Slot::Substitution(j)),
                        );
                    }
                }
            }
        }
        for (id, &i) in &self.pooling {
            f(
                id,
                Some(Slot::Pooling(i)),
                other.pooling.get(id).map(|&j| Slot::Pooling(j)),
            );
        }
        for (id, &j) in &other.pooling {
            if !self.pooling.contains_key(id) {
                f(id, None, Some(Slot::Pooling(j)));
            }
        }
    }
}

/// The id of the synergy at `position` (positions come from the index made for `synergies`; the nil
/// id, which no SHA-1 id is, should one be missing).
fn id_at(synergies: &Substitutions, position: u32) -> Uuid {
    synergies.get(position).map_or(Uuid::nil(), |d| d.id)
}

/// When each synergy of a build was first detected, aligned with `synergies` and `pooling`: 4 bytes
/// a synergy, an index into the times of the builds (one per build that detected something new), not
/// a time each (12 bytes; at 6.5M synergies a build, its view and the next build held 230 MB of them).
#[derive(Debug, Default)]
pub struct FirstSeen {
    times: Vec<chrono::NaiveDateTime>,
    synergies: Vec<u32>,
    pooling: Vec<u32>,
}

/// Past this many times, the ones no synergy uses any more are dropped.
const FIRST_SEEN_TIMES: usize = 4_096;

impl FirstSeen {
    /// Each synergy's time in `previous` when it was there, else `now` (`index` is the new
    /// build's, over `synergies` and `pooling`).
    pub(super) fn carried(
        previous: Option<&Built>,
        synergies: &Substitutions,
        pooling: &[PoolingGroup],
        index: &SynergyIndex,
        now: chrono::NaiveDateTime,
    ) -> FirstSeen {
        // The previous build's times keep their indexes; `now` comes after them.
        let mut times = previous.map_or_else(Vec::new, |p| p.first_seen.times.clone());
        let at_now = times.len() as u32;
        times.push(now);
        let mut seen = FirstSeen {
            times,
            synergies: vec![at_now; synergies.len()],
            pooling: vec![at_now; pooling.len()],
        };
        let Some(previous) = previous else {
            return seen;
        };
        let before = &previous.first_seen;
        index.each_pair(
            synergies,
            &previous.index,
            &previous.synergies,
            |_, slot, earlier| {
                let (Some(slot), Some(at)) = (slot, earlier.and_then(|b| before.time_index(b)))
                else {
                    return;
                };
                let place = match slot {
                    Slot::Substitution(i) => seen.synergies.get_mut(i as usize),
                    Slot::Pooling(i) => seen.pooling.get_mut(i as usize),
                };
                if let Some(place) = place {
                    *place = at;
                }
            },
        );
        if seen.times.len() > FIRST_SEEN_TIMES {
            seen.drop_unused_times();
        }
        seen
    }

    pub fn of(&self, slot: Slot) -> Option<chrono::NaiveDateTime> {
        self.times.get(self.time_index(slot)? as usize).copied()
    }

    fn time_index(&self, slot: Slot) -> Option<u32> {
        match slot {
            Slot::Substitution(i) => self.synergies.get(i as usize).copied(),
            Slot::Pooling(i) => self.pooling.get(i as usize).copied(),
        }
    }

    /// Keeps only the times some synergy uses, in their order.
    fn drop_unused_times(&mut self) {
        let mut used = vec![false; self.times.len()];
        for &t in self.synergies.iter().chain(&self.pooling) {
            used[t as usize] = true;
        }
        let mut renumbered = vec![0u32; self.times.len()];
        let mut kept = Vec::new();
        for (old, time) in self.times.iter().enumerate() {
            if used[old] {
                renumbered[old] = kept.len() as u32;
                kept.push(*time);
            }
        }
        for t in self.synergies.iter_mut().chain(&mut self.pooling) {
            *t = renumbered[*t as usize];
        }
        self.times = kept;
    }
}

/// Which synergies touch each département and each actor, built with the detection: territory and
/// actor lists rank the synergies of their territory or actor, not every synergy of the build.
/// Positions (4 bytes each) into `synergies` and `pooling`; a synergy is listed under each party.
/// Dense lists by the snapshot's actor index and by département, each kind in one allocation sized
/// by a first count: building it costs no hashing per synergy (6.5M synergies at 1M resources), and
/// no room is left over (a vector per actor grown one push at a time held up to as much again while
/// it was built, beside the two other builds a rebuild's end holds).
#[derive(Debug, Default)]
pub struct TerritoryIndex {
    departements: HashMap<String, u32>,
    by_departement: Lists,
    /// Actor id → index into `by_actor` (the snapshot's actor order), sorted by id.
    actors: Vec<(Uuid, u32)>,
    by_actor: Lists,
}

/// Positions of substitution synergies and pooling groups, ascending, without repeats.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    pub synergies: Vec<u32>,
    pub pooling: Vec<u32>,
}

impl Positions {
    fn sort(&mut self) {
        self.synergies.sort_unstable();
        self.synergies.dedup();
        self.pooling.sort_unstable();
        self.pooling.dedup();
    }
}

/// The positions of each key (an actor, a département), synergies and pooling groups apart.
#[derive(Debug, Default)]
struct Lists {
    synergies: Csr,
    pooling: Csr,
}

/// Lists of positions by key in one vector: key `k`'s are `values[starts[k]..starts[k + 1]]`.
#[derive(Debug, Default)]
struct Csr {
    starts: Vec<u32>,
    values: Vec<u32>,
}

impl Csr {
    /// Lists `keys` long from `each(f)`, which calls `f(position, key)` in ascending position order
    /// (twice: to count, then to fill). A key met twice for one position lists it once.
    fn build(keys: usize, each: impl Fn(&mut dyn FnMut(u32, u32))) -> Csr {
        let mut last = vec![u32::MAX; keys];
        let mut counts = vec![0u32; keys + 1];
        each(&mut |position, key| {
            if let Some(seen) = last.get_mut(key as usize)
                && *seen != position
            {
                *seen = position;
                counts[key as usize + 1] += 1;
            }
        });
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        let starts = counts;
        let mut values = vec![0u32; starts.last().copied().unwrap_or(0) as usize];
        let mut next: Vec<u32> = starts[..keys].to_vec();
        last.fill(u32::MAX);
        each(&mut |position, key| {
            if let Some(seen) = last.get_mut(key as usize)
                && *seen != position
            {
                *seen = position;
                let at = &mut next[key as usize];
                values[*at as usize] = position;
                *at += 1;
            }
        });
        Csr { starts, values }
    }

    fn of(&self, key: u32) -> &[u32] {
        let k = key as usize;
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&from), Some(&to)) => self.values.get(from as usize..to as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// A source of (position, key) pairs: calls its argument with each, in ascending position order.
type Pairs<'a> = &'a dyn Fn(&mut dyn FnMut(u32, u32));

/// `parties`' (position, actor) pairs as (position, département of the actor).
fn in_departements(
    departement_of: &[Option<u32>],
    parties: Pairs<'_>,
    f: &mut dyn FnMut(u32, u32),
) {
    parties(&mut |i, party| {
        if let Some(&Some(d)) = departement_of.get(party as usize) {
            f(i, d);
        }
    })
}

impl Lists {
    fn of(&self, key: u32, out: &mut Positions) {
        out.synergies.extend_from_slice(self.synergies.of(key));
        out.pooling.extend_from_slice(self.pooling.of(key));
    }
}

impl TerritoryIndex {
    pub fn new(
        snapshot: &Snapshot,
        synergies: &Substitutions,
        pooling: &[PoolingGroup],
        actors: &Actors,
    ) -> TerritoryIndex {
        let mut departements: HashMap<String, u32> = HashMap::new();
        // Each snapshot actor's département, numbered once.
        let departement_of: Vec<Option<u32>> = (0..snapshot.actors.len() as u32)
            .map(|i| {
                let code = &actors.get(&snapshot.actor(i).id)?.departement;
                let next = departements.len() as u32;
                Some(*departements.entry(code.clone()).or_insert(next))
            })
            .collect();
        let mut ids: Vec<(Uuid, u32)> = (0..snapshot.actors.len() as u32)
            .map(|i| (snapshot.actor(i).id, i))
            .collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        // The parties of each synergy and of each group, in position order. Positions fit in u32
        // (see `SynergyIndex::new`).
        let synergy_parties = |f: &mut dyn FnMut(u32, u32)| {
            for (i, d) in synergies.iter().enumerate() {
                let c = &d.candidate;
                f(i as u32, c.provider_actor(snapshot));
                f(i as u32, c.receiver_actor(snapshot));
            }
        };
        let group_parties = |f: &mut dyn FnMut(u32, u32)| {
            for (i, g) in pooling.iter().enumerate() {
                for m in &g.members {
                    if let Some(party) = snapshot.actor_index(m.actor_id) {
                        f(i as u32, party);
                    }
                }
            }
        };
        let (n_actors, n_departements) = (snapshot.actors.len(), departements.len());
        TerritoryIndex {
            by_actor: Lists {
                synergies: Csr::build(n_actors, synergy_parties),
                pooling: Csr::build(n_actors, group_parties),
            },
            by_departement: Lists {
                synergies: Csr::build(n_departements, |f| {
                    in_departements(&departement_of, &synergy_parties, f)
                }),
                pooling: Csr::build(n_departements, |f| {
                    in_departements(&departement_of, &group_parties, f)
                }),
            },
            departements,
            actors: ids,
        }
    }

    /// The synergies with a party in one of `departements` (a superset of a territory's when the
    /// territory is smaller than its départements: callers keep their exact filter).
    pub fn of_departements<'a>(
        &self,
        departements: impl IntoIterator<Item = &'a str>,
    ) -> Positions {
        let mut out = Positions::default();
        for d in departements {
            if let Some(&i) = self.departements.get(d) {
                self.by_departement.of(i, &mut out);
            }
        }
        out.sort();
        out
    }

    /// The synergies of one actor.
    pub fn of_actor(&self, actor: &Uuid) -> Positions {
        let mut out = Positions::default();
        if let Ok(i) = self.actors.binary_search_by_key(actor, |(id, _)| *id) {
            self.by_actor.of(self.actors[i].1, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::substitutions::Detected;
    use crate::matching::pooling::{LatLng, PoolingKeyKind};
    use crate::matching::{Candidate, FitLevel};

    /// A list of synergies with these ids in this order, and its index.
    fn index(substitutions: &[u128], pooling: &[u128]) -> (Substitutions, SynergyIndex) {
        let ranked = substitutions
            .iter()
            .map(|&n| Detected {
                id: Uuid::from_u128(n),
                candidate: Candidate {
                    offer: 0,
                    target: 0,
                    score: 0.0,
                    distance_km: 0.0,
                    fit_value: 0.0,
                    fit: FitLevel::Code,
                    latent: false,
                },
            })
            .collect();
        let synergies = Substitutions::from_ranked(ranked);
        let groups: Vec<PoolingGroup> = pooling
            .iter()
            .map(|&n| PoolingGroup {
                id: Uuid::from_u128(n),
                key_kind: PoolingKeyKind::NeedClass,
                key: String::new(),
                members: Vec::new(),
                totals: Vec::new(),
                total_yearly_quantity: None,
                base_unit: None,
                resources_without_quantity: 0,
                centroid: LatLng { lat: 0.0, lng: 0.0 },
                radius_km: 0.0,
            })
            .collect();
        let index = SynergyIndex::new(&synergies, &groups);
        (synergies, index)
    }

    /// Where an id sits, read off the lists by a scan.
    fn scanned(substitutions: &[u128], pooling: &[u128], n: u128) -> Option<Slot> {
        let at = |list: &[u128]| list.iter().position(|&m| m == n).map(|i| i as u32);
        at(substitutions)
            .map(Slot::Substitution)
            .or_else(|| at(pooling).map(Slot::Pooling))
    }

    /// The index finds each synergy where the list has it, and nothing for an id it lacks.
    #[test]
    fn index_finds_each_synergy_at_its_position() {
        let ids = [9, 2, 5, 7, 1u128 << 100, 3];
        let (synergies, index) = index(&ids, &[100, 101]);
        for n in [9, 2, 5, 7, 1 << 100, 3, 100, 101, 4, 0, 102] {
            assert_eq!(
                index.get(&synergies, &Uuid::from_u128(n)),
                scanned(&ids, &[100, 101], n),
                "{n}"
            );
        }
    }

    /// Each key lists its positions ascending, once each, whatever repeats the parties hold; a key
    /// out of range lists nothing and is not counted.
    #[test]
    fn lists_by_key_hold_each_position_once_in_order() {
        let pairs = [
            (0, 1),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 0),
            (2, 0),
            (3, 7),
            (4, 2),
        ];
        let lists = Csr::build(3, |f| {
            for (position, key) in pairs {
                f(position, key);
            }
        });
        assert_eq!(lists.of(0), &[1, 2]);
        assert_eq!(lists.of(1), &[0, 1]);
        assert_eq!(lists.of(2), &[4]);
        assert_eq!(lists.of(3), &[] as &[u32]);
        assert_eq!(lists.values.len(), 5, "no room left over");
    }

    /// Dropping the unused times keeps every synergy's time.
    #[test]
    fn first_seen_keeps_each_synergys_time_when_unused_times_go() {
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 4)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .unwrap_or_default()
        };
        let mut seen = FirstSeen {
            times: vec![at(1), at(2), at(3), at(4)],
            synergies: vec![3, 1, 3],
            pooling: vec![1],
        };
        let slots = [
            Slot::Substitution(0),
            Slot::Substitution(1),
            Slot::Substitution(2),
            Slot::Pooling(0),
        ];
        let times = |seen: &FirstSeen| slots.map(|slot| seen.of(slot));
        let before = times(&seen);
        assert_eq!(before, [Some(at(4)), Some(at(2)), Some(at(4)), Some(at(2))]);
        seen.drop_unused_times();
        assert_eq!(seen.times, [at(2), at(4)]);
        assert_eq!(times(&seen), before);
        assert_eq!(seen.of(Slot::Substitution(3)), None);
    }

    /// The merge meets every id of either index once, with its slot in each — what looking each id
    /// up in the other index gives.
    #[test]
    fn each_pair_is_the_outer_join_of_two_indexes() {
        let (new_ids, old_ids) = ([9, 2, 5, 7], [1, 2, 7, 8]);
        let (new_synergies, new) = index(&new_ids, &[100, 101]);
        let (old_synergies, old) = index(&old_ids, &[101, 102]);
        let mut seen: Vec<(u128, Option<Slot>, Option<Slot>)> = Vec::new();
        new.each_pair(&new_synergies, &old, &old_synergies, |id, a, b| {
            seen.push((id.as_u128(), a, b))
        });
        let mut expected: Vec<(u128, Option<Slot>, Option<Slot>)> =
            [1, 2, 5, 7, 8, 9, 100, 101, 102]
                .into_iter()
                .map(|n| {
                    (
                        n,
                        scanned(&new_ids, &[100, 101], n),
                        scanned(&old_ids, &[101, 102], n),
                    )
                })
                .collect();
        seen.sort_by_key(|(n, _, _)| *n);
        expected.sort_by_key(|(n, _, _)| *n);
        assert_eq!(seen, expected);
        // Substitutions come in id order, before the pooling groups.
        let mut order = Vec::new();
        new.each_pair(&new_synergies, &old, &old_synergies, |id, _, _| {
            order.push(id.as_u128())
        });
        assert_eq!(&order[..6], &[1, 2, 5, 7, 8, 9]);
    }
}
