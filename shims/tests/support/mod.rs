//! What the integration test binaries of `shims/` share. Each binary has
//! `mod support;` and uses the parts it needs (hence `dead_code`):
//!
//! - [`config`] and [`config_with`]: the config of a test app, signed with
//!   [`SECRET`];
//! - [`login`], [`cookie_pair`], [`connect_sid`], [`cookie_header`],
//!   [`record`], [`fresh_sid`]: sessions, cookies and records as an
//!   express-session app makes them;
//! - [`conformance`]: the suite every store and every runtime must pass;
//! - [`hooked`]: a pass-through store that counts, fails, hangs or waits on
//!   cue, and controls its event stream;
//! - [`redis_server`]: a real `redis-server` per test (feature `redis`);
//! - [`sio_client`]: a socket.io polling client, and the events the test
//!   servers answer (feature `socketioxide`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod hooked;
#[cfg(feature = "redis")]
pub mod redis_server;
#[cfg(feature = "socketioxide")]
pub mod sio_client;

use std::time::SystemTime;

use serde_json::Value;
use session_sockets::core::codec::signature::sign_cookie;
use session_sockets::core::time::{millis, to_iso};
use session_sockets::runtime::Runtime;
use session_sockets::{Config, ConfigBuilder, SessionId, SessionSockets};

/// The secret every test app signs its cookies with.
pub const SECRET: &str = "session-sockets test secret";

/// The config of a test app: [`SECRET`], every other setting at its
/// default.
pub fn config() -> Config {
    config_with(|b| b)
}

/// [`config`] with the settings `f` adds.
pub fn config_with(f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Config {
    f(Config::builder().secret(SECRET)).build().unwrap()
}

/// A stored session with `data` (an object); its id and the `Cookie`
/// header value that carries it.
pub async fn login<R: Runtime>(sessions: &SessionSockets<R>, data: Value) -> (SessionId, String) {
    let Value::Object(data) = data else {
        panic!("data must be an object")
    };
    let created = sessions.create(data).await.unwrap();
    (
        created.session.id().clone(),
        cookie_pair(&created.set_cookie),
    )
}

/// The `name=value` pair of a `Set-Cookie` header value: what the browser
/// sends back in `Cookie`.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A fresh random session id (express-session's length, 32 characters).
pub fn fresh_sid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// JavaScript's `encodeURIComponent`, as express-session applies to the
/// cookie value (browsers send it back verbatim).
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `connect.sid` pair express-session sets for `sid` signed with
/// `secret`.
pub fn connect_sid(sid: &str, secret: &str) -> String {
    format!(
        "connect.sid={}",
        encode_uri_component(&sign_cookie(sid, secret))
    )
}

/// The `Cookie` header a browser sends for `sid` signed with `secret`,
/// among other cookies.
pub fn cookie_header(sid: &str, secret: &str) -> String {
    format!("theme=dark; {}; lang=en", connect_sid(sid, secret))
}

/// An express-session record expiring at `expires` holding `data` (a JSON
/// object body without braces, e.g. `"user":"ada"`).
pub fn record(expires: SystemTime, data: &str) -> Vec<u8> {
    let sep = if data.is_empty() { "" } else { "," };
    format!(
        r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{}","httpOnly":true,"path":"/"}}{sep}{data}}}"#,
        to_iso(millis(expires))
    )
    .into_bytes()
}
