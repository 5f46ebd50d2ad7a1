//! The shard loop allocates nothing per message: a counting global allocator watches a running
//! shard take 200 000 messages (batching, sequencing, journal, sendmmsg) after warm-up.

use distributor::config::Config;
use distributor::shard::ShardSet;
use protocol::schema::{Body, OrderAdd, Price, Repr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: net::alloc_count::Counting = net::alloc_count::Counting;

#[test]
fn shard_loop_does_not_allocate_per_message() {
    let mut cfg = Config::load(None).unwrap();
    let dir = std::env::temp_dir().join(format!("tickcast-noalloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cfg.journal.dir = dir.clone();
    let base = 45_000 + (std::process::id() % 500) as u16 * 4;
    for (i, g) in cfg.groups.iter_mut().enumerate() {
        g.multicast_loop = false; // nobody listens; the kernel still takes every datagram
        g.retransmit = format!("127.0.0.1:{}", base + i as u16).parse().unwrap();
        g.heartbeat_ms = 60_000;
        g.ring = 1 << 16;
    }
    // One shard on core 0 holding both groups.
    let idle = cfg.shards[0].idle;
    cfg.shards = vec![distributor::config::Shard {
        core: 0,
        groups: cfg.groups.iter().map(|g| g.name.clone()).collect(),
        idle,
        slice_us: 100,
        retransmit_core: None,
    }];
    cfg.feed.queue_depth = 64;
    let mut shards =
        ShardSet::start(&cfg, Arc::new(AtomicBool::new(false)), Duration::ZERO).unwrap();
    let mut input = shards.inputs.pop().unwrap();
    let counters = shards.shard_counters[0].clone();

    let mut n = 0u64;
    let mut feed = |count: u64| {
        for _ in 0..count {
            n += 1;
            let m = Repr {
                instrument: (n % 50) as u32 + 1,
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
            // Alternate groups, sometimes both.
            let mask = if n.is_multiple_of(5) {
                0b11
            } else {
                1 << (n % 2)
            };
            input.push(&distributor::batch::encode(&m), mask);
            if n.is_multiple_of(30) {
                input.send(); // one input datagram's worth
            }
        }
        input.send();
    };
    let wait_for = |want: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while counters.messages_in.get() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    feed(100_000);
    wait_for(100_000);
    // crossbeam allocates a thread's wait context the first time it blocks (once per thread);
    // the shard thread and `batch::channel`'s waiter lists are warmed at start, this thread
    // (standing in for the feed thread, which warms itself in `run_feed`) here.
    distributor::batch::warm_thread();
    std::thread::sleep(Duration::from_millis(50));
    let before = net::alloc_count::allocations();
    feed(200_000);
    wait_for(300_000);
    let allocs = net::alloc_count::allocations() - before;
    drop(input);
    assert!(shards.join());
    let _ = std::fs::remove_dir_all(&dir);
    let sent = counters.datagrams_sent.get();
    assert_eq!(counters.messages_in.get(), 300_000);
    assert!(sent > 10_000, "{sent}");
    println!("{allocs} allocations for 200 000 messages");
    assert_eq!(
        allocs, 0,
        "allocations while the shard took 200 000 messages"
    );
}
