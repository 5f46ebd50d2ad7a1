//! The capture reader (pcap, pcapng, BinaryFILE, gzip; every link type) and the feed handler
//! behind it: any bytes end in frames or an error, never a panic or a hang.
#![no_main]
use feedhandler::source::{self, pcap::Filter};
use feedhandler::{FeedHandler, SessionClock};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let input: source::Input = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok((mut src, _format)) = source::open_input(
        input,
        Path::new("fuzz"),
        data.len() as u64,
        None,
        Filter::default(),
    ) else {
        return;
    };
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(date), true);
    fh.accept_unsequenced = true;
    let mut n = 0u64;
    // Bounded: a frame is at least a few bytes of input.
    for _ in 0..=data.len() {
        match src.next_frame() {
            Ok(Some(frame)) => fh.on_frame(&frame, &mut |_| n += 1),
            Ok(None) | Err(_) => break,
        }
    }
    fh.finish(&mut |_| n += 1);
    assert_eq!(fh.normalizer.stats.normalized(), n);
});
