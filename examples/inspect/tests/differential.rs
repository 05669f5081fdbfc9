//! Differential test against the real thing: thousands of generated Cookie
//! headers resolved by the core and by express-session 1.19.0 itself
//! (`benches/node/resolve.js`, which runs the pinned cookie 0.7.2 and
//! cookie-signature 1.0.7 and cross-checks the real middleware). Every
//! verdict (ok, sid, reason) must agree.
//!
//! Needs Node and `npm ci` in `benches/node` (`.ci/run` does both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use session_sockets_core::Config;
use session_sockets_core::codec::cookie::Limits;
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::codec::signature::sign_cookie;

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SECRETS: [&str; 3] = ["keyboard cat", "new secret 2024", "ünïcødé secret"];
const NAMES: [&str; 3] = ["connect.sid", "sid", "connect.sid.x"];

/// Percent-encodes like encodeURIComponent (what browsers send back).
fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value for the session cookie: valid, mutated, or junk.
fn value(rng: &mut Rng) -> Vec<u8> {
    let sids = [
        "Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v",
        "a",
        "café-ü",
        "x.y",
        "",
        "sp ace",
        "q\"uo",
    ];
    let sid = *rng.pick(&sids);
    let secret = *rng.pick(&SECRETS);
    let signed = sign_cookie(sid, secret);
    let mut v: Vec<u8> = match rng.below(4) {
        0 => signed.into_bytes(),
        1 | 2 => encode_uri_component(&signed).into_bytes(),
        _ => junk(rng, 12),
    };
    match rng.below(8) {
        0 if !v.is_empty() => {
            let i = rng.below(v.len());
            v[i] ^= 1 << rng.below(8);
        }
        1 if !v.is_empty() => v.truncate(rng.below(v.len())),
        2 => v.extend(junk(rng, 4)),
        3 => {
            v.insert(0, b'"');
            v.push(b'"');
        }
        4 => {
            let i = rng.below(v.len() + 1);
            const BITS: [&[u8]; 8] = [b"%", b"%2", b"%ZZ", b"%C3", b"%C3%A9", b"\xe9", b" ", b"\t"];
            let bits = *rng.pick(&BITS);
            v.splice(i..i, bits.iter().copied());
        }
        _ => {}
    }
    v
}

fn junk(rng: &mut Rng, max: usize) -> Vec<u8> {
    let alphabet: &[u8] = b"ab=;; \t\"%2A%3a.s:+/-_\x80\xc3\xa9\xff,";
    (0..rng.below(max + 1))
        .map(|_| *rng.pick(alphabet))
        .collect()
}

fn line(rng: &mut Rng, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rng.below(5) + 1 {
        if i > 0 {
            const SEPS: [&[u8]; 5] = [b"; ", b";", b" ; ", b";\t", b";;"];
            out.extend_from_slice(rng.pick::<&[u8]>(&SEPS));
        }
        match rng.below(6) {
            0 | 1 => {
                const LEAD: [&[u8]; 3] = [b"", b" ", b"\t"];
                const EQ: [&[u8]; 4] = [b"=", b" =", b"= ", b"\t=\t"];
                out.extend_from_slice(rng.pick::<&[u8]>(&LEAD));
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(rng.pick::<&[u8]>(&EQ));
                out.extend(value(rng));
            }
            2 => out.extend(junk(rng, 10)),
            3 => {
                const OTHER: [&[u8]; 4] = [b"other=x", b"connect.sid", b"CONNECT.SID=s%3Aa", b"=v"];
                out.extend_from_slice(rng.pick::<&[u8]>(&OTHER));
            }
            _ => {
                out.extend_from_slice(b"pref=");
                out.extend(junk(rng, 8));
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn r17_r18_r19_r20_core_agrees_with_express_session_on_generated_headers() {
    let node_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/node");
    assert!(
        std::path::Path::new(node_dir)
            .join("node_modules/express-session")
            .is_dir(),
        "run `npm ci` in benches/node first (.ci/run does)"
    );
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut cases = Vec::new();
    for _ in 0..4000 {
        let name = *rng.pick(&NAMES);
        let secrets: Vec<&str> = match rng.below(3) {
            0 => vec![SECRETS[0]],
            1 => vec![SECRETS[1], SECRETS[0]],
            _ => vec![SECRETS[2], SECRETS[1]],
        };
        let lines: Vec<Vec<u8>> = (0..rng.below(3) + usize::from(rng.below(8) > 0))
            .map(|_| line(&mut rng, name))
            .collect();
        cases.push((name, secrets, lines));
    }
    let mut input = Vec::new();
    for (name, secrets, lines) in &cases {
        let hexes: Vec<String> = lines.iter().map(|l| hex(l)).collect();
        let case = json!({"name": name, "secrets": secrets, "lines_hex": hexes});
        writeln!(input, "{case}").unwrap();
    }
    let mut child = Command::new("node")
        .arg("resolve.js")
        .arg("--batch")
        .current_dir(node_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js 20)");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "resolve.js failed");
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    let (mut ok, mut signed_ok) = (0, 0);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for ((name, secrets, lines), want) in cases.iter().zip(&verdicts) {
        let config = Config::builder()
            .cookie_name(*name)
            .secrets(secrets)
            .limits(Limits {
                max_header_bytes: usize::MAX,
                max_pairs: usize::MAX,
            })
            .build()
            .unwrap();
        let got = match resolve_cookie(&config, lines.iter().map(Vec::as_slice)) {
            Ok(sid) => {
                json!({"ok": true, "sid": String::from_utf8(sid.expose().to_vec()).unwrap(), "reason": "ok"})
            }
            Err(e) => json!({"ok": false, "sid": null, "reason": e.reason()}),
        };
        let want = json!({"ok": want["ok"], "sid": want["sid"], "reason": want["reason"]});
        let shown: Vec<String> = lines.iter().map(|l| l.escape_ascii().to_string()).collect();
        assert_eq!(got, want, "name {name} secrets {secrets:?} lines {shown:?}");
        *reasons
            .entry(got["reason"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
        if got["ok"] == true {
            ok += 1;
            signed_ok += usize::from(!lines.is_empty());
        }
    }
    // The generator must exercise both verdicts, not only failures.
    assert!(
        ok > 200 && signed_ok > 200,
        "only {ok} valid cases generated"
    );
    eprintln!("verdicts: {reasons:?}");
    assert!(
        reasons.len() >= 6,
        "every verdict kind is exercised: {reasons:?}"
    );
}
