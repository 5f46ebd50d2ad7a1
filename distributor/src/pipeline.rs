//! The feed thread: source → feed handler → router → one batch per input datagram per shard.

use crate::batch::ShardInput;
use crate::config::{Config, SourceKind};
use crate::counters::Counter;
use crate::routing::Router;
use feedhandler::generator::{GeneratorConfig, GeneratorSource};
use feedhandler::source::multicast::{Endpoint, MulticastSource};
use feedhandler::source::pacing::{Pacer, Speed};
use feedhandler::source::pcap::Filter;
use feedhandler::source::{self, Source};
use feedhandler::upstream::Rerequester;
use feedhandler::{DecodeStats, FeedHandler, SessionClock};
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
    },
    Multicast {
        source: Box<MulticastSource>,
        rerequest: Option<Rerequester>,
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
        let format = source::FileFormat::sniff(&path).map_err(|e| e.to_string())?;
        let filter = Filter {
            group: f.filter_group,
            port: f.filter_port,
        };
        let src = source::open_file(&path, Some(format), filter).map_err(|e| e.to_string())?;
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
            let mut ep = Endpoint::new(group, f.interface);
            ep.source = f.source_address;
            ep.rcvbuf = f.rcvbuf;
            let source =
                MulticastSource::open(&ep).map_err(|e| format!("feed.group {group}: {e}"))?;
            let d = date.unwrap_or_else(|| SessionClock::date_of_epoch_ns(feedhandler::now_ns()));
            let rerequest = match f.rerequest {
                None => None,
                Some(server) => {
                    let sock = std::net::UdpSocket::bind("0.0.0.0:0")
                        .and_then(|s| s.set_nonblocking(true).map(|_| s))
                        .map_err(|e| format!("feed.rerequest: {e}"))?;
                    let timeout = Duration::from_millis(f.rerequest_timeout_ms.max(1));
                    Some(Rerequester::new(sock, server.into(), timeout, 3))
                }
            };
            Ok((
                FeedSource::Multicast {
                    source: Box::new(source),
                    rerequest,
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
        let rec = crate::batch::encode(m);
        for i in self.inputs.iter_mut() {
            self.alive &= i.push(&rec, mask);
        }
    }

    /// One input datagram done: each shard gets what it collected as one queue item.
    fn end_frame(&mut self, fh: &FeedHandler) {
        for i in self.inputs.iter_mut() {
            self.alive &= i.send();
        }
        self.counters.frames.add(1);
        let m = fh.normalizer.stats.messages;
        self.counters
            .source_messages
            .add(m - self.last_source_messages);
        self.last_source_messages = m;
    }
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
) -> DecodeStats {
    let live = matches!(feed, FeedSource::Multicast { .. });
    let date_from_frames = matches!(
        feed,
        FeedSource::File {
            date_from_frames: true,
            ..
        }
    );
    let mut fh = FeedHandler::new(clock, date_from_frames);
    // Sample captures zero their MoldUDP64 headers; only a live feed must be sequenced.
    fh.accept_unsequenced = !live;
    if live {
        // A spoofed or corrupt datagram must not open a giant upstream gap.
        fh.upstream.max_jump = Some(1 << 20);
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
                fan.end_frame(&fh);
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
                            p.wait(frame.recv_ts_ns);
                        }
                        fh.on_frame(&frame, &mut |m| fan.message(m));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "feed source failed; ending the replay");
                        break;
                    }
                }
                fan.end_frame(&fh);
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        }
        FeedSource::Multicast {
            mut source,
            rerequest,
        } => {
            fh.rerequest = rerequest;
            while running(&fan) {
                match source.poll() {
                    Ok(Some(frame)) => fh.on_frame(&frame, &mut |m| fan.message(m)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "multicast receive failed");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                fh.poll_rerequest(&mut |m| fan.message(m));
                fan.end_frame(&fh);
            }
        }
    }
    fan.end_frame(&fh);
    fh.normalizer.stats
}
