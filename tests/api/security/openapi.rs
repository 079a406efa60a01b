//! Security tests: openapi (see ../security.rs).
