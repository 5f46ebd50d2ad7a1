//! Property tests of the arbitration and recovery state machine under random loss, duplication
//! and reordering on both feeds (and a lossy retransmission path): output is always in order,
//! never duplicated, each record is the one sent under its sequence, and every sequence is
//! either delivered or inside an explicit gap.

use net::arbiter::{Arbiter, ArbiterConfig, Feed, Output, RECORD};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

fn record(seq: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&seq.to_le_bytes());
    r
}

#[derive(Default)]
struct Sink {
    delivered: Vec<u64>,
    gaps: Vec<(u64, u64)>,
    requests: Vec<(u64, u16)>,
    ended: Option<u64>,
}

impl Output for Sink {
    fn deliver(&mut self, seq: u64, rec: &[u8]) {
        assert_eq!(rec, &record(seq)[..], "record of {seq}");
        if let Some(&last) = self.delivered.last() {
            assert!(seq > last, "out of order: {seq} after {last}");
        }
        if let Some(&(_, to)) = self.gaps.last() {
            assert!(seq > to, "delivered {seq} inside a reported gap");
        }
        self.delivered.push(seq);
    }
    fn gap(&mut self, from: u64, to: u64) {
        assert!(from <= to);
        if let Some(&last) = self.delivered.last() {
            assert!(from > last);
        }
        self.gaps.push((from, to));
    }
    fn request(&mut self, from: u64, count: u16) {
        self.requests.push((from, count));
    }
    fn end_of_session(&mut self, next: u64) {
        self.ended = Some(next);
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Messages per packet.
    sizes: Vec<u8>,
    loss_a: u8,
    loss_b: u8,
    dup: u8,
    reorder: u8,
    rtx_loss: u8,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(1u8..=22, 1..120),
        0u8..60,
        0u8..60,
        0u8..20,
        0u8..30,
        0u8..40,
        any::<u64>(),
    )
        .prop_map(
            |(sizes, loss_a, loss_b, dup, reorder, rtx_loss, seed)| Scenario {
                sizes,
                loss_a,
                loss_b,
                dup,
                reorder,
                rtx_loss,
                seed,
            },
        )
}

struct Rng(u64);
impl Rng {
    fn pct(&mut self, p: u8) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100 < u64::from(p)
    }
}

/// Runs a scenario in virtual time; returns the sink and the number of messages sent.
fn simulate(sc: &Scenario, cfg: ArbiterConfig) -> (Sink, u64, Arbiter) {
    // The subscriber is there from the start: every sequence from 1 is owed to it.
    let cfg = ArbiterConfig {
        request_from_start: true,
        ..cfg
    };
    let mut rng = Rng(sc.seed | 1);
    const US: u64 = 1_000;
    // Events: (time, feed, first seq, count); count 0 = heartbeat, u16::MAX = end of session.
    let mut events: BTreeMap<(u64, u64), (Feed, u64, u16)> = BTreeMap::new();
    let mut k = 0u64;
    let mut push =
        |ev: &mut BTreeMap<(u64, u64), (Feed, u64, u16)>, t: u64, e: (Feed, u64, u16)| {
            k += 1;
            ev.insert((t, k), e);
        };
    let mut seq = 1u64;
    let mut t = 0;
    for &n in &sc.sizes {
        t += 10 * US;
        for (feed, loss) in [(Feed::A, sc.loss_a), (Feed::B, sc.loss_b)] {
            if rng.pct(loss) {
                continue;
            }
            let delay = if rng.pct(sc.reorder) { 35 * US } else { 1 };
            push(&mut events, t + delay, (feed, seq, u16::from(n)));
            if rng.pct(sc.dup) {
                push(&mut events, t + 2 * delay + 3, (feed, seq, u16::from(n)));
            }
        }
        seq += u64::from(n);
    }
    let total = seq - 1;
    // Heartbeats then end of session, on both feeds (some may be lost too).
    for i in 1..=3 {
        for (feed, loss) in [(Feed::A, sc.loss_a), (Feed::B, sc.loss_b)] {
            if !rng.pct(loss) {
                push(&mut events, t + i * 100 * US, (feed, seq, 0));
            }
        }
    }
    for i in 0..5 {
        push(
            &mut events,
            t + 400 * US + i * 200_000 * US,
            (Feed::A, seq, u16::MAX),
        );
    }

    let mut arb = Arbiter::new(cfg);
    let mut sink = Sink::default();
    let mut answered = 0;
    let mut now = 0;
    let end = t + 60_000_000 * US; // a minute of virtual time at most
    let mut pending_rtx: VecDeque<(u64, u64, u16)> = VecDeque::new();
    while now < end && sink.ended.is_none() {
        // Next event or a 1 ms tick.
        let next_ev = events.keys().next().map(|k| k.0).unwrap_or(u64::MAX);
        let next_rtx = pending_rtx.front().map(|r| r.0).unwrap_or(u64::MAX);
        now = (now + 1_000 * US).min(next_ev).min(next_rtx).max(now + 1);
        while let Some((&key, &(feed, s, n))) = events.iter().next() {
            if key.0 > now {
                break;
            }
            events.remove(&key);
            match n {
                0 => arb.on_heartbeat(now, s, &mut sink),
                u16::MAX => arb.on_end_of_session(now, s, &mut sink),
                n => {
                    let recs: Vec<[u8; RECORD]> = (s..s + u64::from(n)).map(record).collect();
                    arb.on_data(now, feed, s, recs.iter().map(|r| &r[..]), &mut sink);
                }
            }
        }
        while pending_rtx.front().is_some_and(|r| r.0 <= now) {
            let (_, s, n) = pending_rtx.pop_front().unwrap();
            let recs: Vec<[u8; RECORD]> = (s..s + u64::from(n)).map(record).collect();
            arb.on_data(
                now,
                Feed::Retransmit,
                s,
                recs.iter().map(|r| &r[..]),
                &mut sink,
            );
        }
        arb.tick(now, &mut sink);
        // The server answers new requests after 200 µs, 22 messages per datagram.
        for &(from, count) in &sink.requests[answered..] {
            let last = (from + u64::from(count)).min(total + 1);
            let mut s = from;
            while s < last {
                let n = (last - s).min(22) as u16;
                if !rng.pct(sc.rtx_loss) {
                    pending_rtx.push_back((now + 200 * US, s, n));
                }
                s += u64::from(n);
            }
        }
        answered = sink.requests.len();
    }
    (sink, total, arb)
}

fn check_accounting(sink: &Sink, total: u64) {
    let mut covered = vec![false; total as usize + 1];
    for &s in &sink.delivered {
        assert!(!covered[s as usize], "{s} twice");
        covered[s as usize] = true;
    }
    for &(a, b) in &sink.gaps {
        for s in a..=b {
            assert!(s <= total, "gap past the end");
            assert!(!covered[s as usize], "{s} delivered and in a gap");
            covered[s as usize] = true;
        }
    }
    assert!(
        covered[1..].iter().all(|&c| c),
        "a sequence was neither delivered nor reported"
    );
    assert_eq!(sink.ended, Some(total + 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn in_order_no_duplicates_nothing_silently_lost(sc in scenario()) {
        let (sink, total, _) = simulate(&sc, ArbiterConfig::default());
        check_accounting(&sink, total);
    }

    #[test]
    fn with_a_reliable_server_everything_is_recovered(mut sc in scenario()) {
        sc.rtx_loss = 0;
        let (sink, total, arb) = simulate(&sc, ArbiterConfig::default());
        check_accounting(&sink, total);
        prop_assert!(sink.gaps.is_empty(), "gaps {:?}", sink.gaps);
        prop_assert_eq!(arb.stats.delivered, total);
    }

    #[test]
    fn a_small_buffer_still_accounts_for_everything(sc in scenario(), buffer in 1usize..40) {
        let cfg = ArbiterConfig { buffer, ..ArbiterConfig::default() };
        let (sink, total, _) = simulate(&sc, cfg);
        check_accounting(&sink, total);
    }
}
