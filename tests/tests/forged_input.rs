//! Forged and stray datagrams injected into a live group while a subscriber runs: the real
//! stream is delivered whole and in order, and the subscriber stops on time.
//!
//! - Against `tickcast run` + `tickcast-tap`: a heartbeat of a foreign session before the
//!   distributor starts, then, while it publishes, a datagram at the live sequence + 1 000 000,
//!   two data datagrams at 2^63 20 ms apart, heartbeats at 2^62, a forged end of session and
//!   malformed records, all with the group's session, from another socket.
//! - Against the SDK in-process, with the forger on the *sender's own socket* (so sender pinning
//!   cannot help): far-ahead and 2^63 data, far heartbeats, a forged end of session, and
//!   malformed records (63- and 65-byte blocks, unknown kind, wrong version) in place of real
//!   ones: feed B's good copies fill them, and a sequence malformed on both feeds becomes a gap.

use protocol::moldudp64::{emit_end_of_session, emit_heartbeat, PacketBuilder, Session};
use protocol::schema::{order_add_record as record, RECORD_SIZE};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use subscriber_sdk::{GroupSpec, PollMode, Subscriber};
use tickcast_tests::*;

fn data(session: &Session, seq: u64, blocks: &[&[u8]]) -> Vec<u8> {
    let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, session, seq).unwrap();
    for blk in blocks {
        b.append(blk).unwrap();
    }
    b.as_bytes().to_vec()
}

fn heartbeat(session: &Session, next: u64) -> Vec<u8> {
    let mut hb = [0u8; 20];
    let n = emit_heartbeat(&mut hb, session, next);
    hb[..n].to_vec()
}

fn end_of_session(session: &Session, next: u64) -> Vec<u8> {
    let mut hb = [0u8; 20];
    let n = emit_end_of_session(&mut hb, session, next);
    hb[..n].to_vec()
}

#[test]
fn forged_datagrams_from_another_socket_cost_the_tap_nothing() {
    let base = ports(8);
    let dir = scratch("forged");
    let g = TestGroup::new(8, 0, base, "");
    let cfg = dir.join("t.toml");
    let feed = "source = \"generator\"\nrate = 20000\nmessages = 40000\ninstruments = 10";
    std::fs::write(&cfg, config(feed, std::slice::from_ref(&g), &dir.join("j"))).unwrap();
    let session = Session::new(&g.session).unwrap();
    let forger = loopback_sender();
    let feeds = [g.feed_a.clone(), g.feed_b.clone().unwrap()];
    let forge = |d: &[u8]| {
        for f in &feeds {
            forger.send_to(d, f).unwrap();
        }
    };
    let started = Instant::now();
    let tap = spawn_tap(&g, &["--json", "--no-messages", "--duration", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    // A foreign session speaks first: it must not be adopted.
    forge(&heartbeat(&Session::new("FOREIGN").unwrap(), 5));
    let child = run_lingering(&cfg);
    std::thread::sleep(Duration::from_millis(700)); // about 14 000 messages are out
    let live = 14_000u64;
    let rec = [0u8; RECORD_SIZE];
    forge(&data(&session, live + 1_000_000, &[&rec]));
    forge(&data(&session, 1 << 63, &[&rec]));
    std::thread::sleep(Duration::from_millis(20));
    forge(&data(&session, 1 << 63, &[&rec]));
    forge(&heartbeat(&session, 1 << 62));
    forge(&end_of_session(&session, live + 100));
    forge(&data(&session, live + 50, &[&rec[..63], &[0u8; 65]]));
    std::thread::sleep(Duration::from_millis(300));
    forge(&heartbeat(&session, 1 << 62));
    forge(&end_of_session(&session, live + 6000));
    let out = tap.wait_with_output().unwrap(); // ends at the real end of session
    let tap_secs = started.elapsed().as_secs_f64();
    let v = terminate(child);
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("end_of_session")),
        "the tap saw the real end: {text}"
    );
    let stats: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let s = &stats["stats"];
    assert_eq!(s["delivered"], last, "the real stream, whole: {s}");
    assert_eq!(s["last_seq"], last, "{s}");
    assert_eq!(s["order_errors"], 0, "{s}");
    assert_eq!(s["gaps_lost"], 0, "{s}");
    assert_eq!(s["messages_lost"], 0, "{s}");
    assert!(s["wrong_source"].as_u64().unwrap() >= 10, "{s}");
    // Ends with the real session (about 2 s of feed), long before its --duration.
    assert!(tap_secs < 15.0, "the tap stopped on time: {tap_secs} s");
}

#[test]
fn forged_datagrams_on_the_senders_own_socket_never_cost_real_messages() {
    let port = ports(9) + 17;
    let a = SocketAddrV4::new(Ipv4Addr::new(239, 206, 13, 1), port);
    let b = SocketAddrV4::new(Ipv4Addr::new(239, 206, 13, 2), port);
    let session = Session::new("OWNSOCK").unwrap();
    let mut sub = Subscriber::builder()
        .group(GroupSpec::new("g", a).feed_b(b).session(session))
        .poll_mode(PollMode::Blocking(Duration::from_millis(2)))
        .build()
        .unwrap();
    let tx = loopback_sender();
    let mut c = Collect::default();
    let poll = |sub: &mut Subscriber, c: &mut Collect, d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until {
            sub.poll(c).unwrap();
        }
    };
    let mut bad_version = record(0);
    bad_version[0] = 2;
    let mut bad_kind = record(0);
    bad_kind[1] = 200;
    let last = 400u64;
    for seq in 1..=last {
        let r = record(seq);
        let on_a: Vec<u8> = match seq % 50 {
            _ if seq == 300 => data(&session, seq, &[&bad_version]),
            // Malformed on A in place of the real record; B brings the good copy.
            7 => data(&session, seq, &[&r[..63]]),
            8 => data(&session, seq, &[&[0u8; 65]]),
            9 => data(&session, seq, &[&bad_kind]),
            10 => data(&session, seq, &[&bad_version]),
            _ => data(&session, seq, &[&r]),
        };
        tx.send_to(&on_a, a).unwrap();
        if seq != 300 {
            tx.send_to(&data(&session, seq, &[&r]), b).unwrap();
        } else {
            // Malformed on both feeds, and nobody to ask: a reported gap, never a silent one.
            tx.send_to(&data(&session, seq, &[&bad_kind]), b).unwrap();
        }
        let forged = match seq {
            100 => Some((data(&session, seq + 1_000_000, &[&r]), a)),
            150 | 151 => Some((data(&session, 1 << 63, &[&r]), b)),
            200 => Some((heartbeat(&session, 1 << 62), a)),
            250 => Some((end_of_session(&session, seq + 1), a)),
            _ => None,
        };
        if let Some((d, to)) = forged {
            tx.send_to(&d, to).unwrap();
        }
        if seq % 20 == 0 {
            poll(&mut sub, &mut c, Duration::from_millis(5));
        }
    }
    for _ in 0..3 {
        tx.send_to(&end_of_session(&session, last + 1), a).unwrap();
        poll(&mut sub, &mut c, Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.ended.is_none() && Instant::now() < deadline {
        sub.poll(&mut c).unwrap();
    }
    let expected: Vec<u64> = (1..=last).filter(|&s| s != 300).collect();
    assert_eq!(c.seqs, expected, "every real message, in order");
    assert_eq!(c.gaps, vec![(300, 300)]);
    assert_eq!(c.ended, Some(last + 1));
    let st = sub.group_stats(0).unwrap();
    assert!(st.implausible >= 3, "{st:?}");
    assert!(st.malformed >= 5, "{st:?}");
}
