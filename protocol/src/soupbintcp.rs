//! SoupBinTCP 3.0 framing: `[u16 BE length][type][payload]`, the length counting the type byte
//! and the payload. TCP splits and merges packets, so a reader finds frames with [`split_frame`]
//! and keeps the rest for the next read.
//!
//! Views follow the MoldUDP64 module: [`Frame::new_checked`] validates the length once, after
//! which no accessor panics. [`ClientRepr`] and [`ServerRepr`] parse and emit each packet type.

use crate::moldudp64::{Session, SESSION_LEN};
use crate::Error;

/// Byte ranges of a frame and of the login payload.
pub mod field {
    use core::ops::Range;
    pub const LENGTH: Range<usize> = 0..2;
    pub const TYPE: usize = 2;
    pub const PAYLOAD: usize = 3;
    // Login request payload.
    pub const USERNAME: Range<usize> = 0..6;
    pub const PASSWORD: Range<usize> = 6..16;
    pub const SESSION: Range<usize> = 16..26;
    pub const SEQUENCE: Range<usize> = 26..46;
    // Login accepted payload.
    pub const ACCEPTED_SESSION: Range<usize> = 0..10;
    pub const ACCEPTED_SEQUENCE: Range<usize> = 10..30;
}

/// Packet types.
pub mod kind {
    pub const LOGIN: u8 = b'L';
    pub const ACCEPTED: u8 = b'A';
    pub const REJECTED: u8 = b'J';
    pub const SEQUENCED: u8 = b'S';
    pub const UNSEQUENCED: u8 = b'U';
    pub const SERVER_HEARTBEAT: u8 = b'H';
    pub const CLIENT_HEARTBEAT: u8 = b'R';
    pub const END_OF_SESSION: u8 = b'Z';
    pub const LOGOUT: u8 = b'O';
    pub const DEBUG: u8 = b'+';
}

/// Length prefix and type byte.
pub const HEADER_LEN: usize = 3;
pub const LOGIN_PAYLOAD_LEN: usize = 46;
pub const ACCEPTED_PAYLOAD_LEN: usize = 30;
/// The longest frame a client sends in this protocol (a login); anything longer is refused.
pub const MAX_CLIENT_FRAME: usize = HEADER_LEN + LOGIN_PAYLOAD_LEN;
/// One `S` packet carrying one schema v1 record.
pub const SEQUENCED_RECORD_FRAME: usize = HEADER_LEN + crate::schema::RECORD_SIZE;

/// A view of one complete frame (`buffer` is exactly the frame).
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that `buffer` holds a type byte and exactly the declared length.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, Error> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let declared = u16::from_be_bytes([b[0], b[1]]) as usize;
        if declared == 0 || declared + 2 != b.len() {
            return Err(Error::BadLength);
        }
        Ok(Frame { buffer })
    }

    pub fn packet_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A complete frame and the bytes it takes, or `None` when more bytes are needed.
pub type Split<'a> = Option<(Frame<&'a [u8]>, usize)>;

/// The first complete frame of `buf` and the bytes it takes; `Ok(None)` until all of it has
/// arrived. `max` bounds the declared length (type + payload) so a reader never waits for, or
/// buffers, more than the protocol allows; a zero length (no type byte) is an error too.
pub fn split_frame(buf: &[u8], max: usize) -> Result<Split<'_>, Error> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let declared = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    if declared == 0 || declared > max {
        return Err(Error::BadLength);
    }
    let total = declared + 2;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((Frame::new_checked(&buf[..total])?, total)))
}

/// Why a login was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    NotAuthorized,
    SessionUnavailable,
}

impl RejectReason {
    pub fn code(self) -> u8 {
        match self {
            RejectReason::NotAuthorized => b'A',
            RejectReason::SessionUnavailable => b'S',
        }
    }
}

/// What a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRepr<'a> {
    Login {
        username: [u8; 6],
        password: [u8; 10],
        /// All spaces: any (the current) session.
        session: Session,
        /// 0: start with the next message.
        sequence: u64,
    },
    Heartbeat,
    Logout,
    Unsequenced(&'a [u8]),
    Debug(&'a [u8]),
}

/// What the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRepr<'a> {
    Accepted { session: Session, sequence: u64 },
    Rejected(RejectReason),
    Sequenced(&'a [u8]),
    Heartbeat,
    EndOfSession,
    Debug(&'a [u8]),
}

/// Reads a right-justified, space-padded ASCII number (spaces on either side tolerated; all
/// spaces is 0).
pub fn parse_number(field: &[u8]) -> Result<u64, Error> {
    let digits = field.trim_ascii();
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(Error::BadNumber);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(Error::BadNumber)?;
    }
    Ok(n)
}

/// Writes `n` right-justified, padded with spaces on the left (20 digits hold every u64).
fn emit_number(n: u64, out: &mut [u8]) {
    out.fill(b' ');
    let mut n = n;
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
}

fn fixed<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [b' '; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Pads `s` with spaces to `N` bytes; longer is an error.
pub fn pad<const N: usize>(s: &str) -> Result<[u8; N], Error> {
    let b = s.as_bytes();
    if b.len() > N {
        return Err(Error::DoesNotFit);
    }
    let mut a = [b' '; N];
    a[..b.len()].copy_from_slice(b);
    Ok(a)
}

fn expect_len(payload: &[u8], n: usize) -> Result<(), Error> {
    if payload.len() == n {
        Ok(())
    } else {
        Err(Error::BadLength)
    }
}

/// Writes the header and `payload_len` bytes by `fill`; returns the frame length.
fn emit_frame(
    out: &mut [u8],
    ty: u8,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize, Error> {
    let total = HEADER_LEN + payload_len;
    if out.len() < total || payload_len + 1 > u16::MAX as usize {
        return Err(Error::DoesNotFit);
    }
    out[field::LENGTH].copy_from_slice(&((payload_len + 1) as u16).to_be_bytes());
    out[field::TYPE] = ty;
    fill(&mut out[HEADER_LEN..total]);
    Ok(total)
}

impl<'a> ClientRepr<'a> {
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<ClientRepr<'a>, Error> {
        let p: &'a [u8] = &frame.buffer[field::PAYLOAD..];
        match frame.packet_type() {
            kind::LOGIN => {
                expect_len(p, LOGIN_PAYLOAD_LEN)?;
                Ok(ClientRepr::Login {
                    username: fixed(&p[field::USERNAME]),
                    password: fixed(&p[field::PASSWORD]),
                    session: Session(fixed(&p[field::SESSION])),
                    sequence: parse_number(&p[field::SEQUENCE])?,
                })
            }
            kind::CLIENT_HEARTBEAT => expect_len(p, 0).map(|_| ClientRepr::Heartbeat),
            kind::LOGOUT => expect_len(p, 0).map(|_| ClientRepr::Logout),
            kind::UNSEQUENCED => Ok(ClientRepr::Unsequenced(p)),
            kind::DEBUG => Ok(ClientRepr::Debug(p)),
            t => Err(Error::UnknownType(t)),
        }
    }

    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        match *self {
            ClientRepr::Login {
                username,
                password,
                session,
                sequence,
            } => emit_frame(out, kind::LOGIN, LOGIN_PAYLOAD_LEN, |p| {
                p[field::USERNAME].copy_from_slice(&username);
                p[field::PASSWORD].copy_from_slice(&password);
                p[field::SESSION].copy_from_slice(&session.0);
                emit_number(sequence, &mut p[field::SEQUENCE]);
            }),
            ClientRepr::Heartbeat => emit_frame(out, kind::CLIENT_HEARTBEAT, 0, |_| {}),
            ClientRepr::Logout => emit_frame(out, kind::LOGOUT, 0, |_| {}),
            ClientRepr::Unsequenced(d) => {
                emit_frame(out, kind::UNSEQUENCED, d.len(), |p| p.copy_from_slice(d))
            }
            ClientRepr::Debug(d) => emit_frame(out, kind::DEBUG, d.len(), |p| p.copy_from_slice(d)),
        }
    }
}

impl<'a> ServerRepr<'a> {
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<ServerRepr<'a>, Error> {
        let p: &'a [u8] = &frame.buffer[field::PAYLOAD..];
        match frame.packet_type() {
            kind::ACCEPTED => {
                expect_len(p, ACCEPTED_PAYLOAD_LEN)?;
                Ok(ServerRepr::Accepted {
                    session: Session(fixed::<SESSION_LEN>(&p[field::ACCEPTED_SESSION])),
                    sequence: parse_number(&p[field::ACCEPTED_SEQUENCE])?,
                })
            }
            kind::REJECTED => {
                expect_len(p, 1)?;
                match p[0] {
                    b'A' => Ok(ServerRepr::Rejected(RejectReason::NotAuthorized)),
                    b'S' => Ok(ServerRepr::Rejected(RejectReason::SessionUnavailable)),
                    _ => Err(Error::BadNumber),
                }
            }
            kind::SEQUENCED => Ok(ServerRepr::Sequenced(p)),
            kind::SERVER_HEARTBEAT => expect_len(p, 0).map(|_| ServerRepr::Heartbeat),
            kind::END_OF_SESSION => expect_len(p, 0).map(|_| ServerRepr::EndOfSession),
            kind::DEBUG => Ok(ServerRepr::Debug(p)),
            t => Err(Error::UnknownType(t)),
        }
    }

    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        match *self {
            ServerRepr::Accepted { session, sequence } => {
                emit_frame(out, kind::ACCEPTED, ACCEPTED_PAYLOAD_LEN, |p| {
                    p[field::ACCEPTED_SESSION].copy_from_slice(&session.0);
                    emit_number(sequence, &mut p[field::ACCEPTED_SEQUENCE]);
                })
            }
            ServerRepr::Rejected(r) => emit_frame(out, kind::REJECTED, 1, |p| p[0] = r.code()),
            ServerRepr::Sequenced(d) => {
                emit_frame(out, kind::SEQUENCED, d.len(), |p| p.copy_from_slice(d))
            }
            ServerRepr::Heartbeat => emit_frame(out, kind::SERVER_HEARTBEAT, 0, |_| {}),
            ServerRepr::EndOfSession => emit_frame(out, kind::END_OF_SESSION, 0, |_| {}),
            ServerRepr::Debug(d) => emit_frame(out, kind::DEBUG, d.len(), |p| p.copy_from_slice(d)),
        }
    }
}

/// The 3-byte header of an `S` packet holding one schema v1 record.
pub const SEQUENCED_RECORD_HEADER: [u8; HEADER_LEN] =
    [0, (crate::schema::RECORD_SIZE + 1) as u8, kind::SEQUENCED];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn login_bytes_are_the_spec_layout() {
        let login = ClientRepr::Login {
            username: *b"alice ",
            password: *b"secret    ",
            session: Session::new("TC00000001").unwrap(),
            sequence: 42,
        };
        let mut buf = [0u8; 64];
        let n = login.emit(&mut buf).unwrap();
        assert_eq!(n, 49);
        let mut want = vec![0u8, 47, b'L'];
        want.extend_from_slice(b"alice secret    TC00000001");
        want.extend_from_slice(b"                  42");
        assert_eq!(&buf[..n], &want[..]);
        let (f, used) = split_frame(&buf[..n], MAX_CLIENT_FRAME).unwrap().unwrap();
        assert_eq!(used, n);
        assert_eq!(ClientRepr::parse(&f).unwrap(), login);
    }

    #[test]
    fn accepted_and_sequenced_round_trip() {
        let mut buf = [0u8; 128];
        let a = ServerRepr::Accepted {
            session: Session::new("S1").unwrap(),
            sequence: u64::MAX,
        };
        let n = a.emit(&mut buf).unwrap();
        assert_eq!(&buf[3..13], b"S1        ");
        assert_eq!(&buf[13..33], b"18446744073709551615");
        let f = Frame::new_checked(&buf[..n]).unwrap();
        assert_eq!(ServerRepr::parse(&f).unwrap(), a);
        let rec = [7u8; 64];
        let n = ServerRepr::Sequenced(&rec).emit(&mut buf).unwrap();
        assert_eq!(n, SEQUENCED_RECORD_FRAME);
        assert_eq!(buf[..3], SEQUENCED_RECORD_HEADER);
    }

    #[test]
    fn partial_and_bad_frames() {
        assert_eq!(split_frame(&[0], 100).unwrap().map(|x| x.1), None);
        assert_eq!(split_frame(&[0, 2, b'R'], 100).unwrap().map(|x| x.1), None);
        assert_eq!(
            split_frame(&[0, 0, b'R'], 100).err(),
            Some(Error::BadLength)
        );
        assert_eq!(split_frame(&[1, 0], 100).err(), Some(Error::BadLength));
        let f = Frame::new_checked(&[0u8, 1, b'Q'][..]).unwrap();
        assert_eq!(ClientRepr::parse(&f).err(), Some(Error::UnknownType(b'Q')));
        let f = Frame::new_checked(&[0u8, 2, b'R', 0][..]).unwrap();
        assert_eq!(ClientRepr::parse(&f).err(), Some(Error::BadLength));
        assert_eq!(parse_number(b"   "), Ok(0));
        assert_eq!(parse_number(b" 1 2"), Err(Error::BadNumber));
        assert_eq!(parse_number(b"99999999999999999999"), Err(Error::BadNumber));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut rest = &bytes[..];
            while let Ok(Some((f, used))) = split_frame(rest, 1000) {
                let _ = ClientRepr::parse(&f);
                let _ = ServerRepr::parse(&f);
                rest = &rest[used..];
            }
        }

        #[test]
        fn login_round_trips(seq in any::<u64>(), user in "[a-z]{0,6}", pw in "[a-z0-9]{0,10}") {
            let l = ClientRepr::Login {
                username: pad(&user).unwrap(),
                password: pad(&pw).unwrap(),
                session: Session::new("X").unwrap(),
                sequence: seq,
            };
            let mut buf = [0u8; 64];
            let n = l.emit(&mut buf).unwrap();
            let (f, _) = split_frame(&buf[..n], MAX_CLIENT_FRAME).unwrap().unwrap();
            prop_assert_eq!(ClientRepr::parse(&f).unwrap(), l);
        }
    }
}
