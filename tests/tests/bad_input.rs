//! Bad input at running processes: malformed datagrams at the feed handler's socket and at a
//! subscriber are counted and ignored and nothing valid is lost; the re-request server rate
//! limits a flood, never answers past its cap, and drops requests from outside its subnets.

use feedhandler::generator::{self, GenFormat, Generator, GeneratorConfig, MAX_MESSAGE};
use protocol::moldudp64::{emit_heartbeat, emit_request, Packet, PacketBuilder, Session};
use serde_json::Value;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use tickcast_tests::*;

/// The malformed datagrams of the issue, for a stream of `session` expecting `next`.
fn garbage(session: &Session, next: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    out.push(b"TRUNC".to_vec()); // truncated header
    let mut b = PacketBuilder::new(vec![0u8; 200], 200, session, next).unwrap();
    b.append(&[b'S'; 12]).unwrap();
    let mut overrun = b.as_bytes().to_vec();
    overrun[19] = 9; // claims 9 blocks, holds 1
    out.push(overrun);
    let other = Session::new("INTRUDER").unwrap();
    let mut b = PacketBuilder::new(vec![0u8; 200], 200, &other, next).unwrap();
    b.append(&[0u8; 12]).unwrap();
    out.push(b.as_bytes().to_vec()); // wrong session
    let mut b = PacketBuilder::new(vec![0u8; 200], 200, session, 0).unwrap();
    b.append(&[0u8; 12]).unwrap();
    out.push(b.as_bytes().to_vec()); // sequence 0
    let mut b = PacketBuilder::new(vec![0u8; 200], 200, session, next + 50_000_000).unwrap();
    b.append(&[0u8; 12]).unwrap();
    out.push(b.as_bytes().to_vec()); // far in the future
    let mut hb = [0u8; 20];
    emit_heartbeat(&mut hb, session, next + 70_000_000);
    out.push(hb.to_vec()); // a heartbeat from the far future
    out
}

#[test]
fn feed_handler_ignores_malformed_datagrams() {
    let base = ports(10);
    let dir = scratch("bad-feed");
    let exch = format!("239.205.10.1:{}", base + 19);
    let groups = vec![TestGroup::new(10, 0, base, "")];
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        config(
            &format!("source = \"multicast\"\ngroup = \"{exch}\""),
            &groups,
            &dir.join("j"),
        ),
    )
    .unwrap();
    let child = spawn_tickcast(&["run", "--quiet", "--config", cfg.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    let tx = loopback_sender();
    let session = Session::new("EXCHANGE01").unwrap();
    let mut g = Generator::new(GeneratorConfig {
        instruments: 10,
        seed: 3,
        ..Default::default()
    });
    let mut m = [0u8; MAX_MESSAGE];
    let (mut seq, mut valid) = (1u64, 0u64);
    for i in 0..60 {
        let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, seq).unwrap();
        for _ in 0..15 {
            let n = g.next_message(&mut m);
            b.append(&m[..n]).unwrap();
        }
        tx.send_to(b.as_bytes(), &exch).unwrap();
        valid += 15;
        seq += 15;
        if i % 10 == 5 {
            for bad in garbage(&session, seq) {
                tx.send_to(&bad, &exch).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    let v = terminate(child);
    assert_eq!(
        v["source_messages"], valid,
        "every valid message, nothing else: {v}"
    );
    assert_eq!(v["upstream_gaps"], 0);
    // Per burst: truncated, wrong session, sequence 0, two far-future = 5 bad; overrun = malformed.
    assert_eq!(v["bad_datagrams"], 6 * 5, "{v}");
    assert_eq!(v["malformed"], 6, "{v}");
}

#[test]
fn subscriber_ignores_malformed_datagrams() {
    let base = ports(11);
    let dir = scratch("bad-sub");
    let g = TestGroup::new(11, 0, base, "");
    let cfg = dir.join("t.toml");
    let feed = "source = \"generator\"\nrate = 20000\nmessages = 40000\ninstruments = 10";
    std::fs::write(&cfg, config(feed, std::slice::from_ref(&g), &dir.join("j"))).unwrap();
    let tap = spawn_tap(&g, &["--from-start", "--duration", "60"]);
    std::thread::sleep(Duration::from_millis(300));
    let child = run_lingering(&cfg);
    std::thread::sleep(Duration::from_millis(800));
    let tx = loopback_sender();
    let session = Session::new(&g.session).unwrap();
    for _ in 0..3 {
        for bad in garbage(&session, 5000) {
            tx.send_to(&bad, &g.feed_a).unwrap();
            tx.send_to(&bad, g.feed_b.as_ref().unwrap()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = tap.wait_with_output().unwrap(); // ends at end of session
    let v = terminate(child);
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stats: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let s = &stats["stats"];
    assert_eq!(s["delivered"], last, "nothing valid lost: {s}");
    assert_eq!(s["gaps_lost"], 0);
    assert!(s["bad_datagrams"].as_u64().unwrap() >= 12, "{s}"); // truncated + overrun, ×2 feeds ×3
    assert!(s["wrong_session"].as_u64().unwrap() >= 6, "{s}");
    // seq 0 and two far-future kinds come from the test's own socket, not the group's sender:
    // dropped as the wrong source before they reach the receiver (or held back by it).
    let held = s["implausible"].as_u64().unwrap() + s["wrong_source"].as_u64().unwrap();
    assert!(held >= 12, "{s}");
}

#[test]
fn rerequest_server_resists_abuse() {
    let base = ports(12);
    let dir = scratch("abuse");
    let file = dir.join("feed.itch50");
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let cfgg = GeneratorConfig {
        instruments: 10,
        seed: 12,
        ..Default::default()
    };
    generator::write_file(
        &file,
        cfgg,
        5000,
        GenFormat::BinaryFile,
        "233.54.12.111:26477".parse().unwrap(),
        date,
    )
    .unwrap();
    let groups = vec![
        TestGroup::new(12, 0, base, "retransmit_cap = 100\nretransmit_rate = 50"),
        TestGroup::new(12, 1, base, "retransmit_allow = [\"10.0.0.0/8\"]"),
    ];
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        config("source = \"generator\"", &groups, &dir.join("j")),
    )
    .unwrap();
    let child = replay_lingering(&cfg, &file);
    std::thread::sleep(Duration::from_millis(1500)); // the replay is over; the servers linger
                                                     // Room for every answer of the burst, so that what is counted here is what was sent.
    let sock = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = s.set_recv_buffer_size(16 << 20);
        s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        UdpSocket::from(s)
    };
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let s0 = Session::new(&groups[0].session).unwrap();
    let server0: SocketAddrV4 = groups[0].retransmit.parse().unwrap();
    let mut req = [0u8; 20];
    emit_request(&mut req, &s0, 1, 5000); // each asks for far more than the cap
    let started = Instant::now();
    for _ in 0..500 {
        sock.send_to(&req, server0).unwrap();
    }
    let mut received = 0u64;
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        let p = Packet::new_checked(&buf[..n]).unwrap();
        // No datagram of any answer reaches past the cap's 100 messages.
        assert!(
            p.sequence() >= 1 && p.next_sequence() <= 101,
            "{} + {}",
            p.sequence(),
            p.count()
        );
        received += u64::from(p.count());
    }
    let secs = started.elapsed().as_secs_f64();
    // From outside the allowed subnets: no answer.
    let s1 = Session::new(&groups[1].session).unwrap();
    emit_request(&mut req, &s1, 1, 10);
    sock.send_to(&req, groups[1].retransmit.parse::<SocketAddrV4>().unwrap())
        .unwrap();
    assert!(
        sock.recv(&mut buf).is_err(),
        "denied requests get no answer"
    );
    // Malformed sizes and a foreign session: no answer, each counted by reason.
    let rtx0 = groups[0].retransmit.parse::<SocketAddrV4>().unwrap();
    for len in [0usize, 19, 21, 65_507] {
        sock.send_to(&vec![b'X'; len], rtx0).unwrap();
    }
    emit_request(&mut req, &Session::new("NOSUCH").unwrap(), 1, 10);
    sock.send_to(&req, rtx0).unwrap();
    assert!(
        sock.recv(&mut buf).is_err(),
        "refused requests get no answer"
    );
    let v = terminate(child);
    // The kernel may drop part of a burst before the server reads it; what it read is counted.
    let g = &v["groups"][0];
    let seen = g["retransmit_requests"].as_u64().unwrap();
    let limited = g["retransmit_rate_limited"].as_u64().unwrap();
    let answered = seen - limited;
    assert!(seen <= 500 && answered >= 1, "{g}");
    assert!(
        answered as f64 <= 50.0 + 50.0 * secs + 1.0,
        "rate limit: {answered} answers in {secs:.2}s"
    );
    assert_eq!(
        g["retransmit_messages"].as_u64().unwrap(),
        100 * answered,
        "each answer capped at 100"
    );
    assert_eq!(received, 100 * answered, "every answer arrived whole");
    assert_eq!(v["groups"][1]["retransmit_denied"], 1);
    assert_eq!(v["retransmit_refused"]["malformed"], 4, "{v}");
    assert_eq!(v["retransmit_refused"]["unknown_session"], 1, "{v}");
}
