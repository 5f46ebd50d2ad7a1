//! The frame window: one group's recent SoupBinTCP `S` packets (67 bytes each: header and
//! schema record) in one anonymous mapping, written by the shard that sequences the group and
//! handed by the TCP agent straight to the kernel for every client (the patent's single
//! buffer; registered with io_uring where it is used).
//!
//! Sequence `s` lives at slot `s % capacity`. The writer copies frames in and publishes the
//! next sequence with a release store; readers acquire it and never read past it. The writer
//! publishes at least every `capacity / 4` frames, so it is never more than that ahead of what
//! readers saw. A reader may send frames that are within `capacity / 2` of the published
//! sequence ([`WindowReader::live_from`]); [`WindowReader::overrun`] says afterwards whether
//! the writer could have reached them meanwhile (the client is then dropped, never sent a
//! damaged frame silently).
#![allow(unsafe_code)]

use memmap2::MmapMut;
use protocol::schema::RECORD_SIZE;
use protocol::soupbintcp::{SEQUENCED_RECORD_FRAME, SEQUENCED_RECORD_HEADER};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub const FRAME: usize = SEQUENCED_RECORD_FRAME;

struct Shared {
    /// Held for its lifetime; written only through `base`.
    _map: MmapMut,
    base: *mut u8,
    capacity: u64,
    /// First sequence the window ever held (older ones are in the journal only).
    start: u64,
    /// Next sequence not yet readable.
    published: AtomicU64,
    ended: AtomicBool,
}

// SAFETY: `base` points into `_map`, which lives as long as `Shared`. Only the one
// `WindowWriter` writes through it (it is not `Clone`), and only to slots readers are not
// allowed to read (at or past `published`, or older than the reader bound); readers never
// form Rust references to the bytes, they pass addresses to the kernel.
unsafe impl Send for Shared {}
// SAFETY: as above; the atomics order every access.
unsafe impl Sync for Shared {}

/// The shard's end of a window.
pub struct WindowWriter {
    shared: Arc<Shared>,
    next: u64,
    unpublished: u64,
}

/// The TCP agent's end of a window (cheap to clone).
#[derive(Clone)]
pub struct WindowReader {
    shared: Arc<Shared>,
}

/// Bytes of a window, borrowed from its reader: only the kernel reads them.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    pub(crate) ptr: *const u8,
    pub(crate) len: usize,
    _window: PhantomData<&'a WindowReader>,
}

// SAFETY: a region is an address range in a window mapping that the borrowed reader keeps
// alive; it is only handed to the kernel, from whichever thread, never dereferenced here.
unsafe impl Send for Region<'_> {}
// SAFETY: as above; a shared region gives no access to the bytes in Rust.
unsafe impl Sync for Region<'_> {}

impl Region<'_> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first byte from the window's base (for a registered buffer).
    pub fn offset_in(&self, w: &WindowReader) -> usize {
        self.ptr as usize - w.shared.base as usize
    }
}

/// A window of `capacity` frames (rounded up to a power of two, at least 1024) whose first
/// sequence is `start`.
pub fn window(capacity: usize, start: u64) -> std::io::Result<(WindowWriter, WindowReader)> {
    let capacity = capacity.max(1024).next_power_of_two() as u64;
    let mut map = MmapMut::map_anon(capacity as usize * FRAME)?;
    // Every slot's `S` header is the same: written once here, never on the send path.
    for f in map.chunks_exact_mut(FRAME) {
        f[..SEQUENCED_RECORD_HEADER.len()].copy_from_slice(&SEQUENCED_RECORD_HEADER);
    }
    let base = map.as_mut_ptr();
    let shared = Arc::new(Shared {
        _map: map,
        base,
        capacity,
        start,
        published: AtomicU64::new(start),
        ended: AtomicBool::new(false),
    });
    Ok((
        WindowWriter {
            shared: shared.clone(),
            next: start,
            unpublished: 0,
        },
        WindowReader { shared },
    ))
}

impl WindowWriter {
    /// Copies `rec` in as the next sequence's frame (its header is already there).
    #[inline]
    pub fn push(&mut self, rec: &[u8; RECORD_SIZE]) {
        let s = &self.shared;
        let off = (self.next % s.capacity) as usize * FRAME;
        // SAFETY: `off + FRAME` ≤ capacity × FRAME, the mapping's length. Nothing in this
        // process holds a reference to these bytes (readers only hand addresses to the
        // kernel); a reader whose send raced with this write learns it from `overrun`.
        unsafe {
            let dst = s.base.add(off + SEQUENCED_RECORD_HEADER.len());
            std::ptr::copy_nonoverlapping(rec.as_ptr(), dst, RECORD_SIZE);
        }
        self.next += 1;
        self.unpublished += 1;
        if self.unpublished >= s.capacity / 4 {
            self.publish();
        }
    }

    /// Makes every pushed frame readable.
    #[inline]
    pub fn publish(&mut self) {
        if self.unpublished > 0 {
            self.shared.published.store(self.next, Ordering::Release);
            self.unpublished = 0;
        }
    }

    /// Publishes and marks the session ended (no frame follows).
    pub fn end(&mut self) {
        self.publish();
        self.shared.ended.store(true, Ordering::Release);
    }

    pub fn next_seq(&self) -> u64 {
        self.next
    }
}

impl WindowReader {
    /// Next sequence not yet readable.
    pub fn published(&self) -> u64 {
        self.shared.published.load(Ordering::Acquire)
    }

    /// Whether the writer ended the session (read after `published` to see every frame).
    pub fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> u64 {
        self.shared.capacity
    }

    pub fn start(&self) -> u64 {
        self.shared.start
    }

    /// The oldest sequence that may be sent from the window now (older: from the journal).
    pub fn live_from(&self, published: u64) -> u64 {
        published
            .saturating_sub(self.shared.capacity / 2)
            .max(self.shared.start)
    }

    /// After sending frames from `seq` on: whether the writer may have overwritten them
    /// meanwhile (it is at most `capacity / 4` ahead of what it published).
    pub fn overrun(&self, seq: u64) -> bool {
        self.overrun_at(seq, self.published())
    }

    /// `overrun` against a `published` the caller loaded after its sends completed (one load
    /// for many clients).
    pub fn overrun_at(&self, seq: u64, published: u64) -> bool {
        published + self.shared.capacity / 4 >= seq + self.shared.capacity
    }

    /// The contiguous bytes from byte `skip` of frame `seq` up to the end of frame `end - 1`
    /// or the end of the mapping; empty unless `live_from(p) ≤ seq < end ≤ p` for `p` a
    /// published sequence and `skip < FRAME`.
    pub fn region(&self, seq: u64, skip: usize, end: u64) -> Region<'_> {
        let s = &self.shared;
        let ok = seq >= s.start && seq < end && end <= self.published() && skip < FRAME;
        let (off, len) = if ok {
            let slot = seq % s.capacity;
            let frames = (end - seq).min(s.capacity - slot);
            (slot as usize * FRAME + skip, frames as usize * FRAME - skip)
        } else {
            (0, 0)
        };
        Region {
            // SAFETY: `off` < capacity × FRAME (slot < capacity, skip < FRAME) so the pointer
            // stays inside the mapping, and `off + len` ≤ its length.
            ptr: unsafe { s.base.add(off) },
            len,
            _window: PhantomData,
        }
    }

    /// The whole mapping (to register with io_uring): base address and length.
    pub fn whole(&self) -> Region<'_> {
        Region {
            ptr: self.shared.base,
            len: self.shared.capacity as usize * FRAME,
            _window: PhantomData,
        }
    }

    /// Copies frame `seq` out (tests and checks); `None` unless readable now.
    pub fn copy_frame(&self, seq: u64) -> Option<[u8; FRAME]> {
        let p = self.published();
        if seq < self.live_from(p) || seq >= p {
            return None;
        }
        let mut out = [0u8; FRAME];
        let off = (seq % self.shared.capacity) as usize * FRAME;
        // SAFETY: in bounds as in `region`; a raw copy, no reference to shared bytes is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(self.shared.base.add(off), out.as_mut_ptr(), FRAME)
        };
        (!self.overrun(seq)).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_published_in_order_and_wrap() {
        let (mut w, r) = window(1024, 1).unwrap();
        assert_eq!(r.published(), 1);
        let mut rec = [0u8; RECORD_SIZE];
        for s in 1..=3000u64 {
            rec[..8].copy_from_slice(&s.to_le_bytes());
            w.push(&rec);
        }
        // Published at least every capacity / 4 frames without an explicit publish.
        assert!(r.published() >= 3000 - 256);
        w.publish();
        assert_eq!(r.published(), 3001);
        assert_eq!(r.live_from(3001), 3001 - 512);
        let f = r.copy_frame(2999).unwrap();
        assert_eq!(f[..3], SEQUENCED_RECORD_HEADER);
        assert_eq!(u64::from_le_bytes(f[3..11].try_into().unwrap()), 2999);
        assert!(r.copy_frame(2000).is_none());
        // A region stops at the end of the mapping.
        let reg = r.region(3000 - 10, 5, 3001);
        assert_eq!(reg.len(), 11 * FRAME - 5);
        let slot = (3000 - 10) % 1024;
        assert_eq!(reg.offset_in(&r), slot as usize * FRAME + 5);
        let wrap = r.region(1023 + 1024, 0, 3001);
        assert_eq!(wrap.len(), FRAME);
        assert!(r.region(3001, 0, 3002).is_empty());
        assert!(!r.overrun(2990));
        assert!(r.overrun(2000));
        assert!(!r.ended());
        w.end();
        assert!(r.ended());
    }
}
