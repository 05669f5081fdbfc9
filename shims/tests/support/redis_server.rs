//! A real `redis-server` for tests: started on a free loopback port in its
//! own temporary directory, with persistence off and the keyspace
//! notifications `RedisStore` needs (`notify-keyspace-events Kg$xe`; see
//! [`RedisServer::start_with_defaults`] for a server with none), and killed
//! on drop.
//!
//! The test binaries reach it as `support::redis_server`. Standard library
//! only and self-contained, so other code can include the file with
//! `#[path]` (the unit tests of `shims/src/socketio/redis.rs` do).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

// Each server file stands alone (others include it by `#[path]`), so a
// binary with both loads this twice: two copies of a few small items.
#[allow(clippy::duplicate_mod)]
#[path = "resp.rs"]
mod resp;
pub use resp::Resp;
use resp::find_redis_server;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// `notify-keyspace-events` as started.
    events: &'static str,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts a fresh server on a free loopback port and waits until it
    /// answers `PING`.
    pub fn start() -> Self {
        Self::start_with_events("Kg$xe")
    }

    /// Like [`RedisServer::start`], with Redis's default settings
    /// (`notify-keyspace-events ""`: no keyspace notifications).
    pub fn start_with_defaults() -> Self {
        Self::start_with_events("")
    }

    fn start_with_events(events: &'static str) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Self::try_start_on(port, events) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    fn try_start_on(port: u16, events: &'static str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "session-sockets-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let child = Command::new(find_redis_server())
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .args(["--daemonize", "no"])
            .args(["--notify-keyspace-events", events])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let mut server = RedisServer {
            child: Some(child),
            port,
            dir,
            events,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "redis-server exited at start ({status}); port {port} busy?"
                ));
            }
            if server.ping() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether the server answers `PING` right now (200 ms budget).
    pub fn ping(&self) -> bool {
        matches!(self.try_command(&[b"PING"], Duration::from_millis(200)), Ok(Resp::Simple(s)) if s == "PONG")
    }

    /// Kills the server (SIGKILL) and waits for it; the port is free after.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new server on the same port (after [`kill`](Self::kill)),
    /// empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_start_on(self.port, self.events) {
                Ok(mut fresh) => {
                    self.child = fresh.child.take();
                    let _ = std::fs::remove_dir_all(&fresh.dir);
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("restart redis-server: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            // The shell's builtin `kill`: /bin/sh is always there, the
            // procps `kill` binary is not on minimal systems.
            let status = Command::new("sh")
                .args(["-c", &format!("kill {sig} {}", child.id())])
                .status()
                .expect("run sh -c kill");
            assert!(status.success(), "kill {sig} failed");
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Runs one command on a fresh connection and returns the reply.
    /// Panics if the server does not answer within 5 s.
    pub fn command(&self, args: &[&[u8]]) -> Resp {
        self.try_command(args, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("redis command failed: {e}"))
    }

    /// `GET key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.command(&[b"GET", key.as_bytes()]) {
            Resp::Bulk(b) => Some(b),
            Resp::Nil => None,
            other => panic!("GET: unexpected reply {other:?}"),
        }
    }

    /// `TTL key` (-2: no key, -1: no expiry).
    pub fn ttl(&self, key: &str) -> i64 {
        match self.command(&[b"TTL", key.as_bytes()]) {
            Resp::Int(n) => n,
            other => panic!("TTL: unexpected reply {other:?}"),
        }
    }

    /// Runs one command with a time budget.
    pub fn try_command(&self, args: &[&[u8]], budget: Duration) -> Result<Resp, String> {
        resp::try_command(self.port, args, budget)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL also ends a paused (SIGSTOPped) server.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
