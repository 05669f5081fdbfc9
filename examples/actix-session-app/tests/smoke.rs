//! The app against a real redis-server, private and signed: a login is
//! then the session `GET /me` sees; the core's actix-session codecs read
//! the app's cookie and state, and a session they write is one the app
//! reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Map, Value};
use session_sockets_core::Limits;
use session_sockets_core::format::actix_session::{
    self as ax, ContentSecurity, SessionKey, Settings, State,
};
use session_sockets_core::format::cookie_crate::Keys;
use session_sockets_format_tests::harness::{app, http, redis, redis_port, resp};

fn key() -> Vec<u8> {
    (0u8..64)
        .map(|b| b.wrapping_mul(41).wrapping_add(3))
        .collect()
}

fn settings(mode: &str) -> Settings {
    let keys = Keys::from_bytes([key()]).unwrap();
    Settings::new(match mode {
        "signed" => ContentSecurity::Signed(keys),
        _ => ContentSecurity::Private(keys),
    })
}

#[test]
fn login_is_the_session_me_sees_in_every_mode_and_the_codecs_agree() {
    let (_redis, url) = redis();
    let redis_port = redis_port(&url);
    let key = base64::engine::general_purpose::STANDARD.encode(key());
    for mode in ["private", "signed"] {
        let (_app, port) = app(
            env!("CARGO_BIN_EXE_actix-session-app"),
            &[
                "--redis", &url, "--port", "0", "--mode", mode, "--key", &key,
            ],
        );
        assert_eq!(http(port, "GET", "/me", None).status, 401, "{mode}");
        let login = http(port, "POST", "/login/ada", None);
        assert_eq!(login.status, 200, "{mode}: {login:?}");
        assert!(
            login.set_cookies[0].ends_with("; HttpOnly; SameSite=Lax; Secure; Path=/"),
            "{mode}: {login:?}"
        );
        let cookie = login.cookie();
        let me = http(port, "GET", "/me", Some(&cookie));
        assert_eq!(me.status, 200, "{mode}: {me:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&me.body).unwrap()["user"],
            "ada"
        );
        let n = http(port, "POST", "/incr", Some(&cookie));
        assert_eq!(n.body, "1", "{mode}: {n:?}");
        // Every change re-sends the cookie (a new nonce when private).
        let cookie = n.cookie();
        assert_eq!(http(port, "POST", "/incr", Some(&cookie)).body, "2");

        // The core resolves the app's cookie to the key the app stored and
        // writes its state back byte for byte.
        let settings = settings(mode);
        let session_key = ax::resolve(&settings, [cookie.as_bytes()], Limits::default()).unwrap();
        assert_eq!(session_key.expose().len(), 64);
        let store_key = ax::store_key(&session_key);
        let bytes = resp(redis_port, &[b"GET", store_key.as_bytes()])
            .unwrap()
            .unwrap();
        let state = State::decode(&bytes).unwrap();
        assert_eq!(state.data["user"], "ada", "{mode}");
        assert_eq!(state.data["n"], 2, "{mode}");
        assert_eq!(state.encode(), bytes, "{mode}");
        let ttl = resp(redis_port, &[b"TTL", store_key.as_bytes()])
            .unwrap()
            .unwrap();
        let ttl: u64 = String::from_utf8(ttl).unwrap().parse().unwrap();
        assert!(settings.lifecycle.ttl_secs() - ttl <= 2, "{mode}: {ttl}");

        // A session the core writes (state, key, TTL, cookie) is one the
        // app reads.
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_le_bytes();
        let random: Vec<u8> = seed
            .iter()
            .cycle()
            .take(96)
            .enumerate()
            .map(|(i, b)| b ^ (i as u8))
            .collect();
        let mine = SessionKey::from_random(&random).unwrap();
        let mut data = Map::new();
        data.insert("user".into(), "bob".into());
        let ttl = settings.lifecycle.ttl_secs().to_string();
        let stored = resp(
            redis_port,
            &[
                b"SET",
                mine.expose().as_bytes(),
                &State::new(data).encode(),
                b"NX",
                b"EX",
                ttl.as_bytes(),
            ],
        )
        .unwrap();
        assert_eq!(stored.as_deref(), Some(&b"OK"[..]));
        let header = ax::set_cookie(&settings, &mine, [9; 12]);
        let me = http(port, "GET", "/me", Some(header.split(';').next().unwrap()));
        assert_eq!(me.status, 200, "{mode}: {me:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&me.body).unwrap()["user"],
            "bob"
        );

        // Logout: the state is gone, the removal cookie is actix-session's.
        let out = http(port, "POST", "/logout", Some(&cookie));
        assert_eq!(out.status, 200, "{mode}");
        assert!(
            out.set_cookies[0]
                .starts_with("id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires="),
            "{out:?}"
        );
        assert_eq!(
            resp(redis_port, &[b"GET", store_key.as_bytes()]).unwrap(),
            None
        );
        assert_eq!(
            http(port, "GET", "/me", Some(&cookie)).status,
            401,
            "{mode}"
        );
    }
}
