//! What the test servers (`redis_server.rs`, `redis_cluster.rs`) share:
//! finding `redis-server`, and commands over a plain `TcpStream` in RESP.
//! Standard library only; each includes it with
//! `#[path = "resp.rs"] mod resp;` (resolved next to the including file).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// A reply to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    /// `+OK` and other simple strings.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bulk bytes.
    Bulk(Vec<u8>),
    /// `$-1` / `*-1`.
    Nil,
    /// `*n`.
    Array(Vec<Resp>),
}

impl Resp {
    /// The bytes of a bulk or simple string, as text.
    pub fn text(&self) -> String {
        match self {
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Simple(s) | Resp::Error(s) => s.clone(),
            Resp::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// The `redis-server` binary: `$REDIS_SERVER`, else the first on `PATH`
/// (or in /usr/bin, /usr/local/bin). Panics with what to install.
pub fn find_redis_server() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in candidates
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
    {
        let p = dir.join("redis-server");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "redis-server not found on PATH (or in $REDIS_SERVER). These tests start a real Redis: \
         install it with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`, \
         or run examples/express-interop/ensure-deps.sh"
    );
}

/// Runs one command on a fresh connection to `port` with a time budget.
pub fn try_command(port: u16, args: &[&[u8]], budget: Duration) -> Result<Resp, String> {
    try_commands(port, &[args], budget)?
        .pop()
        .ok_or_else(|| "no reply".to_owned())
}

/// Runs several commands on one fresh connection to `port` (pipelined);
/// their replies, in order.
pub fn try_commands(port: u16, cmds: &[&[&[u8]]], budget: Duration) -> Result<Vec<Resp>, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, budget).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(budget))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(budget))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for args in cmds {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in *args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
    stream.write_all(&out).map_err(|e| format!("write: {e}"))?;
    let mut reader = BufReader::new(stream);
    cmds.iter().map(|_| read_resp(&mut reader)).collect()
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if !line.ends_with("\r\n") {
        return Err("connection closed mid-reply".into());
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_resp(r: &mut impl BufRead) -> Result<Resp, String> {
    let line = read_line(r)?;
    let (tag, rest) = line.split_at(1.min(line.len()));
    let n = || {
        rest.parse::<i64>()
            .map_err(|e| format!("bad length {rest:?}: {e}"))
    };
    match tag {
        "+" => Ok(Resp::Simple(rest.to_owned())),
        "-" => Ok(Resp::Error(rest.to_owned())),
        ":" => Ok(Resp::Int(n()?)),
        "$" => {
            let len = n()?;
            if len < 0 {
                return Ok(Resp::Nil);
            }
            let mut buf = vec![0; len as usize + 2];
            r.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
            buf.truncate(len as usize);
            Ok(Resp::Bulk(buf))
        }
        "*" => {
            let len = n()?;
            if len < 0 {
                return Ok(Resp::Nil);
            }
            (0..len)
                .map(|_| read_resp(r))
                .collect::<Result<_, _>>()
                .map(Resp::Array)
        }
        _ => Err(format!("unexpected reply line {line:?}")),
    }
}
