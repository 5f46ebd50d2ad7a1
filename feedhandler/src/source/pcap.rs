//! pcap and pcapng captures: every link type tcpdump and dumpcap write on Linux — Ethernet
//! (with 802.1Q VLAN tags), Linux cooked v1 and v2 (`tcpdump -i any`), raw IP, BSD loopback
//! (NULL/LOOP) — IPv4 or IPv6, UDP; filtered by destination group and port. Frame time is the
//! receive time. A link type it cannot read, or a capture with no readable datagram, is an
//! error that says so, never a silent empty result.

use super::{FileFormat, Frame, Framing, Input, Source, SourceError};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Which UDP datagrams to keep; `None` keeps all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    pub group: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

enum Reader {
    Pcap(PcapReader<BufReader<Input>>),
    PcapNg(PcapNgReader<BufReader<Input>>),
}

pub struct PcapSource {
    reader: Reader,
    path: String,
    filter: Filter,
    payload: Vec<u8>,
    skipped: u64,
    consumed: u64,
    total: u64,
    /// pcapng interface link types, by interface id.
    links: Vec<DataLink>,
    /// Frames read, and datagrams handed out.
    frames: u64,
    yielded: u64,
}

/// How a link type's frames reach the IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Ethernet,
    LinuxSll,
    /// 20-byte header, protocol type first.
    LinuxSll2,
    /// Raw IPv4 or IPv6.
    Ip,
    /// 4-byte address family (host order for NULL, network order for LOOP).
    Loopback,
}

fn link_of(dl: DataLink) -> Option<Link> {
    Some(match u32::from(dl) {
        1 => Link::Ethernet,
        113 => Link::LinuxSll,
        276 => Link::LinuxSll2,
        // RAW (101, and 12/14 on some systems), IPV4 (228), IPV6 (229)
        101 | 12 | 14 | 228 | 229 => Link::Ip,
        0 | 108 => Link::Loopback,
        _ => return None,
    })
}

fn unsupported(path: &str, dl: DataLink) -> SourceError {
    SourceError::Format(format!(
        "{path}: pcap link type {} ({dl:?}) is not supported; tickcast reads Ethernet, Linux cooked \
         (SLL, SLL2), raw IP and loopback (NULL/LOOP) captures",
        u32::from(dl)
    ))
}

/// The UDP payload of a link-layer frame, if it is IPv4 or IPv6 UDP and passes the filter.
fn udp_payload<'a>(link: Link, data: &'a [u8], filter: &Filter) -> Option<&'a [u8]> {
    let sliced = match link {
        Link::Ethernet => SlicedPacket::from_ethernet(data),
        Link::LinuxSll => SlicedPacket::from_linux_sll(data),
        Link::LinuxSll2 => {
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            if proto != 0x0800 && proto != 0x86dd {
                return None;
            }
            SlicedPacket::from_ip(data.get(20..)?)
        }
        Link::Ip => SlicedPacket::from_ip(data),
        Link::Loopback => SlicedPacket::from_ip(data.get(4..)?),
    }
    .ok()?;
    let dest: IpAddr = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => ip.header().destination_addr().into(),
        Some(NetSlice::Ipv6(ip)) => ip.header().destination_addr().into(),
        _ => return None,
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return None;
    };
    if filter.group.is_some_and(|g| IpAddr::V4(g) != dest)
        || filter.port.is_some_and(|p| p != udp.destination_port())
    {
        return None;
    }
    Some(udp.payload())
}

/// Copies a matching frame's UDP payload into `buf`; `false` when the frame does not match.
fn take_payload(buf: &mut Vec<u8>, link: Link, frame: &[u8], filter: &Filter) -> bool {
    match udp_payload(link, frame, filter) {
        Some(pl) => {
            buf.clear();
            buf.extend_from_slice(pl);
            true
        }
        None => false,
    }
}

impl PcapSource {
    pub fn open(path: &Path, filter: Filter) -> Result<PcapSource, SourceError> {
        let format = FileFormat::sniff(path)?;
        if !format.is_pcap() {
            return Err(SourceError::Format(format!(
                "{}: not a pcap or pcapng file",
                path.display()
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| super::io_err(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        Self::from_input(Box::new(file), format, path, total, filter)
    }

    /// Reads a capture from `input` (its first bytes included).
    pub(crate) fn from_input(
        input: Input,
        format: FileFormat,
        path: &Path,
        total: u64,
        filter: Filter,
    ) -> Result<PcapSource, SourceError> {
        let name = path.display().to_string();
        let bad = |e: pcap_file::PcapError| {
            SourceError::Format(format!("{name}: not a readable capture: {e}"))
        };
        let reader = match format {
            FileFormat::Pcap => {
                let r = PcapReader::new(BufReader::new(input)).map_err(bad)?;
                let dl = r.header().datalink;
                if link_of(dl).is_none() {
                    return Err(unsupported(&name, dl));
                }
                Reader::Pcap(r)
            }
            FileFormat::PcapNg => {
                Reader::PcapNg(PcapNgReader::new(BufReader::new(input)).map_err(bad)?)
            }
            _ => {
                return Err(SourceError::Format(format!(
                    "{name}: not a pcap or pcapng file"
                )))
            }
        };
        Ok(PcapSource {
            reader,
            path: name,
            filter,
            payload: Vec::with_capacity(65536),
            skipped: 0,
            consumed: 0,
            total,
            links: Vec::new(),
            frames: 0,
            yielded: 0,
        })
    }

    /// The end of the capture: an error when it held no datagram to read.
    fn end(&self) -> Result<Option<Frame<'_>>, SourceError> {
        if self.yielded == 0 {
            let why = if self.frames == 0 {
                "the capture holds no frame".to_string()
            } else if self.filter != Filter::default() {
                format!(
                    "none of its {} frames is a UDP datagram passing the filter ({:?})",
                    self.frames, self.filter
                )
            } else {
                format!("none of its {} frames is a UDP datagram", self.frames)
            };
            return Err(SourceError::Format(format!("{}: {why}", self.path)));
        }
        Ok(None)
    }

    fn truncated(&self, e: pcap_file::PcapError) -> SourceError {
        SourceError::Format(format!(
            "{}: truncated or corrupt after {} frames ({} bytes): {e}",
            self.path, self.frames, self.consumed
        ))
    }
}

impl Source for PcapSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        loop {
            let (ts, found) = match &mut self.reader {
                Reader::Pcap(r) => {
                    let link = link_of(r.header().datalink).unwrap_or(Link::Ethernet);
                    match r.next_packet() {
                        None => return self.end(),
                        Some(Err(e)) => return Err(self.truncated(e)),
                        Some(Ok(p)) => {
                            self.frames += 1;
                            self.consumed += 16 + p.data.len() as u64;
                            let ts = p.timestamp.as_nanos() as u64;
                            (
                                ts,
                                take_payload(&mut self.payload, link, &p.data, &self.filter),
                            )
                        }
                    }
                }
                Reader::PcapNg(r) => match r.next_block() {
                    None => return self.end(),
                    Some(Err(e)) => return Err(self.truncated(e)),
                    Some(Ok(Block::EnhancedPacket(p))) => {
                        self.frames += 1;
                        self.consumed += 32 + p.data.len() as u64;
                        let dl = self
                            .links
                            .get(p.interface_id as usize)
                            .copied()
                            .unwrap_or(DataLink::ETHERNET);
                        let Some(link) = link_of(dl) else {
                            return Err(unsupported(&self.path, dl));
                        };
                        let ts = p.timestamp.as_nanos() as u64;
                        (
                            ts,
                            take_payload(&mut self.payload, link, &p.data, &self.filter),
                        )
                    }
                    Some(Ok(Block::SimplePacket(p))) => {
                        self.frames += 1;
                        self.consumed += 16 + p.data.len() as u64;
                        let link = self
                            .links
                            .first()
                            .copied()
                            .and_then(link_of)
                            .unwrap_or(Link::Ethernet);
                        (
                            0,
                            take_payload(&mut self.payload, link, &p.data, &self.filter),
                        )
                    }
                    Some(Ok(Block::InterfaceDescription(i))) => {
                        self.links.push(i.linktype);
                        continue;
                    }
                    Some(Ok(Block::SectionHeader(_))) => {
                        self.links.clear();
                        continue;
                    }
                    Some(Ok(_)) => continue,
                },
            };
            if found {
                self.yielded += 1;
                return Ok(Some(Frame {
                    framing: Framing::MoldUdp64,
                    bytes: &self.payload,
                    recv_ts_ns: ts,
                    feed: net::Feed::A,
                    from: None,
                }));
            }
            self.skipped += 1;
        }
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.consumed, self.total))
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}
