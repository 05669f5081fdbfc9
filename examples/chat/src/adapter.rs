//! socketioxide-redis's pub/sub driver on a connection that comes back.
//!
//! The stock `RedisDriver` subscribes on one `MultiplexedConnection`: once
//! Redis restarts, its subscriptions are gone and its publishes fail until
//! the process restarts, so broadcasts between chat nodes (and
//! `disconnect_session` on other nodes) stop without a word. This driver
//! uses redis's `ConnectionManager` instead, which reconnects and, with
//! RESP3, subscribes again to every channel it had.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, RedisError, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

/// How often a node whose subscriber connection dropped asks Redis again.
/// The manager reconnects when a command needs the connection; a node that
/// only listens would otherwise wait for its next publish.
const RETRY: Duration = Duration::from_secs(1);

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// A socketioxide-redis [`Driver`] that survives a Redis restart.
#[derive(Clone)]
pub struct ReconnectingDriver {
    handlers: Handlers,
    conn: ConnectionManager,
}

impl ReconnectingDriver {
    /// Connects to `client` (which must speak RESP3, for push messages).
    pub async fn new(client: redis::Client) -> Result<Self, RedisError> {
        let handlers = Handlers::default();
        let lost = Arc::new(AtomicBool::new(false));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_push_sender({
                let (handlers, lost) = (Arc::clone(&handlers), Arc::clone(&lost));
                move |push: PushInfo| {
                    on_push(push, &handlers, &lost);
                    Ok::<(), std::convert::Infallible>(())
                }
            })
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_with_config(client, config).await?;
        tokio::spawn(reconnect_while_lost(conn.clone(), lost));
        Ok(ReconnectingDriver { handlers, conn })
    }

    fn handlers(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        // Whole entries inserted and removed: consistent after a panic.
        self.handlers.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sends a `PING` every [`RETRY`] while the subscriber connection is down,
/// so that the manager reconnects (and subscribes again) as soon as Redis
/// is back. Runs for the life of the process, as the adapter does.
async fn reconnect_while_lost(mut conn: ConnectionManager, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(RETRY).await;
        if lost.load(Ordering::SeqCst) {
            let _: Result<(), RedisError> = redis::cmd("PING").query_async(&mut conn).await;
        }
    }
}

/// One push message from Redis, on the connection's reader: a message goes
/// to its channel's handler; a disconnect and a (re-)subscription flip `lost`.
fn on_push(push: PushInfo, handlers: &Handlers, lost: &AtomicBool) {
    match push.kind {
        // Each reported once (the guards flip `lost`).
        PushKind::Disconnection if !lost.swap(true, Ordering::SeqCst) => {
            eprintln!("chat: socket.io's Redis connection dropped; reconnecting");
        }
        PushKind::Subscribe if lost.swap(false, Ordering::SeqCst) => {
            eprintln!("chat: socket.io's Redis connection is back");
        }
        PushKind::Message | PushKind::SMessage => {
            let [Value::BulkString(chan), Value::BulkString(msg)] = push.data.as_slice() else {
                return;
            };
            let Ok(chan) = String::from_utf8(chan.clone()) else {
                return;
            };
            let handlers = handlers.read().unwrap_or_else(|p| p.into_inner());
            if let Some(tx) = handlers.get(&chan) {
                // Full: the adapter is behind; socketioxide-redis's own
                // driver drops the message too (its channel is bounded).
                let _ = tx.try_send((chan, msg.clone()));
            }
        }
        _ => {}
    }
}

impl Driver for ReconnectingDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, Value>(chan, val).await?;
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
        if let Err(e) = self.conn.clone().subscribe(chan.as_str()).await {
            self.handlers().remove(&chan);
            return Err(e);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers().remove(&chan);
        self.conn.clone().unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
