//! The SoupBinTCP server's input framing on arbitrary bytes split at arbitrary points (as TCP
//! may): never a panic, nothing after a close, every login's fields exactly what the bytes say,
//! and the same requests however the bytes were split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use distributor::tcp::{InputFramer, Request};

fn run(data: &[u8], cuts: &[usize]) -> Vec<Request> {
    let mut f = InputFramer::default();
    let mut out = Vec::new();
    let mut closed = false;
    let mut at = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        let end = c.clamp(at, data.len());
        f.feed(&data[at..end], &mut |r| {
            assert!(!closed, "a request after a close");
            closed |= matches!(r, Request::Close(_));
            out.push(r);
        });
        if closed {
            break;
        }
        at = end;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let (split, data) = input.split_first().map_or((0, &[][..]), |(s, d)| (*s, d));
    let whole = run(data, &[]);
    let step = usize::from(split % 61) + 1;
    let cuts: Vec<usize> = (step..data.len()).step_by(step).collect();
    let pieces = run(data, &cuts);
    assert_eq!(whole, pieces, "the requests depend on how TCP split the bytes");
});
