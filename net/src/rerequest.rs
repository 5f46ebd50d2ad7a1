//! The unicast path to a MoldUDP64 re-request server: requests leave from the socket the
//! answers (ordinary downstream packets) arrive on, so the server answers the sender address.
//! `open` returns the two halves separately (the sending half holds a duplicate of the socket)
//! so that a receiver can send requests while it reads a batch of answers.

use crate::recv::BatchReceiver;
use protocol::moldudp64::{emit_request, Session, REQUEST_LEN};
use socket2::{SockAddr, Socket};
use std::io;
use std::net::SocketAddrV4;

/// The sending half: requests to one server.
pub struct Requester {
    socket: Socket,
    server: SocketAddrV4,
    server_addr: SockAddr,
    pub requests_sent: u64,
    pub send_errors: u64,
}

/// Opens a socket on an ephemeral port (loopback for a loopback server) that talks to
/// `server`: the requester, and the receiver its answers arrive on.
pub fn open(server: SocketAddrV4, rcvbuf: usize) -> io::Result<(Requester, BatchReceiver)> {
    let socket = crate::socket::client_for(server, rcvbuf)?;
    let send = socket.try_clone()?;
    Ok((
        Requester {
            socket: send,
            server,
            server_addr: SockAddr::from(server),
            requests_sent: 0,
            send_errors: 0,
        },
        BatchReceiver::from_socket(socket)?,
    ))
}

impl Requester {
    pub fn server(&self) -> SocketAddrV4 {
        self.server
    }

    /// Asks for `count` messages of `session` from `from`. Errors are counted, not returned: a
    /// lost request is the same as a lost answer to the receiver (it times out and retries).
    pub fn request(&mut self, session: &Session, from: u64, count: u16) {
        let mut buf = [0u8; REQUEST_LEN];
        let n = emit_request(&mut buf, session, from, count);
        match self.socket.send_to(&buf[..n], &self.server_addr) {
            Ok(_) => self.requests_sent += 1,
            Err(_) => self.send_errors += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::moldudp64::Request;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    #[test]
    fn answers_come_back_to_the_requesting_socket() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let addr = match server.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let (mut req, mut rx) = open(addr, 0).unwrap();
        let session = Session::new("S1").unwrap();
        req.request(&session, 7, 3);
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        let r = Request::new_checked(&buf[..n]).unwrap();
        assert_eq!((r.session(), r.sequence(), r.count()), (session, 7, 3));
        assert_eq!(from.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        server.send_to(b"answer", from).unwrap();
        assert_eq!(rx.recv_batch(Some(Duration::from_secs(2))).unwrap(), 1);
        assert_eq!(rx.get(0).unwrap().bytes, b"answer");
        assert_eq!((req.requests_sent, req.send_errors), (1, 0));
    }
}
