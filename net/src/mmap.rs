//! A file mapped into memory for reading and writing (the journal): writes are plain memory
//! copies into the page cache, which survive the process; `File::sync_data` on the same file
//! (from any thread) makes them durable.
#![allow(unsafe_code)]

use memmap2::MmapMut;
use std::fs::File;
use std::io;

pub struct MappedFile {
    map: MmapMut,
}

impl MappedFile {
    /// Maps the first `len` bytes of `file` (which must be at least that long), shared.
    pub fn map(file: &File, len: usize) -> io::Result<MappedFile> {
        if (file.metadata()?.len() as usize) < len {
            return Err(io::Error::other("file shorter than the mapping"));
        }
        // SAFETY: the mapping is shared and backed by `file`, which this process opened and
        // holds an exclusive lock on (the journal locks it before mapping), so no other
        // process truncates or rewrites it underneath us; the file is at least `len` bytes
        // long (checked above) and is only ever grown, never shrunk, while mapped.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(file)? };
        Ok(MappedFile { map })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Starts writing dirty pages back (does not wait).
    pub fn flush_async(&self) -> io::Result<()> {
        self.map.flush_async()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reach_the_file() {
        let p = std::env::temp_dir().join(format!("tickcast-mmap-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(4096).unwrap();
        let mut m = MappedFile::map(&f, 4096).unwrap();
        m.bytes_mut()[100..105].copy_from_slice(b"hello");
        m.flush_async().unwrap();
        drop(m);
        assert_eq!(&std::fs::read(&p).unwrap()[100..105], b"hello");
        assert!(MappedFile::map(&f, 8192).is_err());
        let _ = std::fs::remove_file(&p);
    }
}
