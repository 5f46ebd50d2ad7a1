//! Socket builders: every socket option the project sets is set here.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// A socket to receive one UDP stream: a multicast group (joined, optionally source-specific)
/// or a unicast address (bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// A multicast group (joined) or a unicast address (bound).
    pub addr: SocketAddrV4,
    /// Interface address to join on.
    pub interface: Ipv4Addr,
    /// Source-specific join.
    pub source: Option<Ipv4Addr>,
    /// SO_RCVBUF in bytes (the kernel doubles and caps it); 0 keeps the default.
    pub rcvbuf: usize,
}

impl Endpoint {
    pub fn new(addr: SocketAddrV4, interface: Ipv4Addr) -> Endpoint {
        Endpoint {
            addr,
            interface,
            source: None,
            rcvbuf: 4 << 20,
        }
    }
}

/// Opens a receive socket for `endpoint`: binds its address (the group address for multicast,
/// so other groups on the same port stay out) and joins the group.
pub fn receiver(endpoint: &Endpoint) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if endpoint.rcvbuf > 0 {
        // The kernel caps at net.core.rmem_max; that is not an error.
        let _ = socket.set_recv_buffer_size(endpoint.rcvbuf);
    }
    let ip = *endpoint.addr.ip();
    socket.bind(&SockAddr::from(endpoint.addr))?;
    if ip.is_multicast() {
        let joined = match endpoint.source {
            Some(src) => socket.join_ssm_v4(&src, &ip, &endpoint.interface),
            None => socket.join_multicast_v4(&ip, &endpoint.interface),
        };
        joined.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("joining {ip} on interface {}: {e}", endpoint.interface),
            )
        })?;
    }
    Ok(socket)
}

/// Options of a multicast/unicast send socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOptions {
    pub interface: Ipv4Addr,
    pub ttl: u32,
    pub multicast_loop: bool,
    /// SO_SNDBUF in bytes; 0 keeps the default.
    pub sndbuf: usize,
}

/// A non-blocking UDP send socket with the multicast interface, TTL and loop set.
pub fn sender(o: &SendOptions) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    s.set_multicast_if_v4(&o.interface)?;
    s.set_multicast_ttl_v4(o.ttl)?;
    s.set_multicast_loop_v4(o.multicast_loop)?;
    if o.sndbuf > 0 {
        // The kernel caps it at net.core.wmem_max; not an error.
        let _ = s.set_send_buffer_size(o.sndbuf);
    }
    Ok(s)
}

/// A non-blocking UDP socket bound to `addr` (a re-request server, a unicast receiver).
pub fn bound_udp(addr: SocketAddrV4) -> io::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A non-blocking UDP socket from which to talk to `server`: bound to loopback when the server
/// is on loopback (so the answers come back there), else to any address; ephemeral port.
pub fn client_for(server: SocketAddrV4, rcvbuf: usize) -> io::Result<Socket> {
    let local = if server.ip().is_loopback() {
        Ipv4Addr::LOCALHOST
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if rcvbuf > 0 {
        let _ = s.set_recv_buffer_size(rcvbuf);
    }
    s.bind(&SocketAddr::from((local, 0)).into())?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Asks the kernel for the receive time and the drop counter on every datagram. Both are best
/// effort: without them the receiver falls back to user-space time and no drop counter.
pub fn enable_recv_metadata(socket: &Socket) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(socket, sockopt::RxqOvfl, &1);
    let _ = setsockopt(socket, sockopt::ReceiveTimestampns, &true);
}

/// Makes every send on `socket` a GSO send of `size`-byte segments (UDP_SEGMENT as a socket
/// option; tickcast's sender sets it per call instead). False when the kernel refuses it.
pub fn set_udp_segment(socket: &impl std::os::fd::AsFd, size: u16) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::UdpGsoSegment, &i32::from(size)).is_ok()
}

/// Turns on UDP_GRO (coalesced receive); false when the kernel refuses it.
pub fn enable_udp_gro(socket: &Socket) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::UdpGroSegment, &true).is_ok()
}

/// Caps a TCP connection's send buffer (turning the kernel's autotuning off for it), so a
/// thousand clients cannot pin gigabytes of kernel memory.
pub fn set_send_buffer(socket: &impl std::os::fd::AsFd, bytes: usize) -> io::Result<()> {
    socket2::SockRef::from(socket).set_send_buffer_size(bytes)
}

/// Sets a socket's receive buffer (a deliberately slow test client).
pub fn set_recv_buffer(socket: &impl std::os::fd::AsFd, bytes: usize) -> io::Result<()> {
    socket2::SockRef::from(socket).set_recv_buffer_size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_interface_names_it() {
        let ep = Endpoint::new(
            SocketAddrV4::new(Ipv4Addr::new(239, 1, 2, 3), 0),
            Ipv4Addr::new(192, 0, 2, 1),
        );
        let e = receiver(&ep).unwrap_err().to_string();
        assert!(e.contains("192.0.2.1"), "{e}");
    }
}
