//! The subscriber: sockets for each group's feeds A and B and its re-request path, the
//! arbitration state machine per group, and in-order delivery to a handler.

use crate::stats::Stats;
use net::admission::{Admission, REPIN_AFTER_NS};
use net::arbiter::{Arbiter, ArbiterConfig, ArbiterStats, Feed, Output};
use net::recv::RecvCounters;
use net::{BatchReceiver, Endpoint, Requester};
use protocol::moldudp64::{Packet, PacketKind, Session};
use protocol::schema::{self, Body, Message, Repr};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

mod options;
pub use options::{Builder, GroupSpec, Options, PollMode};

/// Where a delivered message sits.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Index of the group in the order groups were added.
    pub group: usize,
    pub group_name: &'a str,
    pub session: Session,
    /// MoldUDP64 sequence number.
    pub seq: u64,
}

/// Receives messages in sequence order. Each method has an empty default; `on_message` sees
/// every message as a zero-copy view and by default parses it and calls the kind's method.
#[allow(unused_variables)]
pub trait Handler {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &Message<&[u8]>) {
        let m = msg.repr();
        match &m.body {
            Body::InstrumentDefinition(b) => self.on_instrument_definition(ctx, &m, b),
            Body::OrderAdd(b) => self.on_order_add(ctx, &m, b),
            Body::OrderReplace(b) => self.on_order_replace(ctx, &m, b),
            Body::OrderCancel(b) => self.on_order_cancel(ctx, &m, b),
            Body::OrderDelete(b) => self.on_order_delete(ctx, &m, b),
            Body::OrderExecuted(b) => self.on_order_executed(ctx, &m, b),
            Body::OrderExecutedWithPrice(b) => self.on_order_executed_with_price(ctx, &m, b),
            Body::Trade(b) => self.on_trade(ctx, &m, b),
            Body::CrossTrade(b) => self.on_cross_trade(ctx, &m, b),
            Body::BrokenTrade(b) => self.on_broken_trade(ctx, &m, b),
            Body::TradingStatus(b) => self.on_trading_status(ctx, &m, b),
            Body::SystemEvent(b) => self.on_system_event(ctx, &m, b),
            Body::Imbalance(b) => self.on_imbalance(ctx, &m, b),
            Body::TopOfBook(b) => self.on_top_of_book(ctx, &m, b),
            Body::FeedStatus(b) => self.on_feed_status(ctx, &m, b),
        }
    }
    fn on_instrument_definition(
        &mut self,
        ctx: &Context<'_>,
        m: &Repr,
        d: &schema::InstrumentDefinition,
    ) {
    }
    fn on_order_add(&mut self, ctx: &Context<'_>, m: &Repr, o: &schema::OrderAdd) {}
    fn on_order_replace(&mut self, ctx: &Context<'_>, m: &Repr, o: &schema::OrderReplace) {}
    fn on_order_cancel(&mut self, ctx: &Context<'_>, m: &Repr, o: &schema::OrderCancel) {}
    fn on_order_delete(&mut self, ctx: &Context<'_>, m: &Repr, o: &schema::OrderDelete) {}
    fn on_order_executed(&mut self, ctx: &Context<'_>, m: &Repr, e: &schema::Execution) {}
    fn on_order_executed_with_price(&mut self, ctx: &Context<'_>, m: &Repr, e: &schema::Execution) {
    }
    fn on_trade(&mut self, ctx: &Context<'_>, m: &Repr, t: &schema::Trade) {}
    fn on_cross_trade(&mut self, ctx: &Context<'_>, m: &Repr, t: &schema::CrossTrade) {}
    fn on_broken_trade(&mut self, ctx: &Context<'_>, m: &Repr, t: &schema::BrokenTrade) {}
    fn on_trading_status(&mut self, ctx: &Context<'_>, m: &Repr, s: &schema::TradingStatus) {}
    fn on_system_event(&mut self, ctx: &Context<'_>, m: &Repr, s: &schema::SystemEvent) {}
    fn on_imbalance(&mut self, ctx: &Context<'_>, m: &Repr, i: &schema::Imbalance) {}
    fn on_top_of_book(&mut self, ctx: &Context<'_>, m: &Repr, t: &schema::TopOfBook) {}
    /// The distributor's feed handler lost exchange messages `s.first..=s.last` for good: what
    /// they said (orders, trades) is missing from every group, and books built from this
    /// stream may be wrong until refreshed.
    fn on_feed_status(&mut self, ctx: &Context<'_>, m: &Repr, s: &schema::FeedStatus) {}
    /// Messages `from..=to` of the group are lost for good.
    fn on_gap(&mut self, group: usize, group_name: &str, from: u64, to: u64) {}
    /// The group's session ended (everything before `next_seq` was delivered or reported).
    fn on_end_of_session(&mut self, group: usize, group_name: &str, next_seq: u64) {}
    /// A re-request for `count` messages from `from` went unanswered (the server is
    /// unreachable, refuses this subscriber, rate-limits it, or the answer was lost); the hole
    /// is retried, and reported by `on_gap` when its gap timeout comes.
    fn on_request_unanswered(&mut self, group: usize, group_name: &str, from: u64, count: u16) {}
}

struct GroupRx {
    name: String,
    admission: Admission,
    a: BatchReceiver,
    b: Option<BatchReceiver>,
    /// Re-requests to the group's server, and the socket the answers arrive on.
    rtx: Option<Requester>,
    rtx_rx: Option<BatchReceiver>,
    arbiter: Arbiter,
}

/// The order a group's sockets are watched and read in.
const FEEDS: [Feed; 3] = [Feed::A, Feed::B, Feed::Retransmit];

impl GroupRx {
    /// The group's socket for `feed`, if it has one.
    fn receiver(&self, feed: Feed) -> Option<&BatchReceiver> {
        match feed {
            Feed::A => Some(&self.a),
            Feed::B => self.b.as_ref(),
            Feed::Retransmit => self.rtx_rx.as_ref(),
        }
    }
}

/// Receives tickcast groups and delivers their messages in order.
pub struct Subscriber {
    options: Options,
    groups: Vec<GroupRx>,
    pub stats: Stats,
    epoch: Instant,
}

/// Turns the state machine's outputs into handler calls and socket sends.
struct Deliver<'a, H: Handler> {
    handler: &'a mut H,
    group: usize,
    name: &'a str,
    session: Session,
    rtx: Option<&'a mut Requester>,
    stats: &'a mut Stats,
    delivered: usize,
    /// Wall-clock time of this round of delivery.
    now_ns: u64,
}

impl<H: Handler> Output for Deliver<'_, H> {
    fn deliver(&mut self, seq: u64, record: &[u8]) {
        match Message::new_checked(record) {
            Ok(m) => {
                self.stats.record_latency(m.recv_ts_ns(), self.now_ns);
                let ctx = Context {
                    group: self.group,
                    group_name: self.name,
                    session: self.session,
                    seq,
                };
                self.handler.on_message(&ctx, &m);
                self.delivered += 1;
            }
            Err(_) => self.stats.malformed += 1,
        }
    }
    fn gap(&mut self, from: u64, to: u64) {
        self.handler.on_gap(self.group, self.name, from, to);
    }
    fn request(&mut self, from: u64, count: u16) {
        if let Some(r) = self.rtx.as_deref_mut() {
            let errors = r.send_errors;
            r.request(&self.session, from, count);
            self.stats.request_errors += r.send_errors - errors;
        }
    }
    fn end_of_session(&mut self, next: u64) {
        self.handler.on_end_of_session(self.group, self.name, next);
    }
    fn request_unanswered(&mut self, from: u64, count: u16) {
        self.handler
            .on_request_unanswered(self.group, self.name, from, count);
    }
}

impl Subscriber {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn new(options: Options) -> Subscriber {
        Subscriber {
            options,
            groups: Vec::new(),
            stats: Stats::new(),
            epoch: Instant::now(),
        }
    }

    /// Joins a group's feeds; returns its index.
    pub fn add_group(&mut self, g: GroupSpec) -> io::Result<usize> {
        let open = |addr: SocketAddrV4| {
            let mut ep = Endpoint::new(addr, g.interface);
            ep.source = g.source;
            ep.rcvbuf = self.options.rcvbuf;
            let mut rx = BatchReceiver::open(&ep)?;
            if self.options.udp_gro {
                // A kernel without UDP_GRO segments as before: nothing is lost by refusing.
                let _ = rx.enable_gro();
            }
            Ok::<_, io::Error>(rx)
        };
        let a = open(g.feed_a)?;
        let b = g.feed_b.map(open).transpose()?;
        let (rtx, rtx_rx) = match g.retransmit {
            Some(server) => {
                let (r, rx) = net::rerequest::open(server, self.options.rcvbuf)?;
                (Some(r), Some(rx))
            }
            None => (None, None),
        };
        // A sender is followed to a new address after twice its heartbeat interval of silence.
        let mut admission = Admission::new(g.session, REPIN_AFTER_NS);
        if let Some(server) = g.retransmit {
            admission.pin_retransmit(server);
        }
        self.groups.push(GroupRx {
            name: g.name,
            admission,
            a,
            b,
            rtx,
            rtx_rx,
            arbiter: Arbiter::new(self.options.arbiter),
        });
        Ok(self.groups.len() - 1)
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The arbitration counters of group `i`.
    pub fn group_stats(&self, i: usize) -> Option<ArbiterStats> {
        self.groups.get(i).map(|g| g.arbiter.stats)
    }

    /// Whether every group has reported end of session.
    pub fn all_ended(&self) -> bool {
        !self.groups.is_empty() && self.groups.iter().all(|g| g.arbiter.has_ended())
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Receives what is ready (waiting per the poll mode when nothing is), runs the recovery
    /// timers and delivers in order. Returns the number of messages delivered.
    pub fn poll<H: Handler>(&mut self, handler: &mut H) -> io::Result<usize> {
        let wait = match self.options.poll {
            PollMode::BusySpin => Duration::ZERO,
            PollMode::Blocking(d) => d,
        };
        self.poll_for(handler, wait)
    }

    /// Like `poll`, but waits (in poll(2), woken by the first datagram) up to `wait` when
    /// nothing is ready, whatever the poll mode. While a hole is open the wait is cut to 1 ms
    /// so the recovery timers keep running.
    pub fn poll_for<H: Handler>(&mut self, handler: &mut H, wait: Duration) -> io::Result<usize> {
        // One poll(2) says which sockets hold datagrams, where a receive call on each would
        // mostly find nothing: feed B while A leads, the retransmission socket, quiet groups.
        let ready = self.ready_sockets(Duration::ZERO);
        let mut delivered = self.poll_once(handler, ready)?;
        if delivered == 0 && !wait.is_zero() {
            let wait = if self.groups.iter().any(|g| g.arbiter.pending()) {
                wait.min(Duration::from_millis(1))
            } else {
                wait
            };
            let ready = self.ready_sockets(wait);
            delivered += self.poll_once(handler, ready)?;
        }
        self.refresh_stats();
        Ok(delivered)
    }

    /// Polls until `stop` returns true.
    pub fn run<H: Handler>(&mut self, handler: &mut H, stop: impl Fn() -> bool) -> io::Result<()> {
        while !stop() {
            self.poll(handler)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a socket to be readable; returns which are (bit i: the i-th
    /// socket, groups in order, each in `FEEDS` order; at most `net::poll::MAX_WAIT_FDS` are
    /// watched, the rest are read on every turn).
    fn ready_sockets(&self, timeout: Duration) -> u64 {
        let socks = self.groups.iter().flat_map(|g| {
            FEEDS
                .into_iter()
                .filter_map(|f| g.receiver(f).map(|r| r.socket().as_fd()))
        });
        net::poll::ready(socks, timeout)
    }

    /// What the kernel and the receive path did to this subscriber's datagrams, summed over
    /// every socket (feeds A and B, retransmissions): drops for a full buffer, datagrams cut
    /// (longer than a slot) or with cut control data, and buffers taken whole with UDP_GRO.
    pub fn receive_counters(&self) -> RecvCounters {
        let mut total = RecvCounters::default();
        for g in &self.groups {
            for feed in FEEDS {
                if let Some(rx) = g.receiver(feed) {
                    total += rx.counters();
                }
            }
        }
        total
    }

    /// Reads the sockets `ready` names (bit i: the i-th socket in `ready_sockets`' order), then
    /// runs every group's timers.
    fn poll_once<H: Handler>(&mut self, handler: &mut H, ready: u64) -> io::Result<usize> {
        let mut delivered = 0;
        let mut i = 0;
        for gi in 0..self.groups.len() {
            for feed in FEEDS {
                if self.groups[gi].receiver(feed).is_none() {
                    continue;
                }
                let watched = i < net::poll::MAX_WAIT_FDS;
                if !watched || ready & (1 << i) != 0 {
                    delivered += self.drain_socket(gi, feed, handler)?;
                }
                i += 1;
            }
            let now = self.now();
            let GroupRx {
                name,
                admission,
                rtx,
                arbiter,
                ..
            } = &mut self.groups[gi];
            let session = admission.current();
            if !arbiter.pending() && arbiter.has_ended() {
                continue;
            }
            let mut out = Deliver {
                handler,
                group: gi,
                name,
                session: session.unwrap_or(Session([b' '; 10])),
                rtx: rtx.as_mut(),
                stats: &mut self.stats,
                delivered: 0,
                now_ns: net::now_ns(),
            };
            arbiter.tick(now, &mut out);
            delivered += out.delivered;
        }
        Ok(delivered)
    }

    fn drain_socket<H: Handler>(
        &mut self,
        gi: usize,
        feed: Feed,
        handler: &mut H,
    ) -> io::Result<usize> {
        let now = self.now();
        let GroupRx {
            name,
            admission,
            a,
            b,
            rtx,
            rtx_rx,
            arbiter,
        } = &mut self.groups[gi];
        let rx = match feed {
            Feed::A => a,
            Feed::B => match b {
                Some(b) => b,
                None => return Ok(0),
            },
            Feed::Retransmit => match rtx_rx {
                Some(r) => r,
                None => return Ok(0),
            },
        };
        let n = rx.recv_batch(None)?;
        if n == 0 {
            return Ok(0);
        }
        self.stats.set_kernel_drops(gi, feed, rx.kernel_drops());
        let mut delivered = 0;
        let wall = net::now_ns();
        let rx = &*rx;
        for i in 0..n {
            let Some(d) = rx.get(i) else { continue };
            self.stats.datagrams += 1;
            let Ok(p) = Packet::new_checked(d.bytes) else {
                self.stats.bad_datagrams += 1;
                continue;
            };
            let s = p.session();
            if p.validate().is_err() {
                // A count that overruns the datagram: nothing in it can be trusted.
                self.stats.bad_datagrams += 1;
                continue;
            }
            if !admission.admit(arbiter, now, feed, d.from, s) {
                continue; // counted in the group's admission stats
            }
            let mut out = Deliver {
                handler,
                group: gi,
                name,
                session: s,
                rtx: rtx.as_mut(),
                stats: &mut self.stats,
                delivered: 0,
                now_ns: wall,
            };
            match p.kind() {
                PacketKind::Data => {
                    // A record that is not a schema-v1 message leaves its sequence a hole: the
                    // other feed or a retransmission may bring a good copy; else it is a gap.
                    let records = p
                        .messages()
                        .map(|m| m.ok().filter(|r| Message::new_checked(*r).is_ok()));
                    arbiter.on_data(now, feed, p.sequence(), records, &mut out)
                }
                PacketKind::Heartbeat => arbiter.on_heartbeat(now, p.sequence(), &mut out),
                PacketKind::EndOfSession => arbiter.on_end_of_session(now, p.sequence(), &mut out),
            }
            admission.after_input(arbiter);
            delivered += out.delivered;
        }
        Ok(delivered)
    }

    fn refresh_stats(&mut self) {
        self.stats.flush_latency();
        let mut sum = ArbiterStats::default();
        let (mut wrong_session, mut wrong_source) = (0, 0);
        for g in &self.groups {
            sum += g.arbiter.stats;
            wrong_session += g.admission.stats.wrong_session;
            wrong_source += g.admission.stats.wrong_source;
        }
        self.stats.arbiter = sum;
        self.stats.wrong_session = wrong_session;
        self.stats.wrong_source = wrong_source;
    }
}
