//! Live exchange multicast: recvmmsg batches, SO_RCVBUF from config, the kernel's drop counter.

use super::{Frame, Framing, Source, SourceError};
use std::time::Duration;
use subscriber_sdk::net::BatchReceiver;
pub use subscriber_sdk::net::Endpoint;

pub struct MulticastSource {
    rx: BatchReceiver,
    next: usize,
    /// The longest one `poll` waits, so a caller's duty cycle keeps turning when the feed is idle.
    poll_timeout: Duration,
}

impl MulticastSource {
    pub fn open(endpoint: &Endpoint) -> Result<MulticastSource, SourceError> {
        let rx = BatchReceiver::open(endpoint).map_err(|e| SourceError::Io {
            path: format!("udp://{}", endpoint.addr),
            source: e,
        })?;
        Ok(MulticastSource {
            rx,
            next: 0,
            poll_timeout: Duration::from_millis(50),
        })
    }

    pub fn kernel_drops(&self) -> u64 {
        self.rx.kernel_drops()
    }

    /// Makes sure a datagram is ready; `false` when none came within the poll timeout.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.next < self.rx.len() {
            return Ok(true);
        }
        self.next = 0;
        let n = self
            .rx
            .recv_batch(Some(self.poll_timeout))
            .map_err(|e| SourceError::Io {
                path: "multicast".into(),
                source: e,
            })?;
        Ok(n > 0)
    }

    fn take(&mut self) -> Option<Frame<'_>> {
        let i = self.next;
        self.next += 1;
        self.rx.get(i).map(|d| Frame {
            framing: Framing::MoldUdp64,
            bytes: d.bytes,
            recv_ts_ns: d.recv_ts_ns,
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
        self.rx.kernel_drops()
    }
}
