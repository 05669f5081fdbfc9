//! The app against a real redis-server, in every cookie mode: a login is
//! then the session `GET /me` sees; the core's tower-sessions codecs read
//! the app's cookie and record, and a session they write is one the app
//! reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::Value;
use session_sockets_core::Limits;
use session_sockets_core::format::cookie_crate::Keys;
use session_sockets_core::format::tower_sessions::{self as ts, Id, Protection, Record, Settings};
use session_sockets_format_tests::harness::{app, http, redis, redis_port, resp};

fn key() -> Vec<u8> {
    (0u8..64).map(|b| b.wrapping_mul(37)).collect()
}

fn settings(mode: &str) -> Settings {
    let keys = || Keys::from_bytes([key()]).unwrap();
    Settings {
        protection: match mode {
            "signed" => Protection::Signed(keys()),
            "private" => Protection::Private(keys()),
            _ => Protection::Plain,
        },
        ..Settings::default()
    }
}

#[test]
fn login_is_the_session_me_sees_in_every_mode_and_the_codecs_agree() {
    let (_redis, url) = redis();
    let redis_port = redis_port(&url);
    let key = base64::engine::general_purpose::STANDARD.encode(key());
    for mode in ["plain", "signed", "private"] {
        let (_app, port) = app(
            env!("CARGO_BIN_EXE_tower-sessions-app"),
            &[
                "--redis", &url, "--port", "0", "--mode", mode, "--key", &key,
            ],
        );
        assert_eq!(http(port, "GET", "/me", None).status, 401, "{mode}");
        let login = http(port, "POST", "/login/ada", None);
        assert_eq!(login.status, 200, "{mode}: {login:?}");
        assert!(
            login.set_cookies[0].ends_with("; HttpOnly; SameSite=Strict; Secure; Path=/"),
            "{mode}: {login:?}"
        );
        let cookie = login.cookie();
        let me = http(port, "GET", "/me", Some(&cookie));
        assert_eq!(me.status, 200, "{mode}: {me:?}");
        let data: Value = serde_json::from_str(&me.body).unwrap();
        assert_eq!(data["user"], "ada", "{mode}");
        assert_eq!(data["axum-login.data"]["user_id"], "ada", "{mode}");
        assert_eq!(http(port, "POST", "/incr", Some(&cookie)).body, "1");
        assert_eq!(http(port, "POST", "/incr", Some(&cookie)).body, "2");

        // The core resolves the app's cookie to the key the app stored,
        // decodes the record and writes it back byte for byte.
        let settings = settings(mode);
        let id = ts::resolve(&settings, [cookie.as_bytes()], Limits::default()).unwrap();
        let bytes = resp(redis_port, &[b"GET", id.expose().as_bytes()])
            .unwrap()
            .unwrap();
        let record = Record::decode(&bytes).unwrap();
        assert_eq!(record.id, id, "{mode}");
        assert_eq!(record.data["n"], 2, "{mode}");
        assert_eq!(ts::axum_login(&record.data).unwrap().user_id, "ada");
        assert_eq!(record.encode(), bytes, "{mode}");
        let ttl = resp(redis_port, &[b"TTL", id.expose().as_bytes()])
            .unwrap()
            .unwrap();
        let ttl: i64 = String::from_utf8(ttl).unwrap().parse().unwrap();
        let expected = ts::ttl_secs(&record.expiry_date, SystemTime::now());
        assert!((expected - ttl).abs() <= 2, "{mode}: {ttl} vs {expected}");

        // A session the core writes (record, key, TTL, cookie) is one the
        // app reads.

        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mine = Id::from_random(&seed.to_le_bytes()).unwrap();
        let now = SystemTime::now();
        let mut record = Record::new(mine, ts::expiry_date(None, now));
        record.data.insert("user".into(), "bob".into());
        let ttl = ts::ttl_secs(&record.expiry_date, now).to_string();
        let stored = resp(
            redis_port,
            &[
                b"SET",
                mine.expose().as_bytes(),
                &record.encode(),
                b"EX",
                ttl.as_bytes(),
                b"NX",
            ],
        )
        .unwrap();
        assert_eq!(stored.as_deref(), Some(&b"OK"[..]));
        let header = ts::set_cookie(&settings, &mine, [5; 12], now);
        let cookie_mine = header.split(';').next().unwrap();
        let me = http(port, "GET", "/me", Some(cookie_mine));
        assert_eq!(me.status, 200, "{mode}: {me:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&me.body).unwrap()["user"],
            "bob"
        );

        // Logout: the record is gone, the removal cookie is tower-sessions'.
        let out = http(port, "POST", "/logout", Some(&cookie));
        assert_eq!(out.status, 200, "{mode}");
        assert!(
            out.set_cookies[0].starts_with("id=; Path=/; Max-Age=0; Expires="),
            "{out:?}"
        );
        assert_eq!(
            resp(redis_port, &[b"GET", id.expose().as_bytes()]).unwrap(),
            None
        );
        assert_eq!(
            http(port, "GET", "/me", Some(&cookie)).status,
            401,
            "{mode}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
