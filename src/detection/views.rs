//! Anonymous views: a build as readers who may not see every actor compute it (each actor where
//! they may see it: `auth::anonymise::known_position`), carried from the last view as a build is
//! from the previous one, and made right after a rebuild once partners have read one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::derive::{Derived, derive};
use super::{
    ActorInfo, Actors, Built, Detection, DetectionError, ViewPositions, carry_plan,
    yield_to_requests,
};
use crate::matching::MatchingSettings;
use crate::matching::pooling::PoolingParams;

impl Built {
    /// The same detection with every actor at `position(actor)`: snapshot, synergies and pooling
    /// groups recomputed by the same engine (nothing persisted; statuses shared). Ids stay those of
    /// the offers, needs and members, so the statuses and notes of a synergy follow it.
    ///
    /// With the `earlier` view of a previous build, only the offers the changes since reach are
    /// matched again (`Carry`); `threads` as in `derive`.
    pub fn moved(
        &self,
        settings: &MatchingSettings,
        pooling: &PoolingParams,
        position: impl Fn(&ActorInfo) -> (f64, f64),
        earlier: Option<&Built>,
        threads: usize,
    ) -> Result<Built, DetectionError> {
        let actors: Actors = self
            .actors
            .values()
            .map(|a| {
                let (lat, lng) = position(a);
                // An actor left where it is stays shared with the build.
                let same = (lat.to_bits(), lng.to_bits()) == (a.lat.to_bits(), a.lng.to_bits());
                let info = if same {
                    a.clone()
                } else {
                    Arc::new(ActorInfo {
                        lat,
                        lng,
                        ..ActorInfo::clone(a)
                    })
                };
                (a.id, info)
            })
            .collect();
        let snapshot = self.snapshot.moved(|a| {
            actors
                .get(&a.id)
                .map_or((a.lat, a.lng), |info| (info.lat, info.lng))
        });
        let carry = earlier.and_then(|earlier| carry_plan(settings, &earlier.snapshot, &snapshot));
        let Derived {
            synergies,
            pooling,
            index,
            territories,
            first_seen,
            rematched,
            ..
        } = derive(
            &snapshot,
            &self.resources,
            &actors,
            settings,
            threads,
            pooling,
            Some(self),
            earlier.zip(carry.as_ref()),
        )?;
        Ok(Built {
            version: self.version,
            built_at: self.built_at,
            took: self.took,
            rematched,
            changes_read: self.changes_read,
            snapshot,
            settings: self.settings.clone(),
            synergies,
            pooling,
            actors,
            resources: self.resources.clone(),
            statuses: self.statuses.clone(),
            index,
            territories,
            first_seen,
            data_version: self.data_version,
            decisions_version: self.decisions_version.clone(),
            summary: self.summary,
            anonymous: std::sync::OnceLock::new(),
            anonymous_computing: Mutex::new(()),
            anonymous_computed: AtomicU64::new(0),
        })
    }
}

impl Detection {
    /// Registers where readers who may not see every actor see each of them
    /// (`auth::anonymise::known_position`): after a rebuild, the new build's anonymous view is then
    /// computed at once from the previous one's, when partners read it, in the background.
    pub fn keep_views_current(&self, positions: ViewPositions) {
        let _ = self.view_positions.set(positions);
    }

    /// The anonymous view of `built` (every actor at `position`), computed once per build — readers
    /// who ask meanwhile wait for that computation — from the last view computed, matching again only
    /// the offers the changes since reach (`Carry`), or in full when there is none or too much
    /// changed. The view is kept with the build and as the last view; the build itself when every actor
    /// consented.
    pub fn view_of(
        &self,
        built: &Arc<Built>,
        position: &dyn Fn(&ActorInfo) -> (f64, f64),
        threads: usize,
    ) -> Result<Arc<Built>, DetectionError> {
        // Nobody to hide: the build is its own view.
        if built.actors.values().all(|a| a.share_with_partners) {
            return Ok(built.clone());
        }
        if let Some(view) = built.anonymous.get() {
            return Ok(view.clone());
        }
        let _computing = built
            .anonymous_computing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(view) = built.anonymous.get() {
            return Ok(view.clone());
        }
        let started = std::time::Instant::now();
        built.anonymous_computed.fetch_add(1, Ordering::Relaxed);
        let earlier = self.lock_latest_view().clone();
        let view = built.moved(
            &self.settings,
            &self.pooling,
            position,
            earlier.as_deref(),
            threads,
        )?;
        drop(earlier);
        tracing::info!(
            version = built.version,
            ms = started.elapsed().as_millis() as u64,
            rematched = view.rematched,
            allocated_mib = crate::telemetry::allocated_mib(),
            resident_mib = crate::telemetry::jemalloc_resident_mib(),
            "anonymous view computed"
        );
        let view = built.anonymous.get_or_init(|| Arc::new(view)).clone();
        *self.lock_latest_view() = Some(view.clone());
        Ok(view)
    }

    pub(super) fn lock_latest_view(&self) -> std::sync::MutexGuard<'_, Option<Arc<Built>>> {
        self.latest_view
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Computes `built`'s anonymous view ([`Detection::view_of`]) on a background thread of the
    /// idle class, unless a newer build has replaced it by then or writes wait for one. It holds the builders' lock, so that
    /// a rebuild does not run beside it: a build, the last view and the new one are the most it holds
    /// in memory, less than a rebuild does (the current build, its view, the new build).
    pub(super) fn view_in_background(
        self: &Arc<Self>,
        built: Arc<Built>,
        positions: ViewPositions,
    ) {
        let detection = self.clone();
        // Only a weak reference while waiting for the builders' lock: a rebuild that runs meanwhile
        // replaces the build, which must not stay in memory beside the next one for the wait.
        let version = built.version;
        let built = Arc::downgrade(&built);
        let spawned = std::thread::Builder::new()
            .name("anonymous-view".into())
            .spawn(move || {
                yield_to_requests();
                let _building = detection
                    .building
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // Replaced, or about to be (a write is waiting for a rebuild): that rebuild comes
                // first, and its build's view is made then.
                // (The weak reference keeps the build's allocation, so its address is not reused.)
                let pending = detection.version.load(Ordering::SeqCst) > version;
                let Some(built) = detection
                    .current
                    .load_full()
                    .filter(|c| !pending && std::ptr::eq(Arc::as_ptr(c), built.as_ptr()))
                else {
                    return;
                };
                let threads = detection.settings.background_threads;
                if let Err(error) = detection.view_of(&built, &|a| positions(a), threads) {
                    tracing::warn!(%error, "anonymous view not computed");
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the anonymous view's computation");
        }
    }
}
