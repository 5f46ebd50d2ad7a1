//! Upstream MoldUDP64 sequence tracking (gaps, duplicates, reordering) and optional re-requests
//! to the exchange's re-request server.

use protocol::moldudp64::{emit_request, Packet, Session};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const MAX_OPEN_GAPS: usize = 64;

/// What to do with one upstream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// In sequence (or the first ever seen).
    New,
    /// Fills a hole seen earlier: reordered or retransmitted.
    Fill,
    /// Already seen.
    Duplicate,
}

/// Follows one upstream session's message sequence.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    session: Option<Session>,
    /// Next expected sequence; 0 before the first packet.
    next: u64,
    /// Open holes `[from, to)`, oldest first; the oldest are forgotten past `MAX_OPEN_GAPS`.
    gaps: Vec<(u64, u64)>,
    pub gap_messages: u64,
    pub duplicates: u64,
    pub filled: u64,
    pub wrong_session: u64,
    /// Largest believable jump past the next expected sequence (live feeds); a larger one is
    /// believed only when the next packet continues it.
    pub max_jump: Option<u64>,
    jump: Option<(u64, u64)>,
    pub implausible: u64,
}

impl SequenceTracker {
    pub fn new() -> SequenceTracker {
        SequenceTracker {
            gaps: Vec::with_capacity(MAX_OPEN_GAPS + 1),
            ..Default::default()
        }
    }

    /// The upstream session, once the first packet fixed it.
    pub fn session(&self) -> Option<Session> {
        self.session
    }

    pub fn next_expected(&self) -> u64 {
        self.next
    }

    pub fn open_gaps(&self) -> &[(u64, u64)] {
        &self.gaps
    }

    /// Checks a packet's session; the first packet fixes it. `false`: skip the packet.
    pub fn session_ok<T: AsRef<[u8]>>(&mut self, p: &Packet<T>) -> bool {
        let s = p.session();
        match self.session {
            None => {
                self.session = Some(s);
                true
            }
            Some(want) if want == s => true,
            Some(_) => {
                self.wrong_session += 1;
                false
            }
        }
    }

    /// Whether a packet at `seq` (next after it: `end`) is believable; see `max_jump`.
    pub fn plausible(&mut self, seq: u64, end: u64) -> bool {
        let Some(max) = self.max_jump else {
            return true;
        };
        if self.next == 0 || seq <= self.next.saturating_add(max) {
            self.jump = None;
            return true;
        }
        if let Some((first, after)) = self.jump {
            if seq >= first && seq <= after.saturating_add(max) {
                self.jump = None;
                return true;
            }
        }
        self.jump = Some((seq, end));
        self.implausible += 1;
        false
    }

    /// Notes that the stream has reached `next` (a heartbeat, or the end of a data packet);
    /// returns a newly opened gap `[from, to)`.
    pub fn advance_to(&mut self, next: u64) -> Option<(u64, u64)> {
        if self.next == 0 {
            self.next = next;
            return None;
        }
        if next > self.next {
            let gap = (self.next, next);
            self.gap_messages += next - self.next;
            self.gaps.push(gap);
            if self.gaps.len() > MAX_OPEN_GAPS {
                self.gaps.remove(0);
            }
            self.next = next;
            return Some(gap);
        }
        None
    }

    /// Classifies message `seq`. Call for each message of a data packet in order after
    /// `advance_to(first_seq)`.
    pub fn accept(&mut self, seq: u64) -> Accept {
        if self.next == 0 || seq == self.next {
            self.next = seq + 1;
            return Accept::New;
        }
        if seq > self.next {
            self.advance_to(seq);
            self.next = seq + 1;
            return Accept::New;
        }
        if let Some(i) = self.gaps.iter().position(|&(a, b)| (a..b).contains(&seq)) {
            let (a, b) = self.gaps[i];
            self.filled += 1;
            // Split the hole around `seq`.
            match (seq == a, seq + 1 == b) {
                (true, true) => {
                    self.gaps.remove(i);
                }
                (true, false) => self.gaps[i].0 = seq + 1,
                (false, true) => self.gaps[i].1 = seq,
                (false, false) => {
                    self.gaps[i].1 = seq;
                    self.gaps.insert(i + 1, (seq + 1, b));
                }
            }
            return Accept::Fill;
        }
        self.duplicates += 1;
        Accept::Duplicate
    }
}

/// Re-requests missing ranges from the exchange's re-request server, with timeout and retry.
pub struct Rerequester {
    socket: UdpSocket,
    server: SocketAddr,
    timeout: Duration,
    retries: u32,
    /// (from, count, next attempt, attempts made)
    pending: Vec<(u64, u16, Instant, u32)>,
    /// Receive buffer for answers, allocated once.
    buf: Box<[u8]>,
    pub requests_sent: u64,
    pub given_up: u64,
}

impl Rerequester {
    /// `socket` should be non-blocking; answers arrive on it as ordinary downstream packets.
    /// Requests name the session the tracker learned from the feed.
    pub fn new(
        socket: UdpSocket,
        server: SocketAddr,
        timeout: Duration,
        retries: u32,
    ) -> Rerequester {
        Rerequester {
            socket,
            server,
            timeout,
            retries,
            pending: Vec::new(),
            buf: vec![0u8; 65536].into_boxed_slice(),
            requests_sent: 0,
            given_up: 0,
        }
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The next answer datagram waiting on the socket (non-blocking), if any.
    pub fn recv(&mut self) -> Option<&[u8]> {
        let (n, _) = self.socket.recv_from(&mut self.buf).ok()?;
        Some(&self.buf[..n])
    }

    /// Queues requests for `[from, to)` in chunks a u16 count can express.
    pub fn request(&mut self, from: u64, to: u64) {
        let mut at = from;
        while at < to {
            let n = (to - at).min(u64::from(u16::MAX - 1)) as u16;
            self.pending.push((at, n, Instant::now(), 0));
            at += u64::from(n);
        }
    }

    /// Sends what is due; drops ranges the tracker no longer lists as open, and gives up after
    /// the configured retries.
    pub fn poll(&mut self, tracker: &SequenceTracker) {
        let now = Instant::now();
        let mut buf = [0u8; 20];
        let open = tracker.open_gaps();
        let Some(session) = tracker.session() else {
            return;
        };
        let (sock, server, timeout, retries) =
            (&self.socket, self.server, self.timeout, self.retries);
        let (mut sent, mut given_up) = (0, 0);
        self.pending.retain_mut(|(from, count, due, tries)| {
            let still_open = open
                .iter()
                .any(|&(a, b)| *from < b && *from + u64::from(*count) > a);
            if !still_open {
                return false;
            }
            if *due > now {
                return true;
            }
            if *tries > retries {
                given_up += 1;
                return false;
            }
            let n = emit_request(&mut buf, &session, *from, *count);
            if sock.send_to(&buf[..n], server).is_ok() {
                sent += 1;
            }
            *tries += 1;
            *due = now + timeout;
            true
        });
        self.requests_sent += sent;
        self.given_up += given_up;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_fills() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.accept(5), Accept::New);
        assert_eq!(t.accept(6), Accept::New);
        assert_eq!(t.accept(6), Accept::Duplicate);
        assert_eq!(t.accept(10), Accept::New); // 7, 8, 9 missing
        assert_eq!(t.gap_messages, 3);
        assert_eq!(t.open_gaps(), &[(7, 10)]);
        assert_eq!(t.accept(8), Accept::Fill);
        assert_eq!(t.open_gaps(), &[(7, 8), (9, 10)]);
        assert_eq!(t.accept(8), Accept::Duplicate);
        assert_eq!(t.accept(7), Accept::Fill);
        assert_eq!(t.accept(9), Accept::Fill);
        assert!(t.open_gaps().is_empty());
        assert_eq!(t.advance_to(13), Some((11, 13)));
        assert_eq!((t.duplicates, t.filled), (2, 3));
    }
}
