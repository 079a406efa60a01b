//! Webhook storage: subscriptions, events waiting for fan-out, the per-subscription outbox and the
//! delivery attempts. The rules (who receives what, retries, pausing) live in `crate::webhooks`;
//! the statements here.
//!
//! Ordering: each subscription's outbox rows carry a sequence number taken from the subscription's
//! `next_seq` under its row lock, and only the lowest pending one (the head) is ever attempted.
//! Exclusivity: a worker delivers a subscription only while it holds the subscription's lease.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    actors, webhook_attempts, webhook_events, webhook_outbox, webhook_subscriptions,
};
use super::{DbConnection, DbError};

/// Bind parameters per `IN (…)` list.
const CHUNK: usize = 400;

pub const ACTIVE: &str = "active";
pub const PAUSED: &str = "paused";
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const EXPIRED: &str = "expired";

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub key_id: String,
    pub url: String,
    /// JSON array of event types.
    pub events: String,
    pub secret: String,
    /// JSON array of territory codes; empty = national.
    pub territories: String,
    pub anonymise: bool,
    pub status: String,
    pub consecutive_failures: i32,
    pub paused_reason: Option<String>,
    pub paused_at: Option<NaiveDateTime>,
    pub next_seq: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl SubscriptionRow {
    pub fn event_types(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    pub fn territory_codes(&self) -> Vec<String> {
        serde_json::from_str(&self.territories).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_events)]
pub struct EventRow {
    pub id: String,
    pub event_type: String,
    pub created_at: NaiveDateTime,
    pub data: String,
    pub communes: String,
    pub subscription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub seq: i64,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub state: String,
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i32,
    pub delivered_at: Option<NaiveDateTime>,
    pub expired_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub id: String,
    pub outbox_id: String,
    pub attempted_at: NaiveDateTime,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub success: bool,
}

// ---------------------------------------------------------------------------------------------
// subscriptions

pub fn insert_subscription(conn: &mut DbConnection, row: &SubscriptionRow) -> Result<(), DbError> {
    diesel::insert_into(webhook_subscriptions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get_subscription(conn: &mut DbConnection, id: &str) -> Result<SubscriptionRow, DbError> {
    webhook_subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound)
}

/// One page of subscriptions by id, of one key (`None`: every key).
pub fn list_subscriptions(
    conn: &mut DbConnection,
    key_id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<SubscriptionRow>, DbError> {
    let mut query = webhook_subscriptions::table
        .select(SubscriptionRow::as_select())
        .into_boxed();
    if let Some(key) = key_id {
        query = query.filter(webhook_subscriptions::key_id.eq(key.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(webhook_subscriptions::id.gt(after.to_owned()));
    }
    Ok(query
        .order(webhook_subscriptions::id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Every subscription whose key is not revoked (the worker's fan-out reads them all; there are
/// few). A revoked key's subscriptions get no new events, paused or not.
pub fn all_subscriptions(conn: &mut DbConnection) -> Result<Vec<SubscriptionRow>, DbError> {
    let revoked = super::keys::revoked_ids(conn)?;
    let mut rows: Vec<SubscriptionRow> = webhook_subscriptions::table
        .select(SubscriptionRow::as_select())
        .order(webhook_subscriptions::id.asc())
        .load(conn)?;
    rows.retain(|s| !revoked.contains(&s.key_id));
    Ok(rows)
}

/// Why a revoked key's subscriptions are paused.
pub const REVOKED_REASON: &str = "the API key of this subscription was revoked";

/// Pauses every subscription of a revoked key (call in the revocation's transaction); pending
/// deliveries stay in the outbox but are never sent, since such a subscription cannot be resumed.
pub fn pause_for_revoked_key(
    conn: &mut DbConnection,
    key_id: &str,
    at: NaiveDateTime,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        webhook_subscriptions::table.filter(webhook_subscriptions::key_id.eq(key_id)),
    )
    .set((
        webhook_subscriptions::status.eq(PAUSED),
        webhook_subscriptions::paused_at.eq(Some(at)),
        webhook_subscriptions::paused_reason.eq(Some(REVOKED_REASON)),
        webhook_subscriptions::updated_at.eq(at),
    ))
    .execute(conn)?)
}

/// Deletes a subscription with its outbox and attempts (cascade).
pub fn delete_subscription(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        let outbox: Vec<String> = webhook_outbox::table
            .filter(webhook_outbox::subscription_id.eq(id))
            .select(webhook_outbox::id)
            .load(conn)?;
        for chunk in outbox.chunks(CHUNK) {
            diesel::delete(
                webhook_attempts::table.filter(webhook_attempts::outbox_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
        diesel::delete(webhook_outbox::table.filter(webhook_outbox::subscription_id.eq(id)))
            .execute(conn)?;
        diesel::delete(webhook_events::table.filter(webhook_events::subscription_id.eq(id)))
            .execute(conn)?;
        let n = diesel::delete(webhook_subscriptions::table.find(id)).execute(conn)?;
        if n == 0 {
            Err(DbError::NotFound)
        } else {
            Ok(())
        }
    })
}

/// Resumes a subscription: active again, failure count reset, every pending delivery due now.
/// Refused (`Conflict`) when its key is revoked.
pub fn resume(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<SubscriptionRow, DbError> {
    super::transaction(conn, |conn| {
        let key_id = get_subscription(conn, id)?.key_id;
        if super::keys::is_revoked(conn, &key_id)? {
            return Err(DbError::Conflict(format!(
                "{REVOKED_REASON}: it cannot be resumed; subscribe again with a valid key"
            )));
        }
        let n = diesel::update(webhook_subscriptions::table.find(id))
            .set((
                webhook_subscriptions::status.eq(ACTIVE),
                webhook_subscriptions::consecutive_failures.eq(0),
                webhook_subscriptions::paused_reason.eq(None::<String>),
                webhook_subscriptions::paused_at.eq(None::<NaiveDateTime>),
                webhook_subscriptions::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(DbError::NotFound);
        }
        diesel::update(
            webhook_outbox::table
                .filter(webhook_outbox::subscription_id.eq(id))
                .filter(webhook_outbox::state.eq(PENDING)),
        )
        .set(webhook_outbox::next_attempt_at.eq(now))
        .execute(conn)?;
        get_subscription(conn, id)
    })
}

/// The event types some subscription (active or paused) listens to, as stored JSON lists.
pub fn subscribed_event_lists(
    conn: &mut DbConnection,
) -> Result<Vec<String>, diesel::result::Error> {
    webhook_subscriptions::table
        .select(webhook_subscriptions::events)
        .distinct()
        .load(conn)
}

/// The INSEE commune of each of these actors that exists.
pub fn actor_communes(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<(String, String)>, diesel::result::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        out.extend(
            actors::table
                .filter(actors::id.eq_any(chunk))
                .select((actors::id, actors::commune_insee))
                .load::<(String, String)>(conn)?,
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// events and fan-out

pub fn insert_events(
    conn: &mut DbConnection,
    rows: &[EventRow],
) -> Result<(), diesel::result::Error> {
    for chunk in rows.chunks(200) {
        match conn {
            DbConnection::Sqlite(c) => diesel::insert_into(webhook_events::table)
                .values(chunk)
                .execute(c)?,
            DbConnection::Postgresql(c) => diesel::insert_into(webhook_events::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// The oldest events waiting for fan-out.
pub fn pending_events(conn: &mut DbConnection, limit: i64) -> Result<Vec<EventRow>, DbError> {
    Ok(webhook_events::table
        .select(EventRow::as_select())
        .order((webhook_events::created_at.asc(), webhook_events::id.asc()))
        .limit(limit)
        .load(conn)?)
}

/// Takes an event off the fan-out queue; `false` when another worker already did.
pub fn claim_event(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(webhook_events::table.find(id)).execute(conn)? == 1)
}

/// The next sequence number of a subscription (taken under its row lock: call in a transaction).
pub fn take_seq(conn: &mut DbConnection, subscription_id: &str) -> Result<i64, DbError> {
    let n = diesel::update(webhook_subscriptions::table.find(subscription_id))
        .set(webhook_subscriptions::next_seq.eq(webhook_subscriptions::next_seq + 1))
        .execute(conn)?;
    if n == 0 {
        return Err(DbError::NotFound);
    }
    let next: i64 = webhook_subscriptions::table
        .find(subscription_id)
        .select(webhook_subscriptions::next_seq)
        .first(conn)?;
    Ok(next - 1)
}

pub fn insert_outbox(conn: &mut DbConnection, row: &OutboxRow) -> Result<(), DbError> {
    diesel::insert_into(webhook_outbox::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// delivery

/// Active subscriptions with pending deliveries, each with the sequence number of its head.
pub fn pending_heads(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, DbError> {
    let active: Vec<String> = webhook_subscriptions::table
        .filter(webhook_subscriptions::status.eq(ACTIVE))
        .select(webhook_subscriptions::id)
        .load(conn)?;
    let mut out = Vec::new();
    for chunk in active.chunks(CHUNK) {
        let heads: Vec<(String, Option<i64>)> = webhook_outbox::table
            .filter(webhook_outbox::subscription_id.eq_any(chunk))
            .filter(webhook_outbox::state.eq(PENDING))
            .group_by(webhook_outbox::subscription_id)
            .select((
                webhook_outbox::subscription_id,
                diesel::dsl::min(webhook_outbox::seq),
            ))
            .load(conn)?;
        out.extend(heads.into_iter().filter_map(|(id, seq)| Some((id, seq?))));
    }
    Ok(out)
}

/// The lowest pending outbox row of a subscription.
pub fn head(conn: &mut DbConnection, subscription_id: &str) -> Result<Option<OutboxRow>, DbError> {
    Ok(webhook_outbox::table
        .filter(webhook_outbox::subscription_id.eq(subscription_id))
        .filter(webhook_outbox::state.eq(PENDING))
        .order(webhook_outbox::seq.asc())
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?)
}

/// Takes (or extends) the delivery lease of an active subscription; `None` when another worker
/// holds it, the subscription is paused or gone, or its key is revoked (it is then paused).
pub fn claim_lease(
    conn: &mut DbConnection,
    subscription_id: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Option<SubscriptionRow>, DbError> {
    let n = diesel::update(
        webhook_subscriptions::table
            .find(subscription_id)
            .filter(webhook_subscriptions::status.eq(ACTIVE))
            .filter(
                webhook_subscriptions::lease_until
                    .is_null()
                    .or(webhook_subscriptions::lease_until.lt(now))
                    .or(webhook_subscriptions::lease_owner.eq(owner)),
            ),
    )
    .set((
        webhook_subscriptions::lease_owner.eq(owner),
        webhook_subscriptions::lease_until.eq(until),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    let sub = get_subscription(conn, subscription_id)?;
    // Checked before every delivery, so that a key revoked after its events were fanned out (or
    // by any path that did not pause its subscriptions) gets nothing more.
    if super::keys::is_revoked(conn, &sub.key_id)? {
        pause_for_revoked_key(conn, &sub.key_id, now)?;
        release_lease(conn, subscription_id, owner)?;
        return Ok(None);
    }
    Ok(Some(sub))
}

pub fn release_lease(
    conn: &mut DbConnection,
    subscription_id: &str,
    owner: &str,
) -> Result<(), DbError> {
    diesel::update(
        webhook_subscriptions::table
            .find(subscription_id)
            .filter(webhook_subscriptions::lease_owner.eq(owner)),
    )
    .set((
        webhook_subscriptions::lease_owner.eq(None::<String>),
        webhook_subscriptions::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// What a failed attempt does to the outbox row.
#[derive(Debug, Clone, Copy)]
pub enum AfterFailure {
    RetryAt(NaiveDateTime),
    Expire,
}

/// Records a successful attempt: the row is delivered, the subscription's failure count reset.
pub fn record_success(
    conn: &mut DbConnection,
    row: &OutboxRow,
    attempt: &AttemptRow,
) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::insert_into(webhook_attempts::table)
            .values(attempt)
            .execute(conn)?;
        diesel::update(webhook_outbox::table.find(&row.id))
            .set((
                webhook_outbox::state.eq(DELIVERED),
                webhook_outbox::attempts.eq(webhook_outbox::attempts + 1),
                webhook_outbox::delivered_at.eq(Some(attempt.attempted_at)),
                webhook_outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        diesel::update(webhook_subscriptions::table.find(&row.subscription_id))
            .set(webhook_subscriptions::consecutive_failures.eq(0))
            .execute(conn)?;
        Ok(())
    })
}

/// Records a failed attempt: retry later or expire the row, count the failure, and pause the
/// subscription once `pause_after` failures in a row are reached. Returns whether it paused.
pub fn record_failure(
    conn: &mut DbConnection,
    row: &OutboxRow,
    attempt: &AttemptRow,
    after: AfterFailure,
    pause_after: i32,
) -> Result<bool, DbError> {
    super::transaction(conn, |conn| {
        diesel::insert_into(webhook_attempts::table)
            .values(attempt)
            .execute(conn)?;
        let error = attempt
            .error
            .clone()
            .or_else(|| attempt.http_status.map(|s| format!("HTTP status {s}")));
        let target = webhook_outbox::table.find(&row.id);
        match after {
            AfterFailure::RetryAt(at) => diesel::update(target)
                .set((
                    webhook_outbox::attempts.eq(webhook_outbox::attempts + 1),
                    webhook_outbox::next_attempt_at.eq(at),
                    webhook_outbox::last_error.eq(&error),
                ))
                .execute(conn)?,
            AfterFailure::Expire => diesel::update(target)
                .set((
                    webhook_outbox::attempts.eq(webhook_outbox::attempts + 1),
                    webhook_outbox::state.eq(EXPIRED),
                    webhook_outbox::expired_at.eq(Some(attempt.attempted_at)),
                    webhook_outbox::last_error.eq(&error),
                ))
                .execute(conn)?,
        };
        diesel::update(webhook_subscriptions::table.find(&row.subscription_id))
            .set(
                webhook_subscriptions::consecutive_failures
                    .eq(webhook_subscriptions::consecutive_failures + 1),
            )
            .execute(conn)?;
        let paused = diesel::update(
            webhook_subscriptions::table
                .find(&row.subscription_id)
                .filter(webhook_subscriptions::status.eq(ACTIVE))
                .filter(webhook_subscriptions::consecutive_failures.ge(pause_after)),
        )
        .set((
            webhook_subscriptions::status.eq(PAUSED),
            webhook_subscriptions::paused_at.eq(Some(attempt.attempted_at)),
            webhook_subscriptions::paused_reason.eq(Some(format!(
                "{pause_after} consecutive failed deliveries; last: {}",
                error.as_deref().unwrap_or("unknown error")
            ))),
            webhook_subscriptions::updated_at.eq(attempt.attempted_at),
        ))
        .execute(conn)?;
        Ok(paused == 1)
    })
}

// ---------------------------------------------------------------------------------------------
// reading deliveries

/// One page of a subscription's outbox rows, newest first (`before`: rows with a lower sequence),
/// optionally of one state, each with its attempts (oldest first).
pub fn deliveries(
    conn: &mut DbConnection,
    subscription_id: &str,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(OutboxRow, Vec<AttemptRow>)>, DbError> {
    let mut query = webhook_outbox::table
        .filter(webhook_outbox::subscription_id.eq(subscription_id.to_owned()))
        .select(OutboxRow::as_select())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(webhook_outbox::state.eq(state.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(webhook_outbox::seq.lt(before));
    }
    let rows: Vec<OutboxRow> = query
        .order(webhook_outbox::seq.desc())
        .limit(limit)
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut attempts: std::collections::HashMap<String, Vec<AttemptRow>> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<AttemptRow> = webhook_attempts::table
            .filter(webhook_attempts::outbox_id.eq_any(chunk))
            .order((
                webhook_attempts::attempted_at.asc(),
                webhook_attempts::id.asc(),
            ))
            .select(AttemptRow::as_select())
            .load(conn)?;
        for a in found {
            attempts.entry(a.outbox_id.clone()).or_default().push(a);
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let a = attempts.remove(&r.id).unwrap_or_default();
            (r, a)
        })
        .collect())
}

/// How many subscriptions a key holds.
pub fn count_for_key(conn: &mut DbConnection, key_id: &str) -> Result<i64, DbError> {
    Ok(webhook_subscriptions::table
        .filter(webhook_subscriptions::key_id.eq(key_id))
        .count()
        .get_result(conn)?)
}

/// Releases every lease a (stopping) worker holds.
pub fn release_leases_of(conn: &mut DbConnection, owner: &str) -> Result<(), DbError> {
    diesel::update(
        webhook_subscriptions::table.filter(webhook_subscriptions::lease_owner.eq(owner)),
    )
    .set((
        webhook_subscriptions::lease_owner.eq(None::<String>),
        webhook_subscriptions::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Deletes delivered and expired outbox rows (with their attempts) of events older than `cutoff`;
/// returns how many rows went.
pub fn purge_before(conn: &mut DbConnection, cutoff: NaiveDateTime) -> Result<usize, DbError> {
    super::transaction(conn, |conn| {
        let old = webhook_outbox::table
            .filter(webhook_outbox::state.ne(PENDING))
            .filter(webhook_outbox::created_at.lt(cutoff))
            .select(webhook_outbox::id);
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::outbox_id.eq_any(old)))
            .execute(conn)?;
        Ok(diesel::delete(
            webhook_outbox::table
                .filter(webhook_outbox::state.ne(PENDING))
                .filter(webhook_outbox::created_at.lt(cutoff)),
        )
        .execute(conn)?)
    })
}
