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
//! Loads that start together while others are out (connections woken by
//! the same poll of the reactor on a busy server) go out as one pipeline of
//! `GET`s: each load yields once, so that the other runnable tasks start
//! theirs and join it. Each still gets exactly what its own `GET` would
//! return, and none waits on another caller's future. Under load this
//! spares the server a write and a read per connection, and Redis a read
//! event per connection; a load alone sends its `GET` at once.
//!
//! Runtimes: under tokio the client uses tokio; anywhere else (smol,
//! async-std, a plain `block_on`) it uses smol's reactor and executor, which
//! run independently of the caller's executor.
//!
//! # On a Redis Cluster
//!
//! [`RedisStore::cluster_builder`] takes seed nodes (any few of the
//! cluster's nodes; one answering is enough, the store learns the others)
//! and gives the same store, with the same options and records (connect-redis
//! 9 on node-redis's `createCluster` client writes the same keys), on Redis
//! Cluster 7.0 or later:
//!
//! ```no_run
//! # async fn run() -> Result<(), session_sockets::store::StoreError> {
//! use session_sockets::RedisStore;
//!
//! let store = RedisStore::cluster_builder([
//!     "redis://10.0.0.1:6379/",
//!     "redis://10.0.0.2:6379/",
//!     "redis://10.0.0.3:6379/",
//! ])
//! .connect()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! - Every command goes to the primary of its key's slot (redis-rs's cluster
//!   client follows `MOVED` and `ASK`, and reconnects); loads started together
//!   become one pipeline per primary. The response timeout bounds every
//!   call, retries included.
//! - **Durability**: each write (create, save, touch, destroy) is followed
//!   by `WAIT` on the key's primary, and acknowledged only once a replica has
//!   it ([`Durability`], on by default: one replica within 250 ms, where the
//!   shard has one online). Without it, a primary that crashes right after
//!   acknowledging a write takes the write along when its replica is
//!   promoted (a logout comes back, a save is undone, [R37]). When fewer
//!   replicas acknowledge in time, the write fails with an error saying it
//!   may or may not survive a failover. It costs a replica round trip per
//!   write; [`RedisStoreBuilder::durability`] with [`Durability::NONE`]
//!   turns it off.
//! - **Keyspace events from every primary**: a node reports only its own
//!   keys, so the store subscribes on every primary and polls `CLUSTER
//!   SHARDS` (every second) to follow failovers, added primaries and
//!   resharding. Around any gap it reports lost events, and the live layer
//!   re-validates the sessions it follows. `notify-keyspace-events` must
//!   include `Kg$xe` on **every node, replicas included** (a replica is
//!   promoted with its own setting): [`KeyspaceEvents::Configure`] (the
//!   default) sets it on every node where it lacks classes, again on nodes
//!   that join or come back; [`KeyspaceEvents::Require`] only checks every
//!   node.
//! - **A managed Redis Cluster that refuses `CONFIG SET`** (most cloud
//!   services do): set `notify-keyspace-events` to `Kg$xe` in the service's
//!   parameter group (it applies to every node); the store then only reads
//!   it (`CONFIG GET`), and [`KeyspaceEvents::Require`] says so explicitly;
//!   if `CONFIG GET` is refused too, use
//!   [`KeyspaceEvents::Off`] (sockets then keep the session they loaded
//!   until they reload it). The service must expose `CLUSTER SHARDS` and
//!   let clients reach every node at the address it announces.
//! - During a failover, writes to the failed primary's slots fail (after
//!   the response timeout) until its replica is promoted: about 2-3 x
//!   `cluster-node-timeout` (15 s by default). With the default
//!   `cluster-require-full-coverage yes` every shard stops for about a
//!   second around it; `no` keeps the others serving.
//! - A write whose connection dropped after it was sent is sent again
//!   once the cluster takes writes; its reply is then read knowing it may
//!   see its own first try (a create finding its own record was created, a
//!   save finding exactly its own bytes swapped), and a save that finds
//!   the record changed by someone else meanwhile fails rather than apply
//!   its change twice. Nothing destroyed is re-created ([R24]).
//!
//! [R23]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r23
//! [R24]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r24
//! [R37]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r37

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, Cmd, FromRedisValue, IntoConnectionInfo, ProtocolVersion, RedisError, Script,
    ScriptInvocation, Value,
};

use crate::store::{Bytes, CasOutcome, EventSink, Store, StoreError, StoreFuture, Subscription};

mod batch;
mod cluster;
mod events;
mod rt;
mod topology;
mod watch;

use batch::{Join, Loads, Turn};
pub use cluster::Durability;
use cluster::{Cluster, WriteFailure};
use events::Events;
pub use events::{KeyspaceEvents, NEEDED_CLASSES};
use watch::Watch;

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
    backend: Backend,
    cas: Script,
    /// Loads gathered into one pipeline (see `batch`).
    loads: Arc<Loads>,
    /// `host:port` (or socket path) for error messages; never a password.
    addr: String,
    response_timeout: Duration,
}

/// One Redis node, or a Redis Cluster.
#[derive(Clone)]
enum Backend {
    Single {
        conn: ConnectionManager,
        /// Keyspace notifications, unless turned off.
        events: Option<Arc<Events>>,
    },
    Cluster {
        cluster: Arc<Cluster>,
        /// The topology watcher (and, unless turned off, the keyspace
        /// subscribers).
        watch: Arc<Watch>,
    },
}

/// Where a builder connects.
#[derive(Clone)]
enum Target {
    Single(String),
    Cluster(Vec<String>),
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
    target: Target,
    response_timeout: Duration,
    connection_timeout: Duration,
    reconnect_retries: usize,
    reconnect_min_delay: Duration,
    reconnect_max_delay: Duration,
    keyspace_events: KeyspaceEvents,
    /// `None`: the default (one replica on a cluster).
    durability: Option<Durability>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs may hold a password: leave them out.
        let target = match &self.target {
            Target::Single(_) => "one node".to_owned(),
            Target::Cluster(seeds) => format!("a cluster ({} seeds)", seeds.len()),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("target", &target)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("keyspace_events", &self.keyspace_events)
            .field("durability", &self.durability)
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
    /// fresh connection attempt anyway. One node only: on a cluster, calls
    /// retry (50 ms to 500 ms apart) until the response timeout.
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

    /// On a Redis Cluster, how many replicas must hold a write before it is
    /// acknowledged ([`Durability`]; default [`Durability::default`]: one,
    /// within 250 ms, where the shard has one online). [`Durability::NONE`]
    /// turns the wait off. A store on one node ([`RedisStore::builder`])
    /// refuses any setting but `NONE` at build: it does not track replicas.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
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

    fn client_and_config(
        &self,
        url: &str,
    ) -> Result<(Client, ConnectionManagerConfig, String), StoreError> {
        let client = Client::open(url).map_err(|e| {
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

    fn finish(&self, backend: Backend, addr: String) -> RedisStore {
        RedisStore {
            backend,
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
        let url = match &self.target {
            Target::Single(url) => url.clone(),
            Target::Cluster(seeds) => return self.build_cluster(seeds),
        };
        if self.durability.is_some_and(|d| d != Durability::NONE) {
            return Err(StoreError::new(
                "RedisStoreBuilder::durability waits for the replicas of a Redis Cluster's \
                 shards: use RedisStore::cluster_builder(seeds) for a cluster, or \
                 Durability::NONE for one Redis node",
            ));
        }
        let (client, config, addr) = self.client_and_config(&url)?;
        let events = self.events(&client)?;
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::with_source("cannot set up the Redis connection manager", e)
        })?;
        Ok(self.finish(Backend::Single { conn, events }, addr))
    }

    /// [`build`](Self::build) for a cluster: the connections, the slot map
    /// and the watcher that keeps it (and the keyspace subscribers).
    fn build_cluster(&self, seeds: &[String]) -> Result<RedisStore, StoreError> {
        let invalid = |e: RedisError| {
            StoreError::with_source(
                "a Redis Cluster seed URL is not valid (expected redis://[user:password@]host:port/, \
                 the same user and password on every seed, database 0)",
                e,
            )
        };
        let infos = seeds
            .iter()
            .map(|s| s.as_str().into_connection_info())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let addrs: Vec<(String, u16)> = infos.iter().filter_map(watch::tcp_addr).collect();
        let Some(template) = infos.first().cloned() else {
            return Err(StoreError::new(
                "RedisStore::cluster_builder needs at least one seed node URL \
                 (redis://host:port/)",
            ));
        };
        if addrs.len() != infos.len() {
            return Err(StoreError::new(
                "a Redis Cluster seed must be a TCP address (redis://host:port/), not a Unix socket",
            ));
        }
        let topology = Arc::default();
        let options = cluster::Options {
            seeds: seeds.to_vec(),
            response_timeout: self.response_timeout,
            connection_timeout: self.connection_timeout,
            durability: self.durability.unwrap_or_default(),
        };
        let cluster = Cluster::new(&options, Arc::clone(&topology)).map_err(invalid)?;
        let (watch, woken) = Watch::new(
            self.keyspace_events,
            topology,
            template,
            addrs.clone(),
            self.response_timeout,
        )?;
        watch.start(woken);
        let shown: Vec<String> = addrs.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        let addr = format!("Redis Cluster (seeds {})", shown.join(", "));
        Ok(self.finish(
            Backend::Cluster {
                cluster: Arc::new(cluster),
                watch,
            },
            addr,
        ))
    }

    /// Connects and checks that Redis answers `PING`, so that a wrong URL
    /// or a Redis that is down is reported at startup; with keyspace events
    /// on (the default), also checks (or sets) `notify-keyspace-events`.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build()?;
        match &store.backend {
            Backend::Single { conn, events } => {
                store
                    .query::<Value>(conn, "PING", &redis::cmd("PING"))
                    .await?;
                if let Some(events) = events {
                    events.ensure(&store.addr).await?;
                }
            }
            Backend::Cluster { cluster, watch } => {
                // The slot map before the first batch, and the setting on
                // every node.
                let shards = cluster.shards().await.map_err(|e| {
                    let label = e.kind_label();
                    StoreError::with_source(
                        format!(
                            "cannot use the {}: no seed answered CLUSTER SHARDS. Is \
                             redis-server running there in cluster mode (cluster-enabled yes, \
                             Redis 7.0 or later), and are the URLs' user and password right? \
                             [{label}]",
                            store.addr
                        ),
                        e,
                    )
                })?;
                let Some(shards) = topology::parse_shards(&shards) else {
                    return Err(store.unexpected("CLUSTER SHARDS"));
                };
                cluster.topology.set(shards);
                if watch.events_on() {
                    watch.ensure_everywhere(false).await?;
                }
            }
        }
        Ok(store)
    }
}

impl RedisStore {
    /// A builder for a store at `url` (`redis://[:password@]host:port/db`,
    /// `rediss://` for TLS is not enabled in this build).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        Self::builder_for(Target::Single(url.into()))
    }

    /// A builder for a store on a Redis Cluster (7.0 or later), from seed
    /// nodes: `redis://[user:password@]host:port/` URLs of any few of its
    /// nodes (one answering is enough; the store learns the others, and
    /// follows the cluster as it changes). The same options as
    /// [`builder`](Self::builder), plus [`RedisStoreBuilder::durability`];
    /// see the [module docs](self#on-a-redis-cluster).
    pub fn cluster_builder<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
    ) -> RedisStoreBuilder {
        Self::builder_for(Target::Cluster(seeds.into_iter().map(Into::into).collect()))
    }

    fn builder_for(target: Target) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_retries: 1,
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_millis(500),
            keyspace_events: KeyspaceEvents::default(),
            durability: None,
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
            backend: Backend::Single { conn, events: None },
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
        let message = self.message(op, &e);
        StoreError::with_source(message, e)
    }

    /// What [`error`](Self::error) says.
    fn message(&self, op: &str, e: &RedisError) -> String {
        let who = self.who();
        let cluster = matches!(self.backend, Backend::Cluster { .. });
        let busy = matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::MasterDown
                    | redis::ServerErrorKind::BusyLoading
            )
        );
        let message = if busy {
            format!(
                "{who} cannot serve {op} right now: is a failover or a resharding under way (a \
                 failed primary's slots are served again once its replica is promoted)?"
            )
        } else if cluster && e.is_connection_refusal() {
            format!(
                "a node of the {who} refused the connection ({op}): is it down (a failover \
                 under way?), and do the nodes announce addresses this host can reach?"
            )
        } else if e.is_timeout() {
            format!(
                "{who} did not answer {op} within the timeout ({:?} per command): is it paused, overloaded or unreachable?",
                self.response_timeout
            )
        } else if e.is_connection_refusal() {
            format!(
                "{who} refused the connection ({op}): is redis-server running, and is the URL right?"
            )
        } else if e.is_io_error() || e.is_connection_dropped() {
            format!(
                "lost the connection to {who} ({op}): is redis-server running? The next call reconnects"
            )
        } else {
            format!(
                "{who} rejected {op}: check the server's logs (and, if the kind below names authentication, the URL's user and password)"
            )
        };
        format!("{message} [{}]", e.kind_label())
    }

    /// The server named in messages: `Redis at host:port`, or the cluster
    /// and its seeds.
    fn who(&self) -> String {
        match self.backend {
            Backend::Single { .. } => format!("Redis at {}", self.addr),
            Backend::Cluster { .. } => self.addr.clone(),
        }
    }

    /// Runs `cmd`. When the connection attempt was refused (the command was
    /// certainly not sent), the manager has already started a new attempt:
    /// wait for that one once, so that the first call after Redis comes
    /// back succeeds instead of reporting the previous failure.
    async fn query<T: FromRedisValue>(
        &self,
        conn: &ConnectionManager,
        op: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = conn.clone();
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
        conn: &ConnectionManager,
        op: &str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = conn.clone();
        match cmd.query_async(&mut conn).await {
            Err(e) if may_send_again(&e) => cmd.query_async(&mut conn).await,
            r => r,
        }
        .map_err(|e| self.error(op, e))
    }

    /// [`query`](Self::query) for the compare-and-set script.
    async fn invoke(
        &self,
        conn: &ConnectionManager,
        inv: &ScriptInvocation<'_>,
    ) -> Result<Vec<Value>, StoreError> {
        let op = "the compare-and-set script";
        let mut conn = conn.clone();
        match inv.invoke_async(&mut conn).await {
            Err(e) if e.is_connection_refusal() => inv.invoke_async(&mut conn).await,
            r => r,
        }
        .map_err(|e| self.error(op, e))
    }

    /// One `GET`.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Single { conn, .. } => {
                self.query_idempotent(conn, "GET", redis::cmd("GET").arg(key))
                    .await
            }
            Backend::Cluster { cluster, .. } => {
                cluster.get(key).await.map_err(|e| self.error("GET", e))
            }
        }
    }

    /// Runs a write on the cluster: its reply, and whether an earlier try
    /// may have run.
    async fn cluster_write(
        &self,
        cluster: &Cluster,
        op: &str,
        key: &[u8],
        cmd: &Cmd,
    ) -> Result<cluster::Written, StoreError> {
        let doubt = |in_doubt: bool| {
            if in_doubt {
                " An earlier try was sent before its connection dropped: it may or may not have \
                 been applied."
            } else {
                " It was not applied."
            }
        };
        cluster.write(key, cmd).await.map_err(|f| match f {
            WriteFailure::Redis { error, in_doubt } => {
                let message = self.message(op, &error);
                let message = if in_doubt {
                    format!("{message}.{}", doubt(true))
                } else {
                    message
                };
                StoreError::with_source(message, error)
            }
            WriteFailure::TimedOut { in_doubt, last } => {
                let message = format!(
                    "{} did not take {op} within the response timeout ({:?}): is a failover \
                     under way (a failed primary's slots take writes again once its replica is \
                     promoted, after about 2-3 x cluster-node-timeout), or is a node paused or \
                     unreachable?{}",
                    self.addr,
                    self.response_timeout,
                    doubt(in_doubt)
                );
                match last {
                    Some(e) => {
                        let label = e.kind_label();
                        StoreError::with_source(format!("{message} [{label}]"), e)
                    }
                    None => StoreError::new(message),
                }
            }
            WriteFailure::Replicas { acked, wanted } => StoreError::new(format!(
                "{op} was applied on its primary in the {} but acknowledged by {acked} of \
                 {wanted} replicas in time: it may or may not survive a failover of that \
                 primary. Check that shard's replicas (CLUSTER SHARDS, INFO replication on \
                 the replica), or wait for fewer (RedisStoreBuilder::durability)",
                self.addr
            )),
        })
    }

    fn unexpected(&self, op: &str) -> StoreError {
        let needs = match self.backend {
            Backend::Single { .. } => "6.2",
            Backend::Cluster { .. } => "7.0",
        };
        StoreError::new(format!(
            "{} answered {op} with an unexpected reply: is this a real Redis server ({needs} or later)?",
            self.who()
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

/// What a create's reply means: `SET key value NX GET` answers nil when it
/// set the key, else the bytes the key holds. `in_doubt`: an earlier try
/// of this create may have run (its connection dropped after sending), and
/// finding exactly `value` means it did: nobody else knows a fresh key.
/// `None`: not a reply `SET NX GET` gives.
fn created(reply: &Value, in_doubt: bool, value: &[u8]) -> Option<bool> {
    match reply {
        Value::Nil => Some(true),
        Value::BulkString(current) => Some(in_doubt && current == value),
        _ => None,
    }
}

/// A compare-and-set that may have run before, and whose reply cannot
/// tell.
#[derive(Debug, PartialEq, Eq)]
struct InDoubt;

/// What the compare-and-set script's reply means (see
/// [`COMPARE_AND_SET_LUA`]). `in_doubt`: an earlier try may have run. Then
/// a conflict with exactly `new` is that try having swapped, and a
/// conflict with other bytes is unknowable (the first try may have
/// swapped before someone else wrote: merging again could apply the change
/// twice), so [`InDoubt`]. `None`: not a reply the script gives.
fn cas_outcome(
    reply: Vec<Value>,
    in_doubt: bool,
    new: &[u8],
) -> Option<Result<CasOutcome, InDoubt>> {
    let mut it = reply.into_iter();
    Some(Ok(match (it.next(), it.next(), it.next()) {
        (Some(Value::Int(0)), None, None) => CasOutcome::Gone,
        (Some(Value::Int(1)), Some(Value::BulkString(current)), None) => {
            match (in_doubt, current == new) {
                (false, _) => CasOutcome::Conflict(current),
                (true, true) => CasOutcome::Swapped,
                (true, false) => return Some(Err(InDoubt)),
            }
        }
        (Some(Value::Int(2)), None, None) => CasOutcome::Swapped,
        _ => return None,
    }))
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
            let (ticket, _out) = match self.loads.join(key) {
                Join::Now(_out) => return Ok(self.get(key).await?.map(Bytes::from)),
                Join::Batch(ticket, out) => (ticket, out),
            };
            // Let the runnable tasks start their loads (and join) first.
            futures_lite::future::yield_now().await;
            let turn = self.loads.turn(&ticket, |keys| match &self.backend {
                Backend::Single { conn, .. } => batch::on_connection(conn, keys),
                Backend::Cluster { cluster, .. } => {
                    let cluster = Arc::clone(cluster);
                    async move { Ok(cluster.get_batch(keys).await) }.boxed()
                }
            });
            let value = match turn {
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
            let cluster = match &self.backend {
                Backend::Single { conn, .. } => {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(key)
                        .arg(value)
                        .arg("NX")
                        .arg("EX")
                        .arg(ttl_secs(ttl));
                    return match self.query::<Value>(conn, "SET NX", &cmd).await? {
                        Value::Okay => Ok(true),
                        Value::SimpleString(s) if s == "OK" => Ok(true),
                        Value::Nil => Ok(false),
                        _ => Err(self.unexpected("SET NX")),
                    };
                }
                Backend::Cluster { cluster, .. } => cluster,
            };
            // `GET`: nil when this call set the key, else what the key
            // holds, so that a try re-sent after a dropped connection knows
            // its own record (Redis 7.0 or later).
            let mut cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(value)
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(ttl_secs(ttl));
            let written = self.cluster_write(cluster, "SET NX", key, &cmd).await?;
            created(&written.value, written.in_doubt, value)
                .ok_or_else(|| self.unexpected("SET NX GET"))
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
            let own_channel = match &self.backend {
                Backend::Single { events, .. } => events.as_ref().map(|e| e.own_channel.as_str()),
                Backend::Cluster { watch, .. } => {
                    watch.events_on().then_some(watch.own_channel.as_str())
                }
            };
            let (reply, in_doubt) = match &self.backend {
                Backend::Single { conn, .. } => {
                    let mut inv = self.cas.prepare_invoke();
                    inv.key(key).arg(expected).arg(new).arg(ttl_secs(ttl));
                    if let Some(channel) = own_channel {
                        inv.arg(channel);
                    }
                    (self.invoke(conn, &inv).await?, false)
                }
                Backend::Cluster { cluster, .. } => {
                    // EVAL (the script's text, not its hash): a node that
                    // joined or restarted has no NOSCRIPT to answer.
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(COMPARE_AND_SET_LUA)
                        .arg(1)
                        .arg(key)
                        .arg(expected)
                        .arg(new)
                        .arg(ttl_secs(ttl));
                    if let Some(channel) = own_channel {
                        cmd.arg(channel);
                    }
                    let op = "the compare-and-set script";
                    let written = self.cluster_write(cluster, op, key, &cmd).await?;
                    match written.value {
                        Value::Array(v) => (v, written.in_doubt),
                        _ => return Err(self.unexpected(op)),
                    }
                }
            };
            match cas_outcome(reply, in_doubt, new) {
                Some(Ok(outcome)) => Ok(outcome),
                Some(Err(InDoubt)) => Err(StoreError::new(format!(
                    "the {} lost the connection while a save was in flight, and the record \
                     changed meanwhile: the save may or may not have been applied, and is not \
                     tried again (a failover or a network cut?)",
                    self.addr
                ))),
                None => Err(self.unexpected("the compare-and-set script")),
            }
        })
    }

    fn touch<'a>(&'a self, key: &'a [u8], ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EXPIRE");
            cmd.arg(key).arg(ttl_secs(ttl));
            let n = match &self.backend {
                Backend::Single { conn, .. } => {
                    self.query_idempotent::<i64>(conn, "EXPIRE", &cmd).await?
                }
                Backend::Cluster { cluster, .. } => {
                    match self
                        .cluster_write(cluster, "EXPIRE", key, &cmd)
                        .await?
                        .value
                    {
                        Value::Int(n) => n,
                        _ => return Err(self.unexpected("EXPIRE")),
                    }
                }
            };
            Ok(n > 0)
        })
    }

    fn destroy<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            match &self.backend {
                Backend::Single { conn, .. } => {
                    self.query_idempotent::<i64>(conn, "DEL", &cmd).await?;
                }
                Backend::Cluster { cluster, .. } => {
                    self.cluster_write(cluster, "DEL", key, &cmd).await?;
                }
            }
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
            match &self.backend {
                Backend::Single {
                    events: Some(events),
                    ..
                } => Ok(Some(events.subscribe(prefix, sink, &self.addr).await?)),
                Backend::Cluster { watch, .. } if watch.events_on() => {
                    Ok(Some(watch.subscribe(prefix, sink).await?))
                }
                _ => Ok(None),
            }
        })
    }

    /// Checks `notify-keyspace-events` again (a Redis restarted with its
    /// default settings has none; on a cluster, on every node), setting it
    /// in [`KeyspaceEvents::Configure`] mode.
    fn events_resumed(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            match &self.backend {
                Backend::Single {
                    events: Some(events),
                    ..
                } => events.ensure(&self.addr).await,
                // The primaries: every event heard comes from one. A
                // replica lacking the setting is the watcher's to fix (or
                // warn about) before it can be promoted.
                Backend::Cluster { watch, .. } if watch.events_on() => {
                    watch.ensure_everywhere(true).await
                }
                _ => Ok(()),
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
    fn r24_a_create_sent_again_finds_its_own_record_and_counts_it_created() {
        assert_eq!(created(&Value::Nil, false, b"v"), Some(true));
        assert_eq!(created(&Value::Nil, true, b"v"), Some(true));
        let v = Value::BulkString(b"v".to_vec());
        assert_eq!(
            created(&v, false, b"v"),
            Some(false),
            "not re-sent: someone's record"
        );
        assert_eq!(
            created(&v, true, b"v"),
            Some(true),
            "re-sent: its own first try"
        );
        assert_eq!(
            created(&v, true, b"w"),
            Some(false),
            "re-sent, another record"
        );
        assert_eq!(created(&Value::Okay, false, b"v"), None);
    }

    #[test]
    fn r25_a_compare_and_set_sent_again_swaps_once_and_never_merges_twice() {
        let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
        let int = Value::Int;
        assert_eq!(
            cas_outcome(vec![int(2)], false, b"n"),
            Some(Ok(CasOutcome::Swapped))
        );
        assert_eq!(
            cas_outcome(vec![int(0)], true, b"n"),
            Some(Ok(CasOutcome::Gone))
        );
        assert_eq!(
            cas_outcome(vec![int(1), bulk(b"n")], false, b"n"),
            Some(Ok(CasOutcome::Conflict(b"n".to_vec()))),
            "not re-sent: another writer wrote the same bytes; merge as usual"
        );
        assert_eq!(
            cas_outcome(vec![int(1), bulk(b"n")], true, b"n"),
            Some(Ok(CasOutcome::Swapped)),
            "re-sent: its own first try swapped"
        );
        assert_eq!(
            cas_outcome(vec![int(1), bulk(b"o")], true, b"n"),
            Some(Err(InDoubt)),
            "re-sent, changed since: unknowable, never merged again"
        );
        assert_eq!(
            cas_outcome(vec![int(1), bulk(b"o")], false, b"n"),
            Some(Ok(CasOutcome::Conflict(b"o".to_vec())))
        );
        for bad in [
            vec![],
            vec![int(3)],
            vec![int(1)],
            vec![int(2), int(2)],
            vec![bulk(b"x")],
        ] {
            assert_eq!(cas_outcome(bad, false, b"n"), None);
        }
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
