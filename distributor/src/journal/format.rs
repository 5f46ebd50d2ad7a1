//! The journal's on-disk format: the header, the slot of each sequence number, and its
//! checksum by format version (see the layout in `journal.rs`).

use protocol::schema::RECORD_SIZE;
use protocol::Session;
use std::path::{Path, PathBuf};

/// The checksum of a journal's slots, by its format (the magic at the start of its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Checksum {
    /// v2: CRC-32 (IEEE).
    Crc32,
    /// v3: CRC-32C (Castagnoli), computed by the CPU's `crc32` instruction where it has one.
    Crc32c,
}

impl Checksum {
    /// What new journals are written with.
    pub(super) const NEW: Checksum = Checksum::Crc32c;

    pub(super) fn magic(self) -> &'static [u8; 16] {
        match self {
            Checksum::Crc32 => b"TICKCAST-JRNL-v2",
            Checksum::Crc32c => b"TICKCAST-JRNL-v3",
        }
    }

    pub(super) fn of_magic(bytes: &[u8]) -> Option<Checksum> {
        [Checksum::Crc32c, Checksum::Crc32]
            .into_iter()
            .find(|c| bytes.starts_with(c.magic()))
    }

    /// The checksum of `a` followed by `b`.
    #[inline]
    pub(super) fn of(self, a: &[u8], b: &[u8]) -> u32 {
        match self {
            Checksum::Crc32 => {
                let mut h = crc32fast::Hasher::new();
                h.update(a);
                h.update(b);
                h.finalize()
            }
            Checksum::Crc32c => crc32c::crc32c_append(crc32c::crc32c(a), b),
        }
    }
}

pub(super) const HEADER: usize = 4096;
/// A record, its sequence's low 32 bits, and a checksum of both (by format: CRC-32C, or v2's
/// CRC-32).
pub const SLOT: usize = RECORD_SIZE + 8;

pub(super) fn header(session: &Session, checksum: Checksum) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..16].copy_from_slice(checksum.magic());
    h[16..26].copy_from_slice(&session.0);
    h[26..28].copy_from_slice(&(RECORD_SIZE as u16).to_le_bytes());
    h[28..30].copy_from_slice(&(SLOT as u16).to_le_bytes());
    let crc = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Writes record `rec` as sequence `seq` into `slot`, straight from the record: no staging
/// copy (a slot built on the stack and then copied cost a store-forwarding stall per record,
/// 35 % of the shard's `take_batch` samples).
#[inline]
pub(super) fn write_slot(
    slot: &mut [u8; SLOT],
    rec: &[u8; RECORD_SIZE],
    seq: u64,
    checksum: Checksum,
) {
    let seq = seq as u32;
    let crc = checksum.of(rec, &seq.to_le_bytes());
    let (body, tail) = slot.split_at_mut(RECORD_SIZE);
    body.copy_from_slice(rec);
    // The sequence and the CRC, little-endian, as one 8-byte store.
    tail.copy_from_slice(&(u64::from(seq) | u64::from(crc) << 32).to_le_bytes());
}

/// Whether `slot` holds the valid record of sequence `seq`.
pub(super) fn valid(slot: &[u8], seq: u64, checksum: Checksum) -> bool {
    let Some((covered, tail)) = slot.split_at_checked(RECORD_SIZE + 4) else {
        return false;
    };
    let (rec, stored_seq) = covered.split_at(RECORD_SIZE);
    stored_seq == (seq as u32).to_le_bytes()
        && tail.get(..4) == Some(&checksum.of(rec, stored_seq).to_le_bytes()[..])
}

/// The journal file of a session: the session as on the wire (trailing padding dropped), with
/// every byte outside `A-Z a-z 0-9 -` written `%XX`, so distinct sessions never share a file.
pub fn path_for(dir: &Path, session: &Session) -> PathBuf {
    let mut name = String::new();
    let end = session
        .0
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |i| i + 1);
    for &b in &session.0[..end] {
        if b.is_ascii_alphanumeric() || b == b'-' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    dir.join(format!("{name}.journal"))
}
