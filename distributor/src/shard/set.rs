//! The shards of a config, started together: their queues' feed side, their retransmitters,
//! the TCP agent, and everyone's counters.

use super::{Shard, ShardSpec};
use crate::batch::{self, ShardInput};
use crate::config::{Config, Group};
use crate::counters::{GroupCounters, ShardCounters};
use crate::retransmitter::Retransmitter;
use crate::tcp::{TcpGroup, TcpServer};
use net::window::WindowReader;
use protocol::moldudp64::Session;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shards of a config, running: the feed side of their queues and everyone's counters.
pub struct ShardSet {
    /// One per `[[shard]]`, in config order; dropping them tells the shards to shut down.
    pub inputs: Vec<ShardInput>,
    pub shard_counters: Vec<Arc<ShardCounters>>,
    /// By global group index.
    pub group_counters: Vec<Arc<GroupCounters>>,
    /// The SoupBinTCP server, when `[tcp]` is configured.
    pub tcp: Option<TcpServer>,
    /// The re-request server addresses actually bound (port 0 resolved), all shards.
    pub retransmit_addrs: Vec<std::net::SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
    retransmitters: Vec<std::thread::JoinHandle<()>>,
    /// Tells the retransmitters to finish once the shards have.
    retransmit_stop: Arc<AtomicBool>,
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
        let mut rtxs = Vec::new();
        let mut retransmit_addrs = Vec::new();
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
                slice_us: s.slice_us,
                groups: &owned,
                journal: &cfg.journal,
                group_counters: &group_counters,
                linger,
                tcp_window: cfg.tcp.as_ref().map(|t| t.window_frames()),
            };
            let mut shard = Shard::new(spec, queue, counters.clone(), stop.clone())?;
            tcp_readers.extend(shard.take_tcp_readers());
            let preparers = shard.take_journal_preparers();
            shards.push(shard);
            // After the shard: its journals exist for the retransmitter to read.
            let rtx = Retransmitter::new(
                &owned,
                preparers,
                &cfg.journal.dir,
                &group_counters,
                counters.clone(),
            )?;
            retransmit_addrs.extend(rtx.local_addrs());
            rtxs.push((rtx, s.retransmit_core));
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
        let retransmit_stop = Arc::new(AtomicBool::new(false));
        let retransmitters = rtxs
            .into_iter()
            .enumerate()
            .map(|(i, (rtx, core))| {
                let stop = retransmit_stop.clone();
                std::thread::Builder::new()
                    .name(format!("retransmit-{i}"))
                    .spawn(move || {
                        crate::agent::pin_current(core, "retransmitter");
                        rtx.run(stop)
                    })
            })
            .collect::<std::io::Result<_>>()
            .map_err(|e| format!("starting retransmitter threads: {e}"))?;
        Ok(ShardSet {
            retransmit_addrs,
            retransmitters,
            retransmit_stop,
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
        // The shards lingered answering nothing themselves; now the re-request servers stop.
        self.retransmit_stop.store(true, Ordering::Relaxed);
        for t in self.retransmitters {
            ok &= t.join().is_ok();
        }
        if let Some(tcp) = self.tcp {
            ok &= tcp.join();
        }
        ok
    }
}
