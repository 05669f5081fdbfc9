//! What the integration tests of the core share. Each test file has
//! `mod support;` and uses the parts it needs (hence `dead_code`): the
//! config, the clock, records and the store's side of requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use session_sockets_core::codec::record;
use session_sockets_core::time::from_millis;
use session_sockets_core::{Bytes, Config, ConfigBuilder, Now, Reply, Request, Session, SessionId};

// ---------------------------------------------------------------- config

/// The secret of express-session's own examples and test vectors.
pub const SECRET: &str = "keyboard cat";

/// The store deadline of [`config`].
pub const DEADLINE: Duration = Duration::from_secs(2);

/// `connect.sid` for the session id `apple` signed with [`SECRET`], as
/// express-session sets it (its own test vector).
pub const COOKIE: &str =
    "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU";

/// [`SECRET`] and a store deadline of [`DEADLINE`]; every other setting at
/// its default.
pub fn config() -> Arc<Config> {
    config_with(|b| b.store_deadline(DEADLINE))
}

/// [`SECRET`] and the settings `f` adds (a test whose config differs on
/// purpose says how).
pub fn config_with(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Arc<Config> {
    Arc::new(f(Config::builder().secret(SECRET)).build().unwrap())
}

// ----------------------------------------------------------------- clock

/// The wall time every scripted operation starts at:
/// 2026-11-29T12:14:27.949Z.
pub const T0_MS: i64 = 1_795_954_467_949;

/// The monotonic time `ms` after (or, negative, before) the start of every
/// scripted operation.
pub fn t(ms: i64) -> Instant {
    // An hour ahead of now, so that times before the start exist too.
    static BASE: LazyLock<Instant> = LazyLock::new(|| Instant::now() + Duration::from_secs(3600));
    let offset = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        *BASE + offset
    } else {
        *BASE - offset
    }
}

/// Both clocks `ms` after the start: the wall clock then reads
/// `T0_MS + ms`.
pub fn at(ms: i64) -> Now {
    Now::new(t(ms), from_millis(T0_MS + ms))
}

// --------------------------------------------------------------- records

/// A session loaded from the record `json` under id `sid-1`.
pub fn loaded(json: &str) -> Session {
    loaded_as("sid-1", json)
}

/// A session loaded from the stored `bytes` under id `id`.
pub fn loaded_as(id: &str, bytes: impl AsRef<[u8]>) -> Session {
    let bytes = bytes.as_ref();
    let rec = record::decode(bytes).unwrap();
    Session::from_record(SessionId::new(id), rec, Arc::from(bytes))
}

/// The express-session cookies and connect-redis records recorded from
/// the reference implementations (`tests/data/express-session-cookies.json`).
pub fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/express-session-cookies.json"
    );
    let text = std::fs::read_to_string(path).expect("the vectors file is in the repository");
    serde_json::from_str(&text).expect("the vectors file is JSON")
}

// -------------------------------------------------------------- requests

/// 24 random bytes, each `byte`.
pub fn random(byte: u8) -> Reply {
    Reply::Random(Bytes::from(vec![byte; 24]))
}

/// The store's reply that moves each request forward.
pub fn good_reply(r: &Request) -> Reply {
    match r {
        Request::Random { .. } => random(3),
        Request::Create { .. } => Reply::Created,
        Request::CompareAndSet { .. } => Reply::Swapped,
        _ => Reply::Done,
    }
}
