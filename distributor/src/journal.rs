//! The per-group journal: a memory-mapped, preallocated session file of the group's sequenced
//! records, owned by one process.
//!
//! - **Layout.** A 4 KiB header (magic, session as on the wire, record and slot sizes, its own
//!   CRC-32), then one 72-byte slot per sequence number: the 64-byte record, the sequence's low
//!   32 bits and a CRC-32C of both. Sequence `n` lives at a computable offset. (Format v2 had
//!   the IEEE CRC-32 there, twice as dear on the send path: 22 against 12 ns per slot measured
//!   here; v2 journals are still resumed, appended to and served in their own format.)
//! - **Send path.** `append` copies the record into the map (a memcpy into the page cache, no
//!   system call) before the datagram holding it is sent; the page cache outlives the process, so
//!   a crash never loses a sent message. Durability against the host failing follows `fsync`:
//!   `always` syncs on the send thread before each send, `interval` from a background thread,
//!   `none` leaves it to the kernel.
//! - **Growth.** The file grows by 2^20 slots (72 MiB, sparse until prepared) while 16 MiB
//!   are still free, with an `ftruncate` only: the mapping reserves address space for 256 GiB
//!   and never moves. One session is one file (a new session name starts a new file).
//! - **Disk work off the send path.** The retransmitter's thread writes zeros over the next
//!   16 MiB of pages ahead of the sender ([`PagePreparer`], `prepare.rs`; their blocks allocated
//!   64 MiB at a time with `fallocate` first), so the sender's first
//!   store into a page costs a cheap fault instead of ext4 allocating the page and its block.
//!   Behind the sender it starts writing pages back once 32 MiB behind and drops them from the
//!   page cache 16 MiB later, once clean, so a session never grows the cache by gigabytes (on a
//!   VM each page of new memory cost ~10 µs to touch); re-requests for older records read
//!   them back from the disk.
//! - **Integrity.** The file is locked (`flock`) for the process's life: a second process is
//!   refused with a line naming it. On open every slot is checked: the valid prefix is the
//!   journal; an incomplete last record (non-zero, bad checksum, only empty slots after it) is a
//!   torn tail and is cut with a warning; a bad record *followed by records*, or a file cut below
//!   its header, is damage and is refused (resuming would reuse or lose sequence numbers).
//!   Records read for re-requests are checked again and never served when damaged.

use crate::config::Fsync;
use format::{header, valid, write_slot, Checksum, HEADER};
pub use format::{path_for, SLOT};
use net::mmap::MappedFile;
pub use prepare::PagePreparer;
use prepare::WriterSide;
use protocol::schema::RECORD_SIZE;
use protocol::Session;
pub use reader::{read_all, JournalReader};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Slots added when the file grows.
const GROW: u64 = 1 << 20;
/// The file grows when fewer slots than this are left, so pages can be prepared ahead.
const AHEAD_SLOTS: u64 = (prepare::AHEAD / SLOT) as u64 + 1;

pub struct Journal {
    file: File,
    map: MappedFile,
    path: PathBuf,
    /// Records written; the next sequence is `records + 1`.
    records: u64,
    /// Slots mapped.
    capacity: u64,
    /// When `records` reaches it, the file grows (ahead of being full, for the prefaulter).
    grow_at: u64,
    fsync: Fsync,
    checksum: Checksum,
    _syncer: Option<Syncer>,
    /// The writer's side of the page preparation handshake, and the preparer until taken.
    pages: WriterSide,
    preparer: Option<PagePreparer>,
}

/// Syncs the file every interval off the send thread (fsync = "interval").
struct Syncer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn not_a_journal(path: &Path) -> io::Error {
    io::Error::other(format!("{}: not a tickcast journal", path.display()))
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Journal {
    /// Opens or creates the journal; returns it and a warning when a torn tail was cut.
    pub fn open(
        dir: &Path,
        session: &Session,
        fsync: Fsync,
        interval: Duration,
    ) -> io::Result<(Journal, Option<String>)> {
        // Errors name the path that failed (a bare "File exists" says nothing).
        if dir.exists() && !dir.is_dir() {
            return Err(io::Error::other(format!(
                "{}: exists and is not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("{}: cannot create: {e}", dir.display()))
        })?;
        let path = path_for(dir, session);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::other(format!(
                    "{}: in use by another tickcast process (one journal, one writer)",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(at(&path, e)),
        }
        let len = file.metadata().map_err(|e| at(&path, e))?.len();
        let checksum = if len == 0 {
            file.set_len(HEADER as u64 + GROW * SLOT as u64)
                .map_err(|e| at(&path, e))?;
            file.write_all_at(&header(session, Checksum::NEW), 0)
                .map_err(|e| at(&path, e))?;
            file.sync_all().map_err(|e| at(&path, e))?;
            Checksum::NEW
        } else if len < HEADER as u64 {
            return Err(io::Error::other(format!(
                "{}: damaged: {len} bytes, shorter than its {HEADER}-byte header; refusing to \
                 start the session over (sequence numbers would be reused); move it aside",
                path.display()
            )));
        } else {
            let mut h = [0u8; HEADER];
            file.read_exact_at(&mut h, 0).map_err(|e| at(&path, e))?;
            let format = Checksum::of_magic(&h).filter(|&c| h[..64] == header(session, c)[..64]);
            let Some(checksum) = format else {
                return Err(io::Error::other(format!(
                    "{}: not a journal of session {:?} with {RECORD_SIZE}-byte records (or its header is damaged)",
                    path.display(),
                    session.as_str()
                )));
            };
            checksum
        };
        let len = file.metadata().map_err(|e| at(&path, e))?.len();
        let capacity = (len - HEADER as u64) / SLOT as u64;
        let mut map =
            MappedFile::map(&file, HEADER + capacity as usize * SLOT).map_err(|e| at(&path, e))?;
        let (records, warning) = scan(&mut map, capacity, &path, checksum)?;
        let (pages, preparer) = prepare::handshake(&file, &map, HEADER + records as usize * SLOT)
            .map_err(|e| at(&path, e))?;
        let syncer = (fsync == Fsync::Interval)
            .then(|| start_syncer(&file, interval))
            .transpose()
            .map_err(|e| at(&path, e))?;
        Ok((
            Journal {
                file,
                map,
                path,
                records,
                capacity,
                grow_at: capacity.saturating_sub(AHEAD_SLOTS),
                fsync,
                checksum,
                _syncer: syncer,
                pages,
                preparer: Some(preparer),
            },
            warning,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.records + 1
    }

    /// Records written so far.
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Writes the next record into the map (before the datagram holding it is sent).
    #[inline]
    pub fn append(&mut self, rec: &[u8; RECORD_SIZE]) -> io::Result<()> {
        if self.records >= self.grow_at {
            if let Err(e) = self.grow() {
                if self.records == self.capacity {
                    return Err(e);
                }
                // Room is left: retry a while later rather than on every record.
                self.grow_at = self.records + 4096;
            }
        }
        let seq = self.records + 1;
        let off = HEADER + self.records as usize * SLOT;
        self.pages.before_write(off + SLOT);
        let Some(slot) = self
            .map
            .range_mut(off, SLOT)
            .and_then(|s| s.first_chunk_mut())
        else {
            // Unreachable: the file grows before it is full.
            return Err(io::Error::other("journal slot outside the file"));
        };
        write_slot(slot, rec, seq, self.checksum);
        self.records += 1;
        Ok(())
    }

    fn grow(&mut self) -> io::Result<()> {
        let capacity = self.capacity + GROW;
        let len = HEADER + capacity as usize * SLOT;
        self.map
            .grow(&self.file, len)
            .map_err(|e| at(&self.path, e))?;
        self.pages.grown(len);
        self.capacity = capacity;
        self.grow_at = capacity - AHEAD_SLOTS;
        Ok(())
    }

    /// The preparer of this journal's pages, for another thread (taken once).
    pub fn take_preparer(&mut self) -> Option<PagePreparer> {
        self.preparer.take()
    }

    /// Called before the datagrams holding the appended records are sent: with
    /// `fsync = "always"` they are made durable first.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.fsync == Fsync::Always {
            self.file.sync_data().map_err(|e| at(&self.path, e))?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all().map_err(|e| at(&self.path, e))
    }
}

fn start_syncer(file: &File, interval: Duration) -> io::Result<Syncer> {
    let file = file.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let interval = interval.max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name("journal-sync".into())
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(interval.min(Duration::from_millis(100)));
                let _ = file.sync_data();
            }
        })?;
    Ok(Syncer {
        stop,
        thread: Some(thread),
    })
}

/// Finds the journal's end: the valid prefix; cuts a torn last record; refuses damage.
fn scan(
    map: &mut MappedFile,
    capacity: u64,
    path: &Path,
    checksum: Checksum,
) -> io::Result<(u64, Option<String>)> {
    let bytes = map.range(0, map.len()).unwrap_or_default();
    let slot = |i: u64| &bytes[HEADER + i as usize * SLOT..HEADER + (i as usize + 1) * SLOT];
    let mut records = 0;
    while records < capacity && valid(slot(records), records + 1, checksum) {
        records += 1;
    }
    if records == capacity {
        return Ok((records, None));
    }
    let torn = slot(records).iter().any(|&b| b != 0);
    let rest = &bytes[HEADER + (records as usize + 1) * SLOT..];
    if let Some(at) = rest.iter().position(|&b| b != 0) {
        let next = records + 2 + (at / SLOT) as u64;
        return Err(io::Error::other(format!(
            "{}: damaged: record {} is {} and record {next} follows; refusing to resume (sequence numbers would be reused or lost); move it aside",
            path.display(),
            records + 1,
            if torn { "corrupt" } else { "missing" },
        )));
    }
    if !torn {
        return Ok((records, None));
    }
    let off = HEADER + records as usize * SLOT;
    if let Some(slot) = map.range_mut(off, SLOT) {
        slot.fill(0);
    }
    Ok((
        records,
        Some(format!(
            "{}: torn tail: record {} was incomplete and is cut",
            path.display(),
            records + 1
        )),
    ))
}

mod format;
mod prepare;
mod reader;
#[cfg(test)]
mod tests;
