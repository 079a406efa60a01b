//! What a build reads: every actor and resource, or — after a few changes — the previous build's
//! input with only the rows the change feed names read again (`db::changes::changed_since`). Both
//! give the same input for the same data: the snapshot is made from the same rows in the same order.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{ActorInfo, Actors, Built, DetectionError, Interner, ResourceInfo, Resources};
use super::{actor_input_info, resource_input_info};
use crate::db::{self, DbConnection};
use crate::matching::{SnapActor, SnapResource};

/// A build's input, before its snapshot is made.
pub(super) struct Input {
    pub(super) actors: Actors,
    pub(super) resources: Resources,
    pub(super) snap_actors: Vec<SnapActor>,
    pub(super) snap_resources: Vec<SnapResource>,
    /// How many changed rows the change feed named; `None` when every row was read.
    pub(super) changes_read: Option<usize>,
}

/// Reads every actor and resource.
pub(super) fn read_every_row(conn: &mut DbConnection) -> Result<Input, DetectionError> {
    // Two lean reads (only the columns the detection uses), no join: every actor once.
    let actor_rows = db::actors::detection_input(conn)?;
    let mut actors: Actors = HashMap::with_capacity(actor_rows.len());
    // Actors without resources can still be latent receivers.
    for a in actor_rows {
        if let Some(info) = actor_input_info(a) {
            actors.insert(info.id, Arc::new(info));
        }
    }
    let expected = db::resources::count(conn)?;
    let mut resources: Vec<ResourceInfo> = Vec::with_capacity(expected);
    let mut snap_resources = Vec::with_capacity(expected);
    let mut shared = Interner::default();
    db::resources::each_detection_input(conn, |r| {
        let Some(resource) = resource_input_info(&r, &mut shared) else {
            return;
        };
        if !actors.contains_key(&resource.actor_id) {
            return;
        }
        snap_resources.push(snap_resource(r, &resource));
        resources.push(resource);
    })?;
    // In id order, as the resources: the same data gives the same snapshot, hence the same
    // synergies and groups, whatever order the database returned the rows in.
    snap_resources.sort_by_key(|r| r.id);
    Ok(Input {
        snap_actors: snap_actors(&actors),
        actors,
        resources: Resources::new(resources),
        snap_resources,
        changes_read: None,
    })
}

/// The input of `previous` with the rows of `changed` read again: actors and resources changed,
/// added or deleted since, and the resources the previous snapshot left out (it holds no row to
/// make them from). `None` when the previous build cannot give a row it should (read every row then).
pub(super) fn read_changes(
    conn: &mut DbConnection,
    previous: &Built,
    changed: db::changes::Changed,
) -> Result<Option<Input>, DetectionError> {
    let changes_read = changed.len();
    let mut actors = previous.actors.clone();
    for id in &changed.actors {
        if let Ok(id) = Uuid::parse_str(id) {
            actors.remove(&id);
        }
    }
    for a in db::actors::detection_input_of(conn, &changed.actors)? {
        if let Some(info) = actor_input_info(a) {
            actors.insert(info.id, Arc::new(info));
        }
    }

    let snapshot = &previous.snapshot;
    let mut reread = changed.resources;
    reread.extend(snapshot.skipped().iter().map(|s| s.id.to_string()));
    reread.sort_unstable();
    reread.dedup();
    let mut reread_ids: Vec<Uuid> = reread
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    reread_ids.sort_unstable();
    let mut shared = Interner::default();
    let mut loaded: Vec<(ResourceInfo, SnapResource)> =
        db::resources::detection_input_of(conn, &reread)?
            .into_iter()
            .filter_map(|r| {
                let resource = resource_input_info(&r, &mut shared)?;
                actors.contains_key(&resource.actor_id).then(|| {
                    let snap = snap_resource(r, &resource);
                    (resource, snap)
                })
            })
            .collect();
    loaded.sort_by_key(|(r, _)| r.id);

    // The previous resources not read again, from the previous snapshot, merged in id order with
    // those read. An unchanged resource of an actor gone is dropped, as a full read would.
    let kept = previous
        .resources
        .iter()
        .filter(|r| reread_ids.binary_search(&r.id).is_err())
        .filter(|r| actors.contains_key(&r.actor_id));
    let capacity = previous.resources.len() + loaded.len();
    let (mut resources, mut snap_resources) =
        (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    let mut loaded = loaded.into_iter().peekable();
    for r in kept {
        while let Some((fresh, _)) = loaded.peek()
            && fresh.id < r.id
        {
            if let Some((fresh, snap)) = loaded.next() {
                resources.push(fresh);
                snap_resources.push(snap);
            }
        }
        let Some(indexed) = snapshot.resource_index(r.id) else {
            return Ok(None);
        };
        snap_resources.push(snapshot.input_of(snapshot.resource(indexed)));
        resources.push(r.clone());
    }
    for (fresh, snap) in loaded {
        resources.push(fresh);
        snap_resources.push(snap);
    }
    Ok(Some(Input {
        snap_actors: snap_actors(&actors),
        actors,
        resources: Resources::new(resources),
        snap_resources,
        changes_read: Some(changes_read),
    }))
}

/// The snapshot's actors, in id order.
fn snap_actors(actors: &Actors) -> Vec<SnapActor> {
    let mut ordered: Vec<&Arc<ActorInfo>> = actors.values().collect();
    ordered.sort_by_key(|a| a.id);
    ordered
        .into_iter()
        .map(|a| SnapActor {
            id: a.id,
            name: a.name.clone(),
            naf_code: Some(a.naf_code.clone()),
            lat: a.lat,
            lng: a.lng,
            commune: a.commune.clone(),
        })
        .collect()
}

/// The snapshot's row of a stored resource.
fn snap_resource(r: db::resources::ResourceInput, resource: &ResourceInfo) -> SnapResource {
    SnapResource {
        id: resource.id,
        actor_id: resource.actor_id,
        kind: resource.kind,
        class: r.class,
        ewc_code: r.ewc_code,
        accepted_ewc: serde_json::from_str(&r.accepted_ewc).unwrap_or_default(),
        hazardous: r.hazardous,
        yearly_quantity: resource.yearly_quantity,
        base_unit: resource.base_unit,
        months: u16::try_from(r.months).unwrap_or(crate::domain::resource::ALL_MONTHS),
        temperature_c: r.temperature_c,
        max_distance_km: r.max_distance_km,
        label: r.label,
    }
}
