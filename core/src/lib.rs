//! # session-sockets-core
//!
//! The sans-IO core of session-sockets: HTTP sessions inside real-time
//! socket connections, byte-compatible with express-session 1.x and
//! connect-redis.
//!
//! No async, no IO, no clock, no randomness: request headers, store replies
//! and the time are inputs; store requests and the outcome are outputs. The
//! `session-sockets` crate drives these machines on tokio, async-std or smol
//! against a real store; tests drive them by hand.
//!
//! The invariant: **for the same request headers, a socket sees exactly the
//! session the HTTP app sees.** Cookie parsing follows npm `cookie` 0.7.2,
//! signatures `cookie-signature` 1.0.7, records express-session 1.19.0 and
//! connect-redis.
//!
//! ## The run loop
//!
//! Every machine is driven through the [`Machine`] trait, which documents
//! the order once: mutate, then drain [`poll_request`](Machine::poll_request),
//! then check [`poll_outcome`](Machine::poll_outcome), and wait no longer
//! than [`poll_timeout`](Machine::poll_timeout). Time is an argument: a
//! [`Now`] (both clocks, read once) to start, monotonic [`Instant`]s after.
//!
//! [`Instant`]: std::time::Instant
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::{Instant, SystemTime};
//! use session_sockets_core::machines::{Handshake};
//! use session_sockets_core::{Config, Machine, Now, Reply, Request};
//!
//! # fn load(_key: &[u8]) -> Reply { Reply::NotFound }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Arc::new(
//!     Config::builder()
//!         .cookie_name("connect.sid")
//!         .secrets(["new secret", "old secret"]) // first signs, all verify
//!         .allowed_origins(["https://app.example"])
//!         .build()?,
//! );
//! let headers: Vec<(&str, &str)> = vec![("cookie", "connect.sid=s%3A...")];
//!
//! let now = Now::new(Instant::now(), SystemTime::now());
//! let mut hs = Handshake::new(config.clone(), now);
//! hs.handle_headers(headers, now.instant);
//! loop {
//!     while let Some(req) = hs.poll_request() {
//!         if let Request::Load { id, key } = req {
//!             let reply = load(key.as_bytes()); // run it against the store
//!             hs.handle_reply(id, reply, Instant::now());
//!         }
//!     }
//!     if let Some(outcome) = hs.poll_outcome() {
//!         match outcome {
//!             Ok(session) => println!("user: {:?}", session.get::<String>("user")?),
//!             Err(e) => println!("no session: {e}"),
//!         }
//!         break;
//!     }
//!     // A real driver waits for the store until `hs.poll_timeout()`.
//!     hs.handle_timeout(Instant::now()); // fails closed past the deadline
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Writes
//!
//! The same shape serves every write, each a small machine implementing
//! [`Machine`] with a [`WriteError`] on failure:
//!
//! - [`Create`]: asks for 24 random bytes ([`Request::Random`]; the core
//!   never draws randomness), inserts the record only if the id is free
//!   ([`Request::Create`], `SET NX EX`) and returns the session with the
//!   exact `Set-Cookie` header express-session would send.
//! - [`Save`]: writes only when the data changed, as a
//!   [`Request::CompareAndSet`] against the exact bytes that were loaded.
//!   **Conflict rule:** when another writer got there first, this save's own
//!   changed keys (set or removed since load) win and every other key keeps
//!   the other writer's value; it retries, with a random backoff after the
//!   first retry, until the store deadline. [`Save::update`] re-runs an
//!   update closure on the current record too, so read-modify-write
//!   changes such as counters compose. A save never re-creates a destroyed
//!   or expired session ([`WriteError::Gone`], [R24]).
//! - [`Commit`]: the same for the [`Edit`]s of several writers of one
//!   session at once, with one compare-and-set (a group commit).
//! - [`Touch`]: refreshes the expiry (`expires = now + originalMaxAge`) and
//!   the store TTL only; with `rolling`, the header to re-send.
//! - [`Destroy`] (logout) and [`Regenerate`] (a new id on login, the old
//!   one destroyed, [R11]).
//!
//! TTLs are connect-redis's: `ceil((expires - now) / 1 s)`, or
//! [`Config::default_ttl`] for a browser-session cookie; a TTL <= 0 destroys
//! instead of writing.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Instant, SystemTime};
//! use session_sockets_core::codec::record;
//! use session_sockets_core::machines::{Save};
//! use session_sockets_core::{Config, Machine, Now, Reply, Request, Session, SessionId};
//!
//! let config = Arc::new(Config::builder().secret("keyboard cat").build().unwrap());
//! let loaded = br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1}"#;
//! let rec = record::decode(loaded).unwrap();
//! let mut session = Session::from_record(SessionId::new("abc"), rec, Arc::from(&loaded[..]));
//! session.insert("user", "ada").unwrap();
//!
//! let now = Now::new(Instant::now(), SystemTime::now());
//! let mut save = Save::new(config, session, now);
//! let Some(Request::CompareAndSet { id, expected, .. }) = save.poll_request() else { panic!() };
//! assert_eq!(&expected[..], &loaded[..]);
//! // Another writer changed `n` meanwhile: the store answers with its bytes.
//! let theirs = br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":2}"#;
//! save.handle_reply(id, Reply::Conflict(theirs[..].into()), now.instant);
//! let Some(Request::CompareAndSet { id, new, .. }) = save.poll_request() else { panic!() };
//! assert!(std::str::from_utf8(&new).unwrap().ends_with(r#""n":2,"user":"ada"}"#));
//! save.handle_reply(id, Reply::Swapped, now.instant);
//! let saved = save.poll_outcome().unwrap().unwrap();
//! assert!(!saved.is_changed());
//! ```
//!
//! [`Create`]: machines::Create
//! [`Save`]: machines::Save
//! [`Save::update`]: machines::Save::update
//! [`Commit`]: machines::Commit
//! [`Edit`]: machines::Edit
//! [`Touch`]: machines::Touch
//! [`Destroy`]: machines::Destroy
//! [`Regenerate`]: machines::Regenerate
//! [R11]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r11
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod codec;
mod config;
mod cookie_options;
mod error;
pub mod event;
mod fault;
pub mod format;
pub mod machines;
pub mod origin;
mod request;
mod session;
mod session_id;
mod store_error;
pub mod time;

pub use codec::cookie::Limits;
pub use config::{Config, ConfigBuilder, ConfigError};
pub use cookie_options::{CookieOptions, SameSite};
pub use error::{Failure, Fault, HandshakeError, WriteError};
pub use format::Format;
pub use machines::Machine;
pub use request::{Bytes, Reply, Request, RequestId, StoreKey};
pub use session::{Meta, Session, SessionId};
pub use store_error::StoreError;
pub use time::Now;
