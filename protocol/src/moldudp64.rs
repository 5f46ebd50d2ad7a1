//! MoldUDP64 framing (Nasdaq spec v1.00): downstream packets, request packets and a builder.
//!
//! All integers are big-endian. Views follow smoltcp's `wire` habit: `new_checked` validates the
//! length once, after which no accessor can panic.

use crate::Error;

/// Byte ranges of the downstream header and the request packet.
pub mod field {
    use core::ops::Range;
    pub const SESSION: Range<usize> = 0..10;
    pub const SEQUENCE: Range<usize> = 10..18;
    pub const COUNT: Range<usize> = 18..20;
    pub const BLOCKS: usize = 20;
}

pub const SESSION_LEN: usize = 10;
pub const HEADER_LEN: usize = 20;
pub const REQUEST_LEN: usize = 20;
/// Length prefix of one message block.
pub const BLOCK_HEADER_LEN: usize = 2;
pub const COUNT_HEARTBEAT: u16 = 0;
pub const COUNT_END_OF_SESSION: u16 = 0xFFFF;
/// The largest count a data packet may carry (0xFFFF means end of session).
pub const MAX_DATA_COUNT: u16 = 0xFFFE;
/// 1500-byte Ethernet MTU minus IPv4 and UDP headers: what real Nasdaq packets use.
pub const DEFAULT_MAX_PAYLOAD: usize = 1472;

/// A MoldUDP64 session name: 10 ASCII bytes, space padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session(pub [u8; SESSION_LEN]);

impl Session {
    /// Pads `name` with spaces; rejects names longer than 10 bytes or not printable ASCII.
    pub fn new(name: &str) -> Result<Session, Error> {
        let bytes = name.as_bytes();
        if bytes.len() > SESSION_LEN || !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(Error::BadSession);
        }
        let mut s = [b' '; SESSION_LEN];
        s[..bytes.len()].copy_from_slice(bytes);
        Ok(Session(s))
    }

    /// The name without trailing padding; non-UTF-8 bytes (possible on the wire) give "?".
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0)
            .map(|s| s.trim_end_matches([' ', '\0']))
            .unwrap_or("?")
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Session({:?})", self.as_str())
    }
}

impl core::fmt::Display for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a downstream packet's count says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Data,
    Heartbeat,
    EndOfSession,
}

/// A read-only view of one downstream packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic. Use `new_checked` on untrusted input.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Checks the header fits, so that every header accessor is safe to call.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn session(&self) -> Session {
        let mut s = [0u8; SESSION_LEN];
        s.copy_from_slice(&self.buffer.as_ref()[field::SESSION]);
        Session(s)
    }

    pub fn session_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SESSION]
    }

    pub fn sequence(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::SEQUENCE])
    }

    pub fn count(&self) -> u16 {
        be_u16(&self.buffer.as_ref()[field::COUNT])
    }

    pub fn kind(&self) -> PacketKind {
        match self.count() {
            COUNT_HEARTBEAT => PacketKind::Heartbeat,
            COUNT_END_OF_SESSION => PacketKind::EndOfSession,
            _ => PacketKind::Data,
        }
    }

    /// Number of messages the packet carries (0 for heartbeat and end of session).
    pub fn message_count(&self) -> u16 {
        match self.kind() {
            PacketKind::Data => self.count(),
            _ => 0,
        }
    }

    /// Sequence number the receiver expects after this packet.
    pub fn next_sequence(&self) -> u64 {
        self.sequence()
            .saturating_add(u64::from(self.message_count()))
    }

    /// Iterates the message blocks. It never reads out of bounds: a block that overruns the
    /// datagram yields one `Err(Error::Truncated)` and ends the iteration.
    pub fn messages(&self) -> Messages<'_> {
        Messages {
            rest: &self.buffer.as_ref()[field::BLOCKS..],
            remaining: self.message_count(),
        }
    }

    /// Walks every block: `Ok` when exactly `count` whole blocks are present (trailing bytes
    /// after them are tolerated, as receivers in the field do).
    pub fn validate(&self) -> Result<(), Error> {
        for m in self.messages() {
            m?;
        }
        Ok(())
    }
}

/// Iterator over the message blocks of a packet.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match split_block(self.rest) {
            Some((msg, rest)) => {
                self.remaining -= 1;
                self.rest = rest;
                Some(Ok(msg))
            }
            None => {
                self.remaining = 0;
                Some(Err(Error::Truncated))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// Iterates the `[u16 BE length][bytes]` blocks at the front of `buf` (BinaryFILE records, or a
/// datagram's blocks without a count); stops before a block that overruns. `rest` is what is
/// left after the blocks yielded so far.
pub fn blocks(buf: &[u8]) -> Blocks<'_> {
    Blocks { rest: buf }
}

/// See [`blocks`].
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    rest: &'a [u8],
}

impl<'a> Blocks<'a> {
    /// The bytes after the blocks yielded so far (non-empty after the end: a torn block).
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (msg, rest) = split_block(self.rest)?;
        self.rest = rest;
        Some(msg)
    }
}

/// Splits one `[u16 BE length][bytes]` block off the front of `buf`; `None` when it overruns.
/// Shared by MoldUDP64 packets and BinaryFILE records, which use the same block framing.
pub fn split_block(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    if buf.len() < BLOCK_HEADER_LEN {
        return None;
    }
    let len = be_u16(&buf[..BLOCK_HEADER_LEN]) as usize;
    let end = BLOCK_HEADER_LEN + len;
    if buf.len() < end {
        return None;
    }
    Some((&buf[BLOCK_HEADER_LEN..end], &buf[end..]))
}

/// A view of a 20-byte re-request packet (receiver to re-request server).
#[derive(Debug, Clone, Copy)]
pub struct Request<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Request<T> {
    /// A request is exactly 20 bytes; anything else is rejected.
    pub fn new_checked(buffer: T) -> Result<Request<T>, Error> {
        if buffer.as_ref().len() != REQUEST_LEN {
            return Err(Error::BadLength);
        }
        Ok(Request { buffer })
    }

    pub fn session(&self) -> Session {
        let mut s = [0u8; SESSION_LEN];
        s.copy_from_slice(&self.buffer.as_ref()[field::SESSION]);
        Session(s)
    }

    pub fn sequence(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::SEQUENCE])
    }

    pub fn count(&self) -> u16 {
        be_u16(&self.buffer.as_ref()[field::COUNT])
    }
}

/// Writes a request into `buf` (at least 20 bytes); returns its length.
pub fn emit_request(buf: &mut [u8], session: &Session, sequence: u64, count: u16) -> usize {
    emit_header(buf, session, sequence, count);
    REQUEST_LEN
}

/// Writes a heartbeat carrying the next expected sequence; returns its length.
pub fn emit_heartbeat(buf: &mut [u8], session: &Session, next_sequence: u64) -> usize {
    emit_header(buf, session, next_sequence, COUNT_HEARTBEAT);
    HEADER_LEN
}

/// Writes an end-of-session packet carrying the next expected sequence; returns its length.
pub fn emit_end_of_session(buf: &mut [u8], session: &Session, next_sequence: u64) -> usize {
    emit_header(buf, session, next_sequence, COUNT_END_OF_SESSION);
    HEADER_LEN
}

fn emit_header(buf: &mut [u8], session: &Session, sequence: u64, count: u16) {
    buf[field::SESSION].copy_from_slice(&session.0);
    buf[field::SEQUENCE].copy_from_slice(&sequence.to_be_bytes());
    buf[field::COUNT].copy_from_slice(&count.to_be_bytes());
}

/// Builds one downstream data packet in a caller-supplied buffer, under a payload cap.
///
/// The header is kept current after every append, so `as_bytes` is always a valid packet.
/// It never grows the buffer: a message that does not fit returns `Error::DoesNotFit`.
#[derive(Debug)]
pub struct PacketBuilder<B: AsMut<[u8]> + AsRef<[u8]>> {
    buffer: B,
    len: usize,
    count: u16,
    max_payload: usize,
}

impl<B: AsMut<[u8]> + AsRef<[u8]>> PacketBuilder<B> {
    /// `max_payload` is clamped to the buffer's length; the buffer must hold a header.
    pub fn new(
        buffer: B,
        max_payload: usize,
        session: &Session,
        sequence: u64,
    ) -> Result<Self, Error> {
        let cap = buffer.as_ref().len().min(max_payload);
        if cap < HEADER_LEN {
            return Err(Error::DoesNotFit);
        }
        let mut b = PacketBuilder {
            buffer,
            len: HEADER_LEN,
            count: 0,
            max_payload: cap,
        };
        emit_header(b.buffer.as_mut(), session, sequence, 0);
        Ok(b)
    }

    /// Starts a new packet at `sequence`, keeping the session and buffer.
    pub fn reset(&mut self, sequence: u64) {
        self.len = HEADER_LEN;
        self.count = 0;
        let buf = self.buffer.as_mut();
        buf[field::SEQUENCE].copy_from_slice(&sequence.to_be_bytes());
        buf[field::COUNT].copy_from_slice(&0u16.to_be_bytes());
    }

    /// Whether a message of `len` bytes would fit.
    pub fn fits(&self, len: usize) -> bool {
        len <= u16::MAX as usize
            && self.count < MAX_DATA_COUNT
            && self.len + BLOCK_HEADER_LEN + len <= self.max_payload
    }

    /// Appends a block of `len` bytes written in place by `write`.
    pub fn append_with(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> Result<(), Error> {
        if !self.fits(len) {
            return Err(Error::DoesNotFit);
        }
        let start = self.len;
        let buf = self.buffer.as_mut();
        buf[start..start + BLOCK_HEADER_LEN].copy_from_slice(&(len as u16).to_be_bytes());
        write(&mut buf[start + BLOCK_HEADER_LEN..start + BLOCK_HEADER_LEN + len]);
        self.len = start + BLOCK_HEADER_LEN + len;
        self.count += 1;
        buf[field::COUNT].copy_from_slice(&self.count.to_be_bytes());
        Ok(())
    }

    pub fn append(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.append_with(msg.len(), |dst| dst.copy_from_slice(msg))
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn sequence(&self) -> u64 {
        be_u64(&self.buffer.as_ref()[field::SEQUENCE])
    }

    pub fn next_sequence(&self) -> u64 {
        self.sequence() + u64::from(self.count)
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The packet built so far (header plus blocks).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.len]
    }
}

#[inline]
pub(crate) fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
pub(crate) fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_yield_whole_blocks_and_leave_a_torn_tail() {
        let buf = [0, 2, b'a', b'b', 0, 0, 0, 1, b'c', 0, 5, b'x'];
        let mut it = blocks(&buf);
        assert_eq!(it.clone().count(), 3);
        assert_eq!(it.next(), Some(&b"ab"[..]));
        assert_eq!(it.next(), Some(&b""[..]));
        assert_eq!(it.next(), Some(&b"c"[..]));
        assert_eq!(it.next(), None);
        assert_eq!(it.rest(), &[0, 5, b'x']);
        assert_eq!(blocks(&[]).rest(), &[] as &[u8]);
    }

    #[test]
    fn builder_then_view() {
        let s = Session::new("TEST").unwrap();
        let mut b = PacketBuilder::new([0u8; 64], 64, &s, 7).unwrap();
        b.append(b"hello").unwrap();
        b.append(b"").unwrap();
        b.append(b"world!").unwrap();
        // 20 + 7 + 2 + 8 = 37; another 30-byte message does not fit in 64
        assert_eq!(b.append(&[0u8; 30]), Err(Error::DoesNotFit));
        let p = Packet::new_checked(b.as_bytes()).unwrap();
        assert_eq!(p.session().as_str(), "TEST");
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.count(), 3);
        assert_eq!(p.next_sequence(), 10);
        let msgs: Vec<_> = p.messages().map(|m| m.unwrap()).collect();
        assert_eq!(msgs, vec![&b"hello"[..], b"", b"world!"]);
    }

    #[test]
    fn overrunning_count_is_an_error_not_a_panic() {
        let s = Session::new("X").unwrap();
        let mut buf = [0u8; 40];
        let mut b = PacketBuilder::new(&mut buf[..], 40, &s, 1).unwrap();
        b.append(b"abc").unwrap();
        let n = b.len();
        buf[19] = 5; // claim five messages
        let p = Packet::new_checked(&buf[..n]).unwrap();
        let items: Vec<_> = p.messages().collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Err(Error::Truncated));
        assert_eq!(p.validate(), Err(Error::Truncated));
    }

    #[test]
    fn heartbeat_and_end_of_session() {
        let s = Session::new("ABCDEFGHIJ").unwrap();
        let mut buf = [0u8; 20];
        emit_heartbeat(&mut buf, &s, 42);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.kind(), PacketKind::Heartbeat);
        assert_eq!(p.next_sequence(), 42);
        assert_eq!(p.messages().count(), 0);
        emit_end_of_session(&mut buf, &s, 42);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.kind(), PacketKind::EndOfSession);
        assert_eq!(p.next_sequence(), 42);
    }

    #[test]
    fn session_rules() {
        assert!(Session::new("ELEVENCHARS").is_err());
        assert_eq!(Session::new("").unwrap().0, [b' '; 10]);
        assert_eq!(Session::new("000010059B").unwrap().as_str(), "000010059B");
    }

    #[test]
    fn request_roundtrip() {
        let s = Session::new("S1").unwrap();
        let mut buf = [0u8; 20];
        emit_request(&mut buf, &s, 1000, 25);
        let r = Request::new_checked(&buf[..]).unwrap();
        assert_eq!((r.session(), r.sequence(), r.count()), (s, 1000, 25));
        assert!(Request::new_checked(&buf[..19]).is_err());
    }
}
