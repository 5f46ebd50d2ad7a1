//! `tickcast bench --tcp-clients N`: the SoupBinTCP fan-out measured three ways on the same
//! generated feed and the same receiving clients (one thread reading every connection):
//!
//! - `tcp`: every send of a duty cycle in one `io_uring_enter`;
//! - `tcp_epoll`: one `send` per client per duty cycle (the fallback);
//! - `tcp_naive`: one `send` per message per client.
//!
//! Optionally (`--tcp-stalled K`) the io_uring phase runs again with K more clients that log in
//! and never read, to show what a stopped client costs the others.

use crate::bench::{bench_config, spawn_feed, BenchConfig, FeedData};
use distributor::config::{Gso, Tcp, TcpIo};
use distributor::shard::ShardSet;
use distributor::tcp::Backend;
use protocol::soupbintcp::{self, ClientRepr, ServerRepr};
use protocol::Session;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One TCP phase's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TcpPhase {
    pub backend: String,
    pub clients: usize,
    /// Clients that logged in and never read (not counted in the figures).
    pub stalled: usize,
    /// Messages each reading client received per second while the feed ran.
    pub msgs_per_s: f64,
    /// Send-side system calls per message per client: `io_uring_enter` calls (tcp) or `send`
    /// calls (epoll, naive), over messages × clients delivered.
    pub syscalls_per_msg_per_client: f64,
    /// Fraction of (messages published × clients) not delivered by the end of the drain.
    pub loss: f64,
    pub messages_published: u64,
    pub messages_delivered: u64,
    pub send_syscalls: u64,
    pub sqes: u64,
    pub partial_sends: u64,
    pub full_sockets: u64,
    pub catchups: u64,
    pub fixed_buffers: bool,
    pub seconds: f64,
    /// CPU ns per message published: feed and shard threads; per message per client: the TCP
    /// agent and the receiving thread.
    pub cpu_ns: TcpCpu,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TcpCpu {
    pub feed_per_msg: f64,
    pub shard_per_msg: f64,
    pub agent_per_msg_per_client: f64,
    pub receiver_per_msg_per_client: f64,
}

/// A client connection as the bench's receiver sees it.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    len: usize,
    messages: u64,
    ended: bool,
}

fn login(addr: SocketAddr, session: Session) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut out = [0u8; 64];
    let n = ClientRepr::Login {
        username: [b' '; 6],
        password: [b' '; 10],
        session,
        sequence: 1,
    }
    .emit(&mut out)
    .map_err(std::io::Error::other)?;
    s.write_all(&out[..n])?;
    // The `A` (3 + 30 bytes) before anything else.
    let mut a = [0u8; 33];
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.read_exact(&mut a)?;
    if a[2] != soupbintcp::kind::ACCEPTED {
        return Err(std::io::Error::other("login not accepted"));
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Reads every connection until each got `Z` or `deadline`; counts `S` packets. `live` is
/// the running total, read by the phase at the moment the feed stops.
fn receive(mut conns: Vec<Conn>, live: Arc<AtomicU64>, deadline: Instant) -> (Vec<Conn>, u64) {
    let cpu0 = net::clock::thread_cpu_ns();
    let mut heartbeat = Instant::now();
    while conns.iter().any(|c| !c.ended) && Instant::now() < deadline {
        let mut any = false;
        for c in conns.iter_mut().filter(|c| !c.ended) {
            let n = match c.sock.read(&mut c.buf[c.len..]) {
                Ok(0) => {
                    c.ended = true;
                    continue;
                }
                Ok(n) => n,
                Err(_) => continue,
            };
            any = true;
            c.len += n;
            let mut used = 0;
            while let Ok(Some((f, k))) = soupbintcp::split_frame(&c.buf[used..c.len], 4096) {
                used += k;
                match ServerRepr::parse(&f) {
                    Ok(ServerRepr::Sequenced(_)) => c.messages += 1,
                    Ok(ServerRepr::EndOfSession) => c.ended = true,
                    _ => {}
                }
            }
            c.buf.copy_within(used..c.len, 0);
            c.len -= used;
        }
        live.store(conns.iter().map(|c| c.messages).sum(), Ordering::Relaxed);
        if heartbeat.elapsed() >= Duration::from_secs(1) {
            heartbeat = Instant::now();
            for c in conns.iter_mut() {
                let _ = c.sock.write(&[0, 1, soupbintcp::kind::CLIENT_HEARTBEAT]);
            }
        }
        if !any {
            let fds = conns.iter().filter(|c| !c.ended).map(|c| {
                use std::os::fd::AsFd;
                c.sock.as_fd()
            });
            net::poll::wait_readable(fds, Duration::from_millis(1));
        }
    }
    (conns, net::clock::thread_cpu_ns().saturating_sub(cpu0))
}

/// One phase: `clients` reading clients (+ `stalled` that never read) on one group fed by the
/// generated feed for `cfg.seconds`.
pub fn phase(
    cfg: &BenchConfig,
    data: &FeedData,
    backend: Backend,
    clients: usize,
    stalled: usize,
) -> Result<TcpPhase, String> {
    let journal = cfg
        .journal_dir
        .join(format!("tickcast-bench-tcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&journal);
    let one = BenchConfig {
        groups: 1,
        shards: 1,
        ..cfg.clone()
    };
    let mut c = bench_config(&one, &journal, Gso::Auto);
    c.tcp = Some(Tcp {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        allow: vec!["127.0.0.0/8".into()],
        max_clients: clients + stalled + 16,
        heartbeat_ms: 1000,
        login_timeout_ms: 10_000,
        idle_timeout_ms: 60_000,
        // A client within 2^18 messages is served from the window.
        lag_limit: 1 << 18,
        sndbuf: 4 << 20,
        core: None,
        io: TcpIo::Auto,
        users: Vec::new(),
    });
    let mut shards = ShardSet::start_with(
        &c,
        Arc::new(AtomicBool::new(false)),
        Duration::ZERO,
        Some(backend),
    )?;
    let tcp = shards.tcp.as_ref().ok_or("no TCP server")?;
    let (addr, counters) = (tcp.local_addr, tcp.counters.clone());
    let session = Session::new(&c.groups[0].session).map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let sock = login(addr, session).map_err(|e| format!("TCP client: {e}"))?;
        conns.push(Conn {
            sock,
            buf: vec![0u8; 256 * 1024],
            len: 0,
            messages: 0,
            ended: false,
        });
    }
    let idle: Vec<TcpStream> = (0..stalled)
        .map(|_| login(addr, session))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("TCP client: {e}"))?;
    let live = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.seconds) + Duration::from_secs(20);
    let l = live.clone();
    let receiver = std::thread::Builder::new()
        .name("tcp-bench-rx".into())
        .spawn(move || receive(conns, l, deadline))
        .map_err(|e| e.to_string())?;

    let stop_feed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let feed = spawn_feed(&c, data, cfg.rate, &mut shards, stop_feed.clone())?;
    std::thread::sleep(Duration::from_secs_f64(cfg.seconds));
    let at_stop = live.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    stop_feed.store(true, Ordering::Relaxed);
    let feed_cpu = feed.join().unwrap_or(0);
    let (group_counters, shard_counters) =
        (shards.group_counters.clone(), shards.shard_counters.clone());
    // Ends when every client has had everything and `Z`, or a few seconds after the feed.
    shards.join();
    let (conns, rx_cpu) = receiver.join().map_err(|_| "receiver panicked")?;
    drop(idle);
    let _ = std::fs::remove_dir_all(&journal);
    let published: u64 = group_counters.iter().map(|g| g.messages.get()).sum();
    let delivered: u64 = conns.iter().map(|c| c.messages).sum();
    let per_client = |v: u64| v as f64 / delivered.max(1) as f64;
    let per_msg = |v: u64| v as f64 / published.max(1) as f64;
    Ok(TcpPhase {
        backend: counters.backend_name().into(),
        clients,
        stalled,
        msgs_per_s: at_stop as f64 / clients.max(1) as f64 / seconds,
        syscalls_per_msg_per_client: per_client(counters.send_syscalls.get()),
        loss: 1.0 - delivered as f64 / (published * clients as u64).max(1) as f64,
        messages_published: published,
        messages_delivered: delivered,
        send_syscalls: counters.send_syscalls.get(),
        sqes: counters.sqes.get(),
        partial_sends: counters.partial_sends.get(),
        full_sockets: counters.full_sockets.get(),
        catchups: counters.catchups.get(),
        fixed_buffers: counters.fixed_buffers.get() == 1,
        seconds,
        cpu_ns: TcpCpu {
            feed_per_msg: per_msg(feed_cpu),
            shard_per_msg: per_msg(shard_counters.iter().map(|s| s.cpu_ns.get()).sum()),
            agent_per_msg_per_client: per_client(counters.cpu_ns.get()),
            receiver_per_msg_per_client: per_client(rx_cpu),
        },
    })
}

/// The TCP part of a bench report.
#[derive(Debug, Clone, Serialize)]
pub struct TcpReport {
    pub tcp: TcpPhase,
    pub tcp_epoll: TcpPhase,
    pub tcp_naive: TcpPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_stalled: Option<TcpPhase>,
}

pub fn run(
    cfg: &BenchConfig,
    data: &FeedData,
    clients: usize,
    stalled: usize,
) -> Result<TcpReport, String> {
    if !(1..=5000).contains(&clients) {
        return Err("--tcp-clients must be 1..=5000".into());
    }
    let tcp = phase(cfg, data, Backend::Uring, clients, 0)?;
    let tcp_epoll = phase(cfg, data, Backend::Epoll, clients, 0)?;
    let tcp_naive = phase(cfg, data, Backend::Naive, clients, 0)?;
    let tcp_stalled = if stalled > 0 {
        Some(phase(cfg, data, Backend::Uring, clients, stalled)?)
    } else {
        None
    };
    Ok(TcpReport {
        tcp,
        tcp_epoll,
        tcp_naive,
        tcp_stalled,
    })
}

pub fn table(r: &TcpReport) -> String {
    let mut s = format!(
        "\nTCP fan-out: {} clients\n{:<12} {:>13} {:>20} {:>8} {:>13} {:>11} {:>11}\n",
        r.tcp.clients,
        "phase",
        "msgs/s/client",
        "syscalls/msg/client",
        "loss",
        "agent ns/msg",
        "partial",
        "catch-ups"
    );
    let mut phases = vec![
        ("tcp", &r.tcp),
        ("tcp_epoll", &r.tcp_epoll),
        ("tcp_naive", &r.tcp_naive),
    ];
    if let Some(p) = &r.tcp_stalled {
        phases.push(("tcp_stalled", p));
    }
    for (name, p) in phases {
        s += &format!(
            "{:<12} {:>13.0} {:>20.6} {:>7.3}% {:>13.1} {:>11} {:>11}\n",
            name,
            p.msgs_per_s,
            p.syscalls_per_msg_per_client,
            p.loss * 100.0,
            p.cpu_ns.agent_per_msg_per_client,
            p.partial_sends,
            p.catchups
        );
    }
    s
}
