//! Cookie signatures exactly as npm `cookie-signature` 1.0.7 makes them, and
//! as express-session wraps them (`s:` prefix).
//!
//! `sign(value)` is `value + "." + base64(HMAC-SHA256(secret, value))` with
//! the standard alphabet and the `=` padding removed. Verification splits at
//! the last `.`, recomputes the canonical string and compares it whole, in
//! constant time, length included (R1), so base64url, padded or extended
//! signatures never verify.

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Length of an unpadded base64 HMAC-SHA256: 32 bytes -> 43 characters.
const SIG_LEN: usize = 43;

/// The `s:` prefix express-session puts before a signed value.
pub const SIGNED_PREFIX: &[u8] = b"s:";

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// One SHA-256 compression of a 64-byte block (SHA-NI when the CPU has it,
/// detected at run time).
#[inline]
fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// The big-endian bytes of a SHA-256 state: the digest.
#[inline]
fn digest_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 without padding of a 32-byte MAC: exactly 43 characters.
#[inline]
fn base64_43(tag: &[u8; 32]) -> [u8; SIG_LEN] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = [0u8; SIG_LEN];
    // 10 groups of 3 bytes -> 40 characters, then 2 bytes -> 3 characters.
    for (src, dst) in tag.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let n = u32::from(src[0]) << 16 | u32::from(src[1]) << 8 | u32::from(src[2]);
        for (i, d) in dst.iter_mut().enumerate() {
            *d = ALPHABET[(n >> (18 - 6 * i) & 63) as usize];
        }
    }
    let n = u32::from(tag[30]) << 16 | u32::from(tag[31]) << 8;
    out[40] = ALPHABET[(n >> 18 & 63) as usize];
    out[41] = ALPHABET[(n >> 12 & 63) as usize];
    out[42] = ALPHABET[(n >> 6 & 63) as usize];
    out
}

/// One secret, keyed once: the SHA-256 states after the HMAC inner and
/// outer key blocks (RFC 2104), so a signature costs two compressions for
/// values up to 55 bytes and no copy of any buffer. `Debug` never prints it.
#[derive(Clone)]
pub struct Key {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Key {
    /// Keys HMAC-SHA256 with `secret` (any length; express uses the UTF-8
    /// bytes of its secret string).
    pub fn new(secret: &[u8]) -> Self {
        // RFC 2104: a key longer than the block is hashed first; shorter
        // keys are zero-padded to the block.
        let mut k = [0u8; 64];
        if secret.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            k[..secret.len()].copy_from_slice(secret);
        }
        let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
        for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(k) {
            *i ^= k;
            *o ^= k;
        }
        let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
        compress(&mut inner, &ipad);
        compress(&mut outer, &opad);
        Key { inner, outer }
    }

    /// HMAC-SHA256 of `value`.
    #[inline]
    fn mac(&self, value: &[u8]) -> [u8; 32] {
        let mut state = self.inner;
        let mut blocks = value.chunks_exact(64);
        for block in &mut blocks {
            // `chunks_exact(64)` yields 64-byte slices only.
            if let Ok(block) = block.try_into() {
                compress(&mut state, block);
            }
        }
        let rest = blocks.remainder();
        let mut last = [0u8; 64];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 0x80;
        if rest.len() >= 56 {
            compress(&mut state, &last);
            last = [0u8; 64];
        }
        // Message length in bits, the key block included.
        let bits = (value.len() as u64).wrapping_add(64).wrapping_mul(8);
        last[56..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &last);

        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&digest_bytes(&state));
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut outer = self.outer;
        compress(&mut outer, &block);
        digest_bytes(&outer)
    }

    /// The unpadded standard base64 signature of `value`, on the stack.
    #[inline]
    fn signature(&self, value: &[u8]) -> [u8; SIG_LEN] {
        base64_43(&self.mac(value))
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
/// use session_sockets_core::signature::sign;
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
/// (express-session's secret rotation, R21). `input` is the value after the
/// `s:` prefix. Returns the signed value, or `None` if no key verifies.
///
/// ```
/// use session_sockets_core::signature::{Key, unsign};
/// let keys = [Key::new(b"old"), Key::new(b"tobiiscool")];
/// let input = b"hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";
/// assert_eq!(unsign(input, &keys), Some(&b"hello"[..]));
/// assert_eq!(unsign(b"hello.DGDU", &keys), None);
/// ```
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
    fn mac_matches_the_hmac_and_base64_crates_for_every_length() {
        use base64::Engine as _;
        use hmac::Mac as _;
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for key_len in [0, 1, 12, 55, 56, 63, 64, 65, 100, 200] {
            let key = Key::new(&bytes[..key_len]);
            for len in (0..=200).chain([255, 256, 299]) {
                let value = &bytes[..len];
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&bytes[..key_len]).unwrap();
                mac.update(value);
                let want = mac.finalize().into_bytes();
                assert_eq!(key.mac(value)[..], want[..], "key {key_len}, value {len}");
                let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(want);
                assert_eq!(&key.signature(value)[..], b64.as_bytes());
            }
        }
    }

    #[test]
    fn r16_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", Key::new(b"tobiiscool")), "Key(<redacted>)");
    }
}
