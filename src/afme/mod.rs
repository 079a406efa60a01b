//! Territorial material and energy flow accounts (AFME): the territorial form of Eurostat's
//! economy-wide material flow accounts, as in the SOeS/CGDD regional guide (2014) and Alterre
//! Bourgogne's study of 2010 (*Repères* n°64, 2013).
//!
//! Pure: no database, no HTTP, no IO beyond parsing the text or readers it is given.
//!
//! - [`model`]: account rows (flow type, family, partner, unit, uncertainty);
//! - [`families`]: the configurable family table (Eurostat MF1–MF6, aliases) and the EWC-chapter and
//!   resource-class mappings used by the matching engine;
//! - [`csv`]: the tidy CSV import (all-or-nothing, errors by row and column) and export, and the
//!   reader of the published Bourgogne file;
//! - [`indicators`]: DMI, DMC, PTB, DPO, NAS, balance gap, per capita, shares, largest items, LEPO,
//!   DMCcorr — each with the rows it came from;
//! - [`aggregate`]: a région from its members, trade between members cancelling;
//! - [`reconcile`]: weighted least-squares reconciliation with χ² test and gross-error detection;
//! - [`sankey`]: d3-sankey JSON;
//! - [`priority`] and [`impact`]: what the account says about which synergies matter, and what
//!   synergies change in it.

pub mod aggregate;
pub mod csv;
pub mod error;
pub mod families;
pub mod impact;
pub mod indicators;
pub mod labels;
pub mod model;
pub mod priority;
pub mod reconcile;
pub mod sankey;

pub use error::{AfmeError, RowError};
pub use model::{AccountRow, Family, FlowType, Partner, Uncertainty, Unit};

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(components(schemas(
        super::model::AccountRow,
        super::error::RowError,
        super::families::FamilyTable,
        super::csv::PublishedAccount,
        super::indicators::AccountIndicators,
        super::indicators::IndicatorOptions,
        super::aggregate::AggregatedAccount,
        super::aggregate::ComparisonRow,
        super::reconcile::Constraint,
        super::reconcile::ReconcileOptions,
        super::reconcile::Reconciliation,
        super::sankey::Sankey,
        super::priority::PriorityReport,
        super::priority::PriorityWeights,
        super::impact::SynergyImpact,
        super::impact::ImpactReport,
    )))]
    struct Doc;

    /// Every wire type renders into an OpenAPI document, under names that cannot clash with other
    /// layers' types (`AfmeUnit`, not `Unit`).
    #[test]
    fn wire_types_have_openapi_schemas() {
        let doc = Doc::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        let schemas = json["components"]["schemas"].as_object().unwrap();
        for name in [
            "AfmeAccountRow",
            "AfmeIndicators",
            "AfmeSankey",
            "AfmeReconciliation",
            "AfmePriorities",
            "AfmeImpactReport",
            "AfmeRowError",
        ] {
            assert!(
                schemas.contains_key(name),
                "{name} missing: {:?}",
                schemas.keys()
            );
        }
        assert!(!schemas.contains_key("Unit") && !schemas.contains_key("Partner"));
    }
}
