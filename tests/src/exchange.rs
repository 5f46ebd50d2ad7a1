//! A stand-in exchange for feed-handler tests: the real Nasdaq ITCH snippet packetized into
//! MoldUDP64, its normalized reference stream, and a re-request server that answers late.

use feedhandler::source::{Frame, Framing};
use feedhandler::{FeedHandler, SessionClock};
use protocol::moldudp64::{split_block, Packet, PacketBuilder, Request, Session};
use protocol::schema::{Body, Repr};
use std::collections::BTreeSet;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

pub const SNIPPET: &str = "itch50/nasdaq-20191230-0930-snippet.itch50";

pub fn date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2019, 12, 30).unwrap()
}

/// The snippet in MoldUDP64 packets of at most 12 messages (about 84 datagrams), from seq 1.
pub fn packets(session: &Session) -> Vec<Vec<u8>> {
    let file = std::fs::read(crate::data(SNIPPET)).unwrap();
    let mut rest = &file[..];
    let mut out = Vec::new();
    let mut seq = 1;
    let mut b = PacketBuilder::new(vec![0u8; 1400], 1400, session, seq).unwrap();
    while let Some((msg, r)) = split_block(rest) {
        rest = r;
        if b.count() == 12 || !b.fits(msg.len()) {
            seq = b.next_sequence();
            out.push(b.as_bytes().to_vec());
            b = PacketBuilder::new(vec![0u8; 1400], 1400, session, seq).unwrap();
        }
        b.append(msg).unwrap();
    }
    out.push(b.as_bytes().to_vec());
    out
}

/// Normalized records without the receive time (which differs between runs).
pub fn key(m: &Repr) -> Repr {
    Repr {
        recv_ts_ns: 0,
        event_ts_ns: if matches!(m.body, Body::FeedStatus(_)) {
            0
        } else {
            m.event_ts_ns
        },
        ..*m
    }
}

/// The uninterrupted file, normalized.
pub fn reference() -> Vec<Repr> {
    let file = std::fs::read(crate::data(SNIPPET)).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(date()), false);
    let mut out = Vec::new();
    fh.on_frame(
        &Frame {
            framing: Framing::BinaryFile,
            bytes: &file,
            recv_ts_ns: 1,
            feed: net::Feed::A,
            from: None,
        },
        &mut |m| out.push(key(m)),
    );
    assert_eq!(fh.normalizer.stats.messages, 1000);
    out
}

/// The exchange's re-request server: answers each request after `delay` with the stored packets
/// that hold the requested sequences. Returns how many requests it saw.
pub fn server(
    packets: Vec<Vec<u8>>,
    delay: Duration,
) -> (SocketAddrV4, std::thread::JoinHandle<u64>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut idle_since = Instant::now();
        while Instant::now() < deadline && idle_since.elapsed() < Duration::from_secs(2) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            idle_since = Instant::now();
            let Ok(r) = Request::new_checked(&buf[..n]) else {
                continue;
            };
            seen += 1;
            std::thread::sleep(delay);
            let (first, last) = (r.sequence(), r.sequence() + u64::from(r.count()));
            for p in &packets {
                let pk = Packet::new_checked(&p[..]).unwrap();
                if pk.sequence() < last && pk.next_sequence() > first {
                    sock.send_to(p, from).unwrap();
                }
            }
        }
        seen
    });
    (addr, t)
}

/// Indices `i < len` with `i % n == offset`.
pub fn every(n: usize, offset: usize, len: usize) -> BTreeSet<usize> {
    (0..len).filter(|i| i % n == offset).collect()
}
