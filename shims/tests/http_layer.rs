//! The HTTP layer against a real axum server with socket.io attached, a
//! plain HTTP/1.1 client and the polling socket.io client: HTTP routes and
//! sockets share one session and one save path; the layer writes the
//! cookies, refuses cross-site state changes and makes no store call for a
//! handler that does not ask for the session.
#![cfg(all(feature = "axum", feature = "socketioxide"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use session_sockets::http::{HttpSession, SessionLayer};
use session_sockets::socketio::{SessionMiddleware, SocketSession};
use session_sockets::store::StoreError;
use session_sockets::{Config, SessionSockets};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::ConnectHandler;
use support::hooked::{Call, Hooked, refused};
use support::sio_client::{
    Client, Response as HttpResponse, client, connected, on_whoami_and_set, request,
};
use support::{config, config_with};

struct Server {
    addr: SocketAddr,
    /// A MemoryStore that counts calls and fails them on cue; it reports
    /// no events.
    store: Arc<Hooked>,
}

/// The store of a test server.
fn probe() -> Arc<Hooked> {
    Arc::new(Hooked::default().without_events())
}

async fn me(session: HttpSession) -> Response {
    match session.error() {
        None => Json(Value::Object(session.data())).into_response(),
        Some(e) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": e.reason() })),
        )
            .into_response(),
    }
}

async fn login(session: HttpSession, Path(name): Path<String>) -> Response {
    match session.login([("user", name)]).await {
        Ok(()) => StatusCode::SEE_OTHER.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn logout(session: HttpSession) -> Response {
    match session.logout().await {
        Ok(()) => StatusCode::SEE_OTHER.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn set(session: HttpSession, Path((k, v)): Path<(String, String)>) -> &'static str {
    session.insert(&k, v).unwrap();
    "set"
}

async fn set_json(session: HttpSession, Path((k, v)): Path<(String, String)>) -> Json<Value> {
    session.insert(&k, v).unwrap();
    Json(json!({ "set": true }))
}

fn add_one(s: &mut session_sockets::Session) -> i64 {
    let n = s.get::<i64>("counter").ok().flatten().unwrap_or(0) + 1;
    s.insert("counter", n).unwrap();
    n
}

async fn incr(session: HttpSession) -> Response {
    match session.update(add_one).await {
        Ok(n) => Json(n).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    on_whoami_and_set(&socket);
    socket.on("incr", async |session: SocketSession, ack: AckSender| {
        let n = session.update(add_one).await;
        ack.send(&n.ok()).ok();
    });
    Ok(())
}

async fn server() -> Server {
    server_with(config()).await
}

async fn server_with(config: Config) -> Server {
    let store = probe();
    let sessions = SessionSockets::new(config, store.clone());
    let (io_layer, io) = SocketIo::new_layer();
    io.ns(
        "/",
        (async |_: SocketRef| {})
            .with(register)
            .with(SessionMiddleware::required(sessions.clone())),
    );
    let ended_meanwhile = sessions.clone();
    let app = Router::new()
        .route("/plain", get(async || "no session here"))
        .route("/me", get(me))
        .route("/login/{name}", post(login))
        .route("/logout", post(logout))
        .route("/set/{k}/{v}", post(set))
        .route("/set-json/{k}/{v}", post(set_json))
        .route("/api/me", get(me))
        .route("/api/set/{k}/{v}", post(set))
        .route("/incr", post(incr))
        .route(
            "/set-then-logout-elsewhere",
            post(async move |session: HttpSession| {
                session.insert("late", 1).unwrap();
                let id = session.with(|s| s.id().clone()).unwrap();
                ended_meanwhile.destroy(&id).await.unwrap();
                "the handler thinks it worked"
            }),
        )
        .layer(
            SessionLayer::new(sessions.clone())
                .with_socketio(io_layer, &io)
                .json_errors_under("/api/"),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, store }
}

async fn send(srv: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let (addr, method, path) = (srv.addr, method.to_owned(), path.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    client(move || request(addr, &method, &path, &headers, "")).await
}

/// The `name=value` pair of the response's session cookie.
fn cookie_of(res: &HttpResponse) -> String {
    let all = res.all("set-cookie");
    assert_eq!(all.len(), 1, "one Set-Cookie: {all:?}");
    all[0].split(';').next().unwrap().to_owned()
}

async fn signed_in(srv: &Server, name: &str) -> String {
    let res = send(srv, "POST", &format!("/login/{name}"), &[]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    cookie_of(&res)
}

async fn me_of(srv: &Server, cookie: &str) -> (u16, Value) {
    let res = send(srv, "GET", "/me", &[("cookie", cookie)]).await;
    (res.status, serde_json::from_str(&res.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r25_http_and_socket_writes_share_one_session_and_keep_each_others_keys() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let mut sock = connected(srv.addr, &cookie).await;
    // An HTTP route writes `a` (saved by the layer at the end of the request) ...
    let res = send(&srv, "POST", "/set/a/1", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 200);
    assert!(
        res.all("set-cookie").is_empty(),
        "an existing session's cookie is not re-sent"
    );
    // ... then the socket, whose copy predates it, writes `b`: both stay.
    let (saved, sock) = client(move || {
        let ok = sock.call("/", "set", &[json!("b"), json!("2")]);
        (ok, sock)
    })
    .await;
    assert_eq!(saved, json!(true));
    let (_, data) = me_of(&srv, &cookie).await;
    assert_eq!(data, json!({ "user": "ada", "a": "1", "b": "2" }));
    // Read-modify-writes from both sides compose.
    assert_eq!(
        send(&srv, "POST", "/incr", &[("cookie", &cookie)])
            .await
            .body,
        "1"
    );
    let (n, _sock) = client(move || {
        let mut sock = sock;
        (sock.call("/", "incr", &[]), sock)
    })
    .await;
    assert_eq!(n, json!(2));
    assert_eq!(me_of(&srv, &cookie).await.1["counter"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_does_not_extract_the_session_makes_no_store_call() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let before = srv.store.total();
    let res = send(&srv, "GET", "/plain", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 200);
    assert!(res.all("set-cookie").is_empty());
    assert_eq!(srv.store.total(), before, "no store call");
    // Extracting it loads it, and touches it as express-session does.
    me_of(&srv, &cookie).await;
    assert_eq!(srv.store.total(), before + 2, "load + touch");
    // A cookie-less request needs no store call to know it has no session.
    let before = srv.store.total();
    let res = send(&srv, "GET", "/me", &[]).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (401, r#"{"error":"no_cookie_header"}"#)
    );
    assert_eq!(srv.store.total(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rolling_a_request_that_reads_the_session_re_sends_its_cookie() {
    // What a page of a socket-only user can do to keep its cookie alive
    // (README, "Live sessions"): the store's TTL is the socket's to renew,
    // the browser's cookie is an HTTP response's.
    let rolling = config_with(|b| {
        b.cookie(session_sockets::core::CookieOptions {
            max_age: Some(std::time::Duration::from_secs(3600)),
            ..Default::default()
        })
        .rolling(true)
    });
    let srv = server_with(rolling).await;
    let cookie = signed_in(&srv, "ada").await;
    let res = send(&srv, "GET", "/me", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 200);
    assert_eq!(cookie_of(&res), cookie, "the same session's cookie");
    assert!(
        res.all("set-cookie")[0].contains("; Expires="),
        "{:?}",
        res.headers
    );
    // Without rolling, the same read sends none (express-session's rule).
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let res = send(&srv, "GET", "/me", &[("cookie", &cookie)]).await;
    assert!(res.all("set-cookie").is_empty(), "{:?}", res.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_inserted_without_a_session_creates_one_and_the_layer_sets_its_cookie() {
    let srv = server().await;
    let res = send(&srv, "POST", "/set/theme/dark", &[]).await;
    assert_eq!(res.status, 200);
    let cookie = cookie_of(&res);
    assert!(
        res.all("set-cookie")[0].contains("; HttpOnly"),
        "{:?}",
        res.headers
    );
    assert_eq!(
        me_of(&srv, &cookie).await,
        (200, json!({ "theme": "dark" }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_login_gives_a_fresh_id_and_disconnects_the_old_sessions_sockets() {
    let srv = server().await;
    let first = signed_in(&srv, "ada").await;
    let sock = connected(srv.addr, &first).await;
    let res = send(&srv, "POST", "/login/ada", &[("cookie", &first)]).await;
    assert_eq!(res.status, 303);
    let second = cookie_of(&res);
    assert_ne!(second, first);
    client(move || {
        let mut sock = sock;
        sock.disconnected("/");
    })
    .await;
    assert_eq!(
        me_of(&srv, &first).await,
        (401, json!({ "error": "session_not_found" }))
    );
    assert_eq!(me_of(&srv, &second).await, (200, json!({ "user": "ada" })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r31_a_logout_whose_destroy_fails_answers_503_and_the_session_stays_valid() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let sock = connected(srv.addr, &cookie).await;
    srv.store.fail(&[Call::Destroy], || {
        StoreError::new("the test store refuses destroys")
    });
    let res = send(&srv, "POST", "/logout", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 503);
    assert!(
        res.body.contains("the test store refuses destroys"),
        "{}",
        res.body
    );
    assert!(
        res.all("set-cookie").is_empty(),
        "the cookie is not cleared"
    );
    assert_eq!(me_of(&srv, &cookie).await, (200, json!({ "user": "ada" })));
    let (me, sock) = client(move || {
        let mut sock = sock;
        (sock.call("/", "whoami", &[]), sock)
    })
    .await;
    assert_eq!(
        me,
        json!({ "user": "ada" }),
        "the socket is still connected"
    );
    // Once the store works, the retry logs out and disconnects.
    srv.store.clear_hook();
    let res = send(&srv, "POST", "/logout", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 303);
    assert!(cookie_of(&res).starts_with("connect.sid="));
    assert!(
        res.all("set-cookie")[0].contains("Expires=Thu, 01 Jan 1970"),
        "{:?}",
        res.headers
    );
    client(move || {
        let mut sock = sock;
        sock.disconnected("/");
    })
    .await;
    assert_eq!(me_of(&srv, &cookie).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r24_a_change_whose_session_ended_during_the_request_is_refused_not_reported() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let res = send(
        &srv,
        "POST",
        "/set-then-logout-elsewhere",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(res.status, 401, "{}", res.body);
    assert_eq!(
        res.body,
        "gone: Your session has ended, so your change was not saved: please sign in again."
    );
    assert!(res.all("set-cookie")[0].contains("Expires=Thu, 01 Jan 1970"));
    // Not brought back by the save.
    assert_eq!(me_of(&srv, &cookie).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r26_a_cross_site_post_reaches_neither_the_handler_nor_the_store() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let before = srv.store.total();
    for path in ["/login/mallory", "/logout", "/incr", "/set/a/b"] {
        let res = send(
            &srv,
            "POST",
            path,
            &[("cookie", &cookie), ("origin", "https://evil.example")],
        )
        .await;
        assert_eq!(res.status, 403, "{path}");
        assert_eq!(
            res.body,
            "origin_rejected: This request came from a page on another site, so it was refused."
        );
        assert!(res.all("set-cookie").is_empty());
    }
    assert_eq!(srv.store.total(), before);
    assert_eq!(me_of(&srv, &cookie).await, (200, json!({ "user": "ada" })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_the_layer_gets_a_500_and_the_developer_what_to_add() {
    let app = Router::new().route("/me", get(me));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let res = client(move || request(addr, "GET", "/me", &[], "")).await;
    assert_eq!(res.status, 500);
    assert!(
        res.body.starts_with("session_layer_missing: "),
        "{}",
        res.body
    );
    // What to add is the error's message, which goes to the log.
    let rejection = session_sockets::http::SessionRejection::LayerMissing;
    assert!(
        rejection.to_string().contains("SessionLayer"),
        "{rejection}"
    );
    assert!(!res.body.contains("SessionLayer"), "{}", res.body);
}

/// R35: during a store outage, clients get the reason code and a hint
/// (text, or JSON where the handler answered JSON), never the store's
/// address, message or error chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r35_store_failures_reach_clients_as_a_reason_and_a_hint_only() {
    let srv = server().await;
    let cookie = signed_in(&srv, "ada").await;
    let leaks = |body: &str| {
        ["6399", "127.0.0.1", "Redis", "refused", "os error"]
            .into_iter()
            .find(|w| body.contains(w))
    };

    srv.store
        .fail(&[Call::Create, Call::CompareAndSet], refused);
    let text = send(&srv, "POST", "/set/a/b", &[("cookie", &cookie)]).await;
    assert_eq!(text.status, 503);
    assert_eq!(text.all("content-type"), ["text/plain; charset=utf-8"]);
    assert_eq!(
        text.body,
        "store_error: Your change could not be saved right now: please try again shortly."
    );
    let json = send(&srv, "POST", "/set-json/a/b", &[("cookie", &cookie)]).await;
    assert_eq!(json.status, 503);
    assert_eq!(json.all("content-type"), ["application/json"]);
    let body: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(body["error"], "store_error");
    assert_eq!(
        body["message"],
        "Your change could not be saved right now: please try again shortly."
    );
    // Under `json_errors_under`, a text handler's failed save is JSON too.
    let api = send(&srv, "POST", "/api/set/a/b", &[("cookie", &cookie)]).await;
    assert_eq!(
        (api.status, api.all("content-type")),
        (503, vec!["application/json"])
    );
    srv.store.clear_hook();

    srv.store.fail(&[Call::Load], refused);
    let load = send(&srv, "GET", "/me", &[("cookie", &cookie)]).await;
    assert_eq!(load.status, 503);
    assert_eq!(
        load.body,
        "store_error: Sessions are unavailable on the server right now: please try again shortly."
    );
    let api_load = send(&srv, "GET", "/api/me", &[("cookie", &cookie)]).await;
    assert_eq!(api_load.status, 503);
    let body: Value = serde_json::from_str(&api_load.body).unwrap();
    assert_eq!(body["error"], "store_error");
    srv.store.clear_hook();

    // A refusal under the prefix is JSON; elsewhere, text.
    let evil = [
        ("cookie", cookie.as_str()),
        ("origin", "https://evil.example"),
    ];
    let refused = send(&srv, "POST", "/api/set/a/b", &evil).await;
    assert_eq!(refused.status, 403);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"], "origin_rejected");
    let refused_text = send(&srv, "POST", "/apix", &evil).await;
    assert_eq!(refused_text.status, 403);
    assert!(refused_text.body.starts_with("origin_rejected: "));

    // A record of the wrong type, and a malformed cookie: no session, and
    // the reason code only.
    let key = format!("sess:{}", sid_of(&cookie));
    let behind = srv.store.inner();
    behind.destroy(key.as_bytes()).await.unwrap();
    behind
        .create(key.as_bytes(), b"[1,2,3]", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        me_of(&srv, &cookie).await,
        (401, json!({ "error": "malformed_record" }))
    );
    let garbage = "connect.sid=s%3A%E0%A4.x";
    assert_eq!(
        me_of(&srv, garbage).await,
        (401, json!({ "error": "unsigned" }))
    );

    for body in [
        &text.body,
        &json.body,
        &api.body,
        &load.body,
        &api_load.body,
    ] {
        assert_eq!(leaks(body), None, "{body}");
    }
}

/// The session id a `connect.sid=s%3A<id>.<mac>` pair names.
fn sid_of(pair: &str) -> String {
    let value = pair.strip_prefix("connect.sid=s%3A").unwrap();
    value.rsplit_once('.').unwrap().0.to_owned()
}

/// R39: with every namespace requiring a session, an engine.io open whose
/// cookie is absent or does not verify (or whose Origin fails) is answered
/// by the layer, with no store call and nothing kept by socket.io: a
/// polling open as an engine.io open with a connect error per namespace
/// (worded as the middleware words it), a WebSocket open with engine.io's
/// own `403`. An open with a cookie that verifies goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r39_anonymous_opens_are_refused_before_socket_io_sees_them() {
    let store = probe();
    let sessions = SessionSockets::new(config(), store.clone());
    let (io_layer, io) = SocketIo::new_layer();
    for ns in ["/", "/chat"] {
        io.ns(
            ns,
            (async |_: SocketRef| {}).with(SessionMiddleware::required(sessions.clone())),
        );
    }
    let app = Router::new().route("/login/{name}", post(login)).layer(
        SessionLayer::new(sessions.clone())
            .with_socketio(io_layer, &io)
            .socketio_requires_session(true),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let srv = Server { addr, store };
    let cookie = signed_in(&srv, "ada").await;
    let forged = {
        let (name, value) = cookie.split_once('=').unwrap();
        let flipped = if value.ends_with('A') { 'B' } else { 'A' };
        format!("{name}={}{flipped}", &value[..value.len() - 1])
    };
    let before = srv.store.total();
    let polling = "/socket.io/?EIO=4&transport=polling&t=abc";

    for (headers, reason) in [
        (vec![], "no_cookie_header"),
        (vec![("cookie", forged.as_str())], "signature_invalid"),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("origin", "https://evil.example"),
            ],
            "origin_rejected",
        ),
    ] {
        let res = send(&srv, "GET", polling, &headers).await;
        assert_eq!(res.status, 200, "{reason}: {}", res.body);
        assert_eq!(res.all("cache-control"), ["no-store"]);
        let packets: Vec<&str> = res.body.split('\u{1e}').collect();
        assert_eq!(packets.len(), 3, "{:?}", res.body);
        let open: Value = serde_json::from_str(packets[0].strip_prefix('0').unwrap()).unwrap();
        assert_eq!(open["sid"], "refused");
        let hint = session_sockets::HandshakeError::NoCookieHeader.hint();
        let message = |p: &str, pre: &str| -> String {
            let v: Value = serde_json::from_str(p.strip_prefix(pre).unwrap()).unwrap();
            v["message"].as_str().unwrap().to_owned()
        };
        // One connect error per namespace, in any order.
        let of = |pre: &str| {
            packets[1..]
                .iter()
                .find(|p| p.starts_with(pre) && !p[pre.len()..].starts_with('/'))
                .copied()
                .unwrap_or_else(|| panic!("no {pre} packet in {packets:?}"))
        };
        for pre in ["44", "44/chat,"] {
            let m = message(of(pre), pre);
            assert!(m.starts_with(&format!("{reason}: ")), "{m}");
            if reason == "no_cookie_header" {
                assert_eq!(m, format!("no_cookie_header: {hint}"));
            }
        }
        // The client's next request names a session engine.io never had
        // (or, from another site, fails R27 first).
        let later = send(
            &srv,
            "POST",
            "/socket.io/?EIO=4&transport=polling&sid=refused",
            &headers,
        )
        .await;
        let want = if reason == "origin_rejected" {
            403
        } else {
            400
        };
        assert_eq!(later.status, want, "{}", later.body);

        let ws = send(
            &srv,
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            &[
                headers.as_slice(),
                &[
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("sec-websocket-version", "13"),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            ]
            .concat(),
        )
        .await;
        assert_eq!(ws.status, 403, "{reason}");
        let body: Value = serde_json::from_str(&ws.body).unwrap();
        assert_eq!(body["code"], 4);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{reason}: "))
        );
    }
    // `xsid=` is no engine.io session id: still an open, still refused.
    let xsid = send(
        &srv,
        "GET",
        "/socket.io/?EIO=4&transport=polling&xsid=1",
        &[],
    )
    .await;
    assert!(xsid.body.contains("no_cookie_header: "), "{}", xsid.body);
    assert_eq!(srv.store.total(), before, "no store call for any refusal");
    assert!(io.sockets().is_empty());

    // A cookie that verifies opens a real engine.io session.
    let (addr, c) = (srv.addr, cookie.clone());
    let me = client(move || {
        let mut s = Client::open(addr, &[("cookie", &c)]);
        let sid = s.path().rsplit("sid=").next().unwrap().to_owned();
        assert_eq!(sid.len(), 16, "engine.io's own session id: {sid}");
        s.connect("/").unwrap();
        s
    })
    .await;
    drop(me);
}

/// The standard base64 of the key bytes 0x00..0x3f.
const TOWER_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r36_with_the_tower_sessions_format_the_layer_writes_what_tower_sessions_writes() {
    use session_sockets::Format;
    use session_sockets::core::Limits;
    use session_sockets::format::tower_sessions::{self as ts, Expiry, Record};
    let settings = Format::tower_sessions()
        .with_private(TOWER_KEY)
        .unwrap()
        .with_expiry(Expiry::OnInactivity(Duration::from_secs(3600)));
    let srv = server_with(Config::builder().format(settings.clone()).build().unwrap()).await;
    let resolve = |cookie: &str| ts::resolve(&settings, [cookie.as_bytes()], Limits::default());

    // A login: tower-sessions' cookie, and its record under the bare id.
    let res = send(&srv, "POST", "/login/ada", &[]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let set = &res.all("set-cookie")[0];
    assert!(
        set.ends_with("; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=3600"),
        "{set}"
    );
    let cookie = cookie_of(&res);
    let id = resolve(&cookie).expect("the cookie opens with the app's key");
    let stored = srv
        .store
        .inner()
        .load(id.expose().as_bytes())
        .await
        .unwrap();
    let record = Record::decode(&stored.expect("stored under the bare id")).unwrap();
    assert_eq!(record.id, id);
    assert_eq!(record.data["user"], "ada");

    // A read: no write, no cookie (tower-sessions saves changed sessions only).
    let before = srv.store.total();
    assert_eq!(me_of(&srv, &cookie).await.1["user"], "ada");
    assert_eq!(srv.store.total(), before + 1, "the load alone");
    // A write: saved, and the cookie sent again (a fresh seal, the same id).
    let res = send(&srv, "POST", "/set/a/1", &[("cookie", &cookie)]).await;
    assert_eq!(res.status, 200);
    let again = cookie_of(&res);
    assert_ne!(again, cookie);
    assert_eq!(resolve(&again), Ok(id));
    // The socket of the session sees it.
    let mut sock = connected(srv.addr, &cookie).await;
    let (data, _sock) = client(move || (sock.call("/", "whoami", &[]), sock)).await;
    assert_eq!(data["a"], "1");

    // The logout: the record gone, tower-sessions' removal cookie.
    let res = send(&srv, "POST", "/logout", &[("cookie", &cookie)]).await;
    let removal = &res.all("set-cookie")[0];
    assert!(
        removal.starts_with("id=; Path=/; Max-Age=0; Expires="),
        "{removal}"
    );
    assert_eq!(
        me_of(&srv, &cookie).await,
        (401, json!({ "error": "session_not_found" }))
    );
}
