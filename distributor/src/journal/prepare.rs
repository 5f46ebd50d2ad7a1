//! Preparing a journal's next pages off the send thread.
//!
//! The first store into a page of a shared file mapping faults, and on ext4 the fault also
//! allocates the page, reserves its block and builds buffer heads: ~2.8 µs per 4 KiB page
//! (~48 ns per 72-byte slot) measured here, on the sender. Writing zeros over the page with
//! `pwrite` first costs ~0.9 µs per page on whichever thread does it, and the sender's fault on
//! such a page then costs ~0.16 µs. (`MADV_POPULATE_WRITE` alone on the sparse pages costs
//! 1.2–1.45 µs per page against 0.9 for zeros then `MADV_POPULATE_WRITE`, and `fallocate`
//! *instead of* the zeros makes the later fault dearer: both measured worse.) The blocks under
//! the zeros are allocated first, 64 MiB per `fallocate` ([`ALLOCATE`]): ext4 then skips the
//! delayed allocation of every block, and the preparer's CPU per message in `tickcast bench
//! --subscribers 1` fell from 32.5–35.0 to 26.6–29.1 ns (six alternated runs each; the
//! kernel's extent conversion after write-back, on a kworker, stayed at ~1.2 % of the CPU).
//!
//! So another thread (the retransmitter's) zeros pages ahead of the writer, then maps them
//! writable into the process's page tables (`MADV_POPULATE_WRITE`, cheap on zeroed pages), so
//! the writer's first store into a page does not fault at all (that fault was ~5 % of the
//! shard's samples; shard CPU per message −8 to −10 ns, the preparer's +8). It must never write
//! a page the writer has begun, or it would erase records; a Dekker-style handshake on three
//! sequentially consistent positions guarantees that:
//! - the writer, before its first store into pages `f..=p` (`f` the first it has not stored
//!   into before; `f == p` for the journal's 72-byte slots, but a store may span pages),
//!   publishes `entered = p`, then waits while `[f, p]` meets `[zeroed, claim)` (the preparer
//!   is zeroing one of them right now: bounded by one step). Waiting on `p` alone let a store
//!   of more than a page write into a page being zeroed: the race test caught it about once in
//!   80 runs on a loaded machine;
//! - the preparer publishes `claim = end` for `[start, end)` with `start` above the writer's
//!   page, then re-reads `entered`: if the writer has reached `start` meanwhile it withdraws the
//!   claim, else it writes the zeros and then publishes `zeroed = end`.
//!
//! In the total order of these operations either the preparer sees the writer's page (and
//! withdraws) or the writer sees the claim (and waits for `zeroed`), never neither.
//!
//! The preparer's thread sleeps until there is work: the writer rings its [`Wake`] when it
//! enters a page within half of [`AHEAD`] of the prepared end (once per such end), and when the
//! file grows.

use net::filecache;
use net::mmap::{MappedFile, PageTables};
use net::wake::Wake;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

pub const PAGE: usize = 4096;
/// Bytes kept prepared ahead of the writer's page.
pub const AHEAD: usize = 16 << 20;
/// Bytes zeroed per step at most: a writer that catches up waits for one step (~60 µs).
const STEP: usize = 256 << 10;
/// Pages the writer has left are unmapped this many bytes at a time, this far behind it.
const UNMAP: usize = 16 << 20;
/// Bytes kept in the page cache behind the writer (re-requests ask for recent records; older
/// ones are read back from the disk). Behind that, pages are written back a chunk at a time and
/// dropped a chunk later, once clean: `net::filecache` says why (on this VM a journal that
/// kept growing the page cache paid ~10 µs per new page instead of ~0.65).
const KEEP: usize = 32 << 20;
/// Disk blocks are allocated this many bytes at a time ahead of the zeroing
/// (`filecache::allocate`): per page it saves ext4 the delayed allocation of each block, and in
/// one call per 64 MiB the extent work is nearly free.
const ALLOCATE: usize = 64 << 20;

/// How far ahead and behind the writer the preparer works (tests make them pages).
#[derive(Clone, Copy)]
struct Distances {
    ahead: usize,
    step: usize,
    unmap: usize,
    keep: usize,
    allocate: usize,
}

const DISTANCES: Distances = Distances {
    ahead: AHEAD,
    step: STEP,
    unmap: UNMAP,
    keep: KEEP,
    allocate: ALLOCATE,
};

/// Whether the preparer should start refilling: with the writer in the page at `entered`,
/// half of `ahead` or less is left prepared before `zeroed`. The writer rings on it, the
/// preparer starts on it: one test, so neither waits for the other.
fn needs_refill(entered: usize, zeroed: usize, ahead: usize) -> bool {
    zeroed.max(entered + PAGE) - entered <= ahead / 2
}

#[derive(Debug, Default)]
struct Positions {
    /// Start of the page the writer is writing.
    entered: AtomicUsize,
    /// Pages below it need nothing more from the preparer.
    zeroed: AtomicUsize,
    /// `[zeroed, claim)` is being zeroed.
    claim: AtomicUsize,
    /// Bytes the file holds: writing past them would grow it.
    backed: AtomicUsize,
}

/// The writer's side of the handshake (held by the journal).
#[derive(Debug)]
pub struct WriterSide {
    at: Arc<Positions>,
    /// End of the page entered last.
    entered_end: usize,
    wake: Arc<Wake>,
    /// Bytes the preparer keeps prepared ahead ([`needs_refill`]).
    ahead: usize,
    /// The prepared end the writer last rang the preparer for (it rings once per end).
    rang_for: usize,
}

/// The preparer's side: zeros the journal's pages ahead of its writer, from another thread.
pub struct PagePreparer {
    at: Arc<Positions>,
    file: File,
    /// Maps the pages it prepared, unmaps the pages the writer has left (in bulk; `unmapped`
    /// bytes from the start are).
    tables: PageTables,
    unmapped: usize,
    /// Bytes from the start whose write-back has been started, and then dropped from the cache.
    written: usize,
    dropped: usize,
    blocks: Blocks,
    zeros: Box<[u8]>,
    distances: Distances,
    wake: Arc<Wake>,
    /// Zeroing until `ahead` is prepared again (it starts when half is left): the work comes
    /// in runs, rarely, instead of a page at a time right behind every page the writer enters.
    filling: bool,
}

/// Both sides for a journal mapped by `map` whose next write is at byte `next`, with the first
/// [`AHEAD`] bytes prepared already (at start-up, ~3 ms, before any traffic: done later it
/// would compete with the first messages for the CPU).
pub fn handshake(
    file: &File,
    map: &MappedFile,
    next: usize,
) -> io::Result<(WriterSide, PagePreparer)> {
    let (writer, mut preparer) = handshake_sized(file, map, next, DISTANCES)?;
    while preparer.run()? > 0 {}
    Ok((writer, preparer))
}

/// With the distances given (tests make them a page, so the two sides race all the time).
fn handshake_sized(
    file: &File,
    map: &MappedFile,
    next: usize,
    d: Distances,
) -> io::Result<(WriterSide, PagePreparer)> {
    let page = next / PAGE * PAGE;
    // Pages before the writer's first were at most read (clean) while opening.
    let behind = page / d.unmap * d.unmap;
    let wake = Arc::new(Wake::new()?);
    let at = Arc::new(Positions {
        entered: AtomicUsize::new(page),
        zeroed: AtomicUsize::new(page + PAGE),
        claim: AtomicUsize::new(page + PAGE),
        backed: AtomicUsize::new(map.len()),
    });
    Ok((
        WriterSide {
            at: at.clone(),
            entered_end: page + PAGE,
            wake: wake.clone(),
            ahead: d.ahead,
            rang_for: 0,
        },
        PagePreparer {
            at,
            file: file.try_clone()?,
            tables: map.page_tables(),
            unmapped: behind,
            written: behind,
            dropped: behind,
            blocks: Blocks {
                allocated: page,
                on: !filecache::on_tmpfs(file),
            },
            zeros: vec![0u8; d.step].into_boxed_slice(),
            distances: d,
            wake,
            filling: true,
        },
    ))
}

impl WriterSide {
    /// Called before storing bytes `..end` (sequentially after what was stored before).
    #[inline]
    pub fn before_write(&mut self, end: usize) {
        if end > self.entered_end {
            self.enter(self.entered_end, (end - 1) / PAGE * PAGE);
        }
    }

    /// Enters pages `first..=page` (page starts): everything stored before lies below `first`.
    #[cold]
    fn enter(&mut self, first: usize, page: usize) {
        self.at.entered.store(page, SeqCst);
        self.entered_end = page + PAGE;
        let zeroed = loop {
            let claim = self.at.claim.load(SeqCst);
            let zeroed = self.at.zeroed.load(SeqCst);
            // Nothing claimed, or the claim lies wholly before or after these pages.
            if zeroed >= claim || first >= claim || page < zeroed {
                break zeroed;
            }
            std::hint::spin_loop();
        };
        if needs_refill(page, zeroed, self.ahead) && zeroed != self.rang_for {
            self.rang_for = zeroed;
            self.wake.ring();
        }
    }

    /// The file now holds `backed` bytes: the preparer may go on past the old end.
    pub fn grown(&self, backed: usize) {
        self.at.backed.store(backed, SeqCst);
        self.wake.ring();
    }
}

impl PagePreparer {
    /// Rung by the writer when this preparer has work; [`PagePreparer::run`] does not take it
    /// (the thread that waits for it does).
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// Zeros the next step of pages not yet prepared within [`AHEAD`] of the writer. Returns
    /// the bytes zeroed (0: nothing to do, or the writer got there first).
    pub fn run(&mut self) -> io::Result<usize> {
        let entered = self.at.entered.load(SeqCst);
        self.release_behind(entered);
        let at = &self.at;
        let zeroed = at.zeroed.load(SeqCst);
        let start = zeroed.max(entered + PAGE);
        let ahead = self.distances.ahead;
        if !self.filling && !needs_refill(entered, zeroed, ahead) {
            return Ok(0);
        }
        self.filling = true;
        let limit = at.backed.load(SeqCst) / PAGE * PAGE;
        let end = (entered + PAGE + ahead)
            .min(limit)
            .min(start + self.zeros.len());
        if end <= start {
            self.filling = false;
            return Ok(0);
        }
        if start > zeroed {
            // The writer went past what was prepared: its pages need nothing more.
            at.zeroed.store(start, SeqCst);
        }
        self.blocks
            .allocate_to(&self.file, start, end, limit, self.distances.allocate);
        at.claim.store(end, SeqCst);
        if at.entered.load(SeqCst) >= start {
            at.claim.store(start, SeqCst);
            return Ok(0);
        }
        let written = self
            .file
            .write_all_at(&self.zeros[..end - start], start as u64);
        if written.is_ok() {
            // Best effort, as a fault on the writer's thread would do (~0.16 µs a page there).
            let _ = self.tables.populate(start, end - start);
        }
        // Published even after an error: the writer then faults those pages itself.
        at.zeroed.store(end, SeqCst);
        written.map(|()| end - start)
    }

    /// Behind the writer (at `entered`), chunk by chunk: unmaps the pages it has left, starts
    /// writing them back once [`KEEP`] behind, and drops them from the page cache a chunk later,
    /// when the write-back has had time to finish (pages still dirty or being written stay
    /// cached). All best effort: on failure pages merely stay mapped or cached.
    fn release_behind(&mut self, entered: usize) {
        let Distances { unmap, keep, .. } = self.distances;
        // Each stage takes the chunks wholly `lag` or more behind the writer, after the stage
        // before it: unmapped a chunk behind, written back `keep` behind, dropped a chunk later.
        let behind = |lag: usize| entered.saturating_sub(lag);
        let (file, tables) = (&self.file, &self.tables);
        each_chunk(&mut self.unmapped, behind(unmap), unmap, |off| {
            let _ = tables.unmap(off, unmap);
        });
        each_chunk(
            &mut self.written,
            behind(keep).min(self.unmapped),
            unmap,
            |off| {
                let _ = filecache::start_writeback(file, off as u64, unmap as u64);
            },
        );
        each_chunk(
            &mut self.dropped,
            behind(unmap + keep).min(self.written),
            unmap,
            |off| {
                let _ = filecache::drop_clean(file, off as u64, unmap as u64);
            },
        );
    }
}

/// The journal's disk blocks, allocated ahead of the zeroing (`filecache::allocate`).
struct Blocks {
    /// Bytes from the start whose blocks are allocated (or left to the zeroing: below the
    /// writer's first page, and everywhere once `on` is off).
    allocated: usize,
    /// Off on tmpfs (allocating there would take memory 64 MiB ahead) and once the file system
    /// refuses (no `fallocate`, or full: then the zeroing allocates, or reports, as before).
    on: bool,
}

impl Blocks {
    /// Allocates `step` bytes at a time (up to the file's end at `limit`) once the zeroing of
    /// `start..end` would reach past those allocated. Never below `start`, so never under a
    /// page the writer has begun (and `fallocate` changes no data anyway).
    fn allocate_to(&mut self, file: &File, start: usize, end: usize, limit: usize, step: usize) {
        if !self.on || self.allocated >= end {
            return;
        }
        let from = self.allocated.max(start);
        let to = (from + step).min(limit).max(end);
        if filecache::allocate(file, from as u64, (to - from) as u64).is_err() {
            self.on = false;
        }
        self.allocated = to;
    }
}

/// Calls `f` with the offset of each `chunk`-sized range from `*done` that ends at or before
/// `limit`, moving `*done` past it.
fn each_chunk(done: &mut usize, limit: usize, chunk: usize, mut f: impl FnMut(usize)) {
    while *done + chunk <= limit {
        f(*done);
        *done += chunk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A new scratch file of `len` zero bytes, mapped.
    fn mapped_scratch(name: &str, len: usize) -> (std::path::PathBuf, File, MappedFile) {
        let (p, f) = net::mmap::scratch_file(name, len as u64).unwrap();
        let map = MappedFile::map(&f, len).unwrap();
        (p, f, map)
    }

    /// A writer racing its preparer over a real file never has a stored byte zeroed.
    #[test]
    fn never_zeroes_what_the_writer_stored() {
        let len = 16 << 20;
        let (p, f, map) = mapped_scratch("prepare-race", len);
        // One page ahead, one page per step: the preparer works right at the writer's heels.
        // (Releasing pages behind the writer is tested on its own, below.)
        let pages = Distances {
            ahead: PAGE,
            step: PAGE,
            ..DISTANCES
        };
        let (mut w, mut prep) = handshake_sized(&f, &map, 100, pages).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let preparer = std::thread::spawn(move || {
            let mut zeroed = 0;
            while !d.load(SeqCst) {
                zeroed += prep.run().unwrap();
            }
            zeroed
        });
        // The writer stores page-and-a-bit slots through pwrite (a stand-in for the mapping:
        // the handshake is what is under test), all 0xAB, crossing a page every store.
        let slot = [0xABu8; PAGE + 72];
        let mut off = 100;
        while off + slot.len() <= len {
            w.before_write(off + slot.len());
            f.write_all_at(&slot, off as u64).unwrap();
            off += slot.len();
        }
        done.store(true, SeqCst);
        let zeroed = preparer.join().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            bytes[100..off].iter().all(|&b| b == 0xAB),
            "a stored byte was zeroed"
        );
        assert!(zeroed > 0, "the preparer did nothing");
        let _ = std::fs::remove_file(&p);
    }

    /// A store spanning several pages waits while the preparer zeros any of them, not only
    /// its last page (which here lies past the claim).
    #[test]
    fn a_store_across_pages_waits_for_zeroing_of_any_of_them() {
        let (p, f, map) = mapped_scratch("prepare-span", 16 * PAGE);
        let (mut w, prep) = handshake_sized(&f, &map, 0, DISTANCES).unwrap();
        // The preparer is zeroing pages 2 and 3; the writer, in page 1, stores up into page 5.
        w.entered_end = 2 * PAGE;
        prep.at.zeroed.store(2 * PAGE, SeqCst);
        prep.at.claim.store(4 * PAGE, SeqCst);
        let stored = Arc::new(AtomicBool::new(false));
        let s = stored.clone();
        let writer = std::thread::spawn(move || {
            w.before_write(5 * PAGE + 10);
            s.store(true, SeqCst);
            w
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !stored.load(SeqCst),
            "stored while pages 2..4 were being zeroed"
        );
        prep.at.zeroed.store(4 * PAGE, SeqCst);
        let w = writer.join().unwrap();
        assert!(stored.load(SeqCst));
        assert_eq!(w.at.entered.load(SeqCst), 5 * PAGE);
        let _ = std::fs::remove_file(&p);
    }

    /// Pages the writer left far behind are written back and leave the page cache; the recent
    /// ones stay; every byte reads back as written.
    #[test]
    fn drops_pages_far_behind_the_writer_and_keeps_recent_ones() {
        let len = 64 * PAGE;
        let (p, f, map) = mapped_scratch("prepare-release", len);
        let d = Distances {
            ahead: 4 * PAGE,
            step: PAGE,
            unmap: 2 * PAGE,
            keep: 8 * PAGE,
            allocate: 8 * PAGE,
        };
        let (mut w, mut prep) = handshake_sized(&f, &map, 0, d).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8 | 1).collect();
        for page in 0..64 {
            let (start, end) = (page * PAGE, (page + 1) * PAGE);
            w.before_write(end);
            f.write_all_at(&data[start..end], start as u64).unwrap();
            // Written back before the preparer looks again, so each drop finds clean pages.
            f.sync_data().unwrap();
            while prep.run().unwrap() > 0 {}
        }
        // The writer is in page 63: chunks ending keep + 2 * unmap below it are dropped (pages
        // 0..52), the rest stays.
        assert_eq!(prep.dropped, 52 * PAGE);
        if net::filecache::on_tmpfs(&f) {
            eprintln!("skipped the page-cache check: the temporary directory is on tmpfs");
        } else {
            let cached = |off: usize, n: usize| net::filecache::cached_bytes(&f, off as u64, n);
            assert_eq!(
                cached(0, 52 * PAGE).unwrap(),
                0,
                "pages far behind stayed cached"
            );
            assert_eq!(
                cached(52 * PAGE, 12 * PAGE).unwrap(),
                12 * PAGE,
                "recent pages dropped"
            );
        }
        let back = std::fs::read(&p).unwrap();
        assert!(back == data, "a record changed when its page was dropped");
        let _ = std::fs::remove_file(&p);
    }

    /// Blocks are allocated a whole `allocate` ahead of the zeroing, from the zeroing's start,
    /// and the file's size and contents stay as they were.
    #[test]
    fn allocates_blocks_ahead_of_the_zeroing_without_changing_the_file() {
        use std::os::unix::fs::MetadataExt;
        let len = 64 * PAGE;
        let (p, f, map) = mapped_scratch("prepare-allocate", len);
        f.write_all_at(&[7u8; 100], 0).unwrap();
        let d = Distances {
            ahead: 2 * PAGE,
            step: PAGE,
            allocate: 16 * PAGE,
            ..DISTANCES
        };
        let (_w, mut prep) = handshake_sized(&f, &map, 100, d).unwrap();
        assert!(prep.run().unwrap() > 0);
        if net::filecache::on_tmpfs(&f) {
            assert!(
                !prep.blocks.on,
                "allocating ahead on tmpfs would take memory"
            );
            eprintln!("skipped the allocation check: the temporary directory is on tmpfs");
        } else {
            // Zeroed: page 1 only; allocated: pages 1..17.
            assert_eq!(prep.at.zeroed.load(SeqCst), 2 * PAGE);
            assert_eq!(prep.blocks.allocated, 17 * PAGE);
            let blocks = std::fs::metadata(&p).unwrap().blocks() as usize * 512;
            assert!(blocks >= 17 * PAGE, "{blocks} bytes of blocks");
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), len as u64);
        let back = std::fs::read(&p).unwrap();
        assert!(back[..100].iter().all(|&b| b == 7) && back[100..].iter().all(|&b| b == 0));
        let _ = std::fs::remove_file(&p);
    }

    /// The writer rings the preparer once when it comes within half of the prepared distance
    /// of the prepared end, and when the file grows; not on the pages in between.
    #[test]
    fn the_writer_rings_when_half_the_prepared_pages_are_used() {
        let len = 64 * PAGE;
        let (p, f, map) = mapped_scratch("prepare-wake", len);
        let d = Distances {
            ahead: 8 * PAGE,
            step: PAGE,
            ..DISTANCES
        };
        let (mut w, mut prep) = handshake_sized(&f, &map, 0, d).unwrap();
        while prep.run().unwrap() > 0 {}
        // Prepared: pages 1..=8 (ahead of the writer's page 0).
        assert_eq!(prep.at.zeroed.load(SeqCst), 9 * PAGE);
        for page in 1..=4 {
            w.before_write((page + 1) * PAGE);
            assert!(!prep.wake().take(), "rang at page {page}");
        }
        // Page 5: 4 pages (half of 8) are left before the prepared end.
        w.before_write(6 * PAGE);
        assert!(prep.wake().take(), "no ring with half the pages used");
        w.before_write(7 * PAGE);
        assert!(!prep.wake().take(), "rang twice for the same prepared end");
        while prep.run().unwrap() > 0 {}
        assert_eq!(prep.at.zeroed.load(SeqCst), 15 * PAGE);
        w.before_write(8 * PAGE);
        assert!(!prep.wake().take());
        w.grown(len);
        assert!(prep.wake().take(), "a grown file rings");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn stays_within_the_file_and_ahead_of_the_writer() {
        let (p, f, map) = mapped_scratch("prepare-ahead", 40 * PAGE);
        // Without the start-up fill: pages 2..40, above the writer's page 1 and below the end
        // of the file, in steps.
        let (_, mut prep) = handshake_sized(&f, &map, 5000, DISTANCES).unwrap();
        let mut total = 0;
        loop {
            let n = prep.run().unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 38 * PAGE);
        // handshake() has done all of that before returning.
        let (w, mut prep) = handshake(&f, &map, 5000).unwrap();
        assert_eq!(prep.run().unwrap(), 0);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 40 * PAGE as u64);
        w.grown(48 * PAGE);
        f.set_len(48 * PAGE as u64).unwrap();
        assert_eq!(prep.run().unwrap(), 8 * PAGE);
        let _ = std::fs::remove_file(&p);
    }
}
