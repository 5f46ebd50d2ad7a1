//! MoldUDP64 datagrams of ITCH into a live feed handler (A, B, answers; any order): never a
//! panic; what it normalizes is counted.
#![no_main]
use feedhandler::source::{Frame, Framing};
use feedhandler::{FeedHandler, SessionClock};
use libfuzzer_sys::fuzz_target;
use net::Feed;

fuzz_target!(|data: &[u8]| {
    let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
    let mut fh = FeedHandler::live(SessionClock::new(date));
    let mut n = 0u64;
    // The input is a run of datagrams: [u16 BE length][feed byte][bytes].
    let mut rest = data;
    let mut now = 1_000_000u64;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 3);
        let feed = match rest[2] % 3 {
            0 => Feed::A,
            1 => Feed::B,
            _ => Feed::Retransmit,
        };
        let bytes = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += 700_000;
        let frame = Frame {
            framing: Framing::MoldUdp64,
            bytes,
            recv_ts_ns: now,
            feed,
            from: None,
        };
        fh.on_frame(&frame, &mut |_| n += 1);
        fh.tick(now, &mut |_| n += 1);
    }
    fh.finish(&mut |_| n += 1);
    assert_eq!(fh.normalizer.stats.normalized(), n);
});
