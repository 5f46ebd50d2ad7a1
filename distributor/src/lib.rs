//! tickcast's distributor: config, routing, pinned shards, batching, the sendmmsg send path,
//! retransmission and journal; and the `tickcast` command line.
#![deny(unsafe_code)]

pub mod batch;
pub mod bench;
pub mod cmd;
pub mod config;
pub mod counters;
pub mod journal;
pub mod metrics;
pub mod pipeline;
pub mod retransmit;
pub mod routing;
pub mod shard;
pub mod sys;
