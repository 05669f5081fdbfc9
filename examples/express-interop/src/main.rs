//! `interop-server`: a Rust server that shares sessions with an Express app
//! (express-session + connect-redis) through one Redis and one secret.
//!
//! Each endpoint reads the session from the request's `Cookie` header
//! exactly as a socket handshake does ([`SessionSockets::session`]), so the
//! Express interop suite (`run.sh`) can drive it with plain HTTP requests:
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /whoami` | the session's data, or why there is none |
//! | `POST /set?key=K&value=JSON[&delay_ms=N]` | loads the session, waits `N` ms (a long request), sets `K`, saves (compare-and-set; never re-creates) |
//! | `POST /incr?key=K` | loads the session and increments `K` with [`SessionSockets::update`] (re-run on conflict) |
//! | `GET /cas-script` | the compare-and-set Lua script RedisStore runs |
//!
//! Environment: `INTEROP_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`),
//! `INTEROP_SECRET` (express-session's `secret`; several comma-separated
//! to rotate, first signs), `INTEROP_PORT` (default 0: any free port),
//! `INTEROP_ORIGIN` (the browser origin allowed to call it, e.g. the Express
//! app's; requests without `Origin` are allowed, as from curl). Prints
//! `interop-server listening on http://127.0.0.1:PORT` when ready.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use session_sockets::core::{Failure, WriteError};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::store::Store;
use session_sockets::{Config, HandshakeError, RedisStore, Session, SessionSockets};

type Sockets = SessionSockets<Tokio>;

/// The longest `delay_ms` honoured, so a request can never hold a session
/// for long.
const MAX_DELAY: Duration = Duration::from_secs(5);

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the docs at the top of src/main.rs)"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("interop-server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let url = env("INTEROP_REDIS_URL")?;
    let secrets: Vec<String> = env("INTEROP_SECRET")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let port: u16 = match std::env::var("INTEROP_PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("INTEROP_PORT must be a port number, not {p:?}"))?,
        Err(_) => 0,
    };
    let mut builder = Config::builder()
        .secrets(secrets)
        .allow_missing_origin(true)
        .store_deadline(Duration::from_secs(3))
        // K concurrent writers of one counter: each conflict costs one retry.
        .max_save_attempts(200);
    if let Ok(origin) = std::env::var("INTEROP_ORIGIN") {
        builder = builder.allowed_origins([origin]);
    }
    let config = builder.build().map_err(|e| format!("configuration: {e}"))?;
    let store = RedisStore::builder(url)
        .response_timeout(Duration::from_secs(2))
        .keyspace_events(session_sockets::KeyspaceEvents::Configure)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(store);
    let sockets = SessionSockets::new(config, store);

    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/set", post(set))
        .route("/incr", post(incr))
        .route("/cas-script", get(cas_script))
        .with_state(sockets);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("interop-server listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server: {e}"))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// No session: 403 for a refused origin, 401 for the request's or the
/// session's fault, 503 when the store failed or the server stops. The body
/// holds the reason code and a hint, never the store's message (R35; the
/// session operation logged that).
fn no_session(e: &HandshakeError) -> Response {
    let status = match (e, e.fault()) {
        (HandshakeError::OriginRejected(_), _) => StatusCode::FORBIDDEN,
        (_, fault) if fault.needs_operator() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    reply(status, json!({ "error": e.reason(), "message": e.hint() }))
}

/// A failed save: 410 when the session is gone (logged out or expired;
/// it is not re-created), 409 after too many conflicts, 503 for the store.
fn not_saved(e: &WriteError) -> Response {
    let status = match e {
        WriteError::Gone | WriteError::Expired => StatusCode::GONE,
        WriteError::Conflict { .. } => StatusCode::CONFLICT,
        WriteError::Failed(Failure::Store(_) | Failure::Timeout) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(status, json!({ "error": e.reason(), "message": e.hint() }))
}

fn data(session: &Session) -> Value {
    Value::Object(session.data().clone())
}

async fn whoami(State(sockets): State<Sockets>, headers: HeaderMap) -> Response {
    match sockets.session(&headers).await {
        Ok(session) => reply(StatusCode::OK, json!({ "data": data(&session) })),
        Err(e) => no_session(&e),
    }
}

#[derive(Deserialize)]
struct SetQuery {
    key: String,
    /// JSON; a value that does not parse is stored as a string.
    value: String,
    delay_ms: Option<u64>,
}

async fn set(
    State(sockets): State<Sockets>,
    Query(q): Query<SetQuery>,
    headers: HeaderMap,
) -> Response {
    let mut session = match sockets.session(&headers).await {
        Ok(s) => s,
        Err(e) => return no_session(&e),
    };
    if let Some(ms) = q.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms).min(MAX_DELAY)).await;
    }
    let value = serde_json::from_str(&q.value).unwrap_or(Value::String(q.value));
    session.insert_value(&q.key, value);
    match sockets.save(session).await {
        Ok(saved) => reply(StatusCode::OK, json!({ "data": data(&saved) })),
        Err(e) => not_saved(&e),
    }
}

#[derive(Deserialize)]
struct IncrQuery {
    key: String,
}

async fn incr(
    State(sockets): State<Sockets>,
    Query(q): Query<IncrQuery>,
    headers: HeaderMap,
) -> Response {
    let session = match sockets.session(&headers).await {
        Ok(s) => s,
        Err(e) => return no_session(&e),
    };
    let key = q.key.clone();
    let update = move |s: &mut Session| {
        let n = s.get_value(&key).and_then(Value::as_i64).unwrap_or(0);
        s.insert_value(&key, Value::from(n.saturating_add(1)));
    };
    match sockets.update(session, update).await {
        Ok((saved, ())) => reply(
            StatusCode::OK,
            json!({ "value": saved.get_value(&q.key), "data": data(&saved) }),
        ),
        Err(e) => not_saved(&e),
    }
}

async fn cas_script() -> &'static str {
    session_sockets::redis::COMPARE_AND_SET_LUA
}
