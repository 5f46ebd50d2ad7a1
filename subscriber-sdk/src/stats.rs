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
    /// ns from the message's feed handler receive time to delivery (complete after each
    /// `poll`).
    pub latency: Histogram<u64>,
    /// A run of equal latencies not yet in `latency` (value, count): the records of a datagram
    /// mostly share their input's receive time and the round's clock, and one histogram update
    /// per run instead of per message was ~5 % of a subscriber's CPU.
    pending: (u64, u64),
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
            latency: Stats::latency_histogram(),
            pending: (0, 0),
        }
    }

    /// An empty histogram of the shape `latency` has (others of it can be added to it): 1 ns
    /// to 1 hour at 3 significant digits, preallocated, so recording never allocates.
    pub fn latency_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
    }

    /// Records delivery at `now` (wall-clock ns, read once per received batch: a clock read
    /// per message would cost more than the rest of delivery). Equal latencies in a row are
    /// counted and added at once; [`Stats::flush_latency`] adds the last run.
    #[inline]
    pub fn record_latency(&mut self, recv_ts_ns: u64, now: u64) {
        if recv_ts_ns > 0 && now > recv_ts_ns {
            let ns = now - recv_ts_ns;
            if ns == self.pending.0 {
                self.pending.1 += 1;
            } else {
                self.flush_latency();
                self.pending = (ns, 1);
            }
        }
    }

    /// Adds the run of latencies still pending to `latency` (the subscriber does at the end
    /// of every poll).
    pub fn flush_latency(&mut self) {
        if self.pending.1 > 0 {
            self.latency
                .saturating_record_n(self.pending.0, self.pending.1);
            self.pending.1 = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_equal_latencies_are_counted_as_if_recorded_one_by_one() {
        let mut s = Stats::new();
        let mut direct = Stats::latency_histogram();
        let now = 1_000_000;
        // Runs, single values, a return to an earlier value, and stamps that record nothing.
        let stamps = [
            990_000, 990_000, 990_000, 995_000, 0, 990_000, 999_999, 999_999, 2_000_000, 1,
        ];
        for ts in stamps {
            s.record_latency(ts, now);
            if ts > 0 && now > ts {
                direct.record(now - ts).unwrap();
            }
        }
        s.flush_latency();
        s.flush_latency(); // a second flush adds nothing
        assert_eq!(s.latency.len(), direct.len());
        for v in [1, 5_000, 10_000, 999_999] {
            assert_eq!(s.latency.count_at(v), direct.count_at(v), "value {v}");
        }
    }
}
