//! Record decode and encode (express-session JSON as connect-redis stores
//! it) on a realistic 196-byte record.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use session_sockets_benches::RECORD;
use session_sockets_core::codec::record::{decode, encode};

fn record(c: &mut Criterion) {
    let rec = match decode(RECORD) {
        Ok(rec) => rec,
        Err(e) => panic!("bench record does not decode: {e}"),
    };
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(RECORD.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| black_box(decode(black_box(RECORD))))
    });
    g.bench_function("encode", |b| {
        b.iter(|| black_box(encode(black_box(&rec.cookie), black_box(&rec.data))))
    });
    g.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
