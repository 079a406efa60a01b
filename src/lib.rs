//! symbiose — synergy matching for industrial and territorial ecology.
//!
//! Layers (dependencies point inward): `domain` (pure rules) ← `reference`, `matching`, `afme`
//! (pure engines over snapshots) ← `db` (diesel) ← `api` (actix-web). See docs/ARCHITECTURE.md.

pub mod afme;
pub mod api;
pub mod auth;
pub mod bench_service;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod detection;
pub mod domain;
pub mod evaluate;
pub mod import;
pub mod loadcheck;
pub mod matching;
pub mod reference;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
