//! Batched UDP receive: one `recvmmsg` fills up to `BATCH` preallocated slots, with the kernel's
//! receive timestamp (SO_TIMESTAMPNS) and drop counter (SO_RXQ_OVFL) when the kernel offers them.
//! Also used by the feed handler for live exchange multicast.

use nix::cmsg_space;
use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn,
};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, IoSliceMut};
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
    headers: MultiHeaders<SockaddrIn>,
    buffers: Box<[[u8; SLOT]]>,
    lens: [usize; BATCH],
    from: [Option<SocketAddrV4>; BATCH],
    stamps: [u64; BATCH],
    count: usize,
    kernel_drops: u64,
    timestamps: bool,
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
        let drops = setsockopt(&socket, sockopt::RxqOvfl, &1).is_ok();
        let timestamps = setsockopt(&socket, sockopt::ReceiveTimestampns, &true).is_ok();
        let cmsg = if drops || timestamps {
            Some(cmsg_space!(TimeSpec, u32))
        } else {
            None
        };
        Ok(BatchReceiver {
            socket,
            headers: MultiHeaders::preallocate(BATCH, cmsg),
            buffers: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            from: [None; BATCH],
            stamps: [0; BATCH],
            count: 0,
            kernel_drops: 0,
            timestamps,
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
            None => MsgFlags::MSG_DONTWAIT,
            Some(d) => {
                self.socket
                    .set_read_timeout(Some(d.max(Duration::from_micros(1))))?;
                MsgFlags::MSG_WAITFORONE
            }
        };
        let fd = self.socket.as_raw_fd();
        let mut slots = self.buffers.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(
                slots.next().map_or(&mut [][..], |b| &mut b[..]),
            )]
        });
        let now = crate::now_ns();
        self.count = 0;
        let results = match recvmmsg(fd, &mut self.headers, iovs.iter_mut(), flags, None) {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        for (i, msg) in results.enumerate() {
            self.lens[i] = msg.bytes;
            self.from[i] = msg.address.map(|a| SocketAddrV4::new(a.ip(), a.port()));
            self.stamps[i] = now;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::ScmTimestampns(ts) if self.timestamps => {
                            self.stamps[i] =
                                ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64;
                        }
                        ControlMessageOwned::RxqOvfl(n) => self.kernel_drops = u64::from(n),
                        _ => {}
                    }
                }
            }
            self.count = i + 1;
        }
        Ok(self.count)
    }

    /// Datagram `i` of the last batch.
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.count {
            return None;
        }
        Some(Received {
            bytes: &self.buffers[i][..self.lens[i].min(SLOT)],
            from: self.from[i],
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
