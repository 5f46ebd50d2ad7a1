//! io_uring for the TCP fan-out: every send of a duty cycle, new connections (multishot
//! accept) and client input (one receive in flight per client) go through one ring, so a cycle
//! costs one `io_uring_enter` for all clients.
//!
//! Sends are `MSG_DONTWAIT`: each completes while it is submitted (with bytes, a short count or
//! `EAGAIN`), so a full socket never holds a cycle up and its client resumes from its cursor
//! next cycle. [`Uring::cycle`] returns only when every send it queued has completed, which is
//! what lets it borrow the send buffers safely. The frame windows are registered with the ring
//! and sent as fixed buffers where the kernel supports `IORING_RECVSEND_FIXED_BUF` on plain
//! sends (probed; plain sends from the same memory otherwise).
#![allow(unsafe_code)]

use crate::window::{Region, WindowReader};
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `IORING_RECVSEND_FIXED_BUF` (not in the crate's bindings).
const RECVSEND_FIXED_BUF: u16 = 1 << 2;
/// Bytes one receive may return; client frames are at most 49 bytes.
pub const RECV_BUF: usize = 512;

const OP_SEND: u64 = 1 << 56;
const OP_RECV: u64 = 2 << 56;
const OP_ACCEPT: u64 = 3 << 56;
const OP_MASK: u64 = 0xff << 56;

/// What one send carries: borrowed for the cycle.
#[derive(Clone, Copy)]
pub enum SendData<'a> {
    Bytes(&'a [u8]),
    Window(Region<'a>),
}

pub struct SendOp<'a> {
    pub fd: BorrowedFd<'a>,
    pub data: SendData<'a>,
    /// Returned with the completion (the caller's client slot).
    pub token: u32,
}

#[derive(Debug)]
pub enum Event {
    Sent {
        token: u32,
        result: io::Result<usize>,
    },
    /// Bytes are in [`Uring::received`]; 0 bytes is the peer's end of stream.
    Received {
        token: u32,
        result: io::Result<usize>,
    },
    Accepted(io::Result<OwnedFd>),
}

pub struct Uring {
    ring: IoUring,
    /// Base and length of each registered window, by buffer index.
    registered: Vec<(usize, usize)>,
    fixed_send: bool,
    /// Boxed: the kernel writes into a buffer while the vector may grow and move.
    #[allow(clippy::vec_box)]
    recv_bufs: Vec<Box<[u8; RECV_BUF]>>,
    recv_busy: Vec<bool>,
    accept_armed: bool,
    /// `io_uring_enter` calls and submission entries, since the start.
    pub enters: u64,
    pub sqes: u64,
}

fn result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

impl Uring {
    /// A ring of `entries` submission slots with `windows` registered as fixed buffers. Fails
    /// when io_uring is unavailable (old kernel, `kernel.io_uring_disabled`, seccomp) or lacks
    /// send, receive or multishot accept: the caller falls back to epoll.
    pub fn new(entries: u32, windows: &[&WindowReader]) -> io::Result<Uring> {
        // Completions are reaped by the one thread that submits, at each enter: no need for
        // the kernel to interrupt it to run task work (falls back where unsupported).
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for code in [
            opcode::Send::CODE,
            opcode::Recv::CODE,
            opcode::AcceptMulti::CODE,
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring opcode {code} not supported"),
                ));
            }
        }
        let mut u = Uring {
            ring,
            registered: Vec::new(),
            fixed_send: false,
            recv_bufs: Vec::new(),
            recv_busy: Vec::new(),
            accept_armed: false,
            enters: 0,
            sqes: 0,
        };
        if !windows.is_empty() {
            let iov: Vec<libc::iovec> = windows
                .iter()
                .map(|w| {
                    let r = w.whole();
                    libc::iovec {
                        iov_base: r.ptr as *mut libc::c_void,
                        iov_len: r.len,
                    }
                })
                .collect();
            // SAFETY: each iovec is a whole window mapping, which the `WindowReader`s keep
            // alive; the caller keeps them for the ring's life (the TCP agent owns both). The
            // kernel only reads from them (sends).
            match unsafe { u.ring.submitter().register_buffers(&iov) } {
                Ok(()) => {
                    u.registered = iov
                        .iter()
                        .map(|v| (v.iov_base as usize, v.iov_len))
                        .collect();
                    u.fixed_send = u.probe_fixed_send(windows[0]);
                }
                // Pinning refused (RLIMIT_MEMLOCK without CAP_IPC_LOCK): plain sends.
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring buffer registration refused; sending without fixed buffers")
                }
            }
        }
        Ok(u)
    }

    /// Whether sends use the registered windows as fixed buffers.
    pub fn fixed_send(&self) -> bool {
        self.fixed_send
    }

    /// One fixed-buffer send of a window's first byte over a socket pair.
    fn probe_fixed_send(&mut self, w: &WindowReader) -> bool {
        let Ok((a, _b)) = std::os::unix::net::UnixStream::pair() else {
            return false;
        };
        let base = w.whole();
        let e = opcode::Send::new(types::Fd(a.as_raw_fd()), base.ptr, 1)
            .ioprio(RECVSEND_FIXED_BUF)
            .buf_group(0)
            .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            .build()
            .user_data(OP_SEND);
        // SAFETY: the entry reads one byte of a registered, live window; the socket `a` lives
        // until after the completion is reaped below (submit_and_wait(1)).
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            return false;
        }
        if self.ring.submit_and_wait(1).is_err() {
            return false;
        }
        let res = self.ring.completion().next().map(|c| c.result());
        tracing::debug!(?res, "io_uring fixed-buffer send probe");
        res == Some(1)
    }

    /// Keeps one multishot accept armed on `listener` (re-armed when the kernel ends it).
    pub fn arm_accept(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        if self.accept_armed {
            return Ok(());
        }
        let e = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(OP_ACCEPT);
        self.push(&e)?;
        self.accept_armed = true;
        Ok(())
    }

    /// Starts a receive for client `token` into its buffer unless one is in flight already.
    /// The caller keeps the socket open until the receive completes (shut it down to end it).
    pub fn arm_recv(&mut self, token: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
        let t = token as usize;
        while self.recv_bufs.len() <= t {
            self.recv_bufs.push(Box::new([0u8; RECV_BUF]));
            self.recv_busy.push(false);
        }
        if self.recv_busy[t] {
            return Ok(());
        }
        let e = opcode::Recv::new(
            types::Fd(fd.as_raw_fd()),
            self.recv_bufs[t].as_mut_ptr(),
            RECV_BUF as u32,
        )
        .build()
        .user_data(OP_RECV | u64::from(token));
        self.push(&e)?;
        self.recv_busy[t] = true;
        Ok(())
    }

    /// Whether a receive is in flight for `token` (its slot must not be reused until not).
    pub fn recv_busy(&self, token: u32) -> bool {
        self.recv_busy.get(token as usize).copied().unwrap_or(false)
    }

    /// The bytes of the last completed receive of `token`.
    pub fn received(&self, token: u32, len: usize) -> &[u8] {
        match self.recv_bufs.get(token as usize) {
            Some(b) if !self.recv_busy[token as usize] => &b[..len.min(RECV_BUF)],
            _ => &[],
        }
    }

    /// Queues an entry; when the submission queue is full, submits first.
    fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built in this module points at memory that outlives its
            // completion: receive buffers are owned here and not reused while busy; send
            // buffers are borrowed by `cycle`, which waits for every send's completion.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                self.sqes += 1;
                return Ok(());
            }
            self.enters += 1;
            self.ring.submit()?;
        }
    }

    fn send_entry(&self, op: &SendOp<'_>) -> squeue::Entry {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let fd = types::Fd(op.fd.as_raw_fd());
        let user = OP_SEND | u64::from(op.token);
        match op.data {
            SendData::Bytes(b) => opcode::Send::new(fd, b.as_ptr(), b.len() as u32)
                .flags(flags)
                .build()
                .user_data(user),
            SendData::Window(r) => {
                let mut s = opcode::Send::new(fd, r.ptr, r.len as u32).flags(flags);
                // Which registered window holds the region: looked up only when it is used.
                let at = r.ptr as usize;
                let index = || {
                    self.registered
                        .iter()
                        .position(|&(base, len)| at >= base && at < base + len)
                };
                if let Some(i) = self.fixed_send.then(index).flatten() {
                    s = s.ioprio(RECVSEND_FIXED_BUF).buf_group(i as u16);
                }
                s.build().user_data(user)
            }
        }
    }

    /// Queues `sends`, submits everything queued with one `io_uring_enter` (more only when the
    /// submission queue fills), and returns when every send has completed. With no sends it
    /// waits up to `wait` for any completion (input, a new connection). Completions go to
    /// `events`.
    pub fn cycle(
        &mut self,
        sends: &[SendOp<'_>],
        wait: Option<Duration>,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        let mut outstanding = 0usize;
        for op in sends {
            let e = self.send_entry(op);
            self.push(&e)?;
            outstanding += 1;
        }
        if outstanding > 0 {
            self.enters += 1;
            self.ring.submit_and_wait(outstanding)?;
        } else if let Some(t) = wait {
            let ts = types::Timespec::new()
                .sec(t.as_secs())
                .nsec(t.subsec_nanos());
            let args = types::SubmitArgs::new().timespec(&ts);
            self.enters += 1;
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
                Err(e) => return Err(e),
            }
        } else if !self.ring.submission().is_empty() {
            self.enters += 1;
            self.ring.submit()?;
        }
        loop {
            outstanding -= self.reap(events).min(outstanding);
            if outstanding == 0 {
                return Ok(());
            }
            // Not seen yet (a send the kernel did not finish inline): the buffers are borrowed
            // until it completes.
            self.enters += 1;
            self.ring.submit_and_wait(1)?;
        }
    }

    /// Moves completions to `events`; returns how many were sends.
    fn reap(&mut self, events: &mut Vec<Event>) -> usize {
        let mut sends = 0;
        let mut accept_ended = false;
        for c in self.ring.completion() {
            let user = c.user_data();
            let token = (user & 0xffff_ffff) as u32;
            match user & OP_MASK {
                OP_SEND => {
                    sends += 1;
                    events.push(Event::Sent {
                        token,
                        result: result(c.result()),
                    });
                }
                OP_RECV => {
                    if let Some(b) = self.recv_busy.get_mut(token as usize) {
                        *b = false;
                    }
                    events.push(Event::Received {
                        token,
                        result: result(c.result()),
                    });
                }
                OP_ACCEPT => {
                    if !io_uring::cqueue::more(c.flags()) {
                        accept_ended = true;
                    }
                    events.push(Event::Accepted(result(c.result()).map(|fd| {
                        // SAFETY: a successful accept completion carries a new descriptor
                        // that nothing else owns.
                        unsafe { OwnedFd::from_raw_fd(fd as i32) }
                    })));
                }
                _ => {}
            }
        }
        if accept_ended {
            self.accept_armed = false;
        }
        sends
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // A receive still in flight may be completed by the kernel while the ring is torn
        // down: its buffer is leaked rather than freed under it (a few hundred bytes, once).
        for (buf, busy) in self.recv_bufs.drain(..).zip(self.recv_busy.iter()) {
            if *busy {
                std::mem::forget(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::window;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn window_regions_and_bytes_reach_the_peer_in_one_cycle() {
        let (mut w, r) = window(1024, 1).unwrap();
        for i in 1..=10u8 {
            w.push(&[i; 64]);
        }
        w.publish();
        let mut u = Uring::new(64, &[&r]).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut events = Vec::new();
        let ops = [
            SendOp {
                fd: s.as_fd(),
                data: SendData::Bytes(b"hello"),
                token: 7,
            },
            SendOp {
                fd: s.as_fd(),
                data: SendData::Window(r.region(1, 0, 11)),
                token: 8,
            },
        ];
        u.cycle(&ops, None, &mut events).unwrap();
        assert_eq!(u.enters, 1);
        let sent: Vec<_> = events
            .iter()
            .map(|e| match e {
                Event::Sent { token, result } => (*token, *result.as_ref().unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sent, vec![(7, 5), (8, 10 * 67)]);
        let mut got = vec![0u8; 5 + 670];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got[..5], b"hello");
        assert_eq!(got[5..8], protocol::soupbintcp::SEQUENCED_RECORD_HEADER);
        assert_eq!(got[8..72], [1u8; 64]);
        assert_eq!(got[5 + 9 * 67 + 3..], [10u8; 64]);
    }
}
