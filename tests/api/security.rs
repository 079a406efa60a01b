//! Security under attack (issue 10): what a partner key, a scoped facilitator key and no key can get.
//! Each submodule reproduces one family of attacks; every test runs on SQLite and on PostgreSQL.

mod abuse;
mod anonymity;
mod edges;
mod gate;
mod openapi;
