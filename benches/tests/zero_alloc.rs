//! Zero heap allocations from request headers to the `Load` request, on the
//! realistic 383-byte header: `Handshake::new` + `handle_headers` +
//! `poll_request`. Counted per thread by `allocation-counter`'s global
//! allocator, so the test harness's own threads do not interfere.

use session_sockets_benches::{HEADER, SID, config, now, request_headers};
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::machines::Handshake;
use session_sockets_core::{Machine, Request};

#[test]
fn the_counter_sees_allocations() {
    // Guards against a counter that is not installed: a Vec must count.
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![0u8; 64]);
    });
    assert!(
        info.count_total >= 1,
        "the counting allocator is not active"
    );
}

#[test]
fn handshake_headers_to_load_request_allocate_nothing() {
    let config = config();
    let headers = request_headers();
    // Warm up once outside the measurement (lazy statics, if any).
    let start = now();
    let mut hs = Handshake::new(config.clone(), start);
    hs.handle_headers(headers.iter().copied(), start.instant);
    assert!(hs.poll_request().is_some());
    drop(hs);

    let mut key_ok = true;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            let start = now();
            let mut hs = Handshake::new(config.clone(), start);
            hs.handle_headers(headers.iter().copied(), start.instant);
            match hs.poll_request() {
                Some(Request::Load { key, .. }) => {
                    key_ok &= key.as_bytes().strip_prefix(b"sess:") == Some(SID.as_bytes());
                }
                _ => key_ok = false,
            }
        }
    });
    assert!(key_ok, "the handshake did not request the expected key");
    assert_eq!(
        info.count_total, 0,
        "allocations from headers to Load: {info:?}"
    );
}

#[test]
fn parse_and_verify_allocate_nothing() {
    let config = config();
    let mut ok = true;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            ok &= resolve_cookie(&config, [HEADER]).is_ok_and(|s| s.expose() == SID.as_bytes());
        }
    });
    assert!(ok);
    assert_eq!(
        info.count_total, 0,
        "allocations in resolve_cookie: {info:?}"
    );
}
