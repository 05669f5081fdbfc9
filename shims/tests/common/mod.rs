//! Test helpers shared by the integration test binaries. Each binary uses a
//! different part, hence `dead_code` is allowed here.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
