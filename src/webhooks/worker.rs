//! The delivery worker: a tokio task that, every `webhooks.poll_interval_ms`,
//! 1. refreshes the synergy detection when a subscription wants `synergy.detected` or `synergy.retired` (detection is
//!    otherwise lazy: it runs on the next read of synergies);
//! 2. fans out recorded events into the outbox ([`super::fanout`]);
//! 3. delivers, for each active subscription with pending rows (several at once), its head — the
//!    lowest sequence number not yet delivered or expired — and the following ones while they
//!    succeed. A failed attempt schedules a retry of the same row after an exponential backoff with
//!    jitter; nothing behind it is sent meanwhile, so a subscription receives its events in order.
//!    A row still failing past `webhooks.max_age_secs` is expired (given up) and the next one
//!    follows. After `webhooks.failures_before_pause` failures in a row the subscription is paused
//!    until `POST /webhooks/{id}/resume`. The lease taken right before each delivery is refused
//!    when the subscription's key is revoked (the subscription is paused then), so a revoked
//!    partner gets nothing more, whatever was already fanned out for it.
//!
//! Everything the worker knows is in the database: a restart (or a second instance on the same
//! database) continues where it stopped. One instance at a time delivers a subscription (a lease
//! on the subscription row), and a row is marked delivered only after the receiver answered 2xx,
//! so a crash between the two means one more delivery of the same event id: at least once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures_util::StreamExt;
use rand::Rng;

use super::fanout::{self, Renderer};
use super::sign;
use super::target::{self, PublicOnlyResolver};
use crate::config::WebhookSettings;
use crate::db::webhooks::{self as store, AfterFailure, AttemptRow, OutboxRow, SubscriptionRow};
use crate::db::{self, DbError, DbPool};
use crate::detection::Detection;
use crate::reference::Reference;

/// Longest error text stored per attempt.
const MAX_ERROR_CHARS: usize = 500;

/// The running worker; dropping it (or [`WorkerHandle::stop`]) stops it. Work in progress is
/// simply repeated by the next worker.
pub struct WorkerHandle {
    task: tokio::task::JoinHandle<()>,
    pool: DbPool,
    owner: String,
}

impl WorkerHandle {
    /// Stops the worker and releases its subscription leases, so that another instance can take
    /// over at once (a crashed worker's leases lapse after `timeout_ms` + 5 s).
    pub fn stop(self) {}
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
        let (pool, owner) = (self.pool.clone(), self.owner.clone());
        let release = move || {
            if let Ok(mut conn) = pool.get()
                && let Err(e) = store::release_leases_of(&mut conn, &owner)
            {
                tracing::warn!(error = %e, "webhooks: releasing leases failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(release);
            }
            Err(_) => release(),
        }
    }
}

struct Worker {
    pool: DbPool,
    reference: Arc<Reference>,
    detection: Arc<Detection>,
    settings: WebhookSettings,
    anonymise_secret: String,
    client: reqwest::Client,
    /// This worker's lease owner id.
    owner: String,
    /// When old deliveries were last purged.
    last_purge: std::sync::Mutex<Option<Instant>>,
}

/// How often a worker purges deliveries older than `webhooks.retention_days`.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Starts the delivery worker on the current tokio runtime.
pub fn start_worker(
    pool: DbPool,
    reference: Arc<Reference>,
    detection: Arc<Detection>,
    settings: WebhookSettings,
    anonymise_secret: String,
) -> anyhow::Result<WorkerHandle> {
    let client = client(&settings)?;
    let owner = uuid::Uuid::new_v4().to_string();
    let worker = Arc::new(Worker {
        pool: pool.clone(),
        reference,
        detection,
        settings,
        anonymise_secret,
        client,
        owner: owner.clone(),
        last_purge: std::sync::Mutex::new(None),
    });
    let task = tokio::spawn(async move {
        let poll = Duration::from_millis(worker.settings.poll_interval_ms);
        loop {
            worker.round().await;
            tokio::time::sleep(poll).await;
        }
    });
    Ok(WorkerHandle { task, pool, owner })
}

/// The delivery client: a timeout, no redirects (a redirect could lead anywhere), no proxy from the
/// environment, and — without an allow-list — a resolver that refuses internal addresses.
fn client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("symbiose-webhooks/", env!("CARGO_PKG_VERSION")));
    if settings.allowed_hosts.is_empty() {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    Ok(builder.build()?)
}

/// The delay before retry number `attempt` (1 = the first retry): `base · 2^(attempt-1)`, at most
/// `max`, then a random value in [delay/2, delay] so that failing subscriptions do not retry in step.
pub fn backoff(settings: &WebhookSettings, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(40);
    let delay = settings
        .backoff_base_ms
        .saturating_mul(1u64 << exp)
        .min(settings.backoff_max_ms);
    let half = delay / 2;
    Duration::from_millis(half + rand::rng().random_range(0..=delay - half))
}

fn later(now: NaiveDateTime, delay: Duration) -> NaiveDateTime {
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

impl Worker {
    async fn round(&self) {
        self.purge().await;
        if let Err(e) = self.refresh_detection().await {
            tracing::warn!(error = %e, "webhooks: synergy detection failed");
        }
        let renderer_ref = self.reference.clone();
        let secret = self.anonymise_secret.clone();
        let batch = self.settings.batch_size;
        let fanned = db::run(&self.pool, move |conn| {
            let renderer = Renderer {
                reference: &renderer_ref,
                anonymise_secret: &secret,
            };
            fanout::fan_out(conn, &renderer, batch)
        })
        .await;
        if let Err(e) = fanned {
            tracing::warn!(error = %e, "webhooks: fan-out failed");
        }
        let heads = match db::run(&self.pool, store::pending_heads).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: reading the outbox failed");
                return;
            }
        };
        futures_util::stream::iter(heads)
            .for_each_concurrent(self.settings.concurrency, |(id, _)| async move {
                if let Err(e) = self.deliver_subscription(&id).await {
                    tracing::warn!(subscription = %id, error = %e, "webhooks: delivery round failed");
                }
            })
            .await;
    }

    /// Deletes delivered and expired rows past the retention period, every `PURGE_EVERY`.
    async fn purge(&self) {
        {
            let mut last = self
                .last_purge
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let cutoff = db::now() - chrono::Duration::days(i64::from(self.settings.retention_days));
        match db::run(&self.pool, move |conn| store::purge_before(conn, cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "webhooks: old deliveries purged"),
            Err(e) => tracing::warn!(error = %e, "webhooks: purge failed"),
        }
    }

    /// Runs the detection when someone listens to `synergy.detected` or `synergy.retired` and data
    /// changed since.
    async fn refresh_detection(&self) -> Result<(), String> {
        let wanted = db::run(&self.pool, |conn| Ok(store::subscribed_event_lists(conn)?))
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .any(|list| {
                list.contains("\"synergy.detected\"") || list.contains("\"synergy.retired\"")
            });
        if !wanted {
            return Ok(());
        }
        let detection = self.detection.clone();
        let pool = self.pool.clone();
        actix_web::web::block(move || -> Result<(), String> {
            detection
                .current(&pool)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    fn lease_until(&self, now: NaiveDateTime) -> NaiveDateTime {
        // One delivery (the lease is renewed before each): the request's timeout and a margin.
        later(
            now,
            Duration::from_millis(self.settings.timeout_ms) + Duration::from_secs(5),
        )
    }

    async fn deliver_subscription(&self, id: &str) -> Result<(), DbError> {
        let owner = self.owner.clone();
        for _ in 0..self.settings.batch_size {
            let now = db::now();
            let until = self.lease_until(now);
            let (sub_id, owner_c) = (id.to_owned(), owner.clone());
            // Take or renew the lease before each delivery; stop when paused, deleted or taken.
            let Some(sub) = db::run(&self.pool, move |conn| {
                store::claim_lease(conn, &sub_id, &owner_c, now, until)
            })
            .await?
            else {
                return Ok(());
            };
            let sub_id = id.to_owned();
            let Some(head) = db::run(&self.pool, move |conn| store::head(conn, &sub_id)).await?
            else {
                break;
            };
            if head.next_attempt_at > db::now() {
                break;
            }
            let attempt = self.attempt(&sub, &head).await;
            if attempt.success {
                db::run(&self.pool, move |conn| {
                    store::record_success(conn, &head, &attempt)
                })
                .await?;
                continue;
            }
            let age = attempt.attempted_at - head.created_at;
            let expire =
                age.num_seconds() > i64::try_from(self.settings.max_age_secs).unwrap_or(i64::MAX);
            let after = if expire {
                AfterFailure::Expire
            } else {
                let n = u32::try_from(head.attempts)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                AfterFailure::RetryAt(later(attempt.attempted_at, backoff(&self.settings, n)))
            };
            let pause_after =
                i32::try_from(self.settings.failures_before_pause).unwrap_or(i32::MAX);
            let (event, seq) = (head.event_id.clone(), head.seq);
            let paused = db::run(&self.pool, move |conn| {
                store::record_failure(conn, &head, &attempt, after, pause_after)
            })
            .await?;
            if paused {
                tracing::warn!(subscription = %id, "webhooks: subscription paused after repeated failures");
            }
            if expire {
                tracing::warn!(subscription = %id, event = %event, seq, "webhooks: event expired undelivered");
            }
            if paused || !expire {
                break;
            }
        }
        let sub_id = id.to_owned();
        db::run(&self.pool, move |conn| {
            store::release_lease(conn, &sub_id, &owner)
        })
        .await
    }

    /// One HTTP delivery of an outbox row.
    async fn attempt(&self, sub: &SubscriptionRow, row: &OutboxRow) -> AttemptRow {
        let attempted_at = db::now();
        let started = Instant::now();
        let result = self.send(sub, row).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (http_status, error) = match result {
            Ok(status) => (Some(i32::from(status)), None),
            Err(e) => (None, Some(e.chars().take(MAX_ERROR_CHARS).collect())),
        };
        AttemptRow {
            id: uuid::Uuid::new_v4().to_string(),
            outbox_id: row.id.clone(),
            attempted_at,
            success: http_status.is_some_and(|s| (200..300).contains(&s)),
            http_status,
            error,
            duration_ms,
        }
    }

    async fn send(&self, sub: &SubscriptionRow, row: &OutboxRow) -> Result<u16, String> {
        // The allow-list may have changed since the subscription was made.
        let url = target::validate(&sub.url, &self.settings.allowed_hosts)
            .map_err(|why| format!("URL refused: {why}"))?;
        let timestamp = chrono::Utc::now().timestamp();
        let body = row.payload.clone().into_bytes();
        let signature = sign::header_value(&sub.secret, timestamp, &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::SIGNATURE_HEADER, signature)
            .header(sign::EVENT_ID_HEADER, &row.event_id)
            .header(sign::EVENT_TYPE_HEADER, &row.event_type)
            .header("X-Symbiose-Delivery", &row.id)
            .body(body)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(response.status().as_u16())
    }
}

/// An error with its causes ("error sending request: … : connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let settings = WebhookSettings {
            backoff_base_ms: 100,
            backoff_max_ms: 1_000,
            ..WebhookSettings::default()
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1_000),
            (60, 1_000),
        ] {
            for _ in 0..20 {
                let d = backoff(&settings, attempt).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d} ms");
            }
        }
    }
}
