//! The handshake per session format, in one run: the core machine from the
//! request headers of a socket.io WebSocket handshake to its `Load` request
//! (`Handshake::new` + `handle_headers` + `poll_request`), with the same
//! realistic 383-byte `Cookie` header whose session cookie is each format's:
//! express-session's `connect.sid` (the `handshake` bench's path),
//! tower-sessions' `id` plain, signed and private, actix-session's `id`
//! private and signed (key bytes 0x00..0x3f; the values the real crates
//! wrote, see notes/formats.md).
//!
//! Group `cookie_crate`: the verify and the open alone, the core's
//! (`Keys::verify`, `Keys::open`) next to the `cookie` crate's own jars
//! (0.18, `SignedJar::verify`, `PrivateJar::decrypt`, the code the apps
//! run) on the same values.

use std::hint::black_box;
use std::sync::Arc;

use cookie::{Cookie, CookieJar, Key as JarKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_sockets_benches::{HEADER, config, now, request_headers};
use session_sockets_core::format::actix_session::CookieContentSecurity;
use session_sockets_core::format::cookie_crate::Keys;
use session_sockets_core::machines::Handshake;
use session_sockets_core::{Config, Format, Machine};

/// The standard base64 of the key bytes 0x00..0x3f.
const KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
const TOWER_PLAIN: &str = "id=vNPPFgK-j7a-idNRnFp0KQ";
const TOWER_SIGNED: &str = "id=+HD6HXwSEmTya5RF90CFmqr8sSrnig2TzyQ5pbtCw2Q=vNPPFgK-j7a-idNRnFp0KQ";
const TOWER_PRIVATE: &str =
    "id=P1L53JLnz80CequuWzeLkE0B1fQjI4oQUgYVNo00Ax3YimPwutedXUPOUGGsl+3yR2M=";
const ACTIX_PRIVATE: &str = "id=lno7UzUHWDVtzcNkpv6lxcOzZoniQOaDgqqQs1TY2bju68mGuafIVscCbpUmpV%2F9uCtGZc9TAmZ%2FmrlWw1yoBGlFmg2T5cO2KH7NluZnwFdKiIlMi9ic1j7QTd0%3D";
const ACTIX_SIGNED: &str = "id=qQknImLIPUeHFJX1PSBOlJjRODoQ7jmcd1yn9%2FfF2g0%3Dn2rJEIhovOPWpb0Rh1SOsf0sMrLy8rEZz85Z8Z7GBuq9yP5RNVtaujzWLRacMn5n";

/// The bench header with its `connect.sid` pair replaced by `pair`.
fn header_with(pair: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(HEADER);
    let start = text.find("connect.sid=").unwrap_or(0);
    let end = text[start..].find(';').map_or(text.len(), |i| start + i);
    format!("{}{pair}{}", &text[..start], &text[end..]).into_bytes()
}

/// A bench config of `format`, at its defaults otherwise.
fn config_of(format: impl Into<Format>) -> Arc<Config> {
    // Fixed, valid settings: building cannot fail.
    #[allow(clippy::expect_used)]
    Arc::new(
        Config::builder()
            .format(format)
            .build()
            .expect("valid bench config"),
    )
}

#[allow(clippy::expect_used)] // fixed, valid keys
fn formats(c: &mut Criterion) {
    let cases: Vec<(&str, Arc<Config>, Vec<u8>)> = vec![
        ("express_session", config(), HEADER.to_vec()),
        (
            "tower_sessions_plain",
            config_of(Format::tower_sessions()),
            header_with(TOWER_PLAIN),
        ),
        (
            "tower_sessions_signed",
            config_of(Format::tower_sessions().with_signed(KEY).expect("key")),
            header_with(TOWER_SIGNED),
        ),
        (
            "tower_sessions_private",
            config_of(Format::tower_sessions().with_private(KEY).expect("key")),
            header_with(TOWER_PRIVATE),
        ),
        (
            "actix_session_private",
            config_of(Format::actix_session(KEY).expect("key")),
            header_with(ACTIX_PRIVATE),
        ),
        (
            "actix_session_signed",
            config_of(
                Format::actix_session(KEY)
                    .expect("key")
                    .cookie_content_security(CookieContentSecurity::Signed),
            ),
            header_with(ACTIX_SIGNED),
        ),
    ];
    let mut g = c.benchmark_group("formats_headers_to_load");
    for (name, config, cookie) in &cases {
        let mut headers = request_headers().to_vec();
        if let Some(h) = headers.last_mut() {
            *h = (b"cookie", cookie.as_slice());
        }
        // Every case must reach its `Load`, or the bench measures a refusal.
        let start = now();
        let mut hs = Handshake::new(config.clone(), start);
        hs.handle_headers(headers.iter().copied(), start.instant);
        assert!(hs.poll_request().is_some(), "{name}: no Load");
        g.throughput(Throughput::Bytes(cookie.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let start = now();
                let mut hs = Handshake::new(config.clone(), start);
                hs.handle_headers(black_box(&headers).iter().copied(), start.instant);
                black_box(hs.poll_request())
            })
        });
    }
    g.finish();
}

#[allow(clippy::expect_used)] // fixed, valid keys
fn cookie_crate(c: &mut Criterion) {
    let keys = Keys::from_base64([KEY]).expect("key");
    let bytes: Vec<u8> = (0u8..64).collect();
    let jar_key = JarKey::from(&bytes[..]);
    let signed = &TOWER_SIGNED[3..];
    let sealed = &TOWER_PRIVATE[3..];
    assert!(keys.verify(signed).is_ok() && keys.open("id", sealed).is_ok());
    let mut g = c.benchmark_group("cookie_crate");
    g.bench_function("core_verify", |b| {
        b.iter(|| black_box(keys.verify(black_box(signed)).is_ok()))
    });
    g.bench_function("cookie_0_18_signed_jar_verify", |b| {
        b.iter(|| {
            let jar = CookieJar::new();
            black_box(
                jar.signed(&jar_key)
                    .verify(Cookie::new("id", black_box(signed)))
                    .is_some(),
            )
        })
    });
    g.bench_function("core_open", |b| {
        b.iter(|| black_box(keys.open("id", black_box(sealed)).is_ok()))
    });
    g.bench_function("cookie_0_18_private_jar_decrypt", |b| {
        b.iter(|| {
            let jar = CookieJar::new();
            black_box(
                jar.private(&jar_key)
                    .decrypt(Cookie::new("id", black_box(sealed)))
                    .is_some(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, formats, cookie_crate);
criterion_main!(benches);
