//! A minimal Engine.IO 4 / Socket.IO 5 client for the load generator and
//! the live-sessions bench: an HTTP/1.1 keep-alive client for login and
//! polling, and WebSocket connections through the whole handshake.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Logs in with `POST /login` (form `name=bench`); the session cookie pair.
pub async fn login(addr: SocketAddr) -> Result<String, String> {
    login_as(addr, "bench").await
}

/// Logs in as `name`; the session cookie pair.
pub async fn login_as(addr: SocketAddr, name: &str) -> Result<String, String> {
    let mut http = Http::connect(addr).await?;
    login_on(&mut http, name).await
}

/// Logs in as `name` on the keep-alive connection `http`; the session
/// cookie pair.
pub async fn login_on(http: &mut Http, name: &str) -> Result<String, String> {
    let addr = http.addr;
    let res = http
        .request(
            "POST",
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &format!("http://{addr}")),
            ],
            format!("name={name}").as_bytes(),
        )
        .await?;
    res.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .find(|p| p.starts_with("connect.sid="))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "POST /login answered {} without a connect.sid cookie",
                res.status
            )
        })
}

/// A WebSocket connection.
pub type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A WebSocket connection connected to the main namespace. With `sid`, it
/// upgrades that polling session (probe, then upgrade packet) instead of
/// opening a new one.
pub async fn open_websocket(
    addr: SocketAddr,
    cookie: &str,
    sid: Option<&str>,
) -> Result<Ws, String> {
    open_websocket_from(addr, cookie, sid, None).await
}

/// [`open_websocket`] from the loopback source address `from` (one source
/// address has about 28,000 ephemeral ports: more sockets need several).
pub async fn open_websocket_from(
    addr: SocketAddr,
    cookie: &str,
    sid: Option<&str>,
    from: Option<std::net::IpAddr>,
) -> Result<Ws, String> {
    let url = match sid {
        Some(sid) => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        None => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
    };
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        "cookie",
        HeaderValue::from_str(cookie).map_err(|e| e.to_string())?,
    );
    h.insert(
        "origin",
        HeaderValue::from_str(&format!("http://{addr}")).map_err(|e| e.to_string())?,
    );
    let tcp = match from {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = match ip {
                std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }
            .map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
            socket.connect(addr).await
        }
    }
    .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    if sid.is_some() {
        ws.send(Message::text("2probe"))
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut ws, |t| t == "3probe").await?;
        ws.send(Message::text("5"))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(ws);
    }
    expect(&mut ws, |t| t.starts_with("0{")).await?;
    ws.send(Message::text("40"))
        .await
        .map_err(|e| e.to_string())?;
    expect(&mut ws, |t| t.starts_with("40{")).await?;
    Ok(ws)
}

/// Reads until a text message satisfying `want`, answering pings; a
/// connect error (`44{..}`) fails.
pub async fn expect(ws: &mut Ws, want: impl Fn(&str) -> bool) -> Result<(), String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if want(t) {
                    return Ok(());
                }
                if t == "2" {
                    ws.send(Message::text("3"))
                        .await
                        .map_err(|e| e.to_string())?;
                } else if t.starts_with("44") {
                    return Err(format!("connect_error {t}"));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed during the handshake".to_owned()),
        }
    }
}

/// A polling session connected to the main namespace: its sid and the
/// keep-alive HTTP connection it used.
pub async fn open_polling(addr: SocketAddr, cookie: &str) -> Result<(String, Http), String> {
    let mut http = Http::connect(addr).await?;
    let origin = format!("http://{addr}");
    let headers = [("cookie", cookie), ("origin", origin.as_str())];
    let open = http
        .request("GET", "/socket.io/?EIO=4&transport=polling", &headers, b"")
        .await?;
    let body = String::from_utf8_lossy(&open.body);
    let sid = body
        .strip_prefix("0{\"sid\":\"")
        .and_then(|r| r.split('"').next())
        .ok_or_else(|| format!("unexpected open packet ({}): {body:.80}", open.status))?
        .to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let posted = http.request("POST", &path, &headers, b"40").await?;
    if posted.status != 200 {
        return Err(format!("POST 40 answered {}", posted.status));
    }
    loop {
        let polled = http.request("GET", &path, &headers, b"").await?;
        let body = String::from_utf8_lossy(&polled.body).into_owned();
        for packet in body.split('\u{1e}') {
            if packet.starts_with("40{") {
                return Ok((sid, http));
            }
            if packet.starts_with("44") {
                return Err(format!("connect_error {packet}"));
            }
            if packet == "2" {
                http.request("POST", &path, &headers, b"3").await?;
            }
        }
    }
}

/// A minimal keep-alive HTTP/1.1 client (Content-Length and chunked
/// responses).
pub struct Http {
    addr: SocketAddr,
    io: BufReader<TcpStream>,
}

/// An HTTP response.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Http {
    /// A keep-alive connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Http, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Http {
            addr,
            io: BufReader::new(tcp),
        })
    }

    /// Sends one request and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.addr);
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if method != "GET" {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("content-type: text/plain;charset=UTF-8\r\n");
            }
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let w = self.io.get_mut();
        w.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        w.write_all(body).await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.io
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.io
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.io
                    .read_line(&mut line)
                    .await
                    .map_err(|e| e.to_string())?;
                let len = usize::from_str_radix(line.trim(), 16).map_err(|e| e.to_string())?;
                let mut chunk = vec![0; len + 2];
                self.io
                    .read_exact(&mut chunk)
                    .await
                    .map_err(|e| e.to_string())?;
                if len == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..len]);
            }
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            self.io
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}
