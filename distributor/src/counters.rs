//! Counters anyone can read while the shards run (metrics, status line, summary). Each is
//! written by one thread only.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: a load and a store are enough and cheaper than an atomic RMW.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    /// A store that publishes what the writer did before it (e.g. a journal write) to a
    /// reader that loads with `get_acquire`.
    #[inline]
    pub fn set_release(&self, v: u64) {
        self.0.store(v, std::sync::atomic::Ordering::Release);
    }
    #[inline]
    pub fn get_acquire(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[derive(Debug, Default)]
pub struct GroupCounters {
    pub messages: Counter,
    pub datagrams: Counter,
    pub bytes: Counter,
    pub heartbeats: Counter,
    pub last_seq: Counter,
    pub retransmit_requests: Counter,
    pub retransmit_messages: Counter,
    pub retransmit_datagrams: Counter,
    pub retransmit_denied: Counter,
    pub retransmit_rate_limited: Counter,
    pub retransmit_unanswerable: Counter,
    /// Requests from new sources while every tracked source was still spending its budget.
    pub retransmit_busy: Counter,
    pub errors: Counter,
}

#[derive(Debug, Default)]
pub struct ShardCounters {
    pub messages_in: Counter,
    pub batches_in: Counter,
    pub sendmmsg_calls: Counter,
    pub datagrams_sent: Counter,
    pub partial_sends: Counter,
    pub eagain_waits: Counter,
    pub errors: Counter,
    pub queue_depth: Counter,
    /// Re-requests of the wrong size (not 20 bytes), and for a session this shard does not
    /// serve: refused before any group is known.
    pub retransmit_malformed: Counter,
    pub retransmit_unknown_session: Counter,
    /// Headers that carried several datagrams (UDP GSO), and GSO headers the kernel refused.
    pub gso_sends: Counter,
    pub gso_refused: Counter,
    /// CPU time of the shard's thread (ns), written when it finishes (benchmarks).
    pub cpu_ns: Counter,
    /// CPU time of its retransmitter's thread (re-requests and journal prefaulting), likewise.
    pub retransmitter_cpu_ns: Counter,
}

/// A group's figures for the summary line and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub name: String,
    pub session: String,
    pub messages: u64,
    pub datagrams: u64,
    pub last_seq: u64,
    pub bytes: u64,
    pub heartbeats: u64,
    pub retransmit_requests: u64,
    pub retransmit_messages: u64,
    pub retransmit_denied: u64,
    pub retransmit_rate_limited: u64,
    pub retransmit_busy: u64,
    pub retransmit_unanswerable: u64,
    pub retransmit_datagrams: u64,
    pub errors: u64,
}

impl GroupCounters {
    pub fn summary(&self, name: &str, session: &str) -> GroupSummary {
        GroupSummary {
            name: name.to_string(),
            session: session.to_string(),
            messages: self.messages.get(),
            datagrams: self.datagrams.get(),
            last_seq: self.last_seq.get(),
            bytes: self.bytes.get(),
            heartbeats: self.heartbeats.get(),
            retransmit_requests: self.retransmit_requests.get(),
            retransmit_messages: self.retransmit_messages.get(),
            retransmit_denied: self.retransmit_denied.get(),
            retransmit_rate_limited: self.retransmit_rate_limited.get(),
            retransmit_busy: self.retransmit_busy.get(),
            retransmit_unanswerable: self.retransmit_unanswerable.get(),
            retransmit_datagrams: self.retransmit_datagrams.get(),
            errors: self.errors.get(),
        }
    }
}
