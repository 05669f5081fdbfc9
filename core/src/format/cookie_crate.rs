//! The `cookie` crate's signed and private cookie values, which
//! tower-sessions (cookie 0.18) and actix-session (cookie 0.16) use; the two
//! versions write the same bytes.
//!
//! A [`Key`] is the crate's 64-byte `cookie::Key` (its `master()` bytes):
//! bytes 0..32 sign, bytes 32..64 encrypt.
//!
//! - **Signed**: `base64(HMAC-SHA256(key[0..32], value)) + value`, standard
//!   base64 with padding (44 characters). The MAC covers the value only, not
//!   the cookie name, so a signed value verifies under any name ([R22]).
//! - **Private**: `base64(nonce[12] || AES-256-GCM(key[32..64], value, aad =
//!   cookie name) || tag[16])`, standard base64 with padding. The name is
//!   the associated data: a value sealed for one cookie name never opens
//!   under another ([R36]).
//!
//! [`Keys`] is a list: the first signs and seals, every one verifies and
//! opens, so that keys can rotate ([R36]; neither framework offers that).
//! MACs are compared in constant time as text (the recomputed signature,
//! encoded on the stack, against the cookie's 44 characters, which is
//! exactly what the crate's strict base64 decode and compare accept), and
//! AES-GCM's tag check is constant-time ([R1]). Each key is prepared once
//! (a pre-keyed HMAC state and an AES key schedule). `Debug` never shows a
//! key.
//!
//! ```
//! use session_sockets_core::format::cookie_crate::Keys;
//!
//! let keys = Keys::from_bytes([[7u8; 64]]).unwrap();
//! let signed = keys.sign("hello");
//! assert_eq!(keys.verify(&signed), Ok("hello"));
//! let sealed = keys.seal("id", "hello", [1; 12]).unwrap();
//! assert_eq!(keys.open("id", &sealed).as_deref(), Ok("hello"));
//! assert!(keys.open("other", &sealed).is_err()); // bound to its name
//! ```
//!
//! [R1]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r1
//! [R22]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r22
//! [R36]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r36

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The length of a `cookie::Key`: 32 bytes to sign, then 32 to encrypt.
pub const KEY_LEN: usize = 64;
/// The random nonce a private value starts with.
pub const NONCE_LEN: usize = 12;
/// The AES-GCM tag a private value ends with.
pub const TAG_LEN: usize = 16;
/// The length of a signed value's signature: standard base64 of a 32-byte
/// HMAC-SHA256, with padding.
pub const SIGNATURE_LEN: usize = 44;
/// The longest value [`Keys::seal`] takes: browsers keep at most 4096 bytes
/// per cookie, so nothing longer could come back.
pub const MAX_VALUE_LEN: usize = 4096;

/// `cookie::Key::derive_from`'s HKDF info string.
const DERIVE_INFO: &[u8] = b"COOKIE;SIGNED:HMAC-SHA256;PRIVATE:AEAD-AES-256-GCM";

type HmacSha256 = Hmac<Sha256>;

/// One `cookie::Key`, prepared for use. `Debug` is redacted.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// The key whose `cookie::Key::master()` is `bytes`: exactly
    /// [`KEY_LEN`] bytes, signing half first. (The cookie crate's
    /// `Key::from` takes the first 64 of a longer slice; this refuses
    /// anything but 64, which catches a secret passed where a key belongs.)
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        let (Some(signing), Some(encryption), KEY_LEN) =
            (bytes.get(..32), bytes.get(32..KEY_LEN), bytes.len())
        else {
            return Err(KeyError::WrongLength {
                index: 0,
                len: bytes.len(),
            });
        };
        // Both cannot fail: HMAC takes keys of any length, and the AES-256
        // key is exactly 32 bytes (`bytes.len() == 64` above).
        let mac =
            <HmacSha256 as Mac>::new_from_slice(signing).map_err(|_| KeyError::WrongLength {
                index: 0,
                len: bytes.len(),
            })?;
        let aead = Aes256Gcm::new_from_slice(encryption).map_err(|_| KeyError::WrongLength {
            index: 0,
            len: bytes.len(),
        })?;
        Ok(Key { mac, aead })
    }

    /// The key whose `master()` bytes are `text` in standard base64
    /// (padding optional; surrounding white space, such as the newline of a
    /// key file, ignored): what `--key` flags and environment variables hold.
    pub fn from_base64(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError::BadBase64 { index: 0 })?;
        Key::from_bytes(&bytes)
    }

    /// `cookie::Key::derive_from(master)`: HKDF-SHA256 Expand (the master
    /// used as the pseudo-random key) to 64 bytes, for apps that build their
    /// key that way. The master must be at least 32 bytes, as there.
    pub fn derive_from(master: &[u8]) -> Result<Key, KeyError> {
        if master.len() < 32 {
            return Err(KeyError::MasterTooShort { len: master.len() });
        }
        // HMAC takes keys of any length: this cannot fail.
        let prk = <HmacSha256 as Mac>::new_from_slice(master)
            .map_err(|_| KeyError::MasterTooShort { len: master.len() })?;
        let mut okm = [0u8; KEY_LEN];
        let mut t1 = prk.clone();
        t1.update(DERIVE_INFO);
        t1.update(&[1]);
        let t1 = t1.finalize().into_bytes();
        let mut t2 = prk;
        t2.update(&t1);
        t2.update(DERIVE_INFO);
        t2.update(&[2]);
        let t2 = t2.finalize().into_bytes();
        okm[..32].copy_from_slice(&t1);
        okm[32..].copy_from_slice(&t2);
        Key::from_bytes(&okm)
    }

    /// The signature of `value` (44 characters of standard base64).
    fn signature(&self, value: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.mac.clone();
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; SIGNATURE_LEN];
        // 32 bytes are exactly 44 characters with padding: this cannot fail
        // (and `out` stays zeros, which never match a signature, if it did).
        let _ = STANDARD.encode_slice(digest, &mut out);
        out
    }
}

/// A list of keys: the first signs and seals, every one verifies and opens
/// (rotation). Never empty. `Debug` shows only how many there are.
#[derive(Clone)]
pub struct Keys {
    first: Key,
    rest: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys(<{} redacted>)", self.len())
    }
}

impl Keys {
    /// The keys, in order: the first signs and seals.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<Keys, KeyError> {
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or(KeyError::NoKey)?;
        Ok(Keys {
            first,
            rest: keys.collect(),
        })
    }

    /// Keys from their `master()` bytes, 64 each ([`Key::from_bytes`]).
    pub fn from_bytes<I, B>(keys: I) -> Result<Keys, KeyError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| Key::from_bytes(k.as_ref()).map_err(|e| e.at(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Keys::new(keys)
    }

    /// Keys from the standard base64 of their `master()` bytes
    /// ([`Key::from_base64`]).
    pub fn from_base64<I, S>(keys: I) -> Result<Keys, KeyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| Key::from_base64(k.as_ref()).map_err(|e| e.at(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Keys::new(keys)
    }

    /// How many keys there are (at least one).
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always `false`: a list of keys is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The keys, the one that signs and seals first.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    /// The signed value of `value` with the first key, as the crate's
    /// `SignedJar::add` writes it: signature, then the value.
    pub fn sign(&self, value: &str) -> String {
        let signature = self.first.signature(value.as_bytes());
        let mut out = String::with_capacity(SIGNATURE_LEN + value.len());
        // Standard base64 is ASCII.
        out.extend(signature.iter().copied().map(char::from));
        out.push_str(value);
        out
    }

    /// The value inside `signed` if some key's signature is its first 44
    /// characters, as `SignedJar::verify` checks it.
    pub fn verify<'v>(&self, signed: &'v str) -> Result<&'v str, Rejected> {
        let (Some(signature), Some(value)) =
            (signed.get(..SIGNATURE_LEN), signed.get(SIGNATURE_LEN..))
        else {
            return Err(Rejected::NotSigned);
        };
        let mut ok = subtle::Choice::from(0);
        for key in self.iter() {
            ok |= key
                .signature(value.as_bytes())
                .as_slice()
                .ct_eq(signature.as_bytes());
        }
        if bool::from(ok) {
            return Ok(value);
        }
        // Only now, for the reason: is it a signature at all?
        let mut digest = [0u8; 33];
        match STANDARD.decode_slice(signature, &mut digest) {
            Ok(32) => Err(Rejected::BadSignature),
            _ => Err(Rejected::NotSigned),
        }
    }

    /// The private value of `value` for cookie `name`, sealed with the first
    /// key and `nonce` (12 random bytes the caller draws: the core draws no
    /// randomness; never use a nonce twice with the same key), as
    /// `PrivateJar::add` writes it. Refuses values over [`MAX_VALUE_LEN`].
    pub fn seal(
        &self,
        name: &str,
        value: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, Rejected> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Rejected::TooLong);
        }
        let mut data = Vec::with_capacity(NONCE_LEN + value.len() + TAG_LEN);
        data.extend_from_slice(&nonce);
        data.extend_from_slice(value.as_bytes());
        let (_, body) = data.split_at_mut(NONCE_LEN);
        let tag = self
            .first
            .aead
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), name.as_bytes(), body)
            // Fails only past 64 GiB of plaintext; the bound above holds.
            .map_err(|_| Rejected::TooLong)?;
        data.extend_from_slice(&tag);
        Ok(STANDARD.encode(&data))
    }

    /// The value inside `sealed` if some key opens it for cookie `name`, as
    /// `PrivateJar::decrypt` checks it (strict standard base64, then
    /// AES-256-GCM with the name as associated data, then UTF-8).
    pub fn open(&self, name: &str, sealed: &str) -> Result<String, Rejected> {
        let data = STANDARD.decode(sealed).map_err(|_| Rejected::NotSealed)?;
        // The crate refuses `len <= 12`; anything shorter than nonce + tag
        // fails its tag check as well.
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(Rejected::NotSealed);
        }
        let (nonce, rest) = data.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let (nonce, tag) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
        let mut buf = Vec::with_capacity(body.len());
        for key in self.iter() {
            buf.clear();
            buf.extend_from_slice(body);
            if key
                .aead
                .decrypt_in_place_detached(nonce, name.as_bytes(), &mut buf, tag)
                .is_ok()
            {
                return String::from_utf8(buf).map_err(|_| Rejected::NotUtf8);
            }
        }
        Err(Rejected::BadSeal)
    }
}

/// What can be turned into [`Keys`]: the standard base64 of one 64-byte
/// `cookie::Key` (`&str`, `String`), a list of them (an array or a `Vec`,
/// the first signs and seals, every one verifies and opens: rotation), or
/// keys already built ([`Key`], [`Keys`]). What the formats' settings take,
/// so that one call configures them:
///
/// ```
/// use session_sockets_core::Format;
///
/// let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// let signed = Format::tower_sessions().with_signed(key)?;
/// // Rotation: the new key first, then the one the browsers still carry.
/// let old = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==";
/// let rotating = Format::tower_sessions().with_private([key, old])?;
/// // A secret is not a key: the error says so (never quoting it).
/// let e = Format::actix_session("not a key").unwrap_err();
/// assert!(e.to_string().contains("base64"));
/// # let _ = (signed, rotating);
/// # Ok::<(), session_sockets_core::format::cookie_crate::KeyError>(())
/// ```
pub trait IntoKeys {
    /// The keys, or why they cannot be keys.
    fn into_keys(self) -> Result<Keys, KeyError>;
}

impl IntoKeys for Keys {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Ok(self)
    }
}

impl IntoKeys for Key {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::new([self])
    }
}

impl IntoKeys for &str {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64([self])
    }
}

impl IntoKeys for String {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64([self])
    }
}

impl IntoKeys for &String {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64([self])
    }
}

impl<S: AsRef<str>, const N: usize> IntoKeys for [S; N] {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64(self)
    }
}

impl<S: AsRef<str>> IntoKeys for Vec<S> {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64(self)
    }
}

impl<S: AsRef<str>> IntoKeys for &[S] {
    fn into_keys(self) -> Result<Keys, KeyError> {
        Keys::from_base64(self)
    }
}

/// Why [`Keys::verify`], [`Keys::open`] or [`Keys::seal`] refused a value.
/// Holds nothing of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejected {
    /// Shorter than a signature, or its first 44 characters are not the
    /// standard base64 of 32 bytes.
    NotSigned,
    /// A well-formed signature that no key verifies.
    BadSignature,
    /// Not strict standard base64, or too short for a nonce and a tag.
    NotSealed,
    /// No key opens it: another key, tampered with, or sealed for another
    /// cookie name.
    BadSeal,
    /// A key opens it, but what is inside is not UTF-8 (never the crate's
    /// own output).
    NotUtf8,
    /// Too long to seal ([`MAX_VALUE_LEN`]).
    TooLong,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::NotSigned => {
                "not a signed value (44 characters of base64 HMAC, then the value)"
            }
            Rejected::BadSignature => "no configured key verifies the signature",
            Rejected::NotSealed => "not a private value (base64 of nonce, ciphertext and tag)",
            Rejected::BadSeal => "no configured key opens the value for this cookie name",
            Rejected::NotUtf8 => "the opened value is not UTF-8",
            Rejected::TooLong => "the value is longer than a cookie can be (4096 bytes)",
        })
    }
}

impl std::error::Error for Rejected {}

/// Why keys could not be built. Never holds key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyError {
    /// No key was given.
    NoKey,
    /// Key number `index` (from 0) is `len` bytes, not 64.
    WrongLength {
        /// Which key, from 0.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// Key number `index` is not standard base64.
    BadBase64 {
        /// Which key, from 0.
        index: usize,
    },
    /// A master for [`Key::derive_from`] is shorter than 32 bytes.
    MasterTooShort {
        /// Its length in bytes.
        len: usize,
    },
}

impl KeyError {
    fn at(self, index: usize) -> KeyError {
        match self {
            KeyError::WrongLength { len, .. } => KeyError::WrongLength { index, len },
            KeyError::BadBase64 { .. } => KeyError::BadBase64 { index },
            other => other,
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NoKey => f.write_str(
                "no cookie key configured: pass the 64 bytes of the HTTP app's cookie::Key \
                 (Key::master())",
            ),
            KeyError::WrongLength { index, len } => write!(
                f,
                "cookie key #{index} is {len} bytes, not 64: pass the HTTP app's \
                 cookie::Key::master() (a secret of another length is not such a key; \
                 Key::derive_from takes a master secret)"
            ),
            KeyError::BadBase64 { index } => write!(
                f,
                "cookie key #{index} is not standard base64: pass the base64 of the HTTP app's \
                 64-byte cookie::Key::master()"
            ),
            KeyError::MasterTooShort { len } => write!(
                f,
                "the master secret is {len} bytes; cookie::Key::derive_from needs at least 32"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_bytes() -> Vec<u8> {
        (0u8..64).collect()
    }

    fn keys() -> Keys {
        Keys::from_bytes([key_bytes()]).unwrap()
    }

    // Recorded from the real crates (notes/formats-evidence): key 0x00..0x3f.
    const SIGNED: &str = "+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ";
    const SEALED: &str = "P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=";

    #[test]
    fn r36_signed_and_private_values_of_the_real_crate_verify_and_open() {
        assert_eq!(keys().verify(SIGNED), Ok("vNPPFgK-j7a-idNRnFp0KQ"));
        assert_eq!(keys().sign("vNPPFgK-j7a-idNRnFp0KQ"), SIGNED);
        assert_eq!(
            keys().open("id", SEALED).as_deref(),
            Ok("Ufp3NWpswET9tC9C-z8isg")
        );
    }

    #[test]
    fn r36_a_sealed_value_is_bound_to_its_cookie_name() {
        assert_eq!(keys().open("other", SEALED), Err(Rejected::BadSeal));
        assert_eq!(keys().open("", SEALED), Err(Rejected::BadSeal));
    }

    #[test]
    fn r22_a_signed_value_is_not_bound_to_its_name_so_verify_takes_none() {
        // The format MACs only the value: moving it to another cookie keeps
        // it valid. `verify` takes no name, so nothing pretends otherwise.
        assert!(keys().verify(SIGNED).is_ok());
    }

    #[test]
    fn r01_signature_compare_is_whole_and_tampering_fails() {
        let k = keys();
        for bad in [
            format!("garbage{SIGNED}"),
            format!("garbage.{SIGNED}"),
            format!("{SIGNED}.garbage"),
            format!("{SIGNED}garbage"),
            SIGNED.replacen('+', "-", 1),
            SIGNED.replacen('=', "", 1),
            SIGNED[..43].to_owned(),
            SIGNED[..44].to_owned() + "x",
        ] {
            assert!(k.verify(&bad).is_err(), "{bad}");
        }
        assert_eq!(k.verify(""), Err(Rejected::NotSigned));
        assert_eq!(k.verify(&SIGNED[..43]), Err(Rejected::NotSigned));
        assert_eq!(k.verify(&format!("{SIGNED}x")), Err(Rejected::BadSignature));
        // A non-canonical last symbol is no signature (strict base64).
        let mut noncanon = SIGNED.as_bytes().to_vec();
        noncanon[42] = b'R';
        let noncanon = String::from_utf8(noncanon).unwrap();
        assert!(k.verify(&noncanon).is_err());
    }

    #[test]
    fn r02_multibyte_input_at_any_offset_never_panics() {
        let k = keys();
        for i in 0..60 {
            let s: String = "a".repeat(i) + "é€😀" + &"b".repeat(50);
            let _ = k.verify(&s);
            let _ = k.open("id", &s);
        }
        assert_eq!(k.verify(&"é".repeat(30)), Err(Rejected::NotSigned));
    }

    #[test]
    fn r36_wrong_lengths_bad_base64_and_foreign_keys_are_refused() {
        let k = keys();
        assert_eq!(k.open("id", "not base64!"), Err(Rejected::NotSealed));
        assert_eq!(k.open("id", "AAAA"), Err(Rejected::NotSealed));
        assert_eq!(
            k.open("id", &STANDARD.encode([0u8; 28])),
            Err(Rejected::BadSeal)
        );
        assert_eq!(
            k.open("id", &SEALED[..SEALED.len() - 1]),
            Err(Rejected::NotSealed)
        );
        let foreign = Keys::from_bytes([[9u8; 64]]).unwrap();
        assert_eq!(foreign.verify(SIGNED), Err(Rejected::BadSignature));
        assert_eq!(foreign.open("id", SEALED), Err(Rejected::BadSeal));
        // Every flipped bit of a sealed value is refused.
        let raw = STANDARD.decode(SEALED).unwrap();
        for i in 0..raw.len() * 8 {
            let mut t = raw.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open("id", &STANDARD.encode(&t)), Err(Rejected::BadSeal));
        }
    }

    #[test]
    fn r36_rotation_first_signs_and_seals_all_verify_and_open() {
        let old = Keys::from_bytes([[1u8; 64]]).unwrap();
        let new = Keys::from_bytes([[2u8; 64]]).unwrap();
        let both = Keys::from_bytes([[2u8; 64], [1u8; 64]]).unwrap();
        assert_eq!(both.len(), 2);
        let by_old = old.sign("v");
        let sealed_by_old = old.seal("id", "v", [3; 12]).unwrap();
        assert_eq!(both.verify(&by_old), Ok("v"));
        assert_eq!(both.open("id", &sealed_by_old).as_deref(), Ok("v"));
        assert_eq!(both.sign("v"), new.sign("v"));
        assert_eq!(both.seal("id", "v", [3; 12]), new.seal("id", "v", [3; 12]));
        assert!(new.verify(&by_old).is_err());
    }

    #[test]
    fn seal_round_trips_and_takes_the_nonce_given() {
        let k = keys();
        let a = k.seal("id", "value", [0; 12]).unwrap();
        let b = k.seal("id", "value", [1; 12]).unwrap();
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap()[..12], [0; 12]);
        assert_eq!(k.open("id", &a).as_deref(), Ok("value"));
        assert_eq!(
            k.open("id", &k.seal("id", "", [0; 12]).unwrap()).as_deref(),
            Ok("")
        );
        assert_eq!(
            k.seal("id", &"x".repeat(MAX_VALUE_LEN + 1), [0; 12]),
            Err(Rejected::TooLong)
        );
    }

    #[test]
    fn r36_keys_come_from_64_bytes_or_their_base64_and_say_what_is_wrong() {
        let b64 = STANDARD.encode(key_bytes());
        let from_b64 = Keys::from_base64([format!("{b64}\n")]).unwrap();
        assert_eq!(from_b64.sign("x"), keys().sign("x"));
        let unpadded = STANDARD_NO_PAD.encode(key_bytes());
        assert!(Keys::from_base64([unpadded]).is_ok());
        assert_eq!(
            Keys::from_bytes([vec![0u8; 64], vec![0u8; 32]]).unwrap_err(),
            KeyError::WrongLength { index: 1, len: 32 }
        );
        assert_eq!(
            Keys::from_bytes([vec![0u8; 65]]).unwrap_err(),
            KeyError::WrongLength { index: 0, len: 65 }
        );
        assert_eq!(
            Keys::from_base64(["ok?!"]).unwrap_err(),
            KeyError::BadBase64 { index: 0 }
        );
        assert_eq!(
            Keys::from_bytes(Vec::<Vec<u8>>::new()).unwrap_err(),
            KeyError::NoKey
        );
        assert!(
            KeyError::WrongLength { index: 0, len: 3 }
                .to_string()
                .contains("64")
        );
    }

    #[test]
    fn r16_debug_never_shows_a_key() {
        let k = Keys::from_bytes([[0x41u8; 64], [0x42u8; 64]]).unwrap();
        let d = format!("{k:?} {:?}", k.iter().next());
        assert_eq!(d, "Keys(<2 redacted>) Some(Key(<redacted>))");
    }

    #[test]
    fn derive_from_is_hkdf_expand_of_the_master() {
        assert_eq!(
            Key::derive_from(&[0; 31]).unwrap_err(),
            KeyError::MasterTooShort { len: 31 }
        );
        // The bytes are checked against cookie 0.18's own derive_from in
        // tests/formats; here: deterministic, and not the master itself.
        let a = Keys::new([Key::derive_from(&[0; 32]).unwrap()]).unwrap();
        let b = Keys::new([Key::derive_from(&[0; 32]).unwrap()]).unwrap();
        assert_eq!(a.sign("v"), b.sign("v"));
        assert_ne!(
            a.sign("v"),
            Keys::from_bytes([[0u8; 64]]).unwrap().sign("v")
        );
    }
}
