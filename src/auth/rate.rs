//! Rate limits of `/api/v1`, in two stages around the key lookup of the gate (`middleware.rs`):
//!
//! 1. [`RateLimiter::check_address`], before the lookup: a token bucket per client address (an IPv6
//!    client by its /64, so one host cannot rotate through its addresses). Every request that does
//!    not carry a key the lookup accepted recently is charged here — no key, a malformed header, an
//!    unknown or random bearer value —, *before* the database is asked, so random bearers cannot
//!    escape the per-address limit and, once the address is out of tokens, cost no lookup.
//! 2. [`RateLimiter::check_key`], after the lookup: a token bucket per key id, so every spelling of
//!    one key (`bearer K`, `BEARER K`, `Bearer  K`) shares one bucket. A bearer that was let through
//!    stage 1 as recently accepted but is no longer valid (revoked) is charged to its address here.
//!
//! The bucket maps are `governor` keyed limiters, bounded: when one holds `auth.rate_limit_max_clients`
//! entries, idle entries are dropped (`retain_recent`, at most once a second), and if it is still
//! full a client it does not track yet is refused with 503 rather than letting the map grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::{Quota, RateLimiter as Limiter};

use crate::config::AuthSettings;

/// How long a key the lookup accepted skips the address stage before it is charged there once more.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// Full maps are pruned at most this often (pruning walks the whole map).
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// A governor state store whose map we can also read (is this client tracked? how many are?).
struct Shared<K: Hash + Eq + Clone>(Arc<DashMapStateStore<K>>);

impl<K: Hash + Eq + Clone> StateStore for Shared<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for Shared<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The bucket is empty: retry after this long.
    Limited(Duration),
    /// The map tracks as many clients as it may, and this one is new.
    Full,
}

/// `per_second` sustained, `burst` at once (the settings are checked to be at least 1).
fn quota(per_second: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// One bounded keyed limiter.
struct Buckets<K: Hash + Eq + Clone> {
    limiter: Limiter<K, Shared<K>, DefaultClock>,
    store: Arc<DashMapStateStore<K>>,
    clock: DefaultClock,
    max_tracked: usize,
    last_prune: Mutex<Option<Instant>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(quota: Quota, max_tracked: usize) -> Buckets<K> {
        let store = Arc::new(DashMapStateStore::default());
        let clock = DefaultClock::default();
        Buckets {
            limiter: Limiter::new(quota, Shared(store.clone()), clock.clone()),
            store,
            clock,
            max_tracked: max_tracked.max(1),
            last_prune: Mutex::new(None),
        }
    }

    fn check(&self, key: &K) -> Result<(), Refusal> {
        if self.store.len() >= self.max_tracked && !self.store.contains_key(key) {
            self.prune();
            if self.store.len() >= self.max_tracked {
                return Err(Refusal::Full);
            }
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| Refusal::Limited(not_until.wait_time_from(self.clock.now())))
    }

    /// Drops the entries whose bucket is full again (forgetting them changes nothing).
    fn prune(&self) {
        {
            let mut last = self
                .last_prune
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// What stage 1 decided, for stage 2.
#[derive(Debug)]
pub struct Admission {
    address: IpAddr,
    /// The SHA-256 of the bearer value, when there is one.
    bearer: Option<String>,
    /// Whether this request was charged to its address.
    charged: bool,
}

/// The two-stage limiter; one per server, shared by its workers (it lives in `AppState`).
pub struct RateLimiter {
    addresses: Buckets<IpAddr>,
    keys: Buckets<String>,
    /// Key hashes the lookup accepted, and when it last did.
    known: Mutex<HashMap<String, Instant>>,
    max_tracked: usize,
    /// `auth.trusted_proxies`, parsed (the settings were checked).
    proxies: Vec<ipnet::IpNet>,
}

impl RateLimiter {
    /// From the (checked) settings: `rate_limit_per_second`/`rate_limit_burst` per key,
    /// `address_rate_limit_per_second`/`address_rate_limit_burst` per address.
    pub fn new(settings: &AuthSettings) -> RateLimiter {
        let max = settings.rate_limit_max_clients;
        RateLimiter {
            addresses: Buckets::new(
                quota(
                    settings.address_rate_limit_per_second,
                    settings.address_rate_limit_burst,
                ),
                max,
            ),
            keys: Buckets::new(
                quota(settings.rate_limit_per_second, settings.rate_limit_burst),
                max,
            ),
            known: Mutex::new(HashMap::new()),
            max_tracked: max.max(1),
            proxies: settings
                .trusted_proxies
                .iter()
                .filter_map(|n| n.trim().parse().ok())
                .collect(),
        }
    }

    /// Stage 1, before the key lookup: charges the client's address unless the request carries a
    /// key the lookup accepted within the last minute. `Err` is the 429/503 to send.
    pub fn check_address(&self, req: &ServiceRequest) -> Result<Admission, Limited> {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let address = client_of(self.client_behind_proxies(req, peer));
        let bearer = bearer_hash(req);
        let mut admission = Admission {
            address,
            bearer,
            charged: false,
        };
        if !admission.bearer.as_ref().is_some_and(|h| self.is_known(h)) {
            self.charge_address(&mut admission)?;
        }
        Ok(admission)
    }

    /// The client's address: the peer, unless the peer is a trusted proxy; then the last address of
    /// `X-Forwarded-For` (each proxy appends the one it saw) that is not a trusted proxy. A header
    /// that does not parse leaves the proxy as the client: it is charged, not the forger's choice.
    fn client_behind_proxies(&self, req: &ServiceRequest, peer: IpAddr) -> IpAddr {
        let trusted = |ip: &IpAddr| self.proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in req.headers().get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            for hop in text.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        // From the nearest hop back, past the trusted proxies.
        hops.iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }

    /// Stage 2, after the lookup: `key_id` is the key it accepted, `None` when there is no valid
    /// key. Charges the key's bucket, or the address when stage 1 did not.
    pub fn check_key(&self, mut admission: Admission, key_id: Option<&str>) -> Result<(), Limited> {
        match key_id {
            Some(id) => {
                if let Some(hash) = admission.bearer.take() {
                    self.remember(hash);
                }
                self.keys.check(&id.to_owned()).map_err(|refusal| Limited {
                    refusal,
                    whose: "this key",
                })
            }
            None => {
                if let Some(hash) = &admission.bearer {
                    self.forget(hash);
                }
                if admission.charged {
                    Ok(())
                } else {
                    self.charge_address(&mut admission)
                }
            }
        }
    }

    fn charge_address(&self, admission: &mut Admission) -> Result<(), Limited> {
        admission.charged = true;
        self.addresses
            .check(&admission.address)
            .map_err(|refusal| Limited {
                refusal,
                whose: "this client address",
            })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_known(&self, hash: &str) -> bool {
        self.known()
            .get(hash)
            .is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }

    fn remember(&self, hash: String) {
        let mut known = self.known();
        if known.len() >= self.max_tracked && !known.contains_key(&hash) {
            known.retain(|_, at| at.elapsed() < KNOWN_FOR);
            if known.len() >= self.max_tracked {
                // Not remembered: this key is charged to its address first, as an unknown one.
                return;
            }
        }
        known.insert(hash, Instant::now());
    }

    fn forget(&self, hash: &str) {
        self.known().remove(hash);
    }
}

/// The bucket of an address: an IPv4 address itself (also when written IPv4-mapped), an IPv6
/// address by its /64 — the block one host or one customer gets.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The SHA-256 of the key of `Authorization: Bearer <key>` (read as the gate reads it).
fn bearer_hash(req: &ServiceRequest) -> Option<String> {
    let text = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = text.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| super::hash_key(key))
}

/// A refused request.
#[derive(Debug)]
pub struct Limited {
    refusal: Refusal,
    whose: &'static str,
}

impl Limited {
    /// 429 with `Retry-After` when a bucket is empty; 503 when too many clients are tracked.
    pub fn response(&self) -> HttpResponse {
        let whose = self.whose;
        let (status, wait, detail) = match self.refusal {
            Refusal::Limited(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    secs,
                    format!("rate limit of {whose} reached; retry in {secs} s"),
                )
            }
            Refusal::Full => (
                StatusCode::SERVICE_UNAVAILABLE,
                1,
                "too many clients at once; retry shortly".to_owned(),
            ),
        };
        let slug = if status == StatusCode::TOO_MANY_REQUESTS {
            "too-many-requests"
        } else {
            "unavailable"
        };
        HttpResponse::build(status)
            .insert_header(("Retry-After", wait.to_string()))
            .content_type("application/problem+json")
            .json(serde_json::json!({
                "type": format!("https://symbiose.example/problems/{slug}"),
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(),
                "detail": detail,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn ipv6_clients_are_their_64() {
        assert_eq!(client_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_of(ip("2001:db8:1:2:ffff::1")),
            client_of(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            client_of(ip("2001:db8:1:2::1")),
            client_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_of(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_full_map_refuses_new_clients_and_keeps_serving_tracked_ones() {
        // One request an hour: nothing refills, nothing can be pruned.
        let hourly = Quota::per_hour(NonZeroU32::MIN).allow_burst(NonZeroU32::new(2).expect("2"));
        let buckets: Buckets<IpAddr> = Buckets::new(hourly, 2);
        let _ = buckets.limiter.check_key(&ip("192.0.2.1"));
        assert_eq!(buckets.check(&ip("192.0.2.2")), Ok(()));
        assert_eq!(buckets.check(&ip("192.0.2.3")), Err(Refusal::Full));
        assert_eq!(buckets.check(&ip("192.0.2.1")), Ok(()), "a tracked client");
        assert!(matches!(
            buckets.check(&ip("192.0.2.1")),
            Err(Refusal::Limited(_))
        ));
        assert_eq!(ShrinkableKeyedStateStore::len(&*buckets.store), 2);
    }

    #[test]
    fn idle_clients_are_pruned_to_make_room() {
        let buckets: Buckets<IpAddr> = Buckets::new(quota(1_000_000, 1), 2);
        assert_eq!(buckets.check(&ip("192.0.2.1")), Ok(()));
        assert_eq!(buckets.check(&ip("192.0.2.2")), Ok(()));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(buckets.check(&ip("192.0.2.3")), Ok(()), "idle ones dropped");
        assert!(ShrinkableKeyedStateStore::len(&*buckets.store) <= 2);
    }

    fn request(peer: &str, authorization: Option<&str>) -> ServiceRequest {
        let mut req = actix_web::test::TestRequest::default()
            .peer_addr(std::net::SocketAddr::new(ip(peer), 4000));
        if let Some(value) = authorization {
            req = req.insert_header((AUTHORIZATION, value));
        }
        req.to_srv_request()
    }

    fn limiter(address_burst: u32) -> RateLimiter {
        RateLimiter::new(&AuthSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 1_000,
            address_rate_limit_per_second: 1,
            address_rate_limit_burst: address_burst,
            ..AuthSettings::default()
        })
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_client_is_charged_and_a_forger_is_not_believed() {
        let limiter = RateLimiter::new(&AuthSettings {
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..AuthSettings::default()
        });
        let forwarded = |peer: &str, header: Option<&str>| {
            let mut req = actix_web::test::TestRequest::default()
                .peer_addr(std::net::SocketAddr::new(ip(peer), 4000));
            if let Some(value) = header {
                req = req.insert_header(("x-forwarded-for", value));
            }
            let req = req.to_srv_request();
            limiter.client_behind_proxies(&req, ip(peer))
        };
        // Through the proxy: the client it saw, past the proxies of the chain.
        assert_eq!(forwarded("10.0.0.5", Some("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            forwarded("10.0.0.5", Some("198.51.100.1, 192.0.2.7, 10.0.0.9")),
            ip("192.0.2.7"),
            "a client-supplied first hop is not believed"
        );
        // Straight to the server: the header is the client's own words, ignored.
        assert_eq!(forwarded("192.0.2.8", Some("203.0.113.1")), ip("192.0.2.8"));
        // A header that does not parse: the proxy pays.
        assert_eq!(forwarded("10.0.0.5", Some("nonsense")), ip("10.0.0.5"));
        assert_eq!(forwarded("10.0.0.5", None), ip("10.0.0.5"));
    }

    #[test]
    fn unknown_bearers_pay_at_their_address_before_the_lookup() {
        let limiter = limiter(3);
        for i in 0..3 {
            let value = format!("Bearer random-{i}");
            let admission = limiter
                .check_address(&request("192.0.2.7", Some(&value)))
                .expect("within the address burst");
            assert!(limiter.check_key(admission, None).is_ok(), "charged once");
        }
        let refused = limiter
            .check_address(&request("192.0.2.7", Some("Bearer random-4")))
            .expect_err("the address is out of tokens: no lookup")
            .response();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        // Another address has its own bucket.
        assert!(limiter.check_address(&request("2001:db8::1", None)).is_ok());
    }

    #[test]
    fn accepted_keys_skip_the_address_until_they_fail() {
        let limiter = limiter(1);
        let admission = limiter
            .check_address(&request("192.0.2.8", Some("Bearer sym_good")))
            .expect("first request");
        assert!(limiter.check_key(admission, Some("key-1")).is_ok());
        // The address is now empty, but an accepted key is not charged there…
        for spelling in ["bearer sym_good", "BEARER sym_good", "Bearer  sym_good"] {
            let admission = limiter
                .check_address(&request("192.0.2.8", Some(spelling)))
                .expect("a known key skips the address");
            assert!(limiter.check_key(admission, Some("key-1")).is_ok());
        }
        assert!(
            limiter
                .check_address(&request("192.0.2.8", Some("Bearer other")))
                .is_err(),
            "an unknown one is"
        );
        // …until the lookup refuses it (revoked): then it pays at its address, and is forgotten.
        let admission = limiter
            .check_address(&request("192.0.2.8", Some("Bearer sym_good")))
            .expect("still known");
        assert!(limiter.check_key(admission, None).is_err());
        assert!(
            limiter
                .check_address(&request("192.0.2.8", Some("Bearer sym_good")))
                .is_err()
        );
    }

    #[test]
    fn every_spelling_of_a_key_shares_its_bucket() {
        let limiter = RateLimiter::new(&AuthSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            ..AuthSettings::default()
        });
        let mut outcomes = Vec::new();
        for spelling in ["Bearer k", "bearer k", "BEARER  k"] {
            let admission = limiter
                .check_address(&request("192.0.2.9", Some(spelling)))
                .expect("address");
            outcomes.push(limiter.check_key(admission, Some("key-k")).is_ok());
        }
        assert_eq!(outcomes, [true, true, false]);
    }
}
