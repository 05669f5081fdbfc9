//! Shared inputs for the benchmarks, the zero-allocation test and the
//! `rust_path` timer: the realistic Cookie header of `node/header.txt`
//! (383 bytes, 7 cookies, a browser-encoded `connect.sid` signed with
//! `keyboard cat`), the headers of a socket.io handshake request around it,
//! and a bare pre-keyed HMAC-SHA256 verify of the same id as the floor.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod procs;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use session_sockets_core::{Config, Now};
use sha2::Sha256;

/// The benchmark Cookie header, byte for byte the one the Node reference
/// (`node/express_path_bench.js`) times.
pub const HEADER: &[u8] = include_bytes!("../node/header.txt");

/// The secret the header's `connect.sid` is signed with.
pub const SECRET: &str = "keyboard cat";

/// The session id the header resolves to.
pub const SID: &str = "Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v";

/// The id's signature as it appears in the cookie (standard base64, no
/// padding).
pub const SIGNATURE_B64: &str = "CHTwR3T0Ul1x3nYQMRDJEyvuxBnFCcqSwIbARnurjoI";

/// The signed value after percent-decoding and the `s:` prefix, as
/// `cookie-signature`'s `unsign` receives it.
pub const SIGNED: &[u8] =
    b"Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5v.CHTwR3T0Ul1x3nYQMRDJEyvuxBnFCcqSwIbARnurjoI";

/// A stored express-session record (connect-redis format), 196 bytes.
pub const RECORD: &[u8] = br#"{"cookie":{"originalMaxAge":3600000,"expires":"2100-01-01T00:00:00.000Z","httpOnly":true,"domain":"example.com","path":"/","sameSite":"lax"},"user":{"id":42,"name":"Ada"},"cart":[1,2,3],"views":7}"#;

/// The headers of a socket.io WebSocket handshake request carrying
/// [`HEADER`], in wire order. The `Origin` matches `Host`, so the default
/// same-host origin policy passes.
pub fn request_headers() -> [(&'static [u8], &'static [u8]); 9] {
    [
        (b"host", b"localhost:3000"),
        (
            b"user-agent",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (b"accept", b"*/*"),
        (b"accept-language", b"en-US,en;q=0.5"),
        (b"sec-websocket-version", b"13"),
        (b"origin", b"http://localhost:3000"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"connection", b"keep-alive, Upgrade"),
        (b"cookie", HEADER),
    ]
}

/// The core config the benches use: `keyboard cat`, express-session's
/// defaults otherwise.
pub fn config() -> Arc<Config> {
    // A fixed, valid secret: building cannot fail.
    #[allow(clippy::expect_used)]
    Arc::new(
        Config::builder()
            .secret(SECRET)
            .build()
            .expect("valid bench config"),
    )
}

/// A fixed "now" for the machines: one monotonic instant, read the first
/// time, and a fixed wall time (no clock is read in the timed loops).
pub fn now() -> Now {
    static START: OnceLock<Instant> = OnceLock::new();
    Now::new(
        *START.get_or_init(Instant::now),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_958_067),
    )
}

/// HMAC-SHA256 keyed once with [`SECRET`].
pub type HmacSha256 = Hmac<Sha256>;

/// The floor the handshake is measured against: HMAC-SHA256 keyed once
/// (outside the timed loop), cloned per verify, fed the 32-byte id and
/// compared in constant time with the expected tag.
#[derive(Clone)]
pub struct BareVerify {
    key: HmacSha256,
    tag: [u8; 32],
}

impl BareVerify {
    /// Keys HMAC-SHA256 with [`SECRET`] and decodes [`SIGNATURE_B64`].
    pub fn new() -> Self {
        // HMAC takes keys of any length and the signature is a fixed, valid
        // 43-character base64 string of 32 bytes: neither can fail.
        #[allow(clippy::expect_used)]
        let key = HmacSha256::new_from_slice(SECRET.as_bytes()).expect("any key length");
        let mut tag = [0u8; 32];
        #[allow(clippy::expect_used)]
        let n = STANDARD_NO_PAD
            .decode_slice(SIGNATURE_B64, &mut tag)
            .expect("valid signature");
        debug_assert_eq!(n, 32);
        BareVerify { key, tag }
    }

    /// Whether `sid`'s HMAC is the expected tag.
    #[inline]
    pub fn verify(&self, sid: &[u8]) -> bool {
        let mut mac = self.key.clone();
        mac.update(sid);
        mac.verify_slice(&self.tag).is_ok()
    }
}

impl Default for BareVerify {
    fn default() -> Self {
        BareVerify::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_sockets_core::codec::resolve::resolve_cookie;
    use session_sockets_core::machines::Handshake;
    use session_sockets_core::{Machine, Request};

    #[test]
    fn inputs_agree_with_each_other() {
        assert_eq!(HEADER.len(), 383);
        assert_eq!(
            session_sockets_core::codec::cookie::pairs(HEADER).count(),
            7
        );
        assert!(BareVerify::new().verify(SID.as_bytes()));
        assert!(!BareVerify::new().verify(b"Ok2nHBR1sXyDbU3bVw9lVwFqcsT1mU5w"));
        let sid = resolve_cookie(&config(), [HEADER]).unwrap();
        assert_eq!(sid.expose(), SID.as_bytes());
        let start = now();
        let mut hs = Handshake::new(config(), start);
        hs.handle_headers(request_headers(), start.instant);
        let Some(Request::Load { key, .. }) = hs.poll_request() else {
            panic!("no Load request");
        };
        assert_eq!(key.as_bytes(), format!("sess:{SID}").as_bytes());
        assert!(session_sockets_core::codec::record::decode(RECORD).is_ok());
    }
}
