//! A small actix-web 4 + actix-session 0.11 app with sessions in Redis
//! (`RedisSessionStore`), in actix-session's private (default) or signed
//! cookie mode: the real thing that tests of session-sockets'
//! actix-session format share sessions with.
//!
//! ```text
//! actix-session-app --redis redis://127.0.0.1:6379 --port 0 --key BASE64 \
//!     [--mode private|signed] [--persistent SECS]
//! ```
//!
//! `--key` is the standard base64 of the 64 bytes given to
//! `cookie::Key::from`. Prints `listening on http://127.0.0.1:PORT` when
//! ready. Routes:
//!
//! - `POST /login/{name}`: a new session key (`renew`), `user` = name.
//! - `GET /me`: the session's data as a JSON object, or 401 without `user`.
//! - `POST /set/{k}/{v}`: `k` = the string `v`.
//! - `POST /incr`: `n` += 1; answers the new `n`.
//! - `POST /logout`: `purge` (the state deleted, a removal cookie sent).

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::RedisSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::cookie::time::Duration;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use serde_json::{Map, Value};

/// How actix-session writes its cookie.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// `CookieContentSecurity::Private` (actix-session's default).
    Private,
    /// `CookieContentSecurity::Signed`.
    Signed,
}

#[derive(Parser, Debug)]
#[command(about = "actix-web + actix-session 0.11 on Redis, for session-sharing tests")]
struct Args {
    /// The Redis URL, e.g. redis://127.0.0.1:6379.
    #[arg(long)]
    redis: String,
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The cookie mode.
    #[arg(long, value_enum, default_value_t = Mode::Private)]
    mode: Mode,
    /// Standard base64 of the 64-byte cookie key.
    #[arg(long)]
    key: String,
    /// A persistent session of this many seconds (cookie `Max-Age` and
    /// Redis TTL); default: a browser session with a one-day TTL.
    #[arg(long)]
    persistent: Option<i64>,
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let bytes = base64::engine::general_purpose::STANDARD.decode(args.key.trim())?;
    let key = Key::try_from(&bytes[..])?;
    let store = RedisSessionStore::new(args.redis.as_str()).await?;
    let security = match args.mode {
        Mode::Private => CookieContentSecurity::Private,
        Mode::Signed => CookieContentSecurity::Signed,
    };
    let persistent = args.persistent;
    let server = HttpServer::new(move || {
        let mut middleware = SessionMiddleware::builder(store.clone(), key.clone())
            .cookie_content_security(security);
        if let Some(secs) = persistent {
            middleware = middleware.session_lifecycle(
                PersistentSession::default().session_ttl(Duration::seconds(secs)),
            );
        }
        App::new()
            .wrap(middleware.build())
            .route("/login/{name}", web::post().to(login))
            .route("/me", web::get().to(me))
            .route("/set/{k}/{v}", web::post().to(set))
            .route("/incr", web::post().to(incr))
            .route("/logout", web::post().to(logout))
    })
    .workers(1)
    .bind(("127.0.0.1", args.port))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await?;
    Ok(())
}

/// A 500 for a session error (the message stays in the log).
fn failed(e: impl std::fmt::Display) -> HttpResponse {
    eprintln!("session error: {e}");
    HttpResponse::InternalServerError().finish()
}

async fn login(session: Session, name: web::Path<String>) -> HttpResponse {
    session.renew();
    match session.insert("user", name.into_inner()) {
        Ok(()) => HttpResponse::Ok().body("logged in"),
        Err(e) => failed(e),
    }
}

async fn me(session: Session) -> HttpResponse {
    if !session.contains_key("user") {
        return HttpResponse::Unauthorized().finish();
    }
    // Each stored value is a JSON text.
    let data: Map<String, Value> = session
        .entries()
        .iter()
        .map(|(k, text)| (k.clone(), serde_json::from_str(text).unwrap_or(Value::Null)))
        .collect();
    HttpResponse::Ok().json(Value::Object(data))
}

async fn set(session: Session, path: web::Path<(String, String)>) -> HttpResponse {
    let (k, v) = path.into_inner();
    match session.insert(k, v) {
        Ok(()) => HttpResponse::Ok().body("set"),
        Err(e) => failed(e),
    }
}

async fn incr(session: Session) -> HttpResponse {
    let n = match session.get::<i64>("n") {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(e) => return failed(e),
    };
    match session.insert("n", n) {
        Ok(()) => HttpResponse::Ok().body(n.to_string()),
        Err(e) => failed(e),
    }
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().body("logged out")
}
