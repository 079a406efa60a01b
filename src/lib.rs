//! symbiose — synergy matching for industrial and territorial ecology.
//!
//! Layers (dependencies point inward): `domain` (pure rules) ← `reference`, `matching`, `afme`
//! (pure engines over snapshots) ← `db` (diesel) ← `api` (actix-web). See docs/ARCHITECTURE.md.

pub mod afme;
pub mod domain;
pub mod matching;
pub mod config;
pub mod db;
pub mod reference;
pub mod cli;
pub mod demo;
pub mod import;
pub mod startup;
pub mod telemetry;
pub mod api;
pub mod detection;
pub mod loadcheck;
