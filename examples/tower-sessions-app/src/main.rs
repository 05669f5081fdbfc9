//! A small axum 0.8 + tower-sessions 0.14 app with sessions in Redis
//! (tower-sessions-redis-store 0.16), in tower-sessions' plain, signed or
//! private cookie mode: the real thing that tests of session-sockets'
//! tower-sessions format share sessions with.
//!
//! ```text
//! tower-sessions-app --redis redis://127.0.0.1:6379 --port 0 \
//!     [--mode plain|signed|private] [--key BASE64] [--inactivity SECS]
//! ```
//!
//! `--key` is the standard base64 of the 64 bytes given to
//! `cookie::Key::from` (required for signed and private). Prints
//! `listening on http://127.0.0.1:PORT` when ready. Routes:
//!
//! - `POST /login/{name}`: a new id (`cycle_id`, as axum-login's login
//!   does), `user` = name and axum-login's `axum-login.data` =
//!   `{"user_id": name, "auth_hash": [1, 2, 3]}`.
//! - `GET /me`: the session's data as a JSON object, or 401 without `user`.
//! - `POST /set/{k}/{v}`: `k` = the string `v`.
//! - `POST /incr`: `n` += 1; answers the new `n`.
//! - `POST /logout`: `flush` (the record deleted, a removal cookie sent).

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use serde_json::{Map, Value, json};
use tower_sessions::cookie::Key;
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

/// How tower-sessions writes its cookie.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// The cookie is the id.
    Plain,
    /// `with_signed(key)`.
    Signed,
    /// `with_private(key)`.
    Private,
}

#[derive(Parser, Debug)]
#[command(about = "axum + tower-sessions 0.14 on Redis, for session-sharing tests")]
struct Args {
    /// The Redis URL, e.g. redis://127.0.0.1:6379.
    #[arg(long)]
    redis: String,
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The cookie mode.
    #[arg(long, value_enum, default_value_t = Mode::Plain)]
    mode: Mode,
    /// Standard base64 of the 64-byte cookie key (signed and private).
    #[arg(long)]
    key: Option<String>,
    /// Expire sessions this many seconds after their last save
    /// (`Expiry::OnInactivity`); default: tower-sessions' (two weeks).
    #[arg(long)]
    inactivity: Option<i64>,
}

/// The store, for `/me`'s listing of every key.
#[derive(Clone)]
struct App {
    store: RedisStore<Pool>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let pool = Pool::new(Config::from_url(&args.redis)?, None, None, None, 2)?;
    // The connection task runs for as long as the pool.
    let _connection = pool.connect();
    pool.wait_for_connect().await?;
    let store = RedisStore::new(pool);

    let layer = SessionManagerLayer::new(store.clone());
    let layer = match args.inactivity {
        Some(secs) => layer.with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(secs),
        )),
        None => layer,
    };
    let key = || -> Result<Key, Box<dyn std::error::Error>> {
        let text = args
            .key
            .as_deref()
            .ok_or("--key is required for signed and private")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
        Ok(Key::try_from(&bytes[..])?)
    };
    let routes = Router::new()
        .route("/login/{name}", post(login))
        .route("/me", get(me))
        .route("/set/{k}/{v}", post(set))
        .route("/incr", post(incr))
        .route("/logout", post(logout))
        .with_state(App { store });
    let app = match args.mode {
        Mode::Plain => routes.layer(layer),
        Mode::Signed => routes.layer(layer.with_signed(key()?)),
        Mode::Private => routes.layer(layer.with_private(key()?)),
    };

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A 500 for a session error (the store's message stays in the log).
fn failed(e: impl std::fmt::Display) -> Response {
    eprintln!("session error: {e}");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

async fn login(session: Session, Path(name): Path<String>) -> Response {
    if let Err(e) = session.cycle_id().await {
        return failed(e);
    }
    let login = json!({"user_id": name, "auth_hash": [1, 2, 3]});
    if let Err(e) = session.insert("axum-login.data", login).await {
        return failed(e);
    }
    match session.insert("user", &name).await {
        Ok(()) => "logged in".into_response(),
        Err(e) => failed(e),
    }
}

async fn me(session: Session, State(app): State<App>) -> Response {
    match session.get_value("user").await {
        Ok(Some(_)) => {}
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => return failed(e),
    }
    // Session has no listing of its keys: read them from the record, which
    // a read-only request leaves as it is.
    let Some(id): Option<Id> = session.id() else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match app.store.load(&id).await {
        Ok(Some(record)) => Json(Value::Object(Map::from_iter(record.data))).into_response(),
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => failed(e),
    }
}

async fn set(session: Session, Path((k, v)): Path<(String, String)>) -> Response {
    match session.insert(&k, v).await {
        Ok(()) => "set".into_response(),
        Err(e) => failed(e),
    }
}

async fn incr(session: Session) -> Response {
    let n = match session.get::<i64>("n").await {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(e) => return failed(e),
    };
    match session.insert("n", n).await {
        Ok(()) => n.to_string().into_response(),
        Err(e) => failed(e),
    }
}

async fn logout(session: Session) -> Response {
    match session.flush().await {
        Ok(()) => "logged out".into_response(),
        Err(e) => failed(e),
    }
}
