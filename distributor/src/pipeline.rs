//! The feed thread: source → feed handler → router → one batch per input datagram per shard.

use crate::batch::ShardInput;
use crate::config::{Config, SourceKind};
use crate::counters::Counter;
use crate::routing::Router;
use feedhandler::generator::{GeneratorConfig, GeneratorSource};
use feedhandler::source::multicast::MulticastSource;
use feedhandler::source::pacing::{Pacer, Speed};
use feedhandler::source::pcap::Filter;
use feedhandler::source::{self, Source};
use feedhandler::{DecodeStats, FeedHandler, SessionClock};
use net::{Endpoint, Requester};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters of the feed thread, readable while it runs.
#[derive(Debug, Default)]
pub struct FeedCounters {
    pub frames: Counter,
    pub source_messages: Counter,
    pub messages_in: Counter,
    pub unrouted: Counter,
}

/// Where the feed comes from, resolved from config and `--replay`.
pub enum FeedSource {
    Generator(GeneratorSource),
    File {
        source: Box<dyn Source + Send>,
        pacer: Option<Pacer>,
        date_from_frames: bool,
        format: source::FileFormat,
    },
    Multicast {
        source: Box<MulticastSource>,
        rerequest: Option<Requester>,
        request_timeout: Duration,
    },
}

/// Opens the configured source, or `replay` (a file) in its place.
pub fn open_source(
    cfg: &Config,
    replay: Option<(PathBuf, Speed)>,
) -> Result<(FeedSource, SessionClock), String> {
    let f = &cfg.feed;
    let date = f
        .date
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let file = |path: PathBuf, speed: Speed| -> Result<(FeedSource, SessionClock), String> {
        let filter = Filter {
            group: f.filter_group,
            port: f.filter_port,
        };
        // Read once from the start: pipes and FIFOs work.
        let (src, format) = source::open(&path, None, filter).map_err(|e| e.to_string())?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let d = date
            .or_else(|| feedhandler::clock::date_from_name(&name))
            .unwrap_or_else(|| SessionClock::date_of_epoch_ns(feedhandler::now_ns()));
        let pacer = match speed {
            Speed::Max => None,
            s => Some(Pacer::new(s)),
        };
        Ok((
            FeedSource::File {
                source: src,
                pacer,
                date_from_frames: date.is_none() && format.is_pcap(),
                format,
            },
            SessionClock::new(d),
        ))
    };
    if let Some((path, speed)) = replay {
        return file(path, speed);
    }
    let speed: Speed = f
        .speed
        .parse()
        .map_err(|e: String| format!("feed.speed: {e}"))?;
    match f.source {
        SourceKind::Generator => {
            let g = GeneratorConfig {
                instruments: f.instruments,
                seed: f.seed,
                ..Default::default()
            };
            let rate = (f.rate > 0).then_some(f.rate as f64);
            let limit = (f.messages > 0).then_some(f.messages);
            let src = GeneratorSource::new(g, rate, limit);
            let clock = src.clock();
            Ok((FeedSource::Generator(src), clock))
        }
        SourceKind::Pcap | SourceKind::Binaryfile => {
            let path = f
                .path
                .clone()
                .ok_or("feed.path: required for file sources")?;
            file(path, speed)
        }
        SourceKind::Multicast => {
            let group = f.group.ok_or("feed.group: required for multicast")?;
            let endpoint = |addr, interface| {
                let mut ep = Endpoint::new(addr, interface);
                ep.source = f.source_address;
                ep.rcvbuf = f.rcvbuf;
                ep
            };
            let a = endpoint(group, f.interface);
            let b = f
                .group_b
                .map(|g| endpoint(g, f.interface_b.unwrap_or(f.interface)));
            let mut source = MulticastSource::open(&a, b.as_ref())
                .map_err(|e| format!("feed.group {group}: {e}"))?;
            let rerequest = match f.rerequest {
                None => None,
                Some(server) => {
                    let (req, answers) = net::rerequest::open(server, f.rcvbuf)
                        .map_err(|e| format!("feed.rerequest {server}: {e}"))?;
                    source = source.with_answers(answers);
                    Some(req)
                }
            };
            // The duty cycle must turn often enough for the receiver's timers.
            source.set_poll_timeout(Duration::from_millis(1));
            let d = date.unwrap_or_else(|| SessionClock::date_of_epoch_ns(feedhandler::now_ns()));
            Ok((
                FeedSource::Multicast {
                    source: Box::new(source),
                    rerequest,
                    request_timeout: Duration::from_millis(f.rerequest_timeout_ms.max(1)),
                },
                SessionClock::new(d),
            ))
        }
    }
}

/// Routes normalized messages into the shards' batches.
struct Fanout<'a> {
    router: Router,
    inputs: Vec<ShardInput>,
    counters: &'a FeedCounters,
    last_source_messages: u64,
    alive: bool,
}

impl Fanout<'_> {
    #[inline]
    fn message(&mut self, m: &protocol::Repr) {
        let mask = self.router.route(m);
        self.counters.messages_in.add(1);
        if mask == 0 {
            self.counters.unrouted.add(1);
            return;
        }
        // Emitted into each shard's batch that takes it (rarely more than one).
        for i in self.inputs.iter_mut() {
            self.alive &= i.push_repr(m, mask);
        }
    }

    /// One input datagram done (`frame`), or a turn of the duty cycle without one: each shard
    /// gets what it collected as one queue item.
    fn end_frame(&mut self, fh: &FeedHandler, frame: bool) {
        for i in self.inputs.iter_mut() {
            self.alive &= i.send();
        }
        if frame {
            self.counters.frames.add(1);
        }
        let m = fh.normalizer.stats.messages;
        self.counters
            .source_messages
            .add(m - self.last_source_messages);
        self.last_source_messages = m;
    }
}

/// How a feed ended.
#[derive(Debug, Clone, Default)]
pub struct FeedOutcome {
    pub stats: DecodeStats,
    /// The source failed (a truncated or corrupt file): what it said.
    pub error: Option<String>,
}

/// Runs the feed until the source ends, `stop` is set or the shards are gone; dropping the
/// shard inputs then tells the shards to shut down. Returns the feed handler's statistics.
pub fn run_feed(
    feed: FeedSource,
    clock: SessionClock,
    cfg: &Config,
    inputs: Vec<ShardInput>,
    stop: Arc<AtomicBool>,
    counters: Arc<FeedCounters>,
) -> FeedOutcome {
    crate::agent::pin_current(cfg.feed.core, "feed handler");
    crate::batch::warm_thread();
    let mut error = None;
    let mut fh = match &feed {
        FeedSource::Multicast {
            request_timeout, ..
        } => {
            let mut rcv = feedhandler::upstream::live_config();
            rcv.request_timeout_ns = request_timeout.as_nanos() as u64;
            FeedHandler::with_receiver(clock, false, rcv)
        }
        FeedSource::File {
            date_from_frames, ..
        } => FeedHandler::new(clock, *date_from_frames),
        FeedSource::Generator(_) => FeedHandler::new(clock, false),
    };
    fh.normalizer.reserve_for_session();
    // Sample captures zero their MoldUDP64 headers; only a live feed must be sequenced.
    fh.accept_unsequenced = !matches!(feed, FeedSource::Multicast { .. });
    if let Some(s) = cfg
        .feed
        .session
        .as_deref()
        .and_then(|s| protocol::Session::new(s).ok())
    {
        fh.upstream.set_session(s);
    }
    let mut fan = Fanout {
        router: Router::new(&cfg.groups),
        inputs,
        counters: &counters,
        last_source_messages: 0,
        alive: true,
    };
    let running = |fan: &Fanout| fan.alive && !stop.load(Ordering::Relaxed);
    match feed {
        FeedSource::Generator(mut src) => {
            while running(&fan) {
                match src.next_frame() {
                    Ok(Some(frame)) => fh.on_frame(&frame, &mut |m| fan.message(m)),
                    _ => break,
                }
                fan.end_frame(&fh, true);
            }
        }
        FeedSource::File {
            mut source,
            mut pacer,
            ..
        } => {
            let bar = feedhandler::replay::progress_bar(source.as_ref());
            while running(&fan) {
                if let (Some(b), Some((done, _))) = (&bar, source.progress()) {
                    if fan.counters.frames.get().is_multiple_of(1024) {
                        b.set_position(done);
                    }
                }
                match source.next_frame() {
                    Ok(Some(frame)) => {
                        if let Some(p) = &mut pacer {
                            if !p.wait(frame.recv_ts_ns, &|| stop.load(Ordering::Relaxed)) {
                                break;
                            }
                        }
                        fh.on_frame(&frame, &mut |m| fan.message(m));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "feed source failed; ending the replay");
                        error = Some(e.to_string());
                        break;
                    }
                }
                fan.end_frame(&fh, true);
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            // Holes still open at the end of the file are reported; what waited is released.
            fh.finish(&mut |m| fan.message(m));
        }
        FeedSource::Multicast {
            mut source,
            rerequest,
            ..
        } => {
            if let Some(r) = rerequest {
                fh.upstream.set_requester(r);
            }
            while running(&fan) {
                // A frame runs the upstream timers on its arrival time (a backlog is judged
                // by when its datagrams arrived, so feed B's copy still wins); the wall clock
                // runs them when the feed is idle.
                let frame = match source.poll() {
                    Ok(Some(frame)) => {
                        fh.on_frame(&frame, &mut |m| fan.message(m));
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        tracing::error!(error = %e, "multicast receive failed");
                        std::thread::sleep(Duration::from_millis(10));
                        false
                    }
                };
                if !frame && fh.upstream.arbiter.pending() {
                    fh.tick(feedhandler::now_ns(), &mut |m| fan.message(m));
                }
                fan.end_frame(&fh, frame);
            }
        }
    }
    fan.end_frame(&fh, false);
    FeedOutcome {
        stats: fh.normalizer.stats,
        error,
    }
}
