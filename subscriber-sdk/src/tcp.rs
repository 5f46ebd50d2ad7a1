//! A SoupBinTCP 3.0 client: login (optionally from a sequence number), the server's `S`
//! packets delivered to the same [`Handler`] as the multicast subscriber, a client heartbeat
//! after a second without sending, and — when the connection breaks or the server falls
//! silent — a new login from the next sequence, so nothing is lost or repeated.

use crate::subscriber::{Context, Handler};
use protocol::soupbintcp::{self, ClientRepr, RejectReason, ServerRepr};
use protocol::{Message, Session};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct TcpOptions {
    pub server: SocketAddr,
    /// Session to log in to (blank: the server's only session).
    pub session: String,
    /// First sequence wanted; 0: from the next live message.
    pub from: u64,
    pub username: String,
    pub password: String,
    /// Heartbeat after this long without sending.
    pub heartbeat: Duration,
    /// The server is gone after this long without receiving anything.
    pub timeout: Duration,
    /// Log in again (from the next sequence) after a broken connection.
    pub reconnect: bool,
}

impl TcpOptions {
    /// Options for `server` given as "HOST:PORT" (its first address); `None` when it does not
    /// resolve.
    pub fn resolve(server: &str, session: &str) -> Option<TcpOptions> {
        use std::net::ToSocketAddrs;
        let addr = server.to_socket_addrs().ok()?.next()?;
        Some(TcpOptions::new(addr, session))
    }

    pub fn new(server: SocketAddr, session: &str) -> TcpOptions {
        TcpOptions {
            server,
            session: session.into(),
            from: 0,
            username: String::new(),
            password: String::new(),
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(15),
            reconnect: true,
        }
    }
}

/// Counters of a TCP subscription.
#[derive(Debug, Clone, Default)]
pub struct TcpStats {
    pub messages: u64,
    pub bytes: u64,
    pub logins: u64,
    /// Logins after the first (broken connection or silent server).
    pub reconnects: u64,
    pub heartbeats_received: u64,
    pub heartbeats_sent: u64,
    /// `S` packets whose record did not parse (skipped, sequence still counted).
    pub malformed: u64,
}

pub struct TcpSubscriber {
    opts: TcpOptions,
    stream: Option<TcpStream>,
    session: Session,
    /// The session's name, for the handler's context (kept: no allocation per poll).
    name: String,
    /// Sequence of the next `S` packet.
    next: u64,
    buf: Box<[u8]>,
    len: usize,
    last_rx: Instant,
    last_tx: Instant,
    ended: bool,
    stats: TcpStats,
}

/// Bytes buffered from the socket: many packets per read.
const BUF: usize = 256 * 1024;
/// The longest server frame accepted (`S` carrying a 64-byte record is 67; debug text more).
const MAX_SERVER_FRAME: usize = 4096;

fn protocol_error(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl TcpSubscriber {
    /// Connects and logs in; errors when refused (`J`) or the server does not answer.
    pub fn connect(opts: TcpOptions) -> io::Result<TcpSubscriber> {
        let session = Session::new(&opts.session).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "session: at most 10 printable ASCII characters",
            )
        })?;
        let mut s = TcpSubscriber {
            next: opts.from,
            opts,
            stream: None,
            session,
            name: session.as_str().to_string(),
            buf: vec![0u8; BUF].into_boxed_slice(),
            len: 0,
            last_rx: Instant::now(),
            last_tx: Instant::now(),
            ended: false,
            stats: TcpStats::default(),
        };
        s.login()?;
        Ok(s)
    }

    /// Sequence of the next message.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    pub fn session(&self) -> Session {
        self.session
    }

    /// The server sent end of session.
    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    fn login(&mut self) -> io::Result<()> {
        let o = &self.opts;
        let mut stream =
            TcpStream::connect_timeout(&o.server, o.timeout.min(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        let mut out = [0u8; 64];
        let n = ClientRepr::Login {
            username: soupbintcp::pad(&o.username)
                .map_err(|_| protocol_error("username: at most 6 characters"))?,
            password: soupbintcp::pad(&o.password)
                .map_err(|_| protocol_error("password: at most 10 characters"))?,
            session: self.session,
            sequence: self.next,
        }
        .emit(&mut out)
        .map_err(protocol_error)?;
        stream.write_all(&out[..n])?;
        // The answer: `A` or `J` (anything before it is a protocol error).
        stream.set_read_timeout(Some(o.timeout.min(Duration::from_secs(10))))?;
        self.len = 0;
        loop {
            let got = stream.read(&mut self.buf[self.len..])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "server closed the connection during login",
                ));
            }
            self.len += got;
            let Some((frame, used)) =
                soupbintcp::split_frame(&self.buf[..self.len], MAX_SERVER_FRAME)
                    .map_err(protocol_error)?
            else {
                continue;
            };
            let answer = ServerRepr::parse(&frame).map_err(protocol_error)?;
            match answer {
                ServerRepr::Accepted { session, sequence } => {
                    self.session = session;
                    self.name = session.as_str().to_string();
                    self.next = sequence;
                }
                ServerRepr::Rejected(r) => {
                    let why = match r {
                        RejectReason::NotAuthorized => "not authorized",
                        RejectReason::SessionUnavailable => "session not available",
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("login rejected: {why}"),
                    ));
                }
                other => {
                    return Err(protocol_error(format!(
                        "expected login accepted, got {other:?}"
                    )))
                }
            }
            self.buf.copy_within(used..self.len, 0);
            self.len -= used;
            break;
        }
        stream.set_read_timeout(None)?;
        stream.set_nonblocking(true)?;
        self.stream = Some(stream);
        self.stats.logins += 1;
        let now = Instant::now();
        self.last_rx = now;
        self.last_tx = now;
        Ok(())
    }

    /// Drops the connection and logs in again from the next sequence.
    pub fn reconnect(&mut self) -> io::Result<()> {
        self.stream = None;
        self.len = 0;
        self.stats.reconnects += 1;
        self.login()
    }

    /// Delivers what has arrived, waiting up to `wait` for it; returns messages delivered.
    /// A broken connection is logged into again (when `reconnect`); an error is returned only
    /// when that fails too, or for a protocol violation by the server.
    pub fn poll_for<H: Handler>(&mut self, handler: &mut H, wait: Duration) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let now = Instant::now();
        if now.duration_since(self.last_rx) >= self.opts.timeout {
            return self.broken(io::Error::new(io::ErrorKind::TimedOut, "server silent"));
        }
        if now.duration_since(self.last_tx) >= self.opts.heartbeat {
            self.send_heartbeat()?;
        }
        let Some(stream) = self.stream.as_mut() else {
            return self.broken(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        };
        // Whole frames left over (after the login's read) first; then wait for more.
        let _ = stream;
        let d = self.frames(handler)?;
        if d > 0 || self.ended {
            return Ok(d);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        if !net::poll::wait_readable(std::iter::once(std::os::fd::AsFd::as_fd(&*stream)), wait) {
            return Ok(0);
        }
        let got = match stream.read(&mut self.buf[self.len..]) {
            Ok(0) => {
                return self.broken(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return self.broken(e),
        };
        self.len += got;
        self.stats.bytes += got as u64;
        if got > 0 {
            self.last_rx = Instant::now();
        }
        self.frames(handler)
    }

    fn frames<H: Handler>(&mut self, handler: &mut H) -> io::Result<usize> {
        let mut used = 0;
        let mut delivered = 0;
        let name = &self.name;
        while let Some((frame, n)) =
            soupbintcp::split_frame(&self.buf[used..self.len], MAX_SERVER_FRAME)
                .map_err(protocol_error)?
        {
            used += n;
            match ServerRepr::parse(&frame).map_err(protocol_error)? {
                ServerRepr::Sequenced(rec) => {
                    let seq = self.next;
                    self.next += 1;
                    match Message::new_checked(rec) {
                        Ok(m) => {
                            let ctx = Context {
                                group: 0,
                                group_name: name,
                                session: self.session,
                                seq,
                            };
                            handler.on_message(&ctx, &m);
                            self.stats.messages += 1;
                            delivered += 1;
                        }
                        Err(_) => self.stats.malformed += 1,
                    }
                }
                ServerRepr::Heartbeat => self.stats.heartbeats_received += 1,
                ServerRepr::EndOfSession => {
                    // The server closes the connection after `Z`; closing second keeps no
                    // TIME_WAIT entry on this side, so the connection is left to it.
                    self.ended = true;
                    handler.on_end_of_session(0, name, self.next);
                    break;
                }
                ServerRepr::Debug(_) => {}
                other => return Err(protocol_error(format!("unexpected {other:?} after login"))),
            }
        }
        self.buf.copy_within(used..self.len, 0);
        self.len -= used;
        if self.ended {
            self.len = 0;
        }
        Ok(delivered)
    }

    fn send(&mut self, repr: ClientRepr<'_>) -> io::Result<()> {
        let mut out = [0u8; 8];
        let n = repr.emit(&mut out).map_err(protocol_error)?;
        if let Some(s) = self.stream.as_mut() {
            // Three bytes into an empty-enough socket; a full one means the server is not
            // reading, which its own timeout handles.
            match s.write(&out[..n]) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        self.last_tx = Instant::now();
        Ok(())
    }

    fn send_heartbeat(&mut self) -> io::Result<()> {
        match self.send(ClientRepr::Heartbeat) {
            Ok(()) => {
                self.stats.heartbeats_sent += 1;
                Ok(())
            }
            Err(e) => self.broken(e).map(|_| ()),
        }
    }

    fn broken(&mut self, e: io::Error) -> io::Result<usize> {
        if !self.opts.reconnect {
            return Err(e);
        }
        // Back off a little so a server that refuses connections is not hammered.
        std::thread::sleep(Duration::from_millis(50));
        self.reconnect().map(|_| 0)
    }

    /// Sends a logout and closes the connection.
    pub fn logout(&mut self) {
        let _ = self.send(ClientRepr::Logout);
        self.stream = None;
    }
}
