//! A subscriber's statistics: what arrived, what was delivered, recovery, kernel drops, and the
//! latency from the feed handler's receive time to delivery as an HDR histogram.

use crate::arbiter::{ArbiterStats, Feed};
use hdrhistogram::Histogram;

pub struct Stats {
    pub datagrams: u64,
    /// Not MoldUDP64, or a count that overruns the datagram.
    pub bad_datagrams: u64,
    /// Datagrams of another session on a group's addresses.
    pub wrong_session: u64,
    /// Datagrams from an address other than the feed's pinned sender (or the group's server).
    pub wrong_source: u64,
    /// Records that are not schema-v1 messages.
    pub malformed: u64,
    pub request_errors: u64,
    /// Sum over groups.
    pub arbiter: ArbiterStats,
    /// Kernel drop counters (SO_RXQ_OVFL) by group and feed.
    drops: Vec<[u64; 3]>,
    /// ns from the message's feed handler receive time to delivery.
    pub latency: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            datagrams: 0,
            bad_datagrams: 0,
            wrong_session: 0,
            wrong_source: 0,
            malformed: 0,
            request_errors: 0,
            arbiter: ArbiterStats::default(),
            drops: Vec::new(),
            // 1 ns to 1 hour at 3 significant digits; preallocated, so recording never allocates.
            latency: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    /// Records delivery at `now` (wall-clock ns, read once per received batch: a clock read
    /// per message would cost more than the rest of delivery).
    #[inline]
    pub fn record_latency(&mut self, recv_ts_ns: u64, now: u64) {
        if recv_ts_ns > 0 && now > recv_ts_ns {
            self.latency.saturating_record(now - recv_ts_ns);
        }
    }

    pub fn set_kernel_drops(&mut self, group: usize, feed: Feed, cumulative: u64) {
        if group >= self.drops.len() {
            self.drops.resize(group + 1, [0; 3]);
        }
        let i = match feed {
            Feed::A => 0,
            Feed::B => 1,
            Feed::Retransmit => 2,
        };
        self.drops[group][i] = cumulative;
    }

    /// Datagrams the kernel dropped on our sockets because their buffers were full.
    pub fn kernel_drops(&self) -> u64 {
        self.drops.iter().flatten().sum()
    }

    /// Latency percentile in ns (0 when nothing was recorded).
    pub fn latency_ns(&self, percentile: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(percentile / 100.0)
        }
    }
}
