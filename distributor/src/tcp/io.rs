//! The TCP agent's way to the kernel: io_uring (every send of a cycle in one
//! `io_uring_enter`, input and connections on the same ring) or epoll with one `send` per client
//! (or per message: the benchmark's naive baseline). One interface, so the agent is one.

use super::agent::Backend;
use super::{TcpCounters, TcpGroup};
use net::tcp_epoll::EpollIo;
use net::uring::{Event, SendOp, Uring};
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

pub(super) enum Io {
    Uring(Box<Uring>),
    Epoll(EpollIo),
}

impl Io {
    /// Opens the backend asked for; without io_uring, `fallback` says whether epoll may take
    /// its place (one log line) or starting fails.
    pub(super) fn open(
        want: Backend,
        fallback: bool,
        groups: &[TcpGroup],
        counters: &TcpCounters,
    ) -> io::Result<Io> {
        Ok(match want {
            Backend::Uring => {
                let windows: Vec<_> = groups.iter().map(|g| &g.window).collect();
                match Uring::new(4096, &windows) {
                    Ok(u) => {
                        counters.backend.set(1);
                        counters.fixed_buffers.set(u64::from(u.fixed_send()));
                        Io::Uring(Box::new(u))
                    }
                    Err(e) if fallback => {
                        tracing::warn!(error = %e, "io_uring unavailable; the TCP agent uses epoll and one send per client");
                        counters.backend.set(2);
                        Io::Epoll(EpollIo::new(false)?)
                    }
                    Err(e) => return Err(e),
                }
            }
            Backend::Epoll => {
                counters.backend.set(2);
                Io::Epoll(EpollIo::new(false)?)
            }
            Backend::Naive => {
                counters.backend.set(3);
                Io::Epoll(EpollIo::new(true)?)
            }
        })
    }

    /// Hands `sends` to the kernel, collects completions, input and new connections on
    /// `listener`, waiting up to `wait` when there was nothing to send; updates the system-call
    /// counters.
    pub(super) fn cycle(
        &mut self,
        listener: BorrowedFd<'_>,
        sends: &[SendOp<'_>],
        wait: Option<Duration>,
        events: &mut Vec<Event>,
        counters: &TcpCounters,
    ) -> io::Result<()> {
        match self {
            Io::Uring(u) => {
                let _ = u.arm_accept(listener);
                let r = u.cycle(sends, wait, events);
                counters.send_syscalls.set(u.enters);
                counters.syscalls.set(u.enters);
                counters.sqes.set(u.sqes);
                r
            }
            Io::Epoll(e) => {
                let _ = e.arm_accept(listener);
                let r = e.cycle(sends, wait, Some(listener), events);
                counters.send_syscalls.set(e.send_calls);
                counters.syscalls.set(e.send_calls + e.other_calls);
                r
            }
        }
    }

    /// Starts receiving from a new client.
    pub(super) fn watch(&mut self, token: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
        match self {
            Io::Uring(u) => u.arm_recv(token, fd),
            Io::Epoll(e) => e.arm_recv(token, fd),
        }
    }

    /// After a receive completed: the next one (io_uring; epoll keeps watching).
    pub(super) fn rearm(&mut self, token: u32, fd: BorrowedFd<'_>) -> io::Result<()> {
        match self {
            Io::Uring(u) => u.arm_recv(token, fd),
            Io::Epoll(_) => Ok(()),
        }
    }

    pub(super) fn received(&self, token: u32, len: usize) -> &[u8] {
        match self {
            Io::Uring(u) => u.received(token, len),
            Io::Epoll(e) => e.received(token, len),
        }
    }

    /// Whether the kernel still holds a receive into this client's buffer.
    pub(super) fn busy(&self, token: u32) -> bool {
        match self {
            Io::Uring(u) => u.recv_busy(token),
            Io::Epoll(_) => false,
        }
    }

    /// Forgets a client before its socket is closed.
    pub(super) fn release(&mut self, token: u32, fd: BorrowedFd<'_>) {
        if let Io::Epoll(e) = self {
            e.release(token, fd);
        }
    }
}
