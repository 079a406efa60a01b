//! Domain types and rules: no database, no HTTP. Validation reads the in-memory reference data.

pub mod actor;
pub mod lifecycle;
pub mod resource;
pub mod validation;
