//! The SoupBinTCP 3.0 fan-out: one agent thread serves every TCP client of every group.
//!
//! Each group's shard copies its `S` frames into a shared [`net::window`]; the agent sends each
//! client the frames it has not had yet straight from that window (registered with io_uring),
//! all clients' sends of a duty cycle in one `io_uring_enter` ([`net::uring`]), or with epoll
//! and one `send` per client where io_uring is unavailable ([`net::tcp_epoll`]). A client that
//! falls more than `lag_limit` behind is served from the journal until it is back within half
//! of that, so it neither holds the window nor slows anyone else; one that stops reading for
//! `idle_timeout_ms` is disconnected (and resumes by logging in with its next sequence).

mod agent;
mod client;
mod io;
mod serve;

pub use agent::Backend;
pub use client::{InputFramer, Request};

use crate::config::Tcp;
use crate::counters::Counter;
use net::window::WindowReader;
use protocol::Session;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A group as the TCP agent sees it.
pub struct TcpGroup {
    pub name: String,
    pub session: Session,
    pub window: WindowReader,
    pub journal: PathBuf,
}

/// Why a connection ended (or was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Logout,
    PeerClosed,
    LoginTimeout,
    IdleTimeout,
    BadFrame,
    BeforeLogin,
    NotAuthorized,
    SessionUnavailable,
    SendError,
    Overrun,
    JournalUnreadable,
    NotAllowed,
    Full,
    Shutdown,
    /// Closed by the server after `Z` (so the client's side of the connection closes second
    /// and keeps no TIME_WAIT entry on its port).
    EndOfSession,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Logout,
        Reason::PeerClosed,
        Reason::LoginTimeout,
        Reason::IdleTimeout,
        Reason::BadFrame,
        Reason::BeforeLogin,
        Reason::NotAuthorized,
        Reason::SessionUnavailable,
        Reason::SendError,
        Reason::Overrun,
        Reason::JournalUnreadable,
        Reason::NotAllowed,
        Reason::Full,
        Reason::Shutdown,
        Reason::EndOfSession,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Logout => "logout",
            Reason::PeerClosed => "peer_closed",
            Reason::LoginTimeout => "login_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::BadFrame => "bad_frame",
            Reason::BeforeLogin => "data_before_login",
            Reason::NotAuthorized => "not_authorized",
            Reason::SessionUnavailable => "session_unavailable",
            Reason::SendError => "send_error",
            Reason::Overrun => "overrun",
            Reason::JournalUnreadable => "journal_unreadable",
            Reason::NotAllowed => "not_allowed",
            Reason::Full => "max_clients",
            Reason::Shutdown => "shutdown",
            Reason::EndOfSession => "end_of_session",
        }
    }
}

/// One client's lag, refreshed about once a second.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientLag {
    pub peer: String,
    pub group: String,
    /// Messages published but not yet sent to it.
    pub lag: u64,
}

/// Counters of the TCP agent, readable while it runs.
#[derive(Debug, Default)]
pub struct TcpCounters {
    /// Clients connected now (logged in or not).
    pub clients: Counter,
    pub accepted: Counter,
    pub logins: Counter,
    pub bytes: Counter,
    /// `S` packets sent (all clients).
    pub messages: Counter,
    /// `io_uring_enter` calls (io_uring), or send calls (epoll / naive).
    pub send_syscalls: Counter,
    /// Every system call of the agent's cycles (io_uring: the same as `send_syscalls`).
    pub syscalls: Counter,
    pub sqes: Counter,
    pub partial_sends: Counter,
    /// Sends that found the client's socket full.
    pub full_sockets: Counter,
    /// Times a client was moved to the journal catch-up path.
    pub catchups: Counter,
    pub journal_records: Counter,
    pub accept_errors: Counter,
    pub disconnects: [Counter; Reason::ALL.len()],
    /// Largest lag over the connected clients.
    pub max_lag: Counter,
    /// 1 io_uring, 2 epoll, 3 naive (one send per message).
    pub backend: Counter,
    /// 1 when the windows are sent as io_uring fixed buffers.
    pub fixed_buffers: Counter,
    pub lags: Mutex<Vec<ClientLag>>,
    /// CPU time of the agent's thread, set when it ends (ns).
    pub cpu_ns: Counter,
}

impl TcpCounters {
    pub fn disconnected(&self, r: Reason) -> u64 {
        self.disconnects[r as usize].get()
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend.get() {
            1 => "io_uring",
            2 => "epoll",
            3 => "naive",
            _ => "none",
        }
    }
}

/// The running TCP agent.
pub struct TcpServer {
    pub counters: Arc<TcpCounters>,
    pub local_addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl TcpServer {
    /// Binds the listener and starts the agent. `backend` overrides `cfg.io` (the bench's
    /// naive baseline). The agent runs until every group's session ended and its clients have
    /// been sent everything and `Z` (at most `linger` + a few seconds), or `stop`.
    pub fn start(
        cfg: &Tcp,
        groups: Vec<TcpGroup>,
        stop: Arc<AtomicBool>,
        linger: Duration,
        backend: Option<Backend>,
    ) -> Result<TcpServer, String> {
        let counters = Arc::new(TcpCounters::default());
        let agent = agent::Agent::new(cfg, groups, stop, linger, backend, counters.clone())?;
        let local_addr = agent.local_addr();
        let core = cfg.core;
        let thread = std::thread::Builder::new()
            .name("tcp".into())
            .spawn(move || {
                crate::agent::pin_current(core, "TCP agent");
                agent.run()
            })
            .map_err(|e| format!("starting the TCP agent: {e}"))?;
        tracing::info!(listen = %local_addr, "SoupBinTCP server listening");
        Ok(TcpServer {
            counters,
            local_addr,
            thread,
        })
    }

    /// Waits for the agent to finish; `false` if it panicked.
    pub fn join(self) -> bool {
        self.thread.join().is_ok()
    }
}
