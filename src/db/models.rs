//! Row structs: one per table, as stored. API types live in `api`, domain types in `domain`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{actors, resources, zone_communes, zones};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = actors)]
#[diesel(treat_none_as_null = true)]
// None is NULL in inserts too, never DEFAULT: with a DEFAULT in a row, diesel splits a multi-row
// insert on SQLite into one statement per row (an import of a million rows took minutes).
#[diesel(treat_none_as_default_value = false)]
pub struct ActorRow {
    pub id: String,
    pub name: String,
    pub siret: Option<String>,
    pub naf_code: String,
    pub address: Option<String>,
    pub commune_insee: String,
    pub departement: String,
    pub region: String,
    pub epci: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub share_with_partners: bool,
    pub illustrative: bool,
    pub search_text: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = resources)]
#[diesel(treat_none_as_null = true)]
// None is NULL in inserts too, never DEFAULT: with a DEFAULT in a row, diesel splits a multi-row
// insert on SQLite into one statement per row (an import of a million rows took minutes).
#[diesel(treat_none_as_default_value = false)]
pub struct ResourceRow {
    pub id: String,
    pub actor_id: String,
    pub kind: String,
    pub category: String,
    pub class: String,
    pub label: String,
    pub description: Option<String>,
    pub ewc_code: Option<String>,
    pub hazardous: bool,
    /// JSON array of six-digit codes.
    pub accepted_ewc: String,
    pub quantity_value: Option<f64>,
    pub quantity_unit: Option<String>,
    pub quantity_period: Option<String>,
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<String>,
    pub availability: String,
    pub months: i32,
    pub available_from: Option<NaiveDate>,
    pub available_until: Option<NaiveDate>,
    pub temperature_c: Option<f64>,
    pub max_distance_km: Option<f64>,
    pub physical_state: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = zones)]
pub struct ZoneRow {
    pub code: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = zone_communes)]
pub struct ZoneCommuneRow {
    pub zone_code: String,
    pub commune_insee: String,
}

impl ActorRow {
    /// The row for a validated actor; `search_text` is the folded name, address and SIRET that
    /// the text filter matches.
    pub fn from_valid(
        id: String,
        actor: &crate::domain::actor::ValidActor,
        illustrative: bool,
        created_at: NaiveDateTime,
        updated_at: NaiveDateTime,
    ) -> ActorRow {
        let search_text = crate::reference::text::fold(&format!(
            "{} {} {}",
            actor.name,
            actor.address.as_deref().unwrap_or(""),
            actor.siret.as_deref().unwrap_or("")
        ));
        ActorRow {
            id,
            name: actor.name.clone(),
            siret: actor.siret.clone(),
            naf_code: actor.naf_code.clone(),
            address: actor.address.clone(),
            commune_insee: actor.commune_insee.clone(),
            departement: actor.departement.clone(),
            region: actor.region.clone(),
            epci: actor.epci.clone(),
            lat: actor.lat,
            lng: actor.lng,
            contact_name: actor.contact.name.clone(),
            contact_email: actor.contact.email.clone(),
            contact_phone: actor.contact.phone.clone(),
            share_with_partners: actor.share_with_partners,
            illustrative,
            search_text,
            created_at,
            updated_at,
        }
    }
}

#[cfg(test)]
impl ActorRow {
    /// A sawmill in Dijon, for unit tests that need a stored actor's row.
    pub(crate) fn sawmill(siret: Option<&str>) -> ActorRow {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        ActorRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: "Scierie".into(),
            siret: siret.map(str::to_owned),
            naf_code: "16.10A".into(),
            address: None,
            commune_insee: "21231".into(),
            departement: "21".into(),
            region: "27".into(),
            epci: None,
            lat: 47.32,
            lng: 5.04,
            contact_name: None,
            contact_email: None,
            contact_phone: None,
            share_with_partners: true,
            illustrative: false,
            search_text: "scierie".into(),
            created_at: t,
            updated_at: t,
        }
    }
}

impl ResourceRow {
    pub fn from_valid(
        id: String,
        actor_id: String,
        r: &crate::domain::resource::ValidResource,
        created_at: NaiveDateTime,
        updated_at: NaiveDateTime,
    ) -> ResourceRow {
        ResourceRow {
            id,
            actor_id,
            kind: r.kind.as_str().to_owned(),
            category: r.category.as_str().to_owned(),
            class: r.class.clone(),
            label: r.label.clone(),
            description: r.description.clone(),
            ewc_code: r.ewc_code.clone(),
            hazardous: r.hazardous,
            accepted_ewc: serde_json::to_string(&r.accepted_ewc).unwrap_or_else(|_| "[]".into()),
            quantity_value: r.quantity.map(|q| q.value),
            quantity_unit: r.quantity.map(|q| q.unit.as_str().to_owned()),
            quantity_period: r.quantity.map(|q| q.period.as_str().to_owned()),
            yearly_quantity: r.yearly.map(|y| y.0),
            base_unit: r.yearly.map(|y| y.1.as_str().to_owned()),
            availability: r.availability.kind.as_str().to_owned(),
            months: i32::from(r.months),
            available_from: r.availability.from,
            available_until: r.availability.until,
            temperature_c: r.temperature_c,
            max_distance_km: r.max_distance_km,
            physical_state: r.physical_state.map(|p| p.as_str().to_owned()),
            created_at,
            updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = super::schema::synergies)]
#[diesel(treat_none_as_null = true)]
pub struct SynergyRow {
    pub id: String,
    pub kind: String,
    pub offer_id: Option<String>,
    pub need_id: Option<String>,
    pub provider_actor_id: Option<String>,
    pub receiver_actor_id: Option<String>,
    pub class: String,
    pub ewc_code: Option<String>,
    pub latent: bool,
    pub score: f64,
    pub distance_km: Option<f64>,
    pub quantity: Option<f64>,
    pub base_unit: Option<String>,
    /// JSON of the full synergy (components, explanations, impact) or pooling group.
    pub detail: String,
    pub status: String,
    pub active: bool,
    pub first_detected_at: NaiveDateTime,
    pub last_detected_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    /// Why the status was last set (required for `rejected` and `abandoned`).
    pub status_reason: Option<String>,
    /// When a facilitator last changed the status (`None` while `detected`).
    pub status_changed_at: Option<NaiveDateTime>,
    /// Realised yearly quantity, in `base_unit` (entered once implemented).
    pub realised_quantity: Option<f64>,
    /// Realised tonnes per year diverted from landfill or incineration.
    pub realised_diverted_t: Option<f64>,
    /// Realised t CO2e per year avoided (net of transport).
    pub realised_co2e_t: Option<f64>,
    /// Hash of the detected state (`detail` and the columns derived from it): re-detection rewrites
    /// the row only when it changes.
    pub fingerprint: i64,
}

/// One status change of a synergy.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::synergy_history)]
pub struct SynergyHistoryRow {
    pub id: String,
    pub synergy_id: String,
    pub changed_by: String,
    pub changed_at: NaiveDateTime,
    pub from_status: String,
    pub to_status: String,
    pub comment: Option<String>,
    pub reason: Option<String>,
}

/// A facilitator's note on a synergy.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::synergy_notes)]
pub struct SynergyNoteRow {
    pub id: String,
    pub synergy_id: String,
    pub author: String,
    pub created_at: NaiveDateTime,
    pub text: String,
}
