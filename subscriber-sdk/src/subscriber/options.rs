//! What a subscriber is asked to receive and how: each group's addresses, session and
//! re-request server, the options every group shares, and the builder.

use super::*;

/// How `poll` waits for traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Never block: lowest latency, one core busy.
    BusySpin,
    /// Block in poll(2) up to the given time when nothing is ready.
    Blocking(Duration),
}

/// One group to receive.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub feed_a: SocketAddrV4,
    pub feed_b: Option<SocketAddrV4>,
    pub interface: Ipv4Addr,
    /// Source-specific join.
    pub source: Option<Ipv4Addr>,
    /// The group's re-request server; without one, gaps are reported after the timeout.
    pub retransmit: Option<SocketAddrV4>,
    /// The group's MoldUDP64 session. Without it, the session is adopted after consistent
    /// traffic from one sender (never from one datagram); other sessions are counted, never
    /// delivered.
    pub session: Option<Session>,
}

impl GroupSpec {
    pub fn new(name: &str, feed_a: SocketAddrV4) -> GroupSpec {
        GroupSpec {
            name: name.to_string(),
            feed_a,
            feed_b: None,
            interface: Ipv4Addr::LOCALHOST,
            source: None,
            retransmit: None,
            session: None,
        }
    }
    pub fn feed_b(mut self, b: SocketAddrV4) -> Self {
        self.feed_b = Some(b);
        self
    }
    pub fn interface(mut self, i: Ipv4Addr) -> Self {
        self.interface = i;
        self
    }
    pub fn source(mut self, s: Ipv4Addr) -> Self {
        self.source = Some(s);
        self
    }
    pub fn retransmit(mut self, r: SocketAddrV4) -> Self {
        self.retransmit = Some(r);
        self
    }
    /// The group's session (as on the wire: up to 10 characters, space padded).
    pub fn session(mut self, s: Session) -> Self {
        self.session = Some(s);
        self
    }
}

/// Options shared by all groups.
#[derive(Debug, Clone)]
pub struct Options {
    pub rcvbuf: usize,
    pub poll: PollMode,
    pub arbiter: ArbiterConfig,
    /// Receive with UDP_GRO (on by default): runs of same-sized datagrams (a tickcast GSO
    /// send) arrive as one buffer and are split here, so the kernel neither segments nor
    /// queues them one by one. On loopback it cut the subscriber's CPU per message by half
    /// and the sender's by 2–3× (docs/BENCHMARKS.md). 512 KiB of buffers per socket instead
    /// of 288 KiB; a kernel that refuses it (before 5.0) receives as without.
    pub udp_gro: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rcvbuf: 8 << 20,
            poll: PollMode::Blocking(Duration::from_millis(10)),
            arbiter: ArbiterConfig::default(),
            udp_gro: true,
        }
    }
}

/// Builds a `Subscriber`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    groups: Vec<GroupSpec>,
    options: Options,
}

impl Builder {
    pub fn group(mut self, g: GroupSpec) -> Self {
        self.groups.push(g);
        self
    }
    /// SO_RCVBUF of every receive socket.
    pub fn rcvbuf(mut self, bytes: usize) -> Self {
        self.options.rcvbuf = bytes;
        self
    }
    pub fn poll_mode(mut self, p: PollMode) -> Self {
        self.options.poll = p;
        self
    }
    /// UDP_GRO on every data socket (on by default; see `Options::udp_gro`); ignored where the
    /// kernel refuses.
    pub fn udp_gro(mut self, on: bool) -> Self {
        self.options.udp_gro = on;
        self
    }
    /// Arbitration and recovery timing (gap window, request timeout, buffer, ...).
    pub fn recovery(mut self, a: ArbiterConfig) -> Self {
        self.options.arbiter = a;
        self
    }
    pub fn build(self) -> io::Result<Subscriber> {
        let mut s = Subscriber::new(self.options);
        for g in self.groups {
            s.add_group(g)?;
        }
        Ok(s)
    }
}
