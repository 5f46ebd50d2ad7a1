//! Each key's default where the TOML leaves it out (serde's `default = "…"` takes a function).
//! The values and why they are what they are: docs/CONFIG.md.

use super::{Content, Fsync, Idle, TcpIo};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub(super) fn d_tcp_allow() -> Vec<String> {
    vec!["127.0.0.0/8".into()]
}
pub(super) fn d_max_clients() -> usize {
    1000
}
pub(super) fn d_login_timeout() -> u64 {
    5000
}
pub(super) fn d_idle_timeout() -> u64 {
    15_000
}
pub(super) fn d_lag_limit() -> u64 {
    65_536
}
pub(super) fn d_tcp_sndbuf() -> usize {
    1 << 20
}
pub(super) fn d_tcp_io() -> TcpIo {
    TcpIo::Auto
}

pub(super) fn d_rate() -> u64 {
    20_000
}
pub(super) fn d_instruments() -> u16 {
    100
}
pub(super) fn d_seed() -> u64 {
    1
}
pub(super) fn d_loopback() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}
pub(super) fn d_rcvbuf() -> usize {
    8 << 20
}
pub(super) fn d_rerequest_timeout() -> u64 {
    250
}
pub(super) fn d_speed() -> String {
    "max".into()
}
pub(super) fn d_queue() -> usize {
    1024
}
pub(super) fn d_slice_us() -> u64 {
    100
}
pub(super) fn d_idle() -> Idle {
    Idle::Park
}
pub(super) fn d_content() -> Content {
    Content::All
}
pub(super) fn d_ttl() -> u32 {
    1
}
pub(super) fn d_max_payload() -> usize {
    protocol::moldudp64::DEFAULT_MAX_PAYLOAD
}
pub(super) fn d_max_delay() -> u64 {
    100
}
pub(super) fn d_heartbeat() -> u64 {
    1000
}
pub(super) fn d_retransmit_cap() -> u16 {
    1000
}
pub(super) fn d_retransmit_rate() -> u32 {
    200
}
pub(super) fn d_ring() -> usize {
    1 << 18
}
pub(super) fn d_sndbuf() -> usize {
    4 << 20
}
pub(super) fn d_journal_dir() -> PathBuf {
    PathBuf::from("tickcast-journal")
}
pub(super) fn d_fsync() -> Fsync {
    Fsync::None
}
pub(super) fn d_fsync_interval() -> u64 {
    100
}
