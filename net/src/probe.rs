//! What the host offers, probed with the calls tickcast would make (for `tickcast doctor`).

use std::path::Path;

/// Whether UDP segmentation offload (`UDP_SEGMENT`) is accepted on a UDP socket.
pub fn gso_supported() -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    setsockopt(&s, sockopt::UdpGsoSegment, &1400).is_ok()
}

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}
