//! The conformance suite every [`Store`] and every runtime must pass.
//!
//! One generic async body per check; a test binary instantiates it per
//! runtime and per store, usually with [`on_every_runtime!`] (see
//! `tests/conformance.rs` and `tests/redis_conformance.rs`), or by hand:
//!
//! ```ignore
//! mod support;
//! use support::conformance::{Suite, spawn_tokio};
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

use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use session_sockets::runtime::Runtime;
use session_sockets::store::{CasOutcome, Store};
use session_sockets::{
    ConfigBuilder, Failure, HandshakeError, SessionId, SessionSockets, WriteError,
};

use super::hooked::{Act, Call, Gate, Hooked};
use super::{SECRET, config, config_with, connect_sid, cookie_header, fresh_sid, record};

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
        self.save_visible_to_later_load().await;
        self.r25_concurrent_saves_lose_nothing().await;
        self.r24_destroy_then_save_does_not_resurrect().await;
        self.r10_create_then_handshake_with_its_cookie().await;
        self.r11_regenerate_replaces_the_id().await;
        self.r25_touch_keeps_the_record_bytes().await;
        self.r25_writes_in_one_process_are_grouped_and_never_conflict()
            .await;
        self.r25_two_processes_writing_one_session_all_get_through()
            .await;
        self.r32_a_second_handle_sees_the_first_handles_writes()
            .await;
    }

    /// A handle on the store under test.
    pub fn sockets(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionSockets<R> {
        SessionSockets::with_runtime(config_with(f), self.store.clone(), self.runtime.clone())
    }

    /// A handle on a store that never answers: any store lookup would time
    /// out.
    fn silent(&self, f: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> SessionSockets<R> {
        SessionSockets::with_runtime(config_with(f), Hooked::silent(), self.runtime.clone())
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
        let pairs = [
            ("Cookie", "theme=dark".to_string()),
            ("cookie", connect_sid(&sid, SECRET)),
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
        let garbage = format!("{}garbage", connect_sid(&sid, SECRET));
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
        assert_eq!(e, HandshakeError::Failed(Failure::Timeout));
        assert!(took >= deadline, "failed before the deadline: {took:?}");
        assert!(took < deadline + Duration::from_secs(1), "hung: {took:?}");
        let start = Instant::now();
        let e = silent
            .reload(&SessionId::new(fresh_sid()))
            .await
            .unwrap_err();
        assert_eq!(e, HandshakeError::Failed(Failure::Timeout));
        assert!(start.elapsed() >= deadline);
        // Writes fail closed the same way.
        let start = Instant::now();
        let e = silent
            .destroy(&SessionId::new(fresh_sid()))
            .await
            .unwrap_err();
        assert_eq!(e, WriteError::Failed(Failure::Timeout));
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

    /// A saved change is what a later handshake and a later reload see.
    pub async fn save_visible_to_later_load(&self) {
        let sid = self.seed(r#""user":"ada""#).await;
        let sockets = self.sockets(|b| b);
        let headers = self.headers(&cookie_header(&sid, SECRET), None);
        let mut s = sockets.session(&headers).await.unwrap();
        s.insert("room", "lobby").unwrap();
        let saved = sockets.save(s).await.unwrap();
        assert!(!saved.is_changed());
        let again = sockets.session(&headers).await.unwrap();
        assert_eq!(
            again.get::<String>("room").unwrap().as_deref(),
            Some("lobby")
        );
        assert_eq!(again.get::<String>("user").unwrap().as_deref(), Some("ada"));
        let reloaded = sockets.reload(again.id()).await.unwrap();
        assert_eq!(
            reloaded.get::<String>("room").unwrap().as_deref(),
            Some("lobby")
        );
        // An unchanged session is not written (R25): the bytes stay as saved.
        let key = format!("sess:{sid}");
        let before = self.store.load(key.as_bytes()).await.unwrap();
        sockets.save(reloaded).await.unwrap();
        assert_eq!(self.store.load(key.as_bytes()).await.unwrap(), before);
    }

    /// R25: many tasks save the same stale copy of a session at once, each
    /// incrementing a counter and setting its own key; every increment and
    /// every key survives.
    pub async fn r25_concurrent_saves_lose_nothing(&self) {
        const TASKS: u32 = 24;
        let sid = self.seed(r#""user":"ada","n":0"#).await;
        // Each writer may lose the race to every other one at most once.
        let sockets = self.sockets(|b| b.max_save_attempts(TASKS + 1));
        let stale = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let tasks: Vec<Task> = (0..TASKS)
            .map(|i| {
                let (sockets, session) = (sockets.clone(), stale.clone());
                (self.spawn)(Box::pin(async move {
                    let saved = sockets
                        .update(session, move |s| {
                            let n = s.get::<u32>("n").unwrap().unwrap_or(0);
                            s.insert("n", n + 1).unwrap();
                            s.insert(&format!("t{i}"), true).unwrap();
                        })
                        .await;
                    assert!(saved.is_ok(), "task {i}: {saved:?}");
                }))
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let s = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        assert_eq!(s.get::<u32>("n").unwrap(), Some(TASKS), "lost increments");
        for i in 0..TASKS {
            assert_eq!(
                s.get::<bool>(&format!("t{i}")).unwrap(),
                Some(true),
                "lost t{i}"
            );
        }
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    }

    /// R24: a save that arrives after a logout (destroy) fails with `Gone`
    /// and does not bring the session back.
    pub async fn r24_destroy_then_save_does_not_resurrect(&self) {
        let sid = self.seed(r#""user":"ada""#).await;
        let key = format!("sess:{sid}");
        let sockets = self.sockets(|b| b);
        let headers = self.headers(&cookie_header(&sid, SECRET), None);
        let mut s = sockets.session(&headers).await.unwrap();
        sockets.destroy(s.id()).await.unwrap();
        s.insert("late", "write of a long request").unwrap();
        assert_eq!(sockets.save(s.clone()).await.unwrap_err(), WriteError::Gone);
        let e = sockets.update(s, |s| {
            s.insert("again", 1).unwrap();
        });
        assert_eq!(e.await.unwrap_err(), WriteError::Gone);
        assert_eq!(self.store.load(key.as_bytes()).await.unwrap(), None);
        let e = sockets.session(&headers).await.unwrap_err();
        assert_eq!(e, HandshakeError::SessionNotFound);
        // Destroying what is gone is no error.
        sockets
            .destroy(&SessionId::new(sid.as_str()))
            .await
            .unwrap();
    }

    /// R10/R24: `create` stores a session under a fresh 32-character id and
    /// returns the `Set-Cookie` header; that cookie, sent back, resolves.
    pub async fn r10_create_then_handshake_with_its_cookie(&self) {
        let sockets = self.sockets(|b| b);
        let mut data = Map::new();
        data.insert("user".into(), json!("grace"));
        let created = sockets.create(data.clone()).await.unwrap();
        let other = sockets.create(data).await.unwrap();
        let id = created.session.id().expose().to_owned();
        assert_eq!(id.len(), 32);
        assert_ne!(id, other.session.id().expose());
        assert!(
            created.set_cookie.starts_with("connect.sid=s%3A"),
            "a signed cookie"
        );
        let pair = created.set_cookie.split(';').next().unwrap();
        let s = sockets.session(&self.headers(pair, None)).await.unwrap();
        assert_eq!(s.id().expose(), id);
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("grace"));
        let stored = self
            .store
            .load(format!("sess:{id}").as_bytes())
            .await
            .unwrap();
        let stored: Value = serde_json::from_slice(&stored.unwrap()).unwrap();
        assert_eq!(stored["user"], json!("grace"));
        assert!(stored["cookie"].is_object());
    }

    /// R11: regenerate moves the session to a new id and destroys the old.
    pub async fn r11_regenerate_replaces_the_id(&self) {
        let sid = self.seed(r#""cart":[1,2]"#).await;
        let sockets = self.sockets(|b| b);
        let old = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let created = sockets.regenerate(old, true).await.unwrap();
        let new_id = created.session.id().clone();
        assert_ne!(new_id.expose(), sid);
        let e = sockets
            .reload(&SessionId::new(sid.as_str()))
            .await
            .unwrap_err();
        assert_eq!(e, HandshakeError::SessionNotFound);
        let s = sockets.reload(&new_id).await.unwrap();
        assert_eq!(s.get::<Vec<u32>>("cart").unwrap(), Some(vec![1, 2]));
    }

    /// R25: touch refreshes the time to live without rewriting the record,
    /// and reports a session that is gone.
    pub async fn r25_touch_keeps_the_record_bytes(&self) {
        let sid = self.seed(r#""user":"ada""#).await;
        let key = format!("sess:{sid}");
        let sockets = self.sockets(|b| b);
        let s = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let before = self.store.load(key.as_bytes()).await.unwrap();
        let touched = sockets.touch(s.clone()).await.unwrap();
        assert!(touched.set_cookie.is_none(), "not rolling");
        assert_eq!(self.store.load(key.as_bytes()).await.unwrap(), before);
        sockets.destroy(s.id()).await.unwrap();
        assert_eq!(sockets.touch(s).await.unwrap_err(), WriteError::Gone);
        assert_eq!(self.store.load(key.as_bytes()).await.unwrap(), None);
    }

    /// R25, one writer per session per process: 50 increments started at
    /// once through one handle, from copies of the session loaded before any
    /// of them, are all acknowledged, each with its own value, in at most
    /// two compare-and-sets (the first write alone, then the other 49
    /// grouped while it was held) and without a single conflict.
    pub async fn r25_writes_in_one_process_are_grouped_and_never_conflict(&self) {
        let sid = self.seed(r#""user":"ada","n":0"#).await;
        // Every compare-and-set waits at the gate until it opens.
        let store = Arc::new(Hooked::new(self.store.clone()).without_events());
        let gate = Gate::shut();
        let held = gate.clone();
        store.set_hook(move |call| match call {
            Call::CompareAndSet => Act::After(held.passed()),
            _ => Act::Pass,
        });
        let sockets = SessionSockets::with_runtime(config(), store.clone(), self.runtime.clone());
        let stale = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let writes = {
            let (sockets, stale) = (sockets.clone(), stale.clone());
            (self.spawn)(Box::pin(async move {
                let mut got: Vec<u32> = increments(&sockets, &stale, 50)
                    .await
                    .into_iter()
                    .map(|r| r.expect("every write acknowledged"))
                    .collect();
                got.sort_unstable();
                assert_eq!(
                    got,
                    (1..=50).collect::<Vec<_>>(),
                    "each write its own value"
                );
            }))
        };
        // The first commit is held at the store while the others queue.
        let until = Instant::now() + Duration::from_secs(10);
        while store.count(Call::CompareAndSet) == 0 {
            assert!(Instant::now() < until, "no compare-and-set within 10 s");
            self.runtime.sleep(Duration::from_millis(5)).await;
        }
        self.runtime.sleep(Duration::from_millis(50)).await;
        gate.open();
        writes.await;
        assert!(
            store.count(Call::CompareAndSet) <= 2,
            "{} compare-and-sets for 50 writes",
            store.count(Call::CompareAndSet)
        );
        assert_eq!(store.conflicts(), 0, "writers in one process conflicted");
        let s = sockets.reload(&SessionId::new(sid.as_str())).await.unwrap();
        assert_eq!(s.get::<u32>("n").unwrap(), Some(50));
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    }

    /// R25 across processes: two handles (two servers' write queues) on one
    /// store, 25 increments each at once: their conflicts are retried, with
    /// a backoff, until every write lands.
    pub async fn r25_two_processes_writing_one_session_all_get_through(&self) {
        let sid = self.seed(r#""n":0"#).await;
        let (a, b) = (self.sockets(|b| b), self.sockets(|b| b));
        let stale = a.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let tasks: Vec<Task> = [a.clone(), b]
            .into_iter()
            .map(|sockets| {
                let stale = stale.clone();
                (self.spawn)(Box::pin(async move {
                    for r in increments(&sockets, &stale, 25).await {
                        assert!(r.is_ok(), "a write failed: {r:?}");
                    }
                }))
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let s = a.reload(&SessionId::new(sid.as_str())).await.unwrap();
        assert_eq!(s.get::<u32>("n").unwrap(), Some(50), "lost increments");
    }
}

impl<R: Runtime + Clone> Suite<R> {
    /// Two handles on one store in one process (say, one for the HTTP
    /// routes and one for the sockets): a socket of one follows what the
    /// other writes, as it follows another process's writes.
    pub async fn r32_a_second_handle_sees_the_first_handles_writes(&self) {
        let sid = self.seed(r#""n":0"#).await;
        let (http, sockets) = (self.sockets(|b| b), self.sockets(|b| b));
        let cookie = cookie_header(&sid, SECRET);
        let live = sockets
            .live_session(&self.headers(&cookie, None), |_| {})
            .await
            .unwrap();
        let stale = http.reload(&SessionId::new(sid.as_str())).await.unwrap();
        let r = increments(&http, &stale, 1).await;
        assert!(r[0].is_ok(), "{r:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while live.with(|s| s.get::<u32>("n").unwrap()) != Some(1) {
            assert!(
                std::time::Instant::now() < deadline,
                "the other handle's socket still sees {:?} 5 s after the write",
                live.with(|s| s.get::<u32>("n").unwrap())
            );
            self.runtime.sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Runs `n` increments of `n` on `session` through `sockets`, all started
/// at once; each one's own result, in any order.
async fn increments<R: Runtime + Clone>(
    sockets: &SessionSockets<R>,
    session: &session_sockets::Session,
    n: u32,
) -> Vec<Result<u32, WriteError>> {
    let writes = (0..n).map(|_| {
        let (sockets, session) = (sockets.clone(), session.clone());
        async move {
            sockets
                .update(session, |s| {
                    let n = s.get::<u32>("n").unwrap().unwrap_or(0) + 1;
                    s.insert("n", n).unwrap();
                    n
                })
                .await
                .map(|(_, n)| n)
        }
    });
    join_all(writes).await
}

/// Polls every future to completion, all from the first poll on (so every
/// one of them starts before any finishes).
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(out.iter_mut().filter_map(Option::take).collect())
        }
    })
    .await
}

/// Instantiates the suite as `#[test]`s on every runtime whose feature is
/// on: one module per runtime (`tokio`, `smol`, `async_std`), one test per
/// check, named after it, each on a fresh runtime and store. Every check
/// every store must pass runs; `also` adds more checks (e.g. `run_all`), and
/// `checks` instead of `also` names the checks to run explicitly.
///
/// `store` is evaluated inside the runtime (it may `.await`) and must give a
/// [`Store`]; the optional `per_check` binding is made before the runtime
/// starts and lives until the check ends (e.g. a server the store talks to).
/// Paths in both are resolved inside the generated modules, so spell them in
/// full (`session_sockets::MemoryStore`, `crate::...`).
///
/// ```ignore
/// support::conformance::on_every_runtime! {
///     per_check: let redis = crate::support::redis_server::RedisServer::start();
///     store: session_sockets::RedisStore::connect(redis.url()).await.unwrap(),
/// }
/// ```
#[allow(unused_macros)] // Only the conformance binaries expand it.
macro_rules! on_every_runtime {
    (
        $(per_check: let $fixture:ident = $start:expr;)?
        store: $store:expr
        $(, also: $($extra:ident),+)? $(,)?
    ) => {
        $crate::support::conformance::on_every_runtime! {
            $(per_check: let $fixture = $start;)?
            store: $store,
            checks:
                handshake_found,
                handshake_not_found,
                r13_handshake_expired,
                r01_handshake_bad_signature,
                r05_handshake_origin_rejected,
                r23_silent_store_times_out_at_deadline,
                r09_reload_sees_other_writers,
                save_visible_to_later_load,
                r25_concurrent_saves_lose_nothing,
                r24_destroy_then_save_does_not_resurrect,
                r10_create_then_handshake_with_its_cookie,
                r11_regenerate_replaces_the_id,
                r25_touch_keeps_the_record_bytes,
                r25_writes_in_one_process_are_grouped_and_never_conflict,
                r25_two_processes_writing_one_session_all_get_through,
                $($($extra),+)?
        }
    };
    (
        $(per_check: let $fixture:ident = $start:expr;)?
        store: $store:expr,
        checks: $($check:ident),+ $(,)?
    ) => {
        $crate::support::conformance::on_every_runtime!(
            @runtime tokio, "tokio", session_sockets::runtime::tokio::Tokio, spawn_tokio(),
            |f| tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f);
            [$(let $fixture = $start;)?] $store;
            $($check),+
        );
        $crate::support::conformance::on_every_runtime!(
            @runtime smol, "smol", session_sockets::runtime::smol::Smol, spawn_smol(),
            smol::block_on;
            [$(let $fixture = $start;)?] $store;
            $($check),+
        );
        $crate::support::conformance::on_every_runtime!(
            @runtime async_std, "async-std", session_sockets::runtime::async_std::AsyncStd,
            spawn_async_std(), async_std::task::block_on;
            [$(let $fixture = $start;)?] $store;
            $($check),+
        );
    };
    (
        @runtime $m:ident, $feature:literal, $runtime:expr, $spawn:expr, $block_on:expr;
        $setup:tt $store:expr;
        $($check:ident),+
    ) => {
        #[cfg(feature = $feature)]
        mod $m {
            use $crate::support::conformance::*;
            $(
                #[test]
                fn $check() {
                    $crate::support::conformance::on_every_runtime!(
                        @check $setup $store, $runtime, $spawn, $block_on, $check
                    );
                }
            )+
        }
    };
    (
        @check [$($setup:tt)*] $store:expr, $runtime:expr, $spawn:expr, $block_on:expr,
        $check:ident
    ) => {
        $($setup)*
        let block_on = $block_on;
        block_on(async {
            let suite = Suite::new(std::sync::Arc::new($store), $runtime, $spawn);
            suite.$check().await;
        });
    };
}
#[allow(unused_imports)]
pub(crate) use on_every_runtime;
