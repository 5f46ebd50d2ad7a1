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
/// or `wait` passes. Returns whether one is readable (or poll(2) failed: the read tells).
pub fn wait_readable<'a>(socks: impl Iterator<Item = BorrowedFd<'a>>, wait: Duration) -> bool {
    ready(socks, wait) != 0
}

/// Like `wait_readable`, but says which: bit `i` is set when the `i`-th socket is readable (or
/// has an error or hang-up to report, which a receive call then returns). A zero `wait` only
/// looks. 0 when none is; every bit when poll(2) itself failed, so the caller reads them all.
pub fn ready<'a>(socks: impl Iterator<Item = BorrowedFd<'a>>, wait: Duration) -> u64 {
    let mut socks = socks.take(MAX_WAIT_FDS).peekable();
    let Some(&first) = socks.peek() else {
        std::thread::sleep(wait);
        return 0;
    };
    let mut n = 0;
    let mut fds: [PollFd<'_>; MAX_WAIT_FDS] = std::array::from_fn(|_| match socks.next() {
        Some(s) => {
            n += 1;
            PollFd::new(s, PollFlags::POLLIN)
        }
        None => PollFd::new(first, PollFlags::POLLIN),
    });
    match nix::poll::poll(&mut fds[..n], timeout(wait)) {
        Ok(0) => return 0,
        Ok(_) => {}
        Err(_) => return u64::MAX,
    }
    fds[..n]
        .iter()
        .enumerate()
        .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
        .fold(0, |m, (i, _)| m | 1 << i)
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

    #[test]
    fn ready_names_the_readable_sockets() {
        let socks: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let fds = || socks.iter().map(|s| s.as_fd());
        assert_eq!(ready(fds(), Duration::ZERO), 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", socks[1].local_addr().unwrap()).unwrap();
        assert_eq!(ready(fds(), Duration::from_secs(2)), 0b010);
        tx.send_to(b"y", socks[2].local_addr().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while ready(fds(), Duration::ZERO) != 0b110 && Instant::now() < deadline {}
        assert_eq!(ready(fds(), Duration::ZERO), 0b110);
    }
}
