//! The `data` of each event type (docs/WEBHOOKS.md lists them). Built from the rows being written,
//! inside the writer's transaction.

use serde_json::{Value, json};

use super::{Event, EventType};
use crate::db::models::{SynergyHistoryRow, SynergyRow};

/// `resource.created` / `resource.updated` / `resource.deleted`: `{"resource": …}`, the resource as
/// `GET /api/v1/resources/{id}` shows it (as it was, for `deleted`).
pub fn resource(kind: EventType, resource: Value, actor_id: &str) -> Event {
    Event::new(
        kind,
        json!({ "resource": resource }),
        vec![actor_id.to_owned()],
    )
}

/// A stored synergy as events show it: identity, parties, detection figures and status.
pub fn synergy_summary(row: &SynergyRow) -> Value {
    json!({
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "active": row.active,
        "offer_id": row.offer_id,
        "need_id": row.need_id,
        "provider_actor_id": row.provider_actor_id,
        "receiver_actor_id": row.receiver_actor_id,
        "class": row.class,
        "ewc_code": row.ewc_code,
        "latent": row.latent,
        "score": row.score,
        "distance_km": row.distance_km,
        "quantity": row.quantity,
        "base_unit": row.base_unit,
        "first_detected_at": row.first_detected_at,
        "last_detected_at": row.last_detected_at,
    })
}

/// `synergy.detected`: `{"synergy": {…, "detail": …}}` for a synergy detected for the first time.
pub fn synergy_detected(row: &SynergyRow) -> Event {
    let mut synergy = synergy_summary(row);
    synergy["detail"] = serde_json::from_str(&row.detail).unwrap_or(Value::Null);
    Event::new(
        EventType::SynergyDetected,
        json!({ "synergy": synergy }),
        crate::db::lifecycle::parties(row),
    )
}

/// `synergy.retired`: `{"synergy": {…, "active": false}}`, the synergy as last detected, for one the
/// detection no longer finds (a resource changed or left, a better partner took its place).
pub fn synergy_retired(row: &SynergyRow) -> Event {
    let mut synergy = synergy_summary(row);
    synergy["active"] = json!(false);
    Event::new(
        EventType::SynergyRetired,
        json!({ "synergy": synergy }),
        crate::db::lifecycle::parties(row),
    )
}

/// `synergy.status_changed`: `{"synergy": {…}, "change": {from, to, reason, comment, changed_by,
/// changed_at}}`; `row` is the synergy before the change, `change` the history entry written.
pub fn status_changed(row: &SynergyRow, change: &SynergyHistoryRow) -> Event {
    let mut synergy = synergy_summary(row);
    synergy["status"] = json!(change.to_status);
    synergy["status_reason"] = json!(change.reason);
    let mut event = Event::new(
        EventType::SynergyStatusChanged,
        json!({
            "synergy": synergy,
            "change": {
                "id": change.id,
                "from": change.from_status,
                "to": change.to_status,
                "reason": change.reason,
                "comment": change.comment,
                "changed_by": change.changed_by,
                "changed_at": change.changed_at,
            }
        }),
        crate::db::lifecycle::parties(row),
    );
    event.at = change.changed_at;
    event
}

/// `ping`: `{"subscription_id": …, "message": …}`, for one subscription.
pub fn ping(subscription_id: &str) -> Event {
    let mut event = Event::new(
        EventType::Ping,
        json!({
            "subscription_id": subscription_id,
            "message": "test delivery from symbiose",
        }),
        Vec::new(),
    );
    event.subscription_id = Some(subscription_id.to_owned());
    event
}
