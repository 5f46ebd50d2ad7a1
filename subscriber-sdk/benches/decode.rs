//! ns per message on the SDK's receive path without sockets: MoldUDP64 packet view, A/B
//! arbitration (every datagram arrives twice), record view, parse and dispatch to a handler.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use protocol::moldudp64::{Packet, PacketBuilder, Session};
use protocol::schema::{order_add_record, Body, Message};
use subscriber_sdk::arbiter::{Arbiter, ArbiterConfig, Feed, Output};

struct Sink {
    sum: u64,
}

impl Output for Sink {
    fn deliver(&mut self, _seq: u64, rec: &[u8]) {
        if let Ok(m) = Message::new_checked(rec) {
            if let Body::OrderAdd(o) = m.repr().body {
                self.sum = self.sum.wrapping_add(o.order_id);
            }
        }
    }
    fn gap(&mut self, _: u64, _: u64) {}
    fn request(&mut self, _: u64, _: u16) {}
    fn end_of_session(&mut self, _: u64) {}
}

fn bench(c: &mut Criterion) {
    const PACKETS: u64 = 1000;
    let session = Session::new("BENCH").unwrap();
    let packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|p| {
            let first = p * 22 + 1;
            let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, first).unwrap();
            for s in first..first + 22 {
                b.append(&order_add_record(s)).unwrap();
            }
            b.as_bytes().to_vec()
        })
        .collect();
    let mut g = c.benchmark_group("sdk");
    g.throughput(Throughput::Elements(PACKETS * 22));
    g.bench_function("arbitrate_ab_decode_dispatch", |b| {
        b.iter(|| {
            let mut arb = Arbiter::new(ArbiterConfig {
                buffer: 1024,
                ..Default::default()
            });
            let mut sink = Sink { sum: 0 };
            for p in &packets {
                for feed in [Feed::A, Feed::B] {
                    let v = Packet::new_checked(&p[..]).unwrap();
                    arb.on_data(
                        0,
                        feed,
                        v.sequence(),
                        v.messages().map(|m| m.ok()),
                        &mut sink,
                    );
                }
            }
            black_box(sink.sum)
        })
    });
    g.finish();
}

criterion_group!(decode, bench);
criterion_main!(decode);
