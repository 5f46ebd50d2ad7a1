//! Control messages of a received datagram, decoded from the bytes the kernel wrote, with every
//! length checked (quinn-udp's `unix.rs` does the same): a header must fit in what is left, its
//! `cmsg_len` must cover its own header and stay inside the buffer, and a payload is read only
//! when it has the size its level/type promises. Safe code: the buffer is plain bytes.

/// Alignment and header size of `struct cmsghdr` on Linux (`size_t`, `int`, `int`).
const ALIGN: usize = std::mem::size_of::<usize>();
const HDR: usize = std::mem::size_of::<libc::cmsghdr>();

/// Room for a timestamp (32), a drop counter (24) and a UDP_GRO segment size (24), with
/// headers and padding.
pub const SPACE: usize = 96;

/// A control-message buffer with the alignment the kernel requires.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub struct CmsgBuf(pub [u8; SPACE]);

impl Default for CmsgBuf {
    fn default() -> Self {
        CmsgBuf([0; SPACE])
    }
}

/// What the kernel said about one datagram besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// SO_TIMESTAMPNS, ns since the epoch.
    pub timestamp_ns: Option<u64>,
    /// SO_RXQ_OVFL: datagrams the socket dropped so far.
    pub drops: Option<u32>,
    /// UDP_GRO: segment size of a coalesced buffer.
    pub gro_segment: Option<u16>,
    /// Headers that were malformed (bad length); decoding stopped there.
    pub malformed: bool,
}

fn align(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

fn ne_usize(b: &[u8]) -> usize {
    let mut a = [0u8; ALIGN];
    a.copy_from_slice(&b[..ALIGN]);
    usize::from_ne_bytes(a)
}

fn ne_i32(b: &[u8]) -> i32 {
    i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes the first `len` bytes (the kernel's `msg_controllen`) of `buf`.
pub fn decode(buf: &[u8], len: usize) -> Decoded {
    let mut d = Decoded::default();
    let buf = &buf[..len.min(buf.len())];
    let mut at = 0;
    while at + HDR <= buf.len() {
        let h = &buf[at..];
        let clen = ne_usize(h);
        if clen < HDR || clen > h.len() {
            d.malformed = true;
            break;
        }
        let level = ne_i32(&h[ALIGN..]);
        let ty = ne_i32(&h[ALIGN + 4..]);
        let data = &h[HDR..clen];
        match (level, ty) {
            (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) if data.len() >= 16 => {
                let sec = i64::from_ne_bytes(data[..8].try_into().unwrap_or_default());
                let nsec = i64::from_ne_bytes(data[8..16].try_into().unwrap_or_default());
                if sec >= 0 && (0..1_000_000_000).contains(&nsec) {
                    d.timestamp_ns = Some(sec as u64 * 1_000_000_000 + nsec as u64);
                }
            }
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) if data.len() >= 4 => {
                d.drops = Some(u32::from_ne_bytes([data[0], data[1], data[2], data[3]]));
            }
            (libc::SOL_UDP, libc::UDP_GRO) if data.len() >= 2 => {
                // The kernel writes an int; its low 16 bits are the segment size.
                let v = if data.len() >= 4 {
                    ne_i32(data) as u16
                } else {
                    u16::from_ne_bytes([data[0], data[1]])
                };
                d.gro_segment = Some(v);
            }
            _ => {}
        }
        at += align(clen);
    }
    d
}

/// Writes one control message carrying a `u16` (UDP_SEGMENT) at the start of `buf`; returns
/// the length to give the kernel (`CMSG_SPACE`), or 0 when `buf` is too small.
pub fn encode_u16(buf: &mut [u8], level: i32, ty: i32, value: u16) -> usize {
    let len = HDR + 2;
    let space = align(len);
    if buf.len() < space {
        return 0;
    }
    buf[..space].fill(0);
    buf[..ALIGN].copy_from_slice(&len.to_ne_bytes());
    buf[ALIGN..ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
    buf[ALIGN + 4..ALIGN + 8].copy_from_slice(&ty.to_ne_bytes());
    buf[HDR..HDR + 2].copy_from_slice(&value.to_ne_bytes());
    space
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(buf: &mut Vec<u8>, level: i32, ty: i32, data: &[u8]) {
        buf.extend_from_slice(&(HDR + data.len()).to_ne_bytes());
        buf.extend_from_slice(&level.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(data);
        while !buf.len().is_multiple_of(ALIGN) {
            buf.push(0);
        }
    }

    #[test]
    fn encodes_a_segment_size_the_decoder_reads_back() {
        let mut b = [0u8; SPACE];
        let n = encode_u16(&mut b, libc::SOL_UDP, libc::UDP_GRO, 1472);
        assert_eq!(n, align(HDR + 2));
        assert_eq!(decode(&b, n).gro_segment, Some(1472));
        assert_eq!(
            encode_u16(&mut b[..8], libc::SOL_UDP, libc::UDP_SEGMENT, 1),
            0
        );
    }

    #[test]
    fn decodes_timestamp_and_drops() {
        let mut b = Vec::new();
        let mut ts = 5i64.to_ne_bytes().to_vec();
        ts.extend_from_slice(&7i64.to_ne_bytes());
        push(&mut b, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &ts);
        push(
            &mut b,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            &9u32.to_ne_bytes(),
        );
        let d = decode(&b, b.len());
        assert_eq!(d.timestamp_ns, Some(5_000_000_007));
        assert_eq!(d.drops, Some(9));
        assert!(!d.malformed);
    }

    #[test]
    fn bad_lengths_stop_decoding_without_reading_past_the_buffer() {
        let mut b = Vec::new();
        push(
            &mut b,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            &9u32.to_ne_bytes(),
        );
        // A length that runs past the buffer.
        let mut bad = b.clone();
        bad[..ALIGN].copy_from_slice(&1000usize.to_ne_bytes());
        assert!(decode(&bad, bad.len()).malformed);
        // A length below the header.
        bad[..ALIGN].copy_from_slice(&3usize.to_ne_bytes());
        assert!(decode(&bad, bad.len()).malformed);
        // A controllen shorter than the message: the message is not read.
        assert_eq!(decode(&b, HDR + 2).drops, None);
        // Every prefix and every garbage buffer is safe.
        for n in 0..=b.len() {
            let _ = decode(&b, n);
        }
        let _ = decode(&[0xff; 64], 64);
    }
}
