//! The receive system call: `recvmmsg` over preallocated `mmsghdr`/`iovec`/`sockaddr_in` and
//! control-message arrays. The SDK's only module with `unsafe` besides the C ABI.
//!
//! Every header is reset before each call: the kernel shrinks `msg_controllen` to what it
//! wrote, and a header reused as is would truncate the next call's control messages (losing the
//! drop counter the first time it appears).
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

/// Bytes of control data per datagram: room for a timestamp and a drop counter.
const CMSG_BYTES: usize = 64;

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvMeta {
    pub len: usize,
    pub from: Option<SocketAddrV4>,
    /// SO_TIMESTAMPNS, ns since the epoch.
    pub timestamp_ns: Option<u64>,
    /// SO_RXQ_OVFL: datagrams the socket dropped so far.
    pub drops: Option<u32>,
}

pub struct MmsgReceiver<const N: usize> {
    hdrs: Box<[libc::mmsghdr; N]>,
    iovs: Box<[libc::iovec; N]>,
    addrs: Box<[libc::sockaddr_in; N]>,
    cmsgs: Box<[[u64; CMSG_BYTES / 8]; N]>,
}

// SAFETY: the raw pointers in the headers point only into this struct's own boxed arrays or,
// during one `recv` call, into the caller's buffers; they are rewritten before every use.
unsafe impl<const N: usize> Send for MmsgReceiver<N> {}

impl<const N: usize> Default for MmsgReceiver<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MmsgReceiver<N> {
    pub fn new() -> Self {
        // SAFETY: these are plain C structs for which all-zero bytes are valid (null
        // pointers, zero lengths).
        unsafe {
            MmsgReceiver {
                hdrs: Box::new(std::mem::zeroed()),
                iovs: Box::new(std::mem::zeroed()),
                addrs: Box::new(std::mem::zeroed()),
                cmsgs: Box::new([[0u64; CMSG_BYTES / 8]; N]),
            }
        }
    }

    /// Receives up to N datagrams into `bufs` (one per slot); `meta[i]` describes slot `i`.
    /// Returns how many arrived; EAGAIN and EINTR count as 0.
    pub fn recv(
        &mut self,
        fd: RawFd,
        bufs: &mut [[u8; crate::net::SLOT]],
        meta: &mut [RecvMeta; N],
        flags: libc::c_int,
    ) -> io::Result<usize> {
        let n = bufs.len().min(N);
        for (i, buf) in bufs.iter_mut().enumerate().take(n) {
            self.iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.cmsgs[i].as_mut_ptr().cast();
            h.msg_controllen = CMSG_BYTES as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: the first `n` headers were just filled; each points at its own iovec, address
        // and control buffer in this struct and at a caller buffer of the stated length, all of
        // which outlive the call. The count passed is `n`.
        let ret = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if ret < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        let got = ret as usize;
        for (i, m) in meta.iter_mut().enumerate().take(got) {
            let h = &self.hdrs[i];
            let a = &self.addrs[i];
            *m = RecvMeta {
                len: h.msg_len as usize,
                from: (h.msg_hdr.msg_namelen as usize >= std::mem::size_of::<libc::sockaddr_in>()
                    && a.sin_family == libc::AF_INET as libc::sa_family_t)
                    .then(|| {
                        SocketAddrV4::new(
                            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                            u16::from_be(a.sin_port),
                        )
                    }),
                timestamp_ns: None,
                drops: None,
            };
            // SAFETY: the kernel filled msg_control up to msg_controllen (at most CMSG_BYTES);
            // CMSG_FIRSTHDR/CMSG_NXTHDR stay within that length and every header they return
            // is checked for the level/type whose payload size we then read (unaligned).
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                while !c.is_null() {
                    let data = libc::CMSG_DATA(c);
                    match ((*c).cmsg_level, (*c).cmsg_type) {
                        (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) => {
                            let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                            m.timestamp_ns =
                                Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                        }
                        (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                            m.drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                        }
                        _ => {}
                    }
                    c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
                }
            }
        }
        Ok(got)
    }
}
