//! `format::actix_session` against actix-session's state format (a
//! `HashMap<String, String>` of JSON texts through serde_json, as its Redis
//! store writes it) and against actix-web's way of reading `Cookie` lines
//! with cookie 0.16's parser and signed/private jars.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Map, Value};
use session_sockets_core::Limits;
use session_sockets_core::format::actix_session::{
    self as ax, ContentSecurity, SessionKey, Settings, State,
};
use session_sockets_core::format::cookie_crate::Keys;

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((".{0,10}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// What actix-session's Redis store writes for `data`: each value's
/// `serde_json::to_string` (`Session::insert`), the map through
/// `serde_json::to_string` (`RedisSessionStore::save`).
fn stored(data: &HashMap<String, Value>) -> (HashMap<String, String>, String) {
    let texts: HashMap<String, String> = data
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap()))
        .collect();
    let bytes = serde_json::to_string(&texts).unwrap();
    (texts, bytes)
}

/// actix-web 4.18's `HttpRequest::cookies` with cookie 0.16's parser, then
/// actix-session's `extract_session_key`: the first cookie named `name`,
/// verified or opened, at most 4064 bytes.
fn actix_reference(lines: &[Vec<u8>], name: &str, key: &[u8; 64], private: bool) -> Option<String> {
    let mut cookies = Vec::new();
    for hdr in lines {
        let s = std::str::from_utf8(hdr).ok()?;
        for cookie_str in s.split(';').map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if let Ok(cookie) = cookie016::Cookie::parse_encoded(cookie_str) {
                cookies.push(cookie.into_owned());
            }
        }
    }
    let session_cookie = cookies.iter().find(|c| c.name() == name)?;
    let key = cookie016::Key::from(key);
    let mut jar = cookie016::CookieJar::new();
    jar.add_original(session_cookie.clone());
    let verified = if private {
        jar.private(&key).get(name)
    } else {
        jar.signed(&key).get(name)
    }?;
    let value = verified.value().to_owned();
    (value.len() <= 4064).then_some(value)
}

/// What actix-session's `set_session_cookie` sends for `value`.
fn actix_set_cookie(key: &[u8; 64], name: &str, value: &str, private: bool) -> String {
    let key = cookie016::Key::from(key);
    let mut cookie = cookie016::Cookie::new(name.to_owned(), value.to_owned());
    cookie.set_secure(true);
    cookie.set_http_only(true);
    cookie.set_same_site(cookie016::SameSite::Lax);
    cookie.set_path("/");
    let mut jar = cookie016::CookieJar::new();
    if private {
        jar.private_mut(&key).add(cookie);
    } else {
        jar.signed_mut(&key).add(cookie);
    }
    jar.delta().next().unwrap().encoded().to_string()
}

const PIECES: usize = 16;

fn piece(i: usize, v: &[String; 2]) -> String {
    match i {
        0 => format!("id={}", v[0]),
        1 => format!("id={}", v[1]),
        2 => format!("id={}", v[0].replace('/', "%2F").replace('=', "%3D")),
        3 => format!("id=\"{}\"", v[1]),
        4 => format!(" id = \" {} \" ", v[0]),
        5 => format!("i%64={}", v[1]),
        6 => "id=garbage".into(),
        7 => "id=".into(),
        8 => "bad".into(),
        9 => "=x".into(),
        10 => "id=%FF".into(),
        11 => format!("id=%22{}%22", v[0]),
        12 => "x=1".into(),
        13 => format!("\u{2003}id={}", v[1]),
        14 => "id=\"".into(),
        _ => format!("id={}x", v[0]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn states_the_store_writes_decode_and_encode_byte_exact(
        data in prop::collection::hash_map(".{0,16}", json(), 0..12)
    ) {
        let (_, bytes) = stored(&data);
        let state = State::decode(bytes.as_bytes()).unwrap();
        prop_assert_eq!(state.data.len(), data.len());
        for (k, v) in &data {
            prop_assert_eq!(state.data.get(k), Some(v));
        }
        prop_assert_eq!(state.encode(), bytes.into_bytes());
    }

    #[test]
    fn states_written_here_are_what_the_store_reads(
        data in prop::collection::hash_map(".{0,16}", json(), 0..12)
    ) {
        let (texts, _) = stored(&data);
        let ours = State::new(Map::from_iter(data.clone())).encode();
        let back: HashMap<String, String> = serde_json::from_slice(&ours).unwrap();
        prop_assert_eq!(back, texts);
    }

    #[test]
    fn r20_cookie_lines_resolve_as_actix_session_reads_them(
        k1 in "[A-Za-z0-9]{64}", k2 in ".{0,70}", key in prop::array::uniform32(any::<u8>()),
        private in any::<bool>(), nonce in prop::array::uniform12(any::<u8>()),
        lines in prop::collection::vec(prop::collection::vec(0usize..PIECES, 0..6), 0..3),
        bad_line in any::<bool>(),
    ) {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&key);
        let keys = Keys::from_bytes([k]).unwrap();
        let settings = Settings::new(if private {
            ContentSecurity::Private(keys.clone())
        } else {
            ContentSecurity::Signed(keys.clone())
        });
        let session_key = SessionKey::new(k1.clone()).unwrap();
        let values = [ax::cookie_value(&settings, &session_key, nonce), {
            // The second value comes from the crate itself.
            let header = actix_set_cookie(&k, "id", &k2, private);
            let (_, v) = header.split(';').next().unwrap().split_once('=').unwrap();
            v.to_owned()
        }];
        let mut raw: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| l.iter().map(|&p| piece(p, &values)).collect::<Vec<_>>().join("; ").into_bytes())
            .collect();
        if bad_line {
            raw.push(b"x=\xff".to_vec());
        }
        let reference = actix_reference(&raw, "id", &k, private);
        let ours = ax::resolve(&settings, raw.iter().map(Vec::as_slice), Limits::default());
        prop_assert_eq!(ours.ok().map(|k| k.expose().to_owned()), reference);
    }

    #[test]
    fn set_cookie_is_actix_sessions_for_signed_values(
        k1 in "[A-Za-z0-9]{64}", key in prop::array::uniform32(any::<u8>()),
    ) {
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&key);
        let settings = Settings::new(ContentSecurity::Signed(Keys::from_bytes([k]).unwrap()));
        let ours = ax::set_cookie(&settings, &SessionKey::new(k1.clone()).unwrap(), [0; 12]);
        prop_assert_eq!(ours, actix_set_cookie(&k, "id", &k1, false));
    }
}
