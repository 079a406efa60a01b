//! Security tests: gate (see ../security.rs).
