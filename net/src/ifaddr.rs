//! The host's IPv4 interfaces (getifaddrs): which subnet an interface address belongs to, so
//! that a re-request server can allow the networks its groups are sent on.

use std::net::Ipv4Addr;

pub use ipnet::Ipv4Net;

/// A local interface holding an IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub up: bool,
    pub multicast: bool,
    pub net: Ipv4Net,
}

/// The local interface that has address `ip`, if any.
pub fn interface_of(ip: Ipv4Addr) -> Option<Interface> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
            continue;
        };
        let (Some(addr), Some(mask)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        if addr.ip() == ip {
            let prefix = u32::from(mask.ip()).leading_ones() as u8;
            return Some(Interface {
                name: a.interface_name,
                up: a.flags.contains(InterfaceFlags::IFF_UP),
                multicast: a.flags.contains(InterfaceFlags::IFF_MULTICAST)
                    || a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
                net: Ipv4Net::new(ip, prefix).ok()?.trunc(),
            });
        }
    }
    None
}

/// The subnet of the local interface that has address `ip`, if any.
pub fn subnet_of(ip: Ipv4Addr) -> Option<Ipv4Net> {
    interface_of(ip).map(|i| i.net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_subnets_contain_their_hosts() {
        let lo = subnet_of(Ipv4Addr::LOCALHOST).expect("loopback has an address");
        assert_eq!(lo.to_string(), "127.0.0.0/8");
        assert!(lo.contains(&Ipv4Addr::new(127, 9, 9, 9)));
        assert!(!lo.contains(&Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(subnet_of(Ipv4Addr::new(192, 0, 2, 77)), None);
    }
}
