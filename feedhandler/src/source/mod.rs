//! Where exchange bytes come from. Each source yields frames: a MoldUDP64 datagram, or a run of
//! BinaryFILE records (`[u16 BE length][message]`, MoldUDP64 blocks without a packet header).

pub mod binaryfile;
pub mod multicast;
pub mod pacing;
pub mod pcap;

use std::io::Read;
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
    /// The format the first bytes of a file say (at most 4 are looked at).
    pub fn from_magic(magic: &[u8]) -> FileFormat {
        match magic {
            [0xd4, 0xc3, 0xb2, 0xa1, ..] | [0xa1, 0xb2, 0xc3, 0xd4, ..] => FileFormat::Pcap,
            [0x4d, 0x3c, 0xb2, 0xa1, ..] | [0xa1, 0xb2, 0x3c, 0x4d, ..] => FileFormat::Pcap,
            [0x0a, 0x0d, 0x0d, 0x0a, ..] => FileFormat::PcapNg,
            [0x1f, 0x8b, ..] => FileFormat::BinaryFileGzip,
            _ => FileFormat::BinaryFile,
        }
    }

    /// Reads a file's first bytes (a regular file; for pipes use `open`, which reads once).
    pub fn sniff(path: &Path) -> Result<FileFormat, SourceError> {
        let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let head = read_head(&mut f).map_err(|e| io_err(path, e))?;
        Ok(FileFormat::from_magic(&head))
    }

    pub fn is_pcap(self) -> bool {
        matches!(self, FileFormat::Pcap | FileFormat::PcapNg)
    }
}

/// Up to 4 bytes from the start of `r` (fewer only at the end of the input).
fn read_head(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok(head)
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// The bytes of an input, read once from its start (the sniffed head is replayed).
pub type Input = Box<dyn Read + Send>;

/// Opens a file source of the given (or sniffed) format, reading the file exactly once from
/// the start, so pipes and FIFOs (`/dev/stdin`) work. Returns the format too.
pub fn open(
    path: &Path,
    format: Option<FileFormat>,
    filter: pcap::Filter,
) -> Result<(Box<dyn Source + Send>, FileFormat), SourceError> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if meta.is_dir() {
        return Err(SourceError::Format(format!(
            "{}: is a directory, not a capture or BinaryFILE",
            path.display()
        )));
    }
    let total = if meta.is_file() { meta.len() } else { 0 };
    open_input(Box::new(file), path, total, format, filter)
}

/// Like `open`, from any reader positioned at the start of the input (`total`: its size when
/// known, for progress). `name` is what errors say.
pub fn open_input(
    mut input: Input,
    name: &Path,
    total: u64,
    format: Option<FileFormat>,
    filter: pcap::Filter,
) -> Result<(Box<dyn Source + Send>, FileFormat), SourceError> {
    let head = read_head(&mut input).map_err(|e| io_err(name, e))?;
    let sniffed = FileFormat::from_magic(&head);
    let format = match format {
        // A forced pcap may still be pcapng; a forced BinaryFILE may be gzipped.
        Some(FileFormat::Pcap) if sniffed.is_pcap() => sniffed,
        Some(FileFormat::BinaryFile) if sniffed == FileFormat::BinaryFileGzip => sniffed,
        Some(f) => f,
        None => sniffed,
    };
    let input: Input = Box::new(std::io::Cursor::new(head).chain(input));
    let label = name.display().to_string();
    let source: Box<dyn Source + Send> = match format {
        FileFormat::Pcap | FileFormat::PcapNg => Box::new(pcap::PcapSource::from_input(
            input, format, name, total, filter,
        )?),
        FileFormat::BinaryFile => Box::new(binaryfile::BinaryFileSource::from_reader(
            input, label, total,
        )),
        FileFormat::BinaryFileGzip => Box::new(binaryfile::BinaryFileSource::from_reader(
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                input,
            ))),
            label,
            total,
        )),
    };
    Ok((source, format))
}

/// Opens a file source of the given (or sniffed) format.
pub fn open_file(
    path: &Path,
    format: Option<FileFormat>,
    filter: pcap::Filter,
) -> Result<Box<dyn Source + Send>, SourceError> {
    open(path, format, filter).map(|(s, _)| s)
}
