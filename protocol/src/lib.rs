//! tickcast wire formats, and nothing else: MoldUDP64 framing (packet and request views, a
//! builder under a payload cap), SoupBinTCP 3.0 framing, and the normalized message schema v1
//! (fixed 64-byte records).
//! No I/O, no allocation, no `unsafe`.
#![deny(unsafe_code)]

pub mod json;
pub mod moldudp64;
pub mod schema;
pub mod soupbintcp;

pub use moldudp64::{Packet, PacketBuilder, PacketKind, Request, Session};
pub use schema::{Body, Kind, Message, Price, Repr, Symbol};

/// Why bytes could not be read or written as a tickcast wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated: fewer bytes than the format requires")]
    Truncated,
    #[error("length disagrees with the format")]
    BadLength,
    #[error("does not fit in the buffer or payload cap")]
    DoesNotFit,
    #[error("session name must be at most 10 printable ASCII bytes")]
    BadSession,
    #[error("unsupported schema version {0}")]
    BadVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("not an ASCII number")]
    BadNumber,
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
}
