//! `verify`: cookie-signature `sign` / `unsign` for arbitrary ids and
//! secrets.
//!
//! Input: three control bytes, then `sid \0 secret \0 secret ...` (at most
//! four non-empty secrets are used; none means `keyboard cat`).
//!
//! Properties (R1, R2, R21):
//! - `unsign(sign(sid))` returns `sid` for every secret in the list
//!   (rotation: the first signs, any verifies), and the `&str` `sign` agrees
//!   with the pre-keyed `Key::sign`;
//! - a flipped byte anywhere, `garbage` or `garbage.` prepended, a
//!   non-canonical last base64 character (padding bits set), base64url
//!   characters, and appended bytes without a `.` are rejected;
//! - a truncation or an append that contains a `.` never yields `sid`; it
//!   can only verify when the shortened or extended string is itself a
//!   canonical signature of another value (the sid may contain one);
//! - arbitrary input never panics, and whatever `unsign` accepts is exactly
//!   `value + "." + signature` for one of the keys (the whole string is
//!   compared, length included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_sockets_core::codec::signature::{Key, sign, unsign};

/// Whether `input` is byte for byte some key's signature of `value`.
fn canonical(input: &[u8], value: &[u8], keys: &[Key]) -> bool {
    keys.iter().any(|k| k.sign(value) == input)
}

/// Checks the accepted-implies-canonical property and returns the verdict.
fn check<'a>(input: &'a [u8], keys: &[Key]) -> Option<&'a [u8]> {
    let got = unsign(input, keys);
    if let Some(v) = got {
        assert!(
            canonical(input, v, keys),
            "accepted a non-canonical signature"
        );
    }
    got
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fuzz_target!(|data: &[u8]| {
    let [c0, c1, c2, rest @ ..] = data else {
        return;
    };
    // Arbitrary input against the default key first.
    let default = [Key::new(b"keyboard cat")];
    check(rest, &default);

    let mut parts = rest.split(|&b| b == 0);
    let sid = parts.next().unwrap_or_default();
    let secrets: Vec<&[u8]> = parts.filter(|s| !s.is_empty()).take(4).collect();
    let secrets = if secrets.is_empty() {
        vec![&b"keyboard cat"[..]]
    } else {
        secrets
    };
    let keys: Vec<Key> = secrets.iter().map(|s| Key::new(s)).collect();
    check(sid, &keys);

    for (key, secret) in keys.iter().zip(&secrets) {
        let signed = key.sign(sid);
        assert_eq!(unsign(&signed, &keys), Some(sid), "sign/unsign round trip");
        if let (Ok(s), Ok(k)) = (std::str::from_utf8(sid), std::str::from_utf8(secret)) {
            assert_eq!(sign(s, k).as_bytes(), &signed[..]);
        }
    }

    let signed = keys[0].sign(sid);
    let n = signed.len();
    let pos = usize::from(u16::from_le_bytes([*c0, *c1])) % n;

    // A flipped byte.
    let mut m = signed.clone();
    m[pos] ^= (*c2).max(1);
    assert_eq!(check(&m, &keys), None, "flipped byte {pos} verified");

    // Prepended garbage.
    for pre in [&b"garbage"[..], b"garbage."] {
        let mut m = pre.to_vec();
        m.extend_from_slice(&signed);
        assert_eq!(check(&m, &keys), None, "prepended bytes verified");
    }

    // Truncation.
    let t = &signed[..pos];
    let got = check(t, &keys);
    assert_ne!(got, Some(sid), "a truncation verified as the sid");
    if !sid.contains(&b'.') {
        assert_eq!(got, None, "truncation to {pos} verified");
    }

    // Appended bytes: the tail of the input after the sid, cut short.
    let tail_len = usize::from(*c2 % 8) + 1;
    let mut tail: Vec<u8> = rest.iter().rev().take(tail_len).copied().collect();
    if tail.is_empty() {
        tail.push(b'x');
    }
    for app in [&b"="[..], b"==", b"garbage", b".garbage", &tail] {
        let mut m = signed.clone();
        m.extend_from_slice(app);
        let got = check(&m, &keys);
        assert_ne!(got, Some(sid), "appended bytes verified as the sid");
        if !app.contains(&b'.') {
            assert_eq!(got, None, "appended bytes verified");
        }
    }

    // Non-canonical base64: the last character carries two padding bits.
    let last = signed[n - 1];
    let v = B64
        .iter()
        .position(|&c| c == last)
        .unwrap_or_else(|| panic!("signature is base64"));
    for pad in 1..4 {
        let mut m = signed.clone();
        m[n - 1] = B64[(v & !3) | pad];
        assert_eq!(check(&m, &keys), None, "non-canonical base64 verified");
    }
    // base64url instead of the standard alphabet.
    let sig_start = n - 43;
    if signed[sig_start..].iter().any(|&b| b == b'+' || b == b'/') {
        let mut m = signed.clone();
        for b in &mut m[sig_start..] {
            *b = match *b {
                b'+' => b'-',
                b'/' => b'_',
                x => x,
            };
        }
        assert_eq!(check(&m, &keys), None, "base64url signature verified");
    }
});
