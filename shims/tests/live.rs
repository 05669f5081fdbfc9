//! Live sessions (R32) with a real socket.io server on MemoryStore: sockets
//! follow their session wherever it changes or ends. Changes made "behind
//! the server's back" go to the store directly, as another process or an
//! Express app would make them.
#![cfg(feature = "socketioxide")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::socketio::{SessionMiddleware, SocketSession};
use session_sockets::store::{CasOutcome, Store, StoreEvent};
use session_sockets::{Config, SessionId, SessionSockets};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler;
use support::hooked::{Call, Hooked};
use support::sio_client::{Client, client, connected, on_whoami_and_set};
use support::{config, config_with, login};

struct Server {
    addr: SocketAddr,
    /// A MemoryStore that counts calls and can break its event stream on
    /// demand.
    store: Arc<Hooked>,
    sessions: SessionSockets<Tokio>,
}

async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    on_whoami_and_set(&socket);
    Ok(())
}

async fn server(config: Config) -> Server {
    let store = Arc::new(Hooked::default());
    let sessions = SessionSockets::new(config, store.clone() as Arc<dyn Store>);
    let (layer, io) = SocketIo::new_layer();
    io.ns(
        "/",
        (async |_: SocketRef, _: SocketSession| {})
            .with(register)
            .with(SessionMiddleware::required(sessions.clone())),
    );
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        store,
        sessions,
    }
}

/// Writes `data` into the stored record directly, as another process would.
async fn write_behind(srv: &Server, id: &SessionId, k: &str, v: Value) {
    let key = format!("sess:{}", id.expose());
    let cur = srv
        .store
        .inner()
        .load(key.as_bytes())
        .await
        .unwrap()
        .unwrap();
    let mut rec: Value = serde_json::from_slice(&cur).unwrap();
    rec[k] = v;
    let new = serde_json::to_vec(&rec).unwrap();
    let out = srv
        .store
        .inner()
        .compare_and_set(key.as_bytes(), &cur, &new, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(out, CasOutcome::Swapped);
}

/// Polls `whoami` until `pred` holds (at most 5 s); the last answer.
fn whoami_until(c: &mut Client, pred: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let me = c.call("/", "whoami", &[]);
        if pred(&me) || Instant::now() > until {
            return me;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_a_change_made_elsewhere_is_seen_by_the_socket_without_a_reload() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    write_behind(&srv, &id, "color", json!("red")).await;
    let me = client(move || whoami_until(&mut c, |me| me["color"] == "red")).await;
    assert_eq!(me, json!({ "user": "ada", "color": "red" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_a_write_through_the_handle_refreshes_the_sessions_other_sockets_with_no_reload() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let a = connected(srv.addr, &cookie).await;
    let mut b = connected(srv.addr, &cookie).await;
    let loads = srv.store.count(Call::Load);
    let (ok, _a) = client(move || {
        let mut a = a;
        (a.call("/", "set", &[json!("theme"), json!("dark")]), a)
    })
    .await;
    assert_eq!(ok, json!(true));
    let me = client(move || whoami_until(&mut b, |me| me["theme"] == "dark")).await;
    assert_eq!(me["theme"], json!("dark"), "the other socket sees the save");
    // Neither the writer's own save nor the other socket's refresh loaded
    // the record again.
    assert_eq!(srv.store.count(Call::Load), loads, "needless reloads");
    assert!(
        srv.sessions
            .reload(&id)
            .await
            .unwrap()
            .get::<String>("theme")
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_deleted_or_expired_elsewhere_the_socket_is_told_why_and_disconnected() {
    let srv = server(config()).await;
    let (gone, c1) = login(&srv.sessions, json!({ "user": "gone" })).await;
    let (_, c2) = login(&srv.sessions, json!({ "user": "stays" })).await;
    let mut a = connected(srv.addr, &c1).await;
    let mut b = connected(srv.addr, &c2).await;
    srv.store
        .inner()
        .destroy(format!("sess:{}", gone.expose()).as_bytes())
        .await
        .unwrap();
    let ended = client(move || {
        let e = a.event("/", "session_ended");
        a.disconnected("/");
        e
    })
    .await;
    assert_eq!(ended["reason"], json!("destroyed"));
    // Only that session's socket.
    let (me, b2) = client(move || (b.call("/", "whoami", &[]), b)).await;
    assert_eq!(me["user"], json!("stays"));
    b = b2;
    // Now the other one expires: its record's TTL runs out in the store.
    let (short, c3) = login(&srv.sessions, json!({ "user": "short" })).await;
    let mut c = connected(srv.addr, &c3).await;
    srv.store
        .inner()
        .touch(
            format!("sess:{}", short.expose()).as_bytes(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let ended = client(move || {
        let e = c.event("/", "session_ended");
        c.disconnected("/");
        e
    })
    .await;
    assert_eq!(ended["reason"], json!("expired"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (me, _b) = client(move || (b.call("/", "whoami", &[]), b)).await;
    assert_eq!(me["user"], json!("stays"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_keep_alive_touches_a_connected_session_and_stops_when_it_disconnects() {
    let srv = server(config_with(|b| {
        b.keep_alive(Some(Duration::from_millis(500)))
    }))
    .await;
    let (_, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let c = connected(srv.addr, &cookie).await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let touched = srv.store.count(Call::Touch);
    assert!(touched >= 1, "no keep-alive touch in 2.6 s");
    assert!(
        touched <= 3,
        "touched {touched} times in 2.6 s with a 0.5 s interval and a 1 s tick"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_when_the_event_stream_comes_back_every_followed_session_is_revalidated() {
    let srv = server(config()).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let mut c = connected(srv.addr, &cookie).await;
    // The stream breaks; meanwhile the session is destroyed and its event
    // is lost.
    srv.store.emit(StoreEvent::Lost);
    srv.store.set_deaf(true);
    srv.sessions
        .store()
        .destroy(format!("sess:{}", id.expose()).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (me, again) = client(move || {
        let me = c.call("/", "whoami", &[]);
        (me, c)
    })
    .await;
    c = again;
    assert_eq!(
        me["user"],
        json!("ada"),
        "during the gap the socket keeps its copy"
    );
    srv.store.set_deaf(false);
    srv.store.emit(StoreEvent::Resumed);
    let ended = client(move || {
        let e = c.event("/", "session_ended");
        c.disconnected("/");
        e
    })
    .await;
    assert_eq!(ended["reason"], json!("destroyed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r32_tower_sessions_keep_alive_rewrites_the_date_and_the_sockets_follow_the_new_record() {
    use session_sockets::Format;
    use session_sockets::format::tower_sessions::{Expiry, Record};
    let settings =
        Format::tower_sessions().with_expiry(Expiry::OnInactivity(Duration::from_secs(60)));
    let config = Config::builder()
        .format(settings)
        // Ticks each second: the first keep-alive about 2 s after the
        // socket connects, the next 2 s later; the save below goes between.
        .keep_alive(Some(Duration::from_millis(1500)))
        .build()
        .unwrap();
    let srv = server(config).await;
    let (id, cookie) = login(&srv.sessions, json!({ "user": "ada" })).await;
    let stored = || async {
        let bytes = srv
            .store
            .inner()
            .load(id.expose().as_bytes())
            .await
            .unwrap();
        Record::decode(&bytes.unwrap()).unwrap()
    };
    let created = stored().await.expiry_date;
    let c = connected(srv.addr, &cookie).await;
    let until = Instant::now() + Duration::from_secs(5);
    while srv.store.count(Call::CompareAndSet) == 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The date lives in the record: a keep-alive is a rewrite (compare-and-
    // set), never a bare EXPIRE.
    assert_eq!(srv.store.count(Call::Touch), 0);
    assert_eq!(srv.store.count(Call::CompareAndSet), 1, "one rewrite");
    let renewed = stored().await;
    assert!(renewed.expiry_date.unix_nanos() > created.unix_nanos());
    assert_eq!(renewed.data["user"], "ada", "the data as it was");
    // The socket rests on the rewritten record: its save needs one
    // compare-and-set, without a conflict.
    let before = srv.store.count(Call::CompareAndSet);
    let (ok, _c) = client(move || {
        let mut c = c;
        (c.call("/", "set", &[json!("theme"), json!("dark")]), c)
    })
    .await;
    assert_eq!(ok, json!(true));
    assert_eq!(srv.store.count(Call::CompareAndSet), before + 1);
    assert_eq!(srv.store.conflicts(), 0);
    assert_eq!(stored().await.data["theme"], "dark");
}
