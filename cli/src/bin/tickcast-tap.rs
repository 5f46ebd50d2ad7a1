//! `tickcast-tap`: tcpdump for tickcast streams. Joins a group (feeds A and B), recovers gaps
//! from the re-request server, and shows what the application would get; or logs in to the
//! SoupBinTCP server (`--tcp`) and shows the same.

use clap::Parser;
use protocol::schema::{Message, Repr};
use serde_json::json;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscriber_sdk::{
    ArbiterConfig, Context, GroupSpec, Handler, PollMode, Subscriber, TcpOptions, TcpSubscriber,
};

#[derive(Debug, Parser)]
#[command(
    name = "tickcast-tap",
    version,
    about = "Receive and show a tickcast group"
)]
struct Args {
    /// Feed A of the group.
    #[arg(long, value_parser = cli::args::group, required_unless_present = "tcp")]
    group: Option<SocketAddrV4>,
    /// Log in to this SoupBinTCP server (HOST:PORT) instead of joining multicast; needs
    /// --session unless the server has one session.
    #[arg(long, conflicts_with_all = ["group", "group_b", "retransmit", "from_start"])]
    tcp: Option<String>,
    /// With --tcp: first sequence wanted (replayed from the server's journal); 0 = from the
    /// next live message.
    #[arg(long, default_value_t = 0, requires = "tcp")]
    from: u64,
    /// With --tcp: login username (at most 6 characters).
    #[arg(long, default_value = "", requires = "tcp")]
    user: String,
    /// With --tcp: login password (at most 10 characters).
    #[arg(long, default_value = "", requires = "tcp")]
    password: String,
    /// Feed B of the group.
    #[arg(long = "group-b", value_parser = cli::args::group)]
    group_b: Option<SocketAddrV4>,
    /// Interface to join on.
    #[arg(long, default_value = "127.0.0.1")]
    interface: Ipv4Addr,
    /// The group's re-request server.
    #[arg(long)]
    retransmit: Option<SocketAddrV4>,
    /// The group's MoldUDP64 session (without it, adopted after consistent traffic).
    #[arg(long, value_parser = parse_session)]
    session: Option<protocol::Session>,
    /// One JSON line per message and per gap, then a stats line.
    #[arg(long)]
    json: bool,
    /// Stop after this many delivered messages.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = cli::args::seconds)]
    duration: Option<f64>,
    /// On a late join, recover the session from sequence 1.
    #[arg(long)]
    from_start: bool,
    /// With --json: only gap, end-of-session and stats lines (for long runs).
    #[arg(long)]
    no_messages: bool,
    /// SO_RCVBUF of the receive sockets.
    #[arg(long, default_value_t = 8 << 20)]
    rcvbuf: usize,
    /// Receive datagram by datagram, without UDP_GRO (the SDK's default takes a sender's GSO
    /// run as one buffer and splits it).
    #[arg(long)]
    no_gro: bool,
}

fn parse_session(s: &str) -> Result<protocol::Session, String> {
    protocol::Session::new(s).map_err(|e| format!("{s:?}: {e}"))
}

struct Tap {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    lines: protocol::json::JsonLines,
    delivered: u64,
    recent: std::collections::VecDeque<String>,
    ended: bool,
    messages: bool,
    /// Deliveries that did not follow the previous one (or a reported gap) by exactly one:
    /// the tap's own check of the SDK's ordering promise.
    order_errors: u64,
    last_seq: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl Handler for Tap {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &Message<&[u8]>) {
        let m: Repr = msg.repr();
        self.delivered += 1;
        if self.last_seq != 0 && ctx.seq != self.last_seq + 1 {
            self.order_errors += 1;
        }
        self.last_seq = ctx.seq;
        let now = Instant::now();
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        if !self.messages {
            return;
        }
        let line = self.lines.render(&m, Some(ctx.seq));
        if self.json {
            let _ = self.out.write_all(line.as_bytes());
        } else {
            if self.recent.len() == 5 {
                self.recent.pop_front();
            }
            self.recent
                .push_back(format!("{:>10} {}", ctx.seq, line.trim_end()));
        }
    }

    fn on_gap(&mut self, _group: usize, _name: &str, from: u64, to: u64) {
        if self.last_seq != 0 && from != self.last_seq + 1 {
            self.order_errors += 1;
        }
        self.last_seq = to;
        let line = json!({"gap": {"from": from, "to": to}});
        if self.json {
            let _ = writeln!(self.out, "{line}");
        } else {
            self.recent.push_back(format!("GAP {from}..={to} lost"));
        }
    }

    fn on_request_unanswered(&mut self, _group: usize, _name: &str, from: u64, count: u16) {
        if self.json && self.messages {
            let line = json!({"request_unanswered": {"from": from, "count": count}});
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn on_end_of_session(&mut self, _group: usize, _name: &str, next: u64) {
        self.ended = true;
        if self.json {
            let _ = writeln!(
                self.out,
                "{}",
                json!({"end_of_session": {"next_seq": next}})
            );
        } else {
            self.recent
                .push_back(format!("END OF SESSION (next sequence {next})"));
        }
    }
}

fn stats_json(s: &Subscriber, tap: &Tap, secs: f64) -> serde_json::Value {
    let st = &s.stats;
    let a = st.arbiter;
    let rx = s.receive_counters();
    let active = match (tap.first_at, tap.last_at) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    json!({"stats": {
        "order_errors": tap.order_errors,
        "last_seq": tap.last_seq,
        "active_seconds": active,
        "received": a.received,
        "delivered": a.delivered,
        "duplicates": a.duplicates,
        "gaps_opened": a.gaps_opened,
        "gaps_filled": a.gaps_filled,
        "gaps_lost": a.gaps_lost,
        "messages_lost": a.messages_lost,
        "recovered": a.recovered,
        "requests": a.requests,
        "requests_unanswered": a.requests_unanswered,
        "kernel_drops": st.kernel_drops(),
        "datagrams": st.datagrams,
        "gro_buffers": rx.gro_buffers,
        "truncated": rx.truncated,
        "ctrunc": rx.ctrunc,
        "bad_datagrams": st.bad_datagrams,
        "wrong_session": st.wrong_session,
        "wrong_source": st.wrong_source,
        "implausible": a.implausible,
        "inconsistent_end": a.inconsistent_end,
        "malformed": st.malformed + a.malformed,
        "seconds": secs,
        "latency_ns": {"p50": st.latency_ns(50.0), "p99": st.latency_ns(99.0), "p999": st.latency_ns(99.9), "max": st.latency.max()},
    }})
}

fn tcp_stats_json(s: &TcpSubscriber, tap: &Tap, secs: f64) -> serde_json::Value {
    let st = s.stats();
    let active = match (tap.first_at, tap.last_at) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    json!({"stats": {
        "transport": "tcp",
        "order_errors": tap.order_errors,
        "last_seq": tap.last_seq,
        "active_seconds": active,
        "received": st.messages + st.malformed,
        "delivered": st.messages,
        "malformed": st.malformed,
        "bytes": st.bytes,
        "logins": st.logins,
        "reconnects": st.reconnects,
        "heartbeats_received": st.heartbeats_received,
        "heartbeats_sent": st.heartbeats_sent,
        "next_seq": s.next_seq(),
        "seconds": secs,
    }})
}

/// Where the tap's messages come from.
enum Source {
    Multicast(Box<Subscriber>),
    Tcp(Box<TcpSubscriber>),
}

fn tcp_source(args: &Args, server: &str) -> Source {
    let session = args
        .session
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let Some(mut o) = TcpOptions::resolve(server, &session) else {
        eprintln!("tickcast-tap: --tcp {server}: not a HOST:PORT that resolves");
        std::process::exit(2);
    };
    o.from = args.from;
    o.username = args.user.clone();
    o.password = args.password.clone();
    match TcpSubscriber::connect(o) {
        Ok(s) => Source::Tcp(Box::new(s)),
        Err(e) => {
            eprintln!("tickcast-tap: --tcp {server}: {e}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args = Args::parse();
    let mut source = match (&args.tcp, args.group) {
        (Some(server), _) => tcp_source(&args, server),
        (None, Some(group)) => Source::Multicast(Box::new(multicast_source(&args, group))),
        (None, None) => unreachable!("clap requires --group or --tcp"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    run(args, &mut source, stop);
}

fn multicast_source(args: &Args, group: SocketAddrV4) -> Subscriber {
    let mut spec = GroupSpec::new("tap", group).interface(args.interface);
    if let Some(b) = args.group_b {
        spec = spec.feed_b(b);
    }
    if let Some(r) = args.retransmit {
        spec = spec.retransmit(r);
    }
    if let Some(s) = args.session {
        spec = spec.session(s);
    }
    let recovery = ArbiterConfig {
        request_from_start: args.from_start,
        ..Default::default()
    };
    match Subscriber::builder()
        .group(spec)
        .rcvbuf(args.rcvbuf)
        .udp_gro(!args.no_gro)
        .poll_mode(PollMode::Blocking(Duration::from_millis(20)))
        .recovery(recovery)
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tickcast-tap: {group}: {e}");
            std::process::exit(2);
        }
    }
}

fn run(args: Args, source: &mut Source, stop: Arc<AtomicBool>) {
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let mut tap = Tap {
        json: args.json,
        out: std::io::BufWriter::new(std::io::stdout()),
        lines: protocol::json::JsonLines::new(),
        delivered: 0,
        recent: Default::default(),
        ended: false,
        messages: !args.no_messages,
        order_errors: 0,
        last_seq: 0,
        first_at: None,
        last_at: None,
    };
    let started = Instant::now();
    let deadline = args
        .duration
        .map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    let mut last = (Instant::now(), 0u64, 0u64);
    loop {
        if stop.load(Ordering::Relaxed)
            || tap.ended
            || args.count.is_some_and(|c| tap.delivered >= c)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let polled = match source {
            Source::Multicast(sub) => sub.poll(&mut tap),
            Source::Tcp(sub) => sub.poll_for(&mut tap, Duration::from_millis(20)),
        };
        if let Err(e) = polled {
            eprintln!("tickcast-tap: receive: {e}");
            std::process::exit(1);
        }
        let Source::Multicast(sub) = source else {
            continue;
        };
        if !args.json && tap.messages && last.0.elapsed() >= Duration::from_secs(1) {
            let dt = last.0.elapsed().as_secs_f64();
            let a = sub.stats.arbiter;
            let line = format!(
                "{:>8.1}s  {:>9.0} msg/s  {:>7.0} dgram/s  delivered {}  dup {}  gaps filled {} lost {}  drops {}  latency p50 {} ns p99 {} ns",
                started.elapsed().as_secs_f64(),
                (tap.delivered - last.1) as f64 / dt,
                (sub.stats.datagrams - last.2) as f64 / dt,
                a.delivered,
                a.duplicates,
                a.gaps_filled,
                a.gaps_lost,
                sub.stats.kernel_drops(),
                sub.stats.latency_ns(50.0),
                sub.stats.latency_ns(99.0),
            );
            // A closed stdout (`| head`) ends the tap quietly, never with a panic.
            let mut out = std::io::stdout().lock();
            let mut ok = writeln!(out, "{line}").is_ok();
            for r in tap.recent.drain(..) {
                ok &= writeln!(out, "    {r}").is_ok();
            }
            if !ok {
                break;
            }
            last = (Instant::now(), tap.delivered, sub.stats.datagrams);
        }
    }
    if !args.json {
        let mut out = std::io::stdout().lock();
        for r in tap.recent.drain(..) {
            let _ = writeln!(out, "    {r}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = match source {
        Source::Multicast(sub) => stats_json(sub, &tap, secs),
        Source::Tcp(sub) => {
            if !tap.ended {
                sub.logout();
            }
            tcp_stats_json(sub, &tap, secs)
        }
    };
    let _ = writeln!(tap.out, "{stats}");
    let _ = tap.out.flush();
}
