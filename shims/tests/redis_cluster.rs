#![allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

#[test]
fn harness_smoke() {
    let t = std::time::Instant::now();
    let c = redis_cluster::RedisCluster::start();
    eprintln!("up in {:?}", t.elapsed());
    let shards = c.shards();
    eprintln!("{shards:?}");
    let p = c.primary_of(b"sess:abc");
    let r = c.replica_of(p);
    eprintln!("primary {p} replica {r} slot {}", redis_cluster::slot(b"sess:abc"));
    assert_eq!(c.keyed(b"sess:abc", &[b"SET", b"sess:abc", b"1"]), redis_cluster::Resp::Simple("OK".into()));
    assert_eq!(c.get("sess:abc"), Some(b"1".to_vec()));
}
