//! The handshake hot path on the realistic 383-byte header.
//!
//! Group `handshake`: the core machine from request headers to its `Load`
//! request (`Handshake::new` + `handle_headers` + `poll_request`), next to
//! the floor it cannot beat, a bare pre-keyed HMAC-SHA256 verify of the same
//! id. Goal: handshake <= 1.3x the bare HMAC.
//!
//! Group `cookie`: the pieces: the public `pairs` + `decode` API (split
//! every pair, find `connect.sid`, decode it into an owned value), verify
//! only (`unsign` of the decoded value), and parse + verify
//! (`resolve_cookie`, the path express-session's `getcookie` takes; its
//! scan decodes into an inline buffer and splits only candidate pairs).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_sockets_benches::{BareVerify, HEADER, SID, SIGNED, config, now, request_headers};
use session_sockets_core::Machine;
use session_sockets_core::codec::cookie::{decode, pairs};
use session_sockets_core::codec::resolve::resolve_cookie;
use session_sockets_core::codec::signature::unsign;
use session_sockets_core::machines::Handshake;

fn handshake(c: &mut Criterion) {
    let config = config();
    let headers = request_headers();
    let bare = BareVerify::new();
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Bytes(HEADER.len() as u64));
    g.bench_function("core_headers_to_load", |b| {
        b.iter(|| {
            let start = now();
            let mut hs = Handshake::new(config.clone(), start);
            hs.handle_headers(black_box(&headers).iter().copied(), start.instant);
            black_box(hs.poll_request())
        })
    });
    g.bench_function("bare_hmac_sha256_verify", |b| {
        b.iter(|| black_box(bare.verify(black_box(SID.as_bytes()))))
    });
    g.finish();
}

fn cookie(c: &mut Criterion) {
    let config = config();
    let keys = config.keys();
    let mut g = c.benchmark_group("cookie");
    g.throughput(Throughput::Bytes(HEADER.len() as u64));
    g.bench_function("pairs_and_decode_api", |b| {
        b.iter(|| {
            let value = pairs(black_box(HEADER))
                .find(|(name, _)| *name == b"connect.sid")
                .map(|(_, v)| decode(v));
            black_box(value)
        })
    });
    g.bench_function("verify_only", |b| {
        b.iter(|| black_box(unsign(black_box(SIGNED), keys)))
    });
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| black_box(resolve_cookie(&config, [black_box(HEADER)]).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, handshake, cookie);
criterion_main!(benches);
