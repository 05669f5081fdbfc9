//! [`RedisStore`]: sessions in Redis, in connect-redis 9's format, so that
//! socket servers written with this crate and Express apps using
//! `connect-redis` share the same sessions.
//!
//! | operation | Redis command |
//! |---|---|
//! | load | `GET key`; loads started together share one pipeline (see below) |
//! | create | `SET key value NX EX ttl` (insert-only, [R24]) |
//! | save | one Lua script: `GET`, compare with the loaded bytes, then `SET key value EX ttl` or report the conflict (never creates, [R24]) |
//! | touch | `EXPIRE key ttl` |
//! | destroy | `DEL key` |
//!
//! Keys arrive already prefixed by the core (`sess:` + session id by
//! default, as connect-redis writes them); values are express-session's JSON
//! bytes, unchanged.
//!
//! The connection is a [`redis::aio::ConnectionManager`]: one multiplexed
//! connection shared by every clone of the store, re-established in the
//! background after Redis restarts. Every command is bounded by a response
//! timeout, and every connection attempt by a connection timeout, so a
//! Redis that is down or paused yields a [`StoreError`] quickly instead of a
//! hang ([R23]); the driver's per-call deadline bounds it again on top.
//!
//! Loads that start together (connections woken by the same poll of the
//! reactor) go out as one pipeline of `GET`s: each load yields once, so that
//! the other runnable tasks start theirs and join it. Each still gets
//! exactly what its own `GET` would return, and none waits on another
//! caller's future. Under load this spares the server a write and a read
//! per connection, and Redis a read event per connection.
//!
//! Runtimes: under tokio the client uses tokio; anywhere else (smol,
//! async-std, a plain `block_on`) it uses smol's reactor and executor, which
//! run independently of the caller's executor.
//!
//! [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, Cmd, FromRedisValue, ProtocolVersion, RedisError, Script, ScriptInvocation, Value,
};

use crate::store::{Bytes, CasOutcome, EventSink, Store, StoreError, StoreFuture, Subscription};

mod batch;
mod events;

use batch::{Loads, Turn};
use events::Events;
pub use events::{KeyspaceEvents, NEEDED_CLASSES};

/// The compare-and-set script. `KEYS[1]`: the key; `ARGV[1]`: the bytes the
/// writer loaded; `ARGV[2]`: the new bytes; `ARGV[3]`: the TTL in seconds;
/// optionally `ARGV[4]`: a channel to announce the write on, just before
/// the `SET` (how a store tells its own writes from others' in keyspace
/// notifications). Returns `{0}` when there is no record (nothing written),
/// `{1, current}` when the record differs from `ARGV[1]` (nothing written),
/// `{2}` after `SET key ARGV[2] EX ARGV[3]`.
///
/// An Express route can run the same script (through `client.eval`, with
/// three arguments) to save without overwriting keys written meanwhile by a
/// socket server; see the `examples/express-interop` Node app.
pub const COMPARE_AND_SET_LUA: &str = r"local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
if cur ~= ARGV[1] then return {1, cur} end
if ARGV[4] then redis.call('PUBLISH', ARGV[4], KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return {2}
";

/// Default time Redis has to answer one command.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time one connection attempt may take.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A [`Store`] in Redis, byte-compatible with connect-redis 9 (see the
/// [module docs](self) for the commands). Cheap to clone: clones share one
/// connection.
///
/// ```no_run
/// # async fn run() -> Result<(), session_sockets::store::StoreError> {
/// use std::time::Duration;
/// use session_sockets::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .response_timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// Keyspace notifications, unless turned off.
    events: Option<Arc<Events>>,
    cas: Script,
    /// Loads gathered into one pipeline (see `batch`).
    loads: Arc<Loads>,
    /// `host:port` (or socket path) for error messages; never a password.
    addr: String,
    response_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisStore`]; from [`RedisStore::builder`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    response_timeout: Duration,
    connection_timeout: Duration,
    reconnect_retries: usize,
    reconnect_min_delay: Duration,
    reconnect_max_delay: Duration,
    keyspace_events: KeyspaceEvents,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: leave it out.
        f.debug_struct("RedisStoreBuilder")
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("keyspace_events", &self.keyspace_events)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// How long Redis has to answer one command before the call fails with a
    /// timeout error (default 2 s). A paused or overloaded Redis surfaces
    /// here.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How many times a (re)connection is retried, with exponential backoff
    /// between `min_delay` and `max_delay`, before the calls waiting on it
    /// fail (default: 1 retry, 50 ms to 500 ms). Keep this small: a call
    /// waits for the retries, and the next call after a failure starts a
    /// fresh connection attempt anyway.
    pub fn reconnect(mut self, retries: usize, min_delay: Duration, max_delay: Duration) -> Self {
        self.reconnect_retries = retries;
        self.reconnect_min_delay = min_delay;
        self.reconnect_max_delay = max_delay;
        self
    }

    /// What to do about Redis's `notify-keyspace-events` setting, which the
    /// store needs for live sessions (it reports changes, deletes and expiry
    /// of session keys, so sockets follow their session): add the missing
    /// classes with `CONFIG SET` (the default, [`KeyspaceEvents::Configure`]),
    /// only check it and fail with a message naming the setting
    /// ([`KeyspaceEvents::Require`]), or report nothing
    /// ([`KeyspaceEvents::Off`]).
    pub fn keyspace_events(mut self, mode: KeyspaceEvents) -> Self {
        self.keyspace_events = mode;
        self
    }

    /// The RESP3 connection keyspace notifications arrive on, re-subscribed
    /// by the connection manager after every reconnect.
    fn events(&self, client: &Client) -> Result<Option<Arc<Events>>, StoreError> {
        if self.keyspace_events == KeyspaceEvents::Off {
            return Ok(None);
        }
        let info = client.get_connection_info().clone();
        let db = info.redis_settings().db();
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(redis)).map_err(|e| {
            StoreError::with_source("cannot set up the Redis connection for keyspace events", e)
        })?;
        let shared = Arc::new(events::Shared::default());
        let sink = Arc::clone(&shared);
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(self.reconnect_min_delay)
            .set_max_delay(self.reconnect_max_delay)
            .set_push_sender(move |info| {
                sink.on_push(info);
                Ok::<(), ()>(())
            })
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::with_source("cannot set up the Redis connection for keyspace events", e)
        })?;
        Ok(Some(Arc::new(Events::new(
            conn,
            events::own_channel()?,
            db,
            self.keyspace_events,
            shared,
        ))))
    }

    fn client_and_config(&self) -> Result<(Client, ConnectionManagerConfig, String), StoreError> {
        let client = Client::open(self.url.as_str()).map_err(|e| {
            StoreError::with_source(
                "the Redis URL is not valid (expected redis://host:port/db)",
                e,
            )
        })?;
        let addr = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_min_delay(self.reconnect_min_delay)
            .set_max_delay(self.reconnect_max_delay);
        Ok((client, config, addr))
    }

    fn finish(
        &self,
        conn: ConnectionManager,
        events: Option<Arc<Events>>,
        addr: String,
    ) -> RedisStore {
        RedisStore {
            conn,
            events,
            cas: Script::new(COMPARE_AND_SET_LUA),
            loads: Arc::default(),
            addr,
            response_timeout: self.response_timeout,
        }
    }

    /// Builds the store without connecting: the first call connects. Lets a
    /// server start while Redis is still down (calls fail with a store error
    /// until it is up). Must run inside the runtime that will use the store
    /// (inside a tokio runtime to use tokio; anywhere else smol is used).
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let (client, config, addr) = self.client_and_config()?;
        let events = self.events(&client)?;
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::with_source("cannot set up the Redis connection manager", e)
        })?;
        Ok(self.finish(conn, events, addr))
    }

    /// Connects and checks that Redis answers `PING`, so that a wrong URL
    /// or a Redis that is down is reported at startup; with keyspace events
    /// on (the default), also checks (or sets) `notify-keyspace-events`.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build()?;
        store.query::<Value>("PING", &redis::cmd("PING")).await?;
        if let Some(events) = &store.events {
            events.ensure(&store.addr).await?;
        }
        Ok(store)
    }
}

impl RedisStore {
    /// A builder for a store at `url` (`redis://[:password@]host:port/db`,
    /// `rediss://` for TLS is not enabled in this build).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_retries: 1,
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(500),
            keyspace_events: KeyspaceEvents::default(),
        }
    }

    /// Connects to `url` with the default timeouts and checks that Redis
    /// answers. See [`RedisStore::builder`] to configure timeouts.
    pub async fn connect(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        Self::builder(url).connect().await
    }

    /// A store on a connection manager configured by the caller. Its
    /// response timeout is the caller's responsibility; `response_timeout`
    /// is only used in error messages.
    /// It reports no keyspace events.
    pub fn from_connection_manager(conn: ConnectionManager, response_timeout: Duration) -> Self {
        RedisStore {
            conn,
            events: None,
            cas: Script::new(COMPARE_AND_SET_LUA),
            loads: Arc::default(),
            addr: "redis".to_owned(),
            response_timeout,
        }
    }

    /// A store error for `op` that says what to check. Never includes keys,
    /// values or the URL's password.
    /// The Redis error is kept as the cause ([`std::error::Error::source`]).
    fn error(&self, op: &str, e: RedisError) -> StoreError {
        let addr = &self.addr;
        let message = if e.is_timeout() {
            format!(
                "Redis at {addr} did not answer {op} within the timeout ({:?} per command): is it paused, overloaded or unreachable?",
                self.response_timeout
            )
        } else if e.is_connection_refusal() {
            format!(
                "Redis at {addr} refused the connection ({op}): is redis-server running, and is the URL right?"
            )
        } else if e.is_io_error() || e.is_connection_dropped() {
            format!(
                "lost the connection to Redis at {addr} ({op}): is redis-server running? The next call reconnects"
            )
        } else {
            format!(
                "Redis at {addr} rejected {op}: check the server's logs (and, if the kind below names authentication, the URL's user and password)"
            )
        };
        let message = format!("{message} [{}]", e.kind_label());
        StoreError::with_source(message, e)
    }

    /// Runs `cmd`. When the connection attempt was refused (the command was
    /// certainly not sent), the manager has already started a new attempt:
    /// wait for that one once, so that the first call after Redis comes
    /// back succeeds instead of reporting the previous failure.
    async fn query<T: FromRedisValue>(&self, op: &str, cmd: &Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match cmd.query_async(&mut conn).await {
            Err(e) if e.is_connection_refusal() => cmd.query_async(&mut conn).await,
            r => r,
        }
        .map_err(|e| self.error(op, e))
    }

    /// [`query`](Self::query) for a command that may run twice (`GET`,
    /// `EXPIRE`, `DEL`): also retried once, on a fresh connection, when
    /// the connection it went out on turns out dead (Redis restarted since
    /// the last call), so the first call after a restart succeeds.
    async fn query_idempotent<T: FromRedisValue>(
        &self,
        op: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match cmd.query_async(&mut conn).await {
            Err(e) if may_send_again(&e) => cmd.query_async(&mut conn).await,
            r => r,
        }
        .map_err(|e| self.error(op, e))
    }

    /// [`query`](Self::query) for the compare-and-set script.
    async fn invoke(&self, inv: &ScriptInvocation<'_>) -> Result<Vec<Value>, StoreError> {
        let op = "the compare-and-set script";
        let mut conn = self.conn.clone();
        match inv.invoke_async(&mut conn).await {
            Err(e) if e.is_connection_refusal() => inv.invoke_async(&mut conn).await,
            r => r,
        }
        .map_err(|e| self.error(op, e))
    }

    /// One `GET`.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.query_idempotent("GET", redis::cmd("GET").arg(key))
            .await
    }

    fn unexpected(&self, op: &str) -> StoreError {
        StoreError::new(format!(
            "Redis at {} answered {op} with an unexpected reply: is this a real Redis server (6.2 or later)?",
            self.addr
        ))
    }
}

/// A short, key-free description of a Redis error's kind.
trait KindLabel {
    fn kind_label(&self) -> String;
}

impl KindLabel for RedisError {
    fn kind_label(&self) -> String {
        // `RedisError`'s Display holds the server's message, which never
        // contains our keys or values (commands are not echoed), but keep it
        // to the category and code to be safe.
        match self.code() {
            Some(code) => format!("{:?} {code}", self.kind()),
            None => format!("{:?}", self.kind()),
        }
    }
}

/// Whether a command that may run twice (a read, `EXPIRE`, `DEL`) is sent
/// once more after `e`: the connection attempt was refused (the command was
/// certainly not sent, and the manager is already reconnecting) or the
/// connection it went out on turned out dead (Redis restarted since the last
/// call).
fn may_send_again(e: &RedisError) -> bool {
    e.is_connection_refusal() || e.is_connection_dropped()
}

/// Whole seconds for `EX`, rounded up, at least 1 (a TTL of 0 is an error
/// in Redis; the core never asks for one).
fn ttl_secs(ttl: Duration) -> u64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    secs.max(1)
}

impl Store for RedisStore {
    fn load<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let ticket = self.loads.join(key);
            // Let the runnable tasks start their loads (and join) first.
            futures_lite::future::yield_now().await;
            let value = match self.loads.turn(&ticket, &self.conn) {
                Turn::Alone => self.get(key).await?,
                Turn::Batch(replies) => match ticket.reply(replies).await {
                    Some(reply) => reply.map_err(|e| self.error("GET", e))?,
                    None => return Err(self.unexpected("a pipeline of GETs")),
                },
            };
            Ok(value.map(Bytes::from))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(value)
                .arg("NX")
                .arg("EX")
                .arg(ttl_secs(ttl));
            match self.query::<Value>("SET NX", &cmd).await? {
                Value::Okay => Ok(true),
                Value::SimpleString(s) if s == "OK" => Ok(true),
                Value::Nil => Ok(false),
                _ => Err(self.unexpected("SET NX")),
            }
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        new: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, CasOutcome> {
        Box::pin(async move {
            let mut inv = self.cas.prepare_invoke();
            inv.key(key).arg(expected).arg(new).arg(ttl_secs(ttl));
            if let Some(events) = &self.events {
                inv.arg(&events.own_channel);
            }
            let mut it = self.invoke(&inv).await?.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(Value::Int(0)), None, None) => Ok(CasOutcome::Gone),
                (Some(Value::Int(1)), Some(Value::BulkString(current)), None) => {
                    Ok(CasOutcome::Conflict(current))
                }
                (Some(Value::Int(2)), None, None) => Ok(CasOutcome::Swapped),
                _ => Err(self.unexpected("the compare-and-set script")),
            }
        })
    }

    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EXPIRE");
            cmd.arg(key).arg(ttl_secs(ttl));
            Ok(self.query_idempotent::<i64>("EXPIRE", &cmd).await? > 0)
        })
    }

    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.query_idempotent::<i64>("DEL", redis::cmd("DEL").arg(key))
                .await?;
            Ok(())
        })
    }

    /// Keyspace notifications for keys under `prefix`, except the store's
    /// own compare-and-set writes (see the [module docs](self));
    /// `None` with [`KeyspaceEvents::Off`].
    fn subscribe<'a>(
        &'a self,
        prefix: &'a [u8],
        sink: EventSink,
    ) -> StoreFuture<'a, Option<Subscription>> {
        Box::pin(async move {
            match &self.events {
                Some(events) => Ok(Some(events.subscribe(prefix, sink, &self.addr).await?)),
                None => Ok(None),
            }
        })
    }

    /// Checks `notify-keyspace-events` again (a Redis restarted with its
    /// default settings has none), setting it in
    /// [`KeyspaceEvents::Configure`] mode.
    fn events_resumed(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            match &self.events {
                Some(events) => events.ensure(&self.addr).await,
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(ttl_secs(Duration::from_secs(86400)), 86400);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::ZERO), 1);
    }

    #[test]
    fn invalid_url_is_a_clear_error_without_the_password() {
        let err = RedisStore::builder("http://:hunter2@nowhere")
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("Redis URL is not valid"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn r16_debug_leaves_the_password_out() {
        let b = RedisStore::builder("redis://:hunter2@127.0.0.1:1/");
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
