//! The live multicast source on loopback: datagrams arrive through recvmmsg, a dropped datagram
//! opens an upstream gap, and the re-request to the (test's) exchange server fills it.

use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::multicast::MulticastSource;
use feedhandler::upstream::Rerequester;
use feedhandler::{FeedHandler, SessionClock};
use protocol::moldudp64::{PacketBuilder, Request, Session};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use subscriber_sdk::net::Endpoint;

#[test]
fn multicast_gap_is_detected_and_rerequested() {
    let session = Session::new("EXCH000001").unwrap();
    // 40 packets of generated ITCH.
    let mut g = Generator::new(GeneratorConfig {
        instruments: 10,
        seed: 5,
        ..Default::default()
    });
    let mut packets = Vec::new();
    let mut seq = 1;
    let mut m = [0u8; MAX_MESSAGE];
    for _ in 0..40 {
        let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, seq).unwrap();
        loop {
            let n = g.next_message(&mut m);
            if b.append(&m[..n]).is_err() {
                break; // the message is lost to the stream; sequence stays consistent
            }
            if b.count() == 20 {
                break;
            }
        }
        seq = b.next_sequence();
        packets.push(b.as_bytes().to_vec());
    }
    let total = seq - 1;
    let dropped = 7usize;
    let dropped_count = u64::from(
        protocol::Packet::new_checked(&packets[dropped][..])
            .unwrap()
            .count(),
    );

    // The exchange's re-request server: answers from the stored packets.
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let server_addr = server.local_addr().unwrap();
    let store = packets.clone();
    let srv = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = 0;
        while Instant::now() < deadline && answered == 0 {
            let Ok((n, from)) = server.recv_from(&mut buf) else {
                continue;
            };
            let Ok(r) = Request::new_checked(&buf[..n]) else {
                continue;
            };
            for p in &store {
                if protocol::Packet::new_checked(&p[..]).unwrap().sequence() == r.sequence() {
                    server.send_to(p, from).unwrap();
                    answered += 1;
                }
            }
        }
        answered
    });

    let group = SocketAddrV4::new(Ipv4Addr::new(239, 77, 0, 1), 41001);
    let mut src = MulticastSource::open(&Endpoint::new(group, Ipv4Addr::LOCALHOST)).unwrap();
    let tx = tickcast_tests::loopback_sender();
    for (i, p) in packets.iter().enumerate() {
        if i != dropped {
            tx.send_to(p, group).unwrap();
        }
    }

    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(date), false);
    let rq = UdpSocket::bind("127.0.0.1:0").unwrap();
    rq.set_nonblocking(true).unwrap();
    fh.rerequest = Some(Rerequester::new(
        rq,
        server_addr,
        Duration::from_millis(200),
        3,
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fh.normalizer.stats.messages < total && Instant::now() < deadline {
        if let Some(frame) = src.poll().unwrap() {
            fh.on_frame(&frame, &mut |_| {});
        }
        fh.poll_rerequest(&mut |_| {});
    }
    let st = &fh.normalizer.stats;
    assert_eq!(
        st.messages, total,
        "every message, the dropped ones via re-request"
    );
    assert_eq!(st.gaps, dropped_count);
    assert_eq!(st.reordered, dropped_count);
    assert_eq!(st.malformed, 0);
    assert!(fh.upstream.open_gaps().is_empty());
    assert_eq!(fh.rerequest.as_ref().unwrap().requests_sent, 1);
    assert_eq!(srv.join().unwrap(), 1);
    assert_eq!(src.kernel_drops(), 0);
}
