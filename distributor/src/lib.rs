//! tickcast's distributor: config, routing, pinned shards, batching, the sendmmsg send path
//! (through `net`), retransmission and journal. The command line lives in the `cli` crate.
#![deny(unsafe_code)]

pub mod agent;
pub mod batch;
pub mod config;
pub mod counters;
pub mod journal;
pub mod pipeline;
pub mod retransmit;
pub mod retransmitter;
pub mod routing;
pub mod shard;
pub mod tcp;
