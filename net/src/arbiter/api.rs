//! What an arbiter is given and gives: its configuration, the sink its outputs go to, and its
//! counters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterConfig {
    /// How long a hole may stay open (the other feed may still bring it) before it is requested.
    pub gap_window_ns: u64,
    /// First request timeout; doubled on every retry.
    pub request_timeout_ns: u64,
    /// Retries after the first request (then the hole waits for its gap timeout).
    pub max_retries: u32,
    /// A hole still open this long after it opened is reported lost.
    pub gap_timeout_ns: u64,
    /// Messages held after a hole (the buffer window).
    pub buffer: usize,
    /// Requests outstanding at once.
    pub max_inflight: usize,
    /// Most messages asked for in one request.
    pub max_request: u16,
    /// On late join, request everything from sequence 1 instead of starting where we joined.
    pub request_from_start: bool,
    /// A packet more than this far past everything known needs confirmation (see `confirm_ns`).
    pub max_jump: u64,
    /// How long traffic beyond the window must keep coming, with nothing from the current
    /// stream in between, before the receiver believes the sender really jumped ahead. 0
    /// trusts the input: the first packet establishes the stream and every jump is followed at
    /// once (recorded files, where nobody forges and samples skip ahead).
    pub confirm_ns: u64,
}

impl Default for ArbiterConfig {
    /// Defaults for a trading application on a colo LAN (round trips of tens of µs): A/B skew
    /// up to 2 ms is absorbed without a request; a request is retried after 20, 40, 80, 160,
    /// 320 ms; a hole is given up 1 s after it opened, so no message waits longer than that
    /// behind a loss (docs/RELIABILITY.md).
    fn default() -> Self {
        ArbiterConfig {
            gap_window_ns: 2_000_000,
            request_timeout_ns: 20_000_000,
            max_retries: 4,
            gap_timeout_ns: 1_000_000_000,
            buffer: 1 << 16,
            max_inflight: 16,
            max_request: 1000,
            request_from_start: false,
            max_jump: 1 << 20,
            confirm_ns: 3_000_000_000,
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
    /// A request for `count` messages from `from` timed out with its first message still
    /// missing (the server is unreachable, refuses, rate-limits, or its answer was lost).
    fn request_unanswered(&mut self, _from: u64, _count: u16) {}
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
    /// Requests that timed out with their first message still missing.
    pub requests_unanswered: u64,
    /// New messages that arrived by retransmission.
    pub recovered: u64,
    /// Messages that arrived before the delivery point and had to wait.
    pub buffered: u64,
    /// Packets or heartbeats held back because they jumped beyond the window and nothing had
    /// confirmed the jump (a stray, forged or corrupt datagram, or a sender far ahead).
    pub implausible: u64,
    /// Jumps that were confirmed and followed.
    pub jumps: u64,
    /// Messages the caller flagged malformed: their sequences stay holes.
    pub malformed: u64,
    /// Messages longer than `RECORD` that could not wait in the buffer.
    pub oversized: u64,
    /// End-of-session packets ignored because they contradict the stream.
    pub inconsistent_end: u64,
}

impl std::ops::AddAssign for ArbiterStats {
    /// Sums counters (several groups' statistics into one).
    fn add_assign(&mut self, o: ArbiterStats) {
        self.received += o.received;
        self.delivered += o.delivered;
        self.duplicates += o.duplicates;
        self.gaps_opened += o.gaps_opened;
        self.gaps_filled += o.gaps_filled;
        self.gaps_lost += o.gaps_lost;
        self.messages_lost += o.messages_lost;
        self.requests += o.requests;
        self.requests_unanswered += o.requests_unanswered;
        self.recovered += o.recovered;
        self.buffered += o.buffered;
        self.implausible += o.implausible;
        self.jumps += o.jumps;
        self.malformed += o.malformed;
        self.oversized += o.oversized;
        self.inconsistent_end += o.inconsistent_end;
    }
}
