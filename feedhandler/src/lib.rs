//! tickcast's feed handler: exchange bytes in, normalized ticks out.
//!
//! Sources (live multicast, pcap/pcapng, BinaryFILE, a synthetic generator) yield frames; the
//! ITCH 5.0 decoder reads messages by byte views; the normalizer maps them to the protocol
//! crate's schema and keeps books for top-of-book; the upstream receiver (`net`'s sequenced-stream
//! receiver) arbitrates the exchange's feeds A and B, re-requests holes and releases messages
//! strictly in exchange sequence order. It knows nothing of tickcast's groups, addresses or output sockets.
#![deny(unsafe_code)]

pub mod book;
pub mod clock;
pub mod itch;
pub mod normalize;
pub mod order_table;
pub mod stats;

pub use clock::SessionClock;
pub use normalize::Normalizer;
pub use stats::DecodeStats;
pub mod feed;
pub mod generator;
pub mod source;
pub mod upstream;

pub use feed::FeedHandler;
pub mod replay;
pub use net::now_ns;
