//! Which datagrams of a MoldUDP64 stream reach the sequenced-stream receiver at all: the
//! session and the sender's address.
//!
//! - **Session.** With an explicit session, only it is admitted. Without one, the first
//!   session seen is a *candidate*, adopted (`after_input`) once the sequenced-stream receiver
//!   has established a stream on it — two consistent inputs, never one datagram (nor its copy on
//!   the other feed). Before that, a datagram of another session replaces the candidate and
//!   `admit` restarts the receiver. After adoption, other sessions are counted
//!   (`wrong_session`), never adopted.
//! - **Source.** Each feed (A, B) is pinned to the address its datagrams come from once two
//!   have come from it; datagrams from any other address are dropped (`wrong_source`) until
//!   the pinned sender has been silent for `repin_after_ns` (longer than its heartbeat interval),
//!   so a restarted or failed-over sender is followed. Re-request answers are pinned to the
//!   server the requests go to. A forger who can also spoof the sender's address is out of
//!   reach of any receiver; source-specific multicast (SSM) joins keep such traffic off the host.

use protocol::moldudp64::Session;
use std::net::SocketAddrV4;

use crate::arbiter::{Arbiter, Feed};

/// How long a feed's pinned sender must be silent before another address is followed: twice
/// tickcast's and the exchange's 1 s heartbeat interval.
pub const REPIN_AFTER_NS: u64 = 2_000_000_000;

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the receiver.
    Admit,
    /// Drop it (counted).
    Reject,
    /// A new candidate session before any was adopted: restart the receiver, then pass it.
    Restart,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Datagrams of a session other than the expected or adopted one.
    pub wrong_session: u64,
    /// Datagrams from an address other than the feed's pinned sender.
    pub wrong_source: u64,
    /// Candidate sessions dropped before adoption (strays that came first).
    pub candidates_dropped: u64,
    /// Times a feed was re-pinned after its sender fell silent.
    pub repins: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Pin {
    addr: Option<SocketAddrV4>,
    last_ns: u64,
    /// An address seen once, not yet pinned.
    candidate: Option<SocketAddrV4>,
    fixed: bool,
}

#[derive(Debug, Clone)]
pub struct Admission {
    adopted: Option<Session>,
    candidate: Option<Session>,
    repin_after_ns: u64,
    pins: [Pin; 3],
    pub stats: AdmissionStats,
}

fn index(feed: Feed) -> usize {
    match feed {
        Feed::A => 0,
        Feed::B => 1,
        Feed::Retransmit => 2,
    }
}

impl Admission {
    /// `session`: the expected session, if known; `repin_after_ns`: how long a feed's sender
    /// must be silent before another address is followed.
    pub fn new(session: Option<Session>, repin_after_ns: u64) -> Admission {
        Admission {
            adopted: session,
            candidate: None,
            repin_after_ns,
            pins: [Pin::default(); 3],
            stats: AdmissionStats::default(),
        }
    }

    /// Pins re-request answers to the server the requests go to.
    pub fn pin_retransmit(&mut self, server: SocketAddrV4) {
        self.pins[2] = Pin {
            addr: Some(server),
            fixed: true,
            ..Pin::default()
        };
    }

    /// The session in force: the expected one, or the adopted one.
    pub fn session(&self) -> Option<Session> {
        self.adopted
    }

    /// The adopted session, or the candidate while none is adopted (what requests name).
    pub fn current(&self) -> Option<Session> {
        self.adopted.or(self.candidate)
    }

    /// The receiver established a stream on the candidate session: adopt it.
    pub fn confirm(&mut self) {
        if self.adopted.is_none() {
            self.adopted = self.candidate;
        }
    }

    /// Whether a datagram goes to `arbiter`; a stray first session giving way to another
    /// restarts the arbiter here, so no caller has to.
    pub fn admit(
        &mut self,
        arbiter: &mut Arbiter,
        now: u64,
        feed: Feed,
        from: Option<SocketAddrV4>,
        session: Session,
    ) -> bool {
        match self.check(now, feed, from, session) {
            Verdict::Admit => true,
            Verdict::Reject => false,
            Verdict::Restart => {
                *arbiter = Arbiter::new(*arbiter.config());
                true
            }
        }
    }

    /// After each admitted datagram: adopts the candidate once `arbiter` has established a
    /// stream on it.
    pub fn after_input(&mut self, arbiter: &Arbiter) {
        if arbiter.established() {
            self.confirm();
        }
    }

    pub fn check(
        &mut self,
        now: u64,
        feed: Feed,
        from: Option<SocketAddrV4>,
        session: Session,
    ) -> Verdict {
        let verdict = match self.adopted {
            Some(s) if s == session => Verdict::Admit,
            Some(_) => {
                self.stats.wrong_session += 1;
                return Verdict::Reject;
            }
            None => self.candidate_session(session),
        };
        if !self.source_ok(now, feed, from) {
            self.stats.wrong_source += 1;
            return Verdict::Reject;
        }
        verdict
    }

    fn candidate_session(&mut self, session: Session) -> Verdict {
        match self.candidate {
            Some(s) if s == session => Verdict::Admit,
            None => {
                self.candidate = Some(session);
                Verdict::Admit
            }
            Some(_) => {
                self.stats.candidates_dropped += 1;
                self.candidate = Some(session);
                // Source pins learned from the dropped candidate go with it.
                for p in self.pins.iter_mut().filter(|p| !p.fixed) {
                    *p = Pin::default();
                }
                Verdict::Restart
            }
        }
    }

    fn source_ok(&mut self, now: u64, feed: Feed, from: Option<SocketAddrV4>) -> bool {
        let Some(from) = from else {
            return true;
        };
        let repin_after = self.repin_after_ns;
        let p = &mut self.pins[index(feed)];
        match p.addr {
            Some(a) if a == from => {
                p.last_ns = now;
                true
            }
            Some(_) if p.fixed => false,
            Some(_) if now.saturating_sub(p.last_ns) > repin_after => {
                // The pinned sender fell silent: follow the new one.
                p.addr = Some(from);
                p.last_ns = now;
                self.stats.repins += 1;
                true
            }
            Some(_) => false,
            None => {
                if p.candidate == Some(from) {
                    p.addr = Some(from);
                    p.candidate = None;
                } else {
                    p.candidate = Some(from);
                }
                p.last_ns = now;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MS: u64 = 1_000_000;

    fn addr(last: u8) -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), 5000))
    }

    #[test]
    fn a_session_is_adopted_after_consistent_traffic_never_from_one_datagram() {
        let real = Session::new("REAL").unwrap();
        let stray = Session::new("STRAY").unwrap();
        let mut a = Admission::new(None, 2000 * MS);
        assert_eq!(a.check(0, Feed::A, addr(9), stray), Verdict::Admit);
        assert_eq!(a.check(0, Feed::B, addr(9), stray), Verdict::Admit);
        assert_eq!(a.session(), None, "a datagram and its copy adopt nothing");
        assert_eq!(a.check(1, Feed::A, addr(1), real), Verdict::Restart);
        assert_eq!(a.check(2, Feed::A, addr(1), real), Verdict::Admit);
        a.confirm(); // the receiver established the stream
        assert_eq!(a.session(), Some(real));
        assert_eq!(a.check(3, Feed::A, addr(9), stray), Verdict::Reject);
        assert_eq!(a.stats.wrong_session, 1);
        assert_eq!(a.stats.candidates_dropped, 1);
    }

    #[test]
    fn an_explicit_session_admits_nothing_else() {
        let real = Session::new("REAL").unwrap();
        let mut a = Admission::new(Some(real), 2000 * MS);
        assert_eq!(
            a.check(0, Feed::A, addr(9), Session::new("X").unwrap()),
            Verdict::Reject
        );
        assert_eq!(a.check(0, Feed::A, addr(1), real), Verdict::Admit);
    }

    #[test]
    fn a_feed_is_pinned_to_its_sender_and_repinned_only_after_silence() {
        let s = Session::new("S").unwrap();
        let mut a = Admission::new(Some(s), 2000 * MS);
        assert_eq!(a.check(0, Feed::A, addr(1), s), Verdict::Admit);
        assert_eq!(a.check(MS, Feed::A, addr(1), s), Verdict::Admit); // pinned now
        assert_eq!(a.check(2 * MS, Feed::A, addr(66), s), Verdict::Reject);
        assert_eq!(a.check(3 * MS, Feed::B, addr(2), s), Verdict::Admit);
        assert_eq!(a.check(1000 * MS, Feed::A, addr(1), s), Verdict::Admit);
        // The sender restarts elsewhere after 2 s of silence: followed.
        assert_eq!(a.check(3001 * MS, Feed::A, addr(7), s), Verdict::Admit);
        assert_eq!(a.stats.repins, 1);
        assert_eq!(a.check(3002 * MS, Feed::A, addr(1), s), Verdict::Reject);
        // Answers only from the server.
        a.pin_retransmit(addr(200).unwrap());
        assert_eq!(a.check(0, Feed::Retransmit, addr(66), s), Verdict::Reject);
        assert_eq!(a.check(0, Feed::Retransmit, addr(200), s), Verdict::Admit);
        assert_eq!(a.stats.wrong_source, 3);
    }
}
