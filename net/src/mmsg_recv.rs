//! The `recvmmsg` call over preallocated `mmsghdr`/`iovec`/`sockaddr_in` and control-message
//! arrays.
//!
//! Every header is reset before each call: the kernel shrinks `msg_controllen` to what it
//! wrote, and a header reused as is would truncate the next call's control messages (losing the
//! drop counter the first time it appears).
#![allow(unsafe_code)]

use crate::cmsg::{self, CmsgBuf};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvMeta {
    pub len: usize,
    pub from: Option<SocketAddrV4>,
    pub cmsg: cmsg::Decoded,
    /// The kernel had more control data than fit (`MSG_CTRUNC`).
    pub ctrunc: bool,
    /// The datagram was longer than its slot (`MSG_TRUNC`).
    pub truncated: bool,
}

pub struct MmsgReceiver<const N: usize> {
    hdrs: Box<[libc::mmsghdr; N]>,
    iovs: Box<[libc::iovec; N]>,
    addrs: Box<[libc::sockaddr_in; N]>,
    cmsgs: Box<[CmsgBuf; N]>,
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
                cmsgs: Box::new([CmsgBuf::default(); N]),
            }
        }
    }

    /// Receives up to N datagrams into `bufs`, cut into slots of `slot` bytes (one datagram
    /// each); `meta[i]` describes slot `i`. Returns how many arrived; EAGAIN and EINTR count
    /// as 0.
    pub fn recv(
        &mut self,
        socket: &impl AsFd,
        bufs: &mut [u8],
        slot: usize,
        meta: &mut [RecvMeta; N],
        flags: libc::c_int,
    ) -> io::Result<usize> {
        if slot == 0 {
            return Ok(0);
        }
        let n = (bufs.len() / slot).min(N);
        for (i, buf) in bufs.chunks_exact_mut(slot).enumerate().take(n) {
            self.iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.cmsgs[i].0.as_mut_ptr().cast();
            h.msg_controllen = cmsg::SPACE as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: the first `n` headers were just filled; each points at its own iovec, address
        // and (aligned) control buffer in this struct and at a caller buffer of the stated
        // length, all of which outlive the call. The count passed is `n`; the fd is borrowed
        // from a live socket.
        let ret = unsafe {
            libc::recvmmsg(
                socket.as_fd().as_raw_fd(),
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
            let flags = h.msg_hdr.msg_flags;
            // `msg_controllen` is `size_t` on glibc and `socklen_t` on musl.
            #[allow(clippy::unnecessary_cast)]
            let controllen = h.msg_hdr.msg_controllen as usize;
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
                cmsg: cmsg::decode(&self.cmsgs[i].0, controllen),
                ctrunc: flags & libc::MSG_CTRUNC != 0,
                truncated: flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(got)
    }
}
