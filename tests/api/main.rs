//! Black-box API tests: one binary, a server per test (see helpers.rs).

mod actors;
mod afme;
mod auth;
mod codes;
mod deployment;
mod helpers;
mod import;
mod lifecycle;
mod priority;
mod readable;
mod replicas;
mod resources;
mod security;
mod synergies;
mod system;
mod territories;
mod webhooks;
