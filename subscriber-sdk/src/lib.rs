//! tickcast subscriber SDK: receive tickcast groups, arbitrate feeds A and B, recover gaps from
//! the re-request server and deliver messages strictly in sequence order.
#![deny(unsafe_code)]

pub mod net;

/// Wall-clock ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
