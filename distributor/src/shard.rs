//! A shard: one thread pinned to one core, owning a disjoint set of groups. Its duty cycle
//! drains the input queue into per-group datagrams, flushes them by the rules (full, max delay,
//! input drained, heartbeat when idle), answers re-requests, and hands everything ready — all
//! groups, feeds A and B, unicast destinations, retransmissions — to the kernel in one sendmmsg.

use crate::batch::{self, ShardInput, ShardQueue};
use crate::config::{Config, Group, Idle, Journal as JournalCfg};
use crate::counters::{GroupCounters, ShardCounters};
use crate::journal::Journal;
use crate::retransmit::{Guard, Refusal, Ring};
use crate::tcp::{TcpGroup, TcpServer};
use crossbeam_channel::{RecvTimeoutError, TryRecvError};
use net::ratelog::RateLimited;
use net::socket::SendOptions;
use net::warn_limited;
use net::window::{WindowReader, WindowWriter};
use net::{MmsgSender, OutDatagram};
use protocol::moldudp64::{self, PacketBuilder, Request, Session};
use protocol::schema::RECORD_SIZE;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams the outbox holds before it must be sent mid-cycle.
const OUTBOX_DATAGRAMS: usize = 512;
/// Re-requests read per duty cycle, so a flood cannot starve the feed.
const REQUESTS_PER_CYCLE: usize = 64;
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
    ring: Ring,
    journal: Journal,
    guard: Guard,
    cap: u16,
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

/// Segments in one GSO send at most (the kernel's UDP_MAX_SEGMENTS is 64), and its bytes.
const GSO_MAX_SEGMENTS: u16 = 64;
const GSO_MAX_BYTES: u32 = 65_507;

/// A re-request server socket and the groups (by session) it answers for.
struct RtxServer {
    /// Index of its socket in the shard's socket list: answers leave from the server's own
    /// address.
    socket: usize,
    groups: Vec<usize>,
}

/// Datagrams ready to send: bytes in one arena, entries pointing into it.
struct Outbox {
    arena: Vec<u8>,
    used: usize,
    out: Vec<OutDatagram>,
    max_payload: usize,
    /// Most destinations one datagram goes to (A, B, unicast copies, or one for an answer).
    max_dests: usize,
}

impl Outbox {
    /// Queues the datagram at `arena[off..off + len]` once per destination of a group.
    /// `segment`: the entries may grow into a GSO run of datagrams of this size (0: never).
    fn push_to_all(
        &mut self,
        off: usize,
        len: usize,
        dests: &[(SocketAddrV4, u16)],
        group: usize,
        segment: u16,
    ) {
        for &(dest, socket) in dests {
            self.out.push(OutDatagram {
                offset: off as u32,
                len: len as u32,
                dest,
                socket,
                group: group as u16,
                segment,
            });
        }
    }

    /// Whether one more datagram (to all of its destinations) fits without growing.
    fn room(&self) -> bool {
        self.used + self.max_payload <= self.arena.len()
            && self.out.len() + self.max_dests <= self.out.capacity()
    }
}

/// What a shard is made of.
pub struct ShardSpec<'a> {
    pub core: usize,
    pub idle: Idle,
    /// (global group index, config)
    pub groups: &'a [(usize, Group)],
    pub journal: &'a JournalCfg,
    /// Counters of all groups, by global index.
    pub group_counters: &'a [Arc<GroupCounters>],
    pub linger: Duration,
    /// Frames of each group's TCP window; `None`: no TCP fan-out.
    pub tcp_window: Option<usize>,
}

pub struct Shard {
    core: usize,
    idle: Idle,
    groups: Vec<GroupState>,
    /// Local group index by global group index.
    local: [u8; 64],
    /// Send sockets (by interface and options), then the re-request servers' sockets.
    sockets: Vec<UdpSocket>,
    rtx: Vec<RtxServer>,
    outbox: Outbox,
    sender: MmsgSender,
    queue: ShardQueue,
    counters: Arc<ShardCounters>,
    /// Set by a signal: ends the linger after the feed has ended.
    stop: Arc<AtomicBool>,
    /// How long to keep answering re-requests (and repeating end of session) after the feed ends.
    linger: Duration,
    send_errors: RateLimited,
    rtx_log: RateLimited,
    /// (global group index, reader) of each TCP window, for the TCP agent.
    tcp_readers: Vec<(usize, WindowReader)>,
}

impl Shard {
    /// Opens sockets and journals for the spec's groups. Errors name the group.
    pub fn new(
        spec: ShardSpec<'_>,
        queue: ShardQueue,
        counters: Arc<ShardCounters>,
        stop: Arc<AtomicBool>,
    ) -> Result<Shard, String> {
        let ShardSpec {
            core,
            idle,
            groups,
            journal,
            group_counters,
            linger,
            tcp_window,
        } = spec;
        let mut tcp_readers = Vec::new();
        let mut sockets: Vec<UdpSocket> = Vec::new();
        let mut keys: Vec<SendOptions> = Vec::new();
        let mut socket_for = |key: SendOptions| -> Result<u16, String> {
            if let Some(i) = keys.iter().position(|k| *k == key) {
                return Ok(i as u16);
            }
            let s = net::socket::sender(&key)
                .map_err(|e| format!("send socket on interface {}: {e}", key.interface))?;
            sockets.push(s.into());
            keys.push(key);
            Ok((sockets.len() - 1) as u16)
        };
        let mut states = Vec::new();
        // Probed once: whether this kernel takes UDP_SEGMENT (gso = "auto").
        let gso_available = &net::probe::gso_supported();
        let mut local = [u8::MAX; 64];
        let mut max_payload = 0;
        for (li, (gi, g)) in groups.iter().enumerate() {
            let at = |e: String| format!("group {}: {e}", g.name);
            let session = Session::new(&g.session).map_err(|e| at(e.to_string()))?;
            let opts = SendOptions {
                interface: g.interface,
                ttl: g.ttl,
                multicast_loop: g.multicast_loop,
                sndbuf: g.sndbuf,
            };
            let a = socket_for(opts).map_err(at)?;
            let mut dests = vec![(g.feed_a, a)];
            if let Some(b) = g.feed_b {
                let s = socket_for(SendOptions {
                    interface: g.interface_b.unwrap_or(g.interface),
                    ..opts
                })
                .map_err(at)?;
                dests.push((b, s));
            }
            for d in &g.destinations {
                dests.push((*d, a));
            }
            let (journal, warning) = Journal::open(
                &journal.dir,
                &session,
                journal.fsync,
                Duration::from_millis(journal.fsync_interval_ms),
            )
            .map_err(|e| at(format!("journal: {e}")))?;
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            let next = journal.next_seq();
            let allow = crate::config::retransmit_subnets(g);
            if g.retransmit_allow.is_none() {
                let nets: Vec<String> = allow.iter().map(|n| n.to_string()).collect();
                tracing::info!(group = %g.name, allow = ?nets, "re-requests allowed from loopback and the sending interfaces' subnets");
            }
            let builder =
                PacketBuilder::new(vec![0u8; g.max_payload], g.max_payload, &session, next)
                    .map_err(|e| at(e.to_string()))?;
            let counters = group_counters[*gi].clone();
            counters.last_seq.set(next - 1);
            if next > 1 {
                tracing::info!(group = %g.name, next_seq = next, "resuming session from the journal");
            }
            max_payload = max_payload.max(g.max_payload);
            local[*gi] = li as u8;
            let tcp = match tcp_window {
                Some(frames) => {
                    let (w, r) = net::window::window(frames, next)
                        .map_err(|e| at(format!("TCP window: {e}")))?;
                    tcp_readers.push((*gi, r));
                    Some(w)
                }
                None => None,
            };
            states.push(GroupState {
                name: g.name.clone(),
                session,
                builder,
                first_append: None,
                last_sent: Instant::now(),
                dests,
                ring: Ring::new(g.ring, next),
                journal,
                guard: Guard::new(allow, g.retransmit_rate),
                cap: g.retransmit_cap,
                max_delay: Duration::from_micros(g.max_delay_us),
                heartbeat: Duration::from_millis(g.heartbeat_ms),
                counters,
                gso: match g.gso {
                    crate::config::Gso::Off => false,
                    crate::config::Gso::On => true,
                    crate::config::Gso::Auto => *gso_available,
                },
                run: None,
                tcp,
            });
        }
        // Re-request servers: one socket per address; groups sharing it are told apart by session.
        let mut rtx: Vec<RtxServer> = Vec::new();
        let mut rtx_addrs: Vec<SocketAddrV4> = Vec::new();
        for (li, (_, g)) in groups.iter().enumerate() {
            if let Some(i) = rtx_addrs.iter().position(|a| *a == g.retransmit) {
                rtx[i].groups.push(li);
                continue;
            }
            let udp = net::socket::bound_udp(g.retransmit)
                .map_err(|e| format!("group {}: retransmit {}: {e}", g.name, g.retransmit))?;
            rtx_addrs.push(g.retransmit);
            rtx.push(RtxServer {
                socket: sockets.len(),
                groups: vec![li],
            });
            sockets.push(udp);
        }
        let max_dests = states.iter().map(|g| g.dests.len()).max().unwrap_or(1);
        Ok(Shard {
            core,
            idle,
            groups: states,
            local,
            sockets,
            rtx,
            outbox: Outbox {
                arena: vec![0u8; OUTBOX_DATAGRAMS * max_payload.max(64)],
                used: 0,
                out: Vec::with_capacity(OUTBOX_DATAGRAMS * max_dests + 16),
                max_payload: max_payload.max(64),
                max_dests,
            },
            sender: MmsgSender::new(),
            queue,
            counters,
            stop,
            linger,
            send_errors: RateLimited::default(),
            rtx_log: RateLimited::default(),
            tcp_readers,
        })
    }

    /// The readers of this shard's TCP windows, by global group index (taken once).
    pub fn take_tcp_readers(&mut self) -> Vec<(usize, WindowReader)> {
        std::mem::take(&mut self.tcp_readers)
    }

    /// The retransmit server addresses actually bound (port 0 resolved).
    pub fn retransmit_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.rtx
            .iter()
            .filter_map(|r| self.sockets[r.socket].local_addr().ok())
            .collect()
    }

    /// Runs the duty cycle until the input queue closes (the feed ended or was stopped), then
    /// shuts the sessions down cleanly.
    pub fn run(mut self) {
        crate::batch::warm_thread();
        let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: self.core });
        if !pinned {
            tracing::warn!(
                core = self.core,
                "could not pin shard to its core; running unpinned"
            );
        }
        let mut backoff = Duration::from_micros(20);
        let mut open = true;
        // A batch that arrived while parked: handled by step 1 like any other.
        let mut parked: Option<Box<crate::batch::Batch>> = None;
        while open {
            let mut work = 0usize;
            // 1. Drain the input queue.
            let mut drained = false;
            if let Some(batch) = parked.take() {
                work += self.take_batch(batch);
                drained = true;
            }
            loop {
                match self.queue.rx.try_recv() {
                    Ok(batch) => {
                        work += self.take_batch(batch);
                        drained = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            // 2. Flush: the queue is empty now (flush-on-drain), or a batch is too old.
            let now = Instant::now();
            self.flush(now, drained);
            // 3. Heartbeats for idle groups.
            work += self.heartbeats(now);
            // 4. Re-requests.
            work += self.serve_requests(now);
            // 5. One sendmmsg for everything ready.
            if !self.outbox.out.is_empty() {
                self.send_outbox();
            }
            self.counters.queue_depth.set(self.queue.rx.len() as u64);
            if work == 0 && open {
                match self.idle {
                    Idle::Spin => std::hint::spin_loop(),
                    Idle::Yield => std::thread::yield_now(),
                    Idle::Park => match self.queue.rx.recv_timeout(backoff) {
                        Ok(batch) => {
                            parked = Some(batch);
                            backoff = Duration::from_micros(20);
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            backoff = (backoff * 2).min(Duration::from_millis(1))
                        }
                        Err(RecvTimeoutError::Disconnected) => open = false,
                    },
                }
            } else {
                backoff = Duration::from_micros(20);
            }
        }
        self.shutdown();
        self.counters.cpu_ns.set(net::clock::thread_cpu_ns());
    }

    /// Finalizes partly filled datagrams: every group's (`all`), or only those whose oldest
    /// message has waited `max_delay`.
    fn flush(&mut self, now: Instant, all: bool) {
        for li in 0..self.groups.len() {
            let g = &self.groups[li];
            let late = g
                .first_append
                .is_some_and(|t| now.duration_since(t) >= g.max_delay);
            if (all || late) && !g.builder.is_empty() {
                self.finalize(li, now);
            }
        }
    }

    /// Appends a batch's records to their groups; returns the batch to the pool.
    fn take_batch(&mut self, mut batch: Box<crate::batch::Batch>) -> usize {
        let n = batch.len();
        let now = Instant::now();
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
        g.ring.push(rec);
        if let Some(w) = &mut g.tcp {
            w.push(rec);
        }
        g.counters.messages.add(1);
    }

    /// Moves group `li`'s datagram into the outbox (once per destination) and starts the next.
    fn finalize(&mut self, li: usize, now: Instant) {
        if !self.outbox.room() {
            self.send_outbox();
        }
        let g = &mut self.groups[li];
        let bytes = g.builder.as_bytes();
        let (off, len) = (self.outbox.used, bytes.len());
        self.outbox.arena[off..off + len].copy_from_slice(bytes);
        self.outbox.used += len;
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
        g.counters.last_seq.set(next - 1);
        g.builder.reset(next);
        g.first_append = None;
        g.last_sent = now;
    }

    /// Queues a header-only packet (heartbeat or end of session) to all of a group's feeds.
    fn control_packet(&mut self, li: usize, end_of_session: bool) {
        if !self.outbox.room() {
            self.send_outbox();
        }
        let g = &mut self.groups[li];
        let off = self.outbox.used;
        let next = g.builder.next_sequence();
        let buf = &mut self.outbox.arena[off..off + moldudp64::HEADER_LEN];
        let len = if end_of_session {
            moldudp64::emit_end_of_session(buf, &g.session, next)
        } else {
            moldudp64::emit_heartbeat(buf, &g.session, next)
        };
        self.outbox.used += len;
        self.outbox.push_to_all(off, len, &g.dests, li, 0);
    }

    fn heartbeats(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for li in 0..self.groups.len() {
            let g = &self.groups[li];
            if g.builder.is_empty() && now.duration_since(g.last_sent) >= g.heartbeat {
                self.control_packet(li, false);
                let g = &mut self.groups[li];
                g.last_sent = now;
                g.counters.heartbeats.add(1);
                n += 1;
            }
        }
        n
    }

    /// Reads pending re-requests and queues the answers.
    fn serve_requests(&mut self, now: Instant) -> usize {
        let mut served = 0;
        let mut buf = [0u8; 64];
        for s in 0..self.rtx.len() {
            for _ in 0..REQUESTS_PER_CYCLE {
                let Ok((n, from)) = self.sockets[self.rtx[s].socket].recv_from(&mut buf) else {
                    break;
                };
                served += 1;
                let std::net::SocketAddr::V4(from) = from else {
                    continue;
                };
                self.answer(s, &buf[..n.min(buf.len())], from, now);
            }
        }
        served
    }

    fn answer(&mut self, server: usize, req: &[u8], from: SocketAddrV4, now: Instant) {
        let Ok(r) = Request::new_checked(req) else {
            self.counters.retransmit_malformed.add(1);
            warn_limited!(self.rtx_log, len = req.len(), %from, "re-request of the wrong size; ignored");
            return;
        };
        let session = r.session();
        let Some(&li) = self.rtx[server]
            .groups
            .iter()
            .find(|&&li| self.groups[li].session == session)
        else {
            self.counters.retransmit_unknown_session.add(1);
            warn_limited!(self.rtx_log, %from, session = %session, "re-request for an unknown session; ignored");
            return;
        };
        let socket = self.rtx[server].socket as u16;
        let g = &mut self.groups[li];
        g.counters.retransmit_requests.add(1);
        match g.guard.check(*from.ip(), now) {
            Err(Refusal::Denied) => {
                g.counters.retransmit_denied.add(1);
                warn_limited!(self.rtx_log, %from, "re-request from outside the allowed subnets; dropped");
                return;
            }
            Err(Refusal::RateLimited) => {
                g.counters.retransmit_rate_limited.add(1);
                return;
            }
            Err(Refusal::Busy) => {
                g.counters.retransmit_busy.add(1);
                warn_limited!(self.rtx_log, %from, "re-requests from too many sources at once; new source dropped");
                return;
            }
            Ok(()) => {}
        }
        // Only sequences already sent or journaled are served; future ones get no answer.
        let committed = g.builder.sequence();
        let (first, asked) = (r.sequence(), u64::from(r.count()));
        if first == 0 || first >= committed || asked == 0 {
            g.counters.retransmit_unanswerable.add(1);
            return;
        }
        let last = first
            .saturating_add(asked.min(u64::from(g.cap)))
            .min(committed);
        let mut seq = first;
        while seq < last {
            if !self.outbox.room() {
                self.send_outbox();
            }
            let g = &mut self.groups[li];
            let off = self.outbox.used;
            let cap = self.outbox.max_payload.min(g.builder.max_payload());
            let Ok(mut pb) =
                PacketBuilder::new(&mut self.outbox.arena[off..off + cap], cap, &g.session, seq)
            else {
                return;
            };
            let mut rec = [0u8; RECORD_SIZE];
            while seq < last && pb.fits(RECORD_SIZE) {
                let found = match g.ring.get(seq) {
                    Some(r) => {
                        rec = *r;
                        true
                    }
                    None => g.journal.read(seq, &mut rec),
                };
                if !found || pb.append(&rec).is_err() {
                    break;
                }
                seq += 1;
            }
            let (len, count) = (pb.len(), pb.count());
            if count == 0 {
                return;
            }
            self.outbox.used += len;
            self.outbox.out.push(OutDatagram {
                offset: off as u32,
                len: len as u32,
                dest: from,
                socket,
                group: li as u16,
                segment: 0,
            });
            g.counters.retransmit_messages.add(u64::from(count));
            g.counters.retransmit_datagrams.add(1);
        }
    }

    /// Journals first, then one sendmmsg (per socket) for everything in the outbox.
    fn send_outbox(&mut self) {
        for g in &mut self.groups {
            if let Err(e) = g.journal.commit() {
                g.counters.errors.add(1);
                warn_limited!(self.send_errors, group = %g.name, error = %e, "journal write failed");
            }
        }
        let r = self.sender.send_all(
            &self.sockets,
            &self.outbox.arena[..self.outbox.used],
            &self.outbox.out,
        );
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
        for g in &mut self.groups {
            g.run = None;
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
        self.outbox.used = 0;
        self.outbox.out.clear();
        // TCP clients get what multicast got.
        for g in &mut self.groups {
            if let Some(w) = &mut g.tcp {
                w.publish();
            }
        }
    }

    /// Flush everything, send end of session a few times (still answering re-requests), sync.
    fn shutdown(&mut self) {
        while let Ok(batch) = self.queue.rx.try_recv() {
            self.take_batch(batch);
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
        // End of session a few times, then once a second while lingering; re-requests are
        // answered all along.
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
            self.serve_requests(now);
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

/// The shards of a config, running: the feed side of their queues and everyone's counters.
pub struct ShardSet {
    /// One per `[[shard]]`, in config order; dropping them tells the shards to shut down.
    pub inputs: Vec<ShardInput>,
    pub shard_counters: Vec<Arc<ShardCounters>>,
    /// By global group index.
    pub group_counters: Vec<Arc<GroupCounters>>,
    /// The SoupBinTCP server, when `[tcp]` is configured.
    pub tcp: Option<TcpServer>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ShardSet {
    /// Opens every shard's sockets and journals first (so that a bad address or journal fails
    /// before anything runs), then starts each shard on its own thread.
    pub fn start(
        cfg: &Config,
        stop: Arc<AtomicBool>,
        linger: Duration,
    ) -> Result<ShardSet, String> {
        ShardSet::start_with(cfg, stop, linger, None)
    }

    /// As `start`, with the TCP agent's backend chosen by the caller (the bench).
    pub fn start_with(
        cfg: &Config,
        stop: Arc<AtomicBool>,
        linger: Duration,
        tcp_backend: Option<crate::tcp::Backend>,
    ) -> Result<ShardSet, String> {
        let group_counters: Vec<Arc<GroupCounters>> =
            cfg.groups.iter().map(|_| Arc::default()).collect();
        let mut shards = Vec::new();
        let mut inputs = Vec::new();
        let mut shard_counters = Vec::new();
        let mut tcp_readers: Vec<(usize, WindowReader)> = Vec::new();
        for s in &cfg.shards {
            let owned: Vec<(usize, Group)> = s
                .groups
                .iter()
                .filter_map(|name| cfg.groups.iter().position(|g| &g.name == name))
                .map(|i| (i, cfg.groups[i].clone()))
                .collect();
            let mask = owned.iter().fold(0u64, |m, (i, _)| m | (1 << i));
            let (input, queue) = batch::channel(mask, cfg.feed.queue_depth);
            let counters = Arc::new(ShardCounters::default());
            let spec = ShardSpec {
                core: s.core,
                idle: s.idle,
                groups: &owned,
                journal: &cfg.journal,
                group_counters: &group_counters,
                linger,
                tcp_window: cfg.tcp.as_ref().map(|t| t.window_frames()),
            };
            let mut shard = Shard::new(spec, queue, counters.clone(), stop.clone())?;
            tcp_readers.extend(shard.take_tcp_readers());
            shards.push(shard);
            inputs.push(input);
            shard_counters.push(counters);
        }
        let tcp = match &cfg.tcp {
            Some(t) => {
                tcp_readers.sort_by_key(|(gi, _)| *gi);
                let groups = tcp_readers
                    .into_iter()
                    .map(|(gi, window)| {
                        let g = &cfg.groups[gi];
                        let session = Session::new(&g.session).map_err(|e| e.to_string())?;
                        Ok(TcpGroup {
                            name: g.name.clone(),
                            session,
                            window,
                            journal: crate::journal::path_for(&cfg.journal.dir, &session),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Some(TcpServer::start(
                    t,
                    groups,
                    stop.clone(),
                    linger,
                    tcp_backend,
                )?)
            }
            None => None,
        };
        let threads = shards
            .into_iter()
            .enumerate()
            .map(|(i, sh)| {
                std::thread::Builder::new()
                    .name(format!("shard-{i}"))
                    .spawn(move || sh.run())
            })
            .collect::<std::io::Result<_>>()
            .map_err(|e| format!("starting shard threads: {e}"))?;
        Ok(ShardSet {
            inputs,
            shard_counters,
            group_counters,
            tcp,
            threads,
        })
    }

    /// Waits for every shard to finish (after its input was dropped); `false` if one panicked.
    pub fn join(self) -> bool {
        drop(self.inputs);
        let mut ok = true;
        for t in self.threads {
            ok &= t.join().is_ok(); // every thread is joined, even after a panic
        }
        if let Some(tcp) = self.tcp {
            ok &= tcp.join();
        }
        ok
    }
}
