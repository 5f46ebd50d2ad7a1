//! The send path's system call: `sendmmsg` over preallocated `mmsghdr`/`iovec`/`sockaddr_in`
//! arrays, with partial sends continued and EAGAIN waited out, never dropped. Shaped so that a
//! GSO path (one header per run of equal-size datagrams plus a `UDP_SEGMENT` control message)
//! and an io_uring path can sit beside it: callers describe datagrams as `OutDatagram`s in an
//! arena, never as headers.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// Datagrams handed to one `sendmmsg` call at most (the kernel's UIO_MAXIOV is 1024).
pub const MAX_BATCH: usize = 1024;

/// Segments in one GSO send at most — 64, what every kernel with UDP GSO takes (its
/// UDP_MAX_SEGMENTS was 64 before it became 128, the bound `recv` splits by) — and its bytes
/// (an IPv4 UDP payload's limit).
pub const GSO_MAX_SEGMENTS: u16 = 64;
pub const GSO_MAX_BYTES: u32 = 65_507;

/// One datagram to send: bytes in the caller's arena, a destination and a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutDatagram {
    pub offset: u32,
    pub len: u32,
    pub dest: SocketAddrV4,
    /// Index into the socket list passed to `send_all`.
    pub socket: u16,
    /// Local group index, for per-group error accounting.
    pub group: u16,
    /// UDP GSO: when `len` exceeds it, the bytes are `len / segment` datagrams of `segment`
    /// bytes (the last may be shorter), handed over in one header with `UDP_SEGMENT`. 0: one
    /// datagram.
    pub segment: u16,
}

impl OutDatagram {
    /// Wire datagrams this entry becomes.
    pub fn datagrams(&self) -> u64 {
        match self.segment {
            s if s > 0 && self.len > u32::from(s) => u64::from(self.len.div_ceil(u32::from(s))),
            _ => 1,
        }
    }
}

/// What one `send_all` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub calls: u64,
    pub sent: u64,
    /// Calls that took fewer datagrams than offered (the rest went in the next call).
    pub partial: u64,
    /// Waits for the socket to become writable after EAGAIN/ENOBUFS.
    pub eagain_waits: u64,
    /// Datagrams the kernel refused outright (e.g. no route); counted and skipped.
    pub errors: u64,
    /// errno of the last refused datagram.
    pub last_errno: i32,
    /// Headers that carried several datagrams (UDP GSO).
    pub gso_sends: u64,
    /// GSO headers the kernel refused (EIO/EINVAL): their datagrams were sent one by one, and
    /// the caller should stop using GSO on `gso_refused_socket`.
    pub gso_refused: u64,
    pub gso_refused_socket: u16,
}

/// Preallocated headers for `sendmmsg`; no allocation per call.
pub struct MmsgSender {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_in>,
    cmsgs: Vec<crate::cmsg::CmsgBuf>,
}

// SAFETY: the raw pointers inside the preallocated headers only ever point into this struct's
// own vectors or into the arena borrowed for the duration of one `send_all` call; they are
// rewritten before every use, so moving the sender to another thread is sound.
unsafe impl Send for MmsgSender {}

fn sockaddr(a: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

impl Default for MmsgSender {
    fn default() -> Self {
        Self::new()
    }
}

impl MmsgSender {
    pub fn new() -> MmsgSender {
        // SAFETY: mmsghdr, iovec and sockaddr_in are plain C structs for which all-zero bytes
        // are a valid value (null pointers, zero lengths).
        let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let zero_addr = sockaddr(&SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));
        MmsgSender {
            hdrs: vec![zero_hdr; MAX_BATCH],
            iovs: vec![zero_iov; MAX_BATCH],
            addrs: vec![zero_addr; MAX_BATCH],
            cmsgs: vec![crate::cmsg::CmsgBuf::default(); MAX_BATCH],
        }
    }

    /// Sends every datagram in `out` (bytes in `arena`) on `sockets[d.socket]`, consecutive
    /// datagrams of one socket in one call. Blocks (in poll) while a socket's buffer is full.
    pub fn send_all<S: AsFd>(
        &mut self,
        sockets: &[S],
        arena: &[u8],
        out: &[OutDatagram],
    ) -> SendReport {
        let mut r = SendReport::default();
        let mut start = 0;
        while start < out.len() {
            let sock = out[start].socket;
            let mut end = start + 1;
            while end < out.len() && out[end].socket == sock && end - start < MAX_BATCH {
                end += 1;
            }
            let Some(fd) = sockets.get(sock as usize).map(AsFd::as_fd) else {
                r.errors += (end - start) as u64;
                start = end;
                continue;
            };
            start = self.send_run(fd, arena, &out[start..end], &mut r) + start;
        }
        r
    }

    /// Sends one run of datagrams on one socket; returns how many were consumed (all of them).
    fn send_run(
        &mut self,
        fd: BorrowedFd<'_>,
        arena: &[u8],
        run: &[OutDatagram],
        r: &mut SendReport,
    ) -> usize {
        let n = run.len();
        for (i, d) in run.iter().enumerate() {
            let (off, len) = (d.offset as usize, d.len as usize);
            let bytes = &arena[off.min(arena.len())..(off + len).min(arena.len())];
            self.addrs[i] = sockaddr(&d.dest);
            self.iovs[i] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = &mut self.addrs[i] as *mut libc::sockaddr_in as *mut libc::c_void;
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            if d.datagrams() > 1 {
                let n = crate::cmsg::encode_u16(
                    &mut self.cmsgs[i].0,
                    libc::SOL_UDP,
                    libc::UDP_SEGMENT,
                    d.segment,
                );
                h.msg_hdr.msg_control = self.cmsgs[i].0.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = n as _;
            }
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let mut done = 0;
        while done < n {
            // SAFETY: hdrs[done..n] were filled above; each points at its own iovec and
            // sockaddr in this struct and at bytes of `arena`, all of which outlive the call.
            // The count passed never exceeds the initialised headers; the fd is borrowed from a
            // live socket.
            let ret = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            r.calls += 1;
            if ret >= 0 {
                let ret = ret as usize;
                if ret < n - done {
                    r.partial += 1;
                }
                for d in &run[done..done + ret] {
                    r.sent += d.datagrams();
                    r.gso_sends += u64::from(d.datagrams() > 1);
                }
                done += ret;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                    r.eagain_waits += 1;
                    crate::poll::wait_writable(&fd, Duration::from_millis(10));
                }
                Some(libc::EINTR) => {}
                Some(libc::EIO) | Some(libc::EINVAL) if run[done].datagrams() > 1 => {
                    // The kernel or the device cannot segment: send them one by one.
                    r.gso_refused += 1;
                    r.gso_refused_socket = run[done].socket;
                    Self::send_segments(fd, arena, &run[done], r);
                    done += 1;
                }
                code => {
                    // The first datagram of the call was refused: count it and go on.
                    r.errors += 1;
                    r.last_errno = code.unwrap_or(0);
                    done += 1;
                }
            }
        }
        n
    }
}

impl MmsgSender {
    /// A GSO entry the kernel refused, sent as its separate datagrams (the fallback path).
    fn send_segments(fd: BorrowedFd<'_>, arena: &[u8], d: &OutDatagram, r: &mut SendReport) {
        let (off, len) = (d.offset as usize, d.len as usize);
        let bytes = &arena[off.min(arena.len())..(off + len).min(arena.len())];
        let sock = socket2::SockRef::from(&fd);
        let dest = socket2::SockAddr::from(d.dest);
        for chunk in bytes.chunks(usize::from(d.segment.max(1))) {
            r.calls += 1;
            loop {
                match sock.send_to(chunk, &dest) {
                    Ok(_) => {
                        r.sent += 1;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        r.eagain_waits += 1;
                        crate::poll::wait_writable(&fd, Duration::from_millis(10));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        r.errors += 1;
                        r.last_errno = e.raw_os_error().unwrap_or(0);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// A blocking loopback socket (2 s timeout) and its address.
    fn loopback_receiver() -> (UdpSocket, SocketAddrV4) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        match rx.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => (rx, a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn sends_every_datagram_in_few_calls() {
        let (rx, dest) = loopback_receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let arena: Vec<u8> = (0..100u8).collect();
        let out: Vec<OutDatagram> = (0..50)
            .map(|i| OutDatagram {
                offset: i * 2,
                len: 2,
                dest,
                socket: 0,
                group: 0,
                segment: 0,
            })
            .collect();
        let mut s = MmsgSender::new();
        let r = s.send_all(&[&tx], &arena, &out);
        assert_eq!(r.sent, 50);
        assert_eq!(r.errors, 0);
        assert!(r.calls >= 1 && r.calls <= 3);
        let mut buf = [0u8; 16];
        for i in 0..50u8 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[2 * i, 2 * i + 1]);
        }
        // A bad socket index is an error, not a panic.
        let r = s.send_all::<&UdpSocket>(&[], &arena, &out[..3]);
        assert_eq!((r.sent, r.errors), (0, 3));
    }

    #[test]
    fn one_gso_header_carries_many_datagrams() {
        let (rx, dest) = loopback_receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // 10 datagrams of 100 bytes and a last one of 40, in one entry.
        let arena: Vec<u8> = (0..1040u32).map(|i| (i / 100) as u8).collect();
        let out = [OutDatagram {
            offset: 0,
            len: 1040,
            dest,
            socket: 0,
            group: 0,
            segment: 100,
        }];
        let mut s = MmsgSender::new();
        let r = s.send_all(&[&tx], &arena, &out);
        assert_eq!((r.sent, r.errors), (11, 0));
        assert_eq!(r.calls, 1, "one system call");
        assert!(r.gso_sends == 1 || r.gso_refused == 1, "{r:?}");
        let mut buf = [0u8; 2048];
        for i in 0..11u8 {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(n, if i < 10 { 100 } else { 40 });
            assert!(buf[..n].iter().all(|&b| b == i));
        }
    }
}
