//! A shard: one thread pinned to one core, owning a disjoint set of groups. Its duty cycle
//! (`do_work(now)`) drains the input queue into per-group datagrams, flushes them by the rules
//! (full, max delay, input drained, heartbeat when idle), and hands everything ready — all
//! groups, feeds A and B, unicast destinations — to the kernel in one sendmmsg. Re-requests
//! are answered by the shard's retransmitter agent on another thread (`retransmitter.rs`).

mod open;
mod outbox;
mod set;

pub use open::ShardSpec;
pub use set::ShardSet;

use crate::agent::Agent;
use crate::batch::ShardQueue;
use crate::config::{Group, Idle, Journal as JournalCfg};
use crate::counters::{GroupCounters, ShardCounters};
use crate::journal::Journal;
use crossbeam_channel::{RecvTimeoutError, TryRecvError};
use net::ratelog::RateLimited;
use net::send::{GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use net::socket::SendOptions;
use net::warn_limited;
use net::window::{WindowReader, WindowWriter};
use net::MmsgSender;
use outbox::Outbox;
use protocol::moldudp64::{self, PacketBuilder, Session};
use protocol::schema::RECORD_SIZE;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams the outbox holds before it must be sent mid-cycle.
const OUTBOX_DATAGRAMS: usize = 512;
/// Longest a parked shard sleeps without input or a timer due.
const MAX_PARK: Duration = Duration::from_millis(100);
/// End-of-session packets sent at shutdown, spaced out.
const END_OF_SESSION_REPEATS: usize = 3;

struct GroupState {
    name: String,
    session: Session,
    builder: PacketBuilder<Vec<u8>>,
    first_append: Option<Instant>,
    last_sent: Instant,
    /// (destination, socket index)
    dests: Vec<(SocketAddrV4, u16)>,
    journal: Journal,
    max_delay: Duration,
    heartbeat: Duration,
    counters: Arc<GroupCounters>,
    /// UDP GSO for this group's data datagrams (config, probe, and no refusal so far).
    gso: bool,
    /// The outbox entry (one per destination follows it) of the group's open GSO run: full
    /// datagrams back to back in the arena, sent as one header per destination. The entry
    /// itself says where the run's bytes are and its segment size.
    run: Option<usize>,
    /// The group's SoupBinTCP frames for the TCP agent (when `[tcp]` is configured).
    tcp: Option<WindowWriter>,
}

impl GroupState {
    /// When the group's timer is due: its open datagram's `max_delay`, else (nothing open) its
    /// heartbeat, counted from the last packet sent.
    fn timer_at(&self) -> Instant {
        match self.first_append {
            Some(t) => t + self.max_delay,
            None => self.last_sent + self.heartbeat,
        }
    }
}

pub struct Shard {
    core: usize,
    idle: Idle,
    slice_us: u64,
    groups: Vec<GroupState>,
    /// Local group index by global group index.
    local: [u8; 64],
    /// Send sockets (by interface and options).
    sockets: Vec<UdpSocket>,
    outbox: Outbox,
    sender: MmsgSender,
    queue: ShardQueue,
    counters: Arc<ShardCounters>,
    /// Set by a signal: ends the linger after the feed has ended.
    stop: Arc<AtomicBool>,
    /// How long to keep repeating end of session after the feed ends (the retransmitter
    /// answers re-requests meanwhile).
    linger: Duration,
    send_errors: RateLimited,
    /// The input queue is open (until the feed drops its end).
    open: bool,
    /// A batch that arrived while parked: taken by the next duty cycle like any other.
    parked: Option<Box<crate::batch::Batch>>,
    /// (global group index, reader) of each TCP window, for the TCP agent.
    tcp_readers: Vec<(usize, WindowReader)>,
}

impl crate::agent::Agent for Shard {
    /// The sender's duty cycle at `now`: drain the input queue into the groups' datagrams,
    /// flush (queue drained, or a datagram older than `max_delay`), heartbeats for quiet
    /// groups, then one sendmmsg for everything ready. Returns messages taken plus heartbeats.
    fn do_work(&mut self, now: Instant) -> usize {
        let mut work = 0usize;
        let mut drained = false;
        if let Some(batch) = self.parked.take() {
            work += self.take_batch(batch, now);
            drained = true;
        }
        loop {
            match self.queue.rx.try_recv() {
                Ok(batch) => {
                    work += self.take_batch(batch, now);
                    drained = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.open = false;
                    break;
                }
            }
        }
        self.flush(now, drained);
        work += self.heartbeats(now);
        if !self.outbox.out.is_empty() {
            self.send_outbox();
        }
        self.counters.queue_depth.set(self.queue.rx.len() as u64);
        work
    }
}

impl Shard {
    /// The page preparer of each group's journal, in the shard's group order, `None` where
    /// already taken (for the retransmitter's thread; taken once).
    pub fn take_journal_preparers(&mut self) -> Vec<Option<crate::journal::PagePreparer>> {
        self.groups
            .iter_mut()
            .map(|g| g.journal.take_preparer())
            .collect()
    }

    /// The readers of this shard's TCP windows, by global group index (taken once).
    pub fn take_tcp_readers(&mut self) -> Vec<(usize, WindowReader)> {
        std::mem::take(&mut self.tcp_readers)
    }

    /// Runs the duty cycle until the input queue closes (the feed ended or was stopped), then
    /// shuts the sessions down cleanly.
    pub fn run(mut self) {
        crate::agent::pin_current(Some(self.core), "shard");
        if self.slice_us > 0 {
            if let Err(e) = net::sched::set_slice(self.slice_us * 1000) {
                tracing::warn!(
                    slice_us = self.slice_us,
                    error = %e,
                    "the kernel takes no custom scheduler slice (Linux 6.12+); running with its default"
                );
            }
        }
        while self.open {
            let now = Instant::now();
            if self.do_work(now) == 0 && self.open {
                self.idle_wait(now);
            }
        }
        self.shutdown();
        self.counters.cpu_ns.set(net::clock::thread_cpu_ns());
    }

    /// Waits by the idle strategy. Parking blocks on the input queue until a batch arrives
    /// (kept for the next duty cycle) or the next timer is due, and no longer: no wake-ups on
    /// a back-off in between.
    fn idle_wait(&mut self, now: Instant) {
        match self.idle {
            Idle::Spin => std::hint::spin_loop(),
            Idle::Yield => std::thread::yield_now(),
            Idle::Park => match self.queue.park(self.idle_deadline(now)) {
                Ok(batch) => self.parked = Some(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.open = false,
            },
        }
    }

    /// How long from `now` until a timer is due: a partial datagram's `max_delay`, or a quiet
    /// group's heartbeat (at most 100 ms).
    pub fn idle_deadline(&self, now: Instant) -> Duration {
        self.groups
            .iter()
            .map(|g| g.timer_at().saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_PARK)
            .min(MAX_PARK)
    }

    /// Whether the input queue is still open (the feed has not ended).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Finalizes partly filled datagrams: every group's (`all`), or only those whose oldest
    /// message has waited `max_delay`.
    fn flush(&mut self, now: Instant, all: bool) {
        for li in 0..self.groups.len() {
            let g = &self.groups[li];
            if !g.builder.is_empty() && (all || now >= g.timer_at()) {
                self.finalize(li, now);
            }
        }
    }

    /// Appends a batch's records to their groups; returns the batch to the pool.
    fn take_batch(&mut self, mut batch: Box<crate::batch::Batch>, now: Instant) -> usize {
        let n = batch.len();
        for (rec, &mask) in batch.records.iter().zip(batch.masks.iter()) {
            let mut m = mask;
            while m != 0 {
                let gi = m.trailing_zeros() as usize;
                m &= m - 1;
                let li = self.local[gi] as usize;
                if li < self.groups.len() {
                    self.append(li, rec, now);
                }
            }
        }
        self.counters.messages_in.add(n as u64);
        self.counters.batches_in.add(1);
        batch.clear();
        let _ = self.queue.pool.try_send(batch);
        n
    }

    #[inline]
    fn append(&mut self, li: usize, rec: &[u8; RECORD_SIZE], now: Instant) {
        if !self.groups[li].builder.fits(RECORD_SIZE) {
            self.finalize(li, now);
        }
        let g = &mut self.groups[li];
        if g.builder.append(rec).is_err() {
            // Unreachable with a validated max_payload; counted, never a panic.
            g.counters.errors.add(1);
            return;
        }
        if g.first_append.is_none() {
            g.first_append = Some(now);
        }
        if let Err(e) = g.journal.append(rec) {
            // The disk is full or the file cannot grow: the message is still sent (the stream
            // must not stall) but cannot be served again; counted and logged.
            g.counters.errors.add(1);
            warn_limited!(self.send_errors, group = %g.name, error = %e, "journal append failed");
        }
        if let Some(w) = &mut g.tcp {
            w.push(rec);
        }
        g.counters.messages.add(1);
    }

    /// Moves group `li`'s datagram into the outbox (once per destination) and starts the next.
    fn finalize(&mut self, li: usize, now: Instant) {
        if !self.outbox.room(li) {
            self.send_outbox();
        }
        let g = &mut self.groups[li];
        let bytes = g.builder.as_bytes();
        let len = bytes.len();
        let off = self.outbox.take(li, len);
        self.outbox.arena[off..off + len].copy_from_slice(bytes);
        // Extend the group's GSO run when this datagram follows it directly and is no longer
        // than its segments (a shorter one ends the run).
        let n = g.dests.len();
        let len32 = len as u32;
        let run = g.run.filter(|&first| {
            let head = &self.outbox.out[first];
            let segment = u32::from(head.segment);
            g.gso
                && segment > 0
                && head.offset + head.len == off as u32
                && len32 <= segment
                && head.len / segment < u32::from(GSO_MAX_SEGMENTS)
                && head.len + len32 <= GSO_MAX_BYTES
        });
        if let Some(first) = run {
            for e in &mut self.outbox.out[first..first + n] {
                e.len += len32;
            }
            if len32 < u32::from(self.outbox.out[first].segment) {
                g.run = None;
            }
        } else {
            let first = self.outbox.out.len();
            let segment = if g.gso { len as u16 } else { 0 };
            self.outbox.push_to_all(off, len, &g.dests, li, segment);
            g.run = g.gso.then_some(first);
        }
        g.counters.datagrams.add(1);
        g.counters.bytes.add(len as u64);
        let next = g.builder.next_sequence();
        // Journaled before: the retransmitter may serve up to here.
        g.counters.last_seq.set_release(next - 1);
        g.builder.reset(next);
        g.first_append = None;
        g.last_sent = now;
    }

    /// Queues a header-only packet (heartbeat or end of session) to all of a group's feeds.
    fn control_packet(&mut self, li: usize, end_of_session: bool) {
        if !self.outbox.room(li) {
            self.send_outbox();
        }
        let g = &mut self.groups[li];
        let off = self.outbox.take(li, moldudp64::HEADER_LEN);
        let next = g.builder.next_sequence();
        let buf = &mut self.outbox.arena[off..off + moldudp64::HEADER_LEN];
        let len = if end_of_session {
            moldudp64::emit_end_of_session(buf, &g.session, next)
        } else {
            moldudp64::emit_heartbeat(buf, &g.session, next)
        };
        self.outbox.push_to_all(off, len, &g.dests, li, 0);
    }

    fn heartbeats(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for li in 0..self.groups.len() {
            let g = &self.groups[li];
            if g.builder.is_empty() && now >= g.timer_at() {
                self.control_packet(li, false);
                let g = &mut self.groups[li];
                g.last_sent = now;
                g.counters.heartbeats.add(1);
                n += 1;
            }
        }
        n
    }

    /// Journals first, then one sendmmsg (per socket) for everything in the outbox.
    fn send_outbox(&mut self) {
        for g in &mut self.groups {
            if let Err(e) = g.journal.commit() {
                g.counters.errors.add(1);
                warn_limited!(self.send_errors, group = %g.name, error = %e, "journal write failed");
            }
        }
        let r = self
            .sender
            .send_all(&self.sockets, &self.outbox.arena, &self.outbox.out);
        self.counters.sendmmsg_calls.add(r.calls);
        self.counters.datagrams_sent.add(r.sent);
        self.counters.gso_sends.add(r.gso_sends);
        if r.gso_refused > 0 {
            // Off for every group sending on that socket, once and for all; said once.
            self.counters.gso_refused.add(r.gso_refused);
            let socket = r.gso_refused_socket;
            for g in &mut self.groups {
                if g.gso && g.dests.iter().any(|&(_, s)| s == socket) {
                    g.gso = false;
                    tracing::warn!(group = %g.name, "the kernel refused UDP GSO on this group's socket; sending datagrams one by one");
                }
            }
        }
        self.counters.partial_sends.add(r.partial);
        self.counters.eagain_waits.add(r.eagain_waits);
        if r.errors > 0 {
            self.counters.errors.add(r.errors);
            warn_limited!(
                self.send_errors,
                errors = r.errors,
                error = %std::io::Error::from_raw_os_error(r.last_errno),
                "datagrams refused by the kernel"
            );
        }
        self.outbox.clear();
        for g in &mut self.groups {
            g.run = None;
            // TCP clients get what multicast got.
            if let Some(w) = &mut g.tcp {
                w.publish();
            }
        }
    }

    /// Flush everything, send end of session a few times (the retransmitter answers
    /// re-requests meanwhile), sync.
    fn shutdown(&mut self) {
        let now = Instant::now();
        if let Some(batch) = self.parked.take() {
            self.take_batch(batch, now);
        }
        while let Ok(batch) = self.queue.rx.try_recv() {
            self.take_batch(batch, now);
        }
        self.flush(Instant::now(), true);
        if !self.outbox.out.is_empty() {
            self.send_outbox();
        }
        for g in &mut self.groups {
            if let Some(w) = &mut g.tcp {
                w.end();
            }
        }
        // End of session a few times, then once a second while lingering (the retransmitter
        // answers re-requests all along).
        let end = Instant::now() + self.linger;
        let mut sent = 0;
        let mut next_eos = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_eos {
                for li in 0..self.groups.len() {
                    self.control_packet(li, true);
                }
                sent += 1;
                next_eos = now
                    + if sent < END_OF_SESSION_REPEATS {
                        Duration::from_millis(20)
                    } else {
                        Duration::from_secs(1)
                    };
            }
            if !self.outbox.out.is_empty() {
                self.send_outbox();
            }
            let done =
                sent >= END_OF_SESSION_REPEATS && (now >= end || self.stop.load(Ordering::Relaxed));
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for g in &mut self.groups {
            if let Err(e) = g.journal.sync() {
                tracing::error!(group = %g.name, error = %e, "journal sync failed");
            }
        }
    }
}
