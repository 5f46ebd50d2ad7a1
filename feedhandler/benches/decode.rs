//! ns per message for ITCH decoding alone, and for decode + normalize + book, on a generated
//! stream of realistic order flow: as one block, and in 32-message chunks as datagrams (and
//! `tickcast bench`'s feed) bring it, where the read-ahead passes work per chunk.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::{Frame, Framing};
use feedhandler::{itch, FeedHandler, SessionClock};
use protocol::moldudp64::blocks;

const N: usize = 1_000_000;

fn stream(instruments: u16) -> Vec<u8> {
    let mut g = Generator::new(GeneratorConfig {
        instruments,
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

/// Hands `bytes` (length-prefixed ITCH) to the feed handler as one file frame; returns `acc`
/// folded with every normalized message's event time, so nothing is optimized away.
fn feed(fh: &mut FeedHandler, bytes: &[u8], mut acc: u64) -> u64 {
    let frame = Frame {
        framing: Framing::BinaryFile,
        bytes,
        recv_ts_ns: 1,
        feed: net::Feed::A,
        from: None,
    };
    fh.on_frame(&frame, &mut |m| acc = acc.wrapping_add(m.event_ts_ns));
    acc
}

fn benches(c: &mut Criterion) {
    let data = stream(100);
    let mut group = c.benchmark_group("itch");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for msg in blocks(&data) {
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
            |fh| black_box(feed(fh, &data, 0)),
            criterion::BatchSize::LargeInput,
        )
    });
    // As `tickcast bench` feeds it: 500 instruments, 32-message chunks, the order window
    // reserved as the pipeline's feed thread does.
    let data = stream(500);
    let mut chunks = Vec::new();
    let (mut records, mut start, mut n) = (blocks(&data), 0, 0);
    while records.next().is_some() {
        n += 1;
        if n % 32 == 0 || records.rest().is_empty() {
            let end = data.len() - records.rest().len();
            chunks.push(start..end);
            start = end;
        }
    }
    group.bench_function("decode_normalize_book_chunks", |b| {
        let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
        b.iter_batched_ref(
            || {
                let mut fh = FeedHandler::new(SessionClock::new(date), false);
                fh.normalizer.reserve_for_session();
                fh
            },
            |fh| {
                black_box(
                    chunks
                        .iter()
                        .fold(0, |acc, c| feed(fh, &data[c.clone()], acc)),
                )
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
