//! Golden transcripts of the write machines (Create, Save, Touch, Destroy,
//! Regenerate): every request they emit and every reply they can get,
//! including wrong ids, duplicate replies and replies after the deadline;
//! and the connect-redis reference records, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use session_sockets_core::codec::record;
use session_sockets_core::codec::set_cookie::{CookieSyntaxError, cookie_header};
use session_sockets_core::machines::{
    Commit, Create, Created, Destroy, Edit, Regenerate, Save, Touch,
};
use session_sockets_core::time::from_millis;
use session_sockets_core::{
    Bytes, Config, ConfigError, CookieOptions, Failure, Machine, Now, Reply, Request, RequestId,
    SameSite, Session, SessionId, WriteError,
};
use support::{
    DEADLINE, T0_MS, at, config, config_with, good_reply, loaded, loaded_as, random, t, vectors,
};

/// The bytes a save of `s` compares against (the record it rests on), as
/// the save itself shows them; `None` if it was never stored.
fn stored_bytes(s: &Session) -> Option<Vec<u8>> {
    let mut probe = s.clone();
    // A change, and a TTL the save can write, whatever the cookie says.
    probe.insert("stored-bytes-probe", 1).unwrap();
    probe.cookie_mut().unwrap().set_expires(None);
    let mut m = Save::new(config(), probe, at(0));
    match m.poll_request() {
        Some(Request::CompareAndSet { expected, .. }) => Some(expected.to_vec()),
        _ => None,
    }
}

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("an object"),
    }
}

const REC: &str =
    r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":1,"a":"x"}"#;

fn sid_of(byte: u8) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 24])
}

fn req<M: Machine>(m: &mut M) -> Request {
    let r = m.poll_request().expect("a request");
    assert_eq!(m.poll_request(), None, "one request at a time");
    r
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

// ---------------------------------------------------------------- vectors

/// The config express-session and connect-redis used for a session record.
fn record_config(rec: &Value) -> Config {
    let opts = &rec["express_session_options"];
    let secrets: Vec<String> = opts["secret"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .split(',')
        .map(str::to_owned)
        .collect();
    let c = &opts["cookie"];
    let cookie = CookieOptions {
        max_age: c["maxAge"].as_u64().map(Duration::from_millis),
        secure: c["secure"].as_bool().unwrap_or(false),
        http_only: c["httpOnly"].as_bool().unwrap_or(true),
        path: c["path"].as_str().unwrap_or("/").to_owned(),
        domain: c["domain"].as_str().map(str::to_owned),
        same_site: c["sameSite"].as_str().map(|s| match s {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            _ => SameSite::None,
        }),
    };
    Config::builder()
        .secrets(secrets)
        .cookie_name(opts["name"].as_str().unwrap_or("connect.sid"))
        .key_prefix(
            rec["connect_redis_options"]["prefix"]
                .as_str()
                .unwrap_or("sess:"),
        )
        .cookie(cookie)
        .rolling(opts["rolling"].as_bool().unwrap_or(false))
        .build()
        .unwrap()
}

#[test]
fn r10_r24_create_writes_the_connect_redis_reference_records_byte_for_byte() {
    let v = vectors();
    let recs = v["session_records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    for rec in recs {
        let name = rec["name"].as_str().unwrap();
        let config = Arc::new(record_config(rec));
        let key = rec["redis_key"].as_str().unwrap();
        let sid = &key[config.key_prefix().len()..];
        let value = rec["redis_value"].as_str().unwrap();
        let stored = record::decode(value.as_bytes()).unwrap();
        // express-session stamps `expires` when it creates the cookie:
        // that instant is `expires - originalMaxAge`.
        let created_ms = match (stored.cookie.expires_ms(), stored.cookie.original_max_age()) {
            (Some(e), Some(m)) => e - m,
            _ => rec["request_time_ms"].as_i64().unwrap(),
        };
        let now = Now::new(t(0), from_millis(created_ms));
        // The 24 random bytes behind the recorded id.
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sid)
            .unwrap();
        assert_eq!(bytes.len(), 24, "{name}");

        let mut m = Create::new(Arc::clone(&config), stored.data.clone(), now);
        let Request::Random { id, len: 24 } = req(&mut m) else {
            panic!("{name}: asks for 24 random bytes first")
        };
        m.handle_reply(id, Reply::Random(Bytes::from(bytes)), now.instant);
        let Request::Create {
            id,
            key: k,
            value: bytes,
            ttl_secs,
        } = req(&mut m)
        else {
            panic!("{name}: then an insert-only create")
        };
        assert_eq!(k.as_bytes(), key.as_bytes(), "{name}");
        assert_eq!(text(&bytes), value, "{name}");
        assert_eq!(ttl_secs, rec["ttl_seconds"].as_u64().unwrap(), "{name}");
        m.handle_reply(id, Reply::Created, now.instant);
        let Created {
            session,
            set_cookie,
        } = m.poll_outcome().unwrap().unwrap();
        assert_eq!(
            set_cookie,
            rec["set_cookie_header"][0].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(session.id().expose(), sid);
        assert!(!session.is_changed(), "{name}: stored");
        assert!(m.is_finished());
        assert_eq!(m.poll_outcome().map(|_| ()), None, "the outcome comes once");

        // The follow-up request with the same cookie, unmodified: only an
        // EXPIRE with the recorded TTL, and a Set-Cookie only when rolling.
        let follow = rec["follow_up_request_same_cookie_unmodified"].clone();
        let later = Now::new(t(100), from_millis(created_ms + 100));
        let mut touch = Touch::new(Arc::clone(&config), session, later);
        let Request::Touch {
            id,
            key: k,
            ttl_secs,
        } = req(&mut touch)
        else {
            panic!("{name}: a touch is an EXPIRE")
        };
        let cmds = follow["redis_commands"].as_array().unwrap();
        assert_eq!(cmds[1]["cmd"], "EXPIRE");
        assert_eq!(k.as_bytes(), key.as_bytes());
        assert_eq!(ttl_secs, cmds[1]["ttl"].as_u64().unwrap(), "{name}");
        touch.handle_reply(id, Reply::Done, later.instant);
        let touched = touch.poll_outcome().unwrap().unwrap();
        assert_eq!(
            touched.set_cookie.as_deref(),
            follow["set_cookie_header"][0].as_str(),
            "{name}"
        );
        let s = touched.session;
        assert_eq!(
            stored_bytes(&s).as_deref(),
            Some(value.as_bytes()),
            "{name}: a touch does not rewrite the record"
        );
        assert_eq!(
            session_sockets_core::machines::ttl_secs(&config, s.cookie().unwrap(), later.wall),
            cmds[1]["ttl"].as_i64().unwrap()
        );
    }
}

#[test]
fn r3_set_cookie_writes_every_attribute_in_npm_cookie_order() {
    // Expected bytes from express-session 1.19.0's Cookie#serialize.
    let rec = record::decode(br#"{"cookie":{"originalMaxAge":1000,"partitioned":true,"priority":"HIGH","expires":"2026-11-29T12:14:27.949Z","secure":true,"httpOnly":true,"domain":".Example.com","path":"/a b","sameSite":true}}"#).unwrap();
    let header = cookie_header(&config(), &SessionId::new("sid é+/"), &rec.cookie).unwrap();
    assert_eq!(
        header,
        "connect.sid=s%3Asid%20%C3%A9%2B%2F.c7dMtNqZK7VN8kzV6ysD9HYIimCyHVT3rMY%2BZFP7BRc; \
         Domain=.Example.com; Path=/a b; Expires=Sun, 29 Nov 2026 12:14:27 GMT; HttpOnly; \
         Secure; Partitioned; Priority=High; SameSite=Strict"
    );
}

#[test]
fn r3_set_cookie_refuses_what_npm_cookie_refuses() {
    let sid = SessionId::new("abc");
    for (cookie, field) in [
        (r#"{"domain":"a.com; Secure"}"#, "domain"),
        (r#"{"domain":5}"#, "domain"),
        (r#"{"path":"/;Domain=evil"}"#, "path"),
        (r#"{"path":"/\n"}"#, "path"),
        (r#"{"priority":"urgent"}"#, "priority"),
        (r#"{"sameSite":"sometimes"}"#, "sameSite"),
        (r#"{"sameSite":1}"#, "sameSite"),
    ] {
        let rec = record::decode(format!(r#"{{"cookie":{cookie}}}"#).as_bytes()).unwrap();
        assert_eq!(
            cookie_header(&config(), &sid, &rec.cookie).map_err(|e| e.field()),
            Err(field),
            "{cookie}"
        );
    }
    // Falsy values are skipped, as JavaScript's `if (opt.x)` skips them.
    let rec = record::decode(
        br#"{"cookie":{"domain":"","path":"","httpOnly":0,"secure":null,"sameSite":false,"priority":""}}"#,
    )
    .unwrap();
    let h = cookie_header(&config(), &sid, &rec.cookie).unwrap();
    assert!(!h.contains(';'), "{h}");
}

#[test]
fn r3_r14_config_validates_cookie_options() {
    let build = |c: CookieOptions| Config::builder().secret("s").cookie(c).build();
    assert!(matches!(
        build(CookieOptions {
            path: "/a;b".into(),
            ..CookieOptions::default()
        }),
        Err(ConfigError::InvalidCookiePath(_))
    ));
    let e = build(CookieOptions {
        domain: Some("evil.com; Secure".into()),
        ..CookieOptions::default()
    })
    .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidCookieDomain(_)));
    assert!(e.to_string().contains("cookie.domain"), "{e}");
    // Browsers drop a SameSite=None cookie that is not Secure.
    let none = |secure| CookieOptions {
        same_site: Some(SameSite::None),
        secure,
        ..CookieOptions::default()
    };
    let e = build(none(false)).unwrap_err();
    assert_eq!(e, ConfigError::SameSiteNoneWithoutSecure);
    assert!(e.to_string().contains("secure: true"), "{e}");
    assert!(build(none(true)).is_ok());
    assert_eq!(
        Config::builder()
            .secret("s")
            .max_save_attempts(0)
            .build()
            .unwrap_err(),
        ConfigError::ZeroSaveAttempts
    );
    assert_eq!(
        Config::builder()
            .secret("s")
            .default_ttl(Duration::from_millis(999))
            .build()
            .unwrap_err(),
        ConfigError::ZeroTtl
    );
    assert_eq!(
        build(CookieOptions {
            max_age: Some(Duration::MAX),
            ..CookieOptions::default()
        })
        .unwrap_err(),
        ConfigError::InvalidMaxAge
    );
    let c = Config::builder().secret("s").build().unwrap();
    assert_eq!(c.default_ttl(), Duration::from_secs(86_400));
    // No count: conflicts are retried until the store deadline.
    assert_eq!(c.max_save_attempts(), u32::MAX);
    assert_eq!(c.cookie(), &CookieOptions::default());
    assert!(c.cookie().http_only && c.cookie().path == "/" && !c.cookie().secure);
    assert!(!c.rolling());
}

// ----------------------------------------------------------------- create

#[test]
fn create_golden_transcript() {
    let config = config();
    let mut m = Create::new(Arc::clone(&config), data(json!({"user": "ada"})), at(0));
    assert_eq!(m.poll_timeout(), Some(t(0) + DEADLINE));
    assert_eq!(
        req(&mut m),
        Request::Random {
            id: RequestId(1),
            len: 24
        }
    );
    m.handle_reply(RequestId(1), random(7), t(10));
    let sid = sid_of(7);
    assert_eq!(sid.len(), 32);
    let expected_value = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ada"}"#;
    assert_eq!(
        req(&mut m),
        Request::Create {
            id: RequestId(2),
            key: session_sockets_core::StoreKey::new(b"sess:", sid.as_bytes()),
            value: Bytes::from(expected_value.as_bytes()),
            ttl_secs: 86_400,
        }
    );
    assert_eq!(
        m.poll_timeout(),
        Some(t(10) + DEADLINE),
        "deadline per request"
    );
    m.handle_reply(RequestId(2), Reply::Created, t(20));
    let created = m.poll_outcome().unwrap().unwrap();
    assert_eq!(created.session.id().expose(), sid);
    assert_eq!(
        created.session.get::<String>("user").unwrap().unwrap(),
        "ada"
    );
    assert!(
        created
            .set_cookie
            .starts_with(&format!("connect.sid=s%3A{sid}."))
    );
    assert!(created.set_cookie.ends_with("; Path=/; HttpOnly"));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.poll_request(), None);
}

#[test]
fn create_retries_a_colliding_id_with_fresh_bytes_then_gives_up() {
    let mut m = Create::new(config(), Map::new(), at(0));
    let mut sids = Vec::new();
    for (i, byte) in [1u8, 2, 3].into_iter().enumerate() {
        let Request::Random { id, .. } = req(&mut m) else {
            panic!()
        };
        m.handle_reply(id, random(byte), t(0));
        let Request::Create { id, key, .. } = req(&mut m) else {
            panic!()
        };
        sids.push(key);
        m.handle_reply(id, Reply::Exists, t(0));
        if i < 2 {
            assert!(!m.is_finished(), "retries after a collision");
        }
    }
    assert_ne!(sids[0], sids[1]);
    let e = m.poll_outcome().unwrap().unwrap_err();
    assert_eq!(e, WriteError::IdCollision { attempts: 3 });
    assert_eq!(e.reason(), "id_collision");
    assert!(e.to_string().contains("CSPRNG"), "{e}");
    assert_eq!(m.poll_request(), None);
}

#[test]
fn create_every_failing_reply() {
    let start = |m: &mut Create| {
        let Request::Random { id, .. } = req(m) else {
            panic!()
        };
        id
    };
    // Too few random bytes.
    let mut m = Create::new(config(), Map::new(), at(0));
    let id = start(&mut m);
    m.handle_reply(id, Reply::Random(Bytes::from(vec![0; 16])), t(0));
    let e = m.poll_outcome().unwrap().unwrap_err();
    assert!(
        matches!(&e, WriteError::Failed(Failure::Store(s)) if s.message().contains("16 bytes")),
        "{e}"
    );
    // A store failure at either step, and out-of-protocol answers.
    for (at_create, reply, reason) in [
        (false, Reply::Failed("down".into()), "store_error"),
        (false, Reply::Done, "store_error"),
        (true, Reply::Failed("down".into()), "store_error"),
        (true, Reply::Swapped, "store_error"),
        (true, Reply::Gone, "store_error"),
    ] {
        let mut m = Create::new(config(), Map::new(), at(0));
        let mut id = start(&mut m);
        if at_create {
            m.handle_reply(id, random(1), t(0));
            id = req(&mut m).id();
        }
        m.handle_reply(id, reply.clone(), t(0));
        let e = m.poll_outcome().unwrap().unwrap_err();
        assert_eq!(e.reason(), reason, "{reply:?}");
        if let Reply::Failed(msg) = reply {
            assert_eq!(e, WriteError::Failed(Failure::Store(msg)));
        } else {
            assert!(e.to_string().contains("expected"), "{e}");
        }
        assert_eq!(m.poll_request(), None);
    }
    // maxAge 0: the record would expire at once, so nothing is stored.
    let zero = Arc::new(
        Config::builder()
            .secret("s")
            .cookie(CookieOptions {
                max_age: Some(Duration::ZERO),
                ..CookieOptions::default()
            })
            .build()
            .unwrap(),
    );
    let mut m = Create::new(zero, Map::new(), at(0));
    let id = start(&mut m);
    m.handle_reply(id, random(1), t(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(m.poll_outcome().unwrap().unwrap_err(), WriteError::Expired);
}

// ------------------------------------------------------------------- save

#[test]
fn r25_save_only_when_changed() {
    let s = loaded(REC);
    let mut m = Save::new(config(), s, at(0));
    assert_eq!(m.poll_request(), None, "no write for an unchanged session");
    assert_eq!(m.poll_timeout(), None);
    let s = m.poll_outcome().unwrap().unwrap();
    assert_eq!(stored_bytes(&s).as_deref(), Some(REC.as_bytes()));
    // Setting a key to the value it has is no change either.
    let mut s = s;
    s.insert("n", 1).unwrap();
    let mut m = Save::new(config(), s, at(0));
    assert_eq!(m.poll_request(), None);
    assert!(m.poll_outcome().unwrap().is_ok());
}

#[test]
fn save_golden_transcript() {
    let mut s = loaded(REC);
    s.insert("n", 2).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let expected_new = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":2,"a":"x"}"#;
    assert_eq!(
        req(&mut m),
        Request::CompareAndSet {
            id: RequestId(1),
            key: session_sockets_core::StoreKey::new(b"sess:", b"sid-1"),
            expected: Bytes::from(REC.as_bytes()),
            new: Bytes::from(expected_new.as_bytes()),
            ttl_secs: 86_400,
        }
    );
    m.handle_reply(RequestId(1), Reply::Swapped, t(5));
    let s = m.poll_outcome().unwrap().unwrap();
    assert!(!s.is_changed());
    assert_eq!(
        stored_bytes(&s).as_deref(),
        Some(expected_new.as_bytes()),
        "the next save compares against what this one wrote"
    );
    assert_eq!(m.attempts(), 1);
}

#[test]
fn r24_save_never_resurrects() {
    let mut s = loaded(REC);
    s.insert("n", 2).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Gone, t(0));
    let e = m.poll_outcome().unwrap().unwrap_err();
    assert_eq!(e, WriteError::Gone);
    assert!(e.to_string().contains("not brought back"), "{e}");
    assert_eq!(m.poll_request(), None, "no create, no retry");
}

#[test]
fn r25_save_conflict_reapplies_only_this_sides_keys() {
    let mut s = loaded(REC);
    s.insert("n", 10).unwrap(); // this side's change
    s.remove("a"); // and a removal
    let mut m = Save::new(config(), s, at(0));
    let id = req(&mut m).id();
    // Meanwhile another writer changed `n`, `a` and added `b`.
    let theirs = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":5,"a":"y","b":true}"#;
    m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.as_bytes())), t(1));
    let Request::CompareAndSet {
        id, expected, new, ..
    } = req(&mut m)
    else {
        panic!("retries with a compare-and-set")
    };
    assert_eq!(id, RequestId(2));
    assert_eq!(text(&expected), theirs, "against the current bytes");
    assert_eq!(
        text(&new),
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":10,"b":true}"#,
        "this side's keys win, theirs stay"
    );
    // A late duplicate of the first reply is ignored.
    m.handle_reply(RequestId(1), Reply::Swapped, t(2));
    assert!(!m.is_finished());
    m.handle_reply(id, Reply::Swapped, t(2));
    let s = m.poll_outcome().unwrap().unwrap();
    assert_eq!(s.get::<bool>("b").unwrap(), Some(true));
    assert_eq!(m.attempts(), 2);
}

#[test]
fn save_conflict_already_holding_the_change_writes_nothing_more() {
    let mut s = loaded(REC);
    s.insert("n", 5).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let id = req(&mut m).id();
    let theirs = r#"{"cookie":{"expires":null},"n":5,"z":0}"#;
    m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.as_bytes())), t(0));
    assert_eq!(m.poll_request(), None);
    let s = m.poll_outcome().unwrap().unwrap();
    assert_eq!(stored_bytes(&s).as_deref(), Some(theirs.as_bytes()));
}

#[test]
fn save_conflicts_are_bounded() {
    let config = Arc::new(
        Config::builder()
            .secret("s")
            .max_save_attempts(3)
            .build()
            .unwrap(),
    );
    let mut s = loaded(REC);
    s.insert("mine", 1).unwrap();
    let mut m = Save::new(config, s, at(0));
    for i in 0..3 {
        let mut r = req(&mut m);
        if let Request::Random { id, .. } = r {
            // From the third attempt on, a backoff: its random bytes, then
            // the wait.
            m.handle_reply(id, random(i), t(0));
            let wake = m.poll_timeout().unwrap();
            m.handle_timeout(wake);
            r = req(&mut m);
        }
        let Request::CompareAndSet { id, .. } = r else {
            panic!("a compare-and-set")
        };
        let theirs = format!(r#"{{"cookie":{{}},"other":{i}}}"#);
        m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.into_bytes())), t(0));
    }
    let e = m.poll_outcome().unwrap().unwrap_err();
    assert_eq!(e, WriteError::Conflict { attempts: 3 });
    assert_eq!(e.reason(), "conflict");
    assert!(e.to_string().contains("max_save_attempts"), "{e}");
    assert_eq!(m.poll_request(), None);
}

#[test]
fn save_every_failing_reply() {
    for (reply, want) in [
        (
            Reply::Conflict(Bytes::from(&b"not json"[..])),
            "malformed_record",
        ),
        (Reply::Failed("boom".into()), "store_error"),
        (Reply::Created, "store_error"),
        (Reply::Found(Bytes::from(REC.as_bytes())), "store_error"),
    ] {
        let mut s = loaded(REC);
        s.insert("n", 3).unwrap();
        let mut m = Save::new(config(), s, at(0));
        let id = req(&mut m).id();
        m.handle_reply(id, reply.clone(), t(0));
        let e = m.poll_outcome().unwrap().unwrap_err();
        assert_eq!(e.reason(), want, "{reply:?}");
        assert!(!e.to_string().contains("sid-1"));
    }
    // Never stored: nothing to compare against; a save never creates.
    let mut s = Session::new(
        SessionId::new("x"),
        record::SessionCookie::new(None, 0),
        Map::new(),
    );
    s.insert("a", 1).unwrap();
    let mut m = Save::new(config(), s, at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::NotStored
    );
    // R15: an id that cannot be a store key.
    let mut s = loaded_as("a\nb", REC);
    s.insert("a", 1).unwrap();
    let mut m = Save::new(config(), s, at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::Failed(Failure::InvalidSessionId)
    );
}

#[test]
fn r13_save_of_an_expired_session_destroys_instead() {
    // expires passed 1 ms ago: connect-redis's TTL is 0, so it deletes.
    let json = format!(
        r#"{{"cookie":{{"originalMaxAge":1000,"expires":"{}"}},"n":1}}"#,
        session_sockets_core::time::to_iso(T0_MS - 1)
    );
    let mut s = loaded(&json);
    s.insert("n", 2).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let Request::Destroy { id, key } = req(&mut m) else {
        panic!("destroys")
    };
    assert_eq!(key.as_bytes(), b"sess:sid-1");
    m.handle_reply(id, Reply::Done, t(0));
    assert_eq!(m.poll_outcome().unwrap().unwrap_err(), WriteError::Expired);
    assert_eq!(m.attempts(), 0, "no compare-and-set");
    // A conflict whose current record has expired destroys too.
    let mut s = loaded(REC);
    s.insert("n", 2).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Conflict(Bytes::from(json.into_bytes())), t(0));
    assert!(matches!(req(&mut m), Request::Destroy { .. }));
}

#[test]
fn save_with_update_reruns_the_update_on_the_current_record() {
    let mut s = loaded(REC);
    s.insert("mine", "x").unwrap();
    let bump = Box::new(|s: &mut Session| {
        let n = s.get::<i64>("n").unwrap().unwrap_or(0);
        s.insert("n", n + 1).unwrap();
    });
    let mut m = Save::update(config(), s, bump, at(0));
    let Request::CompareAndSet { id, new, .. } = req(&mut m) else {
        panic!()
    };
    assert!(text(&new).contains(r#""n":2"#));
    let theirs = r#"{"cookie":{"expires":null},"n":7}"#;
    m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.as_bytes())), t(0));
    let Request::CompareAndSet {
        id, expected, new, ..
    } = req(&mut m)
    else {
        panic!()
    };
    assert_eq!(text(&expected), theirs);
    assert_eq!(
        text(&new),
        r#"{"cookie":{"expires":null},"n":8,"mine":"x"}"#,
        "the update re-runs on the current record, after this side's own changed keys"
    );
    m.handle_reply(id, Reply::Swapped, t(0));
    assert_eq!(
        m.poll_outcome().unwrap().unwrap().get::<i64>("n").unwrap(),
        Some(8)
    );
}

#[test]
fn r24_a_created_session_is_saveable_against_its_stored_bytes() {
    let mut c = Create::new(config(), data(json!({"k": 1})), at(0));
    let id = req(&mut c).id();
    c.handle_reply(id, random(9), t(0));
    let Request::Create { id, value, .. } = req(&mut c) else {
        panic!()
    };
    c.handle_reply(id, Reply::Created, t(0));
    let mut s = c.poll_outcome().unwrap().unwrap().session;
    s.insert("k", 2).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let Request::CompareAndSet { expected, .. } = req(&mut m) else {
        panic!()
    };
    assert_eq!(expected, value);
}

// ------------------------------------------------------------------ touch

#[test]
fn r25_touch_refreshes_expiry_without_rewriting() {
    let json = format!(
        r#"{{"cookie":{{"originalMaxAge":60000,"expires":"{}","httpOnly":true,"path":"/"}},"n":1}}"#,
        session_sockets_core::time::to_iso(T0_MS + 1000)
    );
    let s = loaded(&json);
    let mut m = Touch::new(config(), s, at(500));
    assert_eq!(
        req(&mut m),
        Request::Touch {
            id: RequestId(1),
            key: session_sockets_core::StoreKey::new(b"sess:", b"sid-1"),
            ttl_secs: 60,
        }
    );
    m.handle_reply(RequestId(1), Reply::Done, t(600));
    let touched = m.poll_outcome().unwrap().unwrap();
    assert_eq!(touched.set_cookie, None, "not rolling");
    let s = touched.session;
    assert_eq!(s.cookie().unwrap().expires_ms(), Some(T0_MS + 500 + 60_000));
    assert_eq!(stored_bytes(&s).as_deref(), Some(json.as_bytes()));
    assert!(!s.is_changed());
    // A browser-session cookie gets the default TTL.
    let mut m = Touch::new(config(), loaded(REC), at(0));
    let Request::Touch { ttl_secs, .. } = req(&mut m) else {
        panic!()
    };
    assert_eq!(ttl_secs, 86_400);
}

#[test]
fn touch_every_reply_and_rolling() {
    let rolling = config_with(|b| b.rolling(true));
    let json = r#"{"cookie":{"originalMaxAge":60000,"expires":"2026-11-29T12:14:27.949Z","httpOnly":true,"path":"/"}}"#;
    let mut m = Touch::new(Arc::clone(&rolling), loaded(json), at(0));
    let id = req(&mut m).id();
    assert!(!format!("{m:?}").contains("s%3A"), "Debug is redacted");
    m.handle_reply(id, Reply::Done, t(0));
    let touched = m.poll_outcome().unwrap().unwrap();
    let header = touched.set_cookie.clone().unwrap();
    assert!(
        header.ends_with("; Path=/; Expires=Sun, 29 Nov 2026 12:15:27 GMT; HttpOnly"),
        "{header}"
    );
    assert!(
        !format!("{touched:?}").contains("s%3A"),
        "Debug is redacted"
    );

    for (reply, want) in [
        (Reply::Gone, WriteError::Gone),
        (
            Reply::Failed("x".into()),
            WriteError::Failed(Failure::Store("x".into())),
        ),
    ] {
        let mut m = Touch::new(Arc::clone(&rolling), loaded(json), at(0));
        let id = req(&mut m).id();
        m.handle_reply(id, reply, t(0));
        // A failed touch is an error: no header to re-send.
        assert_eq!(m.poll_outcome().unwrap().unwrap_err(), want);
    }
    let mut m = Touch::new(config(), loaded(json), at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Swapped, t(0));
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err().reason(),
        "store_error"
    );

    // An originalMaxAge past what a record can hold: refused before any IO.
    let huge = r#"{"cookie":{"originalMaxAge":1e300,"expires":null}}"#;
    let mut m = Touch::new(config(), loaded(huge), at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::InvalidCookie(CookieSyntaxError::MaxAge)
    );

    // A stored cookie npm cookie cannot serialize: refused before any IO.
    let bad = r#"{"cookie":{"originalMaxAge":null,"expires":null,"domain":"a;b"}}"#;
    let mut m = Touch::new(Arc::clone(&rolling), loaded(bad), at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::InvalidCookie(CookieSyntaxError::Domain)
    );
}

#[test]
fn r13_touch_of_an_expired_browser_session_destroys_it() {
    // No originalMaxAge, expires in the past: the TTL is <= 0.
    let json = format!(
        r#"{{"cookie":{{"originalMaxAge":null,"expires":"{}"}}}}"#,
        session_sockets_core::time::to_iso(T0_MS - 5000)
    );
    let mut m = Touch::new(config(), loaded(&json), at(0));
    let Request::Destroy { id, .. } = req(&mut m) else {
        panic!()
    };
    m.handle_reply(id, Reply::Failed("down".into()), t(0));
    assert_eq!(m.poll_outcome().unwrap().unwrap_err(), WriteError::Expired);
}

// ---------------------------------------------------------------- destroy

#[test]
fn destroy_golden_transcript() {
    let mut m = Destroy::new(config(), &SessionId::new("sid-1"), at(0));
    assert_eq!(
        req(&mut m),
        Request::Destroy {
            id: RequestId(1),
            key: session_sockets_core::StoreKey::new(b"sess:", b"sid-1"),
        }
    );
    m.handle_reply(RequestId(1), Reply::Done, t(0));
    assert_eq!(m.poll_outcome(), Some(Ok(())));
    for (reply, want) in [
        (Reply::Gone, Ok(())),
        (
            Reply::Failed("x".into()),
            Err(WriteError::Failed(Failure::Store("x".into()))),
        ),
    ] {
        let mut m = Destroy::new(config(), &SessionId::new("sid-1"), at(0));
        let id = req(&mut m).id();
        m.handle_reply(id, reply, t(0));
        assert_eq!(m.poll_outcome(), Some(want));
    }
    let mut m = Destroy::new(config(), &SessionId::new("sid-1"), at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Exists, t(0));
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err().reason(),
        "store_error"
    );
    let mut m = Destroy::new(config(), &SessionId::new("x".repeat(300)), at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome(),
        Some(Err(WriteError::Failed(Failure::InvalidSessionId)))
    );
}

// ------------------------------------------------------------- regenerate

#[test]
fn r11_regenerate_creates_a_new_id_then_destroys_the_old() {
    for carry_over in [true, false] {
        let s = loaded(REC);
        let mut m = Regenerate::new(config(), s, carry_over, at(0));
        let Request::Random { id, .. } = req(&mut m) else {
            panic!()
        };
        m.handle_reply(id, random(4), t(0));
        let Request::Create { id, key, value, .. } = req(&mut m) else {
            panic!()
        };
        assert_eq!(key.as_bytes(), format!("sess:{}", sid_of(4)).as_bytes());
        assert_eq!(text(&value).contains(r#""n":1"#), carry_over);
        m.handle_reply(id, Reply::Created, t(0));
        assert!(!m.is_finished(), "the old one is not destroyed yet");
        assert_eq!(
            req(&mut m),
            Request::Destroy {
                id: RequestId(3),
                key: session_sockets_core::StoreKey::new(b"sess:", b"sid-1"),
            }
        );
        m.handle_reply(RequestId(3), Reply::Done, t(0));
        let created = m.poll_outcome().unwrap().unwrap();
        assert_eq!(created.session.id().expose(), sid_of(4));
        assert_eq!(created.session.data().contains_key("n"), carry_over);
        assert!(created.set_cookie.contains(&sid_of(4)));
    }
    // Destroying the old one failed: fail closed.
    let mut m = Regenerate::new(config(), loaded(REC), true, at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, random(4), t(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Created, t(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Failed("down".into()), t(0));
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::Failed(Failure::Store("down".into()))
    );
    // Creating failed: the old session is left alone.
    let mut m = Regenerate::new(config(), loaded(REC), true, at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Failed("rng".into()), t(0));
    assert_eq!(m.poll_request(), None);
    assert!(m.poll_outcome().unwrap().is_err());
    // R15.
    let s = loaded_as("\u{7f}", REC);
    let mut m = Regenerate::new(config(), s, true, at(0));
    assert_eq!(m.poll_request(), None);
    assert_eq!(
        m.poll_outcome().unwrap().unwrap_err(),
        WriteError::Failed(Failure::InvalidSessionId)
    );
}

// ---------------------------------------------- ids, duplicates, deadlines

/// Every machine, started and with its first request polled.
type Factory = Box<dyn FnMut() -> Box<dyn probe::Probe>>;

fn every_machine() -> Vec<(&'static str, Factory)> {
    fn changed() -> Session {
        let mut s = loaded(REC);
        s.insert("n", 2).unwrap();
        s
    }
    vec![
        (
            "create",
            Box::new(|| {
                Box::new(Create::new(config(), Map::new(), at(0))) as Box<dyn probe::Probe>
            }),
        ),
        (
            "save",
            Box::new(|| Box::new(Save::new(config(), changed(), at(0))) as Box<dyn probe::Probe>),
        ),
        (
            "touch",
            Box::new(|| {
                Box::new(Touch::new(config(), loaded(REC), at(0))) as Box<dyn probe::Probe>
            }),
        ),
        (
            "destroy",
            Box::new(|| {
                Box::new(Destroy::new(config(), &SessionId::new("sid-1"), at(0)))
                    as Box<dyn probe::Probe>
            }),
        ),
        (
            "regenerate",
            Box::new(|| {
                Box::new(Regenerate::new(config(), loaded(REC), true, at(0)))
                    as Box<dyn probe::Probe>
            }),
        ),
    ]
}

/// A machine seen through an object-safe lens. In a module of its own, so
/// that its methods do not clash with [`Machine`]'s where both are in scope.
mod probe {
    use super::*;

    /// A machine seen through an object-safe lens.
    pub trait Probe {
        fn poll_request(&mut self) -> Option<Request>;
        fn handle_reply(&mut self, id: RequestId, reply: Reply, now: Instant);
        fn poll_timeout(&self) -> Option<Instant>;
        fn handle_timeout(&mut self, now: Instant);
        /// The outcome's error, `Some(None)` for success.
        fn poll_error(&mut self) -> Option<Option<WriteError>>;
    }

    impl<M: Machine<Outcome = Result<T, WriteError>>, T> Probe for M {
        fn poll_request(&mut self) -> Option<Request> {
            Machine::poll_request(self)
        }
        fn handle_reply(&mut self, id: RequestId, reply: Reply, now: Instant) {
            Machine::handle_reply(self, id, reply, now)
        }
        fn poll_timeout(&self) -> Option<Instant> {
            Machine::poll_timeout(self)
        }
        fn handle_timeout(&mut self, now: Instant) {
            Machine::handle_timeout(self, now)
        }
        fn poll_error(&mut self) -> Option<Option<WriteError>> {
            Machine::poll_outcome(self).map(Result::err)
        }
    }
}

#[test]
fn r23_every_machine_fails_closed_at_its_deadline() {
    for (name, mut make) in every_machine() {
        // A reply arriving at the deadline is a timeout, even a good one.
        let mut m = make();
        let r = m.poll_request().unwrap();
        assert_eq!(m.poll_timeout(), Some(t(0) + DEADLINE), "{name}");
        m.handle_reply(r.id(), good_reply(&r), t(0) + DEADLINE);
        assert_eq!(
            m.poll_error(),
            Some(Some(WriteError::Failed(Failure::Timeout))),
            "{name}"
        );
        assert_eq!(m.poll_request(), None, "{name}");
        assert_eq!(m.poll_timeout(), None, "{name}");

        // handle_timeout: early calls do nothing, the deadline fails it.
        let mut m = make();
        let r = m.poll_request().unwrap();
        m.handle_timeout(t(0));
        m.handle_timeout(t(0) + DEADLINE - Duration::from_millis(1));
        assert_eq!(m.poll_error(), None, "{name}");
        m.handle_timeout(t(0) + DEADLINE);
        let e = m.poll_error().unwrap().unwrap();
        assert_eq!(e, WriteError::Failed(Failure::Timeout), "{name}");
        assert!(e.to_string().contains("store_deadline"));
        // Sticky: a later reply changes nothing.
        m.handle_reply(r.id(), good_reply(&r), t(0));
        assert_eq!(m.poll_error(), None, "{name}: the outcome comes once");
    }
}

#[test]
fn every_machine_ignores_wrong_early_and_duplicate_replies() {
    for (name, mut make) in every_machine() {
        let mut m = make();
        // A reply before the request was polled is not taken.
        m.handle_reply(RequestId(1), Reply::Failed("early".into()), t(0));
        assert_eq!(m.poll_error(), None, "{name}");
        let mut steps = 0;
        let mut last = None;
        while let Some(r) = m.poll_request() {
            // Wrong ids are ignored.
            m.handle_reply(RequestId(99), Reply::Failed("wrong".into()), t(1));
            m.handle_reply(RequestId(r.id().0 + 1), Reply::Failed("next".into()), t(1));
            // A duplicate of the previous reply is ignored.
            if let Some((id, reply)) = last.take() {
                m.handle_reply(id, reply, t(1));
            }
            assert_eq!(m.poll_error(), None, "{name}");
            let reply = good_reply(&r);
            m.handle_reply(r.id(), reply.clone(), t(1));
            last = Some((r.id(), reply));
            steps += 1;
        }
        assert_eq!(
            m.poll_error(),
            Some(None),
            "{name} succeeds after {steps} steps"
        );
        let (id, reply) = last.unwrap();
        m.handle_reply(id, reply, t(1));
        m.handle_reply(id, Reply::Failed("after".into()), t(1));
        m.handle_timeout(t(1) + DEADLINE * 10);
        assert_eq!(m.poll_error(), None, "{name}: finished stays finished");
        assert_eq!(m.poll_request(), None);
    }
}

#[test]
fn r16_debug_and_errors_never_show_ids_or_cookies() {
    let mut m = Create::new(config(), data(json!({"token": "s3cret"})), at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, random(5), t(0));
    let id = req(&mut m).id();
    assert!(!format!("{m:?}").contains(&sid_of(5)));
    m.handle_reply(id, Reply::Created, t(0));
    let created = m.poll_outcome().unwrap().unwrap();
    let d = format!("{created:?}");
    assert!(!d.contains(&sid_of(5)), "{d}");
    assert!(!d.contains("s3cret"), "{d}");
    let errors = [
        WriteError::Conflict { attempts: 2 },
        WriteError::Gone,
        WriteError::Expired,
        WriteError::NotStored,
        WriteError::IdCollision { attempts: 3 },
        WriteError::Failed(Failure::InvalidSessionId),
        WriteError::InvalidCookie(CookieSyntaxError::Path),
        WriteError::Failed(Failure::MalformedRecord(record::RecordError::NoCookie)),
        WriteError::Failed(Failure::Store("x".into())),
        WriteError::Failed(Failure::Timeout),
    ];
    let mut reasons: Vec<&str> = errors.iter().map(WriteError::reason).collect();
    for e in &errors {
        // Every message says what to check: more than a bare label.
        assert!(e.to_string().len() > 40, "{e}");
    }
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), errors.len(), "reasons are distinct");
}

// ---- group commit and retries ------------------------------------------------

fn add_one(s: &mut Session) {
    let n = s.get::<i64>("n").unwrap().unwrap_or(0);
    s.insert("n", n + 1).unwrap();
}

#[test]
fn r25_a_commit_writes_every_writers_edits_with_one_compare_and_set() {
    let base = loaded(REC);
    let mut http = base.clone();
    http.insert("page", "home").unwrap();
    let mut socket = base.clone();
    socket.insert("theme", "dark").unwrap();
    socket.remove("a");
    let edits = vec![
        Edit::save(&http),
        Edit::update(&base, add_one),
        Edit::save(&socket),
        Edit::update(&base, add_one),
    ];
    let mut m = Commit::new(config(), base, edits, at(0));
    let Request::CompareAndSet {
        id, expected, new, ..
    } = req(&mut m)
    else {
        panic!("a compare-and-set")
    };
    assert_eq!(text(&expected), REC);
    assert_eq!(
        text(&new),
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"n":3,"page":"home","theme":"dark"}"#
    );
    m.handle_reply(id, Reply::Swapped, t(1));
    let stored = m.poll_outcome().unwrap().unwrap();
    assert_eq!(stored.len(), 4, "one outcome per edit");
    for s in &stored {
        assert!(!s.is_changed());
        assert_eq!(stored_bytes(s).as_deref(), Some(new.as_ref()));
    }
    assert_eq!(m.attempts(), 1);
}

#[test]
fn r25_after_a_conflict_a_commit_reapplies_every_edit_in_order_on_the_current_record() {
    let base = loaded(REC);
    let mut socket = base.clone();
    socket.insert("theme", "dark").unwrap();
    let edits = vec![
        Edit::update(&base, add_one),
        Edit::save(&socket),
        Edit::update(&base, add_one),
    ];
    let mut m = Commit::new(config(), base, edits, at(0));
    let id = req(&mut m).id();
    // Another server incremented `n` to 10 and set `b`.
    let theirs = r#"{"cookie":{"expires":null},"n":10,"a":"x","b":1}"#;
    m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.as_bytes())), t(1));
    let Request::CompareAndSet {
        id, expected, new, ..
    } = req(&mut m)
    else {
        panic!("a compare-and-set at once: the first retry does not wait")
    };
    assert_eq!(text(&expected), theirs);
    assert_eq!(
        text(&new),
        r#"{"cookie":{"expires":null},"n":12,"a":"x","b":1,"theme":"dark"}"#
    );
    m.handle_reply(id, Reply::Swapped, t(2));
    let stored = m.poll_outcome().unwrap().unwrap();
    assert_eq!(stored[2].get::<i64>("n").unwrap(), Some(12));
}

#[test]
fn r25_each_writer_adopts_the_commit_keeping_only_what_it_changed_since() {
    let base = loaded(REC);
    let mut a = base.clone();
    a.insert("x", 1).unwrap();
    let mut b = base.clone();
    b.insert("y", 1).unwrap();
    let edits = vec![Edit::save(&a), Edit::save(&b)];
    let mut m = Commit::new(config(), base, edits, at(0));
    let id = req(&mut m).id();
    // While the commit runs, `a` changes `x` again and `b` changes `z`.
    a.insert("x", 2).unwrap();
    b.insert("z", 1).unwrap();
    m.handle_reply(id, Reply::Swapped, t(1));
    let stored = m.poll_outcome().unwrap().unwrap();
    a.adopt_saved(&stored[0]);
    b.adopt_saved(&stored[1]);
    let keys = |s: &Session| {
        s.changed_keys()
            .map(|(k, v)| (k.to_owned(), v.cloned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), vec![("x".to_owned(), Some(json!(2)))]);
    assert_eq!(keys(&b), vec![("z".to_owned(), Some(json!(1)))]);
    // Each copy now holds the other writer's saved key too.
    assert_eq!(a.get::<i64>("y").unwrap(), Some(1));
    assert_eq!(b.get::<i64>("x").unwrap(), Some(1));
}

#[test]
fn r24_a_commit_on_a_destroyed_session_fails_every_edit_and_creates_nothing() {
    let base = loaded(REC);
    let edits = vec![Edit::update(&base, add_one), Edit::update(&base, add_one)];
    let mut m = Commit::new(config(), base, edits, at(0));
    let id = req(&mut m).id();
    m.handle_reply(id, Reply::Gone, t(1));
    assert_eq!(m.poll_outcome().unwrap().unwrap_err(), WriteError::Gone);
    assert_eq!(m.poll_request(), None);
}

#[test]
fn conflicts_are_retried_with_a_jittered_backoff_until_the_store_deadline() {
    let mut s = loaded(REC);
    s.insert("mine", 1).unwrap();
    let mut m = Save::new(config(), s, at(0));
    let mut now = 0i64;
    let mut randoms = 0;
    let mut waits = Vec::new();
    loop {
        let Some(r) = m.poll_request() else {
            match m.poll_timeout() {
                Some(wake) => {
                    let waited = wake.duration_since(t(now));
                    waits.push(waited);
                    m.handle_timeout(wake);
                    now += i64::try_from(waited.as_millis()).unwrap();
                    continue;
                }
                None => break,
            }
        };
        match r {
            Request::Random { id, len } => {
                assert!(len >= 8);
                randoms += 1;
                m.handle_reply(id, Reply::Random(Bytes::from(vec![7; len])), t(now));
            }
            Request::CompareAndSet { id, .. } => {
                // Another writer wins every time; 10 ms pass per round trip.
                now += 10;
                let theirs = format!(r#"{{"cookie":{{}},"other":{now}}}"#);
                m.handle_reply(
                    id,
                    Reply::Conflict(Bytes::from(theirs.into_bytes())),
                    t(now),
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let e = m.poll_outcome().unwrap().unwrap_err();
    assert!(matches!(e, WriteError::Conflict { .. }), "{e}");
    assert!(
        m.attempts() > 8,
        "not a small fixed count: {} attempts",
        m.attempts()
    );
    // It stops once the next attempt could not start before the deadline:
    // at most one backoff cap (16 ms) early.
    assert!(
        t(now) + Duration::from_millis(16) >= t(0) + DEADLINE,
        "gave up at {now} ms, well before the deadline"
    );
    assert!(
        t(now) < t(0) + DEADLINE + Duration::from_millis(100),
        "gave up late, at {now} ms"
    );
    assert_eq!(randoms, 1, "the jitter is seeded once");
    // Waits are random within a cap that doubles per attempt from 1 ms to
    // 16 ms; each wait is followed by two attempts (the one after it, and
    // an immediate retry from the current record its conflict brought).
    for (i, w) in waits.iter().enumerate() {
        let cap = Duration::from_millis(1 << (2 * i).min(4));
        assert!(*w < cap, "wait {i} was {w:?}, over its cap {cap:?}");
    }
    assert!(
        waits.windows(2).any(|w| w[0] != w[1]),
        "jittered: {waits:?}"
    );
}

/// A save of `mine` whose first two attempts met another writer's record:
/// seeded, it now waits; with the time it wakes at.
fn backing_off() -> (Save, Instant) {
    let mut s = loaded(REC);
    s.insert("mine", 1).unwrap();
    let mut m = Save::new(config(), s, at(0));
    for i in 0..2 {
        let id = req(&mut m).id();
        let theirs = format!(r#"{{"cookie":{{}},"other":{i}}}"#);
        m.handle_reply(id, Reply::Conflict(Bytes::from(theirs.into_bytes())), t(0));
    }
    let Request::Random { id, .. } = req(&mut m) else {
        panic!("random bytes for the jitter")
    };
    m.handle_reply(id, random(3), t(0));
    let wake = m.poll_timeout().unwrap();
    (m, wake)
}

#[test]
fn a_backoff_stays_a_backoff_the_deadline_of_a_request_does_not_move() {
    let (mut m, wake) = backing_off();
    assert!(wake < t(0) + Duration::from_millis(2));
    // Woken early: nothing happens yet.
    m.handle_timeout(t(0));
    assert_eq!(m.poll_request(), None);
    assert!(m.poll_outcome().is_none());
    m.handle_timeout(wake);
    let Request::CompareAndSet { id, .. } = req(&mut m) else {
        panic!("the retry after the wait")
    };
    // That request has its own store deadline.
    assert_eq!(m.poll_timeout(), Some(wake + DEADLINE));
    m.handle_reply(id, Reply::Swapped, wake);
    assert!(m.poll_outcome().unwrap().is_ok());
}

#[test]
fn r25_a_conflict_after_a_backoff_is_retried_at_once_from_the_record_it_brought() {
    // A writer on another server saving without pause wins every attempt
    // made from older knowledge; the attempt after a wait is such an
    // attempt, so its conflict is retried at once, from the current record.
    let (mut m, wake) = backing_off();
    m.handle_timeout(wake);
    let Request::CompareAndSet { id, .. } = req(&mut m) else {
        panic!("the attempt after the wait")
    };
    let theirs = r#"{"cookie":{},"other":"fresh"}"#;
    m.handle_reply(
        id,
        Reply::Conflict(Bytes::from(theirs.as_bytes().to_vec())),
        wake,
    );
    // No wait: the retry is already out, built on the record it brought.
    let Request::CompareAndSet {
        id, expected, new, ..
    } = req(&mut m)
    else {
        panic!("an immediate retry")
    };
    assert_eq!(&expected.0[..], theirs.as_bytes());
    let new: serde_json::Value = serde_json::from_slice(&new.0).unwrap();
    assert_eq!(new["other"], "fresh");
    assert_eq!(new["mine"], 1);
    // Its conflict, in turn, waits again.
    let again = r#"{"cookie":{},"other":"again"}"#;
    m.handle_reply(
        id,
        Reply::Conflict(Bytes::from(again.as_bytes().to_vec())),
        wake,
    );
    assert_eq!(m.poll_request(), None, "a backoff, not another attempt");
    assert!(
        m.poll_timeout()
            .is_some_and(|w| w > wake && w < wake + DEADLINE)
    );
    assert!(m.poll_outcome().is_none());
}
