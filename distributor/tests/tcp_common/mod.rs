//! The harness of the TCP server tests: a journal and a window written like a shard writes
//! them, and helpers for raw and SDK clients.
#![allow(dead_code)]

use distributor::config::{Fsync, Tcp, TcpIo};
use distributor::journal::Journal;
pub use distributor::tcp::{Backend, TcpGroup, TcpServer};
use net::window::{window, WindowWriter};
pub use protocol::schema::RECORD_SIZE;
use protocol::soupbintcp::{self, ClientRepr};
use protocol::Session;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber_sdk::{Context, Handler, TcpOptions, TcpSubscriber};

pub use protocol::schema::order_add_record as record;

/// A group fed like a shard feeds it: journal first, then the window, published per batch.
pub struct Feed {
    pub journal: Journal,
    pub window: WindowWriter,
}

impl Feed {
    pub fn publish(&mut self, n: u64) {
        for _ in 0..n {
            let r = record(self.journal.next_seq());
            self.journal.append(&r).unwrap();
            self.window.push(&r);
        }
        self.window.publish();
    }
}

pub struct Server {
    pub feed: Feed,
    pub tcp: Option<TcpServer>,
    pub addr: SocketAddr,
    _dir: TempDir,
}

pub struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn config(backend: Backend) -> Tcp {
    Tcp {
        listen: "127.0.0.1:0".parse().unwrap(),
        allow: vec!["127.0.0.0/8".into()],
        max_clients: 2000,
        heartbeat_ms: 200,
        login_timeout_ms: 300,
        idle_timeout_ms: 2000,
        lag_limit: 1024,
        sndbuf: 1 << 20,
        core: None,
        io: if backend == Backend::Epoll {
            TcpIo::Epoll
        } else {
            TcpIo::IoUring
        },
        users: Vec::new(),
    }
}

pub fn server(backend: Backend, cfg: Tcp, before: u64) -> Server {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tickcast-tcp-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let session = Session::new("TCPTEST").unwrap();
    let (journal, _) =
        Journal::open(&dir, &session, Fsync::None, Duration::from_millis(100)).unwrap();
    let next = journal.next_seq();
    let (w, r) = window(cfg.window_frames(), next).unwrap();
    let mut feed = Feed { journal, window: w };
    feed.publish(before);
    let group = TcpGroup {
        name: "g".into(),
        session,
        window: r,
        journal: distributor::journal::path_for(&dir, &session),
    };
    let tcp = TcpServer::start(
        &cfg,
        vec![group],
        Arc::new(AtomicBool::new(false)),
        Duration::ZERO,
        Some(backend),
    )
    .unwrap();
    let addr = tcp.local_addr;
    Server {
        feed,
        tcp: Some(tcp),
        addr,
        _dir: TempDir(dir),
    }
}

impl Server {
    pub fn end(&mut self) {
        self.feed.window.end();
        assert!(self.tcp.take().unwrap().join());
    }
    pub fn counters(&self) -> &distributor::tcp::TcpCounters {
        &self.tcp.as_ref().unwrap().counters
    }
}

#[derive(Default)]
pub struct Collect {
    pub seqs: Vec<u64>,
    pub records: Vec<[u8; RECORD_SIZE]>,
    pub ended: Option<u64>,
}

impl Handler for Collect {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &protocol::Message<&[u8]>) {
        self.seqs.push(ctx.seq);
        let mut r = [0u8; RECORD_SIZE];
        r.copy_from_slice(msg.as_bytes());
        self.records.push(r);
    }
    fn on_end_of_session(&mut self, _g: usize, _n: &str, next: u64) {
        self.ended = Some(next);
    }
}

pub fn options(addr: SocketAddr, from: u64) -> TcpOptions {
    let mut o = TcpOptions::new(addr, "TCPTEST");
    o.from = from;
    o
}

pub fn read_until(sub: &mut TcpSubscriber, h: &mut Collect, until: impl Fn(&Collect) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !until(h) && Instant::now() < deadline {
        sub.poll_for(h, Duration::from_millis(10)).unwrap();
    }
    assert!(until(h), "timed out with {} messages", h.seqs.len());
}

pub fn both(test: impl Fn(Backend)) {
    for b in [Backend::Uring, Backend::Epoll] {
        test(b);
    }
}

pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

pub fn login_frame(user: &str, pw: &str, session: &str, seq: u64) -> Vec<u8> {
    let mut out = [0u8; 64];
    let n = ClientRepr::Login {
        username: soupbintcp::pad(user).unwrap(),
        password: soupbintcp::pad(pw).unwrap(),
        session: Session::new(session).unwrap(),
        sequence: seq,
    }
    .emit(&mut out)
    .unwrap();
    out[..n].to_vec()
}

/// Reads until the server closes; returns the bytes.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn wait_for_or<T: std::fmt::Debug>(what: &str, show: impl Fn() -> T, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            show()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Resets the connection on close instead of leaving a TIME_WAIT entry on the client's port
/// (thousands of those would hold ports other tests bind, for a minute).
pub fn reset_on_close(c: &TcpStream) {
    nix::sys::socket::setsockopt(
        c,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
}
