//! Records ↔ `Repr`: every kind's body offsets, `Repr::parse` and `Repr::emit`, and the
//! little-endian field helpers the views share.

use super::*;

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
    pub(super) fn parse_unchecked(b: &[u8]) -> Repr {
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
pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(b, at))
}

#[inline]
pub(super) fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(arr(b, at))
}

#[inline]
fn le_i64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(arr(b, at))
}
