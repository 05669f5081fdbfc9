//! Every machine in the tower-sessions and actix-session formats, driven by
//! hand: the requests each emits (bare store keys, the format's records and
//! TTLs, compare-and-set on the exact bytes loaded) and the outcomes, with
//! cookies recorded from the real crates (key bytes 0x00..0x3f).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use session_sockets_core::event::{KeyChange, KeyEvent, SessionChange, session_event};
use session_sockets_core::format::actix_session::{
    self as actix, CookieContentSecurity, Lifecycle, State, TtlExtensionPolicy,
};
use session_sockets_core::format::cookie_crate::Keys;
use session_sockets_core::format::tower_sessions::{self as tower, Expiry, ExpiryDate, Id};
use session_sockets_core::machines::{
    Create, Created, Destroy, Handshake, Regenerate, Reload, Save, Touch, Touched,
};
use session_sockets_core::time::from_millis;
use session_sockets_core::{
    Bytes, Config, ConfigError, Format, HandshakeError, Machine, Meta, Reply, Request, Session,
    SessionId, WriteError,
};
use support::{T0_MS, at, t};

/// The standard base64 of the key bytes 0x00..0x3f.
const KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// Another app's key (every byte 7).
const FOREIGN: &str =
    "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==";

/// tower-sessions `with_signed(Key::from(0..64))` for `vNPPFgK-j7a-idNRnFp0KQ`.
const TOWER_SIGNED: &str = "id=+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ";
/// tower-sessions `with_private(Key::from(0..64))` for `Ufp3NWpswET9tC9C-z8isg`.
const TOWER_PRIVATE: &str =
    "id=P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=";
/// actix-session's private cookie (key 0..64) and the session key in it.
const ACTIX_PRIVATE: &str = "id=lno7UzUHWDVtzcNkpv6lxcOzZoniQOaDgqqQs1TY2bju68mGuafIVscCbpUmpV%2F9uCtGZc9TAmZ%2FmrlWw1yoBGlFmg2T5cO2KH7NluZnwFdKiIlMi9ic1j7QTd0%3D";
const ACTIX_PRIVATE_KEY: &str = "rHrHQJDJ5W9F0l0d0GjgT1whBFGetSPXeQ4CFDgEzpBQkFk8DOup06PXuYAODMZ7";
/// actix-session's signed cookie (key 0..64) and the session key in it.
const ACTIX_SIGNED: &str = "id=qQknImLIPUeHFJX1PSBOlJjRODoQ7jmcd1yn9%2FfF2g0%3Dn2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n";
const ACTIX_SIGNED_KEY: &str = "n2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n";

const HOUR: Duration = Duration::from_secs(3600);

fn config(format: impl Into<Format>) -> Arc<Config> {
    Arc::new(
        Config::builder()
            .format(format)
            .store_deadline(support::DEADLINE)
            .build()
            .unwrap(),
    )
}

fn tower_plain() -> Arc<Config> {
    config(Format::tower_sessions().with_expiry(Expiry::OnInactivity(HOUR)))
}

fn tower_signed() -> Arc<Config> {
    config(
        Format::tower_sessions()
            .with_signed(KEY)
            .unwrap()
            .with_expiry(Expiry::OnInactivity(HOUR)),
    )
}

fn tower_private() -> Arc<Config> {
    config(
        Format::tower_sessions()
            .with_private(KEY)
            .unwrap()
            .with_expiry(Expiry::OnInactivity(HOUR)),
    )
}

fn actix_private() -> Arc<Config> {
    config(Format::actix_session(KEY).unwrap())
}

fn actix_signed() -> Arc<Config> {
    config(
        Format::actix_session(KEY)
            .unwrap()
            .cookie_content_security(CookieContentSecurity::Signed),
    )
}

/// The expiry date `ms` after the scripted start.
fn date(ms: i64) -> ExpiryDate {
    ExpiryDate::from_system_time(from_millis(T0_MS + ms)).unwrap()
}

/// A tower-sessions record of `id` with `data`, expiring an hour after the
/// scripted start.
fn tower_record(id: &str, data: Value) -> Vec<u8> {
    let mut r = tower::Record::new(Id::parse(id).unwrap(), date(3_600_000));
    let Value::Object(m) = data else { panic!() };
    r.data = m;
    r.encode()
}

fn data_of(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else { panic!() };
    m
}

/// Runs a handshake on `cookie` (with `Origin` from the page's own site):
/// the `Load` key it asks for, or the error it finished with first.
fn handshake_key(
    config: &Arc<Config>,
    cookie: &str,
) -> Result<(Handshake, Request), HandshakeError> {
    let mut hs = Handshake::new(Arc::clone(config), at(0));
    hs.handle_headers([("cookie", cookie), ("host", "app.example")], t(0));
    match hs.poll_request() {
        Some(req) => Ok((hs, req)),
        None => Err(hs.poll_outcome().unwrap().unwrap_err()),
    }
}

fn key_of(req: &Request) -> String {
    String::from_utf8(req.key().unwrap().as_bytes().to_vec()).unwrap()
}

#[test]
fn r36_handshakes_resolve_the_real_crates_cookies_to_bare_store_keys() {
    let cases = [
        (
            tower_plain(),
            "id=vNPPFgK-j7a-idNRnFp0KQ",
            "vNPPFgK-j7a-idNRnFp0KQ",
        ),
        (tower_signed(), TOWER_SIGNED, "vNPPFgK-j7a-idNRnFp0KQ"),
        (tower_private(), TOWER_PRIVATE, "Ufp3NWpswET9tC9C-z8isg"),
        (actix_private(), ACTIX_PRIVATE, ACTIX_PRIVATE_KEY),
        (actix_signed(), ACTIX_SIGNED, ACTIX_SIGNED_KEY),
    ];
    for (config, cookie, key) in cases {
        let name = config.format().name();
        let (mut hs, req) =
            handshake_key(&config, cookie).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(req, Request::Load { .. }), "{name}");
        assert_eq!(key_of(&req), key, "{name}: no prefix");
        let record = match config.format() {
            Format::TowerSessions(_) => tower_record(key, json!({"user": "ada"})),
            _ => br#"{"user":"\"ada\""}"#.to_vec(),
        };
        hs.handle_reply(req.id(), Reply::Found(Bytes::from(record.clone())), t(1));
        let session = hs.poll_outcome().unwrap().unwrap();
        assert_eq!(session.id().expose(), key, "{name}");
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ada")
        );
        assert!(session.rests_on(&record), "{name}: the exact bytes loaded");
        assert!(session.cookie().is_none(), "{name}: no express cookie");
    }
}

#[test]
fn r36_tampered_foreign_key_and_name_moved_cookies_are_refused_before_any_lookup() {
    let tamper = |c: &str| {
        // One character of the value changed, in the signature or seal.
        let mut b = c.as_bytes().to_vec();
        let i = 10;
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let foreign_tower = config(Format::tower_sessions().with_signed(FOREIGN).unwrap());
    let foreign_private = config(Format::tower_sessions().with_private(FOREIGN).unwrap());
    let foreign_actix = config(Format::actix_session(FOREIGN).unwrap());
    let renamed_tower = config(
        Format::tower_sessions()
            .with_private(KEY)
            .unwrap()
            .with_name("sid"),
    );
    let renamed_actix = config(Format::actix_session(KEY).unwrap().cookie_name("sid"));
    let cases: Vec<(Arc<Config>, String, &str)> = vec![
        (tower_signed(), tamper(TOWER_SIGNED), "signature_invalid"),
        (tower_private(), tamper(TOWER_PRIVATE), "seal_invalid"),
        (actix_private(), tamper(ACTIX_PRIVATE), "seal_invalid"),
        (actix_signed(), tamper(ACTIX_SIGNED), "signature_invalid"),
        (foreign_tower, TOWER_SIGNED.into(), "signature_invalid"),
        (foreign_private, TOWER_PRIVATE.into(), "seal_invalid"),
        (foreign_actix, ACTIX_PRIVATE.into(), "seal_invalid"),
        // A private value is sealed for its name: moved under another
        // cookie name, it does not open.
        (
            renamed_tower,
            TOWER_PRIVATE.replacen("id=", "sid=", 1),
            "seal_invalid",
        ),
        (
            renamed_actix,
            ACTIX_PRIVATE.replacen("id=", "sid=", 1),
            "seal_invalid",
        ),
        // A signed cookie where a private one is expected, and the reverse.
        (tower_private(), TOWER_SIGNED.into(), "not_sealed"),
        (actix_signed(), ACTIX_PRIVATE.into(), "not_signed"),
        // A plain id where the app signs.
        (
            tower_signed(),
            "id=vNPPFgK-j7a-idNRnFp0KQ".into(),
            "not_signed",
        ),
        (tower_plain(), "id=not-an-id".into(), "invalid_id"),
        (tower_plain(), "other=1".into(), "cookie_absent"),
        (actix_private(), "id=".into(), "empty_value"),
    ];
    for (config, cookie, reason) in cases {
        let e = handshake_key(&config, &cookie).err().unwrap_or_else(|| {
            panic!(
                "{} {cookie}: a store lookup was asked for",
                config.format().name()
            )
        });
        assert_eq!(
            e.reason(),
            reason,
            "{} {cookie}: {e}",
            config.format().name()
        );
        assert!(!e.fault().needs_operator());
        // R35: the hint names nothing of the server's insides.
        for internal in [
            "`id`", " id=", "key", "Key", "tower", "actix", "HMAC", "seal",
        ] {
            assert!(!e.hint().contains(internal), "{}: {}", e.reason(), e.hint());
        }
    }
    // The Origin check still comes first (R5).
    let mut hs = Handshake::new(tower_signed(), at(0));
    hs.handle_headers(
        [
            ("cookie", TOWER_SIGNED),
            ("origin", "https://evil.example"),
            ("host", "app.example"),
        ],
        t(0),
    );
    assert!(hs.poll_request().is_none());
    assert_eq!(
        hs.poll_outcome().unwrap().unwrap_err().reason(),
        "origin_rejected"
    );
}

#[test]
fn r36_the_last_duplicate_counts_for_tower_sessions_and_the_first_for_actix() {
    let both = |a: &str, b: &str| format!("{a}; {b}");
    let plain_good = "id=vNPPFgK-j7a-idNRnFp0KQ";
    // tower-cookies keeps the last cookie of a name, and does not fall back.
    let (_, req) = handshake_key(&tower_plain(), &both("id=garbage", plain_good)).unwrap();
    assert_eq!(key_of(&req), "vNPPFgK-j7a-idNRnFp0KQ");
    assert!(handshake_key(&tower_plain(), &both(plain_good, "id=garbage")).is_err());
    // actix-web finds the first.
    let (_, req) = handshake_key(&actix_private(), &both(ACTIX_PRIVATE, "id=garbage")).unwrap();
    assert_eq!(key_of(&req), ACTIX_PRIVATE_KEY);
    assert!(handshake_key(&actix_private(), &both("id=garbage", ACTIX_PRIVATE)).is_err());
    // Several Cookie lines are one list, in order (R17).
    let mut hs = Handshake::new(tower_plain(), at(0));
    hs.handle_headers([("cookie", "id=garbage"), ("cookie", plain_good)], t(0));
    assert_eq!(
        key_of(&hs.poll_request().unwrap()),
        "vNPPFgK-j7a-idNRnFp0KQ"
    );
    // The byte bound holds before anything is read (R4).
    let long = format!("{plain_good}; pad={}", "x".repeat(20_000));
    assert_eq!(
        handshake_key(&tower_plain(), &long).err().unwrap().reason(),
        "header_too_large"
    );
}

#[test]
fn r13_a_tower_record_past_its_date_or_of_another_id_is_no_session() {
    let config = tower_plain();
    let id = "vNPPFgK-j7a-idNRnFp0KQ";
    let (mut hs, req) = handshake_key(&config, &format!("id={id}")).unwrap();
    let mut r = tower::Record::new(Id::parse(id).unwrap(), date(-1));
    r.data.insert("user".into(), json!("ada"));
    hs.handle_reply(req.id(), Reply::Found(r.encode().into()), t(1));
    assert_eq!(
        hs.poll_outcome().unwrap().unwrap_err(),
        HandshakeError::Expired
    );

    let (mut hs, req) = handshake_key(&config, &format!("id={id}")).unwrap();
    let other = tower_record("Ufp3NWpswET9tC9C-z8isg", json!({}));
    hs.handle_reply(req.id(), Reply::Found(other.into()), t(1));
    let e = hs.poll_outcome().unwrap().unwrap_err();
    assert_eq!(e.reason(), "malformed_record");
    assert!(e.to_string().contains("the record's id"), "{e}");

    let (mut hs, req) = handshake_key(&actix_private(), ACTIX_PRIVATE).unwrap();
    hs.handle_reply(req.id(), Reply::Found(br#"{"a":1}"#[..].into()), t(1));
    assert_eq!(
        hs.poll_outcome().unwrap().unwrap_err().reason(),
        "malformed_record"
    );
}

/// A session of `config` loaded from `bytes` under `id`, through a reload.
fn reload(config: &Arc<Config>, id: &str, bytes: &[u8]) -> Session {
    let mut m = Reload::new(Arc::clone(config), &SessionId::new(id), at(0));
    let req = m.poll_request().unwrap();
    assert_eq!(key_of(&req), id);
    m.handle_reply(req.id(), Reply::Found(bytes.into()), t(1));
    m.poll_outcome().unwrap().unwrap()
}

#[test]
fn r25_a_tower_save_is_compare_and_set_with_the_date_renewed_and_this_sides_keys_winning() {
    let config = tower_plain();
    let id = "vNPPFgK-j7a-idNRnFp0KQ";
    let loaded = tower_record(id, json!({"user": "ada", "n": 1}));
    let mut s = reload(&config, id, &loaded);
    s.insert("theme", "dark").unwrap();
    let mut save = Save::new(Arc::clone(&config), s, at(60_000));
    let Some(Request::CompareAndSet {
        id: rid,
        key,
        expected,
        new,
        ttl_secs,
    }) = save.poll_request()
    else {
        panic!()
    };
    assert_eq!(key.as_bytes(), id.as_bytes());
    assert_eq!(&expected[..], &loaded[..]);
    // As tower-sessions' save: the date is now + the inactivity period, and
    // the TTL ends the key at its whole second (EXAT).
    let written = tower::Record::decode(&new).unwrap();
    assert_eq!(written.expiry_date, date(60_000 + 3_600_000));
    assert_eq!(ttl_secs, 3600);
    assert_eq!(written.data["theme"], "dark");
    // Another writer (the app) got there first: `n` and `user` changed.
    let theirs = tower_record(id, json!({"user": "bob", "n": 2}));
    save.handle_reply(rid, Reply::Conflict(theirs.clone().into()), t(60_001));
    let Some(Request::CompareAndSet {
        id: rid,
        expected,
        new,
        ..
    }) = save.poll_request()
    else {
        panic!()
    };
    assert_eq!(
        &expected[..],
        &theirs[..],
        "against the bytes the conflict brought"
    );
    let merged = tower::Record::decode(&new).unwrap();
    assert_eq!(
        Value::Object(merged.data),
        json!({"user": "bob", "n": 2, "theme": "dark"})
    );
    save.handle_reply(rid, Reply::Swapped, t(60_002));
    let saved = save.poll_outcome().unwrap().unwrap();
    assert!(!saved.is_changed() && saved.rests_on(&new));
    let Meta::TowerSessions { expiry_date, .. } = saved.meta() else {
        panic!()
    };
    assert_eq!(*expiry_date, date(60_001 + 3_600_000));
}

#[test]
fn r24_a_save_never_recreates_and_an_unchanged_session_writes_nothing() {
    let config = actix_private();
    let loaded = br#"{"user":"{\"name\":\"ada\"}","n":"1"}"#;
    let s = reload(&config, ACTIX_PRIVATE_KEY, loaded);
    let mut save = Save::new(Arc::clone(&config), s.clone(), at(0));
    assert!(save.poll_request().is_none(), "nothing changed");
    assert!(save.poll_outcome().unwrap().is_ok());

    let mut changed = s;
    changed.insert("n", 2).unwrap();
    let mut save = Save::new(Arc::clone(&config), changed, at(0));
    let Some(Request::CompareAndSet {
        id, new, ttl_secs, ..
    }) = save.poll_request()
    else {
        panic!()
    };
    // Unchanged values keep the stored text; the TTL is the lifecycle's.
    assert_eq!(&new[..], br#"{"user":"{\"name\":\"ada\"}","n":"2"}"#);
    assert_eq!(ttl_secs, 86_400);
    save.handle_reply(id, Reply::Gone, t(1));
    assert_eq!(save.poll_outcome().unwrap().unwrap_err(), WriteError::Gone);
}

/// Runs a create of `config` with `data`, answering its random request with
/// bytes `1, 2, 3, ...`: the `Create` request and the outcome.
fn create(config: &Arc<Config>, data: Value) -> (Request, Created) {
    let mut c = Create::new(Arc::clone(config), data_of(data), at(0));
    let Some(Request::Random { id, len }) = c.poll_request() else {
        panic!()
    };
    let random: Vec<u8> = (1..=len).map(|i| i as u8).collect();
    c.handle_reply(id, Reply::Random(random.into()), t(1));
    let req = c.poll_request().unwrap();
    c.handle_reply(req.id(), Reply::Created, t(2));
    (req, c.poll_outcome().unwrap().unwrap())
}

/// The `name=value` pair of a `Set-Cookie` header, as a browser sends it back.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

#[test]
fn r10_creates_insert_the_formats_record_and_the_cookie_resolves_back_to_it() {
    for config in [
        tower_plain(),
        tower_signed(),
        tower_private(),
        actix_private(),
        actix_signed(),
    ] {
        let name = config.format().name();
        let mut c = Create::new(Arc::clone(&config), Map::new(), at(0));
        let Some(Request::Random { len, .. }) = c.poll_request() else {
            panic!()
        };
        let expected_len = match config.format() {
            Format::TowerSessions(s) => match s.protection {
                tower::Protection::Private(_) => 28,
                _ => 16,
            },
            Format::ActixSession(s) => match s.security {
                actix::ContentSecurity::Private(_) => 108,
                _ => 96,
            },
            _ => 24,
        };
        assert_eq!(
            len, expected_len,
            "{name}: the id's bytes, and a nonce to seal"
        );

        let (req, created) = create(&config, json!({"user": "ada"}));
        let Request::Create {
            key,
            value,
            ttl_secs,
            ..
        } = req
        else {
            panic!()
        };
        let sid = created.session.id().expose().to_owned();
        assert_eq!(key.as_bytes(), sid.as_bytes(), "{name}: a bare key");
        assert!(created.session.rests_on(&value));
        match config.format() {
            Format::TowerSessions(_) => {
                let r = tower::Record::decode(&value).unwrap();
                assert_eq!(r.id.expose(), sid);
                assert_eq!(r.expiry_date, date(3_600_000));
                assert_eq!(ttl_secs, 3600);
                assert!(
                    created
                        .set_cookie
                        .ends_with("; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=3600")
                );
            }
            _ => {
                assert_eq!(&value[..], br#"{"user":"\"ada\""}"#);
                assert!(actix::is_generated_store_key(key.as_bytes()));
                assert_eq!(ttl_secs, 86_400);
                assert!(
                    created
                        .set_cookie
                        .ends_with("; HttpOnly; SameSite=Lax; Secure; Path=/")
                );
            }
        }
        // The cookie it sets is one the handshake resolves to the session.
        let (_, load) = handshake_key(&config, pair(&created.set_cookie)).unwrap();
        assert_eq!(key_of(&load), sid, "{name}");
    }
}

#[test]
fn r11_regenerate_creates_the_new_key_then_deletes_the_bare_old_one() {
    let config = tower_private();
    let old = reload(
        &config,
        "vNPPFgK-j7a-idNRnFp0KQ",
        &tower_record("vNPPFgK-j7a-idNRnFp0KQ", json!({"n": 1})),
    );
    let mut r = Regenerate::new(Arc::clone(&config), old, true, at(0));
    let mut log = Vec::new();
    while let Some(req) = r.poll_request() {
        log.push(match &req {
            Request::Random { len, .. } => format!("Random {len}"),
            Request::Create { key, .. } => format!("Create {}", key.as_bytes().len()),
            Request::Destroy { key, .. } => {
                format!("Destroy {}", String::from_utf8_lossy(key.as_bytes()))
            }
            other => format!("{other:?}"),
        });
        let reply = match &req {
            Request::Random { len, .. } => Reply::Random(vec![9; *len].into()),
            other => support::good_reply(other),
        };
        r.handle_reply(req.id(), reply, t(1));
    }
    assert_eq!(
        log,
        ["Random 28", "Create 22", "Destroy vNPPFgK-j7a-idNRnFp0KQ"]
    );
    let created = r.poll_outcome().unwrap().unwrap();
    assert_eq!(
        created.session.get::<i64>("n").unwrap(),
        Some(1),
        "carried over"
    );
}

#[test]
fn destroy_and_reload_use_the_bare_key_and_refuse_ids_of_another_shape() {
    let config = tower_plain();
    let mut d = Destroy::new(
        Arc::clone(&config),
        &SessionId::new("vNPPFgK-j7a-idNRnFp0KQ"),
        at(0),
    );
    let req = d.poll_request().unwrap();
    assert!(matches!(req, Request::Destroy { .. }));
    assert_eq!(key_of(&req), "vNPPFgK-j7a-idNRnFp0KQ");
    for bad in ["sess:abc", "vNPPFgK-j7a-idNRnFp0KR", ""] {
        let mut r = Reload::new(Arc::clone(&config), &SessionId::new(bad), at(0));
        assert!(r.poll_request().is_none(), "{bad}");
        assert_eq!(
            r.poll_outcome().unwrap().unwrap_err().reason(),
            "invalid_session_id"
        );
    }
}

/// Runs a touch of `session` at `ms`, answering its request with `reply`.
fn touch(
    config: &Arc<Config>,
    session: Session,
    reply: Reply,
) -> (Option<Request>, Result<Touched, WriteError>) {
    let mut m = Touch::new(Arc::clone(config), session, at(120_000));
    let req = m.poll_request();
    if let Some(r) = &req {
        m.handle_reply(r.id(), reply, t(120_001));
    }
    (req, m.poll_outcome().unwrap())
}

#[test]
fn r25_touches_refresh_what_each_format_refreshes_and_nothing_else() {
    let id = "vNPPFgK-j7a-idNRnFp0KQ";
    let loaded = tower_record(id, json!({"n": 1}));
    // tower-sessions, OnInactivity: the record as loaded, with a new date,
    // compare-and-set; this copy's unsaved change is not written.
    let mut s = reload(&tower_plain(), id, &loaded);
    s.insert("unsaved", true).unwrap();
    let (req, touched) = touch(&tower_plain(), s.clone(), Reply::Swapped);
    let Some(Request::CompareAndSet {
        expected,
        new,
        ttl_secs,
        ..
    }) = req
    else {
        panic!()
    };
    assert_eq!(&expected[..], &loaded[..]);
    let written = tower::Record::decode(&new).unwrap();
    assert_eq!(written.expiry_date, date(120_000 + 3_600_000));
    assert_eq!(Value::Object(written.data), json!({"n": 1}));
    assert_eq!(ttl_secs, 3600);
    let touched = touched.unwrap();
    assert!(touched.session.rests_on(&new), "on the rewritten record");
    assert_eq!(
        touched.session.get::<bool>("unsaved").unwrap(),
        Some(true),
        "kept unsaved"
    );
    assert!(touched.set_cookie.is_none());
    // Someone wrote it meanwhile (and renewed the date): done, unchanged.
    let (_, touched) = touch(
        &tower_plain(),
        s.clone(),
        Reply::Conflict(loaded.clone().into()),
    );
    assert!(touched.unwrap().session.rests_on(&loaded));
    let (_, gone) = touch(&tower_plain(), s, Reply::Gone);
    assert_eq!(gone.unwrap_err(), WriteError::Gone);
    // Without OnInactivity there is nothing to refresh: no request.
    let default = config(Format::tower_sessions());
    let (req, touched) = touch(&default, reload(&default, id, &loaded), Reply::Done);
    assert!(req.is_none() && touched.is_ok());

    // actix-session: EXPIRE only under OnEveryRequest.
    let state = br#"{"n":"1"}"#;
    let (req, touched) = touch(
        &actix_private(),
        reload(&actix_private(), ACTIX_PRIVATE_KEY, state),
        Reply::Done,
    );
    assert!(req.is_none() && touched.is_ok());
    let every = config(Format::actix_session(KEY).unwrap().session_lifecycle(
        Lifecycle::BrowserSession {
            state_ttl: Duration::from_secs(600),
            extension: TtlExtensionPolicy::OnEveryRequest,
        },
    ));
    let (req, touched) = touch(
        &every,
        reload(&every, ACTIX_PRIVATE_KEY, state),
        Reply::Done,
    );
    assert!(
        matches!(req, Some(Request::Touch { ttl_secs: 600, .. })),
        "{req:?}"
    );
    assert!(touched.is_ok());
}

#[test]
fn r32_store_events_map_keys_of_the_formats_shape_only() {
    let config = tower_plain();
    let ev = |k: &[u8], change| KeyEvent {
        key: k.to_vec(),
        change,
    };
    let e = session_event(&config, &ev(b"vNPPFgK-j7a-idNRnFp0KQ", KeyChange::Deleted)).unwrap();
    assert_eq!(
        (e.id.expose(), e.change),
        ("vNPPFgK-j7a-idNRnFp0KQ", SessionChange::Destroyed)
    );
    // Other applications' keys in the same database.
    for other in [
        &b"sess:abc"[..],
        b"user:1",
        b"vNPPFgK-j7a-idNRnFp0KR",
        b"bull:queue:1",
    ] {
        assert!(session_event(&config, &ev(other, KeyChange::Deleted)).is_none());
    }
    let config = actix_private();
    let e = session_event(
        &config,
        &ev(ACTIX_PRIVATE_KEY.as_bytes(), KeyChange::Expired),
    )
    .unwrap();
    assert_eq!(e.change, SessionChange::Expired);
    assert!(session_event(&config, &ev(b"vNPPFgK-j7a-idNRnFp0KQ", KeyChange::Expired)).is_none());
}

#[test]
fn config_takes_the_formats_cookie_name_and_refuses_express_settings() {
    let c = tower_signed();
    assert_eq!((c.cookie_name(), c.key_prefix()), ("id", ""));
    let c = config(
        Format::actix_session(KEY)
            .unwrap()
            .cookie_name("app-session"),
    );
    assert_eq!(c.cookie_name(), "app-session");
    for (setting, builder) in [
        ("secrets", Config::builder().secret("s")),
        ("key_prefix", Config::builder().key_prefix("x:")),
        ("cookie_name", Config::builder().cookie_name("id")),
        ("rolling", Config::builder().rolling(true)),
        ("default_ttl", Config::builder().default_ttl(HOUR)),
    ] {
        let e = builder
            .format(Format::tower_sessions())
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::NotForFormat {
                setting,
                format: "tower-sessions"
            }
        );
        assert!(e.to_string().contains("Format::tower_sessions()"), "{e}");
    }
    let bad = Config::builder()
        .format(Format::tower_sessions().with_name("a b"))
        .build();
    assert!(matches!(bad, Err(ConfigError::InvalidFormatSettings(_))));
    // Keys are redacted (R16).
    let dbg = format!("{:?}", tower_private());
    assert!(
        dbg.contains("Keys(<1 redacted>)") && !dbg.contains("AAECAwQF"),
        "{dbg}"
    );
    assert!(
        Format::tower_sessions().with_signed("AAAA").is_err(),
        "3 bytes are no key"
    );
}

#[test]
fn the_http_side_writes_each_formats_cookies() {
    let now = from_millis(1_796_622_103_000); // 2026-12-07T05:41:43Z
    assert_eq!(
        tower_plain().removal_cookie(now).unwrap(),
        "id=; Path=/; Max-Age=0; Expires=Sun, 07 Dec 2025 05:41:43 GMT"
    );
    assert_eq!(
        actix_private().removal_cookie(now).unwrap(),
        "id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Sun, 07 Dec 2025 05:41:43 GMT"
    );
    assert!(support::config().touches_after_request());
    assert!(!tower_plain().touches_after_request());
    assert!(!actix_private().touches_after_request());

    let id = "vNPPFgK-j7a-idNRnFp0KQ";
    let s = reload(&tower_signed(), id, &tower_record(id, json!({})));
    assert_eq!(
        tower_signed().cookie_after_request(&s, false, [0; 12], now),
        None
    );
    assert_eq!(
        tower_signed()
            .cookie_after_request(&s, true, [0; 12], now)
            .as_deref(),
        Some(&*format!(
            "{}; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=3600",
            TOWER_SIGNED
        ))
    );
    let s = reload(&actix_signed(), ACTIX_SIGNED_KEY, b"{}");
    assert_eq!(
        actix_signed()
            .cookie_after_request(&s, true, [0; 12], now)
            .as_deref(),
        Some(&*format!(
            "{ACTIX_SIGNED}; HttpOnly; SameSite=Lax; Secure; Path=/"
        ))
    );
    assert_eq!(
        support::config().cookie_after_request(&s, true, [0; 12], now),
        None
    );
}

#[test]
fn a_session_of_another_format_is_refused_not_written_in_the_wrong_one() {
    let express = support::loaded(r#"{"cookie":{"path":"/"},"n":1}"#);
    let mut s = express;
    s.insert("n", 2).unwrap();
    let mut save = Save::new(tower_plain(), s, at(0));
    assert!(save.poll_request().is_none());
    assert_eq!(
        save.poll_outcome().unwrap().unwrap_err().reason(),
        "invalid_session_id"
    );
    // An id of the right shape but an express session: refused by format.
    let mut data = Map::new();
    data.insert("n".into(), json!(1));
    let cookie = session_sockets_core::codec::record::SessionCookie::new(None, 0);
    let mut s = Session::from_stored(
        SessionId::new("vNPPFgK-j7a-idNRnFp0KQ"),
        Meta::Express(cookie),
        data,
        Arc::from(&b"{}"[..]),
    );
    s.insert("n", 2).unwrap();
    let mut save = Save::new(tower_plain(), s, at(0));
    assert!(save.poll_request().is_none());
    let e = save.poll_outcome().unwrap().unwrap_err();
    assert_eq!(e.reason(), "malformed_record");
    assert!(e.to_string().contains("another format"), "{e}");
}

#[test]
fn axum_logins_user_is_read_typed() {
    let id = "vNPPFgK-j7a-idNRnFp0KQ";
    let login = tower::axum_login_value(json!(42), &[1, 2, 3]);
    let s = reload(
        &tower_plain(),
        id,
        &tower_record(id, json!({ tower::AXUM_LOGIN_KEY: login })),
    );
    assert_eq!(s.axum_login_user_id::<i64>().unwrap(), Some(42));
    assert!(
        s.axum_login_user_id::<String>().is_err(),
        "another id type says so"
    );
    assert_eq!(
        s.axum_login().unwrap().auth_hash.as_deref(),
        Some(&[1u8, 2, 3][..])
    );
    let anonymous = reload(&tower_plain(), id, &tower_record(id, json!({})));
    assert_eq!(anonymous.axum_login_user_id::<i64>().unwrap(), None);
    // `cookie` is an ordinary key outside express-session.
    let mut s = anonymous;
    s.insert("cookie", 1).unwrap();
    assert_eq!(s.get::<i64>("cookie").unwrap(), Some(1));
    let _ = State::default();
    let _ = Keys::from_base64([KEY]).unwrap();
}

/// R13: which formats' records carry a date that ends a session, the fact a
/// server uses to skip looking at dates where none can.
#[test]
fn r13_records_can_expire_in_express_without_rolling_and_in_tower_sessions() {
    let express = |rolling| {
        Config::builder()
            .secret("s")
            .rolling(rolling)
            .build()
            .unwrap()
            .records_can_expire()
    };
    assert!(express(false));
    assert!(!express(true), "rolling: the store's TTL decides");
    assert!(tower_plain().records_can_expire());
    assert!(
        !actix_private().records_can_expire(),
        "its records hold no date"
    );
}
