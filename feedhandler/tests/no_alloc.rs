//! The decode + normalize + book path allocates nothing per message once warm: proven with a
//! counting global allocator over 200 000 generated messages.

use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::{Frame, Framing};
use feedhandler::{FeedHandler, SessionClock};

#[global_allocator]
static GLOBAL: net::alloc_count::Counting = net::alloc_count::Counting;

fn binaryfile(n: usize, seed: u64) -> Vec<u8> {
    let cfg = GeneratorConfig {
        instruments: 50,
        seed,
        max_live_orders: 20_000,
        ..Default::default()
    };
    let mut g = Generator::new(cfg);
    let mut out = Vec::with_capacity(n * (MAX_MESSAGE + 2));
    let mut m = [0u8; MAX_MESSAGE];
    for _ in 0..n {
        let len = g.next_message(&mut m);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&m[..len]);
    }
    out
}

#[test]
fn hot_path_does_not_allocate_per_message() {
    let data = binaryfile(400_000, 7);
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(date), false);
    let mut normalized = 0u64;
    let half = data.len() / 2;
    // Split at a record boundary.
    let mut cut = 0;
    while cut < half {
        cut += 2 + u16::from_be_bytes([data[cut], data[cut + 1]]) as usize;
    }
    let frame = |b| Frame {
        framing: Framing::BinaryFile,
        bytes: b,
        recv_ts_ns: 1,
        feed: net::Feed::A,
        from: None,
    };
    fh.on_frame(&frame(&data[..cut]), &mut |_| normalized += 1); // warm-up
    let before = net::alloc_count::allocations();
    let msgs_before = fh.normalizer.stats.messages;
    fh.on_frame(&frame(&data[cut..]), &mut |_| normalized += 1);
    let allocs = net::alloc_count::allocations() - before;
    let msgs = fh.normalizer.stats.messages - msgs_before;
    assert!(msgs > 150_000, "{msgs}");
    assert_eq!(allocs, 0, "{allocs} allocations for {msgs} messages");
    assert_eq!(fh.normalizer.stats.malformed, 0);
    assert!(normalized > msgs);
}
