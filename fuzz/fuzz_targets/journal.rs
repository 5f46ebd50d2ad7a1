//! A journal file as found on disk at start-up: any bytes after a valid header (or in place of
//! it) open as a journal or give an error, never a panic; an opened journal resumes after its
//! valid records, appends the next one, and every reader agrees on what it holds.
#![no_main]
use distributor::config::Fsync;
use distributor::journal::{path_for, read_all, Journal, JournalReader};
use libfuzzer_sys::fuzz_target;
use protocol::schema::RECORD_SIZE;
use protocol::Session;
use std::sync::OnceLock;
use std::time::Duration;

const HEADER: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tickcast-fuzz-journal-{}", std::process::id()));
    let session = Session::new("FUZZ").unwrap();
    let path = path_for(&dir, &session);
    let open = || Journal::open(&dir, &session, Fsync::None, Duration::ZERO);
    // A new journal's header, taken once (creating a journal zeroes 16 MiB ahead and syncs);
    // the input follows it (mode even) or replaces the whole file (mode odd).
    static VALID_HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    let header = VALID_HEADER.get_or_init(|| {
        let _ = std::fs::remove_file(&path);
        drop(open().expect("a new journal opens"));
        let bytes = std::fs::read(&path).unwrap();
        bytes[..HEADER as usize].to_vec()
    });
    let mut file = if mode % 2 == 0 { header.clone() } else { Vec::new() };
    file.extend_from_slice(body);
    std::fs::write(&path, &file).unwrap();
    let before = read_all(&path).map(|r| r.len() as u64);
    match open() {
        Ok((mut j, _torn)) => {
            let valid = j.next_seq() - 1;
            // (An empty file is a journal whose header was never written: created anew.)
            let expect = if file.is_empty() { Some(0) } else { before.ok() };
            assert_eq!(expect, Some(valid), "open and read_all disagree");
            let rec = [mode; RECORD_SIZE];
            j.append(&rec).unwrap();
            let mut reader = JournalReader::open(&path).unwrap();
            let mut last = None;
            let n = reader.read_run(1, valid as usize + 1, |r| {
                last = Some(*r);
                true
            });
            assert_eq!(n as u64, valid + 1);
            assert_eq!(last, Some(rec));
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "one line: {e}"),
    }
    let _ = std::fs::remove_file(&path);
});
