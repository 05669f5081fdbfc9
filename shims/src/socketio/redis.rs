//! socket.io across servers through Redis, on a connection that comes back
//! after a Redis restart (feature `socketio-redis`).
//!
//! With several socket.io servers behind a load balancer, a broadcast (and
//! [`disconnect_session`](super::disconnect_session) at logout, R9) must
//! reach the sockets of every server. [socketioxide-redis] does that over
//! Redis pub/sub, through a [`Driver`]. Its stock `RedisDriver` subscribes
//! on one connection that never reconnects: after a Redis restart (or a
//! failover, or a network cut) its subscriptions are gone and its publishes
//! fail until the process restarts, so broadcasts between servers stop
//! without a word while each server still works on its own.
//!
//! [`ReconnectingDriver`] is the same driver on redis's
//! [`ConnectionManager`], which reconnects and, with RESP3, subscribes
//! again to every channel it had. A server that only listens has no
//! command of its own to notice the loss with, so while the connection is
//! down the driver asks Redis again every second ([`RETRY`]) until the
//! subscriptions are confirmed. Messages published while Redis was away
//! are lost, as with any Redis pub/sub.
//!
//! ```no_run
//! use session_sockets::socketio::redis;
//! use socketioxide::SocketIo;
//! use socketioxide::extract::SocketRef;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // One connection per process, shared by every namespace.
//! let ctr = redis::adapter("redis://127.0.0.1:6379/").await?;
//! let (layer, io) = SocketIo::builder()
//!     .with_adapter::<redis::Adapter<_>>(ctr)
//!     .build_layer();
//! // Each namespace subscribes to its channels: await that before serving.
//! io.ns("/", async |socket: SocketRef<redis::Adapter>| {
//!     // Reaches the sockets in "lobby" on every server on this Redis.
//!     let _ = socket.within("lobby").emit("joined", "someone").await;
//! })
//! .await?;
//! // ... serve `layer` (for example with axum), with the session layer
//! // and `SessionMiddleware` as usual.
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! On a Redis Cluster, use [`cluster_adapter`] (seed nodes) and
//! [`ClusterAdapter`]: the same, on a [`ClusterDriver`], which keeps
//! broadcasts crossing when any node fails (socketioxide-redis's own
//! cluster driver goes deaf when the node holding its channels dies).
//!
//! With your own `socketioxide_redis::RedisAdapterConfig` (a channel
//! prefix, a request timeout), build the constructor yourself:
//! `RedisAdapterCtr::new_with_driver(ReconnectingDriver::new(client).await?, config)`,
//! with a `client` that speaks RESP3 (see [`ReconnectingDriver::new`]).
//!
//! [socketioxide-redis]: https://docs.rs/socketioxide-redis/0.4

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, IntoConnectionInfo, PushInfo, PushKind, RedisError, Value};
use socketioxide::adapter::Emitter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::mpsc;

/// socketioxide-redis's adapter on a [`ReconnectingDriver`]: the type to
/// give `SocketIoBuilder::with_adapter` (as `Adapter<_>`) and to name in
/// handlers (`SocketRef<Adapter>`).
pub type Adapter<E = Emitter> = CustomRedisAdapter<E, ReconnectingDriver>;

/// How often a server whose Redis connection dropped asks Redis again
/// (a `PING`) until its subscriptions are back.
pub const RETRY: Duration = Duration::from_secs(1);

/// The bound on connecting to Redis and on each command's reply, so that a
/// paused or unreachable Redis fails a publish instead of hanging it (R23).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Each subscribed channel's sender, to the adapter's stream.
type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// Builds socketioxide-redis's adapter constructor on a
/// [`ReconnectingDriver`] connected to `url` (`redis://` or `rediss://`),
/// with RESP3 set on the connection (push messages need it) and the default
/// `RedisAdapterConfig`. Give the result to
/// `SocketIo::builder().with_adapter::<Adapter<_>>(..)` (see the
/// [module](self) docs).
///
/// Fails if `url` does not parse or Redis cannot be reached. A
/// [`RedisError`] names host and port, never a password; log it, do not
/// send it to clients (R35).
pub async fn adapter(url: &str) -> Result<RedisAdapterCtr<ReconnectingDriver>, RedisError> {
    let driver = ReconnectingDriver::new(resp3_client(url)?).await?;
    Ok(RedisAdapterCtr::new_with_driver(
        driver,
        RedisAdapterConfig::default(),
    ))
}

/// A client for `url` that speaks RESP3, whatever the URL says.
fn resp3_client(url: &str) -> Result<::redis::Client, RedisError> {
    let info = url.into_connection_info()?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(::redis::ProtocolVersion::RESP3);
    ::redis::Client::open(info.set_redis_settings(resp3))
}

/// A socketioxide-redis [`Driver`] that survives a Redis restart: pub/sub
/// on redis's [`ConnectionManager`], which reconnects and subscribes again
/// to every channel it had. Clones share the connection and the
/// subscriptions, as the adapter requires.
#[derive(Clone)]
pub struct ReconnectingDriver {
    inner: Arc<Inner>,
}

struct Inner {
    handlers: Handlers,
    conn: ConnectionManager,
}

impl fmt::Debug for ReconnectingDriver {
    // Not the connection: its `Debug` would print the connection info,
    // password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels = read(&self.inner.handlers).len();
        f.debug_struct("ReconnectingDriver")
            .field("channels", &channels)
            .finish_non_exhaustive()
    }
}

impl ReconnectingDriver {
    /// Connects to `client`, which must speak RESP3 (the pub/sub messages
    /// arrive as push messages on the same connection that publishes): for
    /// a URL, [`adapter`] sets that up; otherwise add `?protocol=resp3` to
    /// the URL or set `ProtocolVersion::RESP3` in its connection info. A
    /// RESP2 client is an error, as is a Redis that cannot be reached.
    ///
    /// Must run inside a tokio runtime: the driver keeps a task there that
    /// asks Redis again while the connection is down, and that ends when
    /// the last clone of the driver is dropped.
    pub async fn new(client: ::redis::Client) -> Result<Self, RedisError> {
        let handlers = Handlers::default();
        let lost = Arc::new(AtomicBool::new(false));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_push_sender({
                let (handlers, lost) = (Arc::clone(&handlers), Arc::clone(&lost));
                move |push: PushInfo| {
                    on_push(push, &handlers, &lost);
                    Ok::<(), std::convert::Infallible>(())
                }
            })
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let inner = Arc::new(Inner { handlers, conn });
        tokio::spawn(reconnect_while_lost(Arc::downgrade(&inner), lost));
        Ok(ReconnectingDriver { inner })
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn handlers(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        // Whole entries are inserted and removed: consistent after a panic.
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn read(
    handlers: &Handlers,
) -> std::sync::RwLockReadGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
    // Whole entries are inserted and removed: consistent after a panic.
    handlers.read().unwrap_or_else(|p| p.into_inner())
}

/// Sends a `PING` every [`RETRY`] while the connection is down, so that the
/// manager reconnects (and subscribes again) as soon as Redis is back: its
/// own retries give up after a few attempts, and it tries again only when a
/// command needs the connection. Ends when the driver is dropped.
async fn reconnect_while_lost(driver: Weak<Inner>, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(RETRY).await;
        let Some(inner) = driver.upgrade() else {
            return;
        };
        if lost.load(Ordering::SeqCst) {
            let mut conn = inner.conn.clone();
            // Not while waiting: the driver may be dropped meanwhile.
            drop(inner);
            let _: Result<(), RedisError> = ::redis::cmd("PING").query_async(&mut conn).await;
        }
    }
}

/// One push message from Redis, on the connection's reader: a message goes
/// to its channel's handler; a disconnection and the (re-)subscription
/// that follows the reconnection flip `lost`, each reported once.
fn on_push(push: PushInfo, handlers: &Handlers, lost: &AtomicBool) {
    match push.kind {
        PushKind::Disconnection if !lost.swap(true, Ordering::SeqCst) => {
            tracing::warn!("socket.io's Redis connection dropped; reconnecting");
        }
        PushKind::Subscribe if lost.swap(false, Ordering::SeqCst) => {
            tracing::info!("socket.io's Redis connection is back, subscribed again");
        }
        PushKind::Message | PushKind::SMessage => {
            let Some((chan, msg)) = message(push.data) else {
                return;
            };
            if let Some(tx) = read(handlers).get(&chan) {
                // Full: the adapter is behind. socketioxide-redis's own
                // driver drops the message too (its channel is bounded),
                // and this runs on the connection's reader: never block it.
                let _ = tx.try_send((chan, msg));
            }
        }
        _ => {}
    }
}

/// The channel and payload of a `message` (or `smessage`) push: exactly two
/// bulk strings, the channel's UTF-8. Anything else is not for the adapter.
fn message(data: Vec<Value>) -> Option<ChanItem> {
    let [Value::BulkString(chan), Value::BulkString(msg)] = <[Value; 2]>::try_from(data).ok()?
    else {
        return None;
    };
    Some((String::from_utf8(chan).ok()?, msg))
}

impl Driver for ReconnectingDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn().publish::<_, _, Value>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        // The handler first: a message may follow the confirmation at once.
        let (tx, rx) = mpsc::channel(size);
        self.handlers().insert(chan.clone(), tx);
        if let Err(e) = self.conn().subscribe(chan.as_str()).await {
            self.handlers().remove(&chan);
            return Err(e);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers().remove(&chan);
        self.conn().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn())
            .await?;
        Ok(count)
    }
}

// ---- Redis Cluster ---------------------------------------------------------

/// socketioxide-redis's adapter on a [`ClusterDriver`]: the type to give
/// `SocketIoBuilder::with_adapter` (as `ClusterAdapter<_>`) and to name in
/// handlers (`SocketRef<ClusterAdapter>`).
pub type ClusterAdapter<E = Emitter> = CustomRedisAdapter<E, ClusterDriver>;

/// Builds socketioxide-redis's adapter constructor on a [`ClusterDriver`]
/// for the Redis Cluster these seed nodes belong to
/// (`redis://[user:password@]host:port/`, any few nodes; one answering is
/// enough), with the default `RedisAdapterConfig`. Give the result to
/// `SocketIo::builder().with_adapter::<ClusterAdapter<_>>(..)`.
///
/// Fails if a URL does not parse or no seed answers. A [`RedisError`] names
/// host and port, never a password; log it, do not send it to clients
/// (R35).
pub async fn cluster_adapter<S: AsRef<str>>(
    seeds: impl IntoIterator<Item = S>,
) -> Result<RedisAdapterCtr<ClusterDriver>, RedisError> {
    let driver = ClusterDriver::new(seeds).await?;
    Ok(RedisAdapterCtr::new_with_driver(
        driver,
        RedisAdapterConfig::default(),
    ))
}

/// A socketioxide-redis [`Driver`] for a Redis Cluster that keeps working
/// through failovers: broadcasts between servers keep crossing when a node
/// dies, whichever it is.
///
/// socketioxide-redis's own `ClusterDriver` subscribes with sharded pub/sub
/// (`SSUBSCRIBE`) through redis-rs's cluster client, which moves its
/// subscriptions only when it refreshes its slot map, and nothing makes it
/// refresh after a failover (its `SPUBLISH`es go to the promoted replica
/// without an error): a server whose channels lived on the dead primary
/// hears nothing more until that node comes back, for good if it never
/// does.
///
/// This driver uses classic pub/sub instead: in a cluster, `PUBLISH` is
/// broadcast to every node over the cluster bus, so one `SUBSCRIBE`
/// connection to any node hears every channel. It keeps that connection on
/// one node of the cluster (a plain RESP3 connection, not the cluster
/// client's); when it drops, or stops answering the `PING` it gets every
/// [`RETRY`], the driver moves to the next node that answers (nodes learned
/// from `CLUSTER SHARDS`) and subscribes again to every channel it had, in
/// milliseconds, without waiting for the failover. Publishes (and
/// `PUBSUB NUMSUB`) go through redis-rs's cluster client. The cost: every
/// message crosses the cluster bus to every node; socket.io's channels are
/// few and per namespace, so sharded pub/sub would not spread them much
/// anyway. Messages published while no node was subscribed are lost, as
/// with any Redis pub/sub.
///
/// Clones share the connections and the subscriptions, as the adapter
/// requires.
#[derive(Clone)]
pub struct ClusterDriver {
    inner: Arc<ClusterInner>,
}

struct ClusterInner {
    handlers: Handlers,
    cluster: ::redis::cluster_async::ClusterConnection,
    /// Orders for the subscriber task; its end ends the task.
    orders: mpsc::UnboundedSender<Order>,
}

/// What the subscriber task is asked to do, with where to answer.
enum Order {
    Subscribe(String, tokio::sync::oneshot::Sender<Result<(), RedisError>>),
    Unsubscribe(String, tokio::sync::oneshot::Sender<Result<(), RedisError>>),
}

impl fmt::Debug for ClusterDriver {
    // Not the connections: their `Debug` would print the connection info,
    // password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels = read(&self.inner.handlers).len();
        f.debug_struct("ClusterDriver")
            .field("channels", &channels)
            .finish_non_exhaustive()
    }
}

impl ClusterDriver {
    /// Connects to the cluster these seed nodes belong to
    /// (`redis://[user:password@]host:port/`; RESP3 is set on the
    /// subscriber connection whatever the URLs say). Fails if a URL does not
    /// parse or no seed answers.
    ///
    /// Must run inside a tokio runtime: the driver keeps a task there that
    /// holds the subscriber connection, and that ends when the last clone of
    /// the driver is dropped.
    pub async fn new<S: AsRef<str>>(
        seeds: impl IntoIterator<Item = S>,
    ) -> Result<Self, RedisError> {
        let seeds: Vec<String> = seeds.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let infos = seeds
            .iter()
            .map(|s| s.as_str().into_connection_info())
            .collect::<Result<Vec<_>, _>>()?;
        let Some(template) = infos.first().cloned() else {
            return Err(RedisError::from((
                ::redis::ErrorKind::InvalidClientConfig,
                "no Redis Cluster seed node given",
            )));
        };
        let cluster = ::redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()?
            .get_async_connection()
            .await?;
        let handlers = Handlers::default();
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let nodes = infos.iter().filter_map(tcp_node).collect();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(follow(
            Arc::clone(&handlers),
            template,
            nodes,
            orders_rx,
            Some(ready_tx),
        ));
        // Connected to some node (or not, within the bound): report it.
        match tokio::time::timeout(TIMEOUT * 2, ready).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            _ => {
                return Err(RedisError::from((
                    ::redis::ErrorKind::Io,
                    "no Redis Cluster node took the socket.io subscriber connection in time",
                )));
            }
        }
        Ok(ClusterDriver {
            inner: Arc::new(ClusterInner {
                handlers,
                cluster,
                orders,
            }),
        })
    }

    fn handlers(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        // Whole entries are inserted and removed: consistent after a panic.
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `order` to the subscriber task and waits (bounded) for its
    /// answer.
    async fn order(
        &self,
        order: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), RedisError>>) -> Order,
    ) -> Result<(), RedisError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || {
            RedisError::from((
                ::redis::ErrorKind::Io,
                "the socket.io Redis Cluster subscriber did not confirm in time: is the cluster reachable?",
            ))
        };
        self.inner.orders.send(order(tx)).map_err(|_| gone())?;
        match tokio::time::timeout(TIMEOUT * 2, rx).await {
            Ok(Ok(r)) => r,
            _ => Err(gone()),
        }
    }
}

/// `(host, port)` of a TCP connection info.
fn tcp_node(info: &::redis::ConnectionInfo) -> Option<(String, u16)> {
    match info.addr() {
        ::redis::ConnectionAddr::Tcp(h, p) => Some((h.clone(), *p)),
        ::redis::ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

/// The subscriber task: keeps one RESP3 connection subscribed to every
/// channel on some live node of the cluster, moving to the next node that
/// answers when it drops. Ends when the driver is dropped (its orders'
/// channel closes).
async fn follow(
    handlers: Handlers,
    template: ::redis::ConnectionInfo,
    mut nodes: Vec<(String, u16)>,
    mut orders: mpsc::UnboundedReceiver<Order>,
    mut ready: Option<tokio::sync::oneshot::Sender<Result<(), RedisError>>>,
) {
    let seeds = nodes.clone();
    let mut next = 0usize;
    let mut lost = false;
    // Subscribe orders that arrived while no node was connected: answered
    // once subscribed again.
    let mut waiting: Vec<tokio::sync::oneshot::Sender<Result<(), RedisError>>> = Vec::new();
    loop {
        let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let mut conn = None;
        let mut last_error = None;
        for i in 0..nodes.len() {
            let Some((host, port)) = nodes.get((next + i) % nodes.len()).cloned() else {
                continue;
            };
            match subscriber_connection(&template, &host, port, push_tx.clone()).await {
                Ok(c) => {
                    next = (next + i + 1) % nodes.len();
                    conn = Some(c);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(mut conn) = conn else {
            if let Some(r) = ready.take() {
                let _ = r.send(Err(last_error.unwrap_or_else(|| {
                    RedisError::from((
                        ::redis::ErrorKind::InvalidClientConfig,
                        "no Redis Cluster seed node is a TCP address",
                    ))
                })));
                return;
            }
            // No node answers: take orders meanwhile, try again shortly.
            let until = tokio::time::sleep(RETRY / 10);
            tokio::pin!(until);
            loop {
                tokio::select! {
                    () = &mut until => break,
                    order = orders.recv() => match order {
                        None => return,
                        Some(Order::Subscribe(_, tx)) => waiting.push(tx),
                        Some(Order::Unsubscribe(_, tx)) => drop(tx.send(Ok(()))),
                    },
                }
            }
            continue;
        };
        // Learn the other nodes, for the next move.
        if let Ok(v) = ::redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query_async::<Value>(&mut conn)
            .await
        {
            let mut all = cluster_nodes(&v);
            for s in &seeds {
                if !all.contains(s) {
                    all.push(s.clone());
                }
            }
            if !all.is_empty() {
                nodes = all;
                next %= nodes.len();
            }
        }
        let channels: Vec<String> = read(&handlers).keys().cloned().collect();
        let subscribed = if channels.is_empty() {
            Ok(())
        } else {
            conn.subscribe(&channels).await
        };
        if let Err(e) = subscribed {
            tracing::debug!(error = %e, "socket.io's Redis Cluster subscriber could not subscribe; trying another node");
            continue;
        }
        for tx in waiting.drain(..) {
            let _ = tx.send(Ok(()));
        }
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        if lost {
            tracing::info!(
                "socket.io's Redis Cluster subscriber is back, on another node, subscribed again"
            );
        }
        let mut ping = tokio::time::interval(RETRY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                push = pushes.recv() => {
                    let Some(push) = push else { break };
                    if push.kind == PushKind::Disconnection {
                        break;
                    }
                    dispatch(push, &handlers);
                }
                order = orders.recv() => match order {
                    None => return,
                    Some(Order::Subscribe(chan, tx)) => {
                        let r = conn.subscribe(chan.as_str()).await;
                        let failed = r.is_err();
                        let _ = tx.send(r);
                        if failed {
                            break;
                        }
                    }
                    Some(Order::Unsubscribe(chan, tx)) => {
                        let _ = tx.send(conn.unsubscribe(chan.as_str()).await);
                    }
                },
                _ = ping.tick() => {
                    // A node that stopped answering (paused, cut off) sends
                    // no disconnection: ask.
                    if ::redis::cmd("PING").query_async::<Value>(&mut conn).await.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::warn!("socket.io's Redis Cluster subscriber lost its node; moving to another");
        lost = true;
    }
}

/// A plain RESP3 connection to one node, pushes to `push`.
async fn subscriber_connection(
    template: &::redis::ConnectionInfo,
    host: &str,
    port: u16,
    push: mpsc::UnboundedSender<PushInfo>,
) -> Result<::redis::aio::MultiplexedConnection, RedisError> {
    let info = template
        .clone()
        .set_addr(::redis::ConnectionAddr::Tcp(host.to_owned(), port));
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(::redis::ProtocolVersion::RESP3);
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT / 4))
        .set_response_timeout(Some(TIMEOUT))
        .set_push_sender(push);
    ::redis::Client::open(info.set_redis_settings(resp3))?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The online nodes of a `CLUSTER SHARDS` reply (RESP2 or RESP3), primaries
/// and replicas (any node relays every classic `PUBLISH`).
fn cluster_nodes(v: &Value) -> Vec<(String, u16)> {
    fn pairs(v: &Value) -> Vec<(String, &Value)> {
        let text = |k: &Value| match k {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        match v {
            Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
            Value::Array(a) => a
                .chunks(2)
                .filter_map(|c| match c {
                    [k, v] => Some((text(k)?, v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut out = Vec::new();
    let Value::Array(shards) = v else {
        return out;
    };
    for shard in shards {
        for (k, nodes) in pairs(shard) {
            let (true, Value::Array(nodes)) = (k == "nodes", nodes) else {
                continue;
            };
            for n in nodes {
                let (mut host, mut ip, mut port, mut online) = (None, None, None, false);
                for (k, v) in pairs(n) {
                    match k.as_str() {
                        "endpoint" => host = text(v).filter(|e| !e.is_empty() && e != "?"),
                        "ip" => ip = text(v),
                        "port" => {
                            port = match v {
                                Value::Int(p) => u16::try_from(*p).ok(),
                                _ => None,
                            }
                        }
                        "health" => online = text(v).as_deref() == Some("online"),
                        _ => {}
                    }
                }
                if let (Some(h), Some(p), true) = (host.or(ip), port, online)
                    && !out.contains(&(h.clone(), p))
                {
                    out.push((h, p));
                }
            }
        }
    }
    out
}

/// A `message` push to its channel's handler (dropped when the handler's
/// channel is full: never block the connection's reader).
fn dispatch(push: PushInfo, handlers: &Handlers) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let Some((chan, msg)) = message(push.data) else {
        return;
    };
    if let Some(tx) = read(handlers).get(&chan) {
        let _ = tx.try_send((chan, msg));
    }
}

impl Driver for ClusterDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        // Any node relays a classic PUBLISH to every node.
        ::redis::cmd("PUBLISH")
            .arg(chan)
            .arg(val)
            .query_async::<Value>(&mut self.inner.cluster.clone())
            .await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        // The handler first: a message may follow the confirmation at once.
        let (tx, rx) = mpsc::channel(size);
        self.handlers().insert(chan.clone(), tx);
        if let Err(e) = self.order(|tx| Order::Subscribe(chan.clone(), tx)).await {
            self.handlers().remove(&chan);
            return Err(e);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers().remove(&chan);
        self.order(|tx| Order::Unsubscribe(chan, tx)).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        // Sent to every node and summed by redis-rs: each server's
        // subscriber sits on exactly one node.
        let (_, count): (String, u16) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.inner.cluster.clone())
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

#[cfg(test)]
#[path = "../../tests/support/redis_cluster.rs"]
mod redis_cluster;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures_lite::StreamExt;

    use super::*;

    fn push(kind: PushKind, data: Vec<Value>) -> PushInfo {
        PushInfo { kind, data }
    }

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    fn handlers_with(chan: &str, size: usize) -> (Handlers, mpsc::Receiver<ChanItem>) {
        let handlers = Handlers::default();
        let (tx, rx) = mpsc::channel(size);
        handlers.write().unwrap().insert(chan.to_owned(), tx);
        (handlers, rx)
    }

    #[test]
    fn a_message_push_is_two_bulk_strings_with_a_utf8_channel() {
        assert_eq!(
            message(vec![bulk(b"chan"), bulk(b"\x93\x00")]),
            Some(("chan".to_owned(), b"\x93\x00".to_vec()))
        );
        for bad in [
            vec![],
            vec![bulk(b"chan")],
            vec![bulk(b"chan"), bulk(b"m"), bulk(b"x")],
            vec![bulk(b"\xff"), bulk(b"m")],
            vec![Value::Int(1), bulk(b"m")],
            vec![bulk(b"chan"), Value::Nil],
            vec![Value::SimpleString("chan".into()), bulk(b"m")],
        ] {
            assert_eq!(message(bad.clone()), None, "{bad:?}");
        }
    }

    #[test]
    fn messages_reach_their_channel_and_only_theirs() {
        let (handlers, mut rx) = handlers_with("a", 4);
        let lost = AtomicBool::new(false);
        for kind in [PushKind::Message, PushKind::SMessage] {
            on_push(push(kind, vec![bulk(b"a"), bulk(b"1")]), &handlers, &lost);
        }
        on_push(
            push(PushKind::Message, vec![bulk(b"b"), bulk(b"2")]),
            &handlers,
            &lost,
        );
        // A pattern message is not the adapter's (it never psubscribes).
        on_push(
            push(
                PushKind::PMessage,
                vec![bulk(b"a*"), bulk(b"a"), bulk(b"3")],
            ),
            &handlers,
            &lost,
        );
        assert_eq!(rx.try_recv().unwrap(), ("a".to_owned(), b"1".to_vec()));
        assert_eq!(rx.try_recv().unwrap(), ("a".to_owned(), b"1".to_vec()));
        assert!(rx.try_recv().is_err(), "nothing else");
    }

    #[test]
    fn a_full_channel_drops_the_message_without_blocking_the_reader() {
        let (handlers, mut rx) = handlers_with("a", 1);
        let lost = AtomicBool::new(false);
        for n in [b"1", b"2"] {
            on_push(
                push(PushKind::Message, vec![bulk(b"a"), bulk(n)]),
                &handlers,
                &lost,
            );
        }
        assert_eq!(rx.try_recv().unwrap().1, b"1");
        assert!(rx.try_recv().is_err());
        // A closed stream (the adapter unsubscribed meanwhile) is no error.
        drop(rx);
        on_push(
            push(PushKind::Message, vec![bulk(b"a"), bulk(b"3")]),
            &handlers,
            &lost,
        );
    }

    #[test]
    fn a_disconnection_marks_the_connection_lost_until_the_subscriptions_are_back() {
        let handlers = Handlers::default();
        let lost = AtomicBool::new(false);
        // A first subscription is no recovery.
        on_push(push(PushKind::Subscribe, vec![]), &handlers, &lost);
        assert!(!lost.load(Ordering::SeqCst));
        on_push(push(PushKind::Disconnection, vec![]), &handlers, &lost);
        assert!(lost.load(Ordering::SeqCst));
        on_push(push(PushKind::Disconnection, vec![]), &handlers, &lost);
        assert!(lost.load(Ordering::SeqCst), "still lost");
        on_push(push(PushKind::Unsubscribe, vec![]), &handlers, &lost);
        assert!(lost.load(Ordering::SeqCst), "an unsubscribe is no recovery");
        on_push(push(PushKind::Subscribe, vec![]), &handlers, &lost);
        assert!(!lost.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_resp2_client_is_refused_with_an_error() {
        let client = ::redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let err = ReconnectingDriver::new(client).await.unwrap_err();
        assert!(err.to_string().contains("RESP3"), "{err}");
        let err = adapter("not a url").await.unwrap_err();
        assert!(!err.to_string().is_empty());
    }

    /// A driver on `url`, as [`adapter`] makes it.
    async fn driver(url: &str) -> ReconnectingDriver {
        ReconnectingDriver::new(resp3_client(url).unwrap())
            .await
            .unwrap()
    }

    /// Waits for the next message on `stream`, for at most `within`.
    async fn next(stream: &mut MessageStream<ChanItem>, within: Duration) -> Option<ChanItem> {
        tokio::time::timeout(within, stream.next())
            .await
            .ok()
            .flatten()
    }

    /// Two servers on one Redis: a publish from one reaches the other;
    /// after Redis restarts (empty, same port), both reconnect on their own
    /// and messages cross again. The stock driver stays deaf here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_redis_restart_messages_cross_again() {
        let mut server = redis_server::RedisServer::start_with_defaults();
        let url = server.url();
        let (a, b) = (driver(&url).await, driver(&url).await);
        let mut on_b = b.subscribe("room".to_owned(), 16).await.unwrap();
        assert_eq!(a.num_serv("room").await.unwrap(), 1);
        a.publish("room".to_owned(), b"before".to_vec())
            .await
            .unwrap();
        assert_eq!(
            next(&mut on_b, Duration::from_secs(5)).await,
            Some(("room".to_owned(), b"before".to_vec()))
        );
        assert!(format!("{b:?}").contains("channels: 1"), "{b:?}");

        server.restart();
        // Until `b` has subscribed again, a publish reaches nobody: retry
        // until one arrives (each driver notices on its own, within RETRY
        // plus the manager's reconnection).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = None;
        while got.is_none() && Instant::now() < deadline {
            let _ = a.publish("room".to_owned(), b"after".to_vec()).await;
            got = next(&mut on_b, Duration::from_millis(250)).await;
        }
        assert_eq!(got, Some(("room".to_owned(), b"after".to_vec())));
        assert_eq!(a.num_serv("room").await.unwrap(), 1);

        // Unsubscribed: nothing more arrives, and Redis counts nobody.
        b.unsubscribe("room".to_owned()).await.unwrap();
        assert_eq!(a.num_serv("room").await.unwrap(), 0);
    }

    /// A long outage: the connection manager's own retries (six, backing
    /// off to a few seconds) are spent long before Redis is back, and a
    /// driver that only listens sends no command that would make it try
    /// again. The driver's `PING` every [`RETRY`] does: both drivers
    /// subscribe again within seconds of Redis's return.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_long_outage_a_listening_driver_subscribes_again() {
        let mut server = redis_server::RedisServer::start_with_defaults();
        let url = server.url();
        let (a, b) = (driver(&url).await, driver(&url).await);
        let mut on_b = b.subscribe("room".to_owned(), 16).await.unwrap();
        let mut on_a = a.subscribe("room".to_owned(), 16).await.unwrap();
        server.kill();
        tokio::time::sleep(Duration::from_secs(15)).await;
        server.restart();
        let back = Instant::now();
        // Neither driver has sent a command since the outage: only their
        // own PINGs bring them back. Wait for both to be subscribed.
        let deadline = back + RETRY * 5;
        loop {
            match server.command(&[b"PUBSUB", b"NUMSUB", b"room"]) {
                redis_server::Resp::Array(r) if r.get(1) == Some(&redis_server::Resp::Int(2)) => {
                    break;
                }
                other => assert!(Instant::now() < deadline, "{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.command(&[b"PUBLISH", b"room", b"back"]);
        for on in [&mut on_a, &mut on_b] {
            assert_eq!(
                next(on, Duration::from_secs(2)).await,
                Some(("room".to_owned(), b"back".to_vec()))
            );
        }
    }

    #[test]
    fn cluster_nodes_are_the_online_ones_of_cluster_shards() {
        let node = |port: i64, health: &str| {
            Value::Array(vec![
                bulk(b"port"),
                Value::Int(port),
                bulk(b"ip"),
                bulk(b"127.0.0.1"),
                bulk(b"endpoint"),
                bulk(b"127.0.0.1"),
                bulk(b"health"),
                bulk(health.as_bytes()),
            ])
        };
        let shards = Value::Array(vec![Value::Array(vec![
            bulk(b"slots"),
            Value::Array(vec![]),
            bulk(b"nodes"),
            Value::Array(vec![
                node(7000, "online"),
                node(7003, "failed"),
                node(7004, "online"),
            ]),
        ])]);
        assert_eq!(
            cluster_nodes(&shards),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7004)
            ]
        );
        assert!(cluster_nodes(&Value::Nil).is_empty());
    }

    /// On a Redis Cluster: kill -9 the node a listening server's subscriber
    /// sits on (a primary: a failover too). The driver moves to another node
    /// at once, and messages cross again; the stock cluster driver hears
    /// nothing until the dead node comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_cluster_messages_cross_again_after_the_subscribers_node_dies() {
        let mut cluster = redis_cluster::RedisCluster::start();
        let seeds = cluster.seeds();
        let a = ClusterDriver::new(&seeds).await.unwrap();
        let b = ClusterDriver::new(&seeds).await.unwrap();
        let mut on_b = b.subscribe("room".to_owned(), 64).await.unwrap();
        assert_eq!(a.num_serv("room").await.unwrap(), 1);
        a.publish("room".to_owned(), b"before".to_vec())
            .await
            .unwrap();
        assert_eq!(
            next(&mut on_b, Duration::from_secs(5)).await,
            Some(("room".to_owned(), b"before".to_vec()))
        );
        // The node b's subscriber is on: the one with a subscribed client.
        let on = cluster
            .ports()
            .into_iter()
            .find(|&p| match cluster.command(p, &[b"CLIENT", b"LIST"]) {
                redis_cluster::Resp::Bulk(list) => {
                    String::from_utf8_lossy(&list).contains(" sub=1 ")
                }
                _ => false,
            })
            .expect("a node with b's subscriber");
        cluster.kill(on);
        let killed = Instant::now();
        let mut got = None;
        while got.is_none() && killed.elapsed() < Duration::from_secs(10) {
            let _ = a.publish("room".to_owned(), b"after".to_vec()).await;
            got = next(&mut on_b, Duration::from_millis(100)).await;
        }
        assert_eq!(got, Some(("room".to_owned(), b"after".to_vec())));
        eprintln!("messages cross again {:?} after the kill", killed.elapsed());
        // Every message published from now on arrives.
        for i in 0..20u8 {
            a.publish("room".to_owned(), vec![i]).await.unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 20 {
            match next(&mut on_b, Duration::from_secs(2)).await {
                Some((_, m)) if m.len() == 1 => seen.push(m[0]),
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(seen, (0..20).collect::<Vec<u8>>());
        // Servers are counted again once redis-rs dropped the dead node.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match a.num_serv("room").await {
                Ok(1) => break,
                other => assert!(Instant::now() < deadline, "{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.unsubscribe("room".to_owned()).await.unwrap();
        assert!(format!("{b:?}").contains("channels: 0"), "{b:?}");
        // Dropping the driver ends its subscriber: no node keeps it.
        let _on_b = b.subscribe("room".to_owned(), 4).await.unwrap();
        drop(b);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let subscribed = cluster
                .ports()
                .into_iter()
                .filter(|&p| p != on)
                .filter(|&p| match cluster.command(p, &[b"CLIENT", b"LIST"]) {
                    redis_cluster::Resp::Bulk(list) => {
                        String::from_utf8_lossy(&list).contains(" sub=1 ")
                    }
                    _ => false,
                })
                .count();
            if subscribed == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the dropped driver is still subscribed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The reconnecting task holds the driver weakly: dropping every clone
    /// ends it, so no connection outlives the adapter.
    #[tokio::test]
    async fn dropping_the_driver_ends_its_task() {
        let server = redis_server::RedisServer::start_with_defaults();
        let ctr = adapter(&server.url()).await.unwrap();
        drop(ctr);
        // The task wakes every RETRY; after that, only Redis's own count
        // of clients would tell. Ask it.
        let deadline = Instant::now() + RETRY * 3;
        loop {
            let clients = match server.command(&[b"CLIENT", b"LIST"]) {
                redis_server::Resp::Bulk(b) => String::from_utf8_lossy(&b).lines().count(),
                other => panic!("{other:?}"),
            };
            // Only the connection that asks.
            if clients == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{clients} clients left");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
