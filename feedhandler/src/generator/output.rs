//! The generator's outputs: a file for `tickcast gen` (BinaryFILE, or a pcap of MoldUDP64
//! packets) and a live, paced source for the distributor.

use super::{Generator, GeneratorConfig, MAX_MESSAGE};
use crate::clock::SessionClock;
use crate::source::{Frame, Framing, Source, SourceError};
use chrono::NaiveDate;
use protocol::moldudp64::{PacketBuilder, Session};
use std::io::Write;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::{Duration, Instant};

/// Output file format of `tickcast gen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    BinaryFile,
    Pcap,
}

/// Writes `messages` generated messages (the last three are the closing system events).
/// For pcap, MoldUDP64 packets of up to 1472 bytes go to `group` with session `TCGEN00001`.
pub fn write_file(
    path: &Path,
    cfg: GeneratorConfig,
    messages: u64,
    format: GenFormat,
    group: SocketAddrV4,
    date: NaiveDate,
) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut gen = Generator::new(cfg);
    let mut msg = [0u8; MAX_MESSAGE];
    let clock = SessionClock::new(date);
    let session = Session::new("TCGEN00001").map_err(std::io::Error::other)?;
    let mut pcap = match format {
        GenFormat::Pcap => Some(PcapOut::new(&mut out, group)?),
        GenFormat::BinaryFile => None,
    };
    let mut packet =
        PacketBuilder::new(vec![0u8; 1472], 1472, &session, 1).map_err(std::io::Error::other)?;
    for i in 0..messages {
        let left = messages - i;
        let n = if left <= 3 {
            gen.closing(&mut msg, (3 - left) as usize)
        } else {
            gen.next_message(&mut msg)
        };
        match &mut pcap {
            None => {
                out.write_all(&(n as u16).to_be_bytes())?;
                out.write_all(&msg[..n])?;
            }
            Some(p) => {
                if !packet.fits(n) {
                    p.write(
                        &mut out,
                        packet.as_bytes(),
                        clock.to_epoch_ns(gen.itch_now()),
                    )?;
                    let next = packet.next_sequence();
                    packet.reset(next);
                }
                packet.append(&msg[..n]).map_err(std::io::Error::other)?;
            }
        }
    }
    if let Some(p) = &mut pcap {
        if !packet.is_empty() {
            p.write(
                &mut out,
                packet.as_bytes(),
                clock.to_epoch_ns(gen.itch_now()),
            )?;
        }
    }
    out.flush()
}

/// Classic pcap output of UDP datagrams to one multicast group.
struct PcapOut {
    group: SocketAddrV4,
    frame: Vec<u8>,
}

impl PcapOut {
    fn new(out: &mut impl Write, group: SocketAddrV4) -> std::io::Result<PcapOut> {
        // pcap global header, nanosecond resolution, Ethernet.
        out.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0u8; 8])?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapOut {
            group,
            frame: Vec::with_capacity(1600),
        })
    }

    fn write(&mut self, out: &mut impl Write, payload: &[u8], ts_ns: u64) -> std::io::Result<()> {
        let g = self.group.ip().octets();
        let mac = [0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]];
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], mac)
            .ipv4([10, 0, 0, 1], g, 32)
            .udp(26400, self.group.port());
        self.frame.clear();
        builder
            .write(&mut self.frame, payload)
            .map_err(std::io::Error::other)?;
        let len = self.frame.len() as u32;
        out.write_all(&((ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
        out.write_all(&((ts_ns % 1_000_000_000) as u32).to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&self.frame)
    }
}

/// The generator as a live source: BinaryFILE-framed chunks at a target message rate
/// (`None` = as fast as possible), ITCH times following the wall clock, stopping after
/// `limit` messages when set.
pub struct GeneratorSource {
    gen: Generator,
    clock: SessionClock,
    rate: Option<f64>,
    limit: Option<u64>,
    produced: u64,
    started: Instant,
    buf: Vec<u8>,
    chunk: usize,
}

impl GeneratorSource {
    pub fn new(cfg: GeneratorConfig, rate: Option<f64>, limit: Option<u64>) -> GeneratorSource {
        let now = net::now_ns();
        let clock = SessionClock::new(SessionClock::date_of_epoch_ns(now));
        let mut gen = Generator::new(cfg);
        gen.set_itch_now(clock.to_itch_ns(now));
        GeneratorSource {
            gen,
            clock,
            rate,
            limit,
            produced: 0,
            started: Instant::now(),
            buf: vec![0u8; 64 * (MAX_MESSAGE + 2)],
            chunk: 64,
        }
    }

    /// The session clock its ITCH times are relative to.
    pub fn clock(&self) -> SessionClock {
        self.clock
    }
}

impl Source for GeneratorSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        let mut n = self.chunk as u64;
        if let Some(limit) = self.limit {
            n = n.min(limit - self.produced.min(limit));
            if n == 0 {
                return Ok(None);
            }
        }
        if let Some(rate) = self.rate {
            // Smaller chunks at low rates keep latency honest; sleep until the chunk is due.
            n = n.min((rate / 1000.0).ceil().max(1.0) as u64);
            let due = Duration::from_secs_f64((self.produced + n) as f64 / rate);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
            let now = net::now_ns();
            self.gen.set_itch_now(self.clock.to_itch_ns(now));
        }
        let mut at = 0;
        for _ in 0..n {
            let len = self.gen.next_message(&mut self.buf[at + 2..]);
            self.buf[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
            at += 2 + len;
        }
        self.produced += n;
        Ok(Some(Frame {
            framing: Framing::BinaryFile,
            bytes: &self.buf[..at],
            recv_ts_ns: net::now_ns(),
            feed: net::Feed::A,
            from: None,
        }))
    }
}
