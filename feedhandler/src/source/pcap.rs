//! pcap and pcapng captures: Ethernet (with 802.1Q VLAN tags), Linux cooked or raw IP link
//! layers, IPv4, UDP; filtered by destination group and port. Frame time is the receive time.

use super::{io_err, FileFormat, Frame, Framing, Source, SourceError};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::fs::File;
use std::io::BufReader;
use std::net::Ipv4Addr;
use std::path::Path;

/// Which UDP datagrams to keep; `None` keeps all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    pub group: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

enum Reader {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg(PcapNgReader<BufReader<File>>),
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
}

/// The UDP payload of a link-layer frame, if it is IPv4/UDP and passes the filter.
fn udp_payload<'a>(link: DataLink, data: &'a [u8], filter: &Filter) -> Option<&'a [u8]> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 => SlicedPacket::from_ip(data),
        _ => return None,
    }
    .ok()?;
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return None;
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return None;
    };
    if filter
        .group
        .is_some_and(|g| g != ip.header().destination_addr())
        || filter.port.is_some_and(|p| p != udp.destination_port())
    {
        return None;
    }
    Some(udp.payload())
}

/// Copies a matching frame's UDP payload into `buf`; `false` when the frame does not match.
fn take_payload(buf: &mut Vec<u8>, link: DataLink, frame: &[u8], filter: &Filter) -> bool {
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
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bad = |e: pcap_file::PcapError| SourceError::Format(format!("{}: {e}", path.display()));
        let reader = match format {
            FileFormat::Pcap => Reader::Pcap(PcapReader::new(BufReader::new(file)).map_err(bad)?),
            FileFormat::PcapNg => {
                Reader::PcapNg(PcapNgReader::new(BufReader::new(file)).map_err(bad)?)
            }
            _ => {
                return Err(SourceError::Format(format!(
                    "{}: not a pcap or pcapng file",
                    path.display()
                )))
            }
        };
        Ok(PcapSource {
            reader,
            path: path.display().to_string(),
            filter,
            payload: Vec::with_capacity(65536),
            skipped: 0,
            consumed: 0,
            total,
            links: Vec::new(),
        })
    }
}

impl Source for PcapSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        loop {
            let (ts, found) = match &mut self.reader {
                Reader::Pcap(r) => {
                    let link = r.header().datalink;
                    match r.next_packet() {
                        None => return Ok(None),
                        Some(Err(e)) => {
                            return Err(SourceError::Format(format!("{}: {e}", self.path)))
                        }
                        Some(Ok(p)) => {
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
                    None => return Ok(None),
                    Some(Err(e)) => return Err(SourceError::Format(format!("{}: {e}", self.path))),
                    Some(Ok(Block::EnhancedPacket(p))) => {
                        self.consumed += 32 + p.data.len() as u64;
                        let link = self
                            .links
                            .get(p.interface_id as usize)
                            .copied()
                            .unwrap_or(DataLink::ETHERNET);
                        let ts = p.timestamp.as_nanos() as u64;
                        (
                            ts,
                            take_payload(&mut self.payload, link, &p.data, &self.filter),
                        )
                    }
                    Some(Ok(Block::SimplePacket(p))) => {
                        self.consumed += 16 + p.data.len() as u64;
                        (
                            0,
                            take_payload(
                                &mut self.payload,
                                DataLink::ETHERNET,
                                &p.data,
                                &self.filter,
                            ),
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
