//! The sender's duty cycle is an agent with the clock passed in: heartbeats, flushes and
//! sends happen at the times it is told, without sleeping.

use distributor::agent::Agent;
use distributor::batch::{channel, encode};
use distributor::config::{Config, Idle};
use distributor::counters::{GroupCounters, ShardCounters};
use distributor::shard::{Shard, ShardSpec};
use protocol::schema::{Body, OrderAdd, Price, Repr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn the_sender_runs_on_the_clock_it_is_given() {
    let mut cfg = Config::load(None).unwrap();
    let dir = std::env::temp_dir().join(format!("tickcast-shard-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cfg.journal.dir = dir.clone();
    let mut g = cfg.groups[0].clone();
    g.multicast_loop = false; // nobody listens; the kernel still takes every datagram
    g.heartbeat_ms = 1000;
    let owned = vec![(0usize, g)];
    let (mut input, queue) = channel(1, 16);
    let counters: Vec<Arc<GroupCounters>> = vec![Arc::default()];
    let spec = ShardSpec {
        core: 0,
        idle: Idle::Park,
        slice_us: 0,
        groups: &owned,
        journal: &cfg.journal,
        group_counters: &counters,
        linger: Duration::ZERO,
        tcp_window: None,
    };
    let shard_counters = Arc::new(ShardCounters::default());
    let mut shard = Shard::new(
        spec,
        queue,
        shard_counters.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let g = &counters[0];
    let ms = |n: u64| Duration::from_millis(n);
    let t0 = Instant::now();
    // Quiet: a heartbeat once a second, not before.
    assert_eq!(shard.do_work(t0 + ms(999)), 0);
    assert_eq!(g.heartbeats.get(), 0);
    // Parked, it would sleep until the heartbeat is due (started before t0), 100 ms at most.
    assert!(shard.idle_deadline(t0 + ms(999)) <= ms(1));
    assert_eq!(shard.idle_deadline(t0), ms(100));
    assert_eq!(shard.do_work(t0 + ms(1000)), 1);
    assert_eq!(g.heartbeats.get(), 1);
    assert_eq!(shard.idle_deadline(t0 + ms(1950)), ms(50));
    assert_eq!(shard.idle_deadline(t0 + ms(2500)), Duration::ZERO);
    assert_eq!(shard.do_work(t0 + ms(1500)), 0);
    // A batch: taken, flushed because the queue is drained, sent in the same cycle.
    let rec = encode(&Repr {
        instrument: 1,
        event_ts_ns: 1,
        recv_ts_ns: 1,
        body: Body::OrderAdd(OrderAdd {
            order_id: 1,
            price: Price(100),
            quantity: 1,
            side: b'B',
            attribution: *b"    ",
        }),
    });
    assert!(input.push(&rec, 1));
    assert!(input.send());
    assert_eq!(shard.do_work(t0 + ms(1600)), 1);
    assert_eq!((g.messages.get(), g.datagrams.get()), (1, 1));
    assert_eq!(g.last_seq.get(), 1);
    assert!(shard_counters.sendmmsg_calls.get() >= 2);
    // The next heartbeat counts from the data, not from the last heartbeat.
    assert_eq!(shard.do_work(t0 + ms(2500)), 0);
    assert_eq!(shard.do_work(t0 + ms(2600)), 1);
    assert_eq!(g.heartbeats.get(), 2);
    // The feed ends: the queue closes.
    drop(input);
    shard.do_work(t0 + ms(2700));
    assert!(!shard.is_open());
    let _ = std::fs::remove_dir_all(&dir);
}
