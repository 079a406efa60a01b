//! Following what other servers and processes write: the change follower polls the database's change
//! counters (woken at once by PostgreSQL notifications), makes the next read rebuild when data
//! changed, reloads the statuses when decisions changed, and renews the announcer's lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{ANNOUNCER_LEASE, Detection};
use crate::db::{self, DbError};

impl Detection {
    /// Follows the database's change counters every `interval` (sooner when nudged: a PostgreSQL
    /// notification, [`ChangeFollower::listen`]), so that what other servers (or the CLI) write is
    /// seen here: new actors or resources make the next read rebuild; changed decisions reload the
    /// statuses of the current build (cheap: the stored decisions only); each reading of the
    /// `keys` counter goes to `keys_seen` (the key cache). Runs on its own thread until the handle
    /// is dropped.
    pub fn follow_changes(
        self: &Arc<Self>,
        pool: &db::DbPool,
        interval: std::time::Duration,
        keys_seen: Arc<dyn Fn(i64) + Send + Sync>,
    ) -> std::io::Result<ChangeFollower> {
        let stop = Arc::new(AtomicBool::new(false));
        let nudge = Nudge::default();
        let (detection, pool, stopped, nudged) =
            (self.clone(), pool.clone(), stop.clone(), nudge.clone());
        std::thread::Builder::new()
            .name("change-follower".into())
            .spawn(move || {
                let mut touched_at = i64::MIN;
                let mut prune_checked_at = i64::MIN;
                let mut last_checkpoint = std::time::Instant::now();
                let mut last_renewal: Option<std::time::Instant> = None;
                while !stopped.load(Ordering::SeqCst) {
                    nudged.wait(interval);
                    // Renewed once per interval, however many notifications wake the follower.
                    let renew = last_renewal.is_none_or(|at| at.elapsed() >= interval);
                    if renew {
                        last_renewal = Some(std::time::Instant::now());
                    }
                    if let Err(error) = detection.catch_up(
                        &pool,
                        &mut touched_at,
                        &mut prune_checked_at,
                        renew,
                        keys_seen.as_ref(),
                    ) {
                        tracing::debug!(%error, "change follower: database not reachable");
                    }
                    // Off the writers' path (`db::checkpoint`), about once a second.
                    if last_checkpoint.elapsed() >= std::time::Duration::from_secs(1) {
                        last_checkpoint = std::time::Instant::now();
                        if let Err(error) = pool
                            .get()
                            .map_err(DbError::from)
                            .and_then(|mut c| db::checkpoint(&mut c))
                        {
                            tracing::debug!(%error, "change follower: checkpoint failed");
                        }
                    }
                }
                // A server that stops hands the announcer's lease over at once (one that dies
                // hands it over when the lease expires).
                if let Err(error) = pool.get().map_err(DbError::from).and_then(|mut c| {
                    db::leases::release(&mut c, db::leases::ANNOUNCER, &detection.server_id)
                }) {
                    tracing::debug!(%error, "change follower: could not release the lease");
                }
            })?;
        Ok(ChangeFollower { stop, nudge })
    }

    /// One look at the change counters (see [`Detection::follow_changes`]); `renew` the
    /// announcer's lease too, and, holding it, prune the change feed when the counter has moved
    /// past `prune_checked_at` by what the feed keeps.
    fn catch_up(
        &self,
        pool: &db::DbPool,
        touched_at: &mut i64,
        prune_checked_at: &mut i64,
        renew: bool,
        keys_seen: &(dyn Fn(i64) + Send + Sync),
    ) -> Result<(), DbError> {
        self.retire(None);
        let mut conn = pool.get()?;
        let versions = db::changes::versions(&mut conn)?;
        keys_seen(versions.keys);
        // Only what is compared or updated is kept, not the build: a build replaced while this
        // looks must not stay in memory until the database answers.
        let Some((data_version, decisions_version, statuses)) =
            self.current.load_full().map(|built| {
                (
                    built.data_version,
                    built.decisions_version.clone(),
                    built.statuses.clone(),
                )
            })
        else {
            return Ok(());
        };
        // Renewed every interval, so the announcer stays one server while it runs.
        if renew {
            let holder = db::leases::hold(
                &mut conn,
                db::leases::ANNOUNCER,
                &self.server_id,
                ANNOUNCER_LEASE,
            )?;
            // One server at a time keeps the change feed short (the others read it), looking again
            // once the counter has moved by what the feed keeps, not at every tick.
            if holder && versions.data >= prune_checked_at.saturating_add(db::changes::FEED_KEPT) {
                *prune_checked_at = versions.data;
                let pruned = db::changes::prune(&mut conn, versions.data)?;
                if pruned > 0 {
                    tracing::debug!(pruned, "change feed pruned");
                }
            }
        }
        // A build being made that read the counter already holds those changes: another build
        // after it would read nothing new (at 1M, seconds of a background thread for nothing).
        let covered = data_version.max(self.building_through.load(Ordering::SeqCst));
        if versions.data > covered && versions.data > *touched_at {
            *touched_at = versions.data;
            self.touch();
        }
        if versions.decisions > decisions_version.load(Ordering::SeqCst) {
            let stored = db::synergies::statuses(&mut conn)?;
            *statuses
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = stored;
            decisions_version.fetch_max(versions.decisions, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Stops the change follower when dropped.
pub struct ChangeFollower {
    stop: Arc<AtomicBool>,
    nudge: Nudge,
}

impl ChangeFollower {
    /// Wakes the follower whenever PostgreSQL notifies a change (`db::notify`), until it stops:
    /// other servers' writes are then seen within milliseconds, the polling interval becoming the
    /// fallback. `noticed` hears each notification's kind first (`None`: the listener connected,
    /// having perhaps missed some), on the listener's thread.
    pub fn listen(
        &self,
        database_url: &str,
        noticed: impl Fn(Option<&str>) + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        let nudge = self.nudge.clone();
        db::notify::listen(
            database_url,
            move |kind| {
                noticed(kind);
                nudge.nudge();
            },
            self.stop.clone(),
        )
    }
}

/// Wakes the change follower before its next poll; nudges made while it works are folded into one.
#[derive(Clone, Default)]
struct Nudge(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Nudge {
    fn nudge(&self) {
        let (nudged, wake) = &*self.0;
        *nudged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_one();
    }

    /// Until nudged or `timeout` has passed.
    fn wait(&self, timeout: std::time::Duration) {
        let (nudged, wake) = &*self.0;
        let guard = nudged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut guard, _) = wake
            .wait_timeout_while(guard, timeout, |nudged| !*nudged)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = false;
    }
}

impl Drop for ChangeFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
