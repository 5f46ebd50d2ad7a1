//! Reading a journal from outside its writer: another thread's re-requests and replays while
//! the shard writes, tools and tests after it.

use super::format::{valid, Checksum, HEADER, SLOT};
use super::{at, not_a_journal};
use protocol::schema::RECORD_SIZE;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Reads a journal another thread (the shard) is writing: for the TCP agent's replays and
/// catch-up. Only records whose slot checks out are returned; the writer's page-cache writes
/// are visible to `pread` on another descriptor of the same file.
pub struct JournalReader {
    file: File,
    checksum: Checksum,
    pub damaged_reads: u64,
}

impl JournalReader {
    /// Opens a journal its writer has created (header written).
    pub fn open(path: &Path) -> io::Result<JournalReader> {
        let file = File::open(path).map_err(|e| at(path, e))?;
        let mut magic = [0u8; 16];
        file.read_exact_at(&mut magic, 0).map_err(|e| at(path, e))?;
        let checksum = Checksum::of_magic(&magic).ok_or_else(|| not_a_journal(path))?;
        Ok(JournalReader {
            file,
            checksum,
            damaged_reads: 0,
        })
    }

    /// Hands records `first..first + count` to `take` in order, while they are intact
    /// (unwritten, damaged or past the end of the file stops it) and `take` accepts them;
    /// returns how many it accepted.
    pub fn read_run(
        &mut self,
        first: u64,
        count: usize,
        mut take: impl FnMut(&[u8; RECORD_SIZE]) -> bool,
    ) -> usize {
        if first == 0 {
            return 0;
        }
        let mut slots = [0u8; SLOT * 64];
        let mut done = 0;
        while done < count {
            let n = (count - done).min(64);
            let seq = first + done as u64;
            let off = HEADER as u64 + (seq - 1) * SLOT as u64;
            let got = match self.file.read_at(&mut slots[..n * SLOT], off) {
                Ok(b) => b / SLOT,
                Err(_) => 0,
            };
            for (i, slot) in slots[..got * SLOT].chunks_exact(SLOT).enumerate() {
                if !valid(slot, seq + i as u64, self.checksum) {
                    if slot.iter().any(|&b| b != 0) {
                        self.damaged_reads += 1;
                    }
                    return done + i;
                }
                let Some((rec, _)) = slot.split_first_chunk::<RECORD_SIZE>() else {
                    return done + i;
                };
                if !take(rec) {
                    return done + i;
                }
            }
            done += got;
            if got < n {
                break;
            }
        }
        done
    }
}
/// Every intact record of a journal file, in sequence order (for tools and tests; the file may
/// be in use).
pub fn read_all(path: &Path) -> io::Result<Vec<[u8; RECORD_SIZE]>> {
    let bytes = std::fs::read(path).map_err(|e| at(path, e))?;
    let checksum = Checksum::of_magic(&bytes)
        .filter(|_| bytes.len() >= HEADER)
        .ok_or_else(|| not_a_journal(path))?;
    let mut out = Vec::new();
    for (i, s) in bytes[HEADER..].chunks_exact(SLOT).enumerate() {
        if !valid(s, i as u64 + 1, checksum) {
            break;
        }
        let mut r = [0u8; RECORD_SIZE];
        r.copy_from_slice(&s[..RECORD_SIZE]);
        out.push(r);
    }
    Ok(out)
}
