//! The data path of a [`RedisStore`](super::RedisStore) on a Redis Cluster.
//!
//! - Reads (`GET`, alone or batched) go on one redis-rs cluster connection,
//!   which follows `MOVED`/`ASK`, reconnects and retries within the response
//!   timeout; a batch of loads becomes one pipeline per primary, grouped
//!   with the store's own slot map ([`Topology`]).
//! - Writes go on a small pool of other cluster connections that never
//!   retry by themselves: a `WAIT` for replicas blocks its connection (reads
//!   must not queue behind it), and a write re-sent after its connection
//!   dropped may have run already, which only this loop knows and reports
//!   ([`Written::in_doubt`]). The loop follows redirections, waits out a
//!   failover with a short backoff, and stops at the response timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, RedisError, RedisResult, RetryMethod, Value};

use super::batch::Reply;
use super::rt;
use super::topology::{Topology, slot};

/// How many cluster connections carry writes. A `WAIT` holds up the
/// commands after it on its connection until a replica answers, so durable
/// writes to one primary go out at most this many at a time.
const WRITE_CONNECTIONS: usize = 4;
/// The first pause before a write is sent again after the cluster said it
/// cannot take it yet (`CLUSTERDOWN`, `TRYAGAIN`, no connection to the
/// slot's primary during a failover); doubled up to [`MAX_RETRY_WAIT`].
const MIN_RETRY_WAIT: Duration = Duration::from_millis(50);
/// The longest pause between two tries of a write.
const MAX_RETRY_WAIT: Duration = Duration::from_millis(500);
/// Redirections followed in a row before the write is sent by slot again.
const MAX_REDIRECTS: u32 = 5;
/// The most the store waits for the topology after a `WAIT` shortfall.
const NODE_ANSWER: Duration = Duration::from_millis(500);
/// How often, at most, the store warns that a shard has no replica to wait
/// for.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How many replicas must hold a write before the store acknowledges it,
/// on a Redis Cluster: the store sends `WAIT replicas timeout` right after
/// each write, on the key's primary, and fails the write when fewer
/// replicas acknowledged it in time.
///
/// The default on a cluster is one replica within 250 ms
/// ([`Durability::default`]): a primary that crashes after acknowledging a
/// write would otherwise take it along when its replica is promoted (Redis
/// replicates asynchronously), undoing a login, a save or a logout. A shard
/// whose replicas are all offline takes writes without waiting (there is
/// nothing to wait for; the store logs a warning every 10 s while that
/// lasts). Each write costs one replica round trip more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    replicas: usize,
    timeout: Duration,
}

impl Durability {
    /// No `WAIT`: a write is acknowledged once its primary has it.
    pub const NONE: Durability = Durability {
        replicas: 0,
        timeout: Duration::ZERO,
    };

    /// Wait for `replicas` replicas (at most as many as the key's shard has
    /// online) for at most `timeout` (rounded up to whole milliseconds,
    /// at least 1 ms: `WAIT` with 0 would block for ever; Redis checks it
    /// about every 100 ms). Keep `timeout` well under the store's response
    /// timeout. `replicas` 0 is [`Durability::NONE`].
    pub fn replicas(replicas: usize, timeout: Duration) -> Durability {
        if replicas == 0 {
            return Durability::NONE;
        }
        Durability {
            replicas,
            timeout: timeout.max(Duration::from_millis(1)),
        }
    }

    /// The replicas a write waits for (0: none).
    pub fn wanted(&self) -> usize {
        self.replicas
    }

    /// How long a write waits for them.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn timeout_ms(&self) -> u64 {
        let ms = self.timeout.as_millis();
        let ms = ms + u128::from(!self.timeout.subsec_nanos().is_multiple_of(1_000_000));
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    }
}

impl Default for Durability {
    /// One replica, within 250 ms.
    fn default() -> Self {
        Durability::replicas(1, Duration::from_millis(250))
    }
}

/// What a cluster store needs to connect.
pub(super) struct Options {
    pub(super) seeds: Vec<String>,
    pub(super) response_timeout: Duration,
    pub(super) connection_timeout: Duration,
    pub(super) durability: Durability,
}

/// A write that Redis answered.
pub(super) struct Written {
    /// The write command's reply.
    pub(super) value: Value,
    /// An earlier try of this write may have run: its connection dropped
    /// (or its reply timed out) after it was sent. A compare-and-set or a
    /// create must read its reply knowing it may see its own earlier effect.
    pub(super) in_doubt: bool,
}

/// Why a write failed.
pub(super) enum WriteFailure {
    /// Redis refused it, or the connection failed in a way not worth
    /// another try.
    Redis { error: RedisError, in_doubt: bool },
    /// The response timeout passed before any try got an answer.
    TimedOut {
        in_doubt: bool,
        last: Option<RedisError>,
    },
    /// The primary applied it, but fewer replicas than wanted acknowledged
    /// it in time: it may not survive a failover.
    Replicas { acked: i64, wanted: usize },
}

/// Where the next try of a write goes.
enum Dest {
    /// The primary of the key's slot, as redis-rs knows it.
    Slot,
    /// A node named by a `MOVED` (the slot's new owner).
    Moved(String, u16),
    /// A node named by an `ASK` (the slot is migrating to it): `ASKING` first.
    Ask(String, u16),
}

/// The cluster connections and what the store knows of the cluster.
pub(super) struct Cluster {
    reads: ClusterConnection,
    writes: Vec<ClusterConnection>,
    next: AtomicUsize,
    pub(super) topology: Arc<Topology>,
    durability: Durability,
    response_timeout: Duration,
    /// When the store last warned that a shard has no replica to wait for.
    warned: Mutex<Option<Instant>>,
}

fn builder(o: &Options) -> ClusterClientBuilder {
    ClusterClientBuilder::new(o.seeds.iter().map(String::as_str))
        .connection_timeout(o.connection_timeout)
        .response_timeout(o.response_timeout)
        // redis-rs waits at least 1.28 s before trying again after a
        // CLUSTERDOWN or a lost node; 50-500 ms lets calls succeed about
        // 0.1-0.2 s after a failover's promotion instead.
        .min_retry_wait(50)
        .max_retry_wait(500)
}

fn config(o: &Options) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(o.connection_timeout)
        .set_response_timeout(o.response_timeout)
}

impl Cluster {
    /// The connections, not yet connected (they connect in the background
    /// and on first use). Must run inside the runtime that will use them.
    pub(super) fn new(o: &Options, topology: Arc<Topology>) -> RedisResult<Cluster> {
        let reads: ClusterClient = builder(o).build()?;
        let writes: ClusterClient = builder(o).retries(0).build()?;
        let reads = reads.get_pending_async_connection_with_config(config(o));
        let writes = (0..WRITE_CONNECTIONS)
            .map(|_| writes.get_pending_async_connection_with_config(config(o)))
            .collect();
        Ok(Cluster {
            reads,
            writes,
            next: AtomicUsize::new(0),
            topology,
            durability: o.durability,
            response_timeout: o.response_timeout,
            warned: Mutex::new(None),
        })
    }

    /// The read connection (redis-rs routes and retries its commands).
    pub(super) fn reads(&self) -> ClusterConnection {
        self.reads.clone()
    }

    /// `CLUSTER SHARDS` from any node.
    pub(super) async fn shards(&self) -> RedisResult<Value> {
        self.reads()
            .route_command(
                redis::cmd("CLUSTER").arg("SHARDS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?
            .extract_error()
    }

    /// `GET key` on the key's primary.
    pub(super) async fn get(&self, key: &[u8]) -> RedisResult<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let v = self.reads().route_command(cmd, primary_of(key)).await?;
        bytes(v)
    }

    /// A batch of `GET`s: one pipeline per primary (at once), each key's own
    /// reply. A group whose pipeline fails as a whole (its node is down, or
    /// the slot map was stale and its keys now live on several nodes) is
    /// sent again one `GET` per key, each routed by redis-rs.
    pub(super) async fn get_batch(&self, keys: Vec<Box<[u8]>>) -> Arc<Vec<Reply>> {
        let map = self.topology.get();
        // Group by owning shard; `None`: unknown, one GET each.
        let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let owner = map.owner(slot(key));
            match groups.iter_mut().find(|(o, _)| o.is_some() && *o == owner) {
                Some((_, members)) => members.push(i),
                None => groups.push((owner, vec![i])),
            }
        }
        drop(map);
        let keys = &keys;
        let sent = groups.into_iter().map(|(owner, members)| async move {
            let replies = match (owner, members.first()) {
                (Some(_), Some(&first)) if members.len() > 1 => {
                    let mut pipe = redis::pipe();
                    for &i in &members {
                        pipe.cmd("GET").arg(&*keys[i]);
                    }
                    let route = SingleNodeRoutingInfo::SpecificNode(Route::new(
                        slot(&keys[first]),
                        SlotAddr::Master,
                    ));
                    match self
                        .reads()
                        .route_pipeline(pipe, 0, members.len(), route)
                        .await
                    {
                        Ok(values) if values.len() == members.len() => {
                            Some(values.into_iter().map(bytes).collect::<Vec<Reply>>())
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let replies = match replies {
                Some(r) => r,
                None => join_all(members.iter().map(|&i| self.get(&keys[i]))).await,
            };
            members.into_iter().zip(replies).collect::<Vec<_>>()
        });
        let mut out: Vec<Option<Reply>> = (0..keys.len()).map(|_| None).collect();
        for (i, reply) in join_all(sent).await.into_iter().flatten() {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(reply);
            }
        }
        Arc::new(
            out.into_iter()
                // Every member is in exactly one group: only a bug leaves one out.
                .map(|r| {
                    r.unwrap_or_else(|| {
                        Err(RedisError::from((
                            ErrorKind::Client,
                            "a batched GET got no reply",
                        )))
                    })
                })
                .collect(),
        )
    }

    /// A write connection, in turn.
    fn writer(&self) -> ClusterConnection {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.writes.len().max(1);
        match self.writes.get(i) {
            Some(c) => c.clone(),
            // `writes` is never empty (WRITE_CONNECTIONS > 0).
            None => self.reads.clone(),
        }
    }

    /// How many replicas a write of `slot` waits for: the configured number,
    /// at most as many as the slot's shard has online (the configured number
    /// when the shard is not known yet).
    fn wanted(&self, slot: u16) -> usize {
        let want = self.durability.wanted();
        if want == 0 {
            return 0;
        }
        let map = self.topology.get();
        let Some(online) = map.shard(slot).map(|s| s.online_replicas()) else {
            return want;
        };
        if online < want {
            self.warn_no_replica(slot, online, want);
        }
        want.min(online)
    }

    fn warn_no_replica(&self, slot: u16, online: usize, want: usize) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        *warned = Some(Instant::now());
        tracing::warn!(
            slot,
            online,
            wanted = want,
            "a Redis Cluster shard has fewer online replicas than writes wait for: its writes \
             are acknowledged after {online}, and may be lost if its primary fails before a \
             replica is back (check the shard's replicas)"
        );
    }

    /// After a `WAIT` got fewer acknowledgements than the slot map
    /// promised: whether `acked` is enough for the shard as it is now. A
    /// failover just promoted a replica (which has no replica of its own
    /// yet), or a replica just failed: the write waited for as many as the
    /// shard has online, which is the rule. Asks the cluster (within the
    /// write's deadline) and updates the slot map.
    async fn enough_after_all(&self, slot: u16, acked: i64, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        // The primary that just answered (a random node may be the replica
        // that did not).
        let mut reads = self.reads();
        let asked = reads.route_command(
            redis::cmd("CLUSTER").arg("SHARDS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                slot,
                SlotAddr::Master,
            ))),
        );
        let Some(Ok(reply)) = rt::timeout(left.min(NODE_ANSWER), asked).await else {
            self.topology.stale();
            return false;
        };
        let Some(shards) = super::topology::parse_shards(&reply) else {
            return false;
        };
        self.topology.set(shards);
        let now = self.wanted(slot);
        acked >= i64::try_from(now).unwrap_or(i64::MAX)
    }

    /// Runs the write `cmd` about `key` on the key's primary, followed by a
    /// `WAIT` when the store waits for replicas.
    pub(super) async fn write(&self, key: &[u8], cmd: &Cmd) -> Result<Written, WriteFailure> {
        let slot = slot(key);
        let deadline = Instant::now() + self.response_timeout;
        let mut in_doubt = false;
        let mut dest = Dest::Slot;
        let mut redirects = 0u32;
        let mut pause = MIN_RETRY_WAIT;
        loop {
            let wanted = self.wanted(slot);
            let mut pipe = redis::pipe();
            let offset = match dest {
                Dest::Ask(..) => {
                    pipe.cmd("ASKING");
                    1
                }
                _ => 0,
            };
            pipe.add_command(cmd.clone());
            if wanted > 0 {
                pipe.cmd("WAIT")
                    .arg(wanted)
                    .arg(self.durability.timeout_ms());
            }
            let count = 1 + usize::from(wanted > 0);
            let route = match &dest {
                Dest::Slot => {
                    SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master))
                }
                Dest::Moved(host, port) | Dest::Ask(host, port) => {
                    SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    }
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let tried = rt::timeout(left, async {
                self.writer()
                    .route_pipeline(pipe, offset, count, route)
                    .await
            })
            .await;
            let error = match tried {
                None => {
                    // No answer in time: it may still run.
                    return Err(WriteFailure::TimedOut {
                        in_doubt: true,
                        last: None,
                    });
                }
                Some(Ok(values)) => {
                    let mut values = values.into_iter();
                    match values.next().map(Value::extract_error) {
                        Some(Ok(value)) => {
                            if wanted > 0 {
                                let acked = match values.next() {
                                    Some(Value::Int(n)) => n,
                                    _ => 0,
                                };
                                if acked < i64::try_from(wanted).unwrap_or(i64::MAX)
                                    && !self.enough_after_all(slot, acked, deadline).await
                                {
                                    return Err(WriteFailure::Replicas { acked, wanted });
                                }
                            }
                            return Ok(Written { value, in_doubt });
                        }
                        Some(Err(e)) => e,
                        None => RedisError::from((ErrorKind::Client, "a write got no reply")),
                    }
                }
                Some(Err(e)) => e,
            };
            match next_try(&error) {
                Next::Redirect(to) if redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    dest = to;
                    continue;
                }
                Next::Redirect(_) | Next::NotRun => {}
                Next::MayHaveRun => in_doubt = true,
                Next::GiveUp => return Err(WriteFailure::Redis { error, in_doubt }),
            }
            dest = Dest::Slot;
            redirects = 0;
            if Instant::now() + pause >= deadline {
                return Err(WriteFailure::TimedOut {
                    in_doubt,
                    last: Some(error),
                });
            }
            rt::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY_WAIT);
        }
    }
}

/// What to do after a write's try failed with `e`.
enum Next {
    /// Not run: send it to this node now.
    Redirect(Dest),
    /// Not run (the cluster could not take it yet): try again after a pause.
    NotRun,
    /// May have run (sent, then the connection dropped or the reply timed
    /// out): try again after a pause, knowing that.
    MayHaveRun,
    /// Not worth another try (a refused command, a wrong type, a
    /// permission).
    GiveUp,
}

fn next_try(e: &RedisError) -> Next {
    let node = || {
        let (addr, _) = e.redirect_node()?;
        let (host, port) = addr.rsplit_once(':')?;
        Some((host.to_owned(), port.parse::<u16>().ok()?))
    };
    if e.is_connection_refusal() {
        return Next::NotRun;
    }
    match e.retry_method() {
        RetryMethod::MovedRedirect => match node() {
            Some((h, p)) => Next::Redirect(Dest::Moved(h, p)),
            None => Next::NotRun,
        },
        RetryMethod::AskRedirect => match node() {
            Some((h, p)) => Next::Redirect(Dest::Ask(h, p)),
            None => Next::NotRun,
        },
        RetryMethod::WaitAndRetry
        | RetryMethod::RefreshSlotsAndRetry
        | RetryMethod::ReconnectFromInitialConnections => Next::NotRun,
        RetryMethod::Reconnect | RetryMethod::RetryImmediately => Next::MayHaveRun,
        _ => Next::GiveUp,
    }
}

/// Routes a single-key command to the key's primary.
fn primary_of(key: &[u8]) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot(key),
        SlotAddr::Master,
    )))
}

/// A `GET` reply: the bytes, `None`, or the server's error.
fn bytes(v: Value) -> Reply {
    match v.extract_error()? {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        _ => Err(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "GET answered something other than bytes",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_timeouts_are_whole_milliseconds_never_zero() {
        assert_eq!(Durability::replicas(1, Duration::ZERO).timeout_ms(), 1);
        assert_eq!(
            Durability::replicas(1, Duration::from_micros(1500)).timeout_ms(),
            2
        );
        assert_eq!(
            Durability::replicas(2, Duration::from_millis(250)).timeout_ms(),
            250
        );
        assert_eq!(
            Durability::replicas(0, Duration::from_secs(1)),
            Durability::NONE
        );
        assert_eq!(Durability::default().wanted(), 1);
    }

    #[test]
    fn redirections_and_failover_errors_are_retried_and_dropped_connections_put_a_write_in_doubt() {
        use redis::ServerErrorKind as S;
        let server = |kind, detail: &str| {
            RedisError::from((ErrorKind::Server(kind), "server", detail.to_owned()))
        };
        assert!(matches!(
            next_try(&server(S::Moved, "3999 127.0.0.1:6381")),
            Next::Redirect(Dest::Moved(h, 6381)) if h == "127.0.0.1"
        ));
        assert!(matches!(
            next_try(&server(S::Ask, "3999 10.0.0.2:7000")),
            Next::Redirect(Dest::Ask(h, 7000)) if h == "10.0.0.2"
        ));
        for kind in [
            S::ClusterDown,
            S::TryAgain,
            S::MasterDown,
            S::BusyLoading,
            S::ReadOnly,
        ] {
            assert!(
                matches!(next_try(&server(kind, "x")), Next::NotRun),
                "{kind:?}"
            );
        }
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        assert!(matches!(
            next_try(&io(std::io::ErrorKind::ConnectionRefused)),
            Next::NotRun
        ));
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
        ] {
            assert!(matches!(next_try(&io(kind)), Next::MayHaveRun), "{kind:?}");
        }
        assert!(matches!(
            next_try(&RedisError::from((
                ErrorKind::Server(S::ResponseError),
                "WRONGTYPE"
            ))),
            Next::GiveUp
        ));
        assert!(matches!(next_try(&server(S::NoPerm, "x")), Next::GiveUp));
    }
}
