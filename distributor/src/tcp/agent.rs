//! The TCP agent's duty cycle: plan one send per client with data waiting, hand them all to
//! the kernel at once, then apply the completions, input and new connections.

use super::client::{Client, Phase, Plan};
use super::io::Io;
use super::{ClientLag, Reason, TcpCounters, TcpGroup};
use crate::agent::Agent as _;
use crate::config::{Tcp, TcpIo};
use crate::journal::JournalReader;
use ipnet::Ipv4Net;
use net::ratelog::RateLimited;
use net::uring::{Event, SendData, SendOp};
use net::warn_limited;
use net::window::FRAME;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod events;

/// How sends reach the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Every send of a cycle in one `io_uring_enter`.
    Uring,
    /// One `send` per client per cycle, epoll for input.
    Epoll,
    /// One `send` per message per client (the benchmark's baseline).
    Naive,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
            Backend::Naive => "epoll, one send per message",
        }
    }
}

/// Frames one window send may carry (the socket takes less anyway).
pub(super) const MAX_SEND_FRAMES: u64 = 4096;
/// Longest idle wait (input and connections wake it at once; new data within this).
const MAX_IDLE_WAIT: Duration = Duration::from_micros(500);
/// After the sessions ended (and linger): how long clients still get their rest and `Z`.
const END_GRACE: Duration = Duration::from_secs(3);

pub struct Agent {
    pub(super) listener: TcpListener,
    pub(super) io: Io,
    pub(super) groups: Vec<TcpGroup>,
    /// Each group's published sequence, read once per phase of a cycle.
    pub(super) published: Vec<u64>,
    pub(super) journals: Vec<Option<JournalReader>>,
    pub(super) allow: Vec<Ipv4Net>,
    pub(super) users: Vec<([u8; 6], [u8; 10])>,
    pub(super) max_clients: usize,
    pub(super) heartbeat: Duration,
    pub(super) login_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) lag_limit: u64,
    pub(super) sndbuf: usize,
    pub(super) clients: Vec<Option<Client>>,
    pub(super) free: Vec<u32>,
    pub(super) connected: usize,
    pub(super) events: Vec<Event>,
    pub(super) sends: Vec<SendOp<'static>>,
    pub(super) counters: Arc<TcpCounters>,
    pub(super) logs: Vec<RateLimited>,
    pub(super) accept_log: RateLimited,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) linger: Duration,
    pub(super) ended_at: Option<Instant>,
    pub(super) idle_wait: Duration,
    pub(super) last_timers: Instant,
    pub(super) last_lags: Instant,
}

/// Reuses a vector's allocation for a shorter lifetime (in-place collect of an empty vector).
fn recycle<'a, 'b>(mut v: Vec<SendOp<'a>>) -> Vec<SendOp<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

fn padded<const N: usize>(s: &str) -> [u8; N] {
    protocol::soupbintcp::pad(s).unwrap_or([b' '; N])
}

/// The live client behind `token`, if any.
fn client_mut(clients: &mut [Option<Client>], token: u32) -> Option<&mut Client> {
    clients.get_mut(token as usize).and_then(|c| c.as_mut())
}

impl crate::agent::Agent for Agent {
    /// One duty cycle; returns the work done (events handled: completions, input,
    /// connections).
    fn do_work(&mut self, now: Instant) -> usize {
        let mut work = 0;
        // 1. Plan one send per client, against each group's published sequence read once.
        for (p, g) in self.published.iter_mut().zip(&self.groups) {
            *p = g.window.published();
        }
        for t in 0..self.clients.len() {
            self.plan(t, now);
        }
        // 2. All of them to the kernel at once.
        let mut sends = recycle(std::mem::take(&mut self.sends));
        for (t, slot) in self.clients.iter().enumerate() {
            let Some(c) = slot else { continue };
            let data = match c.plan {
                Plan::Nothing => continue,
                Plan::Control => SendData::Bytes(c.control_pending()),
                Plan::Window { seq, end } => {
                    SendData::Window(self.groups[c.group].window.region(seq, c.skip, end))
                }
                Plan::CatchUp { len } => match &c.catchup {
                    Some(cu) => {
                        let off = (c.seq - cu.first) as usize * FRAME + c.skip;
                        SendData::Bytes(&cu.buf[off..off + len])
                    }
                    None => continue,
                },
            };
            sends.push(SendOp {
                fd: c.sock.as_fd(),
                data,
                token: t as u32,
            });
        }
        let planned = sends.len();
        let wait = (planned == 0).then_some(self.idle_wait);
        let mut events = std::mem::take(&mut self.events);
        let r = self.io.cycle(
            self.listener.as_fd(),
            &sends,
            wait,
            &mut events,
            &self.counters,
        );
        self.sends = recycle(sends);
        if let Err(e) = r {
            warn_limited!(self.accept_log, error = %e, "TCP agent cycle failed");
        }
        // 3. Completions, input, connections; overruns judged against what the writers had
        // published once the sends were done.
        for (p, g) in self.published.iter_mut().zip(&self.groups) {
            *p = g.window.published();
        }
        work += events.len();
        for ev in events.drain(..) {
            self.event(ev, now);
        }
        self.events = events;
        self.idle_wait = if work > 0 {
            Duration::from_micros(20)
        } else {
            (self.idle_wait * 2).min(MAX_IDLE_WAIT)
        };
        // 4. Timers and the lag snapshot; slots of closed clients freed.
        if now.duration_since(self.last_timers) >= Duration::from_millis(1) {
            self.last_timers = now;
            self.timers(now);
        }
        work
    }
}

impl Agent {
    pub fn new(
        cfg: &Tcp,
        groups: Vec<TcpGroup>,
        stop: Arc<AtomicBool>,
        linger: Duration,
        backend: Option<Backend>,
        counters: Arc<TcpCounters>,
    ) -> Result<Agent, String> {
        let at = |e: std::io::Error| format!("tcp.listen {}: {e}", cfg.listen);
        let listener = TcpListener::bind(cfg.listen).map_err(at)?;
        listener.set_nonblocking(true).map_err(at)?;
        let want = backend.unwrap_or(match cfg.io {
            TcpIo::Epoll => Backend::Epoll,
            TcpIo::Auto | TcpIo::IoUring => Backend::Uring,
        });
        let fallback = cfg.io == TcpIo::Auto || backend.is_some();
        let io = Io::open(want, fallback, &groups, &counters)
            .map_err(|e| format!("tcp.io: the TCP agent cannot use {}: {e}", want.label()))?;
        let journals = groups
            .iter()
            .map(|g| match JournalReader::open(&g.journal) {
                Ok(j) => Some(j),
                Err(e) => {
                    tracing::warn!(group = %g.name, error = %e, "journal not readable; TCP clients cannot be served from before the window");
                    None
                }
            })
            .collect();
        let now = Instant::now();
        Ok(Agent {
            listener,
            io,
            journals,
            allow: cfg
                .allow
                .iter()
                .filter_map(|s| crate::config::parse_subnet(s).ok())
                .collect(),
            users: cfg
                .users
                .iter()
                .map(|u| (padded(&u.name), padded(&u.password)))
                .collect(),
            published: vec![0; groups.len()],
            groups,
            max_clients: cfg.max_clients,
            heartbeat: Duration::from_millis(cfg.heartbeat_ms),
            login_timeout: Duration::from_millis(cfg.login_timeout_ms),
            idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
            lag_limit: cfg.lag_limit,
            sndbuf: cfg.sndbuf,
            clients: Vec::new(),
            free: Vec::new(),
            connected: 0,
            events: Vec::with_capacity(1024),
            sends: Vec::with_capacity(1024),
            counters,
            logs: Reason::ALL.iter().map(|_| RateLimited::default()).collect(),
            accept_log: RateLimited::default(),
            stop,
            linger,
            ended_at: None,
            idle_wait: Duration::from_micros(20),
            last_timers: now,
            last_lags: now,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Cycles until the sessions ended and the clients were served (or `stop`).
    pub fn run(mut self) {
        loop {
            let now = Instant::now();
            self.do_work(now);
            if self.finished(now) {
                break;
            }
        }
        for t in 0..self.clients.len() {
            if matches!(&self.clients[t], Some(c) if c.phase != Phase::Closing) {
                self.close(t as u32, Reason::Shutdown);
            }
        }
        self.counters.clients.set(0);
        self.counters.cpu_ns.set(net::clock::thread_cpu_ns());
    }

    fn finished(&mut self, now: Instant) -> bool {
        if self.ended_at.is_none() {
            if !self.groups.iter().all(|g| g.window.ended()) {
                return false;
            }
            self.ended_at = Some(now);
        }
        let ended = self.ended_at.unwrap_or(now);
        let stopping = self.stop.load(Ordering::Relaxed);
        let deadline = ended
            + if stopping {
                Duration::ZERO
            } else {
                self.linger
            };
        if now < deadline {
            return false;
        }
        let served = self
            .clients
            .iter()
            .flatten()
            .all(|c| c.phase != Phase::Live || c.end_sent);
        served || now >= deadline + END_GRACE
    }

    fn timers(&mut self, now: Instant) {
        let lags = now.duration_since(self.last_lags) >= Duration::from_secs(1);
        let mut max_lag = 0;
        let mut snapshot = Vec::new();
        for t in 0..self.clients.len() {
            let Some(c) = &self.clients[t] else { continue };
            let expired = match c.phase {
                Phase::Closing => {
                    self.reap(t as u32);
                    continue;
                }
                Phase::Login => (now.duration_since(c.connected) >= self.login_timeout)
                    .then_some(Reason::LoginTimeout),
                Phase::Live => (now.duration_since(c.last_rx) >= self.idle_timeout)
                    .then_some(Reason::IdleTimeout),
            };
            if let Some(r) = expired {
                self.close(t as u32, r);
                continue;
            }
            if c.phase == Phase::Live {
                let lag = self.groups[c.group]
                    .window
                    .published()
                    .saturating_sub(c.seq);
                max_lag = max_lag.max(lag);
                if lags {
                    snapshot.push(ClientLag {
                        peer: c.peer.to_string(),
                        group: self.groups[c.group].name.clone(),
                        lag,
                    });
                }
            }
        }
        self.counters.max_lag.set(max_lag);
        if lags {
            self.last_lags = now;
            if let Ok(mut l) = self.counters.lags.lock() {
                *l = snapshot;
            }
        }
    }
}
