//! Time in the machines: deadlines on the monotonic clock, the wall clock
//! read once at the start, and the wall time of every later step derived
//! from the monotonic one (R13, R23). A wall clock stepped an hour forward
//! or back while an operation is in flight fails nothing and changes no
//! expiry or TTL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Map;
use session_sockets_core::machines::{Create, Destroy, Handshake, Regenerate, Reload, Save, Touch};
use session_sockets_core::time::{millis, to_iso};
use session_sockets_core::{HandshakeError, Machine, Now, Reply, Request, SessionId};
use support::{COOKIE, T0_MS, at, config, good_reply, loaded};

const HOUR: Duration = Duration::from_secs(3600);

/// A record whose cookie expires `secs` after the start's wall time.
fn record_expiring_in(secs: i64) -> String {
    let expires = to_iso(T0_MS + secs * 1000);
    format!(
        r#"{{"cookie":{{"originalMaxAge":{},"expires":"{expires}","httpOnly":true,"path":"/"}},"n":1}}"#,
        secs * 1000
    )
}

/// The machine's clock as an operating system shows it: a monotonic clock
/// and a wall clock that someone steps by `jump` (forward or back) right
/// after the operation started. Machines get the wall time once, at the
/// start, and instants after that.
struct Os {
    start: Now,
    jump: Duration,
    forward: bool,
}

impl Os {
    fn new(forward: bool) -> Self {
        Os {
            start: at(0),
            jump: HOUR,
            forward,
        }
    }

    /// The monotonic time `ms` after the start.
    fn instant(&self, ms: u64) -> Instant {
        self.start.instant + Duration::from_millis(ms)
    }

    /// What the stepped wall clock reads `ms` after the start.
    fn stepped_wall_ms(&self, ms: u64) -> i64 {
        let jump = i64::try_from(self.jump.as_millis()).unwrap();
        T0_MS + i64::try_from(ms).unwrap() + if self.forward { jump } else { -jump }
    }
}

/// Answers every request of `m` at `ms` after the start with the reply that
/// moves it forward, recording the requests; returns the outcome.
fn run<M: Machine>(
    m: &mut M,
    os: &Os,
    ms: u64,
    answer: impl Fn(&Request) -> Reply,
) -> (Vec<Request>, M::Outcome) {
    let mut seen = Vec::new();
    for _ in 0..8 {
        while let Some(r) = m.poll_request() {
            m.handle_reply(r.id(), answer(&r), os.instant(ms));
            seen.push(r);
        }
        if let Some(outcome) = m.poll_outcome() {
            return (seen, outcome);
        }
        m.handle_timeout(os.instant(ms));
    }
    panic!("no outcome after {seen:?}")
}

#[test]
fn r23_a_wall_clock_stepped_an_hour_either_way_mid_operation_fails_nothing() {
    // The record expires half an hour after the start: a wall clock read
    // again after a forward step would find it expired, and a deadline on
    // the wall clock would have passed long ago.
    let rec = record_expiring_in(1800);
    for forward in [true, false] {
        let os = Os::new(forward);
        let later = 10;
        // What the stepped wall clock reads when the replies come: past
        // the record's expiry and every wall-clock deadline (forward), or
        // before the operation began (back).
        let stepped = os.stepped_wall_ms(later);
        if forward {
            assert!(stepped > T0_MS + 1_800_000);
        } else {
            assert!(stepped < T0_MS - 2_000);
        }
        let c = config();

        let mut hs = Handshake::new(Arc::clone(&c), os.start);
        hs.handle_headers([("cookie", COOKIE)], os.start.instant);
        let found = |_: &Request| Reply::Found(rec.as_bytes().into());
        let (_, out) = run(&mut hs, &os, later, found);
        assert!(out.is_ok(), "handshake, forward {forward}: {out:?}");

        let mut m = Reload::new(Arc::clone(&c), &SessionId::new("apple"), os.start);
        let (_, out) = run(&mut m, &os, later, found);
        assert!(out.is_ok(), "reload, forward {forward}: {out:?}");

        let mut s = loaded(&rec);
        s.insert("n", 2).unwrap();
        let mut m = Save::new(Arc::clone(&c), s, os.start);
        let (reqs, out) = run(&mut m, &os, later, good_reply);
        assert!(out.is_ok(), "save, forward {forward}: {out:?}");
        // The TTL counts from the start's wall time plus 10 ms, not from
        // the stepped clock: ceil((1800 s - 10 ms) / 1 s).
        assert!(
            matches!(reqs[..], [Request::CompareAndSet { ttl_secs: 1800, .. }]),
            "{reqs:?}"
        );

        let mut m = Touch::new(Arc::clone(&c), loaded(&rec), os.start);
        let (_, out) = run(&mut m, &os, later, good_reply);
        assert!(out.is_ok(), "touch, forward {forward}: {out:?}");

        let mut m = Destroy::new(Arc::clone(&c), &SessionId::new("apple"), os.start);
        let (_, out) = run(&mut m, &os, later, good_reply);
        assert!(out.is_ok(), "destroy, forward {forward}: {out:?}");

        let mut m = Create::new(Arc::clone(&c), Map::new(), os.start);
        let (_, out) = run(&mut m, &os, later, good_reply);
        assert!(out.is_ok(), "create, forward {forward}: {out:?}");

        let mut m = Regenerate::new(Arc::clone(&c), loaded(&rec), true, os.start);
        let (_, out) = run(&mut m, &os, later, good_reply);
        assert!(out.is_ok(), "regenerate, forward {forward}: {out:?}");
    }
}

#[test]
fn r13_the_wall_time_of_a_step_is_the_start_plus_the_monotonic_time_elapsed() {
    let os = Os::new(true);
    let rec = record_expiring_in(1);
    let found = |_: &Request| Reply::Found(rec.as_bytes().into());
    // Answered 0.5 s after the start: the record still lives.
    let mut hs = Handshake::new(config(), os.start);
    hs.handle_headers([("cookie", COOKIE)], os.start.instant);
    assert!(run(&mut hs, &os, 500, found).1.is_ok());
    // Answered 1.5 s after the start (within the 2 s deadline): it expired
    // on the way, by the start's wall time plus the time elapsed.
    let mut hs = Handshake::new(config(), os.start);
    hs.handle_headers([("cookie", COOKIE)], os.start.instant);
    assert_eq!(
        run(&mut hs, &os, 1500, found).1.unwrap_err(),
        HandshakeError::Expired
    );
    // A save retried after a conflict 1.5 s in counts its TTL from then.
    let rec = record_expiring_in(3600);
    let mut s = loaded(&rec);
    s.insert("n", 2).unwrap();
    let mut m = Save::new(config(), s, os.start);
    let Some(Request::CompareAndSet { id, ttl_secs, .. }) = m.poll_request() else {
        panic!("a compare-and-set")
    };
    assert_eq!(ttl_secs, 3600);
    m.handle_reply(id, Reply::Conflict(rec.as_bytes().into()), os.instant(1500));
    let Some(Request::CompareAndSet { ttl_secs, .. }) = m.poll_request() else {
        panic!("a second compare-and-set")
    };
    assert_eq!(ttl_secs, 3599, "ceil(3600 s - 1.5 s)");
    assert_eq!(millis(os.start.wall_at(os.instant(1500))), T0_MS + 1500);
}
