//! A minimal socket.io client speaking the engine.io v4 / socket.io v5
//! polling protocol over plain HTTP/1.1, for the tests of `shims/`: enough
//! to connect to namespaces, emit with acks, receive events and see a
//! disconnect. And the events the test servers answer it with.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};
use session_sockets::socketio::SocketSession;
use socketioxide::extract::{AckSender, Data, SocketRef};

/// Runs blocking client code off the runtime's workers, for at most 20 s.
pub async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::time::timeout(Duration::from_secs(20), tokio::task::spawn_blocking(f))
        .await
        .expect("the client step took over 20 s")
        .unwrap()
}

/// The events the live and HTTP test servers answer: `whoami` acks the
/// session's data; `set` with a key and a value inserts it, saves, and acks
/// whether the save worked.
pub fn on_whoami_and_set(socket: &SocketRef) {
    socket.on("whoami", async |session: SocketSession, ack: AckSender| {
        ack.send(&session.with(|s| s.data().clone())).ok();
    });
    socket.on(
        "set",
        async |session: SocketSession, Data::<(String, Value)>((k, v)), ack: AckSender| {
            session.with_mut(|s| s.insert_value(&k, v));
            ack.send(&session.save().await.is_ok()).ok();
        },
    );
}

/// A client whose handshake sent `cookie`, connected to namespace `/`.
pub async fn connected(addr: SocketAddr, cookie: &str) -> Client {
    let cookie = cookie.to_owned();
    client(move || {
        let mut c = Client::open(addr, &[("cookie", &cookie)]);
        c.connect("/").unwrap();
        c
    })
    .await
}

pub struct Client {
    addr: SocketAddr,
    headers: Vec<(String, String)>,
    sid: String,
    ack: u64,
    /// Packets received but not yet consumed.
    inbox: Vec<String>,
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// Every value of header `name` (lowercase).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request; `(status, body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let r = request(addr, method, path, headers, body);
    (r.status, r.body)
}

/// One HTTP/1.1 request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let has_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !has_type {
        req.push_str("Content-Type: text/plain;charset=UTF-8\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        panic!(
            "{method} {path}: {e}; got {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (len, rest) = s.split_once("\r\n").unwrap();
        let len = usize::from_str_radix(len.trim(), 16).unwrap();
        if len == 0 {
            return out;
        }
        out.push_str(&rest[..len]);
        s = &rest[len + 2..];
    }
}

impl Client {
    /// Opens an engine.io session (the handshake request carries `headers`).
    pub fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let (status, body) = http(
            addr,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            &headers,
            "",
        );
        assert_eq!(status, 200, "{body}");
        let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
        Client {
            addr,
            headers,
            sid: open["sid"].as_str().unwrap().to_owned(),
            ack: 0,
            inbox: Vec::new(),
        }
    }

    pub fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    pub fn send(&self, packet: &str) {
        let (status, body) = http(self.addr, "POST", &self.path(), &self.headers, packet);
        assert_eq!((status, body.as_str()), (200, "ok"));
    }

    /// Long-polls once; engine.io pings are answered, socket.io packets
    /// kept in the inbox.
    pub fn poll(&mut self) {
        let (status, body) = http(self.addr, "GET", &self.path(), &self.headers, "");
        assert_eq!(status, 200, "{body}");
        for p in body.split('\u{1e}') {
            match p.as_bytes().first() {
                Some(b'2') => self.send("3"),
                Some(b'4') => self.inbox.push(p[1..].to_owned()),
                Some(b'1') => self.inbox.push("<engine.io closed>".to_owned()),
                _ => {}
            }
        }
    }

    /// The first received socket.io packet that satisfies `pred`.
    pub fn take(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            if let Some(i) = self.inbox.iter().position(|p| pred(p)) {
                return self.inbox.remove(i);
            }
            self.poll();
        }
    }

    /// Connects to namespace `ns`: `Ok(connect payload)` or
    /// `Err(connect_error message)`.
    pub fn connect(&mut self, ns: &str) -> Result<Value, String> {
        let pre = prefix(ns);
        self.send(&format!("40{pre}"));
        let (ok, err) = (format!("0{pre}"), format!("4{pre}"));
        let p = self.take(|p| p.starts_with(&ok) || p.starts_with(&err));
        let v: Value = serde_json::from_str(&p[ok.len()..]).unwrap();
        if p.starts_with(&ok) {
            Ok(v)
        } else {
            Err(v["message"].as_str().unwrap().to_owned())
        }
    }

    /// Emits `event` with `args` on `ns` and waits for its ack.
    pub fn call(&mut self, ns: &str, event: &str, args: &[Value]) -> Value {
        self.ack += 1;
        let mut arr = vec![json!(event)];
        arr.extend_from_slice(args);
        let pre = prefix(ns);
        self.send(&format!("42{pre}{}{}", self.ack, Value::Array(arr)));
        let want = format!("3{pre}{}[", self.ack);
        let p = self.take(|p| p.starts_with(&want));
        let v: Value = serde_json::from_str(&p[want.len() - 1..]).unwrap();
        v[0].clone()
    }

    /// Waits for an event `name` on `ns`; returns its first argument.
    pub fn event(&mut self, ns: &str, name: &str) -> Value {
        let want = format!("2{}[{}", prefix(ns), json!(name));
        let p = self.take(|p| p.starts_with(&want));
        let v: Value = serde_json::from_str(&p[1 + prefix(ns).len()..]).unwrap();
        v[1].clone()
    }

    /// Waits until the server disconnects this client from `ns`.
    pub fn disconnected(&mut self, ns: &str) {
        let want = format!("1{}", prefix(ns));
        self.take(|p| p == want || p == "<engine.io closed>");
    }
}

fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}
