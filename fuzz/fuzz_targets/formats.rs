//! `formats`: the session formats of tower-sessions and actix-session, in
//! one target (one minute of CI for all of it).
//!
//! Input: a selector byte, then a payload.
//!
//! - `sel % 4 == 0`, **the `cookie` crate's own jars** (0.18, the bytes
//!   0.16 writes too): the payload, as UTF-8, is a cookie value. The core's
//!   `Keys::verify` and `Keys::open` (two keys: rotation) must agree with
//!   `SignedJar::verify` and `PrivateJar::decrypt` under each key, on the
//!   value itself, on the jar's own signed and private values of it, and on
//!   those with one byte changed (`sel`'s upper bits pick which); the core's
//!   signed value is the jar's, and its sealed value opens in the jar. The
//!   cookie name of a private value (its associated data) is `id` or, for
//!   odd selectors, `sid`, opened under `id`: a moved value never opens.
//! - `sel % 4 == 1`, **tower-sessions records**: `Record::decode` of the
//!   payload never panics; a record it decodes encodes to bytes that decode
//!   to the same record and encode to the same bytes again.
//! - `sel % 4 == 2`, **actix-session states**: the same for `State`.
//! - `sel % 4 == 3`, **cookies in every format**: the payload is `Cookie`
//!   header lines (split on `\n`); the tower-sessions (plain, signed,
//!   private) and actix-session (private, signed) resolvers and the
//!   handshake's checks never panic, agree with each other, and an id one
//!   of them finds is found again in the cookie the format writes for it.
#![no_main]

use cookie::{Cookie, CookieJar, Key as JarKey};
use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::cookie::Limits;
use session_sockets_core::codec::resolve::precheck;
use session_sockets_core::format::actix_session::{self, ContentSecurity, State};
use session_sockets_core::format::cookie_crate::{Key, Keys};
use session_sockets_core::format::tower_sessions::{self, Protection, Record};
use session_sockets_core::{Config, Format};
use session_sockets_fuzz::split_lines;

const KEY_A: [u8; 64] = {
    let mut k = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        k[i] = i as u8;
        i += 1;
    }
    k
};
const KEY_B: [u8; 64] = [7; 64];

fn keys() -> Keys {
    // Both are 64 bytes: this cannot fail.
    Keys::new([
        Key::from_bytes(&KEY_A).expect("64 bytes"),
        Key::from_bytes(&KEY_B).expect("64 bytes"),
    ])
    .expect("two keys")
}

/// What the jar with `key` makes of a cookie `name=value`, signed and
/// private.
fn jar_verify(key: &[u8; 64], value: &str) -> Option<String> {
    let key = JarKey::from(&key[..]);
    CookieJar::new()
        .signed(&key)
        .verify(Cookie::new("id", value.to_owned()))
        .map(|c| c.value().to_owned())
}

fn jar_decrypt(key: &[u8; 64], name: &str, value: &str) -> Option<String> {
    let key = JarKey::from(&key[..]);
    CookieJar::new()
        .private(&key)
        .decrypt(Cookie::new(name.to_owned(), value.to_owned()))
        .map(|c| c.value().to_owned())
}

/// The core and the jars agree on `value`, signed and private.
fn agree(keys: &Keys, value: &str) {
    let ours = keys.verify(value).ok();
    let theirs = jar_verify(&KEY_A, value).or_else(|| jar_verify(&KEY_B, value));
    assert_eq!(ours, theirs.as_deref(), "verify");
    let ours = keys.open("id", value).ok();
    let theirs = jar_decrypt(&KEY_A, "id", value).or_else(|| jar_decrypt(&KEY_B, "id", value));
    assert_eq!(ours, theirs, "open");
}

/// `s` with byte `at` (mod its length) changed, when still UTF-8.
fn changed(s: &str, at: usize) -> Option<String> {
    let mut b = s.as_bytes().to_vec();
    if b.is_empty() {
        return None;
    }
    let i = at % b.len();
    b[i] ^= 1 << (at / b.len() % 7);
    String::from_utf8(b).ok()
}

fn cookie_crate(sel: u8, payload: &[u8]) {
    let Ok(value) = std::str::from_utf8(payload) else {
        return;
    };
    let keys = keys();
    agree(&keys, value);
    let at = usize::from(sel >> 2);
    // Signed: the jar's value verifies here, and the core signs the same.
    let jar_key = JarKey::from(&KEY_A[..]);
    let mut jar = CookieJar::new();
    jar.signed_mut(&jar_key)
        .add(Cookie::new("id", value.to_owned()));
    let signed = jar
        .get("id")
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    assert_eq!(keys.verify(&signed), Ok(value));
    assert_eq!(keys.sign(value), signed);
    if let Some(bad) = changed(&signed, at) {
        agree(&keys, &bad);
    }
    // Private: the jar's value opens here; the core's opens in the jar,
    // under the name it was sealed for only.
    let mut jar = CookieJar::new();
    jar.private_mut(&jar_key)
        .add(Cookie::new("id", value.to_owned()));
    let sealed = jar
        .get("id")
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    assert_eq!(keys.open("id", &sealed).as_deref(), Ok(value));
    if let Some(bad) = changed(&sealed, at) {
        agree(&keys, &bad);
    }
    let name = if sel & 0x80 == 0 { "id" } else { "sid" };
    let nonce: [u8; 12] = std::array::from_fn(|i| payload.get(i).copied().unwrap_or(sel));
    if let Ok(ours) = keys.seal(name, value, nonce) {
        assert_eq!(jar_decrypt(&KEY_A, name, &ours).as_deref(), Some(value));
        if name != "id" {
            assert!(
                keys.open("id", &ours).is_err(),
                "a value moved to another name"
            );
            assert!(jar_decrypt(&KEY_A, "id", &ours).is_none());
        }
    }
}

fn tower_record(payload: &[u8]) {
    let Ok(record) = Record::decode(payload) else {
        return;
    };
    let bytes = record.encode();
    let again = Record::decode(&bytes).expect("an encoded record decodes");
    assert!(again == record, "the record survives a round trip");
    assert_eq!(again.encode(), bytes, "and encodes the same again");
}

fn actix_state(payload: &[u8]) {
    let Ok(state) = State::decode(payload) else {
        return;
    };
    let bytes = state.encode();
    let again = State::decode(&bytes).expect("an encoded state decodes");
    assert_eq!(again.data, state.data, "the data survives a round trip");
    assert_eq!(again.encode(), bytes, "and encodes the same again");
}

/// The five configs, built once (keys are prepared at build).
fn configs() -> &'static [Config] {
    static CONFIGS: std::sync::OnceLock<Vec<Config>> = std::sync::OnceLock::new();
    CONFIGS.get_or_init(build_configs)
}

fn build_configs() -> Vec<Config> {
    let tower = |p: Protection| tower_sessions::Settings {
        protection: p,
        ..Default::default()
    };
    let actix = |s: ContentSecurity| actix_session::Settings::new(s);
    let formats: [Format; 5] = [
        tower(Protection::Plain).into(),
        tower(Protection::Signed(keys())).into(),
        tower(Protection::Private(keys())).into(),
        actix(ContentSecurity::Private(keys())).into(),
        actix(ContentSecurity::Signed(keys())).into(),
    ];
    formats
        .into_iter()
        .map(|f| {
            Config::builder()
                .format(f)
                .allow_any_origin()
                .build()
                .expect("a valid config")
        })
        .collect()
}

fn cookies(sel: u8, payload: &[u8]) {
    let lines = split_lines(payload);
    let limits = session_sockets_fuzz::limits(sel >> 2);
    let nonce = [sel; 12];
    for config in configs() {
        let config: &Config = config;
        let headers: Vec<(&[u8], &[u8])> = lines.iter().map(|l| (&b"cookie"[..], *l)).collect();
        let checked = precheck(config, headers.iter().copied());
        let found = match config.format() {
            Format::TowerSessions(s) => tower_sessions::resolve(s, lines.iter().copied(), limits)
                .map(|id| {
                    let set = tower_sessions::set_cookie(s, &id, nonce, std::time::UNIX_EPOCH);
                    let pair = set.split(';').next().unwrap_or_default();
                    let again = tower_sessions::resolve(s, [pair.as_bytes()], Limits::default());
                    assert_eq!(
                        again.ok(),
                        Some(id),
                        "the cookie written for an id names it"
                    );
                    id.expose()
                }),
            Format::ActixSession(s) => actix_session::resolve(s, lines.iter().copied(), limits)
                .map(|key| {
                    let set = actix_session::set_cookie(s, &key, nonce);
                    let pair = set.split(';').next().unwrap_or_default();
                    let again = actix_session::resolve(s, [pair.as_bytes()], Limits::default());
                    assert_eq!(
                        again.as_ref().ok(),
                        Some(&key),
                        "the cookie written names it"
                    );
                    key.expose().to_owned()
                }),
            _ => continue,
        };
        // The handshake's checks (default limits) agree with the resolver
        // where the limits do not decide.
        if limits == Limits::default() {
            match (&checked, &found) {
                (Ok(()), Err(e)) => panic!("precheck passed, resolve failed: {e}"),
                (Err(e), Ok(_)) if e.reason() != "invalid_session_id" => {
                    panic!("resolve passed, precheck failed: {e}")
                }
                (Err(a), Err(b)) => assert_eq!(a.reason(), b.reason()),
                _ => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => cookie_crate(sel, payload),
        1 => tower_record(payload),
        2 => actix_state(payload),
        _ => cookies(sel, payload),
    }
});
