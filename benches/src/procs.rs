//! Processes the benches start on loopback: a redis-server, and the chat
//! example. Each is killed when its handle is dropped.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed on drop.
pub struct Proc(Child);

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// The CPU time process `pid` has used so far (all its threads, from
/// `/proc/PID/task/*/schedstat`, nanosecond resolution).
pub fn cpu_time(pid: u32) -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The resident memory of process `pid` in bytes (`VmRSS`), 0 if unknown.
pub fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A redis-server with its default settings (no persistence) on a free
/// loopback port; its URL.
///
/// `REDIS_CPU=N` pins it to CPU `N` (with `taskset`), as the end-to-end
/// runs place it: a round trip to a Redis on another CPU wakes it there,
/// which costs the caller more than one on its own CPU.
pub fn redis() -> Result<(Proc, String), String> {
    let port = free_port()?;
    let mut command = match std::env::var("REDIS_CPU") {
        Ok(cpu) if !cpu.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu, "redis-server"]);
            c
        }
        _ => Command::new("redis-server"),
    };
    let child = command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server ({e}): apt-get install redis-server"))?;
    let redis = Proc(child);
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            return Err("redis-server did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((redis, format!("redis://127.0.0.1:{port}/")))
}

/// The chat binary next to the running one (`cargo build --release --bin
/// chat`; `BENCH_CHAT=path` names another), started with `args` on a free
/// port; its address once it listens.
pub fn chat(args: &[&str]) -> Result<(Proc, SocketAddr), String> {
    // `BENCH_CHAT=path`: another chat binary (an older build, for a
    // before/after run).
    let bin = match std::env::var_os("BENCH_CHAT") {
        Some(path) if !path.is_empty() => std::path::PathBuf::from(path),
        _ => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("chat"),
    };
    // `BENCH_SERVER_CPU=N`: the server pinned to CPU N (with taskset), away
    // from the bench's own load.
    let pin = std::env::var("BENCH_SERVER_CPU")
        .ok()
        .filter(|cpu| !cpu.is_empty() && cpu.bytes().all(|b| b.is_ascii_digit()));
    let mut command = match &pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    let mut child = command
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({e}): build it with cargo build --release --bin chat",
                bin.display()
            )
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the chat did not say where it listens: {line:?}"))?;
    Ok((proc, addr))
}
