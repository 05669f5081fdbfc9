//! Concurrent writers over every interleaving of their store steps.
//!
//! Each writer (an "HTTP" route and a "socket" handler) is a chain of core
//! machines: reload, change, save; or destroy, touch, regenerate. A
//! scripted in-memory store runs one request at a time, atomically, as
//! Redis does. The scheduler explores every order in which the writers'
//! store steps can hit the store (a depth-first search that replays each
//! schedule from the start), and after each schedule checks that no update
//! was lost and that nothing destroyed came back (R24, R25). Time stands
//! still: every operation starts, and every reply comes, at `at(0)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use session_sockets_core::codec::record;
use session_sockets_core::machines::{Destroy, Regenerate, Reload, Save, Touch};
use session_sockets_core::{Config, Machine, Reply, Request, Session, SessionId};
use support::{at, config_with};

const SID: &str = "sid-1";
const KEY: &[u8] = b"sess:sid-1";
const INITIAL: &str =
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":0}"#;

fn config() -> Arc<Config> {
    static CONFIG: std::sync::LazyLock<Arc<Config>> = std::sync::LazyLock::new(|| {
        // Bounded, so that every schedule ends: with the default (retries
        // until the store deadline) and time standing still, a schedule
        // could keep one writer conflicting for ever.
        config_with(|b| b.max_save_attempts(8))
    });
    Arc::clone(&CONFIG)
}

/// The scripted store: one atomic operation per request, no expiry.
#[derive(Default)]
struct Store {
    records: BTreeMap<Vec<u8>, Vec<u8>>,
    random: u8,
    /// The writer whose request is running, and the last one whose
    /// compare-and-set swapped.
    current: usize,
    last_swap: Option<usize>,
}

impl Store {
    fn run(&mut self, req: &Request) -> Reply {
        match req {
            Request::Load { key, .. } => match self.records.get(key.as_bytes()) {
                Some(v) => Reply::Found(v.as_slice().into()),
                None => Reply::NotFound,
            },
            Request::Create { key, value, .. } => {
                if self.records.contains_key(key.as_bytes()) {
                    Reply::Exists
                } else {
                    self.records.insert(key.as_bytes().to_vec(), value.to_vec());
                    Reply::Created
                }
            }
            Request::CompareAndSet {
                key, expected, new, ..
            } => match self.records.get_mut(key.as_bytes()) {
                None => Reply::Gone,
                Some(cur) if cur.as_slice() == &expected[..] => {
                    *cur = new.to_vec();
                    self.last_swap = Some(self.current);
                    Reply::Swapped
                }
                Some(cur) => Reply::Conflict(cur.as_slice().into()),
            },
            Request::Touch { key, .. } => {
                if self.records.contains_key(key.as_bytes()) {
                    Reply::Done
                } else {
                    Reply::Gone
                }
            }
            Request::Destroy { key, .. } => {
                self.records.remove(key.as_bytes());
                Reply::Done
            }
            Request::Random { len, .. } => {
                self.random += 1;
                Reply::Random(vec![self.random; *len].into())
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

/// What a writer does to the session it loaded.
#[derive(Clone, Copy)]
enum Change {
    /// Set a key of its own (plain save: rebase on conflict).
    SetOwnKey(&'static str),
    /// Set the shared key `k` to this value (plain save).
    SetShared(&'static str),
    /// Increment the counter `n` (save with an update closure).
    Increment,
}

/// One step of a writer's script.
#[derive(Clone, Copy)]
enum Op {
    /// Reload the session, change it, save it.
    ReloadChangeSave(Change),
    /// Destroy the session (logout).
    Destroy,
    /// Reload the session and touch it.
    ReloadTouch,
    /// Reload the session and regenerate its id, carrying the data over.
    ReloadRegenerate,
}

#[allow(clippy::large_enum_variant)] // test scaffolding, a handful alive
enum Running {
    Reload(Reload, Op),
    Save(Save),
    Touch(Touch),
    Destroy(Destroy),
    Regenerate(Regenerate),
}

/// A writer: a script of operations run one machine at a time.
struct Writer {
    script: Vec<Op>,
    running: Option<Running>,
    pending: Option<Request>,
    /// One entry per finished operation: `ok` or the error's reason.
    results: Vec<String>,
}

impl Writer {
    fn new(script: &[Op]) -> Self {
        let mut w = Writer {
            script: script.iter().rev().copied().collect(),
            running: None,
            pending: None,
            results: Vec::new(),
        };
        w.advance();
        w
    }

    /// Starts the next operation if needed and fetches its next request.
    fn advance(&mut self) {
        loop {
            if self.running.is_none() {
                let Some(op) = self.script.pop() else { return };
                let c = config();
                self.running = Some(match op {
                    Op::Destroy => Running::Destroy(Destroy::new(c, &SessionId::new(SID), at(0))),
                    _ => Running::Reload(Reload::new(c, &SessionId::new(SID), at(0)), op),
                });
            }
            let running = self.running.take().unwrap();
            let (next, finished) = self.poll(running);
            self.running = next;
            if let Some(result) = finished {
                self.results.push(result);
                continue;
            }
            if let Some(r) = &mut self.running {
                self.pending = match r {
                    Running::Reload(m, _) => m.poll_request(),
                    Running::Save(m) => m.poll_request(),
                    Running::Touch(m) => m.poll_request(),
                    Running::Destroy(m) => m.poll_request(),
                    Running::Regenerate(m) => m.poll_request(),
                };
                if self.pending.is_some() {
                    return;
                }
                // No request and no outcome: a save backing off. Its wait
                // changes no store step's order, so end it at once.
                let wake = match r {
                    Running::Save(m) => m.poll_timeout(),
                    _ => None,
                };
                if let (Some(at), Running::Save(m)) = (wake, r) {
                    m.handle_timeout(at);
                    continue;
                }
            }
        }
    }

    /// Moves a machine on from its outcome: the next machine, or the
    /// operation's result.
    fn poll(&mut self, running: Running) -> (Option<Running>, Option<String>) {
        fn res<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
            r.map_or_else(|e| e.to_string(), |_| "ok".into())
        }
        let c = config();
        match running {
            Running::Reload(mut m, op) => match m.poll_outcome() {
                None => (Some(Running::Reload(m, op)), None),
                Some(Err(e)) => (None, Some(format!("load: {}", e.reason()))),
                Some(Ok(mut s)) => match op {
                    Op::ReloadChangeSave(Change::SetOwnKey(k)) => {
                        s.insert(k, k).unwrap();
                        (Some(Running::Save(Save::new(c, s, at(0)))), None)
                    }
                    Op::ReloadChangeSave(Change::SetShared(v)) => {
                        s.insert("k", v).unwrap();
                        (Some(Running::Save(Save::new(c, s, at(0)))), None)
                    }
                    Op::ReloadChangeSave(Change::Increment) => {
                        let update = Box::new(|s: &mut Session| {
                            let n = s.get::<i64>("n").unwrap().unwrap_or(0);
                            s.insert("n", n + 1).unwrap();
                        });
                        (Some(Running::Save(Save::update(c, s, update, at(0)))), None)
                    }
                    Op::ReloadTouch => (Some(Running::Touch(Touch::new(c, s, at(0)))), None),
                    Op::ReloadRegenerate => (
                        Some(Running::Regenerate(Regenerate::new(c, s, true, at(0)))),
                        None,
                    ),
                    Op::Destroy => unreachable!("destroy needs no reload"),
                },
            },
            Running::Save(mut m) => match m.poll_outcome() {
                None => (Some(Running::Save(m)), None),
                Some(r) => (None, Some(res(r.map_err(|e| e.reason())))),
            },
            Running::Touch(mut m) => match m.poll_outcome() {
                None => (Some(Running::Touch(m)), None),
                Some(r) => (None, Some(res(r.map_err(|e| e.reason())))),
            },
            Running::Destroy(mut m) => match m.poll_outcome() {
                None => (Some(Running::Destroy(m)), None),
                Some(r) => (None, Some(res(r.map_err(|e| e.reason())))),
            },
            Running::Regenerate(mut m) => match m.poll_outcome() {
                None => (Some(Running::Regenerate(m)), None),
                Some(r) => (None, Some(res(r.map_err(|e| e.reason())))),
            },
        }
    }

    /// Runs the pending request against the store and feeds the reply.
    fn step(&mut self, store: &mut Store) {
        let req = self.pending.take().expect("a pending request");
        let reply = store.run(&req);
        let (id, t) = (req.id(), at(0).instant);
        match self.running.as_mut().expect("a running machine") {
            Running::Reload(m, _) => m.handle_reply(id, reply, t),
            Running::Save(m) => m.handle_reply(id, reply, t),
            Running::Touch(m) => m.handle_reply(id, reply, t),
            Running::Destroy(m) => m.handle_reply(id, reply, t),
            Running::Regenerate(m) => m.handle_reply(id, reply, t),
        }
        self.advance();
    }
}

/// The end of one schedule.
struct End {
    store: Store,
    results: Vec<Vec<String>>,
}

/// Runs `scripts` concurrently over every interleaving of their store steps
/// and calls `check` on each end state. Returns how many interleavings ran.
fn every_interleaving(scripts: &[&[Op]], mut check: impl FnMut(&End)) -> usize {
    let mut prefix: Vec<usize> = Vec::new();
    let mut runs = 0;
    loop {
        let mut store = Store::default();
        store
            .records
            .insert(KEY.to_vec(), INITIAL.as_bytes().to_vec());
        let mut writers: Vec<Writer> = scripts.iter().map(|s| Writer::new(s)).collect();
        // (choice taken, choices available) at each branching point.
        let mut decisions: Vec<(usize, usize)> = Vec::new();
        loop {
            let ready: Vec<usize> = (0..writers.len())
                .filter(|&i| writers[i].pending.is_some())
                .collect();
            if ready.is_empty() {
                break;
            }
            let pick = if ready.len() > 1 {
                let d = decisions.len();
                let choice = prefix.get(d).copied().unwrap_or(0);
                decisions.push((choice, ready.len()));
                choice
            } else {
                0
            };
            store.current = ready[pick];
            writers[ready[pick]].step(&mut store);
        }
        runs += 1;
        check(&End {
            store,
            results: writers.into_iter().map(|w| w.results).collect(),
        });
        // The next schedule: bump the deepest decision that has an
        // untried choice and drop everything after it; none left: done.
        let mut next = None;
        while let Some((choice, n)) = decisions.pop() {
            if choice + 1 < n {
                let mut p: Vec<usize> = decisions.iter().map(|d| d.0).collect();
                p.push(choice + 1);
                next = Some(p);
                break;
            }
        }
        match next {
            Some(p) => prefix = p,
            None => return runs,
        }
        assert!(runs < 1_000_000, "bounded");
    }
}

fn stored(end: &End) -> Option<record::Record> {
    end.store
        .records
        .get(KEY)
        .map(|v| record::decode(v).unwrap())
}

#[test]
fn r25_two_writers_of_different_keys_lose_nothing_in_any_interleaving() {
    let http: &[Op] = &[Op::ReloadChangeSave(Change::SetOwnKey("http"))];
    let socket: &[Op] = &[Op::ReloadChangeSave(Change::SetOwnKey("socket"))];
    let runs = every_interleaving(&[http, socket], |end| {
        assert_eq!(end.results, [["ok"], ["ok"]]);
        let rec = stored(end).unwrap();
        assert_eq!(rec.data["http"], "http");
        assert_eq!(rec.data["socket"], "socket");
        assert_eq!(rec.data["n"], 0);
    });
    // Each writer: load + 1 or 2 compare-and-sets.
    assert!(runs >= 6, "{runs}");
    println!("different keys: {runs} interleavings");
}

#[test]
fn r25_same_key_the_last_successful_save_wins() {
    let http: &[Op] = &[Op::ReloadChangeSave(Change::SetShared("http"))];
    let socket: &[Op] = &[Op::ReloadChangeSave(Change::SetShared("socket"))];
    let runs = every_interleaving(&[http, socket], |end| {
        assert_eq!(end.results, [["ok"], ["ok"]]);
        let winner = ["http", "socket"][end.store.last_swap.unwrap()];
        assert_eq!(stored(end).unwrap().data["k"], winner);
    });
    assert!(runs >= 6, "{runs}");
    println!("same key: {runs} interleavings");
}

#[test]
fn r25_two_writers_of_different_keys_twice_each_lose_nothing() {
    let http: &[Op] = &[
        Op::ReloadChangeSave(Change::SetOwnKey("h1")),
        Op::ReloadChangeSave(Change::SetOwnKey("h2")),
    ];
    let socket: &[Op] = &[
        Op::ReloadChangeSave(Change::SetOwnKey("s1")),
        Op::ReloadChangeSave(Change::SetOwnKey("s2")),
    ];
    let runs = every_interleaving(&[http, socket], |end| {
        assert_eq!(end.results, [["ok", "ok"], ["ok", "ok"]]);
        let rec = stored(end).unwrap();
        for k in ["h1", "h2", "s1", "s2"] {
            assert_eq!(rec.data[k], k);
        }
    });
    assert!(runs >= 70, "{runs}");
    println!("different keys, two rounds: {runs} interleavings");
}

#[test]
fn r25_a_counter_incremented_by_two_writers_loses_no_increment() {
    let writer: &[Op] = &[Op::ReloadChangeSave(Change::Increment); 3];
    let runs = every_interleaving(&[writer, writer], |end| {
        assert_eq!(end.results, [["ok", "ok", "ok"], ["ok", "ok", "ok"]]);
        assert_eq!(stored(end).unwrap().data["n"], 6, "no lost increment");
    });
    assert!(runs >= 924, "{runs}");
    println!("counter, two writers x three increments: {runs} interleavings");
}

#[test]
fn r25_a_counter_incremented_by_three_writers_loses_no_increment() {
    let writer: &[Op] = &[Op::ReloadChangeSave(Change::Increment)];
    let runs = every_interleaving(&[writer, writer, writer], |end| {
        assert_eq!(end.results, [["ok"], ["ok"], ["ok"]]);
        assert_eq!(stored(end).unwrap().data["n"], 3, "no lost increment");
    });
    assert!(runs >= 90, "{runs}");
    println!("counter, three writers x one increment: {runs} interleavings");
}

#[test]
fn r24_destroy_against_savers_never_resurrects() {
    let logout: &[Op] = &[Op::Destroy];
    let saver: &[Op] = &[Op::ReloadChangeSave(Change::SetOwnKey("socket"))];
    let counter: &[Op] = &[
        Op::ReloadChangeSave(Change::Increment),
        Op::ReloadChangeSave(Change::Increment),
    ];
    let runs = every_interleaving(&[logout, saver, counter], |end| {
        assert!(stored(end).is_none(), "destroyed stays destroyed");
        assert_eq!(end.results[0], ["ok"]);
        for r in end.results[1].iter().chain(&end.results[2]) {
            assert!(
                ["ok", "gone", "load: session_not_found"].contains(&r.as_str()),
                "{r}"
            );
        }
    });
    assert!(runs >= 100, "{runs}");
    println!("destroy vs saver vs counter: {runs} interleavings");
}

#[test]
fn r24_r25_touch_and_regenerate_against_a_saver() {
    let toucher: &[Op] = &[Op::ReloadTouch];
    let saver: &[Op] = &[Op::ReloadChangeSave(Change::SetOwnKey("socket"))];
    let runs = every_interleaving(&[toucher, saver], |end| {
        assert_eq!(end.results, [["ok"], ["ok"]]);
        assert_eq!(stored(end).unwrap().data["socket"], "socket");
    });
    println!("touch vs saver: {runs} interleavings");
    let login: &[Op] = &[Op::ReloadRegenerate];
    let runs2 = every_interleaving(&[login, saver], |end| {
        assert!(stored(end).is_none(), "the old id is gone for good");
        assert_eq!(end.results[0], ["ok"]);
        assert!(
            ["ok", "gone", "load: session_not_found"].contains(&end.results[1][0].as_str()),
            "{:?}",
            end.results
        );
        let new: Vec<_> = end.store.records.keys().collect();
        assert_eq!(new.len(), 1, "exactly the new session remains");
    });
    println!("regenerate vs saver: {runs2} interleavings");
    assert!(runs >= 3 && runs2 >= 3, "{runs} {runs2}");
}
