#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

pub mod ffi;
pub mod stats;
pub mod subscriber;
pub mod tcp;

/// The sequenced-stream receiver (A/B arbitration, gap recovery) lives in the networking crate,
/// shared with the feed handler; re-exported here for applications.
pub use net::arbiter;
pub use net::arbiter::{ArbiterConfig, ArbiterStats};
pub use net::now_ns;
pub use net::recv::RecvCounters;
pub use subscriber::{Builder, Context, GroupSpec, Handler, Options, PollMode, Subscriber};
pub use tcp::{TcpOptions, TcpStats, TcpSubscriber};
