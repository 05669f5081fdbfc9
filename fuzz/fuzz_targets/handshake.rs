//! `handshake`: the handshake and reload machines under arbitrary sequences
//! of inputs, replies and times.
//!
//! Input: header lines `name:value` separated by `\n`, then a `\0`, then the
//! script `session_sockets_fuzz::drive` runs: feed the headers, drain
//! requests, replies with right, wrong and repeated ids and every reply
//! kind (records live, expired, malformed), timeouts, polls, at times before
//! and after the 3 s store deadline, in any order. The same script then
//! drives a `Reload` of the id the headers name.
//!
//! Properties (besides `drive`'s: no panic, unique request ids, the outcome
//! exactly once, nothing after it, an outcome within a bounded number of
//! rounds once the input is complete):
//! - a handshake emits at most one request, a `Load` of `sess:` + the id
//!   the cookie resolves to (`resolve_cookie` on the same lines);
//! - its timeout, when it has one, is the start plus the store deadline;
//! - fail closed (R23, R13): an `Ok` session comes only from a `Found`
//!   reply to that `Load`, fed before the deadline to a machine that had not
//!   finished, holding a record that is not expired at that time; and the
//!   session's id is the resolved id;
//! - the Origin check (R5) runs before any store request: a request whose
//!   headers the origin policy refuses emits none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::record::decode;
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::machines::{Handshake, Reload};
use session_sockets_core::time::millis;
use session_sockets_core::{HandshakeError, Machine, Reply, Request, SessionId};
use session_sockets_fuzz::{Script, drive, machine_config, start_time};

fuzz_target!(|data: &[u8]| {
    let (head, ops) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let headers: Vec<(&[u8], &[u8])> = if head.is_empty() {
        Vec::new()
    } else {
        head.split(|&b| b == b'\n')
            .map(|l| match l.iter().position(|&b| b == b':') {
                Some(i) => (&l[..i], &l[i + 1..]),
                None => (l, &[][..]),
            })
            .collect()
    };
    let config = machine_config();
    let start = start_time();
    let deadline = start.instant + config.store_deadline();
    let cookie_lines: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .map(|(_, v)| *v)
        .collect();
    let resolved = resolve_cookie(&config, cookie_lines.iter().copied());

    let mut hs = Handshake::new(config.clone(), start);
    let mut script = Script::new(ops);
    let report = drive(&mut hs, &mut script, |m: &mut Handshake| {
        m.handle_headers(headers.iter().copied(), start.instant);
        if let Some(t) = m.poll_timeout() {
            assert_eq!(t, deadline, "timeout is not start + store deadline");
        }
    });

    assert!(
        report.requests.len() <= 1,
        "a handshake emitted {} requests",
        report.requests.len()
    );
    if let Some(req) = report.requests.first() {
        let Request::Load { key, .. } = req else {
            panic!("a handshake emitted {req:?}");
        };
        let Ok(sid) = &resolved else {
            panic!("a Load without a resolved cookie");
        };
        assert_eq!(key.as_bytes().strip_prefix(b"sess:"), Some(sid.expose()));
    }
    match report.outcome {
        Some(Ok(session)) => {
            let Some(Request::Load { id, .. }) = report.requests.first() else {
                panic!("a session without a Load");
            };
            let granted = report.replies.iter().any(|(rid, reply, at, finished)| {
                rid == id
                    && !finished
                    && *at < deadline
                    && matches!(reply, Reply::Found(b)
                        if decode(b).is_ok_and(|r| !r.cookie.is_expired(millis(start.wall_at(*at)))))
            });
            assert!(granted, "a session without a timely Found reply");
            let Ok(sid) = &resolved else {
                panic!("a session without a resolved cookie");
            };
            assert_eq!(session.id().expose().as_bytes(), sid.expose());
        }
        Some(Err(HandshakeError::OriginRejected(_))) => {
            assert!(
                report.requests.is_empty(),
                "a store request before the origin check"
            );
        }
        Some(Err(_)) => {}
        None => panic!("drive returned without an outcome"),
    }

    // The same script against a reload of the resolved id.
    if let Ok(sid) = &resolved {
        let id = SessionId::new(String::from_utf8_lossy(sid.expose()).into_owned());
        let mut reload = Reload::new(config.clone(), &id, start);
        let mut script = Script::new(ops);
        let report = drive(&mut reload, &mut script, |_| {});
        assert!(
            report.requests.len() <= 1,
            "a reload emitted several requests"
        );
        if let Some(Ok(session)) = &report.outcome {
            assert_eq!(session.id(), &id);
        }
    }
});
