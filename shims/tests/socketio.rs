//! The socketioxide integration against a real socket.io server (axum +
//! socketioxide on a loopback port) and a real client speaking the
//! engine.io v4 / socket.io v5 polling protocol over plain HTTP/1.1.
#![cfg(feature = "socketioxide")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::socketio::{
    SessionMiddleware, SocketSession, TrySession, disconnect_session, session_room,
};
use session_sockets::{Config, MemoryStore, SessionId, SessionSockets};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::ConnectHandler;
use support::hooked::{Hooked, refused};
use support::sio_client::{Client, client, connected};
use support::{SECRET, config, login};

// ---- the server -------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    io: SocketIo,
    sessions: SessionSockets<Tokio>,
}

/// The connect handler: it only runs for sockets with a session.
async fn on_connect(_socket: SocketRef, _session: SocketSession) {}

/// Registers the event handlers in a middleware, which runs before the
/// client is told it is connected (socketioxide spawns the connect handler
/// after that, too late for a client that emits at once).
async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    socket.on("whoami", async |session: SocketSession, ack: AckSender| {
        let data: Map<String, Value> = session.with(|s| s.data().clone());
        ack.send(&data).ok();
    });
    socket.on(
        "set",
        async |session: SocketSession,
               socketioxide::extract::Data::<(String, Value)>((k, v)),
               ack: AckSender| {
            session.with_mut(|s| s.insert_value(&k, v));
            match session.save().await {
                Ok(()) => ack.send(&json!({ "ok": true })).ok(),
                Err(e) => ack.send(&json!({ "error": format!("{e:?}") })).ok(),
            };
        },
    );
    socket.on("incr", async |session: SocketSession, ack: AckSender| {
        let res = session
            .update(|s| {
                let n = s.get::<i64>("counter").ok().flatten().unwrap_or(0) + 1;
                s.insert("counter", n).ok();
                n
            })
            .await;
        match res {
            Ok(n) => ack.send(&n).ok(),
            Err(e) => ack.send(&json!({ "error": format!("{e:?}") })).ok(),
        };
    });
    socket.on("reload", async |session: SocketSession, ack: AckSender| {
        match session.reload().await {
            Ok(s) => ack.send(s.data()).ok(),
            Err(e) => ack.send(&json!({ "error": e.reason() })).ok(),
        };
    });
    socket.on(
        "rooms",
        async |socket: SocketRef, session: SocketSession, ack: AckSender| {
            ack.send(&json!({ "rooms": socket.rooms(), "room": session.room() }))
                .ok();
        },
    );
    socket.on("destroy", async |session: SocketSession, ack: AckSender| {
        ack.send(&json!({ "ok": session.destroy().await.is_ok() }))
            .ok();
    });
    Ok(())
}

/// The seed's `(err, socket, session)`: the handler sees the error.
async fn on_connect_optional(socket: SocketRef, TrySession(session): TrySession) {
    let hello = match &session {
        Ok(s) => json!({ "user": s.with(|s| s.get::<String>("user").unwrap()) }),
        Err(e) => json!({ "error": e.reason() }),
    };
    socket.emit("hello", &hello).ok();
}

async fn server(config: Config) -> Server {
    server_on(config, Arc::new(MemoryStore::new())).await
}

async fn server_on(config: Config, store: Arc<dyn session_sockets::store::Store>) -> Server {
    let sessions = SessionSockets::new(config, store);
    let (layer, io) = SocketIo::new_layer();
    io.ns(
        "/",
        on_connect
            .with(register)
            .with(SessionMiddleware::required(sessions.clone())),
    );
    io.ns(
        "/chat",
        on_connect
            .with(register)
            .with(SessionMiddleware::required(sessions.clone())),
    );
    io.ns(
        "/open",
        on_connect_optional.with(SessionMiddleware::optional(sessions.clone())),
    );
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, io, sessions }
}

// ---- tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractor_hands_the_http_session_to_connect_and_message_handlers() {
    let srv = server(config()).await;
    let (_, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    let me = client(move || c.call("/", "whoami", &[])).await;
    assert_eq!(me, json!({ "user": "ada" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_rejects_without_a_valid_session_and_connect_error_names_the_reason() {
    let srv = server(config()).await;
    let (_, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    // The same id signed with another secret.
    let forged = {
        let sid = cookie
            .strip_prefix("connect.sid=s%3A")
            .unwrap()
            .split('.')
            .next()
            .unwrap();
        let other = Config::builder().secret("not the secret").build().unwrap();
        format!("connect.sid={}", other.sign(sid).replace(':', "%3A"))
    };
    let unknown = {
        let c = config();
        format!(
            "connect.sid={}",
            c.sign("nosuchsessionid").replace(':', "%3A")
        )
    };
    let addr = srv.addr;
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(Headers, &str, &str)> = vec![
        (vec![], "no_cookie_header", "not signed in"),
        (
            vec![("cookie", "other=1".into())],
            "cookie_absent",
            "not signed in",
        ),
        (
            vec![("cookie", forged)],
            "signature_invalid",
            "not valid here",
        ),
        (
            vec![("cookie", "connect.sid=plain".into())],
            "unsigned",
            "not valid here",
        ),
        (vec![("cookie", unknown)], "session_not_found", "has ended"),
        (
            vec![
                ("cookie", cookie.clone()),
                ("origin", "https://evil.example".into()),
            ],
            "origin_rejected",
            "another site",
        ),
    ];
    for (headers, reason, hint) in cases {
        let msg = client(move || {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let mut c = Client::open(addr, &h);
            c.connect("/chat").unwrap_err()
        })
        .await;
        assert!(
            msg.starts_with(&format!("{reason}: ")),
            "{reason}: got {msg:?}"
        );
        assert!(
            msg.contains(hint),
            "{reason}: {msg:?} should mention {hint:?}"
        );
        assert!(!msg.contains(SECRET));
        // R35: what to check is for the operator's log, not the client.
        for internal in ["connect.sid", "secret", "evil.example", "store"] {
            assert!(
                !msg.contains(internal),
                "{reason}: {msg:?} names {internal:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r05_an_origin_of_the_same_host_passes() {
    let srv = server(config()).await;
    let (_, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let addr = srv.addr;
    let own = format!("http://{addr}");
    let ok = client(move || {
        let mut c = Client::open(addr, &[("cookie", &cookie), ("origin", &own)]);
        c.connect("/")
    })
    .await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_mode_lets_the_connection_through_with_the_error_for_the_handler() {
    let srv = server(config()).await;
    let (_, cookie) = login(&srv.sessions, json!({ "user": "grace" })).await;
    let addr = srv.addr;
    let (anon, known) = client(move || {
        let mut a = Client::open(addr, &[]);
        a.connect("/open").unwrap();
        let anon = a.event("/open", "hello");
        let mut k = Client::open(addr, &[("cookie", &cookie)]);
        k.connect("/open").unwrap();
        (anon, k.event("/open", "hello"))
    })
    .await;
    assert_eq!(anon, json!({ "error": "no_cookie_header" }));
    assert_eq!(known, json!({ "user": "grace" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_from_a_handler_is_what_http_sees_and_reload_sees_http_changes() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let addr = srv.addr;
    let mut c = client(move || {
        let mut c = Client::open(addr, &[("cookie", &cookie)]);
        c.connect("/").unwrap();
        assert_eq!(
            c.call("/", "set", &[json!("theme"), json!("dark")]),
            json!({ "ok": true })
        );
        c
    })
    .await;
    let http_side = srv.sessions.reload(&id).await.unwrap();
    assert_eq!(
        http_side.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );

    // An HTTP route changes the session; the socket's getSession sees it.
    let mut s = http_side;
    s.insert("lang", "fr").unwrap();
    srv.sessions.save(s).await.unwrap();
    let seen = client(move || c.call("/", "reload", &[])).await;
    assert_eq!(
        seen,
        json!({ "user": "ada", "theme": "dark", "lang": "fr" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_socket_save_keeps_keys_an_http_route_wrote_meanwhile() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada", "counter": 0 })).await;
    let mut c = connected(srv.addr, &cookie).await;
    // After the socket loaded the session, HTTP writes two keys.
    let mut s = srv.sessions.reload(&id).await.unwrap();
    s.insert("cart", json!(["book"])).unwrap();
    s.insert("counter", 10).unwrap();
    srv.sessions.save(s).await.unwrap();
    // The socket's stale copy: `set` keeps HTTP's cart; `incr` (an update)
    // re-runs on the current record, so it counts from 10.
    let (set, n) = client(move || {
        (
            c.call("/", "set", &[json!("theme"), json!("dark")]),
            c.call("/", "incr", &[]),
        )
    })
    .await;
    assert_eq!(set, json!({ "ok": true }));
    assert_eq!(n, json!(11));
    let now = srv.sessions.reload(&id).await.unwrap();
    assert_eq!(
        Value::Object(now.data().clone()),
        json!({ "user": "ada", "counter": 11, "cart": ["book"], "theme": "dark" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r24_a_socket_save_after_a_logout_it_never_heard_of_does_not_resurrect_the_session() {
    // The session ends behind the server's back (no store events), so its
    // socket stays connected and saves: the save fails and brings nothing
    // back, and the socket, now known to have no session, is disconnected
    // with the reason (R32).
    let store = Arc::new(Hooked::default().without_events());
    let srv = server_on(config(), store.clone()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    store
        .inner()
        .destroy(format!("sess:{}", id.expose()).as_bytes())
        .await
        .unwrap();
    let ended = client(move || {
        c.send(r#"42["set","theme","dark"]"#);
        let ended = c.event("/", "session_ended");
        c.disconnected("/");
        ended
    })
    .await;
    assert_eq!(ended["reason"], json!("destroyed"));
    assert_eq!(
        srv.sessions.reload(&id).await.unwrap_err().reason(),
        "session_not_found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r09_disconnect_session_closes_that_sessions_sockets_on_every_namespace_only() {
    let srv = server(config()).await;
    let (leaving, c1) = login(&srv.sessions, json!({ "user": "leaving" })).await;
    let (_, c2) = login(&srv.sessions, json!({ "user": "staying" })).await;
    let addr = srv.addr;
    let (mut a, mut b) = client(move || {
        let mut a = Client::open(addr, &[("cookie", &c1)]);
        a.connect("/").unwrap();
        a.connect("/chat").unwrap();
        let mut b = Client::open(addr, &[("cookie", &c2)]);
        b.connect("/chat").unwrap();
        (a, b)
    })
    .await;
    srv.sessions.destroy(&leaving).await.unwrap();
    disconnect_session(&srv.io, &leaving).await.unwrap();
    let still = client(move || {
        a.disconnected("/");
        a.disconnected("/chat");
        b.call("/chat", "whoami", &[])
    })
    .await;
    assert_eq!(still, json!({ "user": "staying" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r16_sockets_join_a_room_named_by_the_sha256_of_the_id_never_the_id() {
    // SHA-256("abc") is ba7816bf8f01cfea414140de5dae2223... (FIPS 180-2
    // appendix B.1); its first 16 bytes in base64url without padding:
    assert_eq!(
        session_room(&SessionId::new("abc")),
        "ungWv48Bz-pBQUDeXa4iIw"
    );
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    let got = client(move || c.call("/", "rooms", &[])).await;
    let room = session_room(&id);
    assert_eq!(got["room"], json!(room));
    assert!(got["rooms"].as_array().unwrap().contains(&json!(room)));
    assert!(!got.to_string().contains(id.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_from_a_handler_ends_the_session_for_http_too() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    let res = client(move || c.call("/", "destroy", &[])).await;
    assert_eq!(res, json!({ "ok": true }));
    assert!(srv.sessions.reload(&id).await.is_err());
}

#[test]
fn r06_later_requests_of_a_connection_must_pass_the_origin_policy() {
    use http::{HeaderMap, HeaderValue, Uri, header};
    use session_sockets::socketio::check_later_origin;

    let config = config();
    let headers = |origin: Option<&'static str>| {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("chat.example"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    };
    let open: Uri = "/socket.io/?EIO=4&transport=polling".parse().unwrap();
    let upgrade: Uri = "/socket.io/?EIO=4&transport=websocket&sid=abc"
        .parse()
        .unwrap();
    let evil = headers(Some("https://evil.example"));
    // The opening request is the session middleware's to refuse.
    assert!(check_later_origin(&config, &open, &evil).is_ok());
    let err = check_later_origin(&config, &upgrade, &evil).unwrap_err();
    assert_eq!(err.reason(), "origin_rejected");
    let msg = err.to_string();
    assert!(msg.starts_with("origin_rejected: "), "{msg}");
    assert!(
        msg.contains("`https://evil.example` is not allowed"),
        "{msg}"
    );
    assert!(check_later_origin(&config, &upgrade, &headers(Some("https://chat.example"))).is_ok());
    assert!(check_later_origin(&config, &upgrade, &headers(None)).is_ok());
    let null = check_later_origin(&config, &upgrade, &headers(Some("null"))).unwrap_err();
    assert_eq!(null.reason(), "origin_rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_session_for_a_client_from_outside_its_handlers() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let _c = connected(srv.addr, &cookie).await;
    let sockets = srv.io.sockets();
    assert_eq!(sockets.len(), 1);
    let session = SocketSession::of(&sockets[0]).unwrap();
    assert_eq!(session.id(), &id);
    // getSession sees an HTTP change, then the end of the session.
    let mut s = srv.sessions.reload(&id).await.unwrap();
    s.insert("lang", "fr").unwrap();
    srv.sessions.save(s).await.unwrap();
    let fresh = session.reload().await.unwrap();
    assert_eq!(fresh.get::<String>("lang").unwrap().as_deref(), Some("fr"));
    assert_eq!(
        session
            .with(|s| s.get::<String>("lang").unwrap())
            .as_deref(),
        Some("fr")
    );
    srv.sessions.destroy(&id).await.unwrap();
    assert_eq!(
        session.reload().await.unwrap_err().reason(),
        "session_not_found"
    );
}

/// R35: a store outage, a record of the wrong type and a malformed cookie
/// reach the client as a reason code and a hint, never the store's address,
/// its message or what to check.
/// Everything this test binary logs, at every level.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    }))
}

struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r35_connect_errors_carry_a_reason_and_a_hint_never_internals() {
    let logs = captured_logs();
    let cookie = format!(
        "connect.sid={}",
        config().sign("someid").replace(':', "%3A")
    );
    // A store that is down: every call fails with what a Redis client
    // says, the address included.
    let down = server_on(config(), Arc::new(Hooked::failing(refused))).await;
    let store = Arc::new(MemoryStore::new());
    // Another application's value under the session's key.
    session_sockets::store::Store::create(
        &*store,
        b"sess:someid",
        b"[1,2,3]",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let wrong_type = server_on(config(), store).await;
    let plain = server(config()).await;
    let cases = [
        (
            down.addr,
            cookie.clone(),
            "store_error",
            "try again shortly",
        ),
        (wrong_type.addr, cookie, "malformed_record", "sign in again"),
        (
            plain.addr,
            // Not valid percent-encoding: express-session keeps it raw, so
            // it lacks the `s:` prefix.
            "connect.sid=s%3Asomeid.%E0%A4%A".to_owned(),
            "unsigned",
            "not valid here",
        ),
    ];
    for (addr, cookie, reason, hint) in cases {
        let msg = client(move || {
            let mut c = Client::open(addr, &[("cookie", &cookie)]);
            c.connect("/").unwrap_err()
        })
        .await;
        assert!(msg.starts_with(&format!("{reason}: ")), "{msg:?}");
        assert!(msg.contains(hint), "{msg:?}");
        for internal in [
            "6399",
            "127.0.0.1",
            "Redis",
            "refused",
            "os error",
            "express-session",
            "key prefix",
            "secret",
        ] {
            assert!(!msg.contains(internal), "{msg:?} names {internal:?}");
        }
    }
    // The operator's log has the detail: the store's message and its cause,
    // once, at warn, with the reason code.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let warned: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("6399"))
        .collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert!(
        warned[0].contains("reason=\"store_error\""),
        "{}",
        warned[0]
    );
    assert!(
        warned[0].contains("Connection refused (os error 111)"),
        "{}",
        warned[0]
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("malformed_record") && l.contains("WARN")),
        "{logs}"
    );
}
