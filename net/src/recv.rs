//! Batched UDP receive: one `recvmmsg` fills up to `BATCH` preallocated slots (with UDP_GRO,
//! `GRO_SLOTS` of 64 KiB, each a run of datagrams split back here), with the kernel's receive
//! timestamp (SO_TIMESTAMPNS) and drop counter (SO_RXQ_OVFL) when the kernel offers them.
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
/// Slot size with UDP_GRO: a coalesced buffer is up to 64 KiB.
pub const GRO_SLOT: usize = 65_536;
/// Slots with UDP_GRO: each holds up to 44 full-sized datagrams (a whole GSO send), so 8 take
/// up to 352 per call in 512 KiB, where 32 would hold 2 MiB per socket for no gain.
pub const GRO_SLOTS: usize = 8;
/// Segments taken from one coalesced buffer at most (the kernel's UDP_MAX_SEGMENTS); any
/// beyond are counted as cut and dropped.
const MAX_SEGMENTS: usize = 128;

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
    /// Coalesced buffers received with UDP_GRO (each split back into its datagrams).
    pub gro_buffers: u64,
}

impl std::ops::AddAssign for RecvCounters {
    /// Totals over sockets (the kernel's drop counter is cumulative per socket, so the sum of
    /// the latest values is the total).
    fn add_assign(&mut self, o: RecvCounters) {
        self.kernel_drops += o.kernel_drops;
        self.ctrunc += o.ctrunc;
        self.truncated += o.truncated;
        self.gro_buffers += o.gro_buffers;
    }
}

/// Where one datagram of the last batch lies: its slot, offset and length.
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    slot: u16,
    start: u32,
    len: u32,
}

/// A UDP socket with preallocated batch receive buffers.
pub struct BatchReceiver {
    socket: Socket,
    rx: MmsgReceiver<BATCH>,
    /// `BATCH` slots of `slot` bytes each (`GRO_SLOTS` with UDP_GRO).
    buffers: Box<[u8]>,
    slot: usize,
    meta: [RecvMeta; BATCH],
    stamps: [u64; BATCH],
    /// The datagrams of the last batch (more than the slots when GRO coalesced some);
    /// capacity reserved up front so a batch never allocates.
    segments: Vec<Segment>,
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
            buffers: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            slot: SLOT,
            meta: [RecvMeta::default(); BATCH],
            stamps: [0; BATCH],
            segments: Vec::with_capacity(BATCH),
            counters: RecvCounters::default(),
        })
    }

    /// Asks the kernel to hand over runs of same-sized datagrams as one buffer (UDP_GRO; on
    /// loopback, a GSO send stays whole), split back here by the segment size it reports.
    /// Takes [`GRO_SLOTS`] slots of 64 KiB instead of [`BATCH`] of [`SLOT`]. Returns whether the
    /// kernel took the option.
    pub fn enable_gro(&mut self) -> bool {
        if !crate::socket::enable_udp_gro(&self.socket) {
            return false;
        }
        if self.slot != GRO_SLOT {
            self.buffers = vec![0u8; GRO_SLOTS * GRO_SLOT].into_boxed_slice();
            self.slot = GRO_SLOT;
            self.segments = Vec::with_capacity(GRO_SLOTS * MAX_SEGMENTS);
        }
        true
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
    /// Returns how many arrived (0 on timeout); with GRO, a coalesced buffer counts as the
    /// datagrams it holds.
    pub fn recv_batch(&mut self, wait: Option<Duration>) -> io::Result<usize> {
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
        self.segments.clear();
        let got = self.rx.recv(
            &self.socket,
            &mut self.buffers,
            self.slot,
            &mut self.meta,
            libc::MSG_DONTWAIT,
        )?;
        let now = crate::now_ns();
        for i in 0..got {
            let m = self.meta[i];
            if let Some(d) = m.cmsg.drops {
                self.counters.kernel_drops = u64::from(d);
            }
            if m.ctrunc || m.cmsg.malformed {
                self.counters.ctrunc += 1;
            }
            if m.truncated || m.len > self.slot {
                // A cut datagram would parse as something it is not.
                self.counters.truncated += 1;
                continue;
            }
            self.stamps[i] = m.cmsg.timestamp_ns.unwrap_or(now);
            self.split(i, m.len, m.cmsg.gro_segment);
        }
        Ok(self.segments.len())
    }

    /// Records the datagrams in slot `i`: one, or for a coalesced buffer each `seg` bytes
    /// (the last may be shorter).
    fn split(&mut self, i: usize, len: usize, seg: Option<u16>) {
        let seg = match seg {
            Some(s) if s > 0 && usize::from(s) < len => usize::from(s),
            _ => {
                self.push_segment(i, 0, len);
                return;
            }
        };
        self.counters.gro_buffers += 1;
        for (k, start) in (0..len).step_by(seg).enumerate() {
            if k == MAX_SEGMENTS {
                self.counters.truncated += 1;
                return;
            }
            if !self.push_segment(i, start, seg.min(len - start)) {
                return;
            }
        }
    }

    /// Adds a datagram to the batch unless the reserved list is full (then it is counted as
    /// cut: the list never grows on the receive path).
    fn push_segment(&mut self, slot: usize, start: usize, len: usize) -> bool {
        if self.segments.len() == self.segments.capacity() {
            self.counters.truncated += 1;
            return false;
        }
        self.segments.push(Segment {
            slot: slot as u16,
            start: start as u32,
            len: len as u32,
        });
        true
    }

    /// Datagram `i` of the last batch.
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        let s = self.segments.get(i)?;
        let slot = usize::from(s.slot);
        let at = slot * self.slot + s.start as usize;
        Some(Received {
            bytes: self.buffers.get(at..at + s.len as usize)?,
            from: self.meta[slot].from,
            recv_ts_ns: self.stamps[slot],
        })
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
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

    /// Sends one GSO train of 100-byte datagrams and a 37-byte tail to `to` (multicast out of
    /// loopback when `to` is a group).
    fn gso_train(to: SocketAddr) -> Vec<Vec<u8>> {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(crate::socket::set_udp_segment(&tx, 100));
        socket2::SockRef::from(&tx)
            .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
            .unwrap();
        let want: Vec<Vec<u8>> = (0..11u8)
            .map(|i| vec![i; if i == 10 { 37 } else { 100 }])
            .collect();
        tx.send_to(&want.concat(), to).unwrap();
        want
    }

    fn drain(rx: &mut BatchReceiver, count: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < count {
            let n = rx.recv_batch(Some(Duration::from_secs(2))).unwrap();
            assert!(n > 0, "timed out with {} of {count}", got.len());
            got.extend((0..n).map(|i| rx.get(i).unwrap().bytes.to_vec()));
        }
        got
    }

    #[test]
    fn gro_buffers_are_split_back_into_their_datagrams() {
        let ep = Endpoint::new(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            Ipv4Addr::LOCALHOST,
        );
        let mut plain = BatchReceiver::open(&ep).unwrap();
        let mut gro = BatchReceiver::open(&ep).unwrap();
        assert!(gro.enable_gro(), "UDP_GRO refused");
        let want = gso_train(plain.local_addr().unwrap());
        assert_eq!(drain(&mut plain, 11), want);
        assert_eq!(plain.counters().gro_buffers, 0);
        let want = gso_train(gro.local_addr().unwrap());
        assert_eq!(drain(&mut gro, 11), want);
        // On loopback the kernel hands the train over whole to a GRO socket.
        assert_eq!(gro.counters().gro_buffers, 1);
        assert_eq!(gro.counters().truncated, 0);
        assert_eq!(gro.recv_batch(None).unwrap(), 0);
    }

    #[test]
    fn gro_takes_a_multicast_gso_send_whole() {
        let group = Ipv4Addr::new(239, 193, 77, 7);
        let ep = Endpoint::new(SocketAddrV4::new(group, 0), Ipv4Addr::LOCALHOST);
        let mut rx = BatchReceiver::open(&ep).unwrap();
        assert!(rx.enable_gro());
        let port = rx.local_addr().unwrap().port();
        let want = gso_train(SocketAddr::V4(SocketAddrV4::new(group, port)));
        assert_eq!(drain(&mut rx, 11), want);
        assert_eq!(rx.counters().gro_buffers, 1);
    }

    #[test]
    fn a_segment_size_that_overflows_the_segment_list_is_counted_not_a_panic() {
        let ep = Endpoint::new(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            Ipv4Addr::LOCALHOST,
        );
        let mut rx = BatchReceiver::open(&ep).unwrap();
        // Without GRO the list has room for one datagram per slot; a forged segment size
        // cannot make it grow.
        rx.segments.clear();
        rx.split(0, 1000, Some(1));
        assert_eq!(rx.segments.len(), BATCH);
        assert_eq!(rx.counters.truncated, 1);
        assert_eq!(rx.segments.capacity(), BATCH);
    }
}
