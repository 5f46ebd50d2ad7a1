//! The sequenced-stream receiver on arbitrary input: data, heartbeats and ends of session at
//! any sequence (2^63 included), from any feed, at any time: deliveries strictly increase,
//! gaps never overlap them, work stays bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use net::arbiter::{Arbiter, ArbiterConfig, Feed, Output};

#[derive(Default)]
struct Check {
    last: u64,
}

impl Output for Check {
    fn deliver(&mut self, seq: u64, _: &[u8]) {
        assert!(seq > self.last, "{seq} after {}", self.last);
        self.last = seq;
    }
    fn gap(&mut self, from: u64, to: u64) {
        assert!(
            from > self.last && to >= from,
            "gap {from}..{to} after {}",
            self.last
        );
        self.last = to;
    }
    fn request(&mut self, from: u64, count: u16) {
        assert!(from > 0 && count > 0);
    }
    fn end_of_session(&mut self, _: u64) {}
}

fuzz_target!(|data: &[u8]| {
    let mut a = Arbiter::new(ArbiterConfig {
        buffer: 64,
        ..Default::default()
    });
    let mut out = Check::default();
    let rec = [0u8; 64];
    let mut now = 0u64;
    // Events of 12 bytes: [kind+feed][count][dt ms u16][seq u64 LE] ; seq mixes small and huge.
    for e in data.chunks_exact(12) {
        now += u64::from(u16::from_le_bytes([e[2], e[3]])) * 1_000_000;
        let raw = u64::from_le_bytes(e[4..12].try_into().unwrap());
        let seq = if e[0] & 0x80 != 0 { raw } else { raw % 4096 };
        let feed = match e[0] % 3 {
            0 => Feed::A,
            1 => Feed::B,
            _ => Feed::Retransmit,
        };
        match (e[0] >> 2) % 4 {
            0 | 1 => {
                let n = usize::from(e[1] % 24);
                let valid = e[1] & 0x80 == 0;
                a.on_data(
                    now,
                    feed,
                    seq,
                    (0..n).map(|_| valid.then_some(&rec[..])),
                    &mut out,
                );
            }
            2 => a.on_heartbeat(now, seq, &mut out),
            _ => a.on_end_of_session(now, seq, &mut out),
        }
        a.tick(now, &mut out);
    }
});
