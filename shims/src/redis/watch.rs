//! A Redis Cluster's topology and keyspace notifications: the watcher.
//!
//! A Redis Cluster node sends the keyspace notifications of its own keys
//! only, and `PSUBSCRIBE` is node-local (only `PUBLISH` crosses the cluster
//! bus), so the store keeps one subscriber connection per primary, and a
//! watcher task that polls `CLUSTER SHARDS` (every second; every 100 ms
//! while a slot range has no live subscriber) to follow failovers, added
//! primaries and resharding:
//!
//! - it keeps the store's slot map ([`Topology`]) current (loads are grouped
//!   per primary with it, and the replicas a write waits for counted);
//! - with keyspace events on, it checks (or sets, in
//!   [`KeyspaceEvents::Configure`] mode) `notify-keyspace-events` on every
//!   node it sees online, replicas included, since any replica may be
//!   promoted;
//! - it subscribes on each online primary that has no subscriber, drops the
//!   subscriber of a node that is no longer a primary, and starts again
//!   where a subscriber's connection dropped.
//!
//! Subscribers are plain RESP3 connections (not the cluster client's, whose
//! `PSUBSCRIBE` lands on one node), each with its own
//! [`KeyspaceFilter`] in cluster mode (a `del` may be a slot moving away, so
//! it is a change to reload), and subscribed to the store's own write
//! channel too (the compare-and-set script's announcement, which the cluster
//! bus broadcasts, arrives on the key's primary right before its `set`).
//!
//! The event stream is *live* while every slot range's primary has a
//! subscriber that Redis confirmed. When that stops (a primary died, was
//! demoted, or its subscriber's connection dropped) every sink gets
//! [`StoreEvent::Lost`]; when it holds again, [`StoreEvent::Resumed`], and
//! the live layer re-validates the sessions it follows: notifications sent
//! in between (say, by a promoted replica before the store subscribed
//! there) were never heard.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_channel::oneshot;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ProtocolVersion, PushInfo,
    PushKind, Value,
};
use session_sockets_core::event::KeyspaceFilter;

use super::events::{KeyspaceEvents, ensure, pattern};
use super::rt;
use super::topology::{self, Node, Topology};
use crate::store::{EventSink, StoreError, StoreEvent, Subscription};

/// How often the watcher asks for the topology when all is well.
pub(crate) const POLL: Duration = Duration::from_secs(1);
/// How often while a slot range has no live subscriber.
pub(crate) const FAST_POLL: Duration = Duration::from_millis(100);
/// The most one node may take to connect or answer the watcher.
const NODE_TIMEOUT: Duration = Duration::from_millis(500);

/// The watcher's and subscribers' shared state; the store holds it, the
/// tasks hold it weakly (they end when the store is dropped).
pub(super) struct Watch {
    /// The channel this store announces its own writes on.
    pub(super) own_channel: String,
    mode: KeyspaceEvents,
    topology: Arc<Topology>,
    /// Connection settings (password, user) for plain connections to
    /// nodes; only the address changes.
    template: ConnectionInfo,
    /// The seed nodes' addresses.
    seeds: Vec<(String, u16)>,
    /// How long a subscriber may take to connect and subscribe.
    response_timeout: Duration,
    state: Mutex<State>,
    wake: smol::channel::Sender<()>,
    next_sub: AtomicU64,
}

#[derive(Default)]
struct State {
    sinks: Vec<(u64, Vec<u8>, EventSink)>,
    next_sink: u64,
    /// The prefixes subscribed to, and a number bumped when they change
    /// (subscribers of an older generation are replaced).
    prefixes: Vec<Vec<u8>>,
    generation: u64,
    /// Subscribers by `host:port`.
    subs: HashMap<String, Sub>,
    /// What the sinks were last told: `true` after `Resumed`.
    live: bool,
    /// Subscribe calls waiting for the stream to be live.
    waiters: Vec<oneshot::Sender<()>>,
    /// Online nodes whose `notify-keyspace-events` was checked (or set).
    ensured: HashSet<String>,
    /// Nodes already warned about (their setting lacks classes).
    warned: HashSet<String>,
}

struct Sub {
    id: u64,
    generation: u64,
    status: Status,
}

enum Status {
    /// Connecting and subscribing.
    Starting,
    /// Subscribed; the connection is kept open here (dropping it closes
    /// it).
    Live { _open: MultiplexedConnection },
    /// Its connection failed or dropped.
    Dead,
}

impl Watch {
    /// The watch state; [`start`](Self::start) runs its task.
    pub(super) fn new(
        mode: KeyspaceEvents,
        topology: Arc<Topology>,
        template: ConnectionInfo,
        seeds: Vec<(String, u16)>,
        response_timeout: Duration,
    ) -> Result<(Arc<Watch>, smol::channel::Receiver<()>), StoreError> {
        let (wake, woken) = smol::channel::unbounded();
        topology.set_waker(wake.clone());
        let watch = Arc::new(Watch {
            own_channel: super::events::own_channel()?,
            mode,
            topology,
            template,
            seeds,
            response_timeout,
            state: Mutex::new(State::default()),
            wake,
            next_sub: AtomicU64::new(1),
        });
        Ok((watch, woken))
    }

    /// Spawns the watcher on the current runtime.
    pub(super) fn start(self: &Arc<Self>, woken: smol::channel::Receiver<()>) {
        rt::spawn(watch(Arc::downgrade(self), woken));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is a whole insert, remove or assignment: consistent
        // after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether keyspace events are on.
    pub(super) fn events_on(&self) -> bool {
        self.mode != KeyspaceEvents::Off
    }

    /// A plain connection to `node` (RESP3 with `push` when given).
    async fn connect(
        &self,
        host: &str,
        port: u16,
        push: Option<impl redis::aio::AsyncPushSender>,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let mut info = self
            .template
            .clone()
            .set_addr(ConnectionAddr::Tcp(host.to_owned(), port));
        if push.is_some() {
            let resp3 = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            info = info.set_redis_settings(resp3);
        }
        let timeout = NODE_TIMEOUT.min(self.response_timeout);
        let mut config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.response_timeout));
        if let Some(push) = push {
            config = config.set_push_sender(push);
        }
        Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Checks (or sets) `notify-keyspace-events` on every online node of
    /// the current topology, replicas included (`primaries_only`: on the
    /// online primaries, whose notifications the store hears now; the
    /// watcher sees to the replicas, warning about those it cannot fix).
    pub(super) async fn ensure_everywhere(&self, primaries_only: bool) -> Result<(), StoreError> {
        let map = self.topology.get();
        let nodes: Vec<Node> = map
            .shards
            .iter()
            .flat_map(|s| {
                s.nodes
                    .iter()
                    .filter(|n| n.online && (n.primary || !primaries_only))
                    .cloned()
            })
            .collect();
        drop(map);
        if nodes.is_empty() {
            return Err(StoreError::new(
                "no Redis Cluster node answered CLUSTER SHARDS: are the seed nodes right, and \
                 is it a Redis Cluster (7.0 or later)?",
            ));
        }
        for n in nodes {
            self.ensure_on(&n).await?;
            self.state().ensured.insert(n.addr());
        }
        Ok(())
    }

    async fn ensure_on(&self, n: &Node) -> Result<(), StoreError> {
        let addr = format!("Redis Cluster node {}", n.addr());
        let mut conn = self
            .connect(&n.host, n.port, None::<fn(PushInfo) -> Result<(), ()>>)
            .await
            .map_err(|e| {
                StoreError::with_source(
                    format!("cannot connect to {addr} to check notify-keyspace-events"),
                    e,
                )
            })?;
        ensure(&mut conn, &addr, self.mode).await
    }

    /// Reports keys starting with `prefix` to `sink`, once every primary
    /// has a subscriber (waiting up to the response timeout; the sink gets
    /// [`StoreEvent::Resumed`] then, or [`StoreEvent::Lost`] if it is not
    /// so by then, and `Resumed` later).
    pub(super) async fn subscribe(
        self: &Arc<Self>,
        prefix: &[u8],
        sink: EventSink,
    ) -> Result<Subscription, StoreError> {
        let (id, waiting) = {
            let mut st = self.state();
            let id = st.next_sink;
            st.next_sink += 1;
            st.sinks.push((id, prefix.to_vec(), Arc::clone(&sink)));
            if !st.prefixes.iter().any(|p| p == prefix) {
                st.prefixes.push(prefix.to_vec());
                st.generation += 1;
                // Existing subscribers lack the new pattern.
                self.recompute(&mut st);
            }
            if st.live {
                sink(StoreEvent::Resumed);
                (id, None)
            } else {
                let (tx, rx) = oneshot::channel();
                st.waiters.push(tx);
                (id, Some(rx))
            }
        };
        let _ = self.wake.try_send(());
        if let Some(rx) = waiting {
            // `Resumed` reaches the sink with every other on the way to live.
            let live = rt::timeout(self.response_timeout + FAST_POLL * 5, rx).await;
            if !matches!(live, Some(Ok(()))) {
                let st = self.state();
                if !st.live {
                    sink(StoreEvent::Lost);
                }
            }
        }
        Ok(Subscription::new(Unsubscribe {
            watch: Arc::downgrade(self),
            id,
        }))
    }

    /// Compares the subscribers with the topology; tells the sinks when the
    /// stream became live or stopped being so.
    fn recompute(&self, st: &mut State) {
        let map = self.topology.get();
        let covered = !st.prefixes.is_empty()
            && !map.shards.is_empty()
            && map.shards.iter().filter(|s| !s.ranges.is_empty()).all(|s| {
                s.primary().is_some_and(|p| {
                    st.subs.get(&p.addr()).is_some_and(|sub| {
                        sub.generation == st.generation && matches!(sub.status, Status::Live { .. })
                    })
                })
            });
        if covered == st.live {
            return;
        }
        st.live = covered;
        let event = if covered {
            tracing::info!("keyspace notifications from every Redis Cluster primary");
            StoreEvent::Resumed
        } else {
            tracing::warn!(
                "keyspace notifications from a Redis Cluster primary stopped (failover, topology \
                 change or lost connection); following the cluster, sessions are re-validated \
                 once every primary reports again"
            );
            StoreEvent::Lost
        };
        // Under the lock: sinks see Lost and Resumed in order. They only
        // queue the event (the live layer's hub).
        for (_, _, sink) in &st.sinks {
            sink(event.clone());
        }
        if covered {
            for w in st.waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// A push from the subscriber `id` of `addr`.
    fn on_push(&self, addr: &str, id: u64, filter: &Mutex<KeyspaceFilter>, push: PushInfo) {
        let bulk = |v: &Value| match v {
            Value::BulkString(b) => Some(b.clone()),
            Value::SimpleString(s) => Some(s.clone().into_bytes()),
            _ => None,
        };
        let (channel, payload) = match (push.kind, push.data.as_slice()) {
            (PushKind::PMessage, [_pattern, channel, payload]) => (bulk(channel), bulk(payload)),
            (PushKind::Message, [channel, payload]) => (bulk(channel), bulk(payload)),
            (PushKind::Disconnection, _) => {
                let mut st = self.state();
                if let Some(sub) = st.subs.get_mut(addr)
                    && sub.id == id
                {
                    sub.status = Status::Dead;
                    self.recompute(&mut st);
                    drop(st);
                    let _ = self.wake.try_send(());
                }
                return;
            }
            _ => return,
        };
        let (Some(channel), Some(payload)) = (channel, payload) else {
            return;
        };
        let event = filter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .handle(&channel, &payload);
        let Some(event) = event else { return };
        let sinks: Vec<EventSink> = self
            .state()
            .sinks
            .iter()
            .filter(|(_, prefix, _)| event.key.starts_with(prefix))
            .map(|(_, _, s)| Arc::clone(s))
            .collect();
        for sink in sinks {
            sink(StoreEvent::Key(event.clone()));
        }
    }

    /// Asks the candidates, in order, for `CLUSTER SHARDS`.
    async fn fetch(
        &self,
        candidates: &[(String, u16)],
        conns: &mut HashMap<(String, u16), MultiplexedConnection>,
    ) -> Option<((String, u16), Vec<topology::Shard>)> {
        for node in candidates {
            let mut conn = match conns.get(node) {
                Some(c) => c.clone(),
                None => {
                    let Ok(c) = self
                        .connect(&node.0, node.1, None::<fn(PushInfo) -> Result<(), ()>>)
                        .await
                    else {
                        continue;
                    };
                    conns.insert(node.clone(), c.clone());
                    c
                }
            };
            let asked = rt::timeout(
                NODE_TIMEOUT,
                redis::cmd("CLUSTER")
                    .arg("SHARDS")
                    .query_async::<Value>(&mut conn),
            )
            .await;
            match asked
                .and_then(Result::ok)
                .as_ref()
                .and_then(topology::parse_shards)
            {
                Some(shards) => return Some((node.clone(), shards)),
                None => {
                    conns.remove(node);
                }
            }
        }
        None
    }

    /// One round of the watcher; `true` if all is well (poll slowly).
    async fn round(
        self: &Arc<Self>,
        known: &mut Vec<(String, u16)>,
        conns: &mut HashMap<(String, u16), MultiplexedConnection>,
    ) -> bool {
        let Some((from, shards)) = self.fetch(known, conns).await else {
            let mut st = self.state();
            self.recompute(&mut st);
            return false;
        };
        // Next time: the node that answered, then every online node, then
        // the seeds.
        let mut next = vec![from];
        for n in shards.iter().flat_map(|s| &s.nodes).filter(|n| n.online) {
            let addr = (n.host.clone(), n.port);
            if !next.contains(&addr) {
                next.push(addr);
            }
        }
        for s in &self.seeds {
            if !next.contains(s) {
                next.push(s.clone());
            }
        }
        *known = next;
        let online: Vec<Node> = shards
            .iter()
            .flat_map(|s| s.nodes.iter().filter(|n| n.online).cloned())
            .collect();
        let primaries: Vec<Node> = online.iter().filter(|n| n.primary).cloned().collect();
        // A slot range without an online primary: a failover is under way;
        // follow it closely (the promoted replica takes writes at once).
        let failing = shards
            .iter()
            .any(|s| !s.ranges.is_empty() && s.primary().is_none());
        if self.topology.set(shards) {
            tracing::debug!(
                primaries = primaries.len(),
                "Redis Cluster topology changed"
            );
        }
        if !self.events_on() {
            return !failing;
        }
        // The setting on every node seen online (again), replicas too.
        let to_check: Vec<Node> = {
            let mut st = self.state();
            let online_addrs: HashSet<String> = online.iter().map(Node::addr).collect();
            st.ensured.retain(|a| online_addrs.contains(a));
            online
                .iter()
                .filter(|n| !st.ensured.contains(&n.addr()))
                .cloned()
                .collect()
        };
        for n in to_check {
            match self.ensure_on(&n).await {
                Ok(()) => {
                    let mut st = self.state();
                    st.ensured.insert(n.addr());
                    st.warned.remove(&n.addr());
                }
                Err(e) => {
                    if self.state().warned.insert(n.addr()) {
                        tracing::warn!(
                            error = %crate::observe::Chain(&e),
                            "a Redis Cluster node cannot report session changes"
                        );
                    }
                }
            }
        }
        // Subscribers: one per online primary, of the current generation.
        let mut st = self.state();
        if st.prefixes.is_empty() {
            return !failing;
        }
        let generation = st.generation;
        let wanted: HashSet<String> = primaries.iter().map(Node::addr).collect();
        st.subs.retain(|addr, sub| {
            wanted.contains(addr)
                && sub.generation == generation
                && !matches!(sub.status, Status::Dead)
        });
        let prefixes = st.prefixes.clone();
        for p in &primaries {
            let addr = p.addr();
            if st.subs.contains_key(&addr) {
                continue;
            }
            let id = self.next_sub.fetch_add(1, Ordering::Relaxed);
            st.subs.insert(
                addr.clone(),
                Sub {
                    id,
                    generation,
                    status: Status::Starting,
                },
            );
            rt::spawn(subscriber(
                Arc::downgrade(self),
                p.clone(),
                id,
                prefixes.clone(),
            ));
        }
        self.recompute(&mut st);
        st.live && !failing
    }
}

/// The watcher task: ends when the store is dropped.
async fn watch(weak: Weak<Watch>, woken: smol::channel::Receiver<()>) {
    let mut known: Vec<(String, u16)> = match weak.upgrade() {
        Some(w) => w.seeds.clone(),
        None => return,
    };
    let mut conns = HashMap::new();
    loop {
        let Some(w) = weak.upgrade() else { return };
        let well = w.round(&mut known, &mut conns).await;
        drop(w);
        let pause = if well { POLL } else { FAST_POLL };
        // Woken early when a subscriber's connection drops or a sink
        // subscribes; the pause still bounds how often nodes are asked.
        let _ = rt::timeout(pause, woken.recv()).await;
        while woken.try_recv().is_ok() {}
    }
}

/// One primary's subscriber: connects, makes sure the node reports, and
/// subscribes; the connection then lives in the state until it drops or
/// the watcher replaces it.
async fn subscriber(weak: Weak<Watch>, node: Node, id: u64, prefixes: Vec<Vec<u8>>) {
    let Some(w) = weak.upgrade() else { return };
    let addr = node.addr();
    let filter = Arc::new(Mutex::new(
        KeyspaceFilter::new(w.own_channel.as_bytes()).cluster(true),
    ));
    let push = {
        let (weak, addr, filter) = (weak.clone(), addr.clone(), Arc::clone(&filter));
        move |push: PushInfo| {
            if let Some(w) = weak.upgrade() {
                w.on_push(&addr, id, &filter, push);
            }
            Ok::<(), std::convert::Infallible>(())
        }
    };
    let started = async {
        let mut conn = w
            .connect(&node.host, node.port, Some(push))
            .await
            .map_err(|e| StoreError::with_source(format!("cannot connect to {addr}"), e))?;
        w.ensure_on(&node).await?;
        conn.subscribe(&w.own_channel)
            .await
            .map_err(|e| StoreError::with_source(format!("cannot subscribe on {addr}"), e))?;
        for prefix in &prefixes {
            conn.psubscribe(pattern(0, prefix))
                .await
                .map_err(|e| StoreError::with_source(format!("cannot PSUBSCRIBE on {addr}"), e))?;
        }
        Ok::<_, StoreError>(conn)
    };
    let started = rt::timeout(w.response_timeout, started).await;
    let mut st = w.state();
    let Some(sub) = st.subs.get_mut(&addr).filter(|s| s.id == id) else {
        // Replaced meanwhile: the connection (if any) closes here.
        return;
    };
    match started {
        Some(Ok(conn)) => sub.status = Status::Live { _open: conn },
        Some(Err(e)) => {
            tracing::debug!(error = %crate::observe::Chain(&e), "no keyspace subscriber on a Redis Cluster primary yet");
            sub.status = Status::Dead;
        }
        None => sub.status = Status::Dead,
    }
    w.recompute(&mut st);
}

/// Stops reporting to one sink when dropped.
struct Unsubscribe {
    watch: Weak<Watch>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(w) = self.watch.upgrade() {
            w.state().sinks.retain(|(id, _, _)| *id != self.id);
        }
    }
}

/// The `(host, port)` of a seed URL's connection info, when it is TCP.
pub(super) fn tcp_addr(info: &ConnectionInfo) -> Option<(String, u16)> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => Some((host.clone(), *port)),
        ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}
