//! Security tests: abuse (see ../security.rs).
