//! The MoldUDP64 sequenced-stream receiver: A/B arbitration and gap recovery for one stream,
//! as a pure state machine: no sockets, no clock of its own (times are passed in), outputs
//! through a sink. So it can be property tested. The subscriber SDK runs one per group; the feed
//! handler runs one on the exchange's feeds, so that ITCH messages reach normalization strictly
//! in exchange sequence order.
//!
//! - The first valid copy of each sequence wins; later copies (from either feed, or a
//!   retransmission) are dropped as duplicates. A malformed message (`None` from the caller's
//!   validation) is not a copy: its sequence stays a hole, to be filled or reported.
//! - A hole's age counts from when it *opened*: when the stream first showed that its sequences
//!   exist (a later message or a heartbeat arrived). Open times never decrease along the
//!   sequence, so the front hole is always the oldest.
//! - A hole older than `gap_window_ns` (the other feed did not fill it) is requested, with a
//!   timeout doubling on each retry and at most `max_inflight` requests out; holes beyond that
//!   cap age all the same.
//! - **Every hole is reported lost (`gap(from, to)`) at most `gap_timeout_ns` after it opened**,
//!   however many holes are open and whatever happens to the requests; delivery continues at
//!   once. Messages after a hole wait in a bounded buffer and are released in order.
//! - **Far-ahead input is not believed on its own.** A packet or heartbeat beyond the buffer
//!   window (or more than `max_jump` past everything known) is held back: it is believed only
//!   when traffic continuing it keeps coming for `confirm_ns` with nothing from the current
//!   stream in between (the sender really moved on, e.g. after this receiver stalled). A stray or
//!   forged datagram therefore never makes the receiver declare lost what the real stream still
//!   delivers, never evicts holes, and costs bounded work (no loop runs per sequence number).
//! - End of session is believed only when consistent with the stream (its next sequence at or
//!   past everything known and within the window).
//! - **The stream is established by two consistent inputs**, not one: the first packet or
//!   heartbeat anchors the receiver provisionally (its messages wait); a second input that
//!   moves the stream forward within the window (or repeats it a gap window later) confirms it,
//!   and delivery starts. A competing candidate replaces the anchor only if it is confirmed
//!   first. Once established, delivery never goes back: input far *behind* the stream (more than
//!   the window) is held back as implausible, however long it keeps coming — every consumer
//!   relies on strictly increasing sequences. (A receiver established on forged traffic stays
//!   there, counting the real stream as implausible: name the session, use SSM.)

use std::collections::VecDeque;

mod api;
mod timers;
mod trust;
pub use api::{ArbiterConfig, ArbiterStats, Output};

/// The largest message the receiver can hold while it waits for a hole to fill: a tickcast
/// record (64 bytes) and every ITCH 5.0 message (at most 50) fit. A longer message is delivered
/// when it arrives in order; one that would have to wait is counted (`oversized`) and left as a
/// hole, to be filled by the other feed or a retransmission arriving in order, or reported lost.
pub const RECORD: usize = 64;

/// The highest sequence the receiver believes at all: MoldUDP64 sequences are u64, but no
/// session comes near 2^62 (a million messages a second for 146 000 years); anything beyond is
/// a stray or a forgery, and keeping clear of it keeps every sum below u64::MAX.
pub const MAX_SEQ: u64 = 1 << 62;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    A,
    B,
    Retransmit,
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    from: u64,
    to: u64,
    sent_ns: u64,
    tries: u32,
}

/// A far-away sequence (ahead or behind) seen but not yet believed.
#[derive(Debug, Clone, Copy)]
struct Jump {
    first: u64,
    end: u64,
    since_ns: u64,
}

/// The provisional anchor: the first input, not yet confirmed by a second.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    end: u64,
    at_ns: u64,
    /// History from sequence 1 that the buffer cannot hold (`request_from_start` on a late
    /// join): reported lost once the stream is established.
    lost_history: Option<(u64, u64)>,
}

pub struct Arbiter {
    cfg: ArbiterConfig,
    /// Next sequence to deliver; 0 before the first packet.
    next: u64,
    /// One past the highest sequence known to exist.
    known_end: u64,
    slots: Vec<[u8; RECORD]>,
    lens: Vec<u8>,
    present: Vec<bool>,
    /// (first sequence, when the stream first showed it exists), sequences ascending, times
    /// non-decreasing: the open time of any missing sequence. Preallocated to the window.
    opened: VecDeque<(u64, u64)>,
    inflight: Vec<Inflight>,
    ended: bool,
    end_reported: bool,
    jump: Option<Jump>,
    /// `Some` until the stream is established (nothing is delivered before).
    anchor: Option<Anchor>,
    /// An end of session seen once: (its next sequence, when). Believed when repeated a gap
    /// window later with nothing beyond it in between (the sender repeats it).
    end_claim: Option<(u64, u64)>,
    /// Timers do their scan at most this often (bounded work however often `tick` is called).
    next_scan_ns: u64,
    pub stats: ArbiterStats,
}

impl Arbiter {
    pub fn new(cfg: ArbiterConfig) -> Arbiter {
        let cap = cfg.buffer.max(1);
        Arbiter {
            cfg,
            next: 0,
            known_end: 0,
            slots: vec![[0u8; RECORD]; cap],
            lens: vec![0; cap],
            present: vec![false; cap],
            opened: VecDeque::with_capacity(cap + 2),
            inflight: Vec::with_capacity(cfg.max_inflight.max(1)),
            ended: false,
            end_reported: false,
            jump: None,
            anchor: None,
            end_claim: None,
            next_scan_ns: 0,
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

    pub fn config(&self) -> &ArbiterConfig {
        &self.cfg
    }

    #[inline]
    fn cap(&self) -> u64 {
        self.slots.len() as u64
    }

    #[inline]
    fn slot(&self, seq: u64) -> usize {
        (seq % self.cap()) as usize
    }

    /// Anchors the stream provisionally at the first input `[seq, end)`.
    fn start(&mut self, seq: u64, end: u64, now: u64) {
        let cap = self.cap();
        let mut lost_history = None;
        self.next = if !self.cfg.request_from_start {
            seq.max(1)
        } else if end <= cap + 1 {
            1
        } else {
            // Only the buffer's worth of history can be recovered.
            let from = end - cap;
            lost_history = Some((1, from - 1));
            from
        };
        self.known_end = self.next;
        self.opened.clear();
        self.opened.push_back((self.next, now));
        self.present.iter_mut().for_each(|p| *p = false);
        self.inflight.clear();
        self.jump = None;
        self.anchor = Some(Anchor {
            end,
            at_ns: now,
            lost_history,
        });
    }

    /// Moves the known end to `end` (sequences up to it exist), noting when they opened.
    fn extend(&mut self, end: u64, now: u64) {
        if end <= self.known_end {
            return;
        }
        if self.end_claim.is_some_and(|(seq, _)| end > seq) {
            // The stream goes on past a claimed end: the claim was not the sender's.
            self.end_claim = None;
            if !self.end_reported {
                self.ended = false;
            }
        }
        // Merge with the last entry when it has the same time; the deque never outgrows the
        // window because entries below `next` are dropped as delivery moves.
        match self.opened.back() {
            Some(&(_, t)) if t >= now => {}
            _ => {
                if self.opened.len() == self.opened.capacity() {
                    // Cannot happen within the window; keep the older time (a hole is then
                    // reported early rather than late, never with an allocation).
                } else {
                    self.opened.push_back((self.known_end, now));
                }
            }
        }
        self.known_end = end;
    }

    /// When the stream first showed `seq` exists.
    fn opened_at(&self, seq: u64) -> u64 {
        let i = self.opened.partition_point(|&(s, _)| s <= seq);
        self.opened.get(i.saturating_sub(1)).map_or(0, |&(_, t)| t)
    }

    /// Drops open-time entries wholly below `next`.
    fn trim_opened(&mut self) {
        while self.opened.len() >= 2 && self.opened[1].0 <= self.next {
            self.opened.pop_front();
        }
    }

    /// A data packet's messages, first at `seq`. `None` marks a message the caller found
    /// malformed: its sequence is not filled by it.
    pub fn on_data<'a>(
        &mut self,
        now: u64,
        feed: Feed,
        seq: u64,
        messages: impl Iterator<Item = Option<&'a [u8]>> + Clone,
        out: &mut impl Output,
    ) {
        let n = messages.clone().count() as u64;
        if seq == 0 || n == 0 {
            if seq == 0 {
                self.stats.implausible += 1;
            }
            return;
        }
        let end = seq.saturating_add(n);
        if !self.plausible(now, seq, end, out) {
            return;
        }
        // A confirmed jump: the buffer cannot span it; everything before the window is
        // reported lost at once (bounded work: holes are found by a scan of the buffer).
        let cap = self.cap();
        if self.established() && end > self.next.saturating_add(cap) {
            // Trusted input reports the whole skipped range at once; otherwise the part that
            // still fits the window stays a hole to be requested.
            let target = if self.cfg.confirm_ns == 0 && seq >= self.known_end {
                seq.max(end - cap)
            } else {
                end - cap
            };
            self.force_to(target, out);
        }
        self.extend(end, now);
        for (s, rec) in (seq..).zip(messages) {
            self.stats.received += 1;
            match rec {
                Some(r) => self.one(feed, s, r, out),
                None => self.stats.malformed += 1,
            }
        }
        self.after_progress(out);
    }

    fn one(&mut self, feed: Feed, s: u64, rec: &[u8], out: &mut impl Output) {
        if s < self.next {
            self.stats.duplicates += 1;
            return;
        }
        if s == self.next && self.anchor.is_none() {
            if feed == Feed::Retransmit {
                self.stats.recovered += 1;
            }
            self.stats.delivered += 1;
            out.deliver(s, rec);
            self.next += 1;
            self.drain(out);
            return;
        }
        if s >= self.next.saturating_add(self.cap()) {
            // No room before the stream is established: asked for again later.
            return;
        }
        let i = self.slot(s);
        if self.present[i] {
            self.stats.duplicates += 1;
            return;
        }
        if rec.len() > RECORD {
            self.stats.oversized += 1;
            return;
        }
        if feed == Feed::Retransmit {
            self.stats.recovered += 1;
        }
        self.present[i] = true;
        self.slots[i][..rec.len()].copy_from_slice(rec);
        self.lens[i] = rec.len() as u8;
        self.stats.buffered += 1;
    }

    /// Delivers buffered messages from `next` while they are contiguous.
    fn drain(&mut self, out: &mut impl Output) {
        if self.anchor.is_some() {
            return;
        }
        while self.next < self.known_end {
            let i = self.slot(self.next);
            if !self.present[i] {
                break;
            }
            self.present[i] = false;
            self.stats.delivered += 1;
            let len = self.lens[i] as usize;
            out.deliver(self.next, &self.slots[i][..len]);
            self.next += 1;
        }
        self.trim_opened();
    }

    /// The first buffered sequence after `from` (exclusive), or `known_end`: a scan of at most
    /// the buffer, never a loop over sequence numbers.
    fn next_present(&self, from: u64) -> u64 {
        let end = self.known_end.min(self.next.saturating_add(self.cap()));
        let mut s = from + 1;
        while s < end {
            if self.present[self.slot(s)] {
                return s;
            }
            s += 1;
        }
        self.known_end
    }

    /// Advances delivery to at least `target`, reporting each hole on the way as lost whole.
    fn force_to(&mut self, target: u64, out: &mut impl Output) {
        while self.next < target {
            if self.next < self.known_end && self.present[self.slot(self.next)] {
                self.drain(out);
                continue;
            }
            // The hole runs to the next buffered message, or (nothing buffered) to the target.
            let p = if self.next < self.known_end {
                self.next_present(self.next)
            } else {
                self.known_end
            };
            let to = if p < self.known_end {
                p.min(target)
            } else {
                target
            };
            self.lose(self.next, to - 1, out);
            self.drain(out);
        }
    }

    fn lose(&mut self, from: u64, to: u64, out: &mut impl Output) {
        out.gap(from, to);
        self.stats.gaps_lost += 1;
        self.stats.messages_lost += to - from + 1;
        // Slots of the skipped range may hold nothing: they were holes.
        self.next = to + 1;
        if self.known_end < self.next {
            self.extend(self.next, self.opened.back().map_or(0, |e| e.1));
        }
        let next = self.next;
        self.inflight.retain(|f| f.to > next);
        self.trim_opened();
    }

    /// Drops requests whose range is now complete.
    fn after_progress(&mut self, out: &mut impl Output) {
        let next = self.next;
        let (present, cap) = (&self.present, self.slots.len() as u64);
        let mut filled = 0;
        self.inflight.retain(|f| {
            let done = (f.from.max(next)..f.to).all(|s| present[(s % cap) as usize]);
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

    /// A heartbeat: `next_seq` is the sender's next sequence.
    pub fn on_heartbeat(&mut self, now: u64, next_seq: u64, out: &mut impl Output) {
        // A heartbeat says that everything before `next_seq` exists (and nothing after yet).
        if next_seq == 0 || !self.plausible(now, next_seq, next_seq, out) {
            return;
        }
        let cap = self.cap();
        if self.established() && next_seq > self.next.saturating_add(cap) {
            self.force_to(next_seq - cap, out);
        }
        self.extend(next_seq, now);
        self.check_end(out);
    }

    /// End of session: believed only when consistent with the stream (its next sequence at or
    /// past everything known, and plausible like any heartbeat).
    pub fn on_end_of_session(&mut self, now: u64, next_seq: u64, out: &mut impl Output) {
        if self.established() && next_seq < self.known_end {
            self.stats.inconsistent_end += 1;
            return;
        }
        let implausible = self.stats.implausible;
        self.on_heartbeat(now, next_seq, out);
        if self.stats.implausible > implausible || next_seq == 0 {
            return;
        }
        // Before the stream is established it counts as a heartbeat only, and once established
        // it is believed when repeated: the sender repeats end of session, and a stray one must
        // not end a stream that goes on.
        if !self.established() {
            return;
        }
        match self.end_claim {
            Some((seq, at))
                if seq == next_seq && now.saturating_sub(at) >= self.cfg.gap_window_ns =>
            {
                self.ended = true;
            }
            Some((seq, _)) if seq == next_seq => {}
            _ => self.end_claim = Some((next_seq, now)),
        }
        self.check_end(out);
    }

    /// The input has ended for good (the end of a file): every hole up to the known end is
    /// reported lost and everything buffered is delivered, in order.
    pub fn flush(&mut self, out: &mut impl Output) {
        if self.next == 0 {
            return;
        }
        self.establish(out);
        let end = self.known_end;
        self.force_to(end, out);
        self.inflight.clear();
        self.check_end(out);
    }
}

#[cfg(test)]
mod tests;
