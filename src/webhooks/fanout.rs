//! Fan-out: each recorded event becomes one outbox row per subscription that may receive it, with
//! the body rendered for that subscription and the subscription's next sequence number — all in one
//! transaction per batch, so an event is either still waiting or fully fanned out.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::auth::Coverage;
use crate::auth::anonymise::{Anonymiser, HiddenFacts, uuids_in};
use crate::db::webhooks::{self as store, EventRow, OutboxRow, PENDING, SubscriptionRow};
use crate::db::{DbConnection, DbError};
use crate::reference::Reference;

/// What rendering a body for a subscription needs.
pub struct Renderer<'a> {
    pub reference: &'a Reference,
    /// The secret of the stable opaque ids given to anonymised actors.
    pub anonymise_secret: &'a str,
}

/// The body sent for an event to a subscription.
pub fn body(
    event: &EventRow,
    seq: i64,
    subscription_id: &str,
    data: serde_json::Value,
) -> serde_json::Value {
    json!({
        "id": event.id,
        "type": event.event_type,
        "created_at": event.created_at,
        "subscription_id": subscription_id,
        "sequence": seq,
        "data": data,
    })
}

/// Whether a subscription receives an event: it asked for the type (or the event is its ping),
/// existed when the event happened, and its territories (empty = national) cover a commune of an
/// actor of the event.
fn receives(
    conn: &mut DbConnection,
    renderer: &Renderer<'_>,
    coverages: &mut HashMap<String, Coverage>,
    sub: &SubscriptionRow,
    event: &EventRow,
) -> Result<bool, DbError> {
    if let Some(target) = &event.subscription_id {
        return Ok(*target == sub.id);
    }
    if sub.created_at > event.created_at || !sub.event_types().contains(&event.event_type) {
        return Ok(false);
    }
    let coverage = match coverages.get(&sub.id) {
        Some(c) => c,
        None => {
            let c = Coverage::load(conn, renderer.reference, &sub.territory_codes())?;
            coverages.entry(sub.id.clone()).or_insert(c)
        }
    };
    if coverage.is_national() {
        return Ok(true);
    }
    let communes: Vec<String> = serde_json::from_str(&event.communes).unwrap_or_default();
    Ok(communes
        .iter()
        .any(|c| coverage.covers_commune(renderer.reference, c)))
}

/// Fans out up to `limit` of the oldest events; returns how many were taken.
pub fn fan_out(
    conn: &mut DbConnection,
    renderer: &Renderer<'_>,
    limit: i64,
) -> Result<usize, DbError> {
    let events = store::pending_events(conn, limit)?;
    if events.is_empty() {
        return Ok(0);
    }
    crate::db::transaction(conn, |conn| {
        let subscriptions = store::all_subscriptions(conn)?;
        let mut coverages = HashMap::new();
        let mut taken = 0;
        for event in &events {
            // Another worker may have taken it since it was read.
            if !store::claim_event(conn, &event.id)? {
                continue;
            }
            taken += 1;
            let mut data: serde_json::Value =
                serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null);
            let hidden: Vec<HiddenFacts> = data
                .as_object_mut()
                .and_then(|o| o.remove(super::HIDDEN_FIELD))
                .and_then(|facts| serde_json::from_value(facts).ok())
                .unwrap_or_default();
            for sub in &subscriptions {
                if !receives(conn, renderer, &mut coverages, sub, event)? {
                    continue;
                }
                let mut data = data.clone();
                if sub.anonymise {
                    // The actors as they were when the event happened, and as they are now.
                    let mut ids = HashSet::new();
                    uuids_in(&data, &mut ids);
                    let mut anonymiser = Anonymiser::load(
                        conn,
                        renderer.reference,
                        renderer.anonymise_secret,
                        &ids,
                    )?;
                    anonymiser.extend(Anonymiser::from_facts(
                        renderer.reference,
                        renderer.anonymise_secret,
                        &hidden,
                    ));
                    // That the exact sites give a synergy says something of them: partners
                    // learn of synergies with a hidden party from their view (`GET /synergies`).
                    let announces = [
                        super::EventType::SynergyDetected,
                        super::EventType::SynergyRetired,
                    ]
                    .iter()
                    .any(|t| t.as_str() == event.event_type);
                    if announces && anonymiser.names_hidden_party(&data) {
                        continue;
                    }
                    // Stored figures come from exact sites, unlike the anonymous view's.
                    anonymiser.drop_exact_figures(&mut data);
                    anonymiser.apply(&mut data);
                }
                let seq = store::take_seq(conn, &sub.id)?;
                let payload =
                    serde_json::to_string(&body(event, seq, &sub.id, data)).map_err(|e| {
                        DbError::Query(diesel::result::Error::SerializationError(Box::new(e)))
                    })?;
                store::insert_outbox(
                    conn,
                    &OutboxRow {
                        id: uuid::Uuid::new_v4().to_string(),
                        subscription_id: sub.id.clone(),
                        event_id: event.id.clone(),
                        seq,
                        event_type: event.event_type.clone(),
                        payload,
                        created_at: event.created_at,
                        state: PENDING.to_owned(),
                        next_attempt_at: event.created_at,
                        attempts: 0,
                        delivered_at: None,
                        expired_at: None,
                        last_error: None,
                    },
                )?;
            }
        }
        Ok(taken)
    })
}
