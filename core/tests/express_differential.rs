//! Differential test against the real express-session 1.19.0 (npm `cookie`
//! 0.7.2, `cookie-signature` 1.0.7) on Node: for generated stored cookies,
//! the `Set-Cookie` header (or the refusal) must be the one express-session
//! writes when it re-sends a loaded session's cookie; for generated cookie
//! options, the new session's record must be the one it stores.
//!
//! Needs `node` and the pinned packages in `benches/node` (`npm ci` there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value, json};
use session_sockets_core::codec::record;
use session_sockets_core::codec::set_cookie::cookie_header;
use session_sockets_core::time::{from_millis, to_iso};
use session_sockets_core::{Config, ConfigError, CookieOptions, SameSite, SessionId};
use support::{SECRET, config_with};

/// Runs each case through express-session in one Node process.
const SCRIPT: &str = r#"
const Cookie = require('express-session/session/cookie');
const signature = require('cookie-signature');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const { secret, headers, options } = JSON.parse(input);
  const out = { headers: [], records: [] };
  for (const { name, sid, cookie } of headers) {
    // As Store#createSession rebuilds a loaded session's cookie.
    const expires = cookie.expires;
    const originalMaxAge = cookie.originalMaxAge;
    const c = new Cookie(cookie);
    if (typeof expires === 'string') c.expires = new Date(expires);
    c.originalMaxAge = originalMaxAge;
    try {
      out.headers.push(c.serialize(name, 's:' + signature.sign(sid, secret)));
    } catch (e) {
      out.headers.push(null);
    }
  }
  const realNow = Date.now;
  for (const { now, cookie } of options) {
    Date.now = () => now;
    // As a new session: `req.session.cookie = new Cookie(cookieOptions)`.
    out.records.push(JSON.stringify({ cookie: new Cookie(cookie) }));
  }
  Date.now = realNow;
  process.stdout.write(JSON.stringify(out));
});
"#;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// Leaves the field out, or sets one of `values`.
fn maybe(rng: &mut Rng, cookie: &mut Map<String, Value>, field: &str, values: &[Value]) {
    let i = rng.below(values.len() + 1);
    if let Some(v) = values.get(i) {
        cookie.insert(field.into(), v.clone());
    }
}

/// Like [`maybe`], with a value npm `cookie` refuses one time in 16.
fn maybe_bad(
    rng: &mut Rng,
    cookie: &mut Map<String, Value>,
    field: &str,
    good: &[Value],
    bad: &[Value],
) {
    if rng.below(16) == 0 {
        cookie.insert(field.into(), rng.pick(bad));
    } else {
        maybe(rng, cookie, field, good);
    }
}

fn stored_cookie(rng: &mut Rng) -> Map<String, Value> {
    let mut c = Map::new();
    let max_age = rng.pick(&[Value::Null, json!(3_600_000), json!(1000)]);
    c.insert("originalMaxAge".into(), max_age);
    // 1970..2200, with milliseconds.
    let expires_ms = (rng.next() % 7_258_118_400_000) as i64;
    let expires = rng.pick(&[Value::Null, Value::String(to_iso(expires_ms))]);
    c.insert("expires".into(), expires);
    let any_bool = [
        json!(true),
        json!(false),
        json!(1),
        json!(0),
        json!("yes"),
        json!(""),
    ];
    maybe(rng, &mut c, "secure", &any_bool);
    maybe(rng, &mut c, "httpOnly", &any_bool);
    maybe(rng, &mut c, "partitioned", &any_bool);
    maybe_bad(
        rng,
        &mut c,
        "domain",
        &[
            json!("example.com"),
            json!(".Example.COM"),
            json!("a-b.c0.io"),
            json!("127.0.0.1"),
            json!(""),
        ],
        &[
            json!("a..b"),
            json!("-a.com"),
            json!("a-.com"),
            json!("bad domain"),
            json!("a.com;Secure"),
            json!("é.com"),
            json!("a.com."),
        ],
    );
    maybe_bad(
        rng,
        &mut c,
        "path",
        &[
            json!("/"),
            json!("/app"),
            json!("/a b=c:d"),
            json!(""),
            json!(null),
        ],
        &[
            json!("/a;b"),
            json!("/a<b"),
            json!("/é"),
            json!("/\u{7f}"),
            json!("/\t"),
        ],
    );
    maybe_bad(
        rng,
        &mut c,
        "sameSite",
        &[
            json!(true),
            json!(false),
            json!("lax"),
            json!("Strict"),
            json!("NONE"),
            json!(""),
        ],
        &[json!("bogus"), json!(1)],
    );
    maybe_bad(
        rng,
        &mut c,
        "priority",
        &[json!("low"), json!("Medium"), json!("HIGH"), json!("")],
        &[json!("urgent"), json!(true)],
    );
    c
}

fn options(rng: &mut Rng) -> CookieOptions {
    CookieOptions {
        max_age: rng.pick(&[
            None,
            Some(Duration::from_millis(1)),
            Some(Duration::from_millis(600_000)),
            Some(Duration::from_secs(86_400 * 30)),
        ]),
        secure: rng.pick(&[true, false]),
        http_only: rng.pick(&[true, false]),
        path: rng.pick(&["/", "/app", "", "/a b"]).into(),
        domain: rng
            .pick(&[None, Some("example.com"), Some(".a-b.io")])
            .map(Into::into),
        same_site: rng.pick(&[
            None,
            Some(SameSite::Lax),
            Some(SameSite::Strict),
            Some(SameSite::None),
        ]),
    }
}

/// The express-session `cookie` option equivalent to `o`.
fn express_options(o: &CookieOptions) -> Value {
    let mut m = Map::new();
    if let Some(d) = o.max_age {
        m.insert("maxAge".into(), json!(d.as_millis() as u64));
    }
    if o.secure {
        m.insert("secure".into(), json!(true));
    }
    if !o.http_only {
        m.insert("httpOnly".into(), json!(false));
    }
    m.insert("path".into(), json!(o.path));
    if let Some(d) = &o.domain {
        m.insert("domain".into(), json!(d));
    }
    if let Some(s) = o.same_site {
        m.insert("sameSite".into(), json!(s.as_str()));
    }
    Value::Object(m)
}

fn node(input: &Value) -> Value {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/node/node_modules");
    assert!(
        std::path::Path::new(modules)
            .join("express-session")
            .is_dir(),
        "the Node reference packages are missing: run `npm ci` in benches/node"
    );
    let mut child = Command::new("node")
        .arg("-e")
        .arg(SCRIPT)
        .env("NODE_PATH", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is installed (the express-session reference runs on it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn r3_r14_set_cookie_and_new_records_match_express_session() {
    let mut rng = Rng(0x5e55_1015_0c4e_7500);
    let names = ["connect.sid", "sid", "__Host-s"];
    let sids = [
        "m28KoPY11M1rPExrCumgO8a8ppAJohgr",
        "ffrIFmFpKeIu9g6UHMHCyNLjT1w0q_2H",
        "sid é+/%;=",
        "a.b.c",
    ];
    let mut header_cases = Vec::new();
    for _ in 0..400 {
        header_cases.push(json!({
            "name": rng.pick(&names),
            "sid": rng.pick(&sids),
            "cookie": stored_cookie(&mut rng),
        }));
    }
    let mut option_cases = Vec::new();
    let mut opts = Vec::new();
    for _ in 0..100 {
        let o = options(&mut rng);
        let now = 1_700_000_000_000 + (rng.next() % 100_000_000_000) as i64;
        option_cases.push(json!({ "now": now, "cookie": express_options(&o) }));
        opts.push((o, now));
    }
    let express = node(&json!({
        "secret": SECRET,
        "headers": header_cases,
        "options": option_cases,
    }));

    let (mut written, mut refused) = (0, 0);
    for (case, want) in header_cases
        .iter()
        .zip(express["headers"].as_array().unwrap())
    {
        let config = config_with(|b| b.cookie_name(case["name"].as_str().unwrap()));
        let stored = json!({ "cookie": case["cookie"] }).to_string();
        let rec = record::decode(stored.as_bytes()).unwrap();
        let sid = SessionId::new(case["sid"].as_str().unwrap());
        let ours = cookie_header(&config, &sid, &rec.cookie);
        match (want.as_str(), ours) {
            (Some(w), Ok(o)) => {
                assert_eq!(o, w, "{case}");
                written += 1;
            }
            // Refusing is the only way a header can fail.
            (None, Err(_)) => refused += 1,
            (w, o) => panic!("{case}: express {w:?}, ours {o:?}"),
        }
    }
    assert!(written > 200 && refused > 40, "{written} {refused}");
    println!("express-session agrees on {written} written and {refused} refused headers");

    let mut unusable = 0;
    for ((o, now), want) in opts.iter().zip(express["records"].as_array().unwrap()) {
        let config = match Config::builder().secret(SECRET).cookie(o.clone()).build() {
            Ok(config) => config,
            // Express writes such a cookie; browsers drop it (R14).
            Err(ConfigError::SameSiteNoneWithoutSecure)
                if o.same_site == Some(SameSite::None) && !o.secure =>
            {
                unusable += 1;
                continue;
            }
            Err(e) => panic!("{o:?}: {e}"),
        };
        let cookie = config.cookie().to_session_cookie(from_millis(*now));
        let ours = String::from_utf8(record::encode(&cookie, &Map::new())).unwrap();
        assert_eq!(ours, want.as_str().unwrap(), "{o:?}");
    }
    assert!(unusable > 0 && unusable < 30, "{unusable}");
}
