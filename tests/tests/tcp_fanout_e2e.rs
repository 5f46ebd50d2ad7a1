//! The SoupBinTCP fan-out through `tickcast run` on the real Nasdaq snippet: what TCP clients get
//! is byte for byte what multicast subscribers get, whether they log in from sequence 1 before
//! the stream, from 1 in the middle of it (journal replay, then live, across the seam), from
//! "next" in the middle, or reconnect mid-stream. Then `tickcast-tap --tcp`, and a client
//! stopped with SIGSTOP while others read. Each runs with io_uring and with the epoll fallback.

use protocol::schema::{Message, RECORD_SIZE};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use subscriber_sdk::{
    Context, GroupSpec, Handler, PollMode, Subscriber, TcpOptions, TcpSubscriber,
};
use tickcast_tests::exchange::packets;
use tickcast_tests::*;

#[derive(Default)]
struct Collect {
    records: BTreeMap<u64, [u8; RECORD_SIZE]>,
    order: Vec<u64>,
    ended: Option<u64>,
}

impl Handler for Collect {
    fn on_message(&mut self, ctx: &Context<'_>, msg: &Message<&[u8]>) {
        let mut r = [0u8; RECORD_SIZE];
        r.copy_from_slice(msg.as_bytes());
        self.records.insert(ctx.seq, r);
        self.order.push(ctx.seq);
    }
    fn on_end_of_session(&mut self, _: usize, _: &str, next: u64) {
        self.ended = Some(next);
    }
}

fn setup(
    test: u8,
    io: &str,
    feed: &str,
    extra: &str,
) -> (std::path::PathBuf, TestGroup, SocketAddr) {
    let base = ports(u16::from(test));
    let dir = scratch(&format!("tcp-fanout-{test}"));
    let g = TestGroup::new(test, 0, base, "");
    let listen: SocketAddr = format!("127.0.0.1:{}", base + 15).parse().unwrap();
    let cfg = dir.join("tickcast.toml");
    let text = config(feed, std::slice::from_ref(&g), &dir.join("journal"))
        + &format!("\n[tcp]\nlisten = \"{listen}\"\nio = \"{io}\"\n{extra}\n");
    std::fs::write(&cfg, text).unwrap();
    (cfg, g, listen)
}

/// Connects once the server listens.
fn connect(o: TcpOptions) -> TcpSubscriber {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpSubscriber::connect(o.clone()) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {}: {e}", o.server),
        }
    }
}

fn seam(test: u8, io: &str) {
    // A live exchange feed carrying the snippet, so clients can arrive in the middle of it.
    let base = ports(u16::from(test));
    let exchange = SocketAddrV4::new(Ipv4Addr::new(239, 79, test, 1), base + 18);
    let feed = format!(
        "source = \"multicast\"\ngroup = \"{exchange}\"\ninterface = \"127.0.0.1\"\ndate = \"2019-12-30\""
    );
    let (cfg, g, listen) = setup(test, io, &feed, "");
    let p = packets(&protocol::Session::new("NSDQ000009").unwrap());
    let child = run_lingering(&cfg);
    let session = g.session.clone();
    let opts = |from: u64| {
        let mut o = TcpOptions::new(listen, &session);
        o.from = from;
        o
    };
    let mut mc = Subscriber::builder()
        .group(
            GroupSpec::new(&g.name, g.feed_a.parse().unwrap())
                .feed_b(g.feed_b.as_ref().unwrap().parse().unwrap())
                .retransmit(g.retransmit.parse().unwrap())
                .session(protocol::Session::new(&session).unwrap()),
        )
        .poll_mode(PollMode::Blocking(Duration::from_millis(1)))
        .build()
        .unwrap();
    let mut early = connect(opts(1));
    std::thread::sleep(Duration::from_millis(500)); // the distributor joins the exchange feed
    let (mut m, mut e) = (Collect::default(), Collect::default());
    let (mut hm, mut hn, mut hr) = (Collect::default(), Collect::default(), Collect::default());
    let tx = loopback_sender();
    let half = p.len() / 2;
    for d in &p[..half] {
        tx.send_to(d, exchange).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // Wait for the first half to be out everywhere.
    let quiet = |c: &Collect, since: &mut (usize, Instant)| {
        if c.order.len() != since.0 {
            *since = (c.order.len(), Instant::now());
        }
        since.0 > 0 && since.1.elapsed() > Duration::from_millis(300)
    };
    let mut since = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !quiet(&e, &mut since) && Instant::now() < deadline {
        early.poll_for(&mut e, Duration::from_millis(5)).unwrap();
        mc.poll(&mut m).unwrap();
    }
    let first_half = e.order.len() as u64;
    assert!(
        first_half > 100,
        "{io}: {first_half} records after the first half"
    );
    // In the middle: from 1 (journal replay, then live), from next, and one that reconnects.
    let mut mid = connect(opts(1));
    let mut next = connect(opts(0));
    assert_eq!(
        next.next_seq(),
        first_half + 1,
        "{io}: login from 0 starts at the next message"
    );
    let mut reconnecting = connect(opts(1));
    let mut rest = p[half..].iter();
    let mut next_send = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stopping = false;
    let all = |c: &Collect| c.ended.is_some();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            match rest.next() {
                Some(d) => {
                    tx.send_to(d, exchange).unwrap();
                    next_send = Instant::now() + Duration::from_millis(5);
                }
                None if !stopping && m.records.len() == 1190 => {
                    // Everything published: end the session (the TCP clients get `Z`).
                    signal(child.id(), "TERM");
                    stopping = true;
                }
                None => {}
            }
        }
        mc.poll(&mut m).unwrap();
        early.poll_for(&mut e, Duration::ZERO).unwrap();
        mid.poll_for(&mut hm, Duration::ZERO).unwrap();
        next.poll_for(&mut hn, Duration::ZERO).unwrap();
        reconnecting.poll_for(&mut hr, Duration::ZERO).unwrap();
        if hr.order.len() >= 500 && reconnecting.stats().reconnects == 0 {
            reconnecting.reconnect().unwrap();
        }
        if all(&e) && all(&hm) && all(&hn) && all(&hr) {
            break;
        }
    }
    let summary = summary(child);
    let total = m.records.len() as u64;
    assert_eq!(total, 1190, "{io}: multicast records");
    let want: Vec<u64> = (1..=total).collect();
    for (name, h) in [("early", &e), ("mid", &hm), ("reconnecting", &hr)] {
        assert_eq!(h.order, want, "{io}: {name}: sequence order");
        assert!(
            h.records == m.records,
            "{io}: {name}: records differ from multicast"
        );
        assert_eq!(h.ended, Some(total + 1), "{io}: {name}: end of session");
    }
    assert_eq!(hn.order, (first_half + 1..=total).collect::<Vec<_>>());
    for (s, r) in &hn.records {
        assert_eq!(r, &m.records[s]);
    }
    assert_eq!(reconnecting.stats().reconnects, 1);
    let tcp = &summary["tcp"];
    assert_eq!(
        tcp["backend"],
        if io == "epoll" { "epoll" } else { "io_uring" },
        "{summary}"
    );
    assert_eq!(tcp["logins"], 5, "{summary}");
}

#[test]
fn tcp_clients_get_the_multicast_records_across_replay_live_seam_io_uring() {
    seam(16, "io_uring");
}

#[test]
fn tcp_clients_get_the_multicast_records_across_replay_live_seam_epoll() {
    seam(17, "epoll");
}

fn tap_lines(child: std::process::Child) -> Vec<serde_json::Value> {
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tap_tcp(listen: SocketAddr, session: &str, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(bin("tickcast-tap"))
        .args(["--tcp", &listen.to_string(), "--session", session, "--json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `tickcast-tap --tcp` on a 200 000-message feed; a tap stopped with SIGSTOP
/// falls behind, is served from the journal, and after SIGCONT gets everything; the others
/// are not held up.
fn taps_and_a_stopped_client(test: u8, io: &str) {
    // A small send buffer per client so the stopped one falls behind lag_limit quickly.
    let (cfg, g, listen) = setup(
        test,
        io,
        "source = \"generator\"\nrate = 100000\nmessages = 200000",
        "sndbuf = 65536\nlag_limit = 4096",
    );
    let child = run_lingering(&cfg);
    // The server listens before the feed starts; wait for it.
    drop(connect(TcpOptions::new(listen, &g.session)));
    let taps: Vec<_> = (0..3)
        .map(|_| tap_tcp(listen, &g.session, &["--from", "1"]))
        .collect();
    let stopped = tap_tcp(listen, &g.session, &["--from", "1", "--no-messages"]);
    // The C ABI's TCP subscriber beside them (io_uring run only: one build is enough).
    let c_client = (io == "io_uring").then(|| {
        std::process::Command::new(build_c_example("tcp_subscriber"))
            .args([&listen.to_string(), &g.session, "1", "60"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(100));
    signal(stopped.id(), "STOP");
    let lines: Vec<_> = taps.into_iter().map(tap_lines).collect();
    signal(stopped.id(), "CONT");
    let stopped_lines = tap_lines(stopped);
    if let Some(c) = c_client {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("messages 200000 first 1 last 200000 out_of_order 0 ended 1"),
            "{text}"
        );
    }
    let summary = terminate(child);
    let records = |v: &[serde_json::Value]| -> Vec<serde_json::Value> {
        v.iter()
            .filter(|l| l.get("kind").is_some())
            .cloned()
            .collect()
    };
    // (The byte-for-byte comparison with multicast is the seam test's; here the TCP taps
    // agree with each other and see every message once, in order.)
    let want = records(&lines[0]);
    assert_eq!(want.len(), 200_000, "{io}: first tap");
    for l in &lines {
        let got = records(l);
        assert_eq!(got.len(), want.len(), "{io}");
        assert!(got == want, "{io}: the TCP taps' lines differ");
        assert!(l.iter().any(|x| x["end_of_session"]["next_seq"] == 200_001));
        assert_eq!(l.last().unwrap()["stats"]["order_errors"], 0);
    }
    let st = &stopped_lines.last().unwrap()["stats"];
    assert_eq!(st["delivered"], 200_000, "{io}: stopped tap {st}");
    assert_eq!(st["order_errors"], 0);
    let tcp = &summary["tcp"];
    assert!(tcp["catchups"].as_u64().unwrap() >= 1, "{io}: {summary}");
}

#[test]
fn tap_over_tcp_and_a_stopped_client_io_uring() {
    taps_and_a_stopped_client(18, "io_uring");
}

#[test]
fn tap_over_tcp_and_a_stopped_client_epoll() {
    taps_and_a_stopped_client(19, "epoll");
}
