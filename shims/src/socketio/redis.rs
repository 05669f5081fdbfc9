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

#[cfg(test)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

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
