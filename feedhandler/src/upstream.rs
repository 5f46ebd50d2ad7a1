//! The exchange's MoldUDP64 stream as the feed handler sees it: the one sequenced-stream
//! receiver of `net` (first copy of feeds A and B wins, holes requested from the exchange's
//! re-request server, later messages held until the hole is filled or declared lost), plus the
//! session lock. Messages leave it strictly in exchange sequence order.

use net::admission::{Admission, REPIN_AFTER_NS};
use net::arbiter::{Arbiter, ArbiterConfig, ArbiterStats, Feed, Output};
use net::Requester;
use protocol::moldudp64::Session;
use std::net::SocketAddrV4;

/// Receiver settings for a live exchange feed: a hole the other feed does not fill within
/// 2 ms is requested; a gap is given up after 1 s, so normalization never waits longer.
pub fn live_config() -> ArbiterConfig {
    ArbiterConfig {
        gap_window_ns: 2_000_000,
        request_timeout_ns: 50_000_000,
        max_retries: 4,
        gap_timeout_ns: 1_000_000_000,
        ..ArbiterConfig::default()
    }
}

/// Receiver settings for a recorded file (time is the capture time): a hole can only be filled
/// by a later copy in the same file, so it is given up 50 ms (capture time) after it opened.
pub fn file_config() -> ArbiterConfig {
    ArbiterConfig {
        gap_window_ns: 2_000_000,
        request_timeout_ns: 50_000_000,
        max_retries: 0,
        gap_timeout_ns: 50_000_000,
        // Captures start mid-session and samples skip ahead; nobody forges a file.
        max_jump: u64::MAX / 4,
        confirm_ns: 0,
        ..ArbiterConfig::default()
    }
}

/// Follows one upstream session.
pub struct Upstream {
    pub arbiter: Arbiter,
    /// Which datagrams are the exchange's: the session (explicit or adopted after consistent
    /// traffic) and each feed's pinned sender.
    pub admission: Admission,
    /// Requests for missing ranges go here (live feeds with a re-request server).
    pub requester: Option<Requester>,
}

impl Upstream {
    pub fn new(cfg: ArbiterConfig) -> Upstream {
        Upstream {
            arbiter: Arbiter::new(cfg),
            admission: Admission::new(None, REPIN_AFTER_NS),
            requester: None,
        }
    }

    /// Expects this session only (`[feed] session`).
    pub fn set_session(&mut self, session: Session) {
        let pinned = self.requester.as_ref().map(|r| r.server());
        self.admission = Admission::new(Some(session), REPIN_AFTER_NS);
        if let Some(server) = pinned {
            self.admission.pin_retransmit(server);
        }
    }

    /// Sends re-requests to the exchange's server; its answers are the only ones admitted.
    pub fn set_requester(&mut self, requester: Requester) {
        self.admission.pin_retransmit(requester.server());
        self.requester = Some(requester);
    }

    /// The upstream session in force (given or adopted), or the candidate before adoption.
    pub fn session(&self) -> Option<Session> {
        self.admission.current()
    }

    /// Whether a datagram is the exchange's (session, sender); restarts the receiver when a
    /// first stray session gives way to another.
    pub fn admit(&mut self, now: u64, feed: Feed, from: Option<SocketAddrV4>, s: Session) -> bool {
        self.admission.admit(&mut self.arbiter, now, feed, from, s)
    }

    /// Adopts the candidate session once the receiver has established the stream on it.
    pub fn after_input(&mut self) {
        self.admission.after_input(&self.arbiter);
    }

    pub fn stats(&self) -> ArbiterStats {
        self.arbiter.stats
    }
}

/// Where a datagram of the exchange stream came from.
pub type FeedId = Feed;

/// What the receiver's outputs turn into: `deliver` normalizes, `gap` reports, `request` asks
/// the exchange. Implemented by the feed handler.
pub(crate) trait Sink {
    fn message(&mut self, seq: u64, msg: &[u8]);
    fn lost(&mut self, from: u64, to: u64);
}

/// Adapts a `Sink` (plus the requester) to the receiver's `Output`.
pub(crate) struct Adapter<'a, S: Sink> {
    pub sink: S,
    pub requester: Option<&'a mut Requester>,
    pub session: Option<Session>,
    pub ended: bool,
}

impl<S: Sink> Output for Adapter<'_, S> {
    fn deliver(&mut self, seq: u64, record: &[u8]) {
        self.sink.message(seq, record);
    }
    fn gap(&mut self, from: u64, to: u64) {
        self.sink.lost(from, to);
    }
    fn request(&mut self, from: u64, count: u16) {
        if let (Some(r), Some(s)) = (self.requester.as_deref_mut(), self.session) {
            r.request(&s, from, count);
        }
    }
    fn end_of_session(&mut self, _next: u64) {
        self.ended = true;
    }
}
