//! The `tickcast` command line: subcommands, the bench harness and the metrics HTTP endpoint.
//! Nothing here is needed by a library user; the logic lives in the crates below.
#![deny(unsafe_code)]

pub mod args;
pub mod bench;
mod bench_baselines;
mod bench_host;
mod bench_subscribers;
mod bench_table;
pub mod bench_tcp;
pub mod cmd;
pub mod metrics;
