//! The conformance suite every [`Store`] and every runtime must pass.
//!
//! One generic async body per check; a test binary instantiates it per
//! runtime (see `tests/conformance.rs`) and per store:
//!
//! ```ignore
//! mod common;
//! use common::conformance::{Suite, spawn_tokio};
//! let suite = Suite::new(store /* Arc<dyn Store> */, Tokio, spawn_tokio());
//! runtime.block_on(suite.run_all());
//! ```
//!
//! Every check seeds its own fresh random session ids, so a suite can run
//! against a shared store (a real Redis) next to other tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use session_sockets::core::signature::sign_cookie;
use session_sockets::core::time::{millis, to_iso};
use session_sockets::http::{HeaderMap, HeaderValue, header};
use session_sockets::{
    CasOutcome, Config, ConfigBuilder, HandshakeError, Runtime, SessionId, SessionSockets, Store,
    StoreFuture,
};

/// The secret the suite's HTTP app would use.
pub const SECRET: &str = "conformance secret";
/// The allowed origin in the origin checks.
pub const APP_ORIGIN: &str = "https://app.example";

/// A boxed task body, as [`Spawn`] takes it.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Spawns a task on the runtime under test; the returned future completes
/// when the task has (and re-raises its panic).
pub type Spawn = Arc<dyn Fn(Task) -> Task + Send + Sync>;

/// `Spawn` for tokio (call inside a multi-thread tokio runtime).
pub fn spawn_tokio() -> Spawn {
    Arc::new(|t| {
        let h = tokio::spawn(t);
        Box::pin(async move { h.await.unwrap() })
    })
}

/// `Spawn` for async-std.
pub fn spawn_async_std() -> Spawn {
    Arc::new(|t| Box::pin(async_std::task::spawn(t)))
}

/// `Spawn` for smol.
pub fn spawn_smol() -> Spawn {
    Arc::new(|t| Box::pin(smol::spawn(t)))
}

/// A store that never answers: every future stays pending forever.
pub struct Silent;

impl Store for Silent {
    fn load<'a>(&'a self, _: &'a [u8]) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::pending())
    }
    fn create<'a>(&'a self, _: &'a [u8], _: &'a [u8], _: Duration) -> StoreFuture<'a, bool> {
        Box::pin(std::future::pending())
    }
    fn compare_and_set<'a>(
        &'a self,
        _: &'a [u8],
        _: &'a [u8],
        _: &'a [u8],
        _: Duration,
    ) -> StoreFuture<'a, CasOutcome> {
        Box::pin(std::future::pending())
    }
    fn touch<'a>(&'a self, _: &'a [u8], _: Duration) -> StoreFuture<'a, bool> {
        Box::pin(std::future::pending())
    }
    fn destroy<'a>(&'a self, _: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(std::future::pending())
    }
}

/// A fresh random session id (express-session's length, 32 characters).
pub fn fresh_sid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// JavaScript's `encodeURIComponent`, as express-session applies to the
/// cookie value (browsers send it back verbatim).
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Cookie` header a browser sends for `sid` signed with `secret`.
pub fn cookie_header(sid: &str, secret: &str) -> String {
    format!(
        "theme=dark; connect.sid={}; lang=en",
        encode_uri_component(&sign_cookie(sid, secret))
    )
}

/// An express-session record expiring at `expires` holding `data` (a JSON
/// object body without braces, e.g. `"user":"ada"`).
pub fn record(expires: SystemTime, data: &str) -> Vec<u8> {
    let sep = if data.is_empty() { "" } else { "," };
    format!(
        r#"{{"cookie":{{"originalMaxAge":3600000,"expires":"{}","httpOnly":true,"path":"/"}}{sep}{data}}}"#,
        to_iso(millis(expires))
    )
    .into_bytes()
}

/// The suite over one store and one runtime.
pub struct Suite<R> {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The runtime under test.
    pub runtime: R,
    /// Spawns tasks on that runtime.
    pub spawn: Spawn,
}

impl<R: Runtime + Clone> Suite<R> {
    /// The suite for `store` on `runtime`.
    pub fn new(store: Arc<dyn Store>, runtime: R, spawn: Spawn) -> Self {
        Suite {
            store,
            runtime,
            spawn,
        }
    }

    /// Every check, in turn.
    pub async fn run_all(&self) {
        self.handshake_found().await;
        self.handshake_not_found().await;
        self.r13_handshake_expired().await;
        self.r01_handshake_bad_signature().await;
        self.r05_handshake_origin_rejected().await;
        self.r23_silent_store_times_out_at_deadline().await;
        self.r09_reload_sees_other_writers().await;
    }

    fn config(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Config {
        f(Config::builder().secret(SECRET)).build().unwrap()
    }

    /// A handle on the store under test.
    pub fn sockets(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionSockets<R> {
        SessionSockets::new(self.config(f), self.store.clone(), self.runtime.clone())
    }

    /// A handle on [`Silent`]: any store lookup would time out.
    fn silent(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionSockets<R> {
        SessionSockets::new(self.config(f), Arc::new(Silent), self.runtime.clone())
    }

    /// Stores a session expiring in an hour holding `data`; its id.
    pub async fn seed(&self, data: &str) -> String {
        let sid = fresh_sid();
        let key = format!("sess:{sid}");
        let rec = record(SystemTime::now() + Duration::from_secs(3600), data);
        let created = self
            .store
            .create(key.as_bytes(), &rec, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(created, "a fresh id was free");
        sid
    }

    fn headers(&self, cookie: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("app.example"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    /// A signed cookie for a stored session resolves to that session, from
    /// a `HeaderMap` and from raw pairs alike.
    pub async fn handshake_found(&self) {
        let sid = self.seed(r#""user":"ada","n":1"#).await;
        let sockets = self.sockets(|b| b);
        let cookie = cookie_header(&sid, SECRET);
        let s = sockets.session(&self.headers(&cookie, None)).await.unwrap();
        assert_eq!(s.id().expose(), sid);
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        assert_eq!(s.get::<u32>("n").unwrap(), Some(1));
        // Raw pairs; HTTP/2 split Cookie lines are one list (R17).
        let signed = encode_uri_component(&sign_cookie(&sid, SECRET));
        let pairs = [
            ("Cookie", "theme=dark".to_string()),
            ("cookie", format!("connect.sid={signed}")),
        ];
        let s = sockets.session_from_pairs(pairs).await.unwrap();
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    }

    /// A validly signed id that the store does not hold is no session.
    pub async fn handshake_not_found(&self) {
        let sockets = self.sockets(|b| b);
        let cookie = cookie_header(&fresh_sid(), SECRET);
        let e = sockets
            .session(&self.headers(&cookie, None))
            .await
            .unwrap_err();
        assert_eq!(e, HandshakeError::SessionNotFound);
    }

    /// R13: a record whose `cookie.expires` has passed is no session, even
    /// though the store still returns it.
    pub async fn r13_handshake_expired(&self) {
        let sid = fresh_sid();
        let key = format!("sess:{sid}");
        let rec = record(
            SystemTime::now() - Duration::from_secs(5),
            r#""user":"ada""#,
        );
        let created = self
            .store
            .create(key.as_bytes(), &rec, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(created);
        assert!(self.store.load(key.as_bytes()).await.unwrap().is_some());
        let sockets = self.sockets(|b| b);
        let e = sockets
            .session(&self.headers(&cookie_header(&sid, SECRET), None))
            .await
            .unwrap_err();
        assert_eq!(e, HandshakeError::Expired);
    }

    /// R1/R12/R21: a cookie signed with another secret, or tampered with,
    /// is refused before any store lookup (the silent store would time
    /// out); an old secret still in the rotation list verifies.
    pub async fn r01_handshake_bad_signature(&self) {
        let sid = self.seed(r#""user":"ada""#).await;
        let silent = self.silent(|b| b.store_deadline(Duration::from_secs(30)));
        let forged = cookie_header(&sid, "not the app's secret");
        let e = silent
            .session(&self.headers(&forged, None))
            .await
            .unwrap_err();
        assert!(
            matches!(e, HandshakeError::SignatureInvalid { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("secret"), "{e}");
        let signed = encode_uri_component(&sign_cookie(&sid, SECRET));
        let garbage = format!("connect.sid={signed}garbage");
        let e = silent
            .session(&self.headers(&garbage, None))
            .await
            .unwrap_err();
        assert!(
            matches!(e, HandshakeError::SignatureInvalid { .. }),
            "{e:?}"
        );
        let unsigned = format!("connect.sid={sid}");
        let e = silent
            .session(&self.headers(&unsigned, None))
            .await
            .unwrap_err();
        assert!(matches!(e, HandshakeError::Unsigned { .. }), "{e:?}");
        // Rotation: the store's session under an older secret still resolves.
        let rotated = self.sockets(|b| b.secrets(["new secret", SECRET]));
        let s = rotated
            .session(&self.headers(&cookie_header(&sid, SECRET), None))
            .await
            .unwrap();
        assert_eq!(s.id().expose(), sid);
    }

    /// R5-R8: a handshake from an origin outside the allowlist is refused
    /// before any store lookup; an allowed one loads the session.
    pub async fn r05_handshake_origin_rejected(&self) {
        let sid = self.seed(r#""user":"ada""#).await;
        let cookie = cookie_header(&sid, SECRET);
        let allow = |b: ConfigBuilder| {
            b.allowed_origins([APP_ORIGIN])
                .store_deadline(Duration::from_secs(30))
        };
        let silent = self.silent(allow);
        for origin in [
            "https://evil.example",
            "null",
            "https://app.example.evil.example",
        ] {
            let e = silent
                .session(&self.headers(&cookie, Some(origin)))
                .await
                .unwrap_err();
            assert!(
                matches!(e, HandshakeError::OriginRejected(_)),
                "{origin}: {e:?}"
            );
        }
        let s = self
            .sockets(allow)
            .session(&self.headers(&cookie, Some(APP_ORIGIN)))
            .await
            .unwrap();
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    }

    /// R23: a store that never answers fails the handshake with `Timeout`
    /// at the deadline: not before it, and not much after.
    pub async fn r23_silent_store_times_out_at_deadline(&self) {
        let deadline = Duration::from_millis(200);
        let silent = self.silent(|b| b.store_deadline(deadline));
        let cookie = cookie_header(&fresh_sid(), SECRET);
        let start = Instant::now();
        let e = silent
            .session(&self.headers(&cookie, None))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert_eq!(e, HandshakeError::Timeout);
        assert!(took >= deadline, "failed before the deadline: {took:?}");
        assert!(took < deadline + Duration::from_secs(1), "hung: {took:?}");
        let start = Instant::now();
        let e = silent
            .reload(&SessionId::new(fresh_sid()))
            .await
            .unwrap_err();
        assert_eq!(e, HandshakeError::Timeout);
        assert!(start.elapsed() >= deadline);
    }

    /// R9: reload returns what the store holds now, and fails once the
    /// session is gone.
    pub async fn r09_reload_sees_other_writers(&self) {
        let sid = self.seed(r#""n":1"#).await;
        let key = format!("sess:{sid}");
        let sockets = self.sockets(|b| b);
        let id = SessionId::new(sid.as_str());
        let s = sockets.reload(&id).await.unwrap();
        assert_eq!(s.get::<u32>("n").unwrap(), Some(1));
        let old = self.store.load(key.as_bytes()).await.unwrap().unwrap();
        let new = record(SystemTime::now() + Duration::from_secs(3600), r#""n":2"#);
        let swapped = self
            .store
            .compare_and_set(key.as_bytes(), &old, &new, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(swapped, CasOutcome::Swapped);
        assert_eq!(
            sockets.reload(&id).await.unwrap().get::<u32>("n").unwrap(),
            Some(2)
        );
        self.store.destroy(key.as_bytes()).await.unwrap();
        assert_eq!(
            sockets.reload(&id).await.unwrap_err(),
            HandshakeError::SessionNotFound
        );
    }
}
