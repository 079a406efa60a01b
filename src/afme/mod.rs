//! Territorial material and energy flow accounts (AFME). Pure: no IO beyond parsing given text.
pub mod csv;
pub mod error;
pub mod families;
pub mod indicators;
pub mod model;
