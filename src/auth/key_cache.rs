//! The keys this server has checked, so that a request costs no database round trip to say who sends
//! it. Only valid keys are kept (an unknown or revoked key is looked up every time, so guessing keys
//! cannot fill the cache), and the whole cache is dropped whenever any key may have changed:
//! - at once when a key is revoked through this server (`api::keys::revoke`);
//! - on another server's revocation, when its PostgreSQL notification arrives (the `keys` change
//!   counter's trigger notifies as the revocation commits, `db::notify`), or when the change
//!   follower sees the `keys` counter move (its polling: the CLI, a SQLite file shared by processes,
//!   a listener that lost its connection);
//! - when the notification listener (re)connects, since notifications may have been missed.
//!
//! A lookup that raced a revocation never re-inserts the revoked key: each clear starts a new epoch,
//! and a key read from the database is only kept if no clear happened since before it was read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;

use super::Principal;

/// The most keys kept; past it the cache starts over (a deployment has tens of keys, not thousands).
const CAPACITY: usize = 4096;

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Principal>,
    /// Bumped by every clear.
    epoch: u64,
}

/// Valid keys by the SHA-256 of their secret (see the module's documentation).
pub struct KeyCache {
    entries: RwLock<Entries>,
    /// The last `keys` change counter the follower reported.
    seen_version: AtomicI64,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            entries: RwLock::default(),
            seen_version: AtomicI64::new(i64::MIN),
        }
    }
}

/// A lookup that missed: what it needs to keep the answer it reads.
pub struct Miss {
    epoch: u64,
}

impl KeyCache {
    /// The holder of the key whose hash is `hash`, if this server checked it since keys last changed;
    /// otherwise the [`Miss`] to hand to [`KeyCache::keep`] with the database's answer.
    pub fn get(&self, hash: &str) -> Result<Principal, Miss> {
        let entries = self.entries.read();
        match entries.by_hash.get(hash) {
            Some(principal) => Ok(principal.clone()),
            None => Err(Miss {
                epoch: entries.epoch,
            }),
        }
    }

    /// Keeps a valid key read from the database after `miss`, unless keys may have changed since.
    pub fn keep(&self, miss: Miss, hash: String, principal: Principal) {
        let mut entries = self.entries.write();
        if entries.epoch != miss.epoch {
            return;
        }
        if entries.by_hash.len() >= CAPACITY {
            entries.by_hash.clear();
        }
        entries.by_hash.insert(hash, principal);
    }

    /// Forgets every key: one may have been revoked.
    pub fn clear(&self) {
        let mut entries = self.entries.write();
        entries.by_hash.clear();
        entries.epoch += 1;
    }

    /// The change follower read the `keys` counter: a move means a key changed somewhere.
    pub fn saw_keys_version(&self, version: i64) {
        if self.seen_version.fetch_max(version, Ordering::SeqCst) < version {
            self.clear();
        }
    }

    /// How many keys are kept (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.entries.read().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn principal(id: &str) -> Principal {
        Principal {
            key_id: id.into(),
            name: id.into(),
            role: Role::Facilitator,
            territories: vec![],
        }
    }

    #[test]
    fn a_checked_key_is_answered_from_memory_until_keys_change() {
        let cache = KeyCache::default();
        let Err(miss) = cache.get("h1") else {
            panic!("an empty cache answered");
        };
        cache.keep(miss, "h1".into(), principal("k1"));
        assert_eq!(cache.get("h1").ok(), Some(principal("k1")));
        assert!(cache.get("h2").is_err());
        // The first counter seen, then the same again: nothing changed since the key was read.
        cache.saw_keys_version(7);
        assert!(cache.is_empty(), "the first reading may follow a change");
        let Err(miss) = cache.get("h1") else {
            panic!("kept after a clear");
        };
        cache.keep(miss, "h1".into(), principal("k1"));
        cache.saw_keys_version(7);
        cache.saw_keys_version(6);
        assert_eq!(
            cache.len(),
            1,
            "an unchanged or older counter keeps the keys"
        );
        cache.saw_keys_version(8);
        assert!(cache.get("h1").is_err(), "a moved counter drops the keys");
    }

    #[test]
    fn a_lookup_that_raced_a_revocation_does_not_keep_the_revoked_key() {
        let cache = KeyCache::default();
        let Err(miss) = cache.get("h1") else {
            panic!("an empty cache answered");
        };
        // The database said "valid", then the key was revoked before the answer was kept.
        cache.clear();
        cache.keep(miss, "h1".into(), principal("k1"));
        assert!(cache.get("h1").is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = KeyCache::default();
        for i in 0..=CAPACITY {
            let Err(miss) = cache.get(&format!("h{i}")) else {
                panic!("answered a new key");
            };
            cache.keep(miss, format!("h{i}"), principal(&format!("k{i}")));
        }
        assert!(cache.len() <= CAPACITY);
        assert!(cache.get(&format!("h{CAPACITY}")).is_ok(), "the last kept");
    }
}
