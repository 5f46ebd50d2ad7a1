//! Waiting for readiness on borrowed sockets (poll(2) through nix: safe, no raw fds).

use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// Most sockets one wait watches; the fd list lives on the stack (no allocation).
pub const MAX_WAIT_FDS: usize = 48;

fn timeout(d: Duration) -> PollTimeout {
    // Round up so that a sub-millisecond wait still waits.
    let ms = d.as_micros().div_ceil(1000).min(u128::from(u16::MAX)) as u16;
    PollTimeout::from(ms)
}

/// Blocks until one of `socks` (at most `MAX_WAIT_FDS`; the rest are not watched) is readable
/// or `wait` passes. Returns whether one is readable.
pub fn wait_readable<'a>(socks: impl Iterator<Item = BorrowedFd<'a>>, wait: Duration) -> bool {
    let mut socks = socks.take(MAX_WAIT_FDS).peekable();
    let Some(&first) = socks.peek() else {
        std::thread::sleep(wait);
        return false;
    };
    let mut n = 0;
    let mut fds: [PollFd<'_>; MAX_WAIT_FDS] = std::array::from_fn(|_| match socks.next() {
        Some(s) => {
            n += 1;
            PollFd::new(s, PollFlags::POLLIN)
        }
        None => PollFd::new(first, PollFlags::POLLIN),
    });
    nix::poll::poll(&mut fds[..n], timeout(wait)).is_ok_and(|r| r > 0)
}

/// Blocks until `sock` is writable or `wait` passes.
pub fn wait_writable(sock: &impl AsFd, wait: Duration) -> bool {
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
    nix::poll::poll(&mut fds, timeout(wait)).is_ok_and(|r| r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Instant;

    #[test]
    fn readable_when_a_datagram_waits() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        assert!(!wait_readable(
            [rx.as_fd()].into_iter(),
            Duration::from_millis(5)
        ));
        assert!(t.elapsed() >= Duration::from_millis(4));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        assert!(wait_readable(
            [tx.as_fd(), rx.as_fd()].into_iter(),
            Duration::from_secs(2)
        ));
        assert!(wait_writable(&tx, Duration::from_millis(1)));
    }
}
