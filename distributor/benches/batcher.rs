//! ns per message through a running shard: append to the group's datagram and journal,
//! flush, and sendmmsg to the kernel (to a group nobody joined); the journal pages are prepared
//! by the retransmitter thread, as in a running distributor.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use distributor::config::Config;
use distributor::shard::ShardSet;
use protocol::schema::{Body, OrderAdd, Price, Repr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bench(c: &mut Criterion) {
    let mut cfg = Config::load(None).unwrap();
    let dir = std::env::temp_dir().join(format!("tickcast-batcher-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cfg.journal.dir = dir.clone();
    let base = 43_000 + (std::process::id() % 500) as u16 * 4;
    for (i, g) in cfg.groups.iter_mut().enumerate() {
        g.multicast_loop = false;
        g.feed_b = None;
        g.retransmit = format!("127.0.0.1:{}", base + i as u16).parse().unwrap();
    }
    // One shard on core 0 holding both groups.
    let idle = distributor::config::Idle::Spin;
    cfg.shards = vec![distributor::config::Shard {
        core: 0,
        groups: cfg.groups.iter().map(|g| g.name.clone()).collect(),
        idle,
        slice_us: 100,
        retransmit_core: None,
    }];
    cfg.feed.queue_depth = 256;
    let mut shards =
        ShardSet::start(&cfg, Arc::new(AtomicBool::new(false)), Duration::ZERO).unwrap();
    let mut input = shards.inputs.pop().unwrap();
    let counters = shards.shard_counters[0].clone();

    let mut n = 0u64;
    let mut g = c.benchmark_group("shard");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append_flush_sendmmsg", |b| {
        b.iter_custom(|iters| {
            let target = counters.messages_in.get() + iters;
            let start = Instant::now();
            for _ in 0..iters {
                n += 1;
                let m = Repr {
                    instrument: (n % 64) as u32,
                    event_ts_ns: n,
                    recv_ts_ns: n,
                    body: Body::OrderAdd(OrderAdd {
                        order_id: n,
                        price: Price(n as i64),
                        quantity: 100,
                        side: b'B',
                        attribution: *b"    ",
                    }),
                };
                input.push(&distributor::batch::encode(&m), 1 << (n % 2));
                if n.is_multiple_of(32) {
                    input.send();
                }
            }
            input.send();
            while counters.messages_in.get() < target {
                std::hint::spin_loop();
            }
            start.elapsed()
        })
    });
    g.finish();
    drop(input);
    shards.join();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(batcher, bench);
criterion_main!(batcher);
