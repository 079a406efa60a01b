//! Security tests: anonymity (see ../security.rs).
