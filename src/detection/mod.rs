//! The live detection: the matching snapshot and its synergies, kept in memory and rebuilt from the
//! database when data has changed since the last build, then persisted with stable ids.
//!
//! Writes to actors and resources bump a version counter (`Detection::touch`); readers ask for the
//! current detection, which is rebuilt at most once per version (one builder at a time, readers of
//! the previous detection are never blocked: the result is swapped in with `arc-swap`). Within
//! `matching.max_staleness_ms`, readers get the previous build and the rebuild runs in the background.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;

use crate::webhooks::EventType;

mod derive;
mod follow;
mod index;
mod input;
mod resources;
mod rows;
mod substitutions;
mod views;
use derive::{Derived, derive};
pub use follow::ChangeFollower;
pub use index::{FirstSeen, Positions, Slot, SynergyIndex, TerritoryIndex};
use input::Input;
use resources::{Interner, resource_input_info};
pub use resources::{ResourceInfo, Resources};
use rows::fingerprint;
pub use rows::{pooling_row, pooling_score, substitution_row, substitution_row_with};
pub use substitutions::{Brief, Detected, Substitutions};
use uuid::Uuid;

use crate::db::models::{ActorRow, SynergyRow};
use crate::db::synergies::DetectionSummary;
use crate::db::{self, DbConnection, DbError, TerritoryScope};
use crate::domain::resource::{Category, Classifier};
use crate::matching::pooling::{PoolingGroup, PoolingParams};
use crate::matching::{Carry, Knowledge, MatchingSettings, Snapshot, Synergy, Taxonomy};

/// A build's actors by id. Shared with its anonymous view where the view leaves an actor where it is
/// (every actor who consented): the view copies only the actors it moves.
pub type Actors = HashMap<Uuid, Arc<ActorInfo>>;

/// Where an actor is, for territory filters and display.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorInfo {
    pub id: Uuid,
    pub name: String,
    pub naf_code: String,
    pub commune: String,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub share_with_partners: bool,
}

impl ActorInfo {
    /// Whether the actor lies in a territory scope (`zone` gives a custom zone's communes).
    pub fn in_scope(&self, scope: &TerritoryScope, zone: Option<&HashSet<String>>) -> bool {
        match scope {
            TerritoryScope::All => true,
            TerritoryScope::Region(code) => &self.region == code,
            TerritoryScope::Departement(code) => &self.departement == code,
            TerritoryScope::Epci(code) => self.epci.as_ref() == Some(code),
            TerritoryScope::Commune(code) => &self.commune == code,
            TerritoryScope::Zone(_) => zone.is_some_and(|z| z.contains(&self.commune)),
        }
    }
}

/// One build: the snapshot, its synergies and pooling groups, and lookups.
pub struct Built {
    pub version: u64,
    /// When this build finished.
    pub built_at: std::time::Instant,
    /// How long it took: the next build will take about as long (`Detection::recent_build`).
    pub took: std::time::Duration,
    /// The offers matched again when this build carried the previous one's candidates (`Carry`);
    /// `None` after a full detection.
    pub rematched: Option<usize>,
    /// How many changed actors and resources this build read again from the change feed, on top of
    /// the previous build's input; `None` when it read every row.
    pub changes_read: Option<usize>,
    pub snapshot: Snapshot,
    /// The settings the snapshot was matched with, to materialise its synergies.
    pub settings: MatchingSettings,
    /// Substitution synergies, best first, compact: [`Built::synergy`] materialises one.
    pub synergies: Substitutions,
    pub pooling: Vec<PoolingGroup>,
    pub actors: Actors,
    /// Shared with the build's anonymous view, which moves actors, not resources.
    pub resources: Arc<Resources>,
    /// Status of each stored synergy (set by facilitators; `detected` by default). Kept current by
    /// `Detection::record_status` so a status change does not need a rebuild; shared with
    /// [`Built::moved`] views, which show the same statuses.
    pub statuses: Arc<std::sync::RwLock<HashMap<String, String>>>,
    /// Synergy id → place in `synergies` or `pooling`.
    pub index: SynergyIndex,
    /// The synergies of each département and actor.
    pub territories: TerritoryIndex,
    /// When this server first detected each synergy (kept from build to build while it stays).
    pub first_seen: FirstSeen,
    /// The database's `data` change counter when this build read its rows (`db::changes`): a
    /// larger one means another server or process wrote since.
    pub data_version: i64,
    /// The `decisions` counter the statuses were last read at (reloaded by `follow_changes`).
    pub decisions_version: Arc<std::sync::atomic::AtomicI64>,
    pub summary: DetectionSummary,
    /// The view of readers who may not see where non-consenting actors are
    /// (`auth::anonymise::anonymous_view`), computed on first use and kept with this build.
    pub anonymous: std::sync::OnceLock<Arc<Built>>,
    /// Held while the anonymous view is computed: readers who ask for it meanwhile wait for that
    /// one computation instead of each running their own (at a million resources each is a second
    /// detection, ~12 s and ~1.7 GiB).
    pub anonymous_computing: Mutex<()>,
    /// How many times the anonymous view was computed for this build (1 at most, but for a failure).
    pub anonymous_computed: AtomicU64,
}

impl Built {
    pub fn status(&self, id: &Uuid) -> String {
        self.statuses
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id.to_string())
            .cloned()
            .unwrap_or_else(|| "detected".into())
    }

    /// Where synergy `id` sits in this build.
    pub fn slot(&self, id: &Uuid) -> Option<Slot> {
        self.index.get(&self.synergies, id)
    }

    /// The substitution synergy `id` of this build, materialised.
    pub fn synergy(&self, id: Uuid) -> Option<Synergy> {
        match self.slot(&id)? {
            Slot::Substitution(i) => self.synergy_at(i),
            Slot::Pooling(_) => None,
        }
    }

    /// The substitution synergy at `position` in [`Built::synergies`], materialised.
    pub fn synergy_at(&self, position: u32) -> Option<Synergy> {
        self.synergies
            .get(position)?
            .materialise(&self.snapshot, &self.settings)
    }

    /// The substitution synergy at `position` without its explanations: for reports that read
    /// the figures of many synergies (score, distance, quantity, impact).
    pub fn figures_at(&self, position: u32) -> Option<Synergy> {
        self.synergies
            .get(position)?
            .figures(&self.snapshot, &self.settings)
    }

    /// What lists read of the substitution synergy at `position`, without materialising it.
    pub fn brief(&self, position: u32) -> Option<Brief<'_>> {
        Some(self.synergies.get(position)?.brief(&self.snapshot))
    }

    /// The pooling group `id` of this build.
    pub fn group(&self, id: Uuid) -> Option<&PoolingGroup> {
        match self.slot(&id)? {
            Slot::Pooling(i) => self.pooling.get(i as usize),
            Slot::Substitution(_) => None,
        }
    }

    /// The stored form of synergy `id` of this build, as its first decision stores it.
    pub fn stored_form(&self, id: &str) -> Option<SynergyRow> {
        let slot = self.slot(&Uuid::parse_str(id).ok()?)?;
        let seen = self.first_seen.of(slot)?;
        let mut row = match slot {
            Slot::Substitution(i) => {
                let s = self.synergy_at(i)?;
                substitution_row(&s, fingerprint(&s), seen)
            }
            Slot::Pooling(i) => {
                let g = self.pooling.get(i as usize)?;
                pooling_row(g, fingerprint(g), seen)
            }
        };
        row.last_detected_at = crate::db::now();
        Some(row)
    }
}

/// The engine's long-lived state: knowledge, settings, and the current build.
pub struct Detection {
    pub taxonomy: Arc<Taxonomy>,
    pub knowledge: Arc<Knowledge>,
    pub settings: MatchingSettings,
    pub pooling: PoolingParams,
    version: AtomicU64,
    current: ArcSwapOption<Built>,
    building: Mutex<()>,
    /// The next build detects in full (`Detection::rebuild_fully`).
    full_requested: AtomicBool,
    /// A background rebuild is running (`current` started it for a reader it answered stale).
    refreshing: AtomicBool,
    /// The `data` version the build being made read (`i64::MIN` when none is): the change follower
    /// does not ask for another build for changes that one already holds.
    building_through: std::sync::atomic::AtomicI64,
    /// Builds replaced by a newer one, kept until their last reader lets go: freeing a national
    /// build (millions of allocations) takes a few hundred milliseconds, which must fall on the
    /// rebuild or the change follower, not on the request that happened to hold it last.
    retired: Mutex<Vec<Arc<Built>>>,
    /// This server among the replicas on one database, for the leases of `db::leases`.
    server_id: String,
    /// Where a reader who may not see every actor sees each (`Detection::keep_views_current`).
    view_positions: std::sync::OnceLock<ViewPositions>,
    /// The last anonymous view computed, from which the next one is carried (`Detection::view_of`);
    /// `None` until a partner or public reader has read one.
    latest_view: Mutex<Option<Arc<Built>>>,
}

/// Where a reader who may not see every actor sees each of them.
pub type ViewPositions = Arc<dyn Fn(&ActorInfo) -> (f64, f64) + Send + Sync>;

/// Which offers of `next` to match again and which carry their candidates over from `previous`,
/// unless so much changed that a full detection is as quick (see [`CARRY_CHANGES_SHARE`]; or the
/// offers to match again outnumber a quarter of the resources, about a third of the offers).
fn carry_plan(settings: &MatchingSettings, previous: &Snapshot, next: &Snapshot) -> Option<Carry> {
    let max_changes = (next.resources().len() / CARRY_CHANGES_SHARE).max(64);
    Carry::plan(previous, next, &settings.detection, max_changes)
        .filter(|c| c.rematched().len() * 4 <= next.resources().len())
}

/// How long the announcer's lease lasts unrenewed: a server that dies without releasing it hands its
/// webhook announcements to another replica within this time (the change follower renews it every
/// tick, and releases it when the server stops).
const ANNOUNCER_LEASE: std::time::Duration = std::time::Duration::from_secs(5);

/// A build carries the previous one's candidates when at most one resource in this many changed, or
/// 64 (actors and resources added, removed or altered, counted before and after): planning costs
/// each change the searches of the offers around it (~2 ms at 100k resources, ~17 ms at 1M, where a
/// full detection takes 20–25 s on one thread), and a plan should cost a third of a detection at most.
const CARRY_CHANGES_SHARE: usize = 3_000;

/// The most changed rows a build reads from the change feed rather than reading every row: one in
/// twenty of the resources, or 1,000. Rows are read by id, 400 a query: 50,000 of them cost a
/// fraction of the 2–4 s a million rows take to read in full.
fn change_limit(resources: usize) -> usize {
    (resources / 20).max(1_000)
}

/// Synergies materialised and announced at a time.
const ANNOUNCE_CHUNK: usize = 4_096;

#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("matching: {0}")]
    Matching(#[from] crate::matching::MatchingError),
    #[error("pooling: {0}")]
    Pooling(String),
    #[error("cannot start the detection's threads: {0}")]
    Threads(String),
}

impl Detection {
    /// Loads the taxonomy (embedded) and the reuse knowledge (documented exchanges from the reference
    /// directory, sector profiles and impact factors embedded).
    pub fn load(
        reference_dir: &Path,
        settings: MatchingSettings,
        pooling: PoolingParams,
    ) -> anyhow::Result<Detection> {
        settings.validate()?;
        let taxonomy = Taxonomy::builtin()?;
        let knowledge = Knowledge::load(
            &reference_dir.join("cases/maestri_exchanges_part_a.csv"),
            &taxonomy,
        )?;
        Ok(Detection {
            taxonomy: Arc::new(taxonomy),
            knowledge: Arc::new(knowledge),
            settings,
            pooling,
            version: AtomicU64::new(1),
            current: ArcSwapOption::empty(),
            building: Mutex::new(()),
            full_requested: AtomicBool::new(false),
            refreshing: AtomicBool::new(false),
            building_through: std::sync::atomic::AtomicI64::new(i64::MIN),
            retired: Mutex::new(Vec::new()),
            server_id: Uuid::new_v4().to_string(),
            view_positions: std::sync::OnceLock::new(),
            latest_view: Mutex::new(None),
        })
    }

    /// A facilitator changed a synergy's status: the current build shows it at once.
    pub fn record_status(&self, synergy_id: &str, status: &str) {
        if let Some(built) = self.current.load_full() {
            built
                .statuses
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(synergy_id.to_owned(), status.to_owned());
        }
    }

    /// Data changed: the next reader rebuilds.
    pub fn touch(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The next build detects every offer again, rather than only those the changes reach.
    pub fn rebuild_fully(&self) {
        self.full_requested.store(true, Ordering::SeqCst);
        self.touch();
    }

    /// The current build, rebuilt first if data changed. Blocking: call from a blocking thread.
    ///
    /// With `matching.max_staleness_ms`, a build at most that old answers at once even when data
    /// changed since, and the rebuild runs on a background thread: readers never queue behind it
    /// unless the last build is older than the limit. Callers waiting for another thread's rebuild
    /// hold no database connection, so a long rebuild never starves the pool for the writes around it.
    pub fn current(self: &Arc<Self>, pool: &db::DbPool) -> Result<Arc<Built>, DetectionError> {
        match self.current_at_once(pool) {
            Some(built) => Ok(built),
            None => self.rebuild_unless_built(pool, self.version.load(Ordering::SeqCst), false),
        }
    }

    /// What [`Detection::current`] answers when it needs no rebuild first (`None` otherwise): never
    /// blocks, so a request can ask on its own thread and only hand the rebuild to a blocking one.
    pub fn current_at_once(self: &Arc<Self>, pool: &db::DbPool) -> Option<Arc<Built>> {
        let wanted = self.version.load(Ordering::SeqCst);
        if let Some(built) = self.current.load_full().filter(|b| b.version >= wanted) {
            return Some(built);
        }
        let built = self.recent_build()?;
        self.refresh_in_background(pool, wanted);
        Some(built)
    }

    /// [`Detection::fresh`]'s answer when it needs no rebuild first (`None` otherwise); never blocks.
    pub fn fresh_at_once(&self) -> Option<Arc<Built>> {
        let wanted = self.version.load(Ordering::SeqCst);
        self.current.load_full().filter(|b| b.version >= wanted)
    }

    /// The last build at once, and whether it sees every write made so far; when it does not, a
    /// rebuild starts in the background. Blocks only before the very first build. For reads that can
    /// complete a stale build themselves (a resource's matches: `api::synergies`).
    pub fn latest(
        self: &Arc<Self>,
        pool: &db::DbPool,
    ) -> Result<(Arc<Built>, bool), DetectionError> {
        match self.latest_at_once(pool) {
            Some(latest) => Ok(latest),
            None => Ok((
                self.rebuild_unless_built(pool, self.version.load(Ordering::SeqCst), false)?,
                true,
            )),
        }
    }

    /// [`Detection::latest`]'s answer once a first build exists (`None` before); never blocks.
    pub fn latest_at_once(self: &Arc<Self>, pool: &db::DbPool) -> Option<(Arc<Built>, bool)> {
        let wanted = self.version.load(Ordering::SeqCst);
        let built = self.current.load_full()?;
        if built.version >= wanted {
            return Some((built, true));
        }
        self.refresh_in_background(pool, wanted);
        Some((built, false))
    }

    /// The detection of every write made so far, whatever `max_staleness_ms` allows: for a read that
    /// must see its own write (a resource created a moment ago and its matches).
    pub fn fresh(self: &Arc<Self>, pool: &db::DbPool) -> Result<Arc<Built>, DetectionError> {
        self.rebuild_unless_built(pool, self.version.load(Ordering::SeqCst), false)
    }

    /// Rebuilds unless a build of version `wanted` or later (one that sees every write made before
    /// the caller asked) was finished by another thread while this one waited for the lock: readers
    /// queued behind a rebuild share its result instead of each rebuilding in turn. A `background`
    /// rebuild runs on `matching.background_threads` threads, a reader's on `matching.threads`.
    fn rebuild_unless_built(
        self: &Arc<Self>,
        pool: &db::DbPool,
        wanted: u64,
        background: bool,
    ) -> Result<Arc<Built>, DetectionError> {
        let _guard = self
            .building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(built) = self.current.load_full().filter(|b| b.version >= wanted) {
            return Ok(built);
        }
        // The builds replaced since the last look and read by nobody now are freed before this one
        // is made, not beside it.
        self.retire(None);
        // Read the version before the rows: a write landing meanwhile bumps it past this build.
        let latest = self.version.load(Ordering::SeqCst);
        let mut conn = pool.get().map_err(DbError::from)?;
        let threads = if background {
            self.settings.background_threads
        } else {
            self.settings.threads
        };
        // Cleared once the build is published (or failed), not before: see `building_through`.
        let through = BuildingThrough(&self.building_through);
        let built = Arc::new(self.build(&mut conn, latest, threads)?);
        self.retire(self.current.swap(Some(built.clone())));
        drop(through);
        // Partners read the last build through its anonymous view: once they have, each new build's
        // is made at once, from the last view, rather than by the next partner's read.
        let partners_read = self.lock_latest_view().is_some();
        if let (true, Some(positions)) = (partners_read, self.view_positions.get()) {
            self.view_in_background(built.clone(), positions.clone());
        }
        Ok(built)
    }

    /// Keeps a `replaced` build until nobody reads it, and frees (on the calling thread) the
    /// retired builds nobody reads any more.
    fn retire(&self, replaced: Option<Arc<Built>>) {
        let mut retired = self
            .retired
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        retired.extend(replaced);
        release_unread(&mut retired);
    }

    /// Starts one background rebuild unless one is already running.
    fn refresh_in_background(self: &Arc<Self>, pool: &db::DbPool, wanted: u64) {
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let (detection, pool) = (self.clone(), pool.clone());
        let spawned = std::thread::Builder::new()
            .name("detection-refresh".into())
            .spawn(move || {
                yield_to_requests();
                if let Err(error) = detection.rebuild_unless_built(&pool, wanted, true) {
                    // The next reader past the staleness limit rebuilds, and reports the error.
                    tracing::warn!(%error, "background detection rebuild failed");
                }
                detection.refreshing.store(false, Ordering::SeqCst);
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start a background detection rebuild");
            self.refreshing.store(false, Ordering::SeqCst);
        }
    }

    /// The previous build, if it is within `matching.max_staleness_ms`, or within twice the time
    /// it took to build when that is longer: a reader that waited for a rebuild slower than the limit
    /// would only get, later, a build as far behind the writes made meanwhile (at a million
    /// resources a rebuild takes ~20 s: a facilitator's list waited that long after any write).
    fn recent_build(&self) -> Option<Arc<Built>> {
        let limit = std::time::Duration::from_millis(self.settings.max_staleness_ms);
        self.current
            .load_full()
            .filter(|b| recent_enough(b.built_at.elapsed(), b.took, limit))
    }

    /// Reads every actor and resource and derives a build on `threads` threads.
    fn build(
        &self,
        conn: &mut DbConnection,
        version: u64,
        threads: usize,
    ) -> Result<Built, DetectionError> {
        let started = std::time::Instant::now();
        let before_mib = crate::telemetry::allocated_mib();
        // Before the rows: a write landing meanwhile leaves the counter ahead of this build.
        let versions = db::changes::versions(conn)?;
        self.building_through.store(versions.data, Ordering::SeqCst);
        let previous = self.current.load_full();
        // After a few changes only the offers they reach are matched again (`Carry`), and only the
        // rows they touch are read again; a full detection of every row at the start, after many
        // changes, or when asked (`POST /synergies/detect`).
        let full = self.full_requested.swap(false, Ordering::SeqCst);
        let mut from_feed = None;
        if let Some(previous) = previous.as_deref().filter(|_| !full) {
            let limit = change_limit(previous.resources.len());
            if let Some(changed) =
                db::changes::changed_since(conn, previous.data_version, versions.data, limit)?
            {
                from_feed = input::read_changes(conn, previous, changed)?;
            }
        }
        let Input {
            actors,
            resources,
            snap_actors,
            snap_resources,
            changes_read,
        } = match from_feed {
            Some(input) => input,
            None => input::read_every_row(conn)?,
        };
        let loaded_ms = started.elapsed().as_millis() as u64;
        let loaded_mib = crate::telemetry::allocated_mib();
        let snapshot =
            Snapshot::build(snap_actors, snap_resources, &self.taxonomy, &self.knowledge);
        let snapshot_ms = started.elapsed().as_millis() as u64;
        let snapshot_mib = crate::telemetry::allocated_mib();
        let carry = previous
            .as_deref()
            .filter(|_| !full)
            .and_then(|p| carry_plan(&self.settings, &p.snapshot, &snapshot));
        let planned_ms = started.elapsed().as_millis() as u64;
        let Derived {
            synergies,
            pooling,
            index,
            territories,
            first_seen,
            timings: [detected_ms, pooled_ms, indexed_ms],
            rematched,
        } = derive(
            &snapshot,
            &resources,
            &actors,
            &self.settings,
            threads,
            &self.pooling,
            previous.as_deref(),
            previous.as_deref().zip(carry.as_ref()),
        )?;
        let now = crate::db::now();
        let derived_ms = started.elapsed().as_millis() as u64;
        let derived_mib = crate::telemetry::allocated_mib();
        let row_of = |slot: Slot| {
            let mut row = match slot {
                Slot::Substitution(i) => {
                    let s = synergies.get(i)?.materialise(&snapshot, &self.settings)?;
                    substitution_row(&s, fingerprint(&s), now)
                }
                Slot::Pooling(i) => {
                    let g = pooling.get(i as usize)?;
                    pooling_row(g, fingerprint(g), now)
                }
            };
            row.first_detected_at = first_seen.of(slot).unwrap_or(now);
            Some(row)
        };
        // Every replica detects; one — the holder of the announcer's lease — keeps the stored
        // decisions in step with its detection (figures, retired, revived and announced) and
        // announces what entered or left; the others only read the statuses. Only the stored
        // decisions are read and written: candidates stay in memory.
        let holder = db::leases::hold(
            conn,
            db::leases::ANNOUNCER,
            &self.server_id,
            ANNOUNCER_LEASE,
        )?;
        let decisions = if holder {
            db::synergies::sync_decisions(conn, |id| {
                Uuid::parse_str(id)
                    .ok()
                    .and_then(|id| index.get(&synergies, &id))
                    .and_then(row_of)
            })?
        } else {
            db::synergies::Decisions {
                statuses: db::synergies::statuses(conn)?,
                ..Default::default()
            }
        };
        let summary = compare(previous.as_deref(), &synergies, &pooling, &index);
        let announcer = previous.is_some() && holder;
        if let Some(previous) = previous.as_ref().filter(|_| announcer) {
            // What entered since the previous build, unless stored (those that come back after
            // they were retired are announced by `sync_decisions`). A server's first build has
            // nothing to compare with: it announces nothing. Materialised only for subscribers.
            // Materialised a chunk at a time: after a national import millions enter at once.
            if db::synergies::subscribed(conn, EventType::SynergyDetected)? {
                let mut entered: Vec<Slot> = Vec::new();
                index.each_pair(
                    &synergies,
                    &previous.index,
                    &previous.synergies,
                    |id, slot, before| {
                        if let (Some(slot), None) = (slot, before)
                            && !decisions.statuses.contains_key(&id.to_string())
                        {
                            entered.push(slot);
                        }
                    },
                );
                for chunk in entered.chunks(ANNOUNCE_CHUNK) {
                    let rows: Vec<SynergyRow> =
                        chunk.iter().filter_map(|&slot| row_of(slot)).collect();
                    db::synergies::announce(conn, EventType::SynergyDetected, &rows)?;
                }
            }
            // What left since the previous build, as that build last showed it.
            if db::synergies::subscribed(conn, EventType::SynergyRetired)? {
                let mut left: Vec<Uuid> = Vec::new();
                index.each_pair(
                    &synergies,
                    &previous.index,
                    &previous.synergies,
                    |id, slot, before| {
                        if let (None, Some(_)) = (slot, before) {
                            left.push(*id);
                        }
                    },
                );
                for chunk in left.chunks(ANNOUNCE_CHUNK) {
                    let rows: Vec<SynergyRow> = chunk
                        .iter()
                        .filter_map(|id| {
                            let mut row = previous.stored_form(&id.to_string())?;
                            row.active = false;
                            row.status = previous.status(id);
                            Some(row)
                        })
                        .collect();
                    db::synergies::announce(conn, EventType::SynergyRetired, &rows)?;
                }
            }
        }
        tracing::info!(
            version,
            loaded_ms,
            changes_read,
            snapshot_ms,
            planned_ms,
            rematched,
            changes = carry.as_ref().map(|c| c.changes()),
            detected_ms,
            pooled_ms,
            indexed_ms,
            derived_ms,
            total_ms = started.elapsed().as_millis() as u64,
            before_mib,
            loaded_mib,
            snapshot_mib,
            derived_mib,
            resident_mib = crate::telemetry::jemalloc_resident_mib(),
            synergies = synergies.len(),
            pooling = pooling.len(),
            inserted = summary.inserted,
            updated = summary.updated,
            retired = summary.retired,
            decisions = decisions.statuses.len(),
            "detection rebuilt"
        );
        Ok(Built {
            version,
            built_at: std::time::Instant::now(),
            took: started.elapsed(),
            rematched,
            changes_read,
            snapshot,
            settings: self.settings.clone(),
            synergies,
            pooling,
            actors,
            resources: Arc::new(resources),
            statuses: Arc::new(std::sync::RwLock::new(decisions.statuses)),
            index,
            territories,
            first_seen,
            data_version: versions.data,
            decisions_version: Arc::new(std::sync::atomic::AtomicI64::new(versions.decisions)),
            summary,
            anonymous: std::sync::OnceLock::new(),
            anonymous_computing: Mutex::new(()),
            anonymous_computed: AtomicU64::new(0),
        })
    }
}

/// Clears the `data` version a build read (`Detection::building_through`, set by `build`) once
/// the build is published or has failed.
struct BuildingThrough<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for BuildingThrough<'_> {
    fn drop(&mut self) {
        self.0.store(i64::MIN, Ordering::SeqCst);
    }
}

/// Puts the calling thread (and the engine's worker threads it starts, which inherit it) in the
/// idle scheduling class: a background rebuild takes only the CPU time requests leave, and a request
/// that wakes up takes the core at once. A lower nice value alone is not enough: the kernel's
/// scheduler (EEVDF) lets the running rebuild finish its slice first, a few milliseconds added to the
/// writes that arrive meanwhile. Nice 10 where the idle class is refused. Linux only; elsewhere a no-op.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        let idle = libc::sched_param { sched_priority: 0 };
        // SAFETY: both calls only read their arguments; on Linux, pid 0 is the calling thread alone.
        let done = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) } == 0
            || unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } == 0;
        if !done {
            tracing::debug!("could not lower the background rebuild's priority");
        }
    }
}

/// Whether a build `age` old that took `took` to compute may answer a read under a staleness
/// `limit` ([`Detection::recent_build`]; a zero limit: never).
fn recent_enough(
    age: std::time::Duration,
    took: std::time::Duration,
    limit: std::time::Duration,
) -> bool {
    !limit.is_zero() && age <= limit.max(2 * took)
}

/// Drops the builds only this list holds: nobody can take a new reference to a replaced build, so
/// one held here alone stays unread. Its anonymous view, when still read elsewhere (a partner's
/// request, or the computation of the next build's view from it), stays in the list on its own until
/// then, so that the build's memory is given back now and the view's is not freed by a request.
fn release_unread(retired: &mut Vec<Arc<Built>>) {
    let mut views = Vec::new();
    retired.retain_mut(|built| {
        if Arc::strong_count(built) > 1 {
            return true;
        }
        if let Some(view) = Arc::get_mut(built).and_then(|b| b.anonymous.take())
            && Arc::strong_count(&view) > 1
        {
            views.push(view);
        }
        false
    });
    retired.extend(views);
}

/// What a build changed against the previous one: the figures a reader sees (score, distance, and
/// a pooling group's quantity) compared bit for bit.
fn compare(
    previous: Option<&Built>,
    synergies: &Substitutions,
    pooling: &[PoolingGroup],
    index: &SynergyIndex,
) -> DetectionSummary {
    let total = synergies.len() + pooling.len();
    let Some(previous) = previous else {
        return DetectionSummary {
            inserted: total,
            ..DetectionSummary::default()
        };
    };
    let figures =
        |built_synergies: &Substitutions, built_pooling: &[PoolingGroup], slot: Slot| match slot {
            Slot::Substitution(i) => built_synergies
                .get(i)
                .map(|d| (d.candidate.score, None, f64::from(d.candidate.distance_km))),
            Slot::Pooling(i) => built_pooling
                .get(i as usize)
                .map(|g| (pooling_score(g), g.total_yearly_quantity, g.radius_km)),
        };
    let bits = |figures: Option<(f64, Option<f64>, f64)>| {
        figures.map(|(a, b, c)| (a.to_bits(), b.map(f64::to_bits), c.to_bits()))
    };
    let mut summary = DetectionSummary::default();
    let mut count = |slot: Option<Slot>, before: Option<Slot>| match (slot, before) {
        (Some(_), None) => summary.inserted += 1,
        (None, Some(_)) => summary.retired += 1,
        (Some(slot), Some(before)) => {
            let now = bits(figures(synergies, pooling, slot));
            let then = bits(figures(&previous.synergies, &previous.pooling, before));
            if now == then {
                summary.unchanged += 1;
            } else {
                summary.updated += 1;
            }
        }
        (None, None) => {}
    };
    index.each_pair(
        synergies,
        &previous.index,
        &previous.synergies,
        |_, slot, before| count(slot, before),
    );
    summary
}

/// Whether an actor's update changes anything the detection reads (name, activity, place, consent):
/// a new address, SIRET or contact does not, and need not cost a rebuild.
pub fn affects_detection(before: &ActorRow, after: &ActorRow) -> bool {
    actor_info(before) != actor_info(after)
}

/// What the detection reads of a stored actor (`None` for an id that is not a UUID).
pub fn actor_info(a: &ActorRow) -> Option<ActorInfo> {
    Some(ActorInfo {
        id: Uuid::parse_str(&a.id).ok()?,
        name: a.name.clone(),
        naf_code: a.naf_code.clone(),
        commune: a.commune_insee.clone(),
        departement: a.departement.clone(),
        region: a.region.clone(),
        epci: a.epci.clone(),
        lat: a.lat,
        lng: a.lng,
        share_with_partners: a.share_with_partners,
    })
}

/// What the detection reads of an actor from its lean row (as [`actor_info`]).
fn actor_input_info(a: db::actors::ActorInput) -> Option<ActorInfo> {
    Some(ActorInfo {
        id: Uuid::parse_str(&a.id).ok()?,
        name: a.name,
        naf_code: a.naf_code,
        commune: a.commune_insee,
        departement: a.departement,
        region: a.region,
        epci: a.epci,
        lat: a.lat,
        lng: a.lng,
        share_with_partners: a.share_with_partners,
    })
}

/// Classifies resources with the taxonomy: a client class must exist and belong to the declared
/// category; otherwise the EWC code's class, else the category's root class.
impl Classifier for Taxonomy {
    fn classify(
        &self,
        client: Option<&str>,
        ewc_code: Option<&str>,
        category: Category,
    ) -> Result<String, String> {
        if let Some(class) = client.map(str::trim).filter(|c| !c.is_empty()) {
            return match self.get(class) {
                Some(found) if found.category == category => Ok(found.name.clone()),
                Some(_) => Err(format!("`{class}` is not a class of category {category}")),
                None => Err(format!(
                    "`{class}` is not a resource class (see /api/v1/codes/classes)"
                )),
            };
        }
        if let Some(found) = ewc_code.and_then(|code| self.class_of_ewc(code)) {
            return Ok(found.name.clone());
        }
        Ok(category.as_str().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> ActorRow {
        ActorRow::sawmill(None)
    }

    #[test]
    fn a_build_slower_than_the_staleness_limit_answers_for_twice_its_build_time() {
        let ms = std::time::Duration::from_millis;
        // A small territory: the limit decides.
        assert!(recent_enough(ms(2_900), ms(100), ms(3_000)));
        assert!(!recent_enough(ms(3_100), ms(100), ms(3_000)));
        // A national build of 20 s answers for 40 s rather than make readers wait for the next.
        assert!(recent_enough(ms(39_000), ms(20_000), ms(3_000)));
        assert!(!recent_enough(ms(41_000), ms(20_000), ms(3_000)));
        // No limit: every read sees every write, however slow the build.
        assert!(!recent_enough(ms(0), ms(20_000), ms(0)));
    }

    #[test]
    fn only_updates_the_detection_reads_cost_a_rebuild() {
        let before = actor();
        let readdressed = ActorRow {
            address: Some("1 rue du Port".into()),
            contact_email: Some("a@b.fr".into()),
            siret: Some("12345678200010".into()),
            ..before.clone()
        };
        assert!(!affects_detection(&before, &readdressed));
        for after in [
            ActorRow {
                name: "Scierie du Port".into(),
                ..before.clone()
            },
            ActorRow {
                naf_code: "16.21Z".into(),
                ..before.clone()
            },
            ActorRow {
                lat: 47.4,
                ..before.clone()
            },
            ActorRow {
                share_with_partners: false,
                ..before.clone()
            },
        ] {
            assert!(affects_detection(&before, &after), "{after:?}");
        }
    }

    #[test]
    fn fingerprint_follows_every_stored_field() {
        let a = serde_json::json!({"score": 0.5, "explanation_fr": "x"});
        let b = serde_json::json!({"score": 0.5000001, "explanation_fr": "x"});
        let c = serde_json::json!({"score": 0.5, "explanation_fr": "y"});
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
