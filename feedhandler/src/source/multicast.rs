//! Live exchange multicast: feeds A and (optionally) B, plus the socket the exchange's
//! re-request answers arrive on, each read in recvmmsg batches; SO_RCVBUF from config; the
//! kernel's drop counters. Frames are tagged with the feed they came from, for arbitration.

use super::{Frame, Framing, Source, SourceError};
use net::arbiter::Feed;
use net::{BatchReceiver, Endpoint};
use std::os::fd::AsFd;
use std::time::Duration;

const FEEDS: [Feed; 3] = [Feed::A, Feed::B, Feed::Retransmit];

pub struct MulticastSource {
    /// By `FEEDS` index.
    rx: [Option<BatchReceiver>; 3],
    /// The feed whose batch is being handed out, and the next datagram of it.
    current: usize,
    next: usize,
    /// The longest one `poll` waits, so a caller's duty cycle keeps turning when the feed is idle.
    poll_timeout: Duration,
}

fn open_rx(endpoint: &Endpoint) -> Result<BatchReceiver, SourceError> {
    BatchReceiver::open(endpoint).map_err(|e| SourceError::Io {
        path: format!("udp://{}", endpoint.addr),
        source: e,
    })
}

impl MulticastSource {
    /// Joins feed A (and B when given).
    pub fn open(a: &Endpoint, b: Option<&Endpoint>) -> Result<MulticastSource, SourceError> {
        Ok(MulticastSource {
            rx: [Some(open_rx(a)?), b.map(open_rx).transpose()?, None],
            current: 0,
            next: 0,
            poll_timeout: Duration::from_millis(50),
        })
    }

    /// Reads re-request answers from `rx` too (the receiving half of `net::rerequest::open`).
    pub fn with_answers(mut self, rx: BatchReceiver) -> MulticastSource {
        self.rx[2] = Some(rx);
        self
    }

    /// The longest `poll` waits for a datagram.
    pub fn set_poll_timeout(&mut self, d: Duration) {
        self.poll_timeout = d;
    }

    /// Datagrams the kernel dropped, all sockets together.
    pub fn kernel_drops(&self) -> u64 {
        self.rx.iter().flatten().map(|r| r.kernel_drops()).sum()
    }

    fn ready(&self) -> bool {
        self.rx[self.current]
            .as_ref()
            .is_some_and(|r| self.next < r.len())
    }

    /// Takes the next batch from any socket, starting after the one read last (fairness).
    fn refill(&mut self) -> Result<bool, SourceError> {
        for k in 1..=FEEDS.len() {
            let i = (self.current + k) % FEEDS.len();
            let Some(rx) = self.rx[i].as_mut() else {
                continue;
            };
            let n = rx.recv_batch(None).map_err(|e| SourceError::Io {
                path: "multicast".into(),
                source: e,
            })?;
            if n > 0 {
                self.current = i;
                self.next = 0;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Makes sure a datagram is ready; `false` when none came within the poll timeout.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.ready() || self.refill()? {
            return Ok(true);
        }
        let socks = self.rx.iter().flatten().map(|r| r.socket().as_fd());
        if net::poll::wait_readable(socks, self.poll_timeout) {
            return self.refill();
        }
        Ok(false)
    }

    fn take(&mut self) -> Option<Frame<'_>> {
        let i = self.next;
        self.next += 1;
        let feed = FEEDS[self.current];
        self.rx[self.current].as_ref()?.get(i).map(|d| Frame {
            framing: Framing::MoldUdp64,
            bytes: d.bytes,
            recv_ts_ns: d.recv_ts_ns,
            feed,
            from: d.from,
        })
    }

    /// The next datagram, or `Ok(None)` when nothing arrived within the poll timeout.
    pub fn poll(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        if self.fill()? {
            Ok(self.take())
        } else {
            Ok(None)
        }
    }
}

impl Source for MulticastSource {
    /// Blocks until a datagram arrives: a live source never ends (use `poll` to bound the wait).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        while !self.fill()? {}
        Ok(self.take())
    }

    fn skipped(&self) -> u64 {
        self.kernel_drops()
    }
}
