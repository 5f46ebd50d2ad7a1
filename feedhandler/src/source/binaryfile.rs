//! Nasdaq BinaryFILE (`[u16 BE length][message]` records), plain or gzip, streamed in chunks of
//! whole records.

use super::{io_err, Frame, Framing, Source, SourceError};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

const CHUNK: usize = 256 * 1024;

pub struct BinaryFileSource {
    reader: Box<dyn Read + Send>,
    path: String,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data; `start..filled` is not yet handed out.
    filled: usize,
    start: usize,
    eof: bool,
    consumed: u64,
    total: u64,
    recv_ts_ns: u64,
}

impl BinaryFileSource {
    pub fn open(path: &Path) -> Result<BinaryFileSource, SourceError> {
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut r = BufReader::new(file);
        let gz = r
            .fill_buf()
            .map_err(|e| io_err(path, e))?
            .starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + Send> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        } else {
            Box::new(r)
        };
        Ok(Self::from_reader(reader, path.display().to_string(), total))
    }

    pub fn from_reader(reader: Box<dyn Read + Send>, path: String, total: u64) -> Self {
        BinaryFileSource {
            reader,
            path,
            buf: vec![0u8; CHUNK],
            filled: 0,
            start: 0,
            eof: false,
            consumed: 0,
            total,
            recv_ts_ns: net::now_ns(),
        }
    }

    /// Length of the longest run of whole records at the front of `b`.
    fn whole_records(b: &[u8]) -> usize {
        let mut at = 0;
        while let Some((_, rest)) = protocol::moldudp64::split_block(&b[at..]) {
            at = b.len() - rest.len();
        }
        at
    }
}

impl Source for BinaryFileSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, SourceError> {
        loop {
            let whole = Self::whole_records(&self.buf[self.start..self.filled]);
            if whole > 0 {
                let s = self.start;
                self.start += whole;
                self.consumed += whole as u64;
                return Ok(Some(Frame {
                    framing: Framing::BinaryFile,
                    bytes: &self.buf[s..s + whole],
                    recv_ts_ns: self.recv_ts_ns,
                    feed: net::Feed::A,
                    from: None,
                }));
            }
            if self.eof {
                let left = self.filled - self.start;
                if left > 0 {
                    // A torn last record: hand it out so the decoder counts it as malformed.
                    self.start = self.filled;
                    return Err(SourceError::Format(format!(
                        "{}: {left} trailing bytes do not make a whole record",
                        self.path
                    )));
                }
                return Ok(None);
            }
            // Move the partial record to the front and read more.
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
            if self.filled == self.buf.len() {
                // Cannot happen: records are at most 2 + 65535 bytes.
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self
                .reader
                .read(&mut self.buf[self.filled..])
                .map_err(|e| {
                    // Name what failed: a gzip stream that does not inflate is not "a zero
                    // length prefix" further on.
                    SourceError::Format(format!(
                        "{}: reading failed after {} bytes: {e}",
                        self.path, self.consumed
                    ))
                })?;
            if n == 0 {
                self.eof = true;
            }
            self.filled += n;
            self.recv_ts_ns = net::now_ns();
        }
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.consumed, self.total))
    }
}
