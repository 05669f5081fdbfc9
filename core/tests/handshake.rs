//! Golden transcripts of the handshake machine: headers and scripted store
//! replies in, every emitted request and the outcome out, compared as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use session_sockets_core::codec::cookie::Limits;
use session_sockets_core::machines::{Handshake, Reload};
use session_sockets_core::time::from_millis;
use session_sockets_core::{Config, Machine, Now, Reply, Request, RequestId, SessionId};
use support::{COOKIE, DEADLINE, config_with, t};

const RECORD: &str = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2026-11-29T13:14:27.949Z","httpOnly":true,"path":"/"},"user":"ada"}"#;

/// 2026-11-29T12:00:00Z, well before the record's expiry.
fn t0() -> Now {
    Now::new(t(0), from_millis(1_795_953_600_000))
}

/// [`support::config`] with an origin allowlist and small header limits.
fn config() -> Arc<Config> {
    config_with(|b| {
        b.allowed_origins(["https://app.example"])
            .store_deadline(DEADLINE)
            .limits(Limits {
                max_header_bytes: 200,
                max_pairs: 8,
            })
    })
}

/// What the store does with the `Load`: answer at an offset from `t0`, or
/// never (the test then steps time).
enum Script {
    Answer(Reply, Duration),
    Silent,
}

/// Drives `m` with `script`, logging every request and the outcome.
fn transcript<M>(mut m: M, script: Script) -> Vec<String>
where
    M: Machine<
        Outcome = Result<session_sockets_core::Session, session_sockets_core::HandshakeError>,
    >,
{
    let mut log = Vec::new();
    let mut script = Some(script);
    for _ in 0..10 {
        while let Some(req) = m.poll_request() {
            match &req {
                Request::Load { id, key } => log.push(format!(
                    "-> Load #{} {}",
                    id.0,
                    String::from_utf8_lossy(key.as_bytes())
                )),
                other => log.push(format!("-> unexpected {other:?}")),
            }
            match script.take() {
                Some(Script::Answer(reply, after)) => {
                    log.push(format!("<- {}", describe(&reply)));
                    // A reply to an unknown id first: must be ignored.
                    m.handle_reply(
                        RequestId(req.id().0 + 100),
                        Reply::NotFound,
                        t0().instant + after,
                    );
                    m.handle_reply(req.id(), reply.clone(), t0().instant + after);
                    // And a duplicate: the machine stays finished.
                    m.handle_reply(req.id(), reply, t0().instant + after);
                }
                Some(Script::Silent) | None => {}
            }
        }
        if let Some(outcome) = m.poll_outcome() {
            log.push(match outcome {
                Ok(s) => format!(
                    "= Ok id={} user={:?}",
                    s.id().expose(),
                    s.get::<String>("user").unwrap()
                ),
                Err(e) => format!("= Err {}: {e}", e.reason()),
            });
            assert!(m.poll_outcome().is_none(), "the outcome is given once");
            assert!(
                m.poll_request().is_none(),
                "a finished machine asks nothing"
            );
            assert_eq!(m.poll_timeout(), None, "a finished machine has no deadline");
            return log;
        }
        let deadline = m
            .poll_timeout()
            .expect("an unfinished machine has a deadline");
        log.push(format!(
            "~ timeout at +{}ms",
            deadline.duration_since(t0().instant).as_millis()
        ));
        m.handle_timeout(deadline - Duration::from_millis(1));
        assert!(m.poll_outcome().is_none(), "not before the deadline");
        m.handle_timeout(deadline);
    }
    panic!("no outcome: {log:?}")
}

fn describe(r: &Reply) -> String {
    match r {
        Reply::Found(b) => format!("Found {} bytes", b.len()),
        Reply::Failed(e) => format!("Failed {:?}", e.message()),
        other => format!("{other:?}"),
    }
}

fn handshake(headers: &[(&str, &str)]) -> Handshake {
    let mut hs = Handshake::new(config(), t0());
    hs.handle_headers(headers.iter().copied(), t0().instant);
    // A second call is ignored.
    hs.handle_headers([("cookie", "connect.sid=s%3Aother")], t0().instant);
    hs
}

fn found(json: &str) -> Script {
    Script::Answer(
        Reply::Found(json.as_bytes().into()),
        Duration::from_millis(5),
    )
}

#[test]
fn found_session() {
    assert_eq!(
        transcript(
            handshake(&[("Cookie", COOKIE), ("Origin", "https://app.example")]),
            found(RECORD)
        ),
        [
            "-> Load #1 sess:apple",
            "<- Found 114 bytes",
            "= Ok id=apple user=Some(\"ada\")",
        ]
    );
}

#[test]
fn not_found() {
    assert_eq!(
        transcript(
            handshake(&[("cookie", COOKIE)]),
            Script::Answer(Reply::NotFound, Duration::from_millis(5))
        ),
        [
            "-> Load #1 sess:apple",
            "<- NotFound",
            "= Err session_not_found: the store has no session for this cookie: it was destroyed \
             or expired, or the store (or its key prefix) is not the one the HTTP app uses",
        ]
    );
}

#[test]
fn r13_expired_record_is_no_session_even_if_the_store_returns_it() {
    let expired = RECORD.replace("2026-11-29T13:14:27.949Z", "2026-11-29T12:00:00.005Z");
    let log = transcript(handshake(&[("cookie", COOKIE)]), found(&expired));
    assert_eq!(
        log[2],
        "= Err expired: the session's cookie.expires has passed: the client must log in again"
    );
    // One millisecond earlier it is still valid.
    let fresh = RECORD.replace("2026-11-29T13:14:27.949Z", "2026-11-29T12:00:00.006Z");
    let log = transcript(handshake(&[("cookie", COOKIE)]), found(&fresh));
    assert!(log[2].starts_with("= Ok"), "{log:?}");
}

#[test]
fn r13_with_rolling_the_store_ttl_is_the_authority_on_expiry() {
    // A rolling express app touched this session (EXPIRE only): the stored
    // `expires` is stale but the record is alive, and express serves it.
    let stale = RECORD.replace("2026-11-29T13:14:27.949Z", "2026-11-29T11:00:00.000Z");
    let config = config_with(|b| b.rolling(true));
    let mut hs = Handshake::new(config, t0());
    hs.handle_headers([("cookie", COOKIE)], t0().instant);
    let log = transcript(hs, found(&stale));
    assert!(log[2].starts_with("= Ok id=apple"), "{log:?}");
    // Without rolling the same record is expired.
    let log = transcript(handshake(&[("cookie", COOKIE)]), found(&stale));
    assert!(log[2].starts_with("= Err expired"), "{log:?}");
}

#[test]
fn malformed_record() {
    let log = transcript(handshake(&[("cookie", COOKIE)]), found(r#"{"user":"ada"}"#));
    assert_eq!(
        log,
        [
            "-> Load #1 sess:apple",
            "<- Found 14 bytes",
            "= Err malformed_record: the stored session is not an express-session record (the \
             record has no `cookie` object): is another application writing under the same key prefix?",
        ]
    );
}

#[test]
fn r23_store_error_fails_closed() {
    let log = transcript(
        handshake(&[("cookie", COOKIE)]),
        Script::Answer(
            Reply::Failed("connection refused".into()),
            Duration::from_millis(5),
        ),
    );
    assert_eq!(
        log,
        [
            "-> Load #1 sess:apple",
            "<- Failed \"connection refused\"",
            "= Err store_error: the session store failed (connection refused): is it up and \
             reachable, and is it the store the HTTP app uses?",
        ]
    );
}

#[test]
fn r23_timeout_fails_closed_at_the_deadline() {
    assert_eq!(
        transcript(handshake(&[("cookie", COOKIE)]), Script::Silent),
        [
            "-> Load #1 sess:apple",
            "~ timeout at +2000ms",
            "= Err timeout: the session store did not answer before the deadline: is it up and \
             reachable? (Config::store_deadline sets the deadline)",
        ]
    );
}

#[test]
fn r23_a_reply_after_the_deadline_is_a_timeout() {
    let log = transcript(
        handshake(&[("cookie", COOKIE)]),
        Script::Answer(
            Reply::Found(RECORD.as_bytes().into()),
            Duration::from_secs(2),
        ),
    );
    assert!(log[2].starts_with("= Err timeout"), "{log:?}");
}

#[test]
fn r05_r06_origin_rejected_before_any_store_request() {
    assert_eq!(
        transcript(
            handshake(&[("cookie", COOKIE), ("origin", "https://evil.example")]),
            Script::Silent
        ),
        [
            "= Err origin_rejected: cross-site request refused: origin `https://evil.example` is not allowed: \
             if it is your site, add it with allowed_origins([..])",
        ]
    );
    let log = transcript(
        handshake(&[("origin", "null"), ("cookie", COOKIE)]),
        Script::Silent,
    );
    assert!(log[0].starts_with("= Err origin_rejected"), "{log:?}");
    let log = transcript(
        handshake(&[("origin", "https://app.example/"), ("cookie", COOKIE)]),
        Script::Silent,
    );
    assert!(log[0].contains("not of the form"), "{log:?}");
}

#[test]
fn r04_header_too_large() {
    let long = format!("pad={}; {COOKIE}", "x".repeat(150));
    assert_eq!(
        transcript(handshake(&[("cookie", &long)]), Script::Silent),
        [
            "= Err header_too_large: the Cookie header lines exceed 200 bytes; raise \
             Limits::max_header_bytes if your site really sets that many cookies",
        ]
    );
    let many = format!("a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8; {COOKIE}");
    let log = transcript(handshake(&[("cookie", &many)]), Script::Silent);
    assert!(log[0].starts_with("= Err header_too_large"), "{log:?}");
    assert!(log[0].contains("first 8 cookies"), "{log:?}");
}

#[test]
fn cookie_level_errors_emit_no_request() {
    for (headers, reason) in [
        (&[][..], "no_cookie_header"),
        (&[("cookie", "a=1")][..], "cookie_absent"),
        (&[("cookie", "connect.sid=")][..], "empty_value"),
        (&[("cookie", "connect.sid=apple")][..], "unsigned"),
        (
            &[("cookie", "connect.sid=s%3Aapple.nope")][..],
            "signature_invalid",
        ),
    ] {
        let log = transcript(handshake(headers), Script::Silent);
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(log[0].starts_with(&format!("= Err {reason}")), "{log:?}");
    }
}

#[test]
fn r15_ids_with_control_characters_are_not_store_keys() {
    let config = Arc::new(
        Config::builder()
            .secret("s")
            .accept_unsigned(true)
            .build()
            .unwrap(),
    );
    let mut hs = Handshake::new(config.clone(), t0());
    hs.handle_headers([("cookie", "connect.sid=a%0Ab")], t0().instant);
    let log = transcript(hs, Script::Silent);
    assert!(log[0].starts_with("= Err invalid_session_id"), "{log:?}");
    let mut hs = Handshake::new(config, t0());
    hs.handle_headers(
        [("cookie", format!("connect.sid={}", "a".repeat(257)))],
        t0().instant,
    );
    let log = transcript(hs, Script::Silent);
    assert!(log[0].starts_with("= Err invalid_session_id"), "{log:?}");
}

#[test]
fn http_header_map_and_multiple_cookie_lines() {
    let mut map = http::HeaderMap::new();
    map.append("cookie", "a=1".parse().unwrap());
    map.append("cookie", COOKIE.parse().unwrap());
    let mut hs = Handshake::new(config(), t0());
    hs.handle_header_map(&map, t0().instant);
    let log = transcript(hs, found(RECORD));
    assert_eq!(log[0], "-> Load #1 sess:apple");
    assert!(log[2].starts_with("= Ok id=apple"), "{log:?}");
}

#[test]
fn r09_reload_loads_a_known_session_again() {
    let reload = Reload::new(config(), &SessionId::new("apple"), t0());
    assert_eq!(
        transcript(reload, found(RECORD)),
        [
            "-> Load #1 sess:apple",
            "<- Found 114 bytes",
            "= Ok id=apple user=Some(\"ada\")"
        ]
    );
    let reload = Reload::new(config(), &SessionId::new("apple"), t0());
    let log = transcript(reload, Script::Answer(Reply::NotFound, Duration::ZERO));
    assert!(log[2].starts_with("= Err session_not_found"), "{log:?}");
}

/// R39: the checks before the store lookup, alone, give the handshake's own
/// errors in the handshake's order (Origin first), with no request.
#[test]
fn r39_precheck_is_the_handshake_up_to_its_load() {
    use session_sockets_core::codec::resolve::precheck;
    let config = config();
    let good = COOKIE;
    let bad = "connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCV";
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers, Result<(), &str>); 5] = [
        (
            &[("origin", "https://app.example"), ("cookie", good)],
            Ok(()),
        ),
        (
            &[("origin", "https://app.example")],
            Err("no_cookie_header"),
        ),
        (
            &[("origin", "https://app.example"), ("cookie", bad)],
            Err("signature_invalid"),
        ),
        (
            &[("origin", "https://evil.example"), ("cookie", good)],
            Err("origin_rejected"),
        ),
        // Origin is checked before the cookie, as the handshake does.
        (
            &[("origin", "https://evil.example")],
            Err("origin_rejected"),
        ),
    ];
    for (headers, want) in cases {
        let got = precheck(&config, headers.iter().copied()).map_err(|e| e.reason());
        assert_eq!(got, want, "{headers:?}");
        let mut hs = Handshake::new(Arc::clone(&config), t0());
        hs.handle_headers(headers.iter().copied(), t0().instant);
        match want {
            Ok(()) => assert!(matches!(hs.poll_request(), Some(Request::Load { .. }))),
            Err(reason) => assert_eq!(hs.poll_outcome().unwrap().unwrap_err().reason(), reason),
        }
    }
}
