//! Where exchange bytes come from. Each source yields frames: a MoldUDP64 datagram, or a run of
//! BinaryFILE records (`[u16 BE length][message]`, MoldUDP64 blocks without a packet header).

pub mod binaryfile;
pub mod multicast;
pub mod pacing;
pub mod pcap;

use std::path::Path;

/// How a frame's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One MoldUDP64 downstream packet.
    MoldUdp64,
    /// Whole BinaryFILE records back to back.
    BinaryFile,
}

/// One unit of input.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub framing: Framing,
    pub bytes: &'a [u8],
    /// When the feed handler received it (ns since the epoch): the capture time for pcaps.
    pub recv_ts_ns: u64,
    /// Which copy of the exchange stream it is (A for files; A, B or a re-request answer live).
    pub feed: net::Feed,
    /// The sender's address, when known (live input).
    pub from: Option<std::net::SocketAddrV4>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Format(String),
}

/// A pull source of frames; `None` at the end of a file (live sources never end).
pub trait Source {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError>;
    /// (bytes consumed, total bytes) for a progress bar, when known.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
    /// Frames dropped or skipped at the source (not MoldUDP64, filtered, kernel drops).
    fn skipped(&self) -> u64 {
        0
    }
}

/// What a file holds, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap,
    PcapNg,
    BinaryFile,
    BinaryFileGzip,
}

impl FileFormat {
    pub fn sniff(path: &Path) -> Result<FileFormat, SourceError> {
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let n = f.read(&mut magic).map_err(|e| io_err(path, e))?;
        Ok(match (n, magic) {
            (4, [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4]) => FileFormat::Pcap,
            (4, [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]) => FileFormat::Pcap,
            (4, [0x0a, 0x0d, 0x0d, 0x0a]) => FileFormat::PcapNg,
            (n, [0x1f, 0x8b, ..]) if n >= 2 => FileFormat::BinaryFileGzip,
            _ => FileFormat::BinaryFile,
        })
    }

    pub fn is_pcap(self) -> bool {
        matches!(self, FileFormat::Pcap | FileFormat::PcapNg)
    }
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Opens a file source of the given (or sniffed) format.
pub fn open_file(
    path: &Path,
    format: Option<FileFormat>,
    filter: pcap::Filter,
) -> Result<Box<dyn Source + Send>, SourceError> {
    let format = match format {
        Some(f) => f,
        None => FileFormat::sniff(path)?,
    };
    Ok(match format {
        FileFormat::Pcap | FileFormat::PcapNg => Box::new(pcap::PcapSource::open(path, filter)?),
        FileFormat::BinaryFile | FileFormat::BinaryFileGzip => {
            Box::new(binaryfile::BinaryFileSource::open(path)?)
        }
    })
}
