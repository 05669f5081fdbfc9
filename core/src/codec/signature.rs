//! Cookie signatures exactly as npm `cookie-signature` 1.0.7 makes them, and
//! as express-session wraps them (`s:` prefix).
//!
//! `sign(value)` is `value + "." + base64(HMAC-SHA256(secret, value))` with
//! the standard alphabet and the `=` padding removed. Verification splits at
//! the last `.`, recomputes the canonical string and compares it whole, in
//! constant time, length included ([R1]), so base64url, padded or extended
//! signatures never verify.
//!
//! [R1]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r1

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Length of an unpadded base64 HMAC-SHA256: 32 bytes -> 43 characters.
const SIG_LEN: usize = 43;

/// The `s:` prefix express-session puts before a signed value.
pub const SIGNED_PREFIX: &[u8] = b"s:";

/// One secret, keyed once: the HMAC state after the key block, cloned for
/// each signature (the key is never re-processed). `Debug` never prints it.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl Key {
    /// Keys HMAC-SHA256 with `secret` (any length; express uses the UTF-8
    /// bytes of its secret string).
    pub fn new(secret: &[u8]) -> Self {
        // `new_from_slice` accepts keys of every length for HMAC; the error
        // arm exists only for fixed-key MACs, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        Key { mac }
    }

    /// The unpadded standard base64 signature of `value`, on the stack.
    #[inline]
    fn signature(&self, value: &[u8]) -> [u8; SIG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; SIG_LEN];
        // 32 bytes encode to exactly 43 unpadded characters, so the slice is
        // always big enough and always filled.
        let _ = STANDARD_NO_PAD.encode_slice(tag, &mut out);
        out
    }

    /// cookie-signature's `sign`: `value.signature`.
    pub fn sign(&self, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len() + 1 + SIG_LEN);
        out.extend_from_slice(value);
        out.push(b'.');
        out.extend_from_slice(&self.signature(value));
        out
    }

    /// Whether `signature` is this key's signature of `value`, compared in
    /// constant time, length included.
    ///
    /// Callers pass the two halves of one input split at its last `.`; the
    /// value half is byte-identical to the recomputed string's by
    /// construction, so comparing the signature halves compares the whole
    /// canonical `value.signature` string.
    #[inline]
    pub fn verifies(&self, value: &[u8], signature: &[u8]) -> bool {
        // R1: the length is part of the comparison; it is public (always
        // 43), so a different length returns early. The bytes are compared
        // without branching on them: every difference is OR-ed into one
        // byte, compared once in constant time.
        let expected = self.signature(value);
        if signature.len() != SIG_LEN {
            return false;
        }
        let diff = expected
            .iter()
            .zip(signature)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        bool::from(diff.ct_eq(&0))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// cookie-signature's `sign(value, secret)`: `value.signature`.
///
/// ```
/// use session_sockets_core::codec::signature::sign;
/// assert_eq!(
///     sign("hello", "tobiiscool"),
///     "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
/// );
/// ```
pub fn sign(value: &str, secret: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1 + SIG_LEN);
    out.push_str(value);
    out.push('.');
    let sig = Key::new(secret.as_bytes()).signature(value.as_bytes());
    // Base64 output is ASCII.
    out.extend(sig.iter().map(|&b| char::from(b)));
    out
}

/// express-session's cookie value for `sid`: `s:` + [`sign`]`(sid, secret)`.
/// Browsers receive it percent-encoded (`s%3A...`).
pub fn sign_cookie(sid: &str, secret: &str) -> String {
    let mut out = String::from("s:");
    out.push_str(&sign(sid, secret));
    out
}

/// cookie-signature's `unsign` over several keys, the first match winning
/// (express-session's secret rotation, [R21]). `input` is the value after the
/// `s:` prefix. Returns the signed value, or `None` if no key verifies.
///
/// ```
/// use session_sockets_core::codec::signature::{Key, unsign};
/// let keys = [Key::new(b"old"), Key::new(b"tobiiscool")];
/// let input = b"hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";
/// assert_eq!(unsign(input, &keys), Some(&b"hello"[..]));
/// assert_eq!(unsign(b"hello.DGDU", &keys), None);
/// ```
///
/// [R21]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r21
pub fn unsign<'a>(input: &'a [u8], keys: &[Key]) -> Option<&'a [u8]> {
    // Split at the last `.`; without one, cookie-signature's recomputed
    // string can never equal the input.
    let dot = memchr::memrchr(b'.', input)?;
    let (value, signature) = (&input[..dot], &input[dot + 1..]);
    keys.iter()
        .any(|k| k.verifies(value, signature))
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";

    #[test]
    fn cookie_signature_readme_vector() {
        assert_eq!(sign("hello", "tobiiscool"), V);
        assert_eq!(sign_cookie("hello", "tobiiscool"), format!("s:{V}"));
    }

    #[test]
    fn r01_signature_compare_is_whole_and_length_checked() {
        let keys = [Key::new(b"tobiiscool")];
        assert_eq!(unsign(V.as_bytes(), &keys), Some(&b"hello"[..]));
        for bad in [
            format!("garbage{V}"),
            format!("garbage.{V}"),
            format!("{V}.garbage"),
            format!("{V}garbage"),
            format!("{V}="),
            V.replace('+', "-"),
        ] {
            assert_eq!(unsign(bad.as_bytes(), &keys), None, "{bad}");
        }
    }

    #[test]
    fn r01_every_single_byte_flip_and_truncation_is_rejected() {
        let keys = [Key::new(b"tobiiscool")];
        let v = V.as_bytes();
        for i in 0..v.len() {
            for bit in 0..8 {
                let mut m = v.to_vec();
                m[i] ^= 1 << bit;
                assert_eq!(unsign(&m, &keys), None, "flip {i}:{bit}");
            }
        }
        for n in 0..v.len() {
            assert_eq!(unsign(&v[..n], &keys), None, "truncate {n}");
        }
    }

    #[test]
    fn r21_rotation_signs_with_first_verifies_with_any() {
        let keys = [Key::new(b"new"), Key::new(b"old")];
        let old = sign("sid", "old");
        let new = sign("sid", "new");
        assert_eq!(unsign(old.as_bytes(), &keys), Some(&b"sid"[..]));
        assert_eq!(unsign(new.as_bytes(), &keys), Some(&b"sid"[..]));
        assert_eq!(keys[0].sign(b"sid"), new.as_bytes());
    }

    #[test]
    fn r16_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", Key::new(b"tobiiscool")), "Key(<redacted>)");
    }
}
