//! Batched UDP receive: one `recvmmsg` fills up to `BATCH` preallocated slots, with the kernel's
//! receive timestamp (SO_TIMESTAMPNS) and drop counter (SO_RXQ_OVFL) when the kernel offers them.
//! Also used by the feed handler for live exchange multicast.

use crate::sys::{MmsgReceiver, RecvMeta};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Datagrams taken per system call.
pub const BATCH: usize = 32;
/// Slot size: the largest UDP payload on a 9000-byte jumbo frame path.
pub const SLOT: usize = 9000;

/// Where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// A multicast group (joined) or a unicast address (bound).
    pub addr: SocketAddrV4,
    /// Interface address to join on.
    pub interface: Ipv4Addr,
    /// Source-specific join.
    pub source: Option<Ipv4Addr>,
    /// SO_RCVBUF in bytes (the kernel doubles and caps it); 0 keeps the default.
    pub rcvbuf: usize,
}

impl Endpoint {
    pub fn new(addr: SocketAddrV4, interface: Ipv4Addr) -> Endpoint {
        Endpoint {
            addr,
            interface,
            source: None,
            rcvbuf: 4 << 20,
        }
    }
}

/// One received datagram in a batch.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub bytes: &'a [u8],
    pub from: Option<SocketAddrV4>,
    /// Kernel receive time (ns since the epoch), or the time `recv_batch` returned.
    pub recv_ts_ns: u64,
}

/// A UDP socket with preallocated batch receive buffers.
pub struct BatchReceiver {
    socket: Socket,
    rx: MmsgReceiver<BATCH>,
    buffers: Box<[[u8; SLOT]]>,
    meta: [RecvMeta; BATCH],
    stamps: [u64; BATCH],
    count: usize,
    kernel_drops: u64,
}

impl BatchReceiver {
    /// Binds `endpoint.addr`'s port and joins the group when it is multicast.
    pub fn open(endpoint: &Endpoint) -> io::Result<BatchReceiver> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if endpoint.rcvbuf > 0 {
            // The kernel caps at net.core.rmem_max; that is not an error.
            let _ = socket.set_recv_buffer_size(endpoint.rcvbuf);
        }
        let ip = *endpoint.addr.ip();
        // Binding the group address (not 0.0.0.0) keeps other groups on the port out.
        socket.bind(&SockAddr::from(endpoint.addr))?;
        if ip.is_multicast() {
            match endpoint.source {
                Some(src) => socket.join_ssm_v4(&src, &ip, &endpoint.interface)?,
                None => socket.join_multicast_v4(&ip, &endpoint.interface)?,
            }
        }
        Self::from_socket(socket)
    }

    /// Wraps an already bound socket (e.g. the unicast socket retransmissions arrive on).
    pub fn from_socket(socket: Socket) -> io::Result<BatchReceiver> {
        // Both options are best effort: without them we fall back to user-space time and no
        // drop counter.
        let _ = setsockopt(&socket, sockopt::RxqOvfl, &1);
        let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
        Ok(BatchReceiver {
            socket,
            rx: MmsgReceiver::new(),
            buffers: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH],
            stamps: [0; BATCH],
            count: 0,
            kernel_drops: 0,
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
        self.kernel_drops
    }

    /// Receives up to `BATCH` datagrams. `wait`: `None` returns at once (busy-poll), `Some(d)`
    /// waits up to `d` for the first datagram. Returns how many arrived (0 on timeout).
    pub fn recv_batch(&mut self, wait: Option<Duration>) -> io::Result<usize> {
        let flags = match wait {
            None => libc::MSG_DONTWAIT,
            Some(d) => {
                self.socket
                    .set_read_timeout(Some(d.max(Duration::from_micros(1))))?;
                libc::MSG_WAITFORONE
            }
        };
        let now = crate::now_ns();
        self.count = self.rx.recv(
            self.socket.as_raw_fd(),
            &mut self.buffers,
            &mut self.meta,
            flags,
        )?;
        for i in 0..self.count {
            let m = &self.meta[i];
            self.stamps[i] = m.timestamp_ns.unwrap_or(now);
            if let Some(d) = m.drops {
                self.kernel_drops = u64::from(d);
            }
        }
        Ok(self.count)
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
