//! `tickcast bench`: three phases on loopback in one run, with the same subscriber SDK receiving:
//!
//! - `tickcast`: a generated ITCH feed → feed handler → shard(s) → sendmmsg → multicast;
//! - `naive`: the same normalized messages, one `sendto` per message per subscriber (unicast);
//! - `raw`: pre-built full datagrams of the same size, `sendmmsg` to the same number of groups,
//!   no feed work — what the kernel can move.
//!
//! Ratios measured in the same run are what the machine can vouch for.

pub(crate) use crate::bench_subscribers::{collect, finish, subscribers, Progress, LATENCY_WARMUP};
pub use crate::bench_table::table;
use distributor::config::{Config, Content, Group, Gso, Idle, Shard as ShardCfg};
use distributor::pipeline::{self, FeedCounters, FeedSource};
use distributor::shard::ShardSet;
use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::{Frame, Framing, Source, SourceError};
use feedhandler::{FeedHandler, SessionClock};
use protocol::moldudp64;
use protocol::schema::RECORD_SIZE;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber_sdk::GroupSpec;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub seconds: f64,
    pub groups: usize,
    pub subscribers: usize,
    pub max_payload: usize,
    pub shards: usize,
    /// Source messages generated once and replayed in a loop.
    pub feed_messages: usize,
    /// Where the tickcast phase journals (created and removed by the bench).
    pub journal_dir: std::path::PathBuf,
    /// Source messages per second offered to every phase (open loop: a late sender catches
    /// up, nothing is skipped); `None` runs flat out.
    pub rate: Option<f64>,
    /// Subscribers receive with UDP_GRO.
    pub gro: bool,
    /// The shards' idle strategy (`--idle`).
    pub idle: Idle,
    /// The shards' scheduler slice in µs (`--slice-us`).
    pub slice_us: u64,
    /// The core the tickcast phases' feed handler is pinned to (`--feed-core`; shard `s` runs
    /// on core `s`); `None` leaves it to the scheduler.
    pub feed_core: Option<usize>,
    /// TCP clients for the SoupBinTCP phases (0: none).
    pub tcp_clients: usize,
    /// Extra TCP clients that never read, in a further io_uring phase (0: none).
    pub tcp_stalled: usize,
}

/// One phase's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Messages delivered per second to each subscriber (total delivered / subscribers / s).
    pub msgs_per_s: f64,
    /// Distinct datagrams the sender handed to the kernel per second (a unicast copy per
    /// subscriber counts once each).
    pub datagrams_per_s: f64,
    pub msgs_per_datagram: f64,
    /// Send-side system calls per message per subscriber.
    pub syscalls_per_msg_per_sub: f64,
    /// Fraction of (messages sent × subscribers) not delivered.
    pub loss: f64,
    pub latency_ns: Latency,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub datagrams: u64,
    pub send_syscalls: u64,
    pub seconds: f64,
    pub kernel_drops: u64,
    /// CPU time per message of each stage's threads (CLOCK_THREAD_CPUTIME_ID), so a run on a
    /// machine with fewer cores than busy threads still shows where the time goes.
    pub cpu_ns_per_msg: CpuPerMsg,
}

/// ns of CPU per message sent (`feed`, `shard`, `retransmitter`, `sender`) or delivered
/// (`subscriber`); 0 where a phase has no such stage. `retransmitter` is the shard's second
/// thread: re-requests and the journal's page faults, taken off the sender.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuPerMsg {
    pub feed: f64,
    pub shard: f64,
    pub retransmitter: f64,
    pub sender: f64,
    pub subscriber: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub vs_naive: f64,
    pub vs_raw: f64,
    /// tickcast with GSO ÷ tickcast without (0 when the kernel has no GSO).
    pub vs_nogso: f64,
    /// TCP over io_uring ÷ epoll, and ÷ one send per message (with `--tcp-clients`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_vs_epoll: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_vs_naive: Option<f64>,
    /// The reading clients' rate with stalled clients beside them ÷ without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_stalled_vs_tcp: Option<f64>,
    /// With `--rate`: tickcast's latency ÷ the raw phase's (the kernel path alone at the same
    /// offered load, same run) at p99 and p99.9; at or below 1, the tail is the kernel path's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_vs_raw: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999_vs_raw: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tickcast: Phase,
    /// The tickcast phase again with `gso = "off"` (only when GSO is available).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickcast_nogso: Option<Phase>,
    /// Whether the tickcast and raw phases used UDP GSO.
    pub gso: bool,
    pub naive: Phase,
    pub raw: Phase,
    pub ratios: Ratios,
    pub groups: usize,
    pub subscribers: usize,
    pub max_payload: usize,
    pub shards: usize,
    pub seconds_per_phase: f64,
    /// Latency counts only messages delivered this long after a subscriber's first (each
    /// phase's start-up — first page touches, each stream held until a second datagram
    /// confirms it — is not the steady state the percentiles describe).
    pub latency_warmup_s: f64,
    /// Whether the subscribers asked for UDP_GRO (`--gro`).
    pub subscriber_gro: bool,
    /// The shards' idle strategy.
    pub idle: Idle,
    /// The shards' scheduler slice in µs (0: the kernel's default).
    pub slice_us: u64,
    /// One-way latency of a cache line between cores 0 and 1 (ns), sampled before the first
    /// phase and after each (`bench_host.rs`): on a VM the host moves the vCPUs between near and
    /// far placements, and a run's CPU per message follows.
    pub core_to_core_ns: Vec<f64>,
    /// The core the feed handler was pinned to (`--feed-core`); absent when not pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_core: Option<usize>,
    /// Offered source messages per second (`--rate`); absent when flat out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The SoupBinTCP phases (`tcp`, `tcp_epoll`, `tcp_naive`, `tcp_stalled`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<crate::bench_tcp::TcpReport>,
}

/// A generated ITCH feed (BinaryFILE framing) and its chunk boundaries.
pub(crate) type FeedData = (Arc<Vec<u8>>, Arc<Vec<(usize, usize)>>);

/// A generated ITCH feed in memory, replayed in a loop in chunks of about one input
/// datagram's worth of messages.
pub(crate) struct MemorySource {
    data: Arc<Vec<u8>>,
    chunks: Arc<Vec<(usize, usize)>>,
    next: usize,
    pace: Pace,
}

impl MemorySource {
    pub(crate) fn new(data: &FeedData, rate: Option<f64>) -> MemorySource {
        MemorySource {
            data: data.0.clone(),
            chunks: data.1.clone(),
            next: 0,
            pace: Pace::new(rate),
        }
    }
}

/// Open-loop pacing: the n-th message is due at `n / rate` seconds after the first. A sender
/// that falls behind sends at once until it is back on schedule, so queueing shows in the
/// latency instead of being hidden by a slower offered load.
pub(crate) struct Pace {
    ns_per_msg: Option<f64>,
    start: Option<Instant>,
    offered: u64,
}

impl Pace {
    pub(crate) fn new(rate: Option<f64>) -> Pace {
        Pace {
            ns_per_msg: rate.filter(|r| *r > 0.0).map(|r| 1e9 / r),
            start: None,
            offered: 0,
        }
    }

    /// Waits until `msgs` more messages are due. Sleeps at most 1 ms at a time so a stop
    /// request is seen promptly by the caller's loop.
    pub(crate) fn wait(&mut self, msgs: u64) {
        let Some(ns) = self.ns_per_msg else {
            return;
        };
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = Duration::from_nanos((self.offered as f64 * ns) as u64);
        self.offered += msgs;
        self.sleep_until(start, due);
    }

    fn sleep_until(&self, start: Instant, due: Duration) {
        loop {
            let now = start.elapsed();
            if now >= due {
                return;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(1)));
        }
    }
}

/// A feed handler for the generated feed, whose ITCH times are today's.
pub(crate) fn today_feed_handler() -> FeedHandler {
    let mut fh = FeedHandler::new(SessionClock::new(today()), false);
    fh.normalizer.reserve_for_session(); // as the pipeline's feed thread does
    fh
}

pub(crate) fn today() -> chrono::NaiveDate {
    SessionClock::date_of_epoch_ns(feedhandler::now_ns())
}

impl Source for MemorySource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        let (a, b) = self.chunks[self.next];
        self.next = (self.next + 1) % self.chunks.len();
        self.pace.wait(CHUNK_MESSAGES as u64);
        Ok(Some(Frame {
            framing: Framing::BinaryFile,
            bytes: &self.data[a..b],
            recv_ts_ns: feedhandler::now_ns(),
            feed: net::Feed::A,
            from: None,
        }))
    }
}

/// Messages per input chunk: a MoldUDP64 datagram of ITCH holds about this many.
pub(crate) const CHUNK_MESSAGES: usize = 32;

fn generate(messages: usize) -> FeedData {
    let mut g = Generator::new(GeneratorConfig {
        instruments: 500,
        seed: 7,
        ..Default::default()
    });
    let mut data = Vec::with_capacity(messages * 36);
    let mut chunks = Vec::with_capacity(messages / CHUNK_MESSAGES + 1);
    let mut m = [0u8; MAX_MESSAGE];
    let mut start = 0;
    for i in 0..messages {
        let n = g.next_message(&mut m);
        data.extend_from_slice(&(n as u16).to_be_bytes());
        data.extend_from_slice(&m[..n]);
        if (i + 1) % CHUNK_MESSAGES == 0 {
            chunks.push((start, data.len()));
            start = data.len();
        }
    }
    if start < data.len() {
        chunks.push((start, data.len()));
    }
    (Arc::new(data), Arc::new(chunks))
}

/// Ports for this process above the test suite's (below 32 768) and the kernel's ephemeral
/// range (32 768–60 999), so that a bench run by a test never collides with another socket.
pub(crate) fn base_port() -> u16 {
    61_000 + (std::process::id() % 100) as u16 * 40
}

pub(crate) fn bench_config(cfg: &BenchConfig, journal: &std::path::Path, gso: Gso) -> Config {
    let mut c = Config::load(None).expect("embedded default config");
    let base = base_port();
    let template = c.groups[0].clone();
    c.groups = (0..cfg.groups)
        .map(|i| Group {
            name: format!("bench{i}"),
            session: format!("BENCH{i:03}"),
            symbols: vec![],
            symbol_ranges: vec![],
            partition: Some(format!("{i}/{}", cfg.groups)),
            content: Content::All,
            feed_a: SocketAddrV4::new(Ipv4Addr::new(239, 194, 1, i as u8 + 1), base + i as u16),
            feed_b: None,
            multicast_loop: true,
            max_payload: cfg.max_payload,
            retransmit: SocketAddrV4::new(Ipv4Addr::LOCALHOST, base + 10 + i as u16),
            ring: 1 << 16,
            sndbuf: 16 << 20,
            gso,
            ..template.clone()
        })
        .collect();
    let shards = cfg.shards.clamp(1, cfg.groups);
    c.shards = (0..shards)
        .map(|s| ShardCfg {
            core: s,
            groups: (0..cfg.groups)
                .filter(|g| g % shards == s)
                .map(|g| format!("bench{g}"))
                .collect(),
            idle: cfg.idle,
            slice_us: cfg.slice_us,
            retransmit_core: None,
        })
        .collect();
    c.feed.core = cfg.feed_core;
    c.journal.dir = journal.to_path_buf();
    c.metrics.listen = None;
    c
}

/// Starts the feed thread on the in-memory feed into `shards`' queues; it returns its thread
/// CPU time when `stop` is set.
pub(crate) fn spawn_feed(
    c: &Config,
    data: &FeedData,
    rate: Option<f64>,
    shards: &mut ShardSet,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<u64>, String> {
    let inputs = std::mem::take(&mut shards.inputs);
    let counters = Arc::new(FeedCounters::default());
    let src = MemorySource::new(data, rate);
    let clock = SessionClock::new(today());
    let c = c.clone();
    std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || {
            let feed = FeedSource::File {
                source: Box::new(src),
                pacer: None,
                date_from_frames: false,
                format: feedhandler::source::FileFormat::BinaryFile,
            };
            pipeline::run_feed(feed, clock, &c, inputs, stop, counters);
            net::clock::thread_cpu_ns()
        })
        .map_err(|e| e.to_string())
}

fn tickcast_phase(cfg: &BenchConfig, data: &FeedData, gso: Gso) -> Result<Phase, String> {
    let journal = cfg
        .journal_dir
        .join(format!("tickcast-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&journal);
    let c = bench_config(cfg, &journal, gso);
    let stop_subs = Arc::new(AtomicBool::new(false));
    let specs: Vec<GroupSpec> = c
        .groups
        .iter()
        .map(|g| GroupSpec::new(&g.name, g.feed_a))
        .collect();
    let subs = subscribers(
        cfg.subscribers,
        specs,
        stop_subs.clone(),
        cfg.gro,
        &Progress::default(),
    );
    std::thread::sleep(Duration::from_millis(200)); // joined before the first datagram

    let mut shards = ShardSet::start(&c, Arc::new(AtomicBool::new(false)), Duration::ZERO)?;
    let stop_feed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let feed_thread = spawn_feed(&c, data, cfg.rate, &mut shards, stop_feed.clone())?;
    std::thread::sleep(Duration::from_secs_f64(cfg.seconds));
    stop_feed.store(true, Ordering::Relaxed);
    let feed_cpu = feed_thread.join().unwrap_or(0);
    let (group_counters, shard_counters) =
        (shards.group_counters.clone(), shards.shard_counters.clone());
    shards.join();
    let seconds = started.elapsed().as_secs_f64();
    stop_subs.store(true, Ordering::Relaxed);
    let got = collect(subs);
    let _ = std::fs::remove_dir_all(&journal);
    let messages_sent: u64 = group_counters.iter().map(|g| g.messages.get()).sum();
    let per = |ns: u64| ns as f64 / messages_sent.max(1) as f64;
    let phase = Phase {
        messages_sent,
        datagrams: group_counters.iter().map(|g| g.datagrams.get()).sum(),
        send_syscalls: shard_counters.iter().map(|s| s.sendmmsg_calls.get()).sum(),
        seconds,
        cpu_ns_per_msg: CpuPerMsg {
            feed: per(feed_cpu),
            shard: per(shard_counters.iter().map(|s| s.cpu_ns.get()).sum()),
            retransmitter: per(shard_counters
                .iter()
                .map(|s| s.retransmitter_cpu_ns.get())
                .sum()),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(finish(phase, cfg.subscribers, &got))
}

/// Runs the three phases.
pub fn run(cfg: &BenchConfig) -> Result<Report, String> {
    if cfg.groups == 0 || cfg.groups > 64 || cfg.subscribers == 0 || cfg.subscribers > 64 {
        return Err("--groups and --subscribers must be 1..=64".into());
    }
    let min = moldudp64::HEADER_LEN + 2 + RECORD_SIZE;
    if cfg.max_payload < min || cfg.max_payload > 65507 {
        return Err(format!("--max-payload must be {min}..=65507"));
    }
    let data = generate(cfg.feed_messages);
    let gso = net::probe::gso_supported();
    let mut core_to_core = Vec::new();
    let mut sample_host = || core_to_core.extend(crate::bench_host::core_to_core_ns());
    sample_host();
    let tickcast = tickcast_phase(cfg, &data, Gso::Auto)?;
    sample_host();
    let tickcast_nogso = if gso {
        let p = tickcast_phase(cfg, &data, Gso::Off)?;
        sample_host();
        Some(p)
    } else {
        None
    };
    let naive = crate::bench_baselines::naive_phase(cfg, &data)?;
    sample_host();
    let raw = crate::bench_baselines::raw_phase(cfg, &data, gso)?;
    sample_host();
    let tcp = if cfg.tcp_clients > 0 {
        Some(crate::bench_tcp::run(
            cfg,
            &data,
            cfg.tcp_clients,
            cfg.tcp_stalled,
        )?)
    } else {
        None
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    // Only at an offered load, and only when both phases recorded latency past the warm-up.
    let latency_ratio =
        |t: u64, r: u64| (cfg.rate.is_some() && t > 0 && r > 0).then(|| t as f64 / r as f64);
    Ok(Report {
        ratios: Ratios {
            vs_naive: ratio(tickcast.msgs_per_s, naive.msgs_per_s),
            vs_raw: ratio(tickcast.msgs_per_s, raw.msgs_per_s),
            vs_nogso: tickcast_nogso
                .as_ref()
                .map_or(0.0, |n| ratio(tickcast.msgs_per_s, n.msgs_per_s)),
            tcp_vs_epoll: tcp
                .as_ref()
                .map(|t| ratio(t.tcp.msgs_per_s, t.tcp_epoll.msgs_per_s)),
            tcp_vs_naive: tcp
                .as_ref()
                .map(|t| ratio(t.tcp.msgs_per_s, t.tcp_naive.msgs_per_s)),
            tcp_stalled_vs_tcp: tcp.as_ref().and_then(|t| {
                t.tcp_stalled
                    .as_ref()
                    .map(|s| ratio(s.msgs_per_s, t.tcp.msgs_per_s))
            }),
            p99_vs_raw: latency_ratio(tickcast.latency_ns.p99, raw.latency_ns.p99),
            p999_vs_raw: latency_ratio(tickcast.latency_ns.p999, raw.latency_ns.p999),
        },
        tcp,
        tickcast_nogso,
        gso,
        tickcast,
        naive,
        raw,
        groups: cfg.groups,
        subscribers: cfg.subscribers,
        max_payload: cfg.max_payload,
        shards: cfg.shards,
        seconds_per_phase: cfg.seconds,
        latency_warmup_s: LATENCY_WARMUP.as_secs_f64(),
        rate: cfg.rate,
        idle: cfg.idle,
        slice_us: cfg.slice_us,
        feed_core: cfg.feed_core,
        subscriber_gro: cfg.gro,
        core_to_core_ns: core_to_core,
    })
}
