//! Retransmission and crash recovery against a running `tickcast run`: a requested range comes
//! back exactly, a range past the end gets nothing, an oversized request is capped, foreign
//! sessions are ignored; after SIGKILL a restart continues the sequence and still serves the
//! messages sent before the crash, byte for byte.

use feedhandler::generator::{self, GenFormat, GeneratorConfig};
use net::{BatchReceiver, Endpoint};
use protocol::moldudp64::{emit_request, Packet, PacketKind, Session};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use tickcast_tests::*;

/// Records seen on a feed, by sequence, plus control packets.
#[derive(Default)]
struct Seen {
    records: BTreeMap<u64, Vec<u8>>,
    end_of_session: Option<u64>,
    first_data_seq: Option<u64>,
}

fn listen(rx: &mut BatchReceiver, seen: &mut Seen, until: impl Fn(&Seen) -> bool, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !until(seen) && Instant::now() < deadline {
        let n = rx.recv_batch(Some(Duration::from_millis(50))).unwrap();
        for i in 0..n {
            let d = rx.get(i).unwrap();
            let Ok(p) = Packet::new_checked(d.bytes) else {
                continue;
            };
            match p.kind() {
                PacketKind::EndOfSession => seen.end_of_session = Some(p.sequence()),
                PacketKind::Heartbeat => {}
                PacketKind::Data => {
                    seen.first_data_seq.get_or_insert(p.sequence());
                    for (s, m) in (p.sequence()..).zip(p.messages()) {
                        seen.records.insert(s, m.unwrap().to_vec());
                    }
                }
            }
        }
    }
}

/// Sends one request and collects the answer datagrams' (sequence, records).
fn request(
    server: SocketAddrV4,
    session: &Session,
    seq: u64,
    count: u16,
) -> Vec<(u64, Vec<Vec<u8>>)> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 20];
    emit_request(&mut buf, session, seq, count);
    sock.send_to(&buf, server).unwrap();
    let mut out = Vec::new();
    let mut d = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut d) {
        let p = Packet::new_checked(&d[..n]).unwrap();
        assert_eq!(p.session(), *session);
        out.push((
            p.sequence(),
            p.messages().map(|m| m.unwrap().to_vec()).collect(),
        ));
    }
    out
}

fn receiver(group: &str) -> BatchReceiver {
    let addr: SocketAddrV4 = group.parse().unwrap();
    let mut ep = Endpoint::new(addr, Ipv4Addr::LOCALHOST);
    ep.rcvbuf = 32 << 20;
    BatchReceiver::open(&ep).unwrap()
}

#[test]
fn retransmission_ranges_end_and_cap() {
    let base = ports(3);
    let dir = scratch("retransmit");
    let feed_file = dir.join("feed.itch50");
    let cfg = GeneratorConfig {
        instruments: 20,
        seed: 11,
        ..Default::default()
    };
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let group: SocketAddrV4 = "233.54.12.111:26477".parse().unwrap();
    generator::write_file(&feed_file, cfg, 3000, GenFormat::BinaryFile, group, date).unwrap();
    let groups = vec![TestGroup::new(3, 0, base, "retransmit_cap = 100")];
    let cfg_path = dir.join("tickcast.toml");
    std::fs::write(
        &cfg_path,
        config("source = \"generator\"", &groups, &dir.join("journal")),
    )
    .unwrap();
    let mut rx = receiver(&groups[0].feed_a);
    let child = spawn_tickcast(&[
        "run",
        "--quiet",
        "--config",
        cfg_path.to_str().unwrap(),
        "--replay",
        feed_file.to_str().unwrap(),
        "--linger",
        "60",
    ]);
    let mut seen = Seen::default();
    listen(
        &mut rx,
        &mut seen,
        |s| s.end_of_session.is_some(),
        Duration::from_secs(30),
    );
    let next = seen
        .end_of_session
        .expect("end of session after the replay");
    assert!(next > 1000);
    let session = Session::new(&groups[0].session).unwrap();
    let server: SocketAddrV4 = groups[0].retransmit.parse().unwrap();

    // A range returns exactly those messages, byte for byte what the feed carried.
    let ans = request(server, &session, 5, 10);
    assert_eq!(ans.len(), 1);
    assert_eq!(ans[0].0, 5);
    assert_eq!(ans[0].1.len(), 10);
    for (i, rec) in ans[0].1.iter().enumerate() {
        if let Some(orig) = seen.records.get(&(5 + i as u64)) {
            assert_eq!(rec, orig);
        }
    }
    // Past the end: no answer.
    assert!(request(server, &session, next, 5).is_empty());
    // Straddling the end: only what exists.
    let tail = request(server, &session, next - 3, 50);
    assert_eq!(tail.iter().map(|(_, r)| r.len()).sum::<usize>(), 3);
    // Oversized: capped at 100 messages, in order, over several datagrams.
    let big = request(server, &session, 1, 5000);
    let mut expect = 1;
    for (seq, recs) in &big {
        assert_eq!(*seq, expect);
        expect += recs.len() as u64;
    }
    assert_eq!(expect - 1, 100, "capped");
    assert!(big.len() >= 5);
    // Another session: ignored.
    assert!(request(server, &Session::new("NOSUCH").unwrap(), 1, 5).is_empty());

    let v = terminate(child);
    let g = &v["groups"][0];
    assert_eq!(g["last_seq"].as_u64().unwrap(), next - 1);
    assert_eq!(g["retransmit_messages"], 10 + 3 + 100);
}

#[test]
fn crash_and_restart_continue_the_session() {
    let base = ports(4);
    let dir = scratch("crash");
    let groups = vec![TestGroup::new(4, 0, base, "")];
    let cfg_path = dir.join("tickcast.toml");
    let feed = "source = \"generator\"\nrate = 20000\ninstruments = 20";
    std::fs::write(&cfg_path, config(feed, &groups, &dir.join("journal"))).unwrap();
    let mut rx = receiver(&groups[0].feed_a);

    let mut first = spawn_tickcast(&["run", "--quiet", "--config", cfg_path.to_str().unwrap()]);
    let mut before = Seen::default();
    listen(
        &mut rx,
        &mut before,
        |s| s.records.len() > 5000,
        Duration::from_secs(20),
    );
    first.kill().unwrap(); // SIGKILL mid-stream
    let _ = first.wait();
    listen(&mut rx, &mut before, |_| false, Duration::from_millis(300));
    let last_before = *before.records.keys().last().unwrap();
    assert!(before.records.contains_key(&1));

    let second = spawn_tickcast(&["run", "--quiet", "--config", cfg_path.to_str().unwrap()]);
    let mut after = Seen::default();
    listen(
        &mut rx,
        &mut after,
        |s| s.records.len() > 500,
        Duration::from_secs(20),
    );
    let resumed = after.first_data_seq.unwrap();
    assert!(
        resumed > last_before,
        "no sequence reused: resumed at {resumed}, last seen {last_before}"
    );
    // Pre-crash messages are still served, the same bytes.
    let session = Session::new(&groups[0].session).unwrap();
    let server: SocketAddrV4 = groups[0].retransmit.parse().unwrap();
    let ans = request(server, &session, 1, 50);
    let got: Vec<Vec<u8>> = ans.into_iter().flat_map(|(_, r)| r).collect();
    assert_eq!(got.len(), 50);
    for (i, rec) in got.iter().enumerate() {
        assert_eq!(
            Some(rec),
            before.records.get(&(1 + i as u64)),
            "seq {}",
            i + 1
        );
    }
    let v = terminate(second);
    assert!(v["groups"][0]["last_seq"].as_u64().unwrap() >= resumed);
}
