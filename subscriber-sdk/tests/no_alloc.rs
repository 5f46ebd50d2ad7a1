//! The SDK's receive path (recvmmsg, arbitration of A and B, in-order delivery to a handler,
//! latency recording) allocates nothing per message: a counting global allocator watches
//! 110 000 messages arrive over loopback multicast after warm-up.

mod common;

use protocol::moldudp64::Session;
use protocol::schema::Repr;
use std::net::{Ipv4Addr, SocketAddrV4};
use subscriber_sdk::{Context, GroupSpec, Handler, PollMode, Subscriber};

#[global_allocator]
static GLOBAL: net::alloc_count::Counting = net::alloc_count::Counting;

struct Count(u64, u64);
impl Handler for Count {
    fn on_order_add(&mut self, ctx: &Context<'_>, _m: &Repr, o: &protocol::schema::OrderAdd) {
        assert_eq!(o.order_id, ctx.seq);
        self.0 += 1;
        self.1 = ctx.seq;
    }
}

/// Plain, then with UDP_GRO (the sender sends each run of 20 datagrams as one GSO send, the
/// kernel hands it over whole and the SDK splits it). One test: the allocation counter is
/// global, so the two must not run at once.
#[test]
fn receive_path_does_not_allocate_per_message() {
    receive_without_allocating(false, 47_000);
    receive_without_allocating(true, 48_000);
}

fn receive_without_allocating(gro: bool, base: u16) {
    let port = base + (std::process::id() % 1000) as u16;
    let a = SocketAddrV4::new(Ipv4Addr::new(239, 203, 0, 1), port);
    let b = SocketAddrV4::new(Ipv4Addr::new(239, 203, 0, 2), port);
    let session = Session::new("NOALLOC").unwrap();
    let packets: Vec<Vec<u8>> = (0..7000u64)
        .map(|p| common::order_adds(&session, p * 22 + 1, 22))
        .collect();
    let trains: Vec<Vec<u8>> = packets.chunks(20).map(|c| c.concat()).collect();
    let tx = {
        let s = common::loopback_sender();
        if gro {
            assert!(net::socket::set_udp_segment(&s, 1472));
        }
        s
    };
    let mut sub = Subscriber::builder()
        .group(GroupSpec::new("g", a).feed_b(b))
        .rcvbuf(32 << 20)
        .poll_mode(PollMode::Blocking(std::time::Duration::from_millis(2)))
        .udp_gro(gro)
        .build()
        .unwrap();
    let mut h = Count(0, 0);
    let send = |range: std::ops::Range<usize>, sub: &mut Subscriber, h: &mut Count| {
        for (k, chunk) in packets[range.clone()].chunks(20).enumerate() {
            if gro {
                let train = &trains[range.start / 20 + k];
                tx.send_to(train, a).unwrap();
                tx.send_to(train, b).unwrap();
            } else {
                for p in chunk {
                    tx.send_to(p, a).unwrap();
                    tx.send_to(p, b).unwrap();
                }
            }
            while sub.poll(h).unwrap() > 0 {}
        }
    };
    send(0..2000, &mut sub, &mut h); // warm-up
    let before = net::alloc_count::allocations();
    let delivered_before = h.0;
    send(2000..7000, &mut sub, &mut h);
    for _ in 0..100 {
        sub.poll(&mut h).unwrap();
    }
    let allocs = net::alloc_count::allocations() - before;
    let got = h.0 - delivered_before;
    println!("gro {gro}: {allocs} allocations for {got} messages");
    assert_eq!(h.1, 7000 * 22, "everything delivered, in order");
    let rx = sub.receive_counters();
    if gro {
        assert!(rx.gro_buffers > 0, "GSO runs taken whole: {rx:?}");
    } else {
        assert_eq!(rx.gro_buffers, 0);
    }
    assert_eq!((rx.truncated, rx.ctrunc), (0, 0));
    assert!(got >= 100_000);
    assert_eq!(allocs, 0);
}
