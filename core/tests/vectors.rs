//! Every case of `tests/data/express-session-cookies.json`, recorded from a
//! real express-session 1.19.0, through the core API with the exact wire
//! bytes; and the `session_records` decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use session_sockets_core::Config;
use session_sockets_core::codec::record;
use session_sockets_core::codec::resolve::resolve_cookie;
use support::{COOKIE, config, vectors};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

#[test]
fn r17_r18_r19_r20_r21_every_express_session_vector_resolves_the_same_sid() {
    let v = vectors();
    let cases = v["vectors"].as_array().expect("vectors");
    assert!(cases.len() >= 24, "the file holds all cases");
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let config = Config::builder()
            .secrets(strings(&case["secrets"]))
            .cookie_name(case["cookie_name"].as_str().expect("name"))
            .build()
            .expect("config");
        let lines: Vec<Vec<u8>> = strings(&case["cookie_headers_wire_hex"])
            .iter()
            .map(|h| unhex(h))
            .collect();
        let got = resolve_cookie(&config, lines.iter().map(Vec::as_slice));
        let expected = &case["expected"];
        match (got, expected["ok"].as_bool().expect("ok")) {
            (Ok(sid), true) => assert_eq!(
                std::str::from_utf8(sid.expose()).expect("utf-8"),
                expected["sid"].as_str().expect("sid"),
                "{id}"
            ),
            (Err(e), false) => {
                assert_eq!(
                    e.reason(),
                    expected["reason"].as_str().expect("reason"),
                    "{id}"
                )
            }
            (got, _) => panic!("{id}: got {got:?}, expected {expected}"),
        }
    }
}

#[test]
fn express_sessions_own_test_vector() {
    let config = config();
    let sid = resolve_cookie(&config, [COOKIE.as_bytes()]).unwrap();
    assert_eq!(sid.expose(), b"apple");
}

#[test]
fn r01_mutations_of_a_valid_cookie_never_verify() {
    let config = config();
    let v = "s:Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v.CHTwR3T0Ul1x3nYQMRDJEyvuxBnFCcqSwIbARnurjoI";
    let ok = |value: &[u8]| {
        let line = [b"connect.sid=".as_slice(), value].concat();
        resolve_cookie(&config, [line.as_slice()]).is_ok()
    };
    assert!(ok(v.as_bytes()));
    let tail = &v[2..];
    for bad in [
        format!("s:garbage{tail}"),
        format!("s:garbage.{tail}"),
        format!("{v}.garbage"),
        format!("{v}garbage"),
    ] {
        assert!(!ok(bad.as_bytes()), "{bad}");
    }
    let bytes = v.as_bytes();
    for i in 2..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.to_vec();
            m[i] ^= 1 << bit;
            // A flip that makes `%`, `"`, `;`, space or tab changes how the
            // header is split, not the signed bytes; it still must not verify.
            assert!(!ok(&m), "flip {i}:{bit}");
        }
    }
    for n in 0..bytes.len() {
        assert!(!ok(&bytes[..n]), "truncate {n}");
    }
}

#[test]
fn session_records_decode_with_their_ttl_inputs() {
    let v = vectors();
    for rec in v["session_records"].as_array().expect("records") {
        let name = rec["name"].as_str().unwrap();
        let value = rec["redis_value"].as_str().unwrap();
        let decoded = record::decode(value.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let now = rec["request_time_ms"].as_i64().unwrap();
        let ttl = rec["ttl_seconds"].as_i64().unwrap();
        match decoded.cookie.expires_ms() {
            // connect-redis: ceil((expires - now) / 1000), with `now` the
            // moment of the save, a few ms after express-session set
            // `expires = now + originalMaxAge`.
            Some(exp) => {
                let created = exp - decoded.cookie.original_max_age().unwrap();
                assert!(created >= now, "{name}");
                for saved_at in [created, created + 1, created + 999] {
                    assert_eq!((exp - saved_at + 999).div_euclid(1000), ttl, "{name}");
                }
            }
            None => assert_eq!(ttl, 86_400, "{name}"),
        }
        assert!(!decoded.cookie.is_expired(now), "{name}");
        // Decoding keeps every field: re-encoding gives the same bytes.
        assert_eq!(
            String::from_utf8(record::encode(&decoded.cookie, &decoded.data)).unwrap(),
            value,
            "{name}"
        );
    }
}
