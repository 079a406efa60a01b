//! Partner webhooks: events recorded in the database with the change that caused them, fanned out
//! to the subscriptions that may see them into a durable outbox, and delivered by a background
//! worker — signed, in order per subscription, at least once, with retries (docs/WEBHOOKS.md).
//!
//! - [`publish`] / [`publish_all`] write events inside the caller's transaction: an event exists if
//!   and only if its change was committed, whatever happens to the process afterwards.
//! - [`fanout`] (worker) turns each event into one outbox row per subscription that listens to its
//!   type and whose territories cover an actor of the event, with the body rendered for that
//!   subscription (anonymised for partners) and the subscription's next sequence number.
//! - [`worker`] delivers each subscription's outbox head, retries with exponential backoff and
//!   jitter, expires events past the maximum age and pauses subscriptions that keep failing.

pub mod events;
pub mod fanout;
pub mod sign;
pub mod target;
pub mod worker;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::webhooks::{self as store, EventRow};

pub use worker::{WorkerHandle, start_worker};

/// The events a subscription can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "resource.created")]
    ResourceCreated,
    #[serde(rename = "resource.updated")]
    ResourceUpdated,
    #[serde(rename = "resource.deleted")]
    ResourceDeleted,
    #[serde(rename = "synergy.detected")]
    SynergyDetected,
    #[serde(rename = "synergy.retired")]
    SynergyRetired,
    #[serde(rename = "synergy.status_changed")]
    SynergyStatusChanged,
    /// Sent by `POST /webhooks/{id}/test` to that subscription only; cannot be subscribed to.
    #[serde(rename = "ping")]
    Ping,
}

impl EventType {
    /// The types a subscription may list.
    pub const SUBSCRIBABLE: [EventType; 6] = [
        EventType::ResourceCreated,
        EventType::ResourceUpdated,
        EventType::ResourceDeleted,
        EventType::SynergyDetected,
        EventType::SynergyRetired,
        EventType::SynergyStatusChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ResourceCreated => "resource.created",
            EventType::ResourceUpdated => "resource.updated",
            EventType::ResourceDeleted => "resource.deleted",
            EventType::SynergyDetected => "synergy.detected",
            EventType::SynergyRetired => "synergy.retired",
            EventType::SynergyStatusChanged => "synergy.status_changed",
            EventType::Ping => "ping",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::Ping])
            .find(|t| t.as_str() == s)
    }
}

/// Something that happened, before it is fanned out.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: EventType,
    pub at: NaiveDateTime,
    /// The event's `data` (see `events`), before anonymisation.
    pub data: serde_json::Value,
    /// The actors involved: subscriptions with territories receive the event when one of these
    /// actors' communes is in their territories.
    pub actor_ids: Vec<String>,
    /// Only for this subscription (`ping`).
    pub subscription_id: Option<String>,
}

impl Event {
    pub fn new(kind: EventType, data: serde_json::Value, actor_ids: Vec<String>) -> Event {
        Event {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            at: crate::db::now(),
            data,
            actor_ids,
            subscription_id: None,
        }
    }
}

/// Field of a stored event's data holding the facts of the non-consenting actors it names; removed
/// before any body is sent.
pub const HIDDEN_FIELD: &str = "_hidden_actors";

/// Records one event in the caller's transaction (see [`publish_all`]).
pub fn publish(conn: &mut DbConnection, event: Event) -> diesel::QueryResult<()> {
    publish_all(conn, vec![event])
}

/// Records events in the caller's transaction, for the worker to fan out. Events nobody subscribed
/// to are not stored. Call it inside the transaction of the change the events report, so that
/// both are committed, or neither.
pub fn publish_all(conn: &mut DbConnection, events: Vec<Event>) -> diesel::QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let subscribed: HashSet<String> = store::subscribed_event_lists(conn)?
        .iter()
        .flat_map(|list| serde_json::from_str::<Vec<String>>(list).unwrap_or_default())
        .collect();
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| e.subscription_id.is_some() || subscribed.contains(e.kind.as_str()))
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let actor_ids: Vec<String> = events
        .iter()
        .flat_map(|e| e.actor_ids.iter().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let communes: HashMap<String, String> = store::actor_communes(conn, &actor_ids)?
        .into_iter()
        .collect();
    // The non-consenting actors an event names, as they are now: the worker anonymises partners'
    // copies later, when the actor may already be deleted or renamed.
    let mut named = HashSet::new();
    for e in &events {
        crate::auth::anonymise::uuids_in(&e.data, &mut named);
    }
    let hidden = crate::auth::anonymise::hidden_facts(conn, &named)?;
    // By id: a bulk import publishes thousands of events naming thousands of hidden actors.
    let hidden: HashMap<uuid::Uuid, &crate::auth::anonymise::HiddenFacts> =
        hidden.iter().map(|f| (f.id, f)).collect();
    let mut rows = Vec::with_capacity(events.len());
    for mut e in events {
        // And those its free text (a comment, a reason) names without referencing them by id.
        let named_in_text = crate::auth::anonymise::named_in_free_text(conn, &e.data)?;
        if !hidden.is_empty() || !named_in_text.is_empty() {
            let mut in_event = HashSet::new();
            crate::auth::anonymise::uuids_in(&e.data, &mut in_event);
            let mut facts: Vec<&crate::auth::anonymise::HiddenFacts> = in_event
                .iter()
                .filter_map(|id| hidden.get(id).copied())
                .collect();
            facts.extend(named_in_text.iter().filter(|f| !in_event.contains(&f.id)));
            facts.sort_by_key(|f| f.id);
            if let (false, Some(object)) = (facts.is_empty(), e.data.as_object_mut()) {
                object.insert(
                    HIDDEN_FIELD.into(),
                    serde_json::to_value(&facts).unwrap_or_default(),
                );
            }
        }
        let mut of_event: Vec<&String> =
            e.actor_ids.iter().filter_map(|a| communes.get(a)).collect();
        of_event.sort();
        of_event.dedup();
        rows.push(EventRow {
            id: e.id,
            event_type: e.kind.as_str().to_owned(),
            created_at: e.at,
            data: to_json(&e.data)?,
            communes: to_json(&of_event)?,
            subscription_id: e.subscription_id,
        });
    }
    store::insert_events(conn, &rows)
}

fn to_json<T: Serialize>(value: &T) -> diesel::QueryResult<String> {
    serde_json::to_string(value).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}
