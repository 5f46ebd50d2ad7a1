//! Batched UDP receive: one `recvmmsg` fills up to `BATCH` preallocated slots, with the kernel's
//! receive timestamp (SO_TIMESTAMPNS) and drop counter (SO_RXQ_OVFL) when the kernel offers them.
//! Used by the feed handler (exchange feeds A/B, re-request answers) and the SDK.

use crate::mmsg_recv::{MmsgReceiver, RecvMeta};
pub use crate::socket::Endpoint;
use socket2::Socket;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

/// Datagrams taken per system call.
pub const BATCH: usize = 32;
/// Slot size: the largest UDP payload on a 9000-byte jumbo frame path.
pub const SLOT: usize = 9000;

/// One received datagram in a batch.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub bytes: &'a [u8],
    pub from: Option<SocketAddrV4>,
    /// Kernel receive time (ns since the epoch), or the time `recv_batch` returned.
    pub recv_ts_ns: u64,
}

/// Counters of one receive socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvCounters {
    /// Datagrams the kernel dropped because the socket buffer was full (SO_RXQ_OVFL).
    pub kernel_drops: u64,
    /// Datagrams whose control data did not fit (MSG_CTRUNC) or was malformed.
    pub ctrunc: u64,
    /// Datagrams longer than a slot (MSG_TRUNC): cut, so dropped.
    pub truncated: u64,
}

/// A UDP socket with preallocated batch receive buffers.
pub struct BatchReceiver {
    socket: Socket,
    rx: MmsgReceiver<BATCH>,
    buffers: Box<[[u8; SLOT]]>,
    meta: [RecvMeta; BATCH],
    stamps: [u64; BATCH],
    count: usize,
    counters: RecvCounters,
}

impl BatchReceiver {
    /// Binds `endpoint.addr`'s port and joins the group when it is multicast.
    pub fn open(endpoint: &Endpoint) -> io::Result<BatchReceiver> {
        Self::from_socket(crate::socket::receiver(endpoint)?)
    }

    /// Wraps an already bound socket (e.g. the unicast socket retransmissions arrive on).
    pub fn from_socket(socket: Socket) -> io::Result<BatchReceiver> {
        crate::socket::enable_recv_metadata(&socket);
        Ok(BatchReceiver {
            socket,
            rx: MmsgReceiver::new(),
            buffers: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH],
            stamps: [0; BATCH],
            count: 0,
            counters: RecvCounters::default(),
        })
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an inet socket"))
    }

    /// Datagrams the kernel dropped on this socket because its buffer was full.
    pub fn kernel_drops(&self) -> u64 {
        self.counters.kernel_drops
    }

    pub fn counters(&self) -> RecvCounters {
        self.counters
    }

    /// Receives up to `BATCH` datagrams. `wait`: `None` returns at once (busy-poll), `Some(d)`
    /// waits up to `d` in poll(2) for the first datagram (no socket option is changed per call).
    /// Returns how many arrived (0 on timeout).
    pub fn recv_batch(&mut self, wait: Option<Duration>) -> io::Result<usize> {
        self.count = 0;
        let mut n = self.recv_now()?;
        if n == 0 {
            if let Some(d) = wait {
                if crate::poll::wait_readable(
                    [std::os::fd::AsFd::as_fd(&self.socket)].into_iter(),
                    d,
                ) {
                    n = self.recv_now()?;
                }
            }
        }
        Ok(n)
    }

    fn recv_now(&mut self) -> io::Result<usize> {
        let got = self.rx.recv(
            &self.socket,
            &mut self.buffers,
            &mut self.meta,
            libc::MSG_DONTWAIT,
        )?;
        let now = crate::now_ns();
        let mut kept = 0;
        for i in 0..got {
            let m = self.meta[i];
            if let Some(d) = m.cmsg.drops {
                self.counters.kernel_drops = u64::from(d);
            }
            if m.ctrunc || m.cmsg.malformed {
                self.counters.ctrunc += 1;
            }
            if m.truncated || m.len > SLOT {
                // A cut datagram would parse as something it is not.
                self.counters.truncated += 1;
                continue;
            }
            if kept != i {
                self.buffers.swap(kept, i);
                self.meta[kept] = m;
            }
            self.stamps[kept] = m.cmsg.timestamp_ns.unwrap_or(now);
            kept += 1;
        }
        self.count = kept;
        Ok(kept)
    }

    /// Datagram `i` of the last batch.
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.count {
            return None;
        }
        Some(Received {
            bytes: &self.buffers[i][..self.meta[i].len.min(SLOT)],
            from: self.meta[i].from,
            recv_ts_ns: self.stamps[i],
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    #[test]
    fn batches_with_sender_address_and_kernel_time() {
        let ep = Endpoint::new(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            Ipv4Addr::LOCALHOST,
        );
        let mut rx = BatchReceiver::open(&ep).unwrap();
        let to = rx.local_addr().unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i; 3], to).unwrap();
        }
        let before = crate::now_ns() - 1_000_000_000;
        let mut got = Vec::new();
        while got.len() < 5 {
            let n = rx.recv_batch(Some(Duration::from_secs(2))).unwrap();
            assert!(n > 0);
            for i in 0..n {
                let d = rx.get(i).unwrap();
                assert_eq!(d.from.map(SocketAddr::V4), Some(tx.local_addr().unwrap()));
                assert!(d.recv_ts_ns > before);
                got.push(d.bytes.to_vec());
            }
        }
        assert_eq!(got, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
        assert_eq!(rx.recv_batch(None).unwrap(), 0);
        assert_eq!(rx.counters(), RecvCounters::default());
    }
}
