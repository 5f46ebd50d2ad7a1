//! The feed handler on a live MoldUDP64 multicast stream of real ITCH (the Nasdaq snippet,
//! packetized): datagrams withheld from feed A, B or both are filled by the other feed or by the
//! exchange's re-request server answering late, and what the feed handler normalizes equals,
//! record for record and in order, the normalized stream of the uninterrupted file. A range no
//! one fills becomes one `feed_status` record, in its place in the stream.

use feedhandler::source::multicast::MulticastSource;
use feedhandler::{FeedHandler, SessionClock};
use net::Endpoint;
use protocol::moldudp64::{Packet, Session};
use protocol::schema::{Body, FeedStatus, Repr};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use tickcast_tests::exchange::{date, every, key, packets, reference, server};

struct Run {
    out: Vec<Repr>,
    fh: FeedHandler,
}

/// Sends `packets` on A (minus `drop_a`) and B (minus `drop_b`; no B when `None`), then a
/// heartbeat on both, and runs the feed handler's live loop until every sequence has been
/// released (normalized or reported lost) or 10 s pass.
fn run(
    test: u8,
    packets: &[Vec<u8>],
    drop_a: &BTreeSet<usize>,
    drop_b: Option<&BTreeSet<usize>>,
    rerequest: Option<SocketAddrV4>,
) -> Run {
    let port = tickcast_tests::ports(15 + u16::from(test));
    let a = SocketAddrV4::new(Ipv4Addr::new(239, 78, test, 1), port);
    let b = SocketAddrV4::new(Ipv4Addr::new(239, 78, test, 2), port);
    let ep_b = Endpoint::new(b, Ipv4Addr::LOCALHOST);
    let mut src = MulticastSource::open(
        &Endpoint::new(a, Ipv4Addr::LOCALHOST),
        drop_b.map(|_| &ep_b),
    )
    .unwrap();
    let mut fh = FeedHandler::live(SessionClock::new(date()));
    if let Some(server) = rerequest {
        let (req, answers) = net::rerequest::open(server, 1 << 20).unwrap();
        src = src.with_answers(answers);
        fh.upstream.requester = Some(req);
    }
    src.set_poll_timeout(Duration::from_millis(1));
    let tx = tickcast_tests::loopback_sender();
    for (i, p) in packets.iter().enumerate() {
        if !drop_a.contains(&i) {
            tx.send_to(p, a).unwrap();
        }
        if let Some(d) = drop_b {
            if !d.contains(&i) {
                tx.send_to(p, b).unwrap();
            }
        }
    }
    // The sender's heartbeat reveals loss at the tail.
    let session = Packet::new_checked(&packets[0][..]).unwrap().session();
    let end = Packet::new_checked(&packets[packets.len() - 1][..])
        .unwrap()
        .next_sequence();
    let mut hb = [0u8; 20];
    let n = protocol::moldudp64::emit_heartbeat(&mut hb, &session, end);
    tx.send_to(&hb[..n], a).unwrap();
    if drop_b.is_some() {
        tx.send_to(&hb[..n], b).unwrap();
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fh.upstream.arbiter.next_seq() < end && Instant::now() < deadline {
        // Frames run the receiver's timers on their arrival time; the wall clock only when idle.
        match src.poll().unwrap() {
            Some(frame) => fh.on_frame(&frame, &mut |m| out.push(key(m))),
            None => fh.tick(net::now_ns(), &mut |m| out.push(key(m))),
        }
    }
    assert_eq!(src.kernel_drops(), 0);
    Run { out, fh }
}

fn session() -> Session {
    Session::new("NSDQ000001").unwrap()
}

#[test]
fn loss_on_a_is_filled_by_b_without_a_request() {
    let p = packets(&session());
    let want = reference();
    let (server, srv) = server(p.clone(), Duration::ZERO);
    let r = run(
        1,
        &p,
        &every(5, 2, p.len()),
        Some(&BTreeSet::new()),
        Some(server),
    );
    assert_eq!(r.out.len(), want.len());
    assert!(r.out == want, "the stream differs from the file");
    let st = &r.fh.normalizer.stats;
    assert_eq!((st.gaps, st.requests, st.feed_status), (0, 0, 0));
    assert_eq!(srv.join().unwrap(), 0, "no request reached the server");
}

#[test]
fn loss_on_a_is_filled_by_late_retransmission_in_order() {
    let p = packets(&session());
    let want = reference();
    // Answers arrive 30 ms late: later datagrams wait, then everything is released in order.
    let (server, srv) = server(p.clone(), Duration::from_millis(30));
    let dropped = every(7, 3, p.len());
    let r = run(2, &p, &dropped, None, Some(server));
    assert_eq!(r.out.len(), want.len());
    assert!(r.out == want, "the stream differs from the file");
    let st = &r.fh.normalizer.stats;
    assert_eq!((st.gaps, st.feed_status), (0, 0));
    assert!(st.recovered > 0 && st.reordered > 0, "{st:?}");
    assert!(srv.join().unwrap() >= 1);
}

#[test]
fn loss_on_both_feeds_is_filled_by_retransmission_in_order() {
    let p = packets(&session());
    let want = reference();
    let (server, srv) = server(p.clone(), Duration::from_millis(20));
    // A misses every 4th, B every 6th: both miss 1, 13, 25, ... (and the last datagram on A).
    // (The first datagram stays: a feed handler joining late starts where it joins.)
    let mut drop_a = every(4, 1, p.len());
    drop_a.insert(p.len() - 1);
    let drop_b = every(6, 1, p.len());
    let r = run(3, &p, &drop_a, Some(&drop_b), Some(server));
    assert_eq!(r.out.len(), want.len());
    assert!(r.out == want, "the stream differs from the file");
    assert_eq!(r.fh.normalizer.stats.gaps, 0);
    assert!(srv.join().unwrap() >= 1);
}

#[test]
fn a_range_no_one_fills_becomes_one_feed_status_record_in_its_place() {
    let p = packets(&session());
    let want = reference();
    // No re-request server: datagram 10 is lost for good after the gap timeout (1 s).
    let lost = Packet::new_checked(&p[10][..]).unwrap();
    let (first, last) = (lost.sequence(), lost.next_sequence() - 1);
    let r = run(4, &p, &BTreeSet::from([10]), None, None);
    // The file's stream with the lost messages' records replaced by one feed_status. Records
    // derived from them (top of book) shift with the loss, so compare the kinds around it and
    // everything before it exactly.
    let st = &r.fh.normalizer.stats;
    assert_eq!((st.gaps, st.feed_status), (last - first + 1, 1));
    let at = r
        .out
        .iter()
        .position(|m| matches!(m.body, Body::FeedStatus(_)))
        .expect("a feed_status record");
    assert_eq!(
        r.out[at].body,
        Body::FeedStatus(FeedStatus {
            status: FeedStatus::LOST,
            first,
            last
        })
    );
    assert_eq!(r.out[at].instrument, 0);
    assert!(
        r.out[..at] == want[..at],
        "everything before the loss is exact"
    );
    assert_eq!(r.fh.normalizer.stats.messages, 1000 - (last - first + 1));
}
