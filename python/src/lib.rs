//! The native core of the `tickcast` Python package: a subscriber over the SDK that yields
//! JSON lines (the keys of `tickcast-tap --json`), and a reader that turns a capture or
//! BinaryFILE of ITCH, or a capture of tickcast output, into packed 64-byte records for NumPy.
//! No `unsafe` here: PyO3 carries the FFI.

use feedhandler::source::{self, pcap::Filter, FileFormat, Framing};
use feedhandler::{FeedHandler, SessionClock};
use protocol::json::JsonLines;
use protocol::moldudp64::{Packet, PacketKind, Session};
use protocol::schema::{Message, Repr, RECORD_SIZE};
use pyo3::exceptions::{PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};
use subscriber_sdk::{Context, GroupSpec, Handler, PollMode};

/// Events waiting for Python, as JSON lines.
#[derive(Default)]
struct Events {
    pending: VecDeque<String>,
    lines: JsonLines,
    ended: bool,
}

impl Handler for Events {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &Message<&[u8]>) {
        let r = msg.repr();
        self.pending
            .push_back(self.lines.render(&r, Some(ctx.seq)).trim_end().to_string());
    }
    fn on_gap(&mut self, _: usize, _: &str, from: u64, to: u64) {
        self.pending
            .push_back(format!("{{\"gap\":{{\"from\":{from},\"to\":{to}}}}}"));
    }
    fn on_end_of_session(&mut self, _: usize, _: &str, next: u64) {
        self.pending
            .push_back(format!("{{\"end_of_session\":{{\"next_seq\":{next}}}}}"));
        self.ended = true;
    }
}

fn addr(s: &str, what: &str) -> PyResult<SocketAddrV4> {
    s.parse()
        .map_err(|_| PyValueError::new_err(format!("{what}: {s:?} is not ADDRESS:PORT")))
}

/// Where a subscriber's messages come from.
enum Source {
    Multicast(Box<subscriber_sdk::Subscriber>),
    Tcp(Box<subscriber_sdk::TcpSubscriber>),
}

/// One tickcast group, received: from multicast (feeds A and B, recovery, in order), or over
/// SoupBinTCP (`Subscriber.tcp`: login from a sequence, heartbeats, reconnect from the next).
#[pyclass(unsendable, module = "tickcast._tickcast")]
struct Subscriber {
    inner: Source,
    events: Events,
}

impl Subscriber {
    fn from(inner: Source) -> Subscriber {
        Subscriber {
            inner,
            events: Events::default(),
        }
    }
}

#[pymethods]
impl Subscriber {
    #[new]
    #[pyo3(signature = (group, group_b=None, interface="127.0.0.1", retransmit=None, session=None))]
    fn new(
        group: &str,
        group_b: Option<&str>,
        interface: &str,
        retransmit: Option<&str>,
        session: Option<&str>,
    ) -> PyResult<Self> {
        let iface: Ipv4Addr = interface
            .parse()
            .map_err(|_| PyValueError::new_err(format!("interface: {interface:?} is not IPv4")))?;
        let mut spec = GroupSpec::new("python", addr(group, "group")?).interface(iface);
        if let Some(b) = group_b {
            spec = spec.feed_b(addr(b, "group_b")?);
        }
        if let Some(r) = retransmit {
            spec = spec.retransmit(addr(r, "retransmit")?);
        }
        if let Some(s) = session {
            spec = spec.session(
                Session::new(s).map_err(|e| PyValueError::new_err(format!("session: {e}")))?,
            );
        }
        let inner = subscriber_sdk::Subscriber::builder()
            .group(spec)
            .poll_mode(PollMode::Blocking(Duration::from_millis(20)))
            .build()
            .map_err(|e| PyOSError::new_err(format!("{group}: {e}")))?;
        Ok(Subscriber::from(Source::Multicast(Box::new(inner))))
    }

    /// Logs in to a SoupBinTCP server ("HOST:PORT") from sequence `from_seq` (0: the next).
    #[staticmethod]
    #[pyo3(signature = (server, session="", from_seq=0, username="", password=""))]
    fn tcp(
        server: &str,
        session: &str,
        from_seq: u64,
        username: &str,
        password: &str,
    ) -> PyResult<Self> {
        let mut o = subscriber_sdk::TcpOptions::resolve(server, session)
            .ok_or_else(|| PyValueError::new_err(format!("tcp: {server:?} is not HOST:PORT")))?;
        o.from = from_seq;
        o.username = username.into();
        o.password = password.into();
        let inner = subscriber_sdk::TcpSubscriber::connect(o).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => PyValueError::new_err(format!("{server}: {e}")),
            _ => PyOSError::new_err(format!("{server}: {e}")),
        })?;
        Ok(Subscriber::from(Source::Tcp(Box::new(inner))))
    }

    /// The next event as a JSON line; `None` after the end of session. Raises TimeoutError
    /// when `timeout` seconds pass first (None: wait), and KeyboardInterrupt on Ctrl-C (it
    /// polls 50 ms at a time so the signal is seen).
    #[pyo3(signature = (timeout=None))]
    fn next_line(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<String>> {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let wait = Duration::from_millis(50);
        loop {
            if let Some(l) = self.events.pending.pop_front() {
                return Ok(Some(l));
            }
            if self.events.ended {
                return Ok(None);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err("no event within the timeout"));
            }
            py.check_signals()?;
            match &mut self.inner {
                Source::Multicast(s) => s.poll_for(&mut self.events, wait),
                Source::Tcp(s) => s.poll_for(&mut self.events, wait),
            }
            .map_err(|e| PyOSError::new_err(format!("receive: {e}")))?;
        }
    }

    /// Counters as a JSON object (the keys of `tickcast-tap`'s stats line, with or without
    /// `--tcp`).
    fn stats_json(&self) -> String {
        match &self.inner {
            Source::Multicast(s) => {
                let st = &s.stats;
                let a = st.arbiter;
                format!(
                    "{{\"received\":{},\"delivered\":{},\"duplicates\":{},\"gaps_opened\":{},\"gaps_filled\":{},\"gaps_lost\":{},\"messages_lost\":{},\"recovered\":{},\"requests\":{},\"requests_unanswered\":{},\"kernel_drops\":{},\"datagrams\":{},\"bad_datagrams\":{},\"wrong_session\":{},\"wrong_source\":{},\"implausible\":{},\"latency_ns\":{{\"p50\":{},\"p99\":{},\"p999\":{}}}}}",
                    a.received,
                    a.delivered,
                    a.duplicates,
                    a.gaps_opened,
                    a.gaps_filled,
                    a.gaps_lost,
                    a.messages_lost,
                    a.recovered,
                    a.requests,
                    a.requests_unanswered,
                    st.kernel_drops(),
                    st.datagrams,
                    st.bad_datagrams,
                    st.wrong_session,
                    st.wrong_source,
                    a.implausible,
                    st.latency_ns(50.0),
                    st.latency_ns(99.0),
                    st.latency_ns(99.9),
                )
            }
            Source::Tcp(s) => {
                let st = s.stats();
                format!(
                    "{{\"transport\":\"tcp\",\"delivered\":{},\"malformed\":{},\"bytes\":{},\"logins\":{},\"reconnects\":{},\"heartbeats_received\":{},\"heartbeats_sent\":{},\"next_seq\":{}}}",
                    st.messages,
                    st.malformed,
                    st.bytes,
                    st.logins,
                    st.reconnects,
                    st.heartbeats_received,
                    st.heartbeats_sent,
                    s.next_seq(),
                )
            }
        }
    }
}

/// Whether a MoldUDP64 datagram carries tickcast records (64-byte schema-v1 blocks).
fn tickcast_records(bytes: &[u8]) -> Option<Packet<&[u8]>> {
    let p = Packet::new_checked(bytes).ok()?;
    if p.kind() != PacketKind::Data || p.validate().is_err() {
        return None;
    }
    let mut any = false;
    for m in p.messages() {
        let m = m.ok()?;
        if m.len() != RECORD_SIZE || Message::new_checked(m).is_err() {
            return None;
        }
        any = true;
    }
    any.then_some(p)
}

/// Reads `path`: tickcast output (a capture of MoldUDP64 carrying records; A/B copies counted
/// once), or ITCH 5.0 (pcap/pcapng over MoldUDP64, or BinaryFILE) normalized. Returns the
/// packed records and which it was ("tickcast" or "itch").
#[pyfunction]
fn read_records<'py>(py: Python<'py>, path: &str) -> PyResult<(Bound<'py, PyBytes>, &'static str)> {
    let p = Path::new(path);
    let err = |e: source::SourceError| PyOSError::new_err(e.to_string());
    let (mut src, format) = source::open(p, None, Filter::default()).map_err(err)?;
    // First pass: is it tickcast output?
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut tickcast = format.is_pcap();
    while tickcast {
        match src.next_frame() {
            Ok(Some(f)) if f.framing == Framing::MoldUdp64 => match tickcast_records(f.bytes) {
                Some(pk) => {
                    for (seq, m) in (pk.sequence()..).zip(pk.messages()) {
                        if seen.insert((pk.session().0, seq)) {
                            out.extend_from_slice(m.unwrap_or_default());
                        }
                    }
                }
                None if Packet::new_checked(f.bytes)
                    .is_ok_and(|p| p.kind() != PacketKind::Data) => {}
                None => tickcast = false,
            },
            Ok(Some(_)) => tickcast = false,
            Ok(None) | Err(_) => break,
        }
    }
    if tickcast && !out.is_empty() {
        return Ok((PyBytes::new(py, &out), "tickcast"));
    }
    // ITCH: normalize the whole input.
    out.clear();
    let (mut src, format) = source::open(p, None, Filter::default()).map_err(err)?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let date = feedhandler::clock::date_from_name(&name)
        .unwrap_or_else(|| SessionClock::date_of_epoch_ns(feedhandler::now_ns()));
    let mut fh = FeedHandler::new(SessionClock::new(date), format.is_pcap());
    fh.accept_unsequenced = true;
    let mut rec = [0u8; RECORD_SIZE];
    let mut emit = |m: &Repr| {
        if m.emit(&mut rec).is_ok() {
            out.extend_from_slice(&rec);
        }
    };
    loop {
        match src.next_frame() {
            Ok(Some(f)) => fh.on_frame(&f, &mut emit),
            Ok(None) => break,
            Err(e) => return Err(PyOSError::new_err(e.to_string())),
        }
    }
    fh.finish(&mut emit);
    if let Some(why) = fh
        .normalizer
        .stats
        .verdict(if format == FileFormat::PcapNg {
            FileFormat::Pcap
        } else {
            format
        })
    {
        return Err(PyValueError::new_err(format!("{path}: {why}")));
    }
    Ok((PyBytes::new(py, &out), "itch"))
}

#[pymodule]
fn _tickcast(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Subscriber>()?;
    m.add_function(wrap_pyfunction!(read_records, m)?)?;
    m.add("RECORD_SIZE", RECORD_SIZE)?;
    Ok(())
}
