//! Security tests: edges (see ../security.rs).
