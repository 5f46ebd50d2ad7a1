//! ns per message for ITCH decoding alone, and for decode + normalize + book, on a generated
//! stream of realistic order flow.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::{Frame, Framing};
use feedhandler::{itch, FeedHandler, SessionClock};
use protocol::moldudp64::split_block;

const N: usize = 1_000_000;

fn stream() -> Vec<u8> {
    let mut g = Generator::new(GeneratorConfig {
        instruments: 100,
        seed: 3,
        ..Default::default()
    });
    let mut out = Vec::with_capacity(N * 40);
    let mut m = [0u8; MAX_MESSAGE];
    for _ in 0..N {
        let len = g.next_message(&mut m);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&m[..len]);
    }
    out
}

fn benches(c: &mut Criterion) {
    let data = stream();
    let mut group = c.benchmark_group("itch");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut rest = &data[..];
            let mut acc = 0u64;
            while let Some((msg, r)) = split_block(rest) {
                rest = r;
                if let Ok(m) = itch::decode(msg) {
                    acc = acc.wrapping_add(m.timestamp() ^ u64::from(m.stock_locate()));
                }
            }
            black_box(acc)
        })
    });
    group.bench_function("decode_normalize_book", |b| {
        let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
        b.iter_batched_ref(
            || FeedHandler::new(SessionClock::new(date), false),
            |fh| {
                let mut acc = 0u64;
                let frame = Frame {
                    framing: Framing::BinaryFile,
                    bytes: &data,
                    recv_ts_ns: 1,
                    feed: net::Feed::A,
                    from: None,
                };
                fh.on_frame(&frame, &mut |m| acc = acc.wrapping_add(m.event_ts_ns));
                black_box(acc)
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
