//! The MoldUDP64 sequenced-stream receiver: A/B arbitration and gap recovery for one stream,
//! as a pure state machine: no sockets, no clock of its own (times are passed in), outputs
//! through a sink. So it can be property tested. The subscriber SDK runs one per group; the feed
//! handler runs one on the exchange's feeds, so that ITCH messages reach normalization strictly
//! in exchange sequence order.
//!
//! - The first copy of each sequence wins; later copies (from either feed, or a retransmission)
//!   are dropped as duplicates.
//! - A hole becomes a gap only when it has stayed open for `gap_window_ns` (both feeds missed it).
//!   Then the missing range is requested, with timeout, exponential back-off and a cap on
//!   requests in flight.
//! - Messages after a hole wait in a bounded buffer and are released in order; when the buffer
//!   would overflow, or a gap stays unfilled for `gap_timeout_ns`, the hole is reported as an
//!   explicit `gap(from, to)` and the stream continues. Nothing is ever skipped silently.
//! - Heartbeats and end of session advance the known end (revealing tail loss).

/// The largest message the receiver can hold while it waits for a hole to fill: a tickcast
/// record (64 bytes) and every ITCH 5.0 message (at most 50) fit. A longer message is delivered
/// when it arrives in order; one that would have to wait is counted (`oversized`) and left as a
/// hole, to be filled by the other feed or a retransmission arriving in order, or reported lost.
pub const RECORD: usize = 64;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    A,
    B,
    Retransmit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterConfig {
    /// How long a hole may stay open (the other feed may still bring it) before it is a gap.
    pub gap_window_ns: u64,
    /// First request timeout; doubled on every retry.
    pub request_timeout_ns: u64,
    pub max_retries: u32,
    /// A gap still open this long after it opened is reported lost.
    pub gap_timeout_ns: u64,
    /// Messages held after a hole.
    pub buffer: usize,
    /// Requests outstanding at once.
    pub max_inflight: usize,
    /// Most messages asked for in one request.
    pub max_request: u16,
    /// On late join, request everything from sequence 1 instead of starting where we joined.
    pub request_from_start: bool,
    /// A packet more than this far past everything known is believed only when the stream
    /// confirms it (a spoofed or corrupt sequence must not open a giant gap).
    pub max_jump: u64,
}

impl Default for ArbiterConfig {
    fn default() -> Self {
        ArbiterConfig {
            gap_window_ns: 2_000_000,
            request_timeout_ns: 50_000_000,
            max_retries: 6,
            gap_timeout_ns: 3_000_000_000,
            buffer: 1 << 16,
            max_inflight: 16,
            max_request: 1000,
            request_from_start: false,
            max_jump: 1 << 20,
        }
    }
}

/// What the state machine asks its owner to do.
pub trait Output {
    /// Deliver message `seq` (strictly increasing, no repeats).
    fn deliver(&mut self, seq: u64, record: &[u8]);
    /// Messages `from..=to` are lost; delivery continues after `to`.
    fn gap(&mut self, from: u64, to: u64);
    /// Send a re-request for `count` messages from `from`.
    fn request(&mut self, from: u64, count: u16);
    /// The session ended; every message before `next` has been delivered or reported lost.
    fn end_of_session(&mut self, next: u64);
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArbiterStats {
    /// Message copies received (all feeds).
    pub received: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// Holes that outlived the window and were requested.
    pub gaps_opened: u64,
    /// Of those, filled (by retransmission or a late copy).
    pub gaps_filled: u64,
    /// Gaps reported lost, and the messages in them.
    pub gaps_lost: u64,
    pub messages_lost: u64,
    pub requests: u64,
    /// New messages that arrived by retransmission.
    pub recovered: u64,
    /// Messages that arrived before the delivery point and had to wait.
    pub buffered: u64,
    /// Packets ignored because their sequence jumped implausibly far ahead (a spoofed or
    /// corrupt datagram); a real jump is confirmed by the next packet and then accepted.
    pub implausible: u64,
    /// Messages longer than `RECORD` that could not wait in the buffer.
    pub oversized: u64,
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    from: u64,
    to: u64,
    opened_ns: u64,
    sent_ns: u64,
    tries: u32,
}

pub struct Arbiter {
    cfg: ArbiterConfig,
    /// Next sequence to deliver; 0 before the first packet.
    next: u64,
    /// One past the highest sequence known to exist.
    known_end: u64,
    /// When `known_end` last moved past what had arrived (heartbeat or end of session).
    tail_since_ns: u64,
    slots: Vec<[u8; RECORD]>,
    lens: Vec<u8>,
    present: Vec<bool>,
    arrived_ns: Vec<u64>,
    inflight: Vec<Inflight>,
    ended: bool,
    end_reported: bool,
    /// An implausible jump seen once: (first sequence, next after it). A second packet that
    /// continues it confirms the jump.
    jump: Option<(u64, u64, u64)>,
    pub stats: ArbiterStats,
}

impl Arbiter {
    pub fn new(cfg: ArbiterConfig) -> Arbiter {
        let cap = cfg.buffer.max(1);
        Arbiter {
            cfg,
            next: 0,
            known_end: 0,
            tail_since_ns: 0,
            slots: vec![[0u8; RECORD]; cap],
            lens: vec![0; cap],
            present: vec![false; cap],
            arrived_ns: vec![0; cap],
            inflight: Vec::with_capacity(cfg.max_inflight.max(1)),
            ended: false,
            end_reported: false,
            jump: None,
            stats: ArbiterStats::default(),
        }
    }

    /// Next sequence to be delivered (0 before the first packet).
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    pub fn known_end(&self) -> u64 {
        self.known_end
    }

    pub fn has_ended(&self) -> bool {
        self.end_reported
    }

    /// Whether a hole is open (timers need to run).
    pub fn pending(&self) -> bool {
        self.known_end > self.next
    }

    #[inline]
    fn slot(&self, seq: u64) -> usize {
        (seq % self.slots.len() as u64) as usize
    }

    fn start(&mut self, seq: u64, now: u64) {
        if self.next == 0 {
            self.next = if self.cfg.request_from_start {
                1
            } else {
                seq.max(1)
            };
            self.known_end = self.next;
            self.tail_since_ns = now;
        }
    }

    /// Whether a packet at `seq` (next after it: `end`) is believable. A jump of more than
    /// `max_jump` past everything known is believed only when another packet at or past
    /// it arrives at least a gap window later (so the same datagram on feed B, or a burst of
    /// copies, cannot vouch for itself).
    fn plausible(&mut self, now: u64, seq: u64, end: u64) -> bool {
        let cap = self.cfg.max_jump;
        if self.next == 0 || seq <= self.known_end.saturating_add(cap) {
            self.jump = None;
            return true;
        }
        if let Some((first, after, at)) = self.jump {
            if seq >= first && seq <= after.saturating_add(cap) {
                if now.saturating_sub(at) >= self.cfg.gap_window_ns {
                    self.jump = None;
                    return true;
                }
                self.stats.implausible += 1;
                return false;
            }
        }
        self.jump = Some((seq, end, now));
        self.stats.implausible += 1;
        false
    }

    /// A data packet's messages, first at `seq`.
    pub fn on_data<'a>(
        &mut self,
        now: u64,
        feed: Feed,
        seq: u64,
        messages: impl Iterator<Item = &'a [u8]> + Clone,
        out: &mut impl Output,
    ) {
        if seq == 0 {
            self.stats.implausible += 1;
            return;
        }
        if !self.plausible(now, seq, seq + messages.clone().count() as u64) {
            return;
        }
        self.start(seq, now);
        for (s, rec) in (seq..).zip(messages) {
            self.stats.received += 1;
            self.one(now, feed, s, rec, out);
        }
        self.after_progress(out);
    }

    fn one(&mut self, now: u64, feed: Feed, s: u64, rec: &[u8], out: &mut impl Output) {
        if s < self.next {
            self.stats.duplicates += 1;
            return;
        }
        let cap = self.slots.len() as u64;
        if s >= self.next + cap {
            // The buffer cannot hold it: give up the oldest holes until it fits.
            self.force_to(s + 1 - cap, s, out);
        }
        if s == self.next {
            if feed == Feed::Retransmit {
                self.stats.recovered += 1;
            }
            self.stats.delivered += 1;
            out.deliver(s, rec);
            self.next += 1;
            self.known_end = self.known_end.max(self.next);
            self.drain(out);
            return;
        }
        let i = self.slot(s);
        if self.present[i] {
            self.stats.duplicates += 1;
            return;
        }
        if rec.len() > RECORD {
            self.stats.oversized += 1;
            if s + 1 > self.known_end {
                self.known_end = s + 1;
            }
            return;
        }
        if feed == Feed::Retransmit {
            self.stats.recovered += 1;
        }
        self.present[i] = true;
        self.arrived_ns[i] = now;
        self.slots[i][..rec.len()].copy_from_slice(rec);
        self.lens[i] = rec.len() as u8;
        self.stats.buffered += 1;
        if s + 1 > self.known_end {
            self.known_end = s + 1;
        }
    }

    /// Delivers buffered messages from `next` while they are contiguous.
    fn drain(&mut self, out: &mut impl Output) {
        loop {
            let i = self.slot(self.next);
            if self.next >= self.known_end || !self.present[i] {
                return;
            }
            self.present[i] = false;
            self.stats.delivered += 1;
            let len = self.lens[i] as usize;
            out.deliver(self.next, &self.slots[i][..len]);
            self.next += 1;
        }
    }

    /// Whether `seq` is buffered.
    #[inline]
    fn has(&self, seq: u64) -> bool {
        seq >= self.next
            && seq < self.known_end
            && seq < self.next + self.slots.len() as u64
            && self.present[self.slot(seq)]
    }

    /// Advances delivery to at least `target`, reporting each hole on the way as lost whole
    /// (a hole runs to the next buffered message, and never past `upto`).
    fn force_to(&mut self, target: u64, upto: u64, out: &mut impl Output) {
        while self.next < target {
            if self.has(self.next) {
                self.drain(out);
                continue;
            }
            let from = self.next;
            let mut to = from;
            while to + 1 < upto && !self.has(to + 1) {
                to += 1;
            }
            self.lose(from, to, out);
            self.drain(out);
        }
    }

    fn lose(&mut self, from: u64, to: u64, out: &mut impl Output) {
        out.gap(from, to);
        self.stats.gaps_lost += 1;
        self.stats.messages_lost += to - from + 1;
        self.next = to + 1;
        self.known_end = self.known_end.max(self.next);
        self.inflight.retain(|f| f.to > self.next);
    }

    /// Drops requests whose range is now complete.
    fn after_progress(&mut self, out: &mut impl Output) {
        let next = self.next;
        let (present, slots) = (&self.present, self.slots.len() as u64);
        let mut filled = 0;
        self.inflight.retain(|f| {
            let done = (f.from.max(next)..f.to).all(|s| present[(s % slots) as usize]);
            if done {
                filled += 1;
            }
            !done
        });
        self.stats.gaps_filled += filled;
        self.check_end(out);
    }

    fn check_end(&mut self, out: &mut impl Output) {
        if self.ended && !self.end_reported && self.next >= self.known_end {
            self.end_reported = true;
            out.end_of_session(self.next);
        }
    }

    /// The input has ended for good (the end of a file): every hole up to the known end is
    /// reported lost and everything buffered is delivered, in order.
    pub fn flush(&mut self, out: &mut impl Output) {
        if self.next == 0 {
            return;
        }
        let end = self.known_end;
        self.force_to(end, end, out);
        self.inflight.clear();
        self.check_end(out);
    }

    /// A heartbeat: `next_seq` is the sender's next sequence.
    pub fn on_heartbeat(&mut self, now: u64, next_seq: u64, out: &mut impl Output) {
        if next_seq == 0 || !self.plausible(now, next_seq, next_seq) {
            return;
        }
        if self.next == 0 {
            // Late join on a quiet stream: start at what comes next.
            self.start(next_seq, now);
        }
        if next_seq > self.known_end {
            self.known_end = next_seq;
            self.tail_since_ns = now;
        }
        self.check_end(out);
    }

    pub fn on_end_of_session(&mut self, now: u64, next_seq: u64, out: &mut impl Output) {
        self.on_heartbeat(now, next_seq, out);
        if self.next != 0 {
            self.ended = true;
        }
        self.check_end(out);
    }

    /// Runs the timers: opens gaps after the window, sends and retries requests, reports gaps
    /// that cannot be filled.
    pub fn tick(&mut self, now: u64, out: &mut impl Output) {
        if self.next == 0 || self.next >= self.known_end {
            self.check_end(out);
            return;
        }
        let cap = self.slots.len() as u64;
        let mut s = self.next;
        let mut holes = 0;
        let end = self.known_end.min(self.next + cap);
        while s < end && holes < self.cfg.max_inflight {
            if self.present[self.slot(s)] {
                s += 1;
                continue;
            }
            // A hole [from, to): it is as old as the first message after it (or the tail news).
            let from = s;
            while s < end && !self.present[self.slot(s)] {
                s += 1;
            }
            let to = s;
            holes += 1;
            let since = if to < end {
                self.arrived_ns[self.slot(to)]
            } else {
                self.tail_since_ns
            };
            if now.saturating_sub(since) < self.cfg.gap_window_ns {
                continue;
            }
            let first = from == self.next;
            match self
                .inflight
                .iter()
                .position(|f| f.from <= from && from < f.to)
            {
                None => {
                    if self.inflight.len() >= self.cfg.max_inflight {
                        continue;
                    }
                    let count = (to - from).min(u64::from(self.cfg.max_request)) as u16;
                    out.request(from, count);
                    self.stats.requests += 1;
                    self.stats.gaps_opened += 1;
                    self.inflight.push(Inflight {
                        from,
                        to: from + u64::from(count),
                        opened_ns: now,
                        sent_ns: now,
                        tries: 1,
                    });
                }
                Some(k) => {
                    let f = self.inflight[k];
                    let timeout = self
                        .cfg
                        .request_timeout_ns
                        .saturating_mul(1 << (f.tries - 1).min(16));
                    let timed_out = now.saturating_sub(f.sent_ns) >= timeout;
                    let expired = now.saturating_sub(f.opened_ns) >= self.cfg.gap_timeout_ns
                        || (f.tries > self.cfg.max_retries && timed_out);
                    if expired {
                        if first {
                            self.lose(from, to - 1, out);
                            self.drain(out);
                            self.after_progress(out);
                            return;
                        }
                        continue; // reported once it reaches the front
                    }
                    if !timed_out {
                        continue;
                    }
                    let count = (to - from).min(u64::from(self.cfg.max_request)) as u16;
                    out.request(from, count);
                    self.stats.requests += 1;
                    self.inflight[k] = Inflight {
                        from,
                        to: from + u64::from(count),
                        sent_ns: now,
                        tries: f.tries + 1,
                        ..f
                    };
                }
            }
        }
        // A front hole that never got a request slot still ends after the gap timeout.
        let i = self.slot(self.next);
        if !self.present[i]
            && !self
                .inflight
                .iter()
                .any(|f| f.from <= self.next && self.next < f.to)
        {
            let next_present = (self.next..end).find(|&q| self.present[self.slot(q)]);
            let since = next_present.map_or(self.tail_since_ns, |q| self.arrived_ns[self.slot(q)]);
            if now.saturating_sub(since) >= self.cfg.gap_timeout_ns {
                let to = next_present.unwrap_or(end);
                self.lose(self.next, to - 1, out);
                self.drain(out);
            }
        }
        self.after_progress(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log {
        delivered: Vec<u64>,
        gaps: Vec<(u64, u64)>,
        requests: Vec<(u64, u16)>,
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
    }

    const R: [u8; RECORD] = [0; RECORD];
    const MS: u64 = 1_000_000;

    fn data(a: &mut Arbiter, now: u64, feed: Feed, seq: u64, n: usize, log: &mut Log) {
        a.on_data(now, feed, seq, std::iter::repeat_n(&R[..], n), log);
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
        let mut a = Arbiter::new(ArbiterConfig::default());
        let mut log = Log::default();
        data(&mut a, 0, Feed::A, 1, 1, &mut log);
        data(&mut a, 0, Feed::A, 5, 1, &mut log);
        a.tick(3 * MS, &mut log);
        assert_eq!(log.requests, vec![(2, 3)]);
        a.tick(20 * MS, &mut log); // before the timeout: nothing new
        assert_eq!(log.requests.len(), 1);
        a.tick(60 * MS, &mut log);
        assert_eq!(log.requests, vec![(2, 3), (2, 3)]);
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
        for t in 1..=60 {
            a.tick(t * 10 * MS, &mut log);
        }
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
        assert_eq!(log.ended, None, "not before 3 and 4 are settled");
        data(&mut a, 6 * MS, Feed::Retransmit, 3, 2, &mut log);
        assert_eq!(log.ended, Some(5));
    }

    #[test]
    fn overflowing_buffer_releases_in_order_with_an_explicit_gap() {
        let cfg = ArbiterConfig {
            buffer: 8,
            ..Default::default()
        };
        let mut a = Arbiter::new(cfg);
        let mut log = Log::default();
        data(&mut a, 0, Feed::A, 1, 1, &mut log);
        data(&mut a, 0, Feed::A, 4, 10, &mut log); // 2, 3 missing; 4..13 cannot all wait
        assert_eq!(log.gaps, vec![(2, 3)]);
        assert_eq!(log.delivered, vec![1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
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
        data(&mut a, 0, Feed::A, 1_000_000, 1, &mut log); // spoofed
        data(&mut a, 0, Feed::A, 3, 2, &mut log);
        a.on_heartbeat(0, 9_000_000, &mut log); // spoofed
        data(&mut a, 0, Feed::A, 5, 1, &mut log);
        assert_eq!(log.delivered, vec![1, 2, 3, 4, 5]);
        assert_eq!(a.stats.implausible, 2);
        assert_eq!(a.known_end(), 6);
        // The same datagram again (feed B) cannot vouch for itself.
        data(&mut a, MS, Feed::A, 5000, 2, &mut log);
        data(&mut a, MS, Feed::B, 5000, 2, &mut log);
        assert_eq!(a.known_end(), 6);
        // A real jump (the subscriber stalled): the stream, a little later, confirms it.
        data(&mut a, 5 * MS, Feed::A, 5002, 2, &mut log);
        assert_eq!(a.known_end(), 5004);
    }

    #[test]
    fn late_join_starts_where_it_joins_or_from_one() {
        let mut a = Arbiter::new(ArbiterConfig::default());
        let mut log = Log::default();
        data(&mut a, 0, Feed::B, 500, 2, &mut log);
        assert_eq!(log.delivered, vec![500, 501]);
        let mut a = Arbiter::new(ArbiterConfig {
            request_from_start: true,
            ..Default::default()
        });
        let mut log = Log::default();
        data(&mut a, 0, Feed::A, 500, 2, &mut log);
        a.tick(3 * MS, &mut log);
        assert_eq!(log.requests, vec![(1, 499)]);
    }
}
