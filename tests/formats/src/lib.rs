//! Differential tests of `session_sockets_core::format` against the crates
//! whose bytes it must match; the tests are in `tests/`.
