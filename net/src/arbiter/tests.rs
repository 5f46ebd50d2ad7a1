use super::*;

#[derive(Default)]
struct Log {
    delivered: Vec<u64>,
    gaps: Vec<(u64, u64)>,
    requests: Vec<(u64, u16)>,
    unanswered: u64,
    ended: Option<u64>,
}

impl Output for Log {
    fn deliver(&mut self, seq: u64, _: &[u8]) {
        self.delivered.push(seq);
    }
    fn gap(&mut self, from: u64, to: u64) {
        self.gaps.push((from, to));
    }
    fn request(&mut self, from: u64, count: u16) {
        self.requests.push((from, count));
    }
    fn end_of_session(&mut self, next: u64) {
        self.ended = Some(next);
    }
    fn request_unanswered(&mut self, _: u64, _: u16) {
        self.unanswered += 1;
    }
}

const R: [u8; RECORD] = [0; RECORD];
const MS: u64 = 1_000_000;

fn data(a: &mut Arbiter, now: u64, feed: Feed, seq: u64, n: usize, log: &mut Log) {
    a.on_data(now, feed, seq, std::iter::repeat_n(Some(&R[..]), n), log);
}

#[test]
fn b_fills_a_hole_within_the_window_without_a_request() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 3, &mut log);
    data(&mut a, 0, Feed::A, 6, 2, &mut log); // 4, 5 missing on A
    assert_eq!(log.delivered, vec![1, 2, 3]);
    a.tick(MS, &mut log);
    assert!(log.requests.is_empty());
    data(&mut a, MS, Feed::B, 1, 7, &mut log);
    assert_eq!(log.delivered, (1..=7).collect::<Vec<_>>());
    assert_eq!(a.stats.duplicates, 5);
    assert_eq!(a.stats.gaps_opened, 0);
}

#[test]
fn gap_is_requested_retried_and_filled() {
    let mut a = Arbiter::new(ArbiterConfig {
        request_timeout_ns: 50 * MS,
        ..Default::default()
    });
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 1, &mut log);
    data(&mut a, 0, Feed::A, 5, 1, &mut log);
    a.tick(3 * MS, &mut log);
    assert_eq!(log.requests, vec![(2, 3)]);
    a.tick(20 * MS, &mut log); // before the timeout: nothing new
    assert_eq!(log.requests.len(), 1);
    a.tick(60 * MS, &mut log);
    assert_eq!(log.requests, vec![(2, 3), (2, 3)]);
    assert_eq!((a.stats.requests_unanswered, log.unanswered), (1, 1));
    data(&mut a, 61 * MS, Feed::Retransmit, 2, 3, &mut log);
    assert_eq!(log.delivered, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        (a.stats.gaps_opened, a.stats.gaps_filled, a.stats.recovered),
        (1, 1, 3)
    );
}

#[test]
fn unfillable_gap_is_reported_and_the_stream_goes_on() {
    let cfg = ArbiterConfig {
        gap_timeout_ns: 500 * MS,
        ..Default::default()
    };
    let mut a = Arbiter::new(cfg);
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 10, 1, &mut log);
    data(&mut a, 0, Feed::A, 13, 2, &mut log);
    for t in 1..=49 {
        a.tick(t * 10 * MS, &mut log);
    }
    assert!(log.gaps.is_empty(), "not before the gap timeout");
    a.tick(500 * MS, &mut log);
    assert_eq!(log.gaps, vec![(11, 12)]);
    assert_eq!(log.delivered, vec![10, 13, 14]);
    assert_eq!(a.stats.messages_lost, 2);
}

#[test]
fn heartbeat_reveals_tail_loss_and_end_of_session_is_reported() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 2, &mut log);
    a.on_heartbeat(MS, 5, &mut log); // 3 and 4 were sent but never arrived
    a.tick(4 * MS, &mut log);
    assert_eq!(log.requests, vec![(3, 2)]);
    a.on_end_of_session(5 * MS, 5, &mut log);
    a.on_end_of_session(8 * MS, 5, &mut log); // the sender repeats it
    assert_eq!(log.ended, None, "not before 3 and 4 are settled");
    data(&mut a, 6 * MS, Feed::Retransmit, 3, 2, &mut log);
    assert_eq!(log.ended, Some(5));
}

#[test]
fn a_packet_beyond_the_window_is_held_back_and_never_evicts_a_hole() {
    let cfg = ArbiterConfig {
        buffer: 8,
        gap_timeout_ns: 100 * MS,
        ..Default::default()
    };
    let mut a = Arbiter::new(cfg);
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 1, &mut log);
    data(&mut a, 0, Feed::A, 4, 5, &mut log); // 2, 3 missing; 4..8 wait
    data(&mut a, MS, Feed::A, 9, 4, &mut log); // 9..12 do not fit behind the hole
    assert!(log.gaps.is_empty(), "the hole is not evicted");
    assert_eq!(log.delivered, vec![1]);
    assert_eq!(a.stats.implausible, 1);
    a.tick(100 * MS, &mut log); // the hole's own timeout
    assert_eq!(log.gaps, vec![(2, 3)]);
    assert_eq!(log.delivered, vec![1, 4, 5, 6, 7, 8]);
    data(&mut a, 101 * MS, Feed::B, 9, 4, &mut log); // now within the window
    assert_eq!(log.delivered.last(), Some(&12));
}

#[test]
fn a_far_future_packet_is_ignored_unless_the_stream_confirms_it() {
    let cfg = ArbiterConfig {
        max_jump: 100,
        ..Default::default()
    };
    let mut a = Arbiter::new(cfg);
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 2, &mut log);
    data(&mut a, 0, Feed::A, 3, 1, &mut log); // the stream is established
    data(&mut a, 0, Feed::A, 1_000_000, 1, &mut log); // spoofed
    data(&mut a, 0, Feed::A, 4, 1, &mut log);
    a.on_heartbeat(0, 9_000_000, &mut log); // spoofed
    data(&mut a, 0, Feed::A, 5, 1, &mut log);
    assert_eq!(log.delivered, vec![1, 2, 3, 4, 5]);
    assert_eq!(a.stats.implausible, 2);
    assert_eq!(a.known_end(), 6);
    // The same datagram again (feed B), and again 20 ms later, cannot vouch for itself.
    data(&mut a, MS, Feed::A, 5000, 2, &mut log);
    data(&mut a, MS, Feed::B, 5000, 2, &mut log);
    data(&mut a, 21 * MS, Feed::A, 5000, 2, &mut log);
    assert_eq!(a.known_end(), 6);
    // A real jump (this receiver stalled): the sender's stream keeps coming from there, and
    // nothing from before it, for the confirmation time.
    data(&mut a, 2 * 1000 * MS, Feed::A, 5002, 2, &mut log);
    assert_eq!(a.known_end(), 6);
    data(&mut a, 3100 * MS, Feed::A, 5004, 2, &mut log);
    assert_eq!(a.known_end(), 5006);
    assert_eq!(a.stats.jumps, 1);
    assert!(
        log.gaps.is_empty(),
        "the holes are requested, not given up at once"
    );
}

#[test]
fn a_forged_datagram_inside_max_jump_costs_the_real_stream_nothing() {
    // The reported case: the live sequence + 1 000 000 (inside max_jump, beyond the window).
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 16_980, 20, &mut log);
    data(&mut a, 0, Feed::A, 17_000, 20, &mut log);
    data(&mut a, MS, Feed::A, 17_020 + 1_000_000, 1, &mut log);
    for i in 0..5000u64 {
        data(
            &mut a,
            MS + i * 1000,
            Feed::A,
            17_020 + i * 20,
            20,
            &mut log,
        );
        a.tick(MS + i * 1000, &mut log);
    }
    assert!(log.gaps.is_empty());
    assert_eq!(a.stats.delivered, 40 + 5000 * 20);
    assert_eq!(a.stats.duplicates, 0);
    assert!(log.requests.is_empty());
}

#[test]
fn sequences_near_2_pow_63_do_not_hang_or_skip_a_quiet_stream() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 3, &mut log);
    data(&mut a, 0, Feed::A, 4, 2, &mut log);
    let t = std::time::Instant::now();
    data(&mut a, MS, Feed::A, 1 << 63, 3, &mut log);
    data(&mut a, 21 * MS, Feed::A, 1 << 63, 3, &mut log);
    a.on_heartbeat(30 * MS, 1 << 62, &mut log);
    a.on_heartbeat(1300 * MS, 1 << 62, &mut log);
    data(&mut a, 2000 * MS, Feed::A, u64::MAX - 1, 5, &mut log);
    for i in 0..10 {
        a.tick(2000 * MS + i * 500 * MS, &mut log);
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "bounded work"
    );
    assert!(log.gaps.is_empty() && log.requests.is_empty());
    a.on_heartbeat(7000 * MS, 6, &mut log); // the real sender, quiet
    data(&mut a, 7001 * MS, Feed::A, 6, 2, &mut log);
    assert_eq!(log.delivered, (1..=7).collect::<Vec<_>>());
}

#[test]
fn every_hole_is_reported_within_the_gap_timeout_of_opening_whatever_the_requests() {
    // 40 holes (more than the in-flight cap), opened 10 ms apart; nobody ever answers.
    let cfg = ArbiterConfig {
        gap_timeout_ns: 300 * MS,
        ..Default::default()
    };
    let mut a = Arbiter::new(cfg);
    let mut log = Log::default();
    let mut opened = Vec::new();
    // Checks the gaps a tick at `t` reported against their holes' open times.
    let check = |log: &Log, before: usize, t: u64, opened: &[(u64, u64)]| {
        for &(from, _) in &log.gaps[before..] {
            let (_, at) = opened.iter().find(|o| o.0 == from).unwrap();
            assert!(t - at <= 300 * MS + MS, "hole {from} reported late");
        }
    };
    data(&mut a, 0, Feed::A, 1, 1, &mut log);
    for k in 0..40u64 {
        let t = 10 * MS * (k + 1);
        data(&mut a, t, Feed::A, 3 + 2 * k, 1, &mut log); // hole at 2 + 2k
        opened.push((2 + 2 * k, t));
        let before = log.gaps.len();
        a.tick(t, &mut log);
        check(&log, before, t, &opened);
    }
    let mut t = 400 * MS;
    while t < 1000 * MS {
        let before = log.gaps.len();
        a.tick(t, &mut log);
        check(&log, before, t, &opened);
        t += MS;
    }
    assert_eq!(log.gaps.len(), 40);
    assert!(a.stats.requests_unanswered > 0);
    assert_eq!(a.stats.delivered, 41);
}

#[test]
fn a_malformed_message_leaves_a_hole_that_another_copy_fills() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 1, &mut log);
    let recs = [Some(&R[..]), None, Some(&R[..])];
    a.on_data(0, Feed::A, 2, recs.iter().copied(), &mut log);
    assert_eq!(log.delivered, vec![1, 2]);
    assert_eq!(a.stats.malformed, 1);
    data(&mut a, MS, Feed::B, 2, 3, &mut log);
    assert_eq!(log.delivered, vec![1, 2, 3, 4]);
    // Malformed and never refilled: a reported gap, not a silent skip.
    a.on_data(
        2 * MS,
        Feed::A,
        5,
        [None, Some(&R[..])].into_iter(),
        &mut log,
    );
    a.tick(2000 * MS, &mut log);
    assert_eq!(log.gaps, vec![(5, 5)]);
    assert_eq!(log.delivered, vec![1, 2, 3, 4, 6]);
}

#[test]
fn an_end_of_session_that_contradicts_the_stream_is_ignored() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1, 5, &mut log);
    data(&mut a, 0, Feed::A, 6, 5, &mut log);
    a.on_end_of_session(MS, 5, &mut log); // behind what was delivered
    a.on_end_of_session(MS, 1 << 40, &mut log); // far ahead
    assert_eq!(log.ended, None);
    assert_eq!(a.stats.inconsistent_end, 1);
    data(&mut a, 2 * MS, Feed::A, 11, 2, &mut log);
    a.on_end_of_session(3 * MS, 13, &mut log); // once: not yet believed
    data(&mut a, 4 * MS, Feed::A, 13, 1, &mut log); // the stream goes on: it was a stray
    a.on_end_of_session(5 * MS, 13, &mut log);
    assert_eq!(a.stats.inconsistent_end, 2);
    a.on_end_of_session(5 * MS, 14, &mut log);
    assert_eq!(log.ended, None);
    a.on_end_of_session(8 * MS, 14, &mut log); // repeated by the sender
    assert_eq!(log.ended, Some(14));
}

#[test]
fn late_join_starts_where_it_joins_or_from_one() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::B, 500, 2, &mut log);
    assert!(
        log.delivered.is_empty(),
        "one datagram does not establish a stream"
    );
    data(&mut a, 0, Feed::B, 502, 1, &mut log);
    assert_eq!(log.delivered, vec![500, 501, 502]);
    let mut a = Arbiter::new(ArbiterConfig {
        request_from_start: true,
        ..Default::default()
    });
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 500, 2, &mut log);
    data(&mut a, 0, Feed::A, 502, 2, &mut log);
    a.tick(3 * MS, &mut log);
    assert_eq!(log.requests, vec![(1, 499)]);
}

#[test]
fn a_stray_first_datagram_does_not_capture_the_stream() {
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1 << 50, 1, &mut log); // stray, before the real stream
    data(&mut a, MS, Feed::A, 40, 2, &mut log); // a competing candidate: held back
    data(&mut a, MS, Feed::A, 42, 2, &mut log); // confirms it: the stream starts at 40
    assert!(log.gaps.is_empty());
    a.tick(4 * MS, &mut log);
    assert_eq!(
        log.requests,
        vec![(40, 2)],
        "what was held back is asked for"
    );
    data(&mut a, 5 * MS, Feed::Retransmit, 40, 2, &mut log);
    assert_eq!(log.delivered, vec![40, 41, 42, 43]);
    // Established on a stray after all (two consistent strays): delivery never goes back;
    // the real stream, far behind, is held back and counted.
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 1 << 50, 1, &mut log);
    data(&mut a, 0, Feed::A, (1 << 50) + 1, 1, &mut log);
    let mut t = MS;
    let mut seq = 40;
    while t < 4000 * MS {
        data(&mut a, t, Feed::A, seq, 2, &mut log);
        a.tick(t, &mut log);
        seq += 2;
        t += 100 * MS;
    }
    assert_eq!(log.delivered, vec![1 << 50, (1 << 50) + 1]);
    assert!(a.stats.implausible >= 39);
}

#[test]
fn delivery_never_goes_back() {
    // The fuzzer's case: an end of session anchors, the stream is given up to 3709, then
    // traffic far behind keeps coming for half a minute.
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    a.on_end_of_session(10 * MS, 3701, &mut log);
    a.tick(10 * MS, &mut log);
    a.on_end_of_session(32_392 * MS, 3710, &mut log);
    a.tick(32_392 * MS, &mut log);
    a.tick(34_000 * MS, &mut log);
    data(&mut a, 42_502 * MS, Feed::A, 382, 17, &mut log);
    a.tick(42_502 * MS, &mut log);
    data(&mut a, 69_487 * MS, Feed::A, 2409, 9, &mut log);
    a.tick(69_487 * MS, &mut log);
    assert!(log.delivered.is_empty(), "{:?}", log.delivered);
    assert_eq!(log.gaps, vec![(3701, 3709)]);
}

#[test]
fn sequences_past_2_pow_62_are_never_believed() {
    // The fuzzer's second case: ends of session and data at u64::MAX, repeated for minutes.
    let mut a = Arbiter::new(ArbiterConfig::default());
    let mut log = Log::default();
    data(&mut a, 0, Feed::A, 2570, 21, &mut log);
    data(&mut a, MS, Feed::A, 2591, 22, &mut log);
    let mut t = 2 * MS;
    for _ in 0..20 {
        a.on_end_of_session(t, u64::MAX, &mut log);
        data(&mut a, t, Feed::A, u64::MAX - 5, 10, &mut log);
        a.on_heartbeat(t, MAX_SEQ + 1, &mut log);
        a.tick(t, &mut log);
        t += 60_000 * MS;
    }
    assert_eq!(log.ended, None);
    assert_eq!(log.delivered, (2570..2613).collect::<Vec<_>>());
    assert!(log.gaps.is_empty());
}
