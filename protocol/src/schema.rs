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

// Body offsets per kind (absolute offsets in the record).
mod off {
    // instrument definition
    pub const SYMBOL: usize = 24;
    pub const ROUND_LOT: usize = 32;
    pub const ETP_LEVERAGE: usize = 36;
    pub const MARKET_CATEGORY: usize = 40;
    pub const FINANCIAL_STATUS: usize = 41;
    pub const ROUND_LOTS_ONLY: usize = 42;
    pub const ISSUE_CLASSIFICATION: usize = 43;
    pub const ISSUE_SUB_TYPE: usize = 44;
    pub const AUTHENTICITY: usize = 46;
    pub const SHORT_SALE_THRESHOLD: usize = 47;
    pub const IPO_FLAG: usize = 48;
    pub const LULD_TIER: usize = 49;
    pub const ETP_FLAG: usize = 50;
    pub const INVERSE: usize = 51;
    pub const DEF_SOURCE: usize = 52;
    // orders: order id first, then the rest
    pub const ORDER_ID: usize = 24;
    pub const ADD_PRICE: usize = 32;
    pub const ADD_QTY: usize = 40;
    pub const ADD_SIDE: usize = 44;
    pub const ADD_ATTRIBUTION: usize = 45;
    pub const REPL_NEW_ID: usize = 32;
    pub const REPL_PRICE: usize = 40;
    pub const REPL_QTY: usize = 48;
    pub const REPL_SIDE: usize = 52;
    pub const CANCEL_QTY: usize = 32;
    pub const CANCEL_REMAINING: usize = 36;
    pub const CANCEL_SIDE: usize = 40;
    pub const DELETE_SIDE: usize = 32;
    // executions and trades: order id, match, price, qty, side, printable
    pub const EXEC_MATCH: usize = 32;
    pub const EXEC_PRICE: usize = 40;
    pub const EXEC_QTY: usize = 48;
    pub const EXEC_SIDE: usize = 52;
    pub const EXEC_PRINTABLE: usize = 53;
    // cross trade
    pub const CROSS_MATCH: usize = 24;
    pub const CROSS_QTY: usize = 32;
    pub const CROSS_PRICE: usize = 40;
    pub const CROSS_TYPE: usize = 48;
    // broken trade
    pub const BROKEN_MATCH: usize = 24;
    // trading status
    pub const STATUS_TYPE: usize = 24;
    pub const STATUS_STATE: usize = 25;
    pub const STATUS_REASON: usize = 26;
    pub const STATUS_MARKET: usize = 30;
    // system event
    pub const SYS_SOURCE: usize = 24;
    pub const SYS_CODE: usize = 25;
    pub const SYS_LEVEL1: usize = 32;
    pub const SYS_LEVEL2: usize = 40;
    pub const SYS_LEVEL3: usize = 48;
    // imbalance (direction and cross type live in the header's aux bytes 2 and 3)
    pub const IMB_PAIRED: usize = 24;
    pub const IMB_SHARES: usize = 32;
    pub const IMB_FAR: usize = 40;
    pub const IMB_NEAR: usize = 48;
    pub const IMB_REF: usize = 56;
    // top of book
    pub const TOB_BID_PRICE: usize = 24;
    pub const TOB_BID_QTY: usize = 32;
    pub const TOB_ASK_PRICE: usize = 40;
    pub const TOB_ASK_QTY: usize = 48;
    // feed status
    pub const FS_STATUS: usize = 24;
    pub const FS_FIRST: usize = 32;
    pub const FS_LAST: usize = 40;
}

/// The record of a valid order add for sequence `seq` (ids and times from `seq`): the stream
/// tests and fuzz targets feed through the distributor.
#[doc(hidden)]
pub fn order_add_record(seq: u64) -> [u8; RECORD_SIZE] {
    let m = Repr {
        instrument: 1,
        event_ts_ns: seq,
        recv_ts_ns: seq,
        body: Body::OrderAdd(OrderAdd {
            order_id: seq,
            price: Price(100),
            quantity: 1,
            side: b'B',
            attribution: *b"    ",
        }),
    };
    let mut r = [0u8; RECORD_SIZE];
    // A record-sized buffer always fits.
    let _ = m.emit(&mut r);
    r
}

impl Repr {
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// Parses a record: checks size, version and kind first.
    pub fn parse(buf: &[u8]) -> Result<Repr, Error> {
        Ok(Message::new_checked(buf)?.repr())
    }

    /// The caller guarantees `buf` is a checked record (at least 64 bytes, known kind).
    fn parse_unchecked(b: &[u8]) -> Repr {
        let kind = Kind::from_u8(b[field::KIND]).unwrap_or(Kind::SystemEvent);
        let exec = || Execution {
            order_id: le_u64(b, off::ORDER_ID),
            match_number: le_u64(b, off::EXEC_MATCH),
            price: Price(le_i64(b, off::EXEC_PRICE)),
            quantity: le_u32(b, off::EXEC_QTY),
            side: b[off::EXEC_SIDE],
            printable: b[off::EXEC_PRINTABLE],
        };
        let body = match kind {
            Kind::InstrumentDefinition => Body::InstrumentDefinition(InstrumentDefinition {
                symbol: Symbol(arr(b, off::SYMBOL)),
                round_lot_size: le_u32(b, off::ROUND_LOT),
                etp_leverage_factor: le_u32(b, off::ETP_LEVERAGE),
                market_category: b[off::MARKET_CATEGORY],
                financial_status: b[off::FINANCIAL_STATUS],
                round_lots_only: b[off::ROUND_LOTS_ONLY],
                issue_classification: b[off::ISSUE_CLASSIFICATION],
                issue_sub_type: arr(b, off::ISSUE_SUB_TYPE),
                authenticity: b[off::AUTHENTICITY],
                short_sale_threshold: b[off::SHORT_SALE_THRESHOLD],
                ipo_flag: b[off::IPO_FLAG],
                luld_tier: b[off::LULD_TIER],
                etp_flag: b[off::ETP_FLAG],
                inverse: b[off::INVERSE],
                source_type: b[off::DEF_SOURCE],
            }),
            Kind::OrderAdd => Body::OrderAdd(OrderAdd {
                order_id: le_u64(b, off::ORDER_ID),
                price: Price(le_i64(b, off::ADD_PRICE)),
                quantity: le_u32(b, off::ADD_QTY),
                side: b[off::ADD_SIDE],
                attribution: arr(b, off::ADD_ATTRIBUTION),
            }),
            Kind::OrderReplace => Body::OrderReplace(OrderReplace {
                orig_order_id: le_u64(b, off::ORDER_ID),
                new_order_id: le_u64(b, off::REPL_NEW_ID),
                price: Price(le_i64(b, off::REPL_PRICE)),
                quantity: le_u32(b, off::REPL_QTY),
                side: b[off::REPL_SIDE],
            }),
            Kind::OrderCancel => Body::OrderCancel(OrderCancel {
                order_id: le_u64(b, off::ORDER_ID),
                cancelled_quantity: le_u32(b, off::CANCEL_QTY),
                remaining_quantity: le_u32(b, off::CANCEL_REMAINING),
                side: b[off::CANCEL_SIDE],
            }),
            Kind::OrderDelete => Body::OrderDelete(OrderDelete {
                order_id: le_u64(b, off::ORDER_ID),
                side: b[off::DELETE_SIDE],
            }),
            Kind::OrderExecuted => Body::OrderExecuted(exec()),
            Kind::OrderExecutedWithPrice => Body::OrderExecutedWithPrice(exec()),
            Kind::Trade => Body::Trade(Trade {
                order_id: le_u64(b, off::ORDER_ID),
                match_number: le_u64(b, off::EXEC_MATCH),
                price: Price(le_i64(b, off::EXEC_PRICE)),
                quantity: le_u32(b, off::EXEC_QTY),
                side: b[off::EXEC_SIDE],
            }),
            Kind::CrossTrade => Body::CrossTrade(CrossTrade {
                match_number: le_u64(b, off::CROSS_MATCH),
                quantity: le_u64(b, off::CROSS_QTY),
                price: Price(le_i64(b, off::CROSS_PRICE)),
                cross_type: b[off::CROSS_TYPE],
            }),
            Kind::BrokenTrade => Body::BrokenTrade(BrokenTrade {
                match_number: le_u64(b, off::BROKEN_MATCH),
            }),
            Kind::TradingStatus => Body::TradingStatus(TradingStatus {
                status_type: b[off::STATUS_TYPE],
                state: b[off::STATUS_STATE],
                reason: arr(b, off::STATUS_REASON),
                market_code: b[off::STATUS_MARKET],
            }),
            Kind::SystemEvent => Body::SystemEvent(SystemEvent {
                source_type: b[off::SYS_SOURCE],
                event_code: b[off::SYS_CODE],
                level1: Price(le_i64(b, off::SYS_LEVEL1)),
                level2: Price(le_i64(b, off::SYS_LEVEL2)),
                level3: Price(le_i64(b, off::SYS_LEVEL3)),
            }),
            Kind::Imbalance => Body::Imbalance(Imbalance {
                paired_shares: le_u64(b, off::IMB_PAIRED),
                imbalance_shares: le_u64(b, off::IMB_SHARES),
                direction: b[field::AUX.start],
                cross_type: b[field::AUX.start + 1],
                far_price: Price(le_i64(b, off::IMB_FAR)),
                near_price: Price(le_i64(b, off::IMB_NEAR)),
                reference_price: Price(le_i64(b, off::IMB_REF)),
            }),
            Kind::TopOfBook => Body::TopOfBook(TopOfBook {
                bid_price: Price(le_i64(b, off::TOB_BID_PRICE)),
                bid_quantity: le_u64(b, off::TOB_BID_QTY),
                ask_price: Price(le_i64(b, off::TOB_ASK_PRICE)),
                ask_quantity: le_u64(b, off::TOB_ASK_QTY),
            }),
            Kind::FeedStatus => Body::FeedStatus(FeedStatus {
                status: b[off::FS_STATUS],
                first: le_u64(b, off::FS_FIRST),
                last: le_u64(b, off::FS_LAST),
            }),
        };
        Repr {
            instrument: le_u32(b, field::INSTRUMENT.start),
            event_ts_ns: le_u64(b, field::EVENT_TS.start),
            recv_ts_ns: le_u64(b, field::RECV_TS.start),
            body,
        }
    }

    /// Writes the record into the first 64 bytes of `buf`, zeroing unused bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() < RECORD_SIZE {
            return Err(Error::DoesNotFit);
        }
        let b = &mut buf[..RECORD_SIZE];
        b.fill(0);
        b[field::VERSION] = VERSION;
        b[field::KIND] = self.kind() as u8;
        put(b, field::INSTRUMENT.start, &self.instrument.to_le_bytes());
        put(b, field::EVENT_TS.start, &self.event_ts_ns.to_le_bytes());
        put(b, field::RECV_TS.start, &self.recv_ts_ns.to_le_bytes());
        match &self.body {
            Body::InstrumentDefinition(d) => {
                put(b, off::SYMBOL, &d.symbol.0);
                put(b, off::ROUND_LOT, &d.round_lot_size.to_le_bytes());
                put(b, off::ETP_LEVERAGE, &d.etp_leverage_factor.to_le_bytes());
                b[off::MARKET_CATEGORY] = d.market_category;
                b[off::FINANCIAL_STATUS] = d.financial_status;
                b[off::ROUND_LOTS_ONLY] = d.round_lots_only;
                b[off::ISSUE_CLASSIFICATION] = d.issue_classification;
                put(b, off::ISSUE_SUB_TYPE, &d.issue_sub_type);
                b[off::AUTHENTICITY] = d.authenticity;
                b[off::SHORT_SALE_THRESHOLD] = d.short_sale_threshold;
                b[off::IPO_FLAG] = d.ipo_flag;
                b[off::LULD_TIER] = d.luld_tier;
                b[off::ETP_FLAG] = d.etp_flag;
                b[off::INVERSE] = d.inverse;
                b[off::DEF_SOURCE] = d.source_type;
            }
            Body::OrderAdd(o) => {
                put(b, off::ORDER_ID, &o.order_id.to_le_bytes());
                put(b, off::ADD_PRICE, &o.price.0.to_le_bytes());
                put(b, off::ADD_QTY, &o.quantity.to_le_bytes());
                b[off::ADD_SIDE] = o.side;
                put(b, off::ADD_ATTRIBUTION, &o.attribution);
            }
            Body::OrderReplace(o) => {
                put(b, off::ORDER_ID, &o.orig_order_id.to_le_bytes());
                put(b, off::REPL_NEW_ID, &o.new_order_id.to_le_bytes());
                put(b, off::REPL_PRICE, &o.price.0.to_le_bytes());
                put(b, off::REPL_QTY, &o.quantity.to_le_bytes());
                b[off::REPL_SIDE] = o.side;
            }
            Body::OrderCancel(o) => {
                put(b, off::ORDER_ID, &o.order_id.to_le_bytes());
                put(b, off::CANCEL_QTY, &o.cancelled_quantity.to_le_bytes());
                put(
                    b,
                    off::CANCEL_REMAINING,
                    &o.remaining_quantity.to_le_bytes(),
                );
                b[off::CANCEL_SIDE] = o.side;
            }
            Body::OrderDelete(o) => {
                put(b, off::ORDER_ID, &o.order_id.to_le_bytes());
                b[off::DELETE_SIDE] = o.side;
            }
            Body::OrderExecuted(e) | Body::OrderExecutedWithPrice(e) => {
                put(b, off::ORDER_ID, &e.order_id.to_le_bytes());
                put(b, off::EXEC_MATCH, &e.match_number.to_le_bytes());
                put(b, off::EXEC_PRICE, &e.price.0.to_le_bytes());
                put(b, off::EXEC_QTY, &e.quantity.to_le_bytes());
                b[off::EXEC_SIDE] = e.side;
                b[off::EXEC_PRINTABLE] = e.printable;
            }
            Body::Trade(t) => {
                put(b, off::ORDER_ID, &t.order_id.to_le_bytes());
                put(b, off::EXEC_MATCH, &t.match_number.to_le_bytes());
                put(b, off::EXEC_PRICE, &t.price.0.to_le_bytes());
                put(b, off::EXEC_QTY, &t.quantity.to_le_bytes());
                b[off::EXEC_SIDE] = t.side;
            }
            Body::CrossTrade(c) => {
                put(b, off::CROSS_MATCH, &c.match_number.to_le_bytes());
                put(b, off::CROSS_QTY, &c.quantity.to_le_bytes());
                put(b, off::CROSS_PRICE, &c.price.0.to_le_bytes());
                b[off::CROSS_TYPE] = c.cross_type;
            }
            Body::BrokenTrade(t) => put(b, off::BROKEN_MATCH, &t.match_number.to_le_bytes()),
            Body::TradingStatus(s) => {
                b[off::STATUS_TYPE] = s.status_type;
                b[off::STATUS_STATE] = s.state;
                put(b, off::STATUS_REASON, &s.reason);
                b[off::STATUS_MARKET] = s.market_code;
            }
            Body::SystemEvent(s) => {
                b[off::SYS_SOURCE] = s.source_type;
                b[off::SYS_CODE] = s.event_code;
                put(b, off::SYS_LEVEL1, &s.level1.0.to_le_bytes());
                put(b, off::SYS_LEVEL2, &s.level2.0.to_le_bytes());
                put(b, off::SYS_LEVEL3, &s.level3.0.to_le_bytes());
            }
            Body::Imbalance(i) => {
                b[field::AUX.start] = i.direction;
                b[field::AUX.start + 1] = i.cross_type;
                put(b, off::IMB_PAIRED, &i.paired_shares.to_le_bytes());
                put(b, off::IMB_SHARES, &i.imbalance_shares.to_le_bytes());
                put(b, off::IMB_FAR, &i.far_price.0.to_le_bytes());
                put(b, off::IMB_NEAR, &i.near_price.0.to_le_bytes());
                put(b, off::IMB_REF, &i.reference_price.0.to_le_bytes());
            }
            Body::TopOfBook(t) => {
                put(b, off::TOB_BID_PRICE, &t.bid_price.0.to_le_bytes());
                put(b, off::TOB_BID_QTY, &t.bid_quantity.to_le_bytes());
                put(b, off::TOB_ASK_PRICE, &t.ask_price.0.to_le_bytes());
                put(b, off::TOB_ASK_QTY, &t.ask_quantity.to_le_bytes());
            }
            Body::FeedStatus(f) => {
                b[off::FS_STATUS] = f.status;
                put(b, off::FS_FIRST, &f.first.to_le_bytes());
                put(b, off::FS_LAST, &f.last.to_le_bytes());
            }
        }
        Ok(())
    }
}

#[inline]
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

#[inline]
fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

#[inline]
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(b, at))
}

#[inline]
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(arr(b, at))
}

#[inline]
fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(arr(b, at))
}

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
