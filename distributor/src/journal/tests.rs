use super::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickcast-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn open(d: &Path, s: &str) -> io::Result<(Journal, Option<String>)> {
    Journal::open(d, &Session::new(s).unwrap(), Fsync::None, Duration::ZERO)
}

fn slot_offset(seq: u64) -> u64 {
    (HEADER + (seq as usize - 1) * SLOT) as u64
}

/// Record `seq` as a re-request is served it (through a `JournalReader`), into `out`.
fn read(reader: &mut JournalReader, seq: u64, out: &mut [u8; RECORD_SIZE]) -> bool {
    reader.read_run(seq, 1, |r| {
        *out = *r;
        true
    }) == 1
}

fn slot(rec: &[u8; RECORD_SIZE], seq: u64, checksum: Checksum) -> [u8; SLOT] {
    let mut s = [0u8; SLOT];
    write_slot(&mut s, rec, seq, checksum);
    s
}

fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn resume_serve_and_torn_tail() {
    let d = dir("resume");
    let (mut j, w) = open(&d, "J1").unwrap();
    assert!(w.is_none());
    assert_eq!(j.next_seq(), 1);
    for i in 0..5u8 {
        j.append(&[i; RECORD_SIZE]).unwrap();
    }
    assert_eq!(j.next_seq(), 6);
    j.commit().unwrap();
    drop(j);
    // A torn write: half of record 6 at the end.
    let p = path_for(&d, &Session::new("J1").unwrap());
    poke(&p, slot_offset(6), &[9u8; 30]);
    let (j, w) = open(&d, "J1").unwrap();
    assert!(w.unwrap().contains("torn tail: record 6"));
    assert_eq!(j.next_seq(), 6);
    let mut reader = JournalReader::open(j.path()).unwrap();
    let mut r = [0u8; RECORD_SIZE];
    assert!(read(&mut reader, 3, &mut r));
    assert_eq!(r, [2u8; RECORD_SIZE]);
    assert!(!read(&mut reader, 6, &mut r));
    drop(j);
    // Another session's journal is refused.
    std::fs::copy(&p, d.join("J2.journal")).unwrap();
    assert!(open(&d, "J2").is_err());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn one_writer_per_journal() {
    let d = dir("lock");
    let (_j, _) = open(&d, "L1").unwrap();
    let e = open(&d, "L1")
        .err()
        .expect("a second writer is refused")
        .to_string();
    assert!(e.contains("L1.journal") && e.contains("in use"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn damage_is_refused_or_never_served() {
    let d = dir("damage");
    let (mut j, _) = open(&d, "D1").unwrap();
    for i in 0..10u8 {
        j.append(&[i + 1; RECORD_SIZE]).unwrap();
    }
    // Corruption in a live journal: the damaged record is not served.
    let p = j.path().to_path_buf();
    poke(&p, slot_offset(4) + 3, &[0xEE]);
    let mut reader = JournalReader::open(&p).unwrap();
    let mut r = [0u8; RECORD_SIZE];
    assert!(!read(&mut reader, 4, &mut r));
    assert!(read(&mut reader, 5, &mut r));
    assert_eq!(reader.damaged_reads, 1);
    drop(j);
    // On restart: a bad record with records after it is damage, refused with the reason.
    let e = open(&d, "D1").err().unwrap().to_string();
    assert!(
        e.contains("record 4 is corrupt") && e.contains("refusing"),
        "{e}"
    );
    // A sparse hole (records missing, more after them): refused too.
    poke(&p, slot_offset(4) + 3, &[4]);
    poke(&p, slot_offset(2_000), &[1u8; SLOT]);
    let e = open(&d, "D1").err().unwrap().to_string();
    assert!(
        e.contains("record 11 is missing") && e.contains("record 2000"),
        "{e}"
    );
    // Cut below its header: refused, never silently restarted at sequence 1.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(100).unwrap();
    let e = open(&d, "D1").err().unwrap().to_string();
    assert!(
        e.contains("shorter than its") && e.contains("refusing"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sessions_map_to_distinct_files_as_on_the_wire() {
    let d = Path::new("/j");
    let p = |s: &str| path_for(d, &Session::new(s).unwrap());
    assert_eq!(p("RT01A"), p("RT01A "), "the same session on the wire");
    assert_ne!(p("A.B"), p("A_B"));
    assert_ne!(p("A%2EB"), p("A.B"));
    assert_eq!(p("A.B"), d.join("A%2EB.journal"));
    assert!(!p(" X")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with('.'));
}

#[test]
fn grows_past_its_first_allocation() {
    let d = dir("grow");
    let (mut j, _) = open(&d, "G1").unwrap();
    // As if the file were full after 3 records (it grows when `grow_at` is reached).
    (j.capacity, j.grow_at) = (3, 3);
    for i in 0..5u8 {
        j.append(&[i; RECORD_SIZE]).unwrap();
    }
    let mut reader = JournalReader::open(j.path()).unwrap();
    let mut r = [0u8; RECORD_SIZE];
    assert!(read(&mut reader, 5, &mut r));
    assert_eq!(r[0], 4);
    drop(j);
    assert_eq!(
        read_all(&path_for(&d, &Session::new("G1").unwrap()))
            .unwrap()
            .len(),
        5
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A journal of format v2 (IEEE CRC-32 slots, before v3's CRC-32C) is resumed, appended to in
/// its own format and served; new journals are v3, whose slots v2 would not accept.
#[test]
fn a_v2_journal_is_resumed_in_its_own_format() {
    let d = dir("v2");
    std::fs::create_dir_all(&d).unwrap();
    let session = Session::new("V2").unwrap();
    let p = path_for(&d, &session);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.set_len((HEADER + 64 * SLOT) as u64).unwrap();
    f.write_all_at(&header(&session, Checksum::Crc32), 0)
        .unwrap();
    for seq in 1..=3u64 {
        let s = slot(&[seq as u8; RECORD_SIZE], seq, Checksum::Crc32);
        f.write_all_at(&s, slot_offset(seq)).unwrap();
    }
    drop(f);
    let (mut j, w) = open(&d, "V2").unwrap();
    assert!(w.is_none());
    assert_eq!(j.next_seq(), 4, "the v2 records were not recognised");
    j.append(&[4u8; RECORD_SIZE]).unwrap();
    let mut reader = JournalReader::open(&p).unwrap();
    let mut r = [0u8; RECORD_SIZE];
    assert!(read(&mut reader, 2, &mut r) && r == [2u8; RECORD_SIZE]);
    assert!(read(&mut reader, 4, &mut r) && r == [4u8; RECORD_SIZE]);
    drop(j);
    let all = read_all(&p).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(open(&d, "V2").unwrap().0.next_seq(), 5);
    // The two formats' slots differ: a v3 slot is no valid v2 slot.
    let s = slot(&[9u8; RECORD_SIZE], 1, Checksum::NEW);
    assert!(valid(&s, 1, Checksum::NEW) && !valid(&s, 1, Checksum::Crc32));
    assert!(!valid(&s, 2, Checksum::NEW) && !valid(&s[..40], 1, Checksum::NEW));
    let _ = std::fs::remove_dir_all(&d);
}
