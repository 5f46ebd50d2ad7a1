//! The TCP fan-out allocates nothing per message: a counting global allocator watches the
//! server (io_uring and epoll) send 100 000 records to an SDK client after warm-up, the
//! client's receive path included. (Once a second the agent takes a lag snapshot; that is
//! all that may allocate.)

mod tcp_common;

use std::time::{Duration, Instant};
use subscriber_sdk::{Context, Handler, TcpSubscriber};
use tcp_common::*;

#[global_allocator]
static GLOBAL: net::alloc_count::Counting = net::alloc_count::Counting;

/// Counts without storing anything.
struct Count(u64);
impl Handler for Count {
    fn on_message(&mut self, _: &Context<'_>, _: &protocol::Message<&[u8]>) {
        self.0 += 1;
    }
}

fn pump(s: &mut Server, sub: &mut TcpSubscriber, h: &mut Count, batches: u64) {
    for _ in 0..batches {
        s.feed.publish(1000);
        let want = s.feed.journal.len();
        let deadline = Instant::now() + Duration::from_secs(20);
        while h.0 < want && Instant::now() < deadline {
            sub.poll_for(h, Duration::from_millis(5)).unwrap();
        }
        assert_eq!(h.0, want);
    }
}

#[test]
fn tcp_fan_out_does_not_allocate_per_message() {
    for b in [Backend::Uring, Backend::Epoll] {
        let mut s = server(b, config(b), 0);
        let mut sub = TcpSubscriber::connect(options(s.addr, 1)).unwrap();
        let mut h = Count(0);
        pump(&mut s, &mut sub, &mut h, 20); // warm-up: buffers reach their sizes
        let before = net::alloc_count::allocations();
        pump(&mut s, &mut sub, &mut h, 100);
        let allocs = net::alloc_count::allocations() - before;
        println!("{b:?}: {allocs} allocations for 100 000 messages");
        assert!(
            allocs < 100,
            "{b:?}: {allocs} allocations for 100 000 messages"
        );
        s.end();
    }
}
