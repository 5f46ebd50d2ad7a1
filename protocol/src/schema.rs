//! tickcast's normalized message schema, version 1.
//!
//! Every message is one fixed 64-byte little-endian record (equal sizes keep datagrams uniform,
//! which later allows UDP GSO): a 24-byte header and a 40-byte body whose layout depends on the
//! kind. `docs/PROTOCOL.md` documents every byte; the tests hold the two in agreement.

use crate::Error;
use core::fmt;

/// Schema version carried in byte 0 of every record.
pub const VERSION: u8 = 1;
/// Size of every record, all kinds.
pub const RECORD_SIZE: usize = 64;
pub const HEADER_SIZE: usize = 24;
/// Prices are `i64` with 8 implied decimals (ITCH's 4-decimal prices and 8-decimal MWCB levels
/// both convert exactly).
pub const PRICE_SCALE: i64 = 100_000_000;

/// Header byte ranges, shared by all kinds.
pub mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const KIND: usize = 1;
    pub const AUX: Range<usize> = 2..4;
    pub const INSTRUMENT: Range<usize> = 4..8;
    pub const EVENT_TS: Range<usize> = 8..16;
    pub const RECV_TS: Range<usize> = 16..24;
    pub const BODY: usize = 24;
}

/// Message kinds of schema v1; the value is the kind byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    InstrumentDefinition = 1,
    OrderAdd = 2,
    OrderReplace = 3,
    OrderCancel = 4,
    OrderDelete = 5,
    OrderExecuted = 6,
    OrderExecutedWithPrice = 7,
    Trade = 8,
    CrossTrade = 9,
    BrokenTrade = 10,
    TradingStatus = 11,
    SystemEvent = 12,
    Imbalance = 13,
    TopOfBook = 14,
    FeedStatus = 15,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::InstrumentDefinition,
        Kind::OrderAdd,
        Kind::OrderReplace,
        Kind::OrderCancel,
        Kind::OrderDelete,
        Kind::OrderExecuted,
        Kind::OrderExecutedWithPrice,
        Kind::Trade,
        Kind::CrossTrade,
        Kind::BrokenTrade,
        Kind::TradingStatus,
        Kind::SystemEvent,
        Kind::Imbalance,
        Kind::TopOfBook,
        Kind::FeedStatus,
    ];

    pub fn from_u8(v: u8) -> Option<Kind> {
        Kind::ALL.get((v as usize).wrapping_sub(1)).copied()
    }

    /// The name used in JSON output and documentation.
    pub fn name(self) -> &'static str {
        match self {
            Kind::InstrumentDefinition => "instrument_definition",
            Kind::OrderAdd => "order_add",
            Kind::OrderReplace => "order_replace",
            Kind::OrderCancel => "order_cancel",
            Kind::OrderDelete => "order_delete",
            Kind::OrderExecuted => "order_executed",
            Kind::OrderExecutedWithPrice => "order_executed_with_price",
            Kind::Trade => "trade",
            Kind::CrossTrade => "cross_trade",
            Kind::BrokenTrade => "broken_trade",
            Kind::TradingStatus => "trading_status",
            Kind::SystemEvent => "system_event",
            Kind::Imbalance => "imbalance",
            Kind::TopOfBook => "top_of_book",
            Kind::FeedStatus => "feed_status",
        }
    }

    /// Whether the kind is a trade print (what `content = "trades"` groups carry).
    pub fn is_trade(self) -> bool {
        matches!(
            self,
            Kind::OrderExecuted
                | Kind::OrderExecutedWithPrice
                | Kind::Trade
                | Kind::CrossTrade
                | Kind::BrokenTrade
        )
    }
}

/// A fixed-point price: `i64` units of 10^-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

impl Price {
    /// From a 4-implied-decimal price (ITCH `P4`).
    pub const fn from_p4(v: u32) -> Price {
        Price(v as i64 * 10_000)
    }

    /// From an 8-implied-decimal price (ITCH `P8`), saturating at `i64::MAX`.
    pub const fn from_p8(v: u64) -> Price {
        if v > i64::MAX as u64 {
            Price(i64::MAX)
        } else {
            Price(v as i64)
        }
    }
}

/// Decimal rendering with at least 4 decimals, more only when the value needs them.
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0 as i128;
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        let int = a / PRICE_SCALE as u128;
        let frac = a % PRICE_SCALE as u128;
        if frac.is_multiple_of(10_000) {
            write!(f, "{sign}{int}.{:04}", frac / 10_000)
        } else {
            let mut digits = 8;
            let mut fr = frac;
            while fr.is_multiple_of(10) {
                fr /= 10;
                digits -= 1;
            }
            write!(f, "{sign}{int}.{fr:0digits$}")
        }
    }
}

/// An 8-byte ASCII symbol, space padded (ITCH's `Stock` field).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Symbol(pub [u8; 8]);

impl Symbol {
    pub fn new(s: &str) -> Symbol {
        let mut b = [b' '; 8];
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        Symbol(b)
    }

    /// Trimmed text; bytes that are not UTF-8 give "?".
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0)
            .map(|s| s.trim_end_matches([' ', '\0']))
            .unwrap_or("?")
    }

    pub fn is_blank(&self) -> bool {
        self.0.iter().all(|&b| b == b' ' || b == 0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const SIDE_BUY: u8 = b'B';
pub const SIDE_SELL: u8 = b'S';
/// Side not known (e.g. an execution of an order the book never saw).
pub const SIDE_UNKNOWN: u8 = b' ';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstrumentDefinition {
    pub symbol: Symbol,
    pub round_lot_size: u32,
    pub etp_leverage_factor: u32,
    pub market_category: u8,
    pub financial_status: u8,
    pub round_lots_only: u8,
    pub issue_classification: u8,
    pub issue_sub_type: [u8; 2],
    pub authenticity: u8,
    pub short_sale_threshold: u8,
    pub ipo_flag: u8,
    pub luld_tier: u8,
    pub etp_flag: u8,
    pub inverse: u8,
    /// ITCH type the definition came from: `R` (directory) or the message whose symbol field
    /// revealed the instrument when the directory was missed (`A`, `F`, `P`, `Q`, ...).
    pub source_type: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderAdd {
    pub order_id: u64,
    pub price: Price,
    pub quantity: u32,
    pub side: u8,
    /// MPID, spaces when not attributed.
    pub attribution: [u8; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderReplace {
    pub orig_order_id: u64,
    pub new_order_id: u64,
    pub price: Price,
    pub quantity: u32,
    pub side: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderCancel {
    pub order_id: u64,
    pub cancelled_quantity: u32,
    /// Quantity left on the order after the cancel, from the feed handler's book.
    pub remaining_quantity: u32,
    pub side: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderDelete {
    pub order_id: u64,
    pub side: u8,
}

/// Kinds `OrderExecuted` (price = the resting order's price from the book) and
/// `OrderExecutedWithPrice` (price from the exchange) share this layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Execution {
    pub order_id: u64,
    pub match_number: u64,
    pub price: Price,
    pub quantity: u32,
    pub side: u8,
    /// `Y`/`N`; always `Y` for `OrderExecuted`.
    pub printable: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trade {
    /// 0 for non-displayed orders.
    pub order_id: u64,
    pub match_number: u64,
    pub price: Price,
    pub quantity: u32,
    pub side: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrossTrade {
    pub match_number: u64,
    pub quantity: u64,
    pub price: Price,
    pub cross_type: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokenTrade {
    pub match_number: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TradingStatus {
    /// `H` trading action, `Y` Reg SHO, `h` operational halt.
    pub status_type: u8,
    /// `H` trading state, `Y` Reg SHO action, `h` halt action.
    pub state: u8,
    pub reason: [u8; 4],
    /// `h` market code; space otherwise.
    pub market_code: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemEvent {
    /// `S` system event, `V` MWCB decline levels, `W` MWCB breach.
    pub source_type: u8,
    /// `S` event code, `W` breached level; space for `V`.
    pub event_code: u8,
    pub level1: Price,
    pub level2: Price,
    pub level3: Price,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Imbalance {
    pub paired_shares: u64,
    pub imbalance_shares: u64,
    pub direction: u8,
    pub cross_type: u8,
    pub far_price: Price,
    pub near_price: Price,
    pub reference_price: Price,
}

/// A derived best bid and offer; price 0 and quantity 0 mean the side is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopOfBook {
    pub bid_price: Price,
    pub bid_quantity: u64,
    pub ask_price: Price,
    pub ask_quantity: u64,
}

/// What the feed handler says about its exchange feed (not an exchange event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedStatus {
    /// `L`: upstream messages `first..=last` were lost for good (neither feed A nor B nor the
    /// exchange's re-request server delivered them in time); what they would have said is
    /// missing from every group.
    pub status: u8,
    /// First and last upstream (exchange) MoldUDP64 sequence number concerned.
    pub first: u64,
    pub last: u64,
}

impl FeedStatus {
    pub const LOST: u8 = b'L';
}

/// The body of one message, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    InstrumentDefinition(InstrumentDefinition),
    OrderAdd(OrderAdd),
    OrderReplace(OrderReplace),
    OrderCancel(OrderCancel),
    OrderDelete(OrderDelete),
    OrderExecuted(Execution),
    OrderExecutedWithPrice(Execution),
    Trade(Trade),
    CrossTrade(CrossTrade),
    BrokenTrade(BrokenTrade),
    TradingStatus(TradingStatus),
    SystemEvent(SystemEvent),
    Imbalance(Imbalance),
    TopOfBook(TopOfBook),
    FeedStatus(FeedStatus),
}

impl Body {
    pub fn kind(&self) -> Kind {
        match self {
            Body::InstrumentDefinition(_) => Kind::InstrumentDefinition,
            Body::OrderAdd(_) => Kind::OrderAdd,
            Body::OrderReplace(_) => Kind::OrderReplace,
            Body::OrderCancel(_) => Kind::OrderCancel,
            Body::OrderDelete(_) => Kind::OrderDelete,
            Body::OrderExecuted(_) => Kind::OrderExecuted,
            Body::OrderExecutedWithPrice(_) => Kind::OrderExecutedWithPrice,
            Body::Trade(_) => Kind::Trade,
            Body::CrossTrade(_) => Kind::CrossTrade,
            Body::BrokenTrade(_) => Kind::BrokenTrade,
            Body::TradingStatus(_) => Kind::TradingStatus,
            Body::SystemEvent(_) => Kind::SystemEvent,
            Body::Imbalance(_) => Kind::Imbalance,
            Body::TopOfBook(_) => Kind::TopOfBook,
            Body::FeedStatus(_) => Kind::FeedStatus,
        }
    }
}

/// One normalized message as plain values: `parse` reads it from a record, `emit` writes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub instrument: u32,
    /// Exchange event time, ns since the Unix epoch.
    pub event_ts_ns: u64,
    /// Feed handler receive time, ns since the Unix epoch.
    pub recv_ts_ns: u64,
    pub body: Body,
}

/// A read-only view of one record; `new_checked` validates size, version and kind.
#[derive(Debug, Clone, Copy)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    pub fn new_checked(buffer: T) -> Result<Message<T>, Error> {
        let b = buffer.as_ref();
        if b.len() < RECORD_SIZE {
            return Err(Error::Truncated);
        }
        if b.len() > RECORD_SIZE {
            return Err(Error::BadLength);
        }
        if b[field::VERSION] != VERSION {
            return Err(Error::BadVersion(b[field::VERSION]));
        }
        if Kind::from_u8(b[field::KIND]).is_none() {
            return Err(Error::UnknownKind(b[field::KIND]));
        }
        Ok(Message { buffer })
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    pub fn kind(&self) -> Kind {
        // Checked in new_checked.
        Kind::from_u8(self.buffer.as_ref()[field::KIND]).unwrap_or(Kind::SystemEvent)
    }

    pub fn instrument(&self) -> u32 {
        le_u32(self.buffer.as_ref(), field::INSTRUMENT.start)
    }

    pub fn event_ts_ns(&self) -> u64 {
        le_u64(self.buffer.as_ref(), field::EVENT_TS.start)
    }

    pub fn recv_ts_ns(&self) -> u64 {
        le_u64(self.buffer.as_ref(), field::RECV_TS.start)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Reads every field into a `Repr` (a stack value; nothing is allocated).
    pub fn repr(&self) -> Repr {
        Repr::parse_unchecked(self.buffer.as_ref())
    }
}

mod codec;
pub use codec::order_add_record;
use codec::{le_u32, le_u64};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_display() {
        assert_eq!(Price::from_p4(873900).to_string(), "87.3900");
        assert_eq!(Price::from_p4(0).to_string(), "0.0000");
        assert_eq!(Price(123_456_789).to_string(), "1.23456789");
        assert_eq!(Price(-150_000_000).to_string(), "-1.5000");
        assert_eq!(Price(i64::MIN).to_string(), "-92233720368.54775808");
    }

    #[test]
    fn kind_codes_are_dense() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as u8 as usize, i + 1);
            assert_eq!(Kind::from_u8(*k as u8), Some(*k));
        }
        assert_eq!(Kind::from_u8(0), None);
        assert_eq!(Kind::from_u8(16), None);
    }

    #[test]
    fn bad_records_are_errors() {
        let mut buf = [0u8; RECORD_SIZE];
        assert_eq!(Repr::parse(&buf).unwrap_err(), Error::BadVersion(0));
        buf[0] = VERSION;
        buf[1] = 99;
        assert_eq!(Repr::parse(&buf).unwrap_err(), Error::UnknownKind(99));
        assert_eq!(Repr::parse(&buf[..10]).unwrap_err(), Error::Truncated);
    }
}
