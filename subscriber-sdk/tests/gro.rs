//! A subscriber built with the default options takes a sender's GSO run as one UDP_GRO buffer
//! and delivers every message in it, in order; one built with `udp_gro(false)` gets the same
//! messages datagram by datagram.

mod common;

use protocol::moldudp64::Session;
use protocol::schema::{OrderAdd, Repr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use subscriber_sdk::{Context, GroupSpec, Handler, PollMode, Subscriber};

/// Datagrams per packet run (one GSO send), and runs sent.
const RUN: u64 = 12;
const RUNS: u64 = 5;
const PER_DATAGRAM: u64 = 20;

#[derive(Default)]
struct Seqs(Vec<u64>);
impl Handler for Seqs {
    fn on_order_add(&mut self, ctx: &Context<'_>, _m: &Repr, o: &OrderAdd) {
        assert_eq!(o.order_id, ctx.seq);
        self.0.push(ctx.seq);
    }
}

/// `RUN` full datagrams of `PER_DATAGRAM` messages each, starting at sequence `first`.
fn run_bytes(session: &Session, first: u64) -> Vec<u8> {
    (0..RUN)
        .flat_map(|d| common::order_adds(session, first + d * PER_DATAGRAM, PER_DATAGRAM))
        .collect()
}

/// Sends `RUNS` GSO runs to `group`; returns the sequence numbers `sub` delivered, in order.
fn receive(group: SocketAddrV4, sub: &mut Subscriber) -> Vec<u64> {
    let session = Session::new("GRO").unwrap();
    let tx = common::loopback_sender();
    let segment = run_bytes(&session, 1).len() / RUN as usize;
    assert!(net::socket::set_udp_segment(&tx, segment as u16));
    let mut h = Seqs::default();
    for r in 0..RUNS {
        tx.send_to(&run_bytes(&session, 1 + r * RUN * PER_DATAGRAM), group)
            .unwrap();
    }
    let want = RUNS * RUN * PER_DATAGRAM;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (h.0.len() as u64) < want && Instant::now() < deadline {
        sub.poll(&mut h).unwrap();
    }
    h.0
}

fn subscriber(group: SocketAddrV4, gro: Option<bool>) -> Subscriber {
    let mut b = Subscriber::builder()
        .group(GroupSpec::new("g", group))
        .poll_mode(PollMode::Blocking(Duration::from_millis(5)));
    if let Some(on) = gro {
        b = b.udp_gro(on);
    }
    b.build().unwrap()
}

#[test]
fn the_default_subscriber_takes_gso_runs_whole_and_delivers_every_message() {
    let port = 46_000 + (std::process::id() % 1000) as u16;
    let want: Vec<u64> = (1..=RUNS * RUN * PER_DATAGRAM).collect();

    let group = SocketAddrV4::new(Ipv4Addr::new(239, 203, 1, 1), port);
    let mut sub = subscriber(group, None);
    assert_eq!(receive(group, &mut sub), want);
    let rx = sub.receive_counters();
    assert_eq!(rx.gro_buffers, RUNS, "one buffer per GSO send: {rx:?}");
    assert_eq!((rx.truncated, rx.ctrunc, rx.kernel_drops), (0, 0, 0));
    assert_eq!(sub.stats.datagrams, RUNS * RUN);

    let group = SocketAddrV4::new(Ipv4Addr::new(239, 203, 1, 2), port);
    let mut plain = subscriber(group, Some(false));
    assert_eq!(receive(group, &mut plain), want);
    assert_eq!(plain.receive_counters().gro_buffers, 0);
    assert_eq!(plain.stats.datagrams, RUNS * RUN);
}
