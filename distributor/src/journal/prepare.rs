//! Preparing a journal's next pages off the send thread.
//!
//! The first store into a page of a shared file mapping faults, and on ext4 the fault also
//! allocates the page, reserves its block and builds buffer heads: ~2.8 µs per 4 KiB page
//! (~48 ns per 72-byte slot) measured here, on the sender. Writing zeros over the page with
//! `pwrite` first costs ~0.9 µs per page on whichever thread does it, and the sender's fault on
//! such a page then costs ~0.16 µs. (`MADV_POPULATE_WRITE` costs ~9 µs per page and
//! `fallocate` makes the later fault dearer: both measured worse.)
//!
//! So another thread (the retransmitter's) zeros pages ahead of the writer. It must never write
//! a page the writer has begun, or it would erase records; a Dekker-style handshake on three
//! sequentially consistent positions guarantees that:
//! - the writer, before its first store into page `p`, publishes `entered = p`, then waits
//!   while `zeroed <= p < claim` (the preparer is zeroing `p` right now: bounded by one step);
//! - the preparer publishes `claim = end` for `[start, end)` with `start` above the writer's
//!   page, then re-reads `entered`: if the writer has reached `start` meanwhile it withdraws the
//!   claim, else it writes the zeros and then publishes `zeroed = end`.
//!
//! In the total order of these operations either the preparer sees the writer's page (and
//! withdraws) or the writer sees the claim (and waits for `zeroed`), never neither.

use net::mmap::{MappedFile, Unmapper};
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
}

/// The preparer's side: zeros the journal's pages ahead of its writer, from another thread.
pub struct PagePreparer {
    at: Arc<Positions>,
    file: File,
    /// Unmaps the pages the writer has left, in bulk; `unmapped` bytes from the start are.
    unmapper: Unmapper,
    unmapped: usize,
    zeros: Box<[u8]>,
    ahead: usize,
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
    let (writer, mut preparer) = handshake_sized(file, map, next, AHEAD, STEP)?;
    while preparer.run()? > 0 {}
    Ok((writer, preparer))
}

/// With the distances given (tests make them a page, so the two sides race all the time).
fn handshake_sized(
    file: &File,
    map: &MappedFile,
    next: usize,
    ahead: usize,
    step: usize,
) -> io::Result<(WriterSide, PagePreparer)> {
    let page = next / PAGE * PAGE;
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
        },
        PagePreparer {
            at,
            file: file.try_clone()?,
            unmapper: map.unmapper(),
            // Pages before the writer's first were at most read (clean) while opening.
            unmapped: page / UNMAP * UNMAP,
            zeros: vec![0u8; step].into_boxed_slice(),
            ahead,
            filling: true,
        },
    ))
}

impl WriterSide {
    /// Called before storing bytes `..end` (sequentially after what was stored before).
    #[inline]
    pub fn before_write(&mut self, end: usize) {
        if end > self.entered_end {
            self.enter((end - 1) / PAGE * PAGE);
        }
    }

    #[cold]
    fn enter(&mut self, page: usize) {
        self.at.entered.store(page, SeqCst);
        self.entered_end = page + PAGE;
        loop {
            let claim = self.at.claim.load(SeqCst);
            let zeroed = self.at.zeroed.load(SeqCst);
            if page >= claim || page < zeroed {
                return;
            }
            std::hint::spin_loop();
        }
    }

    /// The file now holds `backed` bytes.
    pub fn grown(&self, backed: usize) {
        self.at.backed.store(backed, SeqCst);
    }
}

impl PagePreparer {
    /// Zeros the next step of pages not yet prepared within [`AHEAD`] of the writer. Returns
    /// the bytes zeroed (0: nothing to do, or the writer got there first).
    pub fn run(&mut self) -> io::Result<usize> {
        let at = &self.at;
        let entered = at.entered.load(SeqCst);
        while entered >= self.unmapped + 2 * UNMAP {
            // Best effort: on failure the pages simply stay mapped.
            let _ = self.unmapper.unmap(self.unmapped, UNMAP);
            self.unmapped += UNMAP;
        }
        let zeroed = at.zeroed.load(SeqCst);
        let start = zeroed.max(entered + PAGE);
        if !self.filling && start - entered > self.ahead / 2 {
            return Ok(0);
        }
        self.filling = true;
        let limit = at.backed.load(SeqCst) / PAGE * PAGE;
        let end = (entered + PAGE + self.ahead)
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
        at.claim.store(end, SeqCst);
        if at.entered.load(SeqCst) >= start {
            at.claim.store(start, SeqCst);
            return Ok(0);
        }
        let written = self
            .file
            .write_all_at(&self.zeros[..end - start], start as u64);
        // Published even after an error: the writer then faults those pages itself.
        at.zeroed.store(end, SeqCst);
        written.map(|()| end - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A writer racing its preparer over a real file never has a stored byte zeroed.
    #[test]
    fn never_zeroes_what_the_writer_stored() {
        let len = 16 << 20;
        let (p, f) = net::mmap::scratch_file("prepare-race", len as u64).unwrap();
        // One page ahead, one page per step: the preparer works right at the writer's heels.
        let map = MappedFile::map(&f, len).unwrap();
        let (mut w, mut prep) = handshake_sized(&f, &map, 100, PAGE, PAGE).unwrap();
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

    #[test]
    fn stays_within_the_file_and_ahead_of_the_writer() {
        let (p, f) = net::mmap::scratch_file("prepare-ahead", 40 * PAGE as u64).unwrap();
        let map = MappedFile::map(&f, 40 * PAGE).unwrap();
        // Without the start-up fill: pages 2..40, above the writer's page 1 and below the end
        // of the file, in steps.
        let (_, mut prep) = handshake_sized(&f, &map, 5000, AHEAD, STEP).unwrap();
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
