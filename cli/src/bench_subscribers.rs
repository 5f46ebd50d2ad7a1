//! The bench's receiving side: subscriber threads on the SDK, each counting what it gets and
//! its latency after a warm-up, and what a phase's subscribers add up to.

use crate::bench::{Latency, Phase};
use hdrhistogram::Histogram;
use protocol::schema::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber_sdk::{ArbiterConfig, Context, GroupSpec, Handler, PollMode, Subscriber};

/// Counts what a subscriber gets (touching each message's kind, as an application would).
struct Count {
    delivered: u64,
    kinds: [u64; 16],
}

impl Handler for Count {
    fn on_message(&mut self, _ctx: &Context<'_>, msg: &Message<&[u8]>) {
        self.delivered += 1;
        self.kinds[msg.kind() as usize & 15] += 1;
    }
}

pub(crate) struct SubResult {
    delivered: u64,
    latency: Histogram<u64>,
    kernel_drops: u64,
    cpu_ns: u64,
}

/// Messages delivered so far by all of a phase's subscribers (added after each poll).
pub(crate) type Progress = Arc<std::sync::atomic::AtomicU64>;

/// How long subscribers drain after `stop` at most, waiting for every group's end of session.
const SUBSCRIBER_GRACE: Duration = Duration::from_secs(5);

/// See `Report::latency_warmup_s`.
pub(crate) const LATENCY_WARMUP: Duration = Duration::from_millis(500);

/// Where a bench subscriber is in its latency warm-up.
enum Warmup {
    /// Nothing delivered yet.
    Waiting,
    /// Latency recorded until then is start-up.
    Until(Instant),
    Done,
}

impl Warmup {
    /// After each poll: starts the warm-up at the first delivery and, when it is over, clears
    /// what was recorded during it.
    fn after_poll(&mut self, delivered: u64, latency: &mut Histogram<u64>) {
        match *self {
            Warmup::Waiting if delivered > 0 => {
                *self = Warmup::Until(Instant::now() + LATENCY_WARMUP)
            }
            Warmup::Until(t) if Instant::now() >= t => {
                latency.reset();
                *self = Warmup::Done;
            }
            _ => {}
        }
    }
}

/// Starts `n` subscriber threads on `groups`; they run until `stop`, then drain until every
/// group ended or `SUBSCRIBER_GRACE` passed.
pub(crate) fn subscribers(
    n: usize,
    groups: Vec<GroupSpec>,
    stop: Arc<AtomicBool>,
    gro: bool,
    progress: &Progress,
) -> Vec<std::thread::JoinHandle<SubResult>> {
    (0..n)
        .map(|_| {
            let groups = groups.clone();
            let stop = stop.clone();
            let progress = progress.clone();
            std::thread::Builder::new()
                .name("subscriber".into())
                .spawn(move || {
                    let recovery = ArbiterConfig {
                        gap_timeout_ns: 200_000_000,
                        ..Default::default()
                    };
                    let mut b = Subscriber::builder()
                        .rcvbuf(64 << 20)
                        .poll_mode(PollMode::Blocking(Duration::from_millis(1)))
                        .udp_gro(gro)
                        .recovery(recovery);
                    for g in groups {
                        b = b.group(g);
                    }
                    let mut sub = b.build().expect("bench subscriber sockets");
                    let mut h = Count {
                        delivered: 0,
                        kinds: [0; 16],
                    };
                    let mut warmup = Warmup::Waiting;
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(n) = sub.poll(&mut h) {
                            progress.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        warmup.after_poll(h.delivered, &mut sub.stats.latency);
                    }
                    let until = Instant::now() + SUBSCRIBER_GRACE;
                    let mut idle_since = Instant::now();
                    while !sub.all_ended() && Instant::now() < until {
                        if sub.poll(&mut h).unwrap_or(0) > 0 {
                            idle_since = Instant::now();
                        } else if idle_since.elapsed() > Duration::from_millis(300) {
                            break;
                        }
                    }
                    SubResult {
                        delivered: h.delivered,
                        latency: sub.stats.latency.clone(),
                        kernel_drops: sub.stats.kernel_drops(),
                        cpu_ns: net::clock::thread_cpu_ns(),
                    }
                })
                .expect("spawn subscriber thread")
        })
        .collect()
}

/// What the subscribers delivered, their latency, kernel drops and CPU time.
pub(crate) struct Received {
    delivered: u64,
    hist: Histogram<u64>,
    drops: u64,
    cpu_ns: u64,
}

pub(crate) fn collect(handles: Vec<std::thread::JoinHandle<SubResult>>) -> Received {
    let mut r = Received {
        delivered: 0,
        hist: subscriber_sdk::stats::Stats::latency_histogram(),
        drops: 0,
        cpu_ns: 0,
    };
    for h in handles {
        if let Ok(s) = h.join() {
            r.delivered += s.delivered;
            let _ = r.hist.add(&s.latency);
            r.drops += s.kernel_drops;
            r.cpu_ns += s.cpu_ns;
        }
    }
    r
}

fn latency(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
    }
}

pub(crate) fn finish(mut p: Phase, subs: usize, got: &Received) -> Phase {
    let (delivered, hist, drops) = (got.delivered, &got.hist, got.drops);
    p.cpu_ns_per_msg.subscriber = got.cpu_ns as f64 / delivered.max(1) as f64;
    let s = p.seconds.max(1e-9);
    let expected = p.messages_sent.saturating_mul(subs as u64).max(1);
    p.messages_delivered = delivered;
    p.msgs_per_s = delivered as f64 / subs.max(1) as f64 / s;
    p.datagrams_per_s = p.datagrams as f64 / s;
    p.msgs_per_datagram = if p.datagrams > 0 {
        p.messages_sent as f64 / p.datagrams as f64
    } else {
        0.0
    };
    p.syscalls_per_msg_per_sub = p.send_syscalls as f64 / expected as f64;
    p.loss = (1.0 - delivered as f64 / expected as f64).max(0.0);
    p.latency_ns = latency(hist);
    p.kernel_drops = drops;
    p
}
