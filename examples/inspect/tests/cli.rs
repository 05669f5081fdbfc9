//! `inspect` end to end: every express-session vector through the binary,
//! plus the interface's usage errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inspect"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("inspect runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("inspect exits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_express_session_vector_through_the_binary() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/express-session-cookies.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in v["vectors"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mut args = vec!["--name", case["cookie_name"].as_str().unwrap()];
        for s in case["secrets"].as_array().unwrap() {
            args.extend(["--secret", s.as_str().unwrap()]);
        }
        let mut stdin = Vec::new();
        for h in case["cookie_headers_wire_hex"].as_array().unwrap() {
            stdin.extend(unhex(h.as_str().unwrap()));
            stdin.push(b'\n');
        }
        let (code, out, _) = run(&args, &stdin);
        assert_eq!(code, 0, "{id}");
        assert_eq!(out.lines().count(), 1, "{id}: exactly one line");
        let got: Value = serde_json::from_str(&out).unwrap();
        let want = &case["expected"];
        assert_eq!(got["ok"], want["ok"], "{id}");
        assert_eq!(got["sid"], want["sid"], "{id}");
        assert_eq!(got["reason"], want["reason"], "{id}");
        // The keys in the documented order.
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ok", "sid", "reason"], "{id}");
    }
}

#[test]
fn explain_goes_to_stderr_and_usage_errors_exit_2() {
    let (code, out, err) = run(&["--secret", "keyboard cat", "--explain"], b"foo=bar\n");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"ok\":false,\"sid\":null,\"reason\":\"cookie_absent\"}\n"
    );
    assert!(err.contains("cookie_absent"), "{err}");
    assert!(err.contains("connect.sid"), "{err}");

    let (code, out, err) = run(
        &["--secret", "wrong", "--explain"],
        b"connect.sid=s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU\n",
    );
    assert_eq!(code, 0);
    assert!(out.contains("signature_invalid"));
    assert!(err.contains("is the secret the same"), "{err}");

    for args in [
        &[][..],
        &["--secret"][..],
        &["--bogus", "--secret", "s"][..],
        &["--secret", ""][..],
    ] {
        let (code, out, err) = run(args, b"");
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        assert!(
            err.contains("usage") || err.contains("secret"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn accept_unsigned_and_no_header() {
    let (_, out, _) = run(&["--secret", "s"], b"");
    assert_eq!(
        out,
        "{\"ok\":false,\"sid\":null,\"reason\":\"no_cookie_header\"}\n"
    );
    let (_, out, _) = run(
        &["--secret", "s", "--accept-unsigned"],
        b"connect.sid=abc\n",
    );
    assert_eq!(out, "{\"ok\":true,\"sid\":\"abc\",\"reason\":\"ok\"}\n");
    let (_, out, _) = run(
        &["--secret", "s", "--name", "sid"],
        b"connect.sid=abc; sid=\n",
    );
    assert_eq!(
        out,
        "{\"ok\":false,\"sid\":null,\"reason\":\"empty_value\"}\n"
    );
}

/// The standard base64 of the key bytes 0x00..0x3f.
const KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

#[test]
fn r36_tower_sessions_and_actix_session_cookies_of_the_real_crates() {
    let ok = |sid: &str| format!("{{\"ok\":true,\"sid\":\"{sid}\",\"reason\":\"ok\"}}\n");
    let cases: [(&[&str], &[u8], String); 6] = [
        (
            &["--format", "tower-sessions"],
            b"id=vNPPFgK-j7a-idNRnFp0KQ\n",
            ok("vNPPFgK-j7a-idNRnFp0KQ"),
        ),
        (
            &["--format", "tower-sessions", "--mode", "signed", "--key", KEY],
            b"id=+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ\n",
            ok("vNPPFgK-j7a-idNRnFp0KQ"),
        ),
        (
            &["--format", "tower-sessions", "--mode", "private", "--key", KEY],
            b"id=P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=\n",
            ok("Ufp3NWpswET9tC9C-z8isg"),
        ),
        (
            &["--format", "actix-session", "--key", KEY],
            b"id=lno7UzUHWDVtzcNkpv6lxcOzZoniQOaDgqqQs1TY2bju68mGuafIVscCbpUmpV%2F9uCtGZc9TAmZ%2FmrlWw1yoBGlFmg2T5cO2KH7NluZnwFdKiIlMi9ic1j7QTd0%3D\n",
            ok("rHrHQJDJ5W9F0l0d0GjgT1whBFGetSPXeQ4CFDgEzpBQkFk8DOup06PXuYAODMZ7"),
        ),
        (
            &["--format", "actix-session", "--mode", "signed", "--key", KEY],
            b"id=qQknImLIPUeHFJX1PSBOlJjRODoQ7jmcd1yn9%2FfF2g0%3Dn2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n\n",
            ok("n2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n"),
        ),
        // Sealed for `id`, read as `sid`: a private value is bound to its name.
        (
            &["--format", "tower-sessions", "--mode", "private", "--key", KEY, "--name", "sid"],
            b"sid=P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=\n",
            "{\"ok\":false,\"sid\":null,\"reason\":\"seal_invalid\"}\n".into(),
        ),
    ];
    for (args, stdin, want) in cases {
        let (code, out, err) = run(args, stdin);
        assert_eq!((code, out.as_str()), (0, want.as_str()), "{args:?}: {err}");
    }
    let (_, out, err) = run(
        &[
            "--format",
            "tower-sessions",
            "--mode",
            "signed",
            "--key",
            KEY,
            "--explain",
        ],
        b"id=vNPPFgK-j7a-idNRnFp0KQ\n",
    );
    assert!(out.contains("not_signed"), "{out}");
    assert!(
        err.contains("tower-sessions cookie `id`, signed with 1 key(s)"),
        "{err}"
    );
    assert!(!err.contains(KEY), "the key is never printed");
    // Mistakes are usage errors that say what to pass.
    for (args, says) in [
        (&["--format", "actix-session"][..], "--key"),
        (
            &["--format", "tower-sessions", "--mode", "signed"][..],
            "--key",
        ),
        (
            &["--format", "tower-sessions", "--secret", "s"][..],
            "express-session",
        ),
        (
            &["--format", "actix-session", "--key", "c2hvcnQ="][..],
            "not 64",
        ),
        (&["--secret", "s", "--key", KEY][..], "tower-sessions"),
    ] {
        let (code, _, err) = run(args, b"");
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
