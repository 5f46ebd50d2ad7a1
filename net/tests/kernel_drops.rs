//! The kernel's drop counter (SO_RXQ_OVFL) reaches the receiver: a socket that is not read
//! overflows, and the next datagrams report how many were dropped.

use net::{BatchReceiver, Endpoint};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

#[test]
fn overflow_is_counted() {
    let port = 48_000 + (std::process::id() % 1000) as u16;
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut ep = Endpoint::new(addr, Ipv4Addr::LOCALHOST);
    ep.rcvbuf = 8192;
    let mut rx = BatchReceiver::open(&ep).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..500 {
        tx.send_to(&[7u8; 1000], addr).unwrap();
    }
    let mut got = 0;
    while rx.recv_batch(Some(Duration::from_millis(50))).unwrap() > 0 {
        got += rx.len();
    }
    assert!(got < 500, "the small buffer overflowed ({got} of 500 kept)");
    tx.send_to(&[7u8; 10], addr).unwrap();
    assert_eq!(rx.recv_batch(Some(Duration::from_secs(1))).unwrap(), 1);
    assert_eq!(rx.kernel_drops(), 500 - got as u64);
    assert!(
        rx.get(0).unwrap().recv_ts_ns > 1_600_000_000_000_000_000,
        "kernel timestamp"
    );
}
