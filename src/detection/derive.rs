//! What a build derives from its snapshot — substitution synergies, pooling groups, lookups — in
//! full, or after a few changes from the previous build: its candidates carried (`Carry`) and only the
//! pooling keys the changes touch grouped again.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{
    Actors, Built, DetectionError, FirstSeen, ResourceInfo, Resources, Substitutions, SynergyIndex,
    TerritoryIndex,
};
use crate::matching::pooling::{
    PoolingGroup, PoolingKey, PoolingParams, PoolingResource, find_pooling_groups, regroup,
};
use crate::matching::{Carry, MatchingSettings, Snapshot};

/// What a build derives from its snapshot: the synergies, pooling groups and lookups.
pub(super) struct Derived {
    pub(super) synergies: Substitutions,
    pub(super) pooling: Vec<PoolingGroup>,
    pub(super) index: SynergyIndex,
    pub(super) territories: TerritoryIndex,
    pub(super) first_seen: FirstSeen,
    /// How long the substitutions, the pooling groups and the indexes took (ms; the first two
    /// side by side).
    pub(super) timings: [u64; 3],
    /// The offers matched again, when the previous build's candidates were carried.
    pub(super) rematched: Option<usize>,
}

/// Detects, pools and indexes on a pool of `threads` threads (0 = every core) started by the
/// calling thread, so that its workers share its priority (a background rebuild's are low,
/// `yield_to_requests`). Pooling runs beside the detection (it reads the resources, not the
/// synergies), and the two indexes beside each other. First-seen times come from `previous`; with
/// `carried`, the candidates and pooling groups of that build are carried as its `Carry` says.
#[allow(clippy::too_many_arguments)]
pub(super) fn derive(
    snapshot: &Snapshot,
    resources: &Resources,
    actors: &Actors,
    settings: &MatchingSettings,
    threads: usize,
    pooling_params: &PoolingParams,
    previous: Option<&Built>,
    carried: Option<(&Built, &Carry)>,
) -> Result<Derived, DetectionError> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let settings = &MatchingSettings {
        threads,
        ..settings.clone()
    };
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("detection-{i}"))
        .build()
        .map_err(|e| DetectionError::Threads(e.to_string()))?;
    workers.install(|| {
        let ((synergies, detected_ms), (pooling, pooled_ms)) = rayon::join(
            || {
                timed(|| -> Result<_, crate::matching::MatchingError> {
                    if let Some((previous, carry)) = carried
                        && let Some(s) = Substitutions::detect_after(
                            &previous.synergies,
                            carry,
                            snapshot,
                            settings,
                        )?
                    {
                        return Ok((s, Some(carry.rematched().len())));
                    }
                    if carried.is_some() {
                        tracing::error!("a carried synergy lost a party: detecting in full");
                    }
                    Ok((Substitutions::detect(snapshot, settings)?, None))
                })
            },
            || {
                timed(|| match carried {
                    // With few changes, only the keys they touch are grouped again.
                    Some((previous, _)) => {
                        let changed = changed_pooling_keys(previous, resources, actors);
                        let touched = pooling_input(resources, actors, Some(&changed));
                        regroup(&previous.pooling, &touched, &changed, pooling_params)
                    }
                    None => {
                        find_pooling_groups(&pooling_input(resources, actors, None), pooling_params)
                    }
                })
            },
        );
        let (synergies, rematched) = synergies?;
        let pooling = pooling.map_err(|e| DetectionError::Pooling(e.to_string()))?;
        let indexing = std::time::Instant::now();
        let ((index, first_seen), territories) = rayon::join(
            || {
                let index = SynergyIndex::new(&synergies, &pooling);
                let first_seen =
                    FirstSeen::carried(previous, &synergies, &pooling, &index, crate::db::now());
                (index, first_seen)
            },
            || TerritoryIndex::new(snapshot, &synergies, &pooling, actors),
        );
        let indexed_ms = indexing.elapsed().as_millis() as u64;
        Ok(Derived {
            synergies,
            pooling,
            index,
            territories,
            first_seen,
            timings: [detected_ms, pooled_ms, indexed_ms],
            rematched,
        })
    })
}

/// What `f` gives, and how long it took (ms).
fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let started = std::time::Instant::now();
    let out = f();
    (out, started.elapsed().as_millis() as u64)
}

/// The pooling key of a resource.
fn pooling_key(r: &ResourceInfo) -> Option<PoolingKey> {
    crate::matching::pooling::key_of(r.kind, &r.class, r.ewc_code.as_deref())
}

/// The pooling keys of the resources added, removed or changed since `previous` (what pooling reads:
/// kind, class, code, quantity, unit, and the actor's position), before and after.
fn changed_pooling_keys(
    previous: &Built,
    resources: &Resources,
    actors: &Actors,
) -> BTreeSet<PoolingKey> {
    let position =
        |actors: &Actors, id: &Uuid| actors.get(id).map(|a| (a.lat.to_bits(), a.lng.to_bits()));
    let same = |old: &ResourceInfo, r: &ResourceInfo| {
        old.actor_id == r.actor_id
            && old.kind == r.kind
            && old.class == r.class
            && old.ewc_code == r.ewc_code
            && old.yearly_quantity == r.yearly_quantity
            && old.base_unit == r.base_unit
            && position(&previous.actors, &old.actor_id) == position(actors, &r.actor_id)
    };
    // Both lists are in id order: one merge meets each id once, with its before and after.
    let mut changed = BTreeSet::new();
    let (mut before, mut after) = (
        previous.resources.iter().peekable(),
        resources.iter().peekable(),
    );
    loop {
        let (old, new) = match (before.peek(), after.peek()) {
            (None, None) => break,
            (Some(old), Some(new)) if old.id == new.id => (before.next(), after.next()),
            (Some(old), Some(new)) if old.id < new.id => (before.next(), None),
            (Some(_), None) => (before.next(), None),
            (_, Some(_)) => (None, after.next()),
        };
        if let (Some(old), Some(new)) = (old, new)
            && same(old, new)
        {
            continue;
        }
        changed.extend(old.and_then(pooling_key));
        changed.extend(new.and_then(pooling_key));
    }
    changed
}

/// What pooling reads: each resource at its actor's position (only those of the `keys` given).
fn pooling_input(
    resources: &Resources,
    actors: &Actors,
    keys: Option<&BTreeSet<PoolingKey>>,
) -> Vec<PoolingResource> {
    // In id order: groups must not depend on the order rows were read in.
    resources
        .iter()
        .filter(|r| keys.is_none_or(|keys| pooling_key(r).is_some_and(|k| keys.contains(&k))))
        .filter_map(|r| {
            let a = actors.get(&r.actor_id)?;
            Some(PoolingResource {
                resource_id: r.id,
                actor_id: r.actor_id,
                kind: r.kind,
                class: r.class.to_string(),
                ewc_code: r.ewc_code.as_deref().map(str::to_owned),
                yearly_quantity: r.yearly_quantity,
                base_unit: r.base_unit,
                lat: a.lat,
                lng: a.lng,
            })
        })
        .collect()
}
