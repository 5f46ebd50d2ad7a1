#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

pub mod arbiter;
pub mod ffi;
pub mod net;
pub mod stats;
pub mod subscriber;
mod sys;

pub use arbiter::ArbiterConfig;
pub use subscriber::{Builder, Context, GroupSpec, Handler, Options, PollMode, Subscriber};

/// Wall-clock ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
