//! A Redis Cluster's shards as `CLUSTER SHARDS` (Redis 7.0 and later)
//! reports them, and the slot of a key.
//!
//! redis-rs keeps its own slot map private and refreshes it only when a
//! command is redirected, so the store keeps this one, polled by the
//! cluster watcher ([`super::cluster_events`]): loads are grouped per
//! primary with it, and the replicas a write waits for are counted from it.
//!
//! ```text
//! CLUSTER SHARDS -> [ {slots: [start, end, start, end, ...],
//!                      nodes: [ {id, port, ip, endpoint, role: master|replica,
//!                               replication-offset, health: online|failed|loading}, ...]}, ...]
//! ```
//! (RESP2 gives each map as a flat array of keys and values.) A shard whose
//! primary died and has no promoted replica yet lists it with role `master`
//! and health `failed`: no usable primary. After a promotion the dead node
//! shows up as a shard of its own, with no slots.

use std::sync::{Arc, RwLock};

use redis::Value;

/// Slots in a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// One node of a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// `host:port` as the cluster announces it to clients.
    pub(crate) host: String,
    /// Its port.
    pub(crate) port: u16,
    /// `master` or `replica`.
    pub(crate) primary: bool,
    /// `health: online`.
    pub(crate) online: bool,
}

impl Node {
    /// `host:port`.
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One shard: its slot ranges and its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    /// Inclusive slot ranges.
    pub(crate) ranges: Vec<(u16, u16)>,
    /// Primary and replicas, as listed.
    pub(crate) nodes: Vec<Node>,
}

impl Shard {
    /// The online primary, if any.
    pub(crate) fn primary(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.primary && n.online)
    }

    /// How many of its replicas are online.
    pub(crate) fn online_replicas(&self) -> usize {
        self.nodes.iter().filter(|n| !n.primary && n.online).count()
    }
}

/// The shards of a `CLUSTER SHARDS` reply (RESP2 or RESP3); `None` when the
/// reply does not have that shape.
pub(crate) fn parse_shards(v: &Value) -> Option<Vec<Shard>> {
    let Value::Array(shards) = v else {
        return None;
    };
    let mut out = Vec::with_capacity(shards.len());
    for shard in shards {
        let mut ranges = Vec::new();
        let mut nodes = Vec::new();
        for (k, v) in pairs(shard)? {
            match (k.as_str(), v) {
                ("slots", Value::Array(a)) => {
                    let ints: Vec<i64> = a.iter().filter_map(int).collect();
                    for c in ints.chunks(2) {
                        if let [a, b] = c
                            && let (Ok(a), Ok(b)) = (u16::try_from(*a), u16::try_from(*b))
                            && a <= b
                            && usize::from(b) < SLOTS
                        {
                            ranges.push((a, b));
                        }
                    }
                }
                ("nodes", Value::Array(a)) => {
                    for n in a {
                        if let Some(node) = node(n) {
                            nodes.push(node);
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(Shard { ranges, nodes });
    }
    Some(out)
}

fn node(v: &Value) -> Option<Node> {
    let (mut ip, mut endpoint, mut port) = (None, None, None);
    let (mut primary, mut online) = (false, false);
    for (k, v) in pairs(v)? {
        match k.as_str() {
            "ip" => ip = text(v),
            "endpoint" => endpoint = text(v),
            "port" => port = int(v).and_then(|p| u16::try_from(p).ok()),
            "role" => primary = text(v).as_deref() == Some("master"),
            "health" => online = text(v).as_deref() == Some("online"),
            _ => {}
        }
    }
    // `endpoint` is what clients should use ("?" or empty when unknown).
    let host = endpoint.filter(|e| !e.is_empty() && e != "?").or(ip)?;
    Some(Node {
        host,
        port: port?,
        primary,
        online,
    })
}

/// The key/value pairs of a RESP3 map or a RESP2 flat array.
fn pairs(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Map(m) => Some(m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect()),
        Value::Array(a) => Some(
            a.chunks(2)
                .filter_map(|c| match c {
                    [k, v] => Some((text(k)?, v)),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the bytes
/// between the first `{` and the next `}`, when not empty) or of the whole
/// key, modulo 16384, as Redis and redis-rs compute it.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = key.get(open + 1..)?;
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| rest.get(..close)).flatten()
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(key) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// What the store knows of the cluster: the last `CLUSTER SHARDS` seen,
/// and for each slot the shard that owns it.
#[derive(Default)]
pub(crate) struct Topology {
    current: RwLock<Arc<Map>>,
    /// Wakes the watcher (see [`stale`](Self::stale)).
    waker: std::sync::OnceLock<smol::channel::Sender<()>>,
}

/// One snapshot: the shards, and slot -> index into them.
#[derive(Default)]
pub(crate) struct Map {
    pub(crate) shards: Vec<Shard>,
    owner: Vec<Option<u16>>,
}

impl Map {
    fn new(shards: Vec<Shard>) -> Map {
        let mut owner = vec![None; SLOTS];
        for (i, s) in shards.iter().enumerate() {
            let Ok(i) = u16::try_from(i) else { break };
            for &(a, b) in &s.ranges {
                for o in owner
                    .iter_mut()
                    .take(usize::from(b) + 1)
                    .skip(usize::from(a))
                {
                    *o = Some(i);
                }
            }
        }
        Map { shards, owner }
    }

    /// The index of the shard owning `slot`, when known.
    pub(crate) fn owner(&self, slot: u16) -> Option<usize> {
        self.owner
            .get(usize::from(slot))
            .copied()
            .flatten()
            .map(usize::from)
    }

    /// The shard owning `slot`, when known.
    pub(crate) fn shard(&self, slot: u16) -> Option<&Shard> {
        self.shards.get(self.owner(slot)?)
    }
}

impl Topology {
    /// The current snapshot.
    pub(crate) fn get(&self) -> Arc<Map> {
        // A panic while the lock is held cannot leave a torn value: the
        // only write is a whole `Arc` swap.
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Where [`stale`](Self::stale) wakes the watcher.
    pub(crate) fn set_waker(&self, waker: smol::channel::Sender<()>) {
        let _ = self.waker.set(waker);
    }

    /// Asks the watcher for a fresh snapshot now (a write found fewer
    /// replicas than the snapshot promised: a failover, most likely).
    pub(crate) fn stale(&self) {
        if let Some(w) = self.waker.get() {
            let _ = w.try_send(());
        }
    }

    /// Replaces the snapshot; `true` if the shards changed.
    pub(crate) fn set(&self, shards: Vec<Shard>) -> bool {
        if self.get().shards == shards {
            return false;
        }
        let map = Arc::new(Map::new(shards));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = map;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn node_value(port: i64, role: &str, health: &str) -> Value {
        Value::Array(vec![
            bulk("id"),
            bulk("abc"),
            bulk("port"),
            Value::Int(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("endpoint"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
            bulk("replication-offset"),
            Value::Int(12),
            bulk("health"),
            bulk(health),
        ])
    }

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT on Redis 7.0.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_eq!(
            slot(b"{}foo"),
            slot(b"{}foo"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot(b""), 0);
        assert_eq!(slot(b"sess:abc"), 4984);
    }

    #[test]
    fn shards_from_resp2_and_resp3() {
        let shard = Value::Array(vec![
            bulk("slots"),
            Value::Array(vec![Value::Int(0), Value::Int(5460)]),
            bulk("nodes"),
            Value::Array(vec![
                node_value(7000, "master", "online"),
                node_value(7003, "replica", "online"),
            ]),
        ]);
        let dead = Value::Array(vec![
            bulk("slots"),
            Value::Array(vec![]),
            bulk("nodes"),
            Value::Array(vec![node_value(7001, "master", "failed")]),
        ]);
        let shards = parse_shards(&Value::Array(vec![shard, dead])).unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].ranges, vec![(0, 5460)]);
        assert_eq!(
            shards[0].primary().map(Node::addr).as_deref(),
            Some("127.0.0.1:7000")
        );
        assert_eq!(shards[0].online_replicas(), 1);
        assert_eq!(shards[1].primary(), None);
        let map = Map::new(shards);
        assert_eq!(map.owner(0), Some(0));
        assert_eq!(map.owner(5460), Some(0));
        assert_eq!(map.owner(5461), None);

        let resp3 = Value::Array(vec![Value::Map(vec![
            (
                bulk("slots"),
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
            ),
            (
                bulk("nodes"),
                Value::Array(vec![Value::Map(vec![
                    (bulk("port"), Value::Int(7000)),
                    (bulk("ip"), bulk("10.0.0.1")),
                    (bulk("endpoint"), bulk("?")),
                    (bulk("role"), bulk("master")),
                    (bulk("health"), bulk("online")),
                ])]),
            ),
        ])]);
        let shards = parse_shards(&resp3).unwrap();
        assert_eq!(
            shards[0].primary().map(Node::addr).as_deref(),
            Some("10.0.0.1:7000")
        );
    }

    #[test]
    fn malformed_replies_are_no_topology_and_never_panic() {
        assert_eq!(parse_shards(&Value::Nil), None);
        assert_eq!(parse_shards(&Value::Array(vec![Value::Int(3)])), None);
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("slots"),
            Value::Array(vec![
                Value::Int(5),
                Value::Int(1),
                Value::Int(-1),
                Value::Int(99999),
            ]),
            bulk("nodes"),
            Value::Array(vec![Value::Array(vec![bulk("port"), Value::Int(70000)])]),
        ])]);
        let shards = parse_shards(&odd).unwrap();
        assert!(shards[0].ranges.is_empty());
        assert!(shards[0].nodes.is_empty());
    }
}
