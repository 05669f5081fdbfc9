//! A real Redis Cluster for tests: three primaries and three replicas of
//! stock `redis-server` on free loopback ports (each also needs its bus port,
//! +10000), `cluster-node-timeout 1000`, persistence off, in a temporary
//! directory; formed deterministically (node 3+i replicates node i, slots
//! 0-5460, 5461-10922 and 10923-16383) with plain commands, in about 2.5 s.
//! Every node is killed, and the directory removed, on drop, so a failing
//! test cleans up too.
//!
//! Include it with
//! `#[path = "support/redis_cluster.rs"] mod redis_cluster;`
//! (from `shims/tests/`) or an equivalent path from another package.
//! Standard library only, so any package can reuse it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

// Each server file stands alone (others include it by `#[path]`), so a
// binary with both loads this twice: two copies of a few small items.
#[allow(clippy::duplicate_mod)]
#[path = "resp.rs"]
mod resp;
use resp::find_redis_server;
pub use resp::{Resp, try_command, try_commands};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// The cluster's slot ranges, primary by primary.
pub const RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// One shard as `CLUSTER SHARDS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Its slot ranges.
    pub ranges: Vec<(u16, u16)>,
    /// Its nodes: (port, role, health).
    pub nodes: Vec<(u16, String, String)>,
}

impl Shard {
    /// The port of its online primary.
    pub fn primary(&self) -> Option<u16> {
        self.nodes
            .iter()
            .find(|(_, role, health)| role == "master" && health == "online")
            .map(|(p, _, _)| *p)
    }

    /// The ports of its online replicas.
    pub fn replicas(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, role, health)| role != "master" && health == "online")
            .map(|(p, _, _)| *p)
            .collect()
    }

    /// Whether `slot` is one of its slots.
    pub fn owns(&self, slot: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

struct Node {
    port: u16,
    child: Option<Child>,
}

/// A running 3 + 3 cluster, stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    events: String,
}

/// Six distinct free loopback ports whose bus ports (+10000) are free too.
fn free_ports() -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..500 {
        if ports.len() == 6 {
            break;
        }
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let port = addr.port();
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if ports.contains(&bus) || ports.iter().any(|p: &u16| p + 10000 == port) {
            continue;
        }
        let Ok(b) = TcpListener::bind(("127.0.0.1", bus)) else {
            continue;
        };
        ports.push(port);
        held.push(l);
        held.push(b);
    }
    assert_eq!(ports.len(), 6, "could not find 6 free loopback port pairs");
    ports
}

/// The cluster slot of `key` (CRC16/XMODEM of its hash tag or of the whole
/// key, modulo 16384), as Redis computes it.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
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
    crc % 16384
}

impl RedisCluster {
    /// Starts and forms a cluster with `notify-keyspace-events Kg$xe` on
    /// every node; returns once every node agrees it is whole.
    pub fn start() -> Self {
        Self::start_with_events("Kg$xe")
    }

    /// Like [`start`](Self::start), with Redis's default settings
    /// (`notify-keyspace-events ""`).
    pub fn start_with_defaults() -> Self {
        Self::start_with_events("")
    }

    /// Like [`start`](Self::start), with this `notify-keyspace-events`.
    pub fn start_with_events(events: &str) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(events) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("could not start a Redis Cluster: {last}");
    }

    fn try_start(events: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "session-sockets-cluster-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cluster = RedisCluster {
            nodes: free_ports()
                .into_iter()
                .map(|port| Node { port, child: None })
                .collect(),
            dir,
            events: events.to_owned(),
        };
        for i in 0..6 {
            cluster.spawn(i)?;
        }
        for i in 0..6 {
            cluster.wait_answers(i, Duration::from_secs(10))?;
        }
        cluster.form()?;
        cluster.wait_whole(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let port = self.nodes[i].port;
        let child = Command::new(find_redis_server())
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--protected-mode", "yes"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "1000"])
            // A replica's first sync at once (the default waits 5 s), and
            // replication offsets gossiped within a second, so that fresh
            // replicas count as online (and clients see them) quickly.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--repl-ping-replica-period", "1"])
            .args(["--notify-keyspace-events", &self.events])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    fn wait_answers(&mut self, i: usize, within: Duration) -> Result<(), String> {
        let port = self.nodes[i].port;
        let deadline = Instant::now() + within;
        loop {
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "redis-server on port {port} exited at start ({status}); port busy?"
                ));
            }
            if let Ok(Resp::Simple(s)) = try_command(port, &[b"PING"], Duration::from_millis(200))
                && s == "PONG"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {port} did not answer PING"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Slots on the first three nodes, distinct epochs, everyone meets the
    /// first node, node 3+i replicates node i once it knows it.
    fn form(&self) -> Result<(), String> {
        let ok = |port: u16, args: &[&[u8]]| match try_command(port, args, Duration::from_secs(5)) {
            Ok(Resp::Error(e)) => Err(format!("{port}: {e}")),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{port}: {e}")),
        };
        for (i, (a, b)) in RANGES.iter().enumerate() {
            let port = self.nodes[i].port;
            ok(
                port,
                &[
                    b"CLUSTER",
                    b"ADDSLOTSRANGE",
                    a.to_string().as_bytes(),
                    b.to_string().as_bytes(),
                ],
            )?;
            ok(
                port,
                &[
                    b"CLUSTER",
                    b"SET-CONFIG-EPOCH",
                    (i + 1).to_string().as_bytes(),
                ],
            )?;
        }
        let first = self.nodes[0].port.to_string();
        for n in &self.nodes[1..] {
            ok(
                n.port,
                &[b"CLUSTER", b"MEET", b"127.0.0.1", first.as_bytes()],
            )?;
        }
        for i in 0..3 {
            let id = try_command(
                self.nodes[i].port,
                &[b"CLUSTER", b"MYID"],
                Duration::from_secs(5),
            )?
            .text();
            let replica = self.nodes[3 + i].port;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let nodes =
                    try_command(replica, &[b"CLUSTER", b"NODES"], Duration::from_secs(5))?.text();
                if nodes.lines().any(|l| l.starts_with(&format!("{id} "))) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("node {replica} never learned of {id}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            ok(replica, &[b"CLUSTER", b"REPLICATE", id.as_bytes()])?;
        }
        Ok(())
    }

    /// Until every live node says `cluster_state:ok` and lists every live
    /// node online, and every live replica's link to its primary is up.
    fn wait_whole(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let last = match self.whole() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                return Err(format!("the cluster is not whole after {within:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn whole(&self) -> Result<(), String> {
        let live: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect();
        let budget = Duration::from_secs(1);
        for &port in &live {
            let info = try_command(port, &[b"CLUSTER", b"INFO"], budget)?.text();
            if !info.contains("cluster_state:ok") {
                return Err(format!("{port}: cluster_state not ok"));
            }
            let shards = parse_shards(&try_command(port, &[b"CLUSTER", b"SHARDS"], budget)?);
            let online = shards
                .iter()
                .flat_map(|s| &s.nodes)
                .filter(|(p, _, h)| h == "online" && live.contains(p))
                .count();
            if online < live.len() {
                return Err(format!("{port}: {online} of {} nodes online", live.len()));
            }
            let role = try_command(port, &[b"ROLE"], budget)?;
            if let Resp::Array(r) = &role
                && r.first().map(Resp::text).as_deref() == Some("slave")
            {
                let repl = try_command(port, &[b"INFO", b"replication"], budget)?.text();
                if !repl.contains("master_link_status:up") {
                    return Err(format!("{port}: replication link down"));
                }
            }
        }
        Ok(())
    }

    /// Waits until the cluster is whole again (after a failover or a
    /// restart), for at most `within`; panics with what is missing.
    pub fn wait_ok(&self, within: Duration) {
        self.wait_whole(within).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Every node's port: the three first nodes are the initial primaries,
    /// node 3+i the initial replica of node i.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis://127.0.0.1:PORT/` of the three initial primaries: seeds.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes[..3]
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// The shards as a live node sees them.
    pub fn shards(&self) -> Vec<Shard> {
        for n in self.nodes.iter().filter(|n| n.child.is_some()) {
            if let Ok(r) = try_command(n.port, &[b"CLUSTER", b"SHARDS"], Duration::from_secs(2)) {
                return parse_shards(&r);
            }
        }
        panic!("no node answered CLUSTER SHARDS");
    }

    /// The port of the online primary holding `key`'s slot.
    pub fn primary_of(&self, key: &[u8]) -> u16 {
        let s = slot(key);
        self.shards()
            .iter()
            .find(|sh| sh.owns(s))
            .and_then(Shard::primary)
            .unwrap_or_else(|| panic!("slot {s} has no online primary"))
    }

    /// The port of the (first online) replica of the primary on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        self.shards()
            .iter()
            .find(|sh| sh.primary() == Some(port))
            .and_then(|sh| sh.replicas().first().copied())
            .unwrap_or_else(|| panic!("{port} is no primary with an online replica"))
    }

    /// Runs one command on the node at `port`; panics on no answer in 5 s.
    pub fn command(&self, port: u16, args: &[&[u8]]) -> Resp {
        try_command(port, args, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("redis command on {port} failed: {e}"))
    }

    /// Runs one command about `key` on its primary (following `MOVED`).
    pub fn keyed(&self, key: &[u8], args: &[&[u8]]) -> Resp {
        let mut port = self.primary_of(key);
        for _ in 0..5 {
            match self.command(port, args) {
                Resp::Error(e) if e.starts_with("MOVED") => {
                    port = e
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_else(|| panic!("{e}"));
                }
                other => return other,
            }
        }
        panic!("too many redirections for a key");
    }

    /// `GET key` on its primary.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.keyed(key.as_bytes(), &[b"GET", key.as_bytes()]) {
            Resp::Bulk(b) => Some(b),
            Resp::Nil => None,
            other => panic!("GET: unexpected reply {other:?}"),
        }
    }

    /// `notify-keyspace-events` of the node at `port`.
    pub fn keyspace_events(&self, port: u16) -> String {
        match self.command(port, &[b"CONFIG", b"GET", b"notify-keyspace-events"]) {
            Resp::Array(v) => v.get(1).map(Resp::text).unwrap_or_default(),
            other => panic!("CONFIG GET: {other:?}"),
        }
    }

    /// Whether the node at `port` says it is a primary.
    pub fn is_primary(&self, port: u16) -> bool {
        matches!(
            try_command(port, &[b"ROLE"], Duration::from_millis(500)),
            Ok(Resp::Array(r)) if r.first().map(Resp::text).as_deref() == Some("master")
        )
    }

    /// The node id of the node at `port`.
    pub fn node_id(&self, port: u16) -> String {
        self.command(port, &[b"CLUSTER", b"MYID"]).text()
    }

    /// `GET key` on the replica at `port` (after `READONLY`, on the same
    /// connection): what the replica holds right now.
    pub fn replica_get(&self, port: u16, key: &str) -> Option<Vec<u8>> {
        let replies = try_commands(
            port,
            &[&[b"READONLY"], &[b"GET", key.as_bytes()]],
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("GET on replica {port}: {e}"));
        match replies.get(1) {
            Some(Resp::Bulk(b)) => Some(b.clone()),
            Some(Resp::Nil) => None,
            other => panic!("GET on replica {port}: unexpected reply {other:?}"),
        }
    }

    fn signal(&self, port: u16, sig: &str) {
        let i = self.index(port);
        if let Some(child) = &self.nodes[i].child {
            // The shell's builtin `kill`: always there, unlike procps.
            let status = Command::new("sh")
                .args(["-c", &format!("kill {sig} {}", child.id())])
                .status()
                .expect("run sh -c kill");
            assert!(status.success(), "kill {sig} failed");
        }
    }

    /// Freezes the node at `port` (SIGSTOP): connections stay open,
    /// nothing answers.
    pub fn pause(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn index(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// Kills the node at `port` with SIGKILL (as a crash would) and waits
    /// for it to be gone.
    pub fn kill(&mut self, port: u16) {
        let i = self.index(port);
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed node at `port` again (same identity: it rejoins,
    /// as a replica if its slots moved meanwhile) and waits until it
    /// answers.
    pub fn restart(&mut self, port: u16) {
        let i = self.index(port);
        self.kill(port);
        self.spawn(i).unwrap_or_else(|e| panic!("{e}"));
        self.wait_answers(i, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts one more node, empty, and has it join the cluster (as a
    /// primary without slots); its port, once every node sees it online.
    pub fn add_node(&mut self) -> u16 {
        let taken: Vec<u16> = self
            .nodes
            .iter()
            .flat_map(|n| [n.port, n.port + 10000])
            .collect();
        let port = free_ports()
            .into_iter()
            .find(|p| !taken.contains(p) && !taken.contains(&(p + 10000)))
            .expect("a free port pair");
        self.nodes.push(Node { port, child: None });
        let i = self.nodes.len() - 1;
        self.spawn(i).unwrap_or_else(|e| panic!("{e}"));
        self.wait_answers(i, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let first = self.nodes[0].port.to_string();
        self.command(port, &[b"CLUSTER", b"MEET", b"127.0.0.1", first.as_bytes()]);
        self.wait_ok(Duration::from_secs(15));
        port
    }

    /// Moves the empty `slot` from the primary on `from` to the primary on
    /// `to` (IMPORTING, MIGRATING, then NODE on both), and waits until the
    /// cluster is whole again.
    pub fn move_empty_slot(&self, slot: u16, from: u16, to: u16) {
        let s = slot.to_string();
        let (id_from, id_to) = (self.node_id(from), self.node_id(to));
        let ok = |r: Resp| assert_eq!(r, Resp::Simple("OK".into()));
        ok(self.command(
            to,
            &[
                b"CLUSTER",
                b"SETSLOT",
                s.as_bytes(),
                b"IMPORTING",
                id_from.as_bytes(),
            ],
        ));
        ok(self.command(
            from,
            &[
                b"CLUSTER",
                b"SETSLOT",
                s.as_bytes(),
                b"MIGRATING",
                id_to.as_bytes(),
            ],
        ));
        assert_eq!(
            self.command(from, &[b"CLUSTER", b"COUNTKEYSINSLOT", s.as_bytes()]),
            Resp::Int(0),
            "slot {slot} is not empty"
        );
        for port in [to, from] {
            ok(self.command(
                port,
                &[
                    b"CLUSTER",
                    b"SETSLOT",
                    s.as_bytes(),
                    b"NODE",
                    id_to.as_bytes(),
                ],
            ));
        }
        self.wait_ok(Duration::from_secs(15));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .shards()
            .iter()
            .any(|sh| sh.primary() == Some(to) && sh.owns(slot))
        {
            assert!(
                Instant::now() < deadline,
                "slot {slot} did not move to {to}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the node at `port` is a primary and the cluster says
    /// `cluster_state:ok` there; how long that took. Panics after `within`.
    pub fn wait_primary(&self, port: u16, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.is_primary(port)
                && matches!(
                    try_command(port, &[b"CLUSTER", b"INFO"], Duration::from_millis(500)),
                    Ok(r) if r.text().contains("cluster_state:ok")
                )
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "node {port} did not become a primary within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The shards of a `CLUSTER SHARDS` reply (RESP2: flat key/value arrays).
pub fn parse_shards(reply: &Resp) -> Vec<Shard> {
    let Resp::Array(shards) = reply else {
        return Vec::new();
    };
    let pairs = |v: &Resp| -> Vec<(String, Resp)> {
        match v {
            Resp::Array(a) => a
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].text(), c[1].clone()))
                .collect(),
            _ => Vec::new(),
        }
    };
    let int = |v: &Resp| match v {
        Resp::Int(n) => Some(*n),
        other => other.text().parse().ok(),
    };
    shards
        .iter()
        .map(|shard| {
            let mut out = Shard {
                ranges: Vec::new(),
                nodes: Vec::new(),
            };
            for (k, v) in pairs(shard) {
                match (k.as_str(), v) {
                    ("slots", Resp::Array(a)) => {
                        let ints: Vec<i64> = a.iter().filter_map(int).collect();
                        for c in ints.chunks(2) {
                            if let [a, b] = c {
                                out.ranges.push((*a as u16, *b as u16));
                            }
                        }
                    }
                    ("nodes", Resp::Array(nodes)) => {
                        for n in nodes {
                            let (mut port, mut role, mut health) =
                                (None, String::new(), String::new());
                            for (k, v) in pairs(&n) {
                                match k.as_str() {
                                    "port" => port = int(&v),
                                    "role" => role = v.text(),
                                    "health" => health = v.text(),
                                    _ => {}
                                }
                            }
                            if let Some(p) = port {
                                out.nodes.push((p as u16, role, health));
                            }
                        }
                    }
                    _ => {}
                }
            }
            out
        })
        .collect()
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
