//! Shared input decoding and drivers for the fuzz targets in `fuzz_targets/`.
//!
//! Every target reads a simple byte format (documented at the top of each
//! target) instead of `arbitrary`-derived structures, so that the seed
//! corpora in `corpus/` are readable files made from the shared
//! express-session vectors (`make_seeds.py` writes them).

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use session_sockets_core::codec::cookie::Limits;
use session_sockets_core::{Bytes, Config, Machine, Now, Reply, Request, RequestId};

/// Splits fuzz bytes into `Cookie` header lines the way the Node reference
/// (`benches/node/resolve.js`) does: on `\n`, keeping `\r` as data; no bytes
/// at all means no header line.
pub fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == b'\n').collect()
}

/// The secret sets the seeds use: the vectors' `keyboard cat`, and the
/// rotation pair.
pub const SECRETS: [&[&str]; 2] = [&["keyboard cat"], &["new secret 2024", "old secret 2023"]];

/// The limits a selector byte picks (bits 0-1).
pub fn limits(sel: u8) -> Limits {
    match sel & 3 {
        0 => Limits::default(),
        1 => Limits {
            max_header_bytes: 64,
            max_pairs: 4,
        },
        2 => Limits {
            max_header_bytes: 1024,
            max_pairs: 16,
        },
        _ => Limits {
            max_header_bytes: 16 * 1024,
            max_pairs: 2,
        },
    }
}

/// The config a `cookie_parse` / handshake selector byte picks:
/// bits 0-1 the limits, bits 2-3 the cookie name (`connect.sid`, `sid`,
/// `a`, or the first pair's name in `first_line` when it is a valid cookie
/// name), bit 4 the secret set, bit 5 whether unsigned ids are accepted.
pub fn cookie_config(sel: u8, first_line: Option<&[u8]>) -> Config {
    let name: String = match (sel >> 2) & 3 {
        0 => "connect.sid".into(),
        1 => "sid".into(),
        2 => "a".into(),
        _ => first_line
            .and_then(|l| session_sockets_core::codec::cookie::pairs(l).next())
            .and_then(|(n, _)| std::str::from_utf8(n).ok())
            .filter(|n| !n.is_empty())
            .unwrap_or("connect.sid")
            .into(),
    };
    let secrets = SECRETS[usize::from((sel >> 4) & 1)];
    let build = |name: &str| {
        Config::builder()
            .cookie_name(name)
            .secrets(secrets)
            .limits(limits(sel))
            .accept_unsigned(sel & 0x20 != 0)
            .build()
    };
    // A name taken from the input may not be a token; fall back to the
    // default, which always builds.
    match build(&name) {
        Ok(c) => c,
        Err(_) => build("connect.sid").unwrap_or_else(|e| panic!("default config: {e}")),
    }
}

/// Records a `Found` / `Conflict` reply can carry: live, expired, far
/// future, browser-session, and three that are not records.
pub const RECORDS: [&[u8]; 7] = [
    br#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"views":1}"#,
    br#"{"cookie":{"originalMaxAge":3600000,"expires":"2000-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"ada"}"#,
    br#"{"cookie":{"originalMaxAge":3600000,"expires":"2100-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":{"id":42,"name":"Ada"},"1":[1,2,3]}"#,
    br#"{"cookie":{},"n":1.5e-7}"#,
    b"not json",
    br#"{"user":"no cookie"}"#,
    br#"{"cookie":{"expires":"tomorrow"}}"#,
];

/// The start of every scripted run: one monotonic instant (read once per
/// process) and the fixed wall time 2026-11-29T13:14:27Z.
pub fn start_time() -> Now {
    static START: OnceLock<Instant> = OnceLock::new();
    Now::new(
        *START.get_or_init(Instant::now),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_958_067),
    )
}

/// A cursor over the script bytes; reads past the end are zero.
pub struct Script<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Script<'a> {
    /// A script over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Script { bytes, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// The next byte, or 0 past the end.
    pub fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A time from one byte: `start + b * 50 ms` (0 to 12.75 s, across the
    /// default 3 s store deadline).
    pub fn time(&mut self, start: Instant) -> Instant {
        start + Duration::from_millis(u64::from(self.byte()) * 50)
    }

    /// A reply of any kind, from one or two bytes.
    pub fn reply(&mut self) -> Reply {
        let kind = self.byte();
        let pick = |b: u8| Bytes::from(RECORDS[usize::from(b) % RECORDS.len()]);
        match kind % 10 {
            0 | 1 => Reply::Found(pick(self.byte())),
            2 => Reply::NotFound,
            3 => Reply::Created,
            4 => Reply::Exists,
            5 => Reply::Swapped,
            6 => Reply::Conflict(pick(self.byte())),
            7 => Reply::Gone,
            8 => Reply::Done,
            _ => {
                if kind & 0x80 != 0 {
                    Reply::Random(Bytes::from(&[kind; 24][..]))
                } else {
                    Reply::Failed("store unreachable".into())
                }
            }
        }
    }

    /// A request id: the last one the machine emitted (even byte), or any
    /// id (odd byte: wrong ids and duplicates).
    pub fn id(&mut self, last: Option<RequestId>) -> RequestId {
        let b = self.byte();
        match last {
            Some(id) if b.is_multiple_of(2) => id,
            _ => RequestId(u64::from(b >> 1)),
        }
    }
}

/// What happened during a [`drive`] run.
#[derive(Debug, Default)]
pub struct Report<O> {
    /// Every request the machine emitted, in order.
    pub requests: Vec<Request>,
    /// Every reply fed, with the time it was fed and whether the machine
    /// had already finished.
    pub replies: Vec<(RequestId, Reply, Instant, bool)>,
    /// The outcome (taken exactly once; [`drive`] asserts that).
    pub outcome: Option<O>,
}

/// How many finishing rounds a machine may take once its input is complete
/// and its requests are answered: each round answers every pending request
/// and then fires the machine's timeout.
pub const MAX_ROUNDS: usize = 32;

/// Drives any [`Machine`] through the script and then to completion, and
/// checks the properties every machine shares:
///
/// - no input sequence panics (arbitrary ids, duplicates, replies of the
///   wrong kind, times that go backwards);
/// - request ids are unique;
/// - the outcome is handed out exactly once, and nothing is requested after
///   the machine finished (sticky outcome);
/// - once `input` has been fed, answering every request and firing every
///   timeout reaches an outcome within [`MAX_ROUNDS`] rounds.
///
/// Script ops (one byte, then arguments): 0 feed the input, 1 drain
/// requests, 2 reply (id, reply, time), 3 timeout (time), 4 poll the
/// outcome, 5 poll the timeout.
pub fn drive<M: Machine>(
    m: &mut M,
    script: &mut Script<'_>,
    mut input: impl FnMut(&mut M),
) -> Report<M::Outcome> {
    let start = start_time().instant;
    let mut report = Report {
        requests: Vec::new(),
        replies: Vec::new(),
        outcome: None,
    };
    let mut last: Option<RequestId> = None;
    let mut finished = false;
    let take = |m: &mut M, report: &mut Report<M::Outcome>, finished: &mut bool| {
        if let Some(o) = m.poll_outcome() {
            assert!(report.outcome.is_none(), "outcome handed out twice");
            report.outcome = Some(o);
            *finished = true;
        }
    };
    let drain = |m: &mut M, report: &mut Report<M::Outcome>, last: &mut Option<RequestId>| {
        let mut pending = Vec::new();
        while let Some(r) = m.poll_request() {
            assert!(
                !report.requests.iter().any(|q| q.id() == r.id()),
                "request id {:?} reused",
                r.id()
            );
            *last = Some(r.id());
            pending.push(r.id());
            report.requests.push(r);
            assert!(
                report.requests.len() <= 4 * MAX_ROUNDS,
                "unbounded requests"
            );
        }
        pending
    };
    let mut steps = 0;
    while !script.is_empty() && steps < 256 {
        steps += 1;
        match script.byte() % 6 {
            0 => input(m),
            1 => {
                let n = report.requests.len();
                drain(m, &mut report, &mut last);
                assert!(
                    !(finished && report.requests.len() > n),
                    "a finished machine emitted a request"
                );
            }
            2 => {
                let id = script.id(last);
                let reply = script.reply();
                let now = script.time(start);
                report.replies.push((id, reply.clone(), now, finished));
                m.handle_reply(id, reply, now);
            }
            3 => {
                let now = script.time(start);
                m.handle_timeout(now);
            }
            4 => take(m, &mut report, &mut finished),
            _ => {
                let _ = m.poll_timeout();
            }
        }
    }
    // Finish: complete input, then answer and time out, boundedly.
    input(m);
    take(m, &mut report, &mut finished);
    let mut rounds = 0;
    while report.outcome.is_none() {
        assert!(rounds < MAX_ROUNDS, "no outcome after {MAX_ROUNDS} rounds");
        rounds += 1;
        for id in drain(m, &mut report, &mut last) {
            let reply = script.reply();
            report.replies.push((id, reply.clone(), start, false));
            m.handle_reply(id, reply, start);
        }
        take(m, &mut report, &mut finished);
        if report.outcome.is_none()
            && let Some(t) = m.poll_timeout()
        {
            m.handle_timeout(t);
            take(m, &mut report, &mut finished);
        }
    }
    // Sticky: nothing more comes out.
    m.handle_timeout(start + Duration::from_secs(86_400));
    assert!(
        m.poll_request().is_none(),
        "a finished machine emitted a request"
    );
    assert!(m.poll_outcome().is_none(), "outcome handed out twice");
    report
}

/// A shared config for the machine targets: `keyboard cat`, default
/// origin policy (same host), 3 s deadline, at most 8 save attempts.
pub fn machine_config() -> Arc<Config> {
    Arc::new(
        Config::builder()
            .secret("keyboard cat")
            // Saves retry until the store deadline by default; the scripts
            // answer at frozen times, so a count keeps every run finite.
            .max_save_attempts(8)
            .build()
            // A fixed, non-empty secret and the defaults: build cannot fail.
            .unwrap_or_else(|e| panic!("machine config: {e}")),
    )
}

/// JavaScript equality of two JSON values after a trip through
/// `JSON.stringify`: numbers compare as doubles (`50.0` and `50` are one
/// number, `-0` is `0`), arrays element-wise, objects as key sets
/// (JavaScript moves integer-like keys first).
pub fn js_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| js_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => js_map_eq(x, y),
        _ => a == b,
    }
}

/// [`js_eq`] over two objects, as key sets.
pub fn js_map_eq(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| js_eq(v, w)))
}

/// [`js_eq`] over optional values (`None`: absent).
pub fn js_opt_eq(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => js_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
