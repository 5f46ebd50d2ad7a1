//! The per-group journal: an append-only file of the group's sequenced records. Records are
//! fixed-size, so message `seq` lives at a computable offset: restart resumes at the next
//! sequence and old messages are read back in place. A torn tail is cut to the last whole record.

use crate::config::Fsync;
use protocol::schema::RECORD_SIZE;
use protocol::Session;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 16] = b"TICKCAST-JRNL-v1";
const HEADER: u64 = 64;

pub struct Journal {
    file: File,
    path: PathBuf,
    records: u64,
    pending: Vec<u8>,
    fsync: Fsync,
    interval: Duration,
    last_sync: Instant,
}

fn header(session: &Session) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..16].copy_from_slice(MAGIC);
    h[16..26].copy_from_slice(&session.0);
    h[26..28].copy_from_slice(&(RECORD_SIZE as u16).to_le_bytes());
    h
}

/// The journal file of a session: its name made safe for a file system.
pub fn path_for(dir: &Path, session: &Session) -> PathBuf {
    let name: String = session
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.journal"))
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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let len = file.metadata()?.len();
        let want = header(session);
        let mut warning = None;
        if len < HEADER {
            file.set_len(0)?;
            file.write_all(&want)?;
            file.sync_all()?;
        } else {
            let mut h = [0u8; HEADER as usize];
            file.read_exact(&mut h)?;
            if h != want {
                return Err(io::Error::other(format!(
                    "{}: not a journal of session {:?} with {RECORD_SIZE}-byte records",
                    path.display(),
                    session.as_str()
                )));
            }
            let body = len - HEADER;
            let whole = body - body % RECORD_SIZE as u64;
            if whole != body {
                file.set_len(HEADER + whole)?;
                warning = Some(format!(
                    "{}: torn tail of {} bytes cut to the last whole record",
                    path.display(),
                    body - whole
                ));
            }
        }
        let records = (file.metadata()?.len() - HEADER) / RECORD_SIZE as u64;
        file.seek(SeekFrom::End(0))?;
        Ok((
            Journal {
                file,
                path,
                records,
                pending: Vec::with_capacity(64 * RECORD_SIZE),
                fsync,
                interval,
                last_sync: Instant::now(),
            },
            warning,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.records + self.pending.len() as u64 / RECORD_SIZE as u64 + 1
    }

    /// Records written (committed) so far.
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Buffers a record; `commit` writes it.
    #[inline]
    pub fn append(&mut self, rec: &[u8]) {
        self.pending
            .extend_from_slice(&rec[..RECORD_SIZE.min(rec.len())]);
    }

    /// Writes buffered records (one write) and syncs by policy. Called before the datagrams
    /// holding them are sent, so every sequence a subscriber sees is on disk.
    pub fn commit(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.records += (self.pending.len() / RECORD_SIZE) as u64;
            self.pending.clear();
        }
        match self.fsync {
            Fsync::None => {}
            Fsync::Always => self.file.sync_data()?,
            Fsync::Interval => {
                if self.last_sync.elapsed() >= self.interval {
                    self.file.sync_data()?;
                    self.last_sync = Instant::now();
                }
            }
        }
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.commit()?;
        self.file.sync_all()
    }

    /// Reads record `seq` (1-based) if committed.
    pub fn read(&self, seq: u64, out: &mut [u8; RECORD_SIZE]) -> bool {
        if seq == 0 || seq > self.records {
            return false;
        }
        let off = HEADER + (seq - 1) * RECORD_SIZE as u64;
        self.file.read_exact_at(out, off).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_and_torn_tail() {
        let dir =
            std::env::temp_dir().join(format!("tickcast-journal-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Session::new("J1").unwrap();
        let (mut j, w) = Journal::open(&dir, &s, Fsync::None, Duration::ZERO).unwrap();
        assert!(w.is_none());
        assert_eq!(j.next_seq(), 1);
        for i in 0..5u8 {
            j.append(&[i; RECORD_SIZE]);
        }
        assert_eq!(j.next_seq(), 6);
        j.commit().unwrap();
        drop(j);
        // A torn write: half a record at the end.
        let p = path_for(&dir, &s);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[9u8; 30]).unwrap();
        drop(f);
        let (j, w) = Journal::open(&dir, &s, Fsync::None, Duration::ZERO).unwrap();
        assert!(w.unwrap().contains("torn tail of 30 bytes"));
        assert_eq!(j.next_seq(), 6);
        let mut r = [0u8; RECORD_SIZE];
        assert!(j.read(3, &mut r));
        assert_eq!(r, [2u8; RECORD_SIZE]);
        assert!(!j.read(6, &mut r));
        // Another session's journal is refused.
        std::fs::copy(&p, dir.join("J2.journal")).unwrap();
        assert!(Journal::open(
            &dir,
            &Session::new("J2").unwrap(),
            Fsync::None,
            Duration::ZERO
        )
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
