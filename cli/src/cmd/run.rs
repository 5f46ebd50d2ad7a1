//! `tickcast run [--config FILE] [--replay FILE [--speed N|max]] [--quiet] [--print-config]`

use crate::metrics::{self, Registry};
use anyhow::Result;
use distributor::config::Config;
use distributor::pipeline::{self, FeedCounters};
use distributor::shard::ShardSet;
use feedhandler::source::pacing::Speed;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (TOML); default: the embedded default (configs/default.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replay this pcap/pcapng/BinaryFILE instead of the configured feed; exits when it ends.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Replay speed: "max" or a multiple of the recorded rate (0.001 to 1e6).
    #[arg(long, default_value = "max", value_parser = crate::args::speed)]
    pub speed: Speed,
    /// No periodic status line.
    #[arg(long)]
    pub quiet: bool,
    /// After the feed ends, keep answering re-requests (repeating end of session each second)
    /// for this many seconds, or until SIGINT/SIGTERM.
    #[arg(long, default_value_t = 0.0, value_parser = crate::args::seconds)]
    pub linger: f64,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let cfg = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tickcast: {e}");
            return Ok(2);
        }
    };
    if args.print_config {
        use std::io::Write;
        // A closed stdout (`| head`) is not an error of ours.
        let _ = write!(std::io::stdout(), "{}", cfg.to_toml());
        return Ok(0);
    }
    let speed = args.speed;
    // SIGHUP too: a closed terminal ends the run cleanly (end of session, summary).
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())?;
    }

    // Shards: queues, sockets and journals first, so that a bad address fails before any feed.
    let linger = Duration::from_secs_f64(args.linger.clamp(0.0, 86_400.0));
    let mut shards = match ShardSet::start(&cfg, stop.clone(), linger) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tickcast: {e}");
            return Ok(2);
        }
    };
    let inputs = std::mem::take(&mut shards.inputs);
    let (shard_counters, group_counters) =
        (shards.shard_counters.clone(), shards.group_counters.clone());
    let feed_counters = Arc::new(FeedCounters::default());
    let registry = Registry {
        feed: feed_counters.clone(),
        shards: shard_counters.clone(),
        groups: cfg
            .groups
            .iter()
            .zip(&group_counters)
            .map(|(g, c)| (g.name.clone(), g.session.clone(), c.clone()))
            .collect(),
        tcp: shards.tcp.as_ref().map(|t| t.counters.clone()),
    };
    let tcp_counters = shards.tcp.as_ref().map(|t| t.counters.clone());
    let metrics_stop = Arc::new(AtomicBool::new(false));
    let metrics_thread = match cfg.metrics.listen {
        Some(addr) => match metrics::serve(addr, registry.clone(), metrics_stop.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("tickcast: metrics.listen {addr}: {e}");
                return Ok(2);
            }
        },
        None => None,
    };

    // The feed source is opened on its own thread (a live receiver stays on the thread that
    // made it); the first word back says whether it opened.
    let replay = args.replay.clone().map(|p| (p, speed));
    let feed_cfg = cfg.clone();
    let feed_stop = stop.clone();
    let fc = feed_counters.clone();
    type Ready = Result<Option<feedhandler::source::FileFormat>, String>;
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Ready>(1);
    let feed_thread = std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || match pipeline::open_source(&feed_cfg, replay) {
            Ok((feed, clock)) => {
                let format = match &feed {
                    pipeline::FeedSource::File { format, .. } => Some(*format),
                    _ => None,
                };
                let _ = ready_tx.send(Ok(format));
                Some(pipeline::run_feed(
                    feed, clock, &feed_cfg, inputs, feed_stop, fc,
                ))
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                None
            }
        })?;
    let replay_format = match ready_rx.recv() {
        Ok(Err(e)) => {
            eprintln!("tickcast: {e}");
            metrics_stop.store(true, Ordering::Relaxed);
            return Ok(2);
        }
        Ok(Ok(format)) => format,
        Err(_) => None,
    };
    let started = Instant::now();
    tracing::info!(
        groups = cfg.groups.len(),
        shards = cfg.shards.len(),
        "tickcast running"
    );

    // Status line every few seconds until the feed ends (replay done) or a signal arrives.
    let mut last = (Instant::now(), 0u64, 0u64);
    while !feed_thread.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        if !args.quiet && last.0.elapsed() >= Duration::from_secs(5) {
            let msgs = feed_counters.messages_in.get();
            let dgrams: u64 = shard_counters.iter().map(|c| c.datagrams_sent.get()).sum();
            let dt = last.0.elapsed().as_secs_f64();
            eprintln!(
                "tickcast: {:.0} msgs/s in, {:.0} datagrams/s out, {} messages, {} sendmmsg calls",
                (msgs - last.1) as f64 / dt,
                (dgrams - last.2) as f64 / dt,
                msgs,
                shard_counters
                    .iter()
                    .map(|c| c.sendmmsg_calls.get())
                    .sum::<u64>()
            );
            last = (Instant::now(), msgs, dgrams);
        }
    }
    let outcome = feed_thread
        .join()
        .map_err(|_| anyhow::anyhow!("feed thread panicked"))?
        .unwrap_or_default();
    let stats = &outcome.stats;
    // The feed closed the shard queues: each shard flushes, sends end of session, syncs.
    if !shards.join() {
        anyhow::bail!("a shard thread panicked");
    }
    metrics_stop.store(true, Ordering::Relaxed);
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }

    let sendmmsg: u64 = shard_counters.iter().map(|c| c.sendmmsg_calls.get()).sum();
    let datagrams_sent: u64 = shard_counters.iter().map(|c| c.datagrams_sent.get()).sum();
    let groups: Vec<_> = cfg
        .groups
        .iter()
        .zip(&group_counters)
        .map(|(g, c)| c.summary(&g.name, &g.session))
        .collect();
    let datagrams: u64 = groups.iter().map(|g| g.datagrams).sum();
    let messages_out: u64 = groups.iter().map(|g| g.messages).sum();
    let summary = json!({
        "messages_in": feed_counters.messages_in.get(),
        "source_messages": stats.messages,
        "unrouted": feed_counters.unrouted.get(),
        "messages_out": messages_out,
        "datagrams": datagrams,
        "datagrams_sent": datagrams_sent,
        "sendmmsg_calls": sendmmsg,
        "msgs_per_datagram": if datagrams > 0 { messages_out as f64 / datagrams as f64 } else { 0.0 },
        "datagrams_per_sendmmsg": if sendmmsg > 0 { datagrams_sent as f64 / sendmmsg as f64 } else { 0.0 },
        "partial_sends": shard_counters.iter().map(|c| c.partial_sends.get()).sum::<u64>(),
        "send_errors": shard_counters.iter().map(|c| c.errors.get()).sum::<u64>(),
        "malformed": stats.malformed,
        "unknown_type": stats.unknown_type,
        "bad_datagrams": stats.bad_datagrams,
        "upstream_duplicates": stats.duplicates,
        "upstream_gaps": stats.gaps,
        "retransmit_refused": {
            "malformed": shard_counters.iter().map(|c| c.retransmit_malformed.get()).sum::<u64>(),
            "unknown_session": shard_counters.iter().map(|c| c.retransmit_unknown_session.get()).sum::<u64>(),
        },
        "seconds": started.elapsed().as_secs_f64(),
        "groups": groups,
        "tcp": tcp_counters.map(|t| json!({
            "backend": t.backend_name(),
            "fixed_buffers": t.fixed_buffers.get() == 1,
            "accepted": t.accepted.get(),
            "logins": t.logins.get(),
            "messages": t.messages.get(),
            "bytes": t.bytes.get(),
            "send_syscalls": t.send_syscalls.get(),
            "sqes": t.sqes.get(),
            "partial_sends": t.partial_sends.get(),
            "catchups": t.catchups.get(),
            "disconnects": distributor::tcp::Reason::ALL
                .iter()
                .filter(|r| t.disconnected(**r) > 0)
                .map(|r| (r.label().to_string(), json!(t.disconnected(*r))))
                .collect::<serde_json::Map<_, _>>(),
        })),
    });
    // A closed stdout (`run | true`) must not turn a clean shutdown into a panic.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{summary}");
    if let (Some(path), Some(format)) = (&args.replay, replay_format) {
        if let Some(e) = &outcome.error {
            eprintln!("tickcast: replay stopped early: {e}");
            return Ok(1);
        }
        if let Some(why) = stats.verdict(format) {
            eprintln!("tickcast: {}: {why}", path.display());
            return Ok(1);
        }
    }
    Ok(0)
}
