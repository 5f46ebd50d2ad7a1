//! The TCP fan-out without io_uring: epoll for new connections and client input, and one
//! non-blocking `sendmsg` per client per cycle (gathering its pending bytes) — or, as the
//! benchmark's naive baseline, one `send` per message per client. Same events as
//! [`crate::uring::Uring`], so the server's logic is one.
#![allow(unsafe_code)]

use crate::uring::{Event, SendData, SendOp, RECV_BUF};
use crate::window::FRAME;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

const LISTENER: u64 = u64::MAX;

pub struct EpollIo {
    epoll: Epoll,
    /// One `send` per frame of a window region (the naive baseline).
    per_message: bool,
    listener_watched: bool,
    watched: Vec<bool>,
    /// The socket of each watched token (the server releases a token before closing it).
    fds: Vec<i32>,
    recv_bufs: Vec<[u8; RECV_BUF]>,
    ready: Vec<libc::epoll_event>,
    /// Send system calls, and every other one (waits, receives, accepts).
    pub send_calls: u64,
    pub other_calls: u64,
}

/// One non-blocking, signal-free send of `bytes` from `ptr`.
fn send_raw(fd: BorrowedFd<'_>, ptr: *const u8, len: usize) -> io::Result<usize> {
    // SAFETY: `ptr..ptr+len` is readable for the call: a borrowed slice or a window region
    // (whose mapping its reader keeps alive); the kernel only reads it.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            ptr.cast(),
            len,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn parts(d: SendData<'_>) -> (*const u8, usize) {
    match d {
        SendData::Bytes(b) => (b.as_ptr(), b.len()),
        SendData::Window(r) => (r.ptr, r.len),
    }
}

impl EpollIo {
    pub fn new(per_message: bool) -> io::Result<EpollIo> {
        Ok(EpollIo {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?,
            per_message,
            listener_watched: false,
            watched: Vec::new(),
            fds: Vec::new(),
            recv_bufs: Vec::new(),
            ready: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            send_calls: 0,
            other_calls: 0,
        })
    }

    pub fn arm_accept(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        if !self.listener_watched {
            self.epoll
                .add(listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))
                .map_err(io::Error::from)?;
            self.listener_watched = true;
        }
        Ok(())
    }

    /// Watches client `token`'s socket for input (once; closing the socket unwatches it).
    pub fn arm_recv(&mut self, token: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
        let t = token as usize;
        while self.watched.len() <= t {
            self.watched.push(false);
            self.fds.push(-1);
            self.recv_bufs.push([0u8; RECV_BUF]);
        }
        if !self.watched[t] {
            self.epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, u64::from(token)))
                .map_err(io::Error::from)?;
            self.watched[t] = true;
            self.fds[t] = fd.as_raw_fd();
        }
        Ok(())
    }

    /// Forgets client `token` (before its socket is closed and the slot reused).
    pub fn release(&mut self, token: u32, fd: BorrowedFd<'_>) {
        if let Some(w) = self.watched.get_mut(token as usize) {
            if *w {
                let _ = self.epoll.delete(fd);
                *w = false;
                self.fds[token as usize] = -1;
            }
        }
    }

    pub fn received(&self, token: u32, len: usize) -> &[u8] {
        self.recv_bufs
            .get(token as usize)
            .map_or(&[][..], |b| &b[..len.min(RECV_BUF)])
    }

    fn send(&mut self, op: &SendOp<'_>) -> io::Result<usize> {
        let (ptr, len) = parts(op.data);
        if !self.per_message {
            self.send_calls += 1;
            return send_raw(op.fd, ptr, len);
        }
        // Naive: frame by frame (data may start with the rest of a partly sent frame; a
        // control frame is shorter than one and goes whole).
        let mut done = 0;
        while done < len {
            let chunk = match (len - done) % FRAME {
                0 => FRAME,
                rest => rest,
            };
            self.send_calls += 1;
            // SAFETY: `done + chunk ≤ len`: the pointer stays inside the region.
            match send_raw(op.fd, unsafe { ptr.add(done) }, chunk) {
                Ok(n) => {
                    done += n;
                    if n < chunk {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Sends `sends` now, then reports input and new connections, waiting up to `wait` for
    /// them when there was nothing to send.
    pub fn cycle(
        &mut self,
        sends: &[SendOp<'_>],
        wait: Option<Duration>,
        listener: Option<BorrowedFd<'_>>,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        for op in sends {
            let result = self.send(op);
            events.push(Event::Sent {
                token: op.token,
                result,
            });
        }
        // epoll_pwait2: the same sub-millisecond idle waits as the io_uring backend.
        let w = match wait {
            Some(w) if sends.is_empty() => w.min(Duration::from_secs(1)),
            _ => Duration::ZERO,
        };
        let ts = libc::timespec {
            tv_sec: w.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(w.subsec_nanos() as i32),
        };
        self.other_calls += 1;
        // SAFETY: `ready` is a live buffer of `ready.len()` epoll_event structs the kernel
        // fills; `ts` outlives the call; a null signal mask leaves the mask alone.
        let n = unsafe {
            libc::epoll_pwait2(
                self.epoll.0.as_raw_fd(),
                self.ready.as_mut_ptr(),
                self.ready.len() as i32,
                &ts,
                std::ptr::null(),
            )
        };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            n as usize
        };
        for i in 0..n {
            let token = self.ready[i].u64;
            if token == LISTENER {
                let Some(l) = listener else { continue };
                loop {
                    self.other_calls += 1;
                    // SAFETY: accept4 with null address arguments on a borrowed listener.
                    let fd = unsafe {
                        libc::accept4(
                            l.as_raw_fd(),
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if fd < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::WouldBlock {
                            events.push(Event::Accepted(Err(e)));
                        }
                        break;
                    }
                    // SAFETY: a new descriptor from accept4 that nothing else owns.
                    events.push(Event::Accepted(Ok(unsafe { OwnedFd::from_raw_fd(fd) })));
                }
                continue;
            }
            let t = token as usize;
            if t >= self.recv_bufs.len() || self.fds[t] < 0 {
                continue;
            }
            self.other_calls += 1;
            let buf = &mut self.recv_bufs[t];
            // SAFETY: the descriptor is the client's, registered under this token and not
            // closed (the server releases a token before closing its socket); the buffer is
            // ours and RECV_BUF bytes long.
            let r = unsafe {
                libc::recv(
                    self.fds[t],
                    buf.as_mut_ptr().cast(),
                    RECV_BUF,
                    libc::MSG_DONTWAIT,
                )
            };
            let result = if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                Err(e)
            } else {
                Ok(r as usize)
            };
            events.push(Event::Received {
                token: token as u32,
                result,
            });
        }
        Ok(())
    }
}
