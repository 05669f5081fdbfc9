//! The whole handshake through the async driver: `SessionSockets` over a
//! `MemoryStore` on a current-thread tokio runtime, from request headers to
//! the loaded `Session` (origin check, cookie, signature, store load,
//! record decode).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_sockets::runtime::tokio::Tokio;
use session_sockets::{MemoryStore, SessionSockets, Store};
use session_sockets_benches::{HEADER, RECORD, SID, config, request_headers};

fn driver(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let store = Arc::new(MemoryStore::new());
    let key = format!("sess:{SID}");
    if let Err(e) = rt.block_on(store.create(key.as_bytes(), RECORD, Duration::from_secs(3600))) {
        panic!("seeding the store: {e}");
    }
    let sockets = SessionSockets::new(config(), store, Tokio);
    let headers = request_headers();
    if let Err(e) = rt.block_on(sockets.session_from_pairs(headers)) {
        panic!("the bench handshake finds no session: {e}");
    }
    let mut g = c.benchmark_group("driver");
    g.throughput(Throughput::Bytes(HEADER.len() as u64));
    g.bench_function("memory_store_tokio_handshake", |b| {
        b.iter(|| black_box(rt.block_on(sockets.session_from_pairs(black_box(headers)))))
    });
    g.finish();
}

criterion_group!(benches, driver);
criterion_main!(benches);
