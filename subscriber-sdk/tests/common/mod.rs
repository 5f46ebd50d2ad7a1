//! What the SDK's integration tests send with: a blocking multicast sender on loopback and
//! MoldUDP64 datagrams of order adds whose order id is their sequence number.

use protocol::moldudp64::{PacketBuilder, Session};
use protocol::schema::{Body, OrderAdd, Price, Repr, RECORD_SIZE};
use std::net::{Ipv4Addr, UdpSocket};

/// A blocking UDP socket sending multicast out of loopback (looped back to this host).
pub fn loopback_sender() -> UdpSocket {
    let s: UdpSocket = net::socket::sender(&net::socket::SendOptions {
        interface: Ipv4Addr::LOCALHOST,
        ttl: 1,
        multicast_loop: true,
        sndbuf: 0,
    })
    .unwrap()
    .into();
    s.set_nonblocking(false).unwrap();
    s
}

/// A 1472-byte-payload datagram of `session` holding order adds for sequences
/// `first..first + count`, each with its order id equal to its sequence and stamped now.
pub fn order_adds(session: &Session, first: u64, count: u64) -> Vec<u8> {
    let mut pb = PacketBuilder::new(vec![0u8; 1472], 1472, session, first).unwrap();
    for s in first..first + count {
        let m = Repr {
            instrument: 1,
            event_ts_ns: 1,
            recv_ts_ns: subscriber_sdk::now_ns(),
            body: Body::OrderAdd(OrderAdd {
                order_id: s,
                price: Price(1),
                quantity: 1,
                side: b'B',
                attribution: *b"    ",
            }),
        };
        pb.append_with(RECORD_SIZE, |d| m.emit(d).unwrap()).unwrap();
    }
    pb.as_bytes().to_vec()
}
