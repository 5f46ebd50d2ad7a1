//! A file mapped into memory for reading and writing (the journal): writes are plain memory
//! copies into the page cache, which survive the process; `File::sync_data` on the same file
//! (from any thread) makes them durable.
//!
//! The mapping reserves more address space than the file holds, so the file grows with a plain
//! `ftruncate` and never moves (no remap, no munmap of tens of MiB on the send thread). Only the
//! part the file backs is ever handed out as a slice: touching the rest would be `SIGBUS`.
//!
//! The slices handed out cover only the bytes asked for (`range`, `range_mut`), never the whole
//! mapping: the kernel may write other pages of the same file meanwhile (the journal's page
//! preparation writes zeros ahead of the writer with `pwrite`), and no slice may alias them.
#![allow(unsafe_code)]

use memmap2::{MmapRaw, UncheckedAdvice};
use std::fs::File;
use std::io;
use std::sync::Arc;

/// Address space reserved at most for one mapping (the file may grow up to it).
const MAX_RESERVE: usize = 1 << 38;

pub struct MappedFile {
    map: Arc<MmapRaw>,
    /// Bytes the file backs, from the start of the mapping (only grows).
    backed: usize,
}

impl MappedFile {
    /// Maps the first `len` bytes of `file` (which must be at least that long), shared, in a
    /// reservation of up to 256 GiB of address space (less where the address space is limited).
    pub fn map(file: &File, len: usize) -> io::Result<MappedFile> {
        if (file.metadata()?.len() as usize) < len {
            return Err(io::Error::other("file shorter than the mapping"));
        }
        let mut reserve = MAX_RESERVE.max(len);
        let map = loop {
            match memmap2::MmapOptions::new().len(reserve).map_raw(file) {
                Ok(m) => break m,
                Err(e) if reserve > len => {
                    tracing::debug!(reserve, error = %e, "mapping reservation refused; halving");
                    reserve = (reserve / 2).max(len);
                }
                Err(e) => return Err(e),
            }
        };
        Ok(MappedFile {
            map: Arc::new(map),
            backed: len,
        })
    }

    /// Bytes mapped and backed by the file.
    pub fn len(&self) -> usize {
        self.backed
    }

    pub fn is_empty(&self) -> bool {
        self.backed == 0
    }

    /// `len` bytes at `off`, if the file backs them.
    pub fn range(&self, off: usize, len: usize) -> Option<&[u8]> {
        if off.checked_add(len)? > self.backed {
            return None;
        }
        // SAFETY: the mapping lives as long as `self`; the range lies within the bytes the
        // file backs (checked above; the file is only grown while mapped, and the journal's
        // lock keeps other processes from truncating it), so no access faults. No `&mut` to
        // these bytes exists while `&self` is borrowed (only `range_mut(&mut self)` makes
        // one), and the only other writer of this file in the process (the journal's page
        // preparation) writes pages its writer has not entered, which no slice covers.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) })
    }

    /// `len` bytes at `off` for writing, if the file backs them.
    pub fn range_mut(&mut self, off: usize, len: usize) -> Option<&mut [u8]> {
        if off.checked_add(len)? > self.backed {
            return None;
        }
        // SAFETY: as in `range`; `&mut self` makes this the only slice of the mapping alive
        // (MappedFile is not Clone).
        Some(unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(off), len) })
    }

    /// Grows `file` (the mapped file) to `len` bytes and the usable mapping with it; past the
    /// reservation (256 GiB) the file is mapped anew.
    pub fn grow(&mut self, file: &File, len: usize) -> io::Result<()> {
        if len <= self.backed {
            return Ok(());
        }
        file.set_len(len as u64)?;
        if len <= self.map.len() {
            self.backed = len;
            return Ok(());
        }
        *self = MappedFile::map(file, len)?;
        Ok(())
    }

    /// A handle on this mapping's page-table entries, for another thread.
    pub fn page_tables(&self) -> PageTables {
        PageTables {
            map: self.map.clone(),
        }
    }

    /// Starts writing dirty pages back (does not wait).
    pub fn flush_async(&self) -> io::Result<()> {
        self.map.flush_async()
    }
}

/// A mapping's page-table entries, set up and dropped from a thread other than its writer's:
/// pages ahead of the writer are mapped writable before it gets there (`MADV_POPULATE_WRITE`),
/// so its first store into each does not fault; pages it has left are unmapped in bulk
/// (`MADV_DONTNEED`).
///
/// Why unmap: pages that stay mapped must each be write-protected again (a TLB shootdown
/// reaching the writer's core) when the kernel writes them back; unmapped in bulk, they cost
/// one.
pub struct PageTables {
    map: Arc<MmapRaw>,
}

impl PageTables {
    /// `len` bytes at `off` lie inside the mapping.
    fn check(&self, off: usize, len: usize) -> io::Result<()> {
        match off.checked_add(len) {
            Some(end) if end <= self.map.len() => Ok(()),
            _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    /// Maps `len` bytes at `off` writable in this process's page tables, as a store into each
    /// page would, without storing anything (Linux 5.14+; the caller treats an error as "the
    /// writer faults these pages itself"). The range must lie within what the file backs.
    pub fn populate(&self, off: usize, len: usize) -> io::Result<()> {
        self.check(off, len)?;
        self.map
            .advise_range(memmap2::Advice::PopulateWrite, off, len)
    }

    /// Unmaps `len` bytes at `off` (page-aligned) from this process's page tables; the data
    /// stays in the file and the page cache.
    pub fn unmap(&self, off: usize, len: usize) -> io::Result<()> {
        self.check(off, len)?;
        // SAFETY: the range lies inside the mapping, which `self.map` keeps alive. The mapping
        // is shared and file-backed, so MADV_DONTNEED discards no data: it removes page-table
        // entries, and any later access (even through a slice alive now) faults the same
        // page-cache page back in with the file's contents, dirty data included.
        unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, off, len)
        }
    }
}

/// A new file of `len` zero bytes in the temporary directory, named for `name` and this
/// process, opened for reading and writing (tests of mapped files).
#[doc(hidden)]
pub fn scratch_file(name: &str, len: u64) -> io::Result<(std::path::PathBuf, File)> {
    let p = std::env::temp_dir().join(format!("tickcast-{name}-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)?;
    f.set_len(len)?;
    Ok((p, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, len: u64) -> (std::path::PathBuf, File) {
        scratch_file(&format!("mmap-{name}"), len).unwrap()
    }

    #[test]
    fn writes_reach_the_file() {
        let (p, f) = temp_file("write", 4096);
        let mut m = MappedFile::map(&f, 4096).unwrap();
        m.range_mut(100, 5).unwrap().copy_from_slice(b"hello");
        // Unmapped pages keep their data.
        m.page_tables().unmap(0, 4096).unwrap();
        // Mapping a page ahead stores nothing into it.
        m.page_tables().populate(0, 4096).unwrap();
        assert!(m.page_tables().populate(4096, 1 << 40).is_err());
        assert_eq!(m.range(100, 5).unwrap(), b"hello");
        assert!(m.page_tables().unmap(4096, 1 << 40).is_err());
        assert!(m.range_mut(4094, 5).is_none());
        assert!(m.range(usize::MAX, 2).is_none());
        m.flush_async().unwrap();
        drop(m);
        assert_eq!(&std::fs::read(&p).unwrap()[100..105], b"hello");
        assert!(MappedFile::map(&f, 8192).is_err());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn grows_in_place() {
        let (p, f) = temp_file("grow", 8192);
        let mut m = MappedFile::map(&f, 8192).unwrap();
        let base = m.range(0, 1).unwrap().as_ptr();
        assert!(m.range(8192, 1).is_none());
        m.grow(&f, 64 * 4096).unwrap();
        assert_eq!(
            m.range(0, 1).unwrap().as_ptr(),
            base,
            "grown without moving"
        );
        assert_eq!(m.len(), 64 * 4096);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 64 * 4096);
        m.range_mut(64 * 4096 - 5, 5)
            .unwrap()
            .copy_from_slice(b"tail!");
        m.flush_async().unwrap();
        drop(m);
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes[..64 * 4096 - 5].iter().all(|&b| b == 0));
        assert_eq!(&bytes[64 * 4096 - 5..], b"tail!");
        let _ = std::fs::remove_file(&p);
    }
}
