//! The whole handshake through the async driver: `SessionSockets` over a
//! `MemoryStore` on a current-thread tokio runtime, from request headers to
//! the loaded `Session` (origin check, cookie, signature, store load,
//! record decode). Three times in one run, for what observing it costs:
//! with no tracing subscriber and no metrics recorder; with a subscriber at
//! `info` (the operation spans, at `debug`, disabled) and a Prometheus
//! recorder (production settings); and with every span recorded and
//! formatted (to a sink) plus the recorder.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_sockets::store::Store;
use session_sockets::{MemoryStore, SessionSockets};
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
    let sockets = SessionSockets::new(config(), store);
    let headers = request_headers();
    if let Err(e) = rt.block_on(sockets.session_from_pairs(headers)) {
        panic!("the bench handshake finds no session: {e}");
    }
    let mut g = c.benchmark_group("driver");
    g.throughput(Throughput::Bytes(HEADER.len() as u64));
    let mut handshake = |name: &str| {
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(sockets.session_from_pairs(black_box(headers)))))
        });
    };
    handshake("memory_store_tokio_handshake");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let subscriber = |level| {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(level)
            .finish()
    };
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber(tracing::Level::INFO), || {
            handshake("memory_store_tokio_handshake_info_logs_metrics");
        });
        tracing::subscriber::with_default(subscriber(tracing::Level::DEBUG), || {
            handshake("memory_store_tokio_handshake_debug_spans_metrics");
        });
    });
    g.finish();
}

criterion_group!(benches, driver);
criterion_main!(benches);
