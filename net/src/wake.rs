//! A wake-up a thread can wait for in poll(2) beside its sockets (an eventfd): another thread
//! rings it when there is work, instead of the waiter looking every few milliseconds.

use nix::sys::eventfd::{EfdFlags, EventFd};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

#[derive(Debug)]
pub struct Wake(EventFd);

impl Wake {
    pub fn new() -> io::Result<Wake> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(Wake(fd))
    }

    /// Makes the wake readable until taken. Best effort: it fails only when the counter is
    /// full, i.e. rung already.
    pub fn ring(&self) {
        let _ = self.0.write(1);
    }

    /// Whether it was rung since last taken; leaves it unrung.
    pub fn take(&self) -> bool {
        self.0.read().is_ok()
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn readable_from_ring_until_taken() {
        let w = Wake::new().unwrap();
        let readable =
            |w: &Wake| crate::poll::wait_readable([w.as_fd()].into_iter(), Duration::ZERO);
        assert!(!readable(&w) && !w.take());
        w.ring();
        w.ring();
        assert!(readable(&w));
        assert!(w.take());
        assert!(!readable(&w) && !w.take(), "two rings, one wake-up");
    }
}
