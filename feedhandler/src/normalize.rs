//! ITCH 5.0 to tickcast's normalized schema: instrument ids from stock locate, symbols from `R`
//! (or from the symbol field of other messages when `R` was missed), prices to fixed point, times
//! to epoch ns, and a book per instrument for the derived top-of-book quote.

use crate::book::{Order, OrderBooks};
use crate::clock::SessionClock;
use crate::itch::{self, ItchError, Message as Itch};
use crate::stats::DecodeStats;
use protocol::schema::*;

#[derive(Debug, Clone, Copy, Default)]
struct Instrument {
    symbol: Symbol,
    defined: bool,
}

/// Turns ITCH messages into normalized messages, passed one at a time to a sink.
pub struct Normalizer {
    clock: SessionClock,
    instruments: Vec<Instrument>,
    books: OrderBooks,
    pub stats: DecodeStats,
}

impl Normalizer {
    pub fn new(clock: SessionClock) -> Normalizer {
        Normalizer {
            clock,
            instruments: vec![Instrument::default(); 1 << 14],
            books: OrderBooks::with_capacity(1 << 16),
            stats: DecodeStats::default(),
        }
    }

    /// Allocates now what would otherwise grow during the session, so no message waits for
    /// it: for a long-running feed, called before the first frame.
    pub fn reserve_for_session(&mut self) {
        self.books.reserve_for_session();
    }

    pub fn clock(&self) -> &SessionClock {
        &self.clock
    }

    pub fn set_clock(&mut self, clock: SessionClock) {
        self.clock = clock;
    }

    pub fn books(&self) -> &OrderBooks {
        &self.books
    }

    /// The symbol of an instrument, once known.
    pub fn symbol(&self, instrument: u32) -> Option<Symbol> {
        self.instruments
            .get(instrument as usize)
            .filter(|i| i.defined)
            .map(|i| i.symbol)
    }

    /// Prefetches, ahead of handling them, what a datagram's raw ITCH messages will read: first
    /// the live order each `E C X D U` acts on, then (in a second pass, the orders in cache by
    /// then) the price levels it will search. Misses started back to back overlap, where
    /// handling message by message waits for each in turn.
    #[inline]
    pub fn touch_all<'a>(&self, messages: impl Iterator<Item = &'a [u8]> + Clone) {
        for levels in [false, true] {
            for m in messages.clone() {
                self.touch(m, levels);
            }
        }
    }

    #[inline]
    fn touch(&self, raw: &[u8], levels: bool) {
        if let (Some(b'E' | b'C' | b'X' | b'D' | b'U'), Some(r)) = (raw.first(), raw.get(11..19)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(r);
            let r = u64::from_be_bytes(b);
            if levels {
                self.books().touch_levels(r);
            } else {
                self.books().touch(r);
            }
        }
    }

    /// Decodes and normalizes one raw ITCH message; errors are counted and returned.
    #[inline]
    pub fn on_raw(
        &mut self,
        raw: &[u8],
        recv_ts_ns: u64,
        out: &mut impl FnMut(&Repr),
    ) -> Result<(), ItchError> {
        match itch::decode(raw) {
            Ok(m) => {
                self.on_message(&m, recv_ts_ns, out);
                Ok(())
            }
            Err(e) => {
                self.stats.count_error(&e);
                Err(e)
            }
        }
    }

    fn instrument(&mut self, locate: u16) -> &mut Instrument {
        // 65 536 locates at most: the table grows at most once, never per message.
        let i = locate as usize;
        if i >= self.instruments.len() {
            self.instruments
                .resize(u16::MAX as usize + 1, Instrument::default());
        }
        &mut self.instruments[i]
    }

    /// Normalizes one decoded message.
    pub fn on_message(&mut self, m: &Itch<'_>, recv_ts_ns: u64, out: &mut impl FnMut(&Repr)) {
        self.stats.messages += 1;
        self.stats.by_source_type[m.type_byte() as usize] += 1;
        let locate = m.stock_locate();
        let instrument = u32::from(locate);
        let event_ts_ns = self.clock.to_epoch_ns(m.timestamp());
        let repr = |body: Body| Repr {
            instrument,
            event_ts_ns,
            recv_ts_ns,
            body,
        };

        // Learn the instrument from R, or from a symbol field when R was missed.
        if let Itch::StockDirectory(r) = m {
            let def = InstrumentDefinition {
                symbol: r.stock(),
                round_lot_size: r.round_lot_size(),
                etp_leverage_factor: r.etp_leverage_factor(),
                market_category: r.market_category(),
                financial_status: r.financial_status(),
                round_lots_only: r.round_lots_only(),
                issue_classification: r.issue_classification(),
                issue_sub_type: r.issue_sub_type(),
                authenticity: r.authenticity(),
                short_sale_threshold: r.short_sale_threshold(),
                ipo_flag: r.ipo_flag(),
                luld_tier: r.luld_ref_price_tier(),
                etp_flag: r.etp_flag(),
                inverse: r.inverse_indicator(),
                source_type: b'R',
            };
            let slot = self.instrument(locate);
            let new = !slot.defined;
            *slot = Instrument {
                symbol: def.symbol,
                defined: true,
            };
            if new {
                self.stats.instruments += 1;
            }
            push(&mut self.stats, out, repr(Body::InstrumentDefinition(def)));
            return;
        }
        let known = self
            .instruments
            .get(locate as usize)
            .is_some_and(|i| i.defined);
        if locate != 0 && !known {
            if let Some(symbol) = m.stock() {
                if !symbol.is_blank() {
                    let slot = self.instrument(locate);
                    *slot = Instrument {
                        symbol,
                        defined: true,
                    };
                    self.stats.instruments += 1;
                    let def = InstrumentDefinition {
                        symbol,
                        market_category: b' ',
                        financial_status: b' ',
                        round_lots_only: b' ',
                        issue_classification: b' ',
                        issue_sub_type: *b"  ",
                        authenticity: b' ',
                        short_sale_threshold: b' ',
                        ipo_flag: b' ',
                        luld_tier: b' ',
                        etp_flag: b' ',
                        inverse: b' ',
                        source_type: m.type_byte(),
                        ..Default::default()
                    };
                    push(&mut self.stats, out, repr(Body::InstrumentDefinition(def)));
                }
            }
        }

        let books = &mut self.books;
        let stats = &mut self.stats;
        macro_rules! emit {
            ($body:expr) => {
                push(stats, out, repr($body))
            };
        }
        let mut book_changed = false;
        match m {
            Itch::SystemEvent(s) => emit!(Body::SystemEvent(SystemEvent {
                source_type: b'S',
                event_code: s.event_code(),
                ..Default::default()
            })),
            Itch::MwcbDeclineLevel(v) => emit!(Body::SystemEvent(SystemEvent {
                source_type: b'V',
                event_code: b' ',
                level1: Price::from_p8(v.level1()),
                level2: Price::from_p8(v.level2()),
                level3: Price::from_p8(v.level3()),
            })),
            Itch::MwcbStatus(w) => emit!(Body::SystemEvent(SystemEvent {
                source_type: b'W',
                event_code: w.breached_level(),
                ..Default::default()
            })),
            Itch::StockTradingAction(h) => emit!(Body::TradingStatus(TradingStatus {
                status_type: b'H',
                state: h.trading_state(),
                reason: h.reason(),
                market_code: b' ',
            })),
            Itch::RegShoRestriction(y) => emit!(Body::TradingStatus(TradingStatus {
                status_type: b'Y',
                state: y.reg_sho_action(),
                reason: *b"    ",
                market_code: b' ',
            })),
            Itch::OperationalHalt(h) => emit!(Body::TradingStatus(TradingStatus {
                status_type: b'h',
                state: h.operational_halt_action(),
                reason: *b"    ",
                market_code: h.market_code(),
            })),
            Itch::AddOrder(a) => {
                let (r, side, qty) = (a.order_ref(), a.side(), a.shares());
                let body = add_order(books, stats, r, instrument, side, a.price(), qty, *b"    ");
                emit!(body);
                book_changed = true;
            }
            Itch::AddOrderMpid(a) => {
                let (r, side, qty) = (a.order_ref(), a.side(), a.shares());
                let body = add_order(
                    books,
                    stats,
                    r,
                    instrument,
                    side,
                    a.price(),
                    qty,
                    a.attribution(),
                );
                emit!(body);
                book_changed = true;
            }
            Itch::OrderExecuted(e) => {
                let (price, side) = match books.reduce(e.order_ref(), e.executed_shares()) {
                    Some((o, _)) => (o.price(), o.side),
                    None => {
                        stats.unknown_order += 1;
                        (Price(0), SIDE_UNKNOWN)
                    }
                };
                emit!(Body::OrderExecuted(Execution {
                    order_id: e.order_ref(),
                    match_number: e.match_number(),
                    price,
                    quantity: e.executed_shares(),
                    side,
                    printable: b'Y',
                }));
                book_changed = true;
            }
            Itch::OrderExecutedWithPrice(c) => {
                let side = match books.reduce(c.order_ref(), c.executed_shares()) {
                    Some((o, _)) => o.side,
                    None => {
                        stats.unknown_order += 1;
                        SIDE_UNKNOWN
                    }
                };
                emit!(Body::OrderExecutedWithPrice(Execution {
                    order_id: c.order_ref(),
                    match_number: c.match_number(),
                    price: Price::from_p4(c.execution_price()),
                    quantity: c.executed_shares(),
                    side,
                    printable: c.printable(),
                }));
                book_changed = true;
            }
            Itch::OrderCancel(x) => {
                let (remaining, side) = match books.reduce(x.order_ref(), x.cancelled_shares()) {
                    Some((o, taken)) => (o.quantity - taken, o.side),
                    None => {
                        stats.unknown_order += 1;
                        (0, SIDE_UNKNOWN)
                    }
                };
                emit!(Body::OrderCancel(OrderCancel {
                    order_id: x.order_ref(),
                    cancelled_quantity: x.cancelled_shares(),
                    remaining_quantity: remaining,
                    side,
                }));
                book_changed = true;
            }
            Itch::OrderDelete(d) => {
                let side = match books.remove(d.order_ref()) {
                    Some(o) => o.side,
                    None => {
                        stats.unknown_order += 1;
                        SIDE_UNKNOWN
                    }
                };
                emit!(Body::OrderDelete(OrderDelete {
                    order_id: d.order_ref(),
                    side
                }));
                book_changed = true;
            }
            Itch::OrderReplace(u) => {
                let price = Price::from_p4(u.price());
                let side = match books.remove(u.orig_order_ref()) {
                    Some(o) => {
                        let (r, qty) = (u.new_order_ref(), u.shares());
                        let _ = add_order(
                            books,
                            stats,
                            r,
                            instrument,
                            o.side,
                            u.price(),
                            qty,
                            *b"    ",
                        );
                        o.side
                    }
                    None => {
                        stats.unknown_order += 1;
                        SIDE_UNKNOWN
                    }
                };
                emit!(Body::OrderReplace(OrderReplace {
                    orig_order_id: u.orig_order_ref(),
                    new_order_id: u.new_order_ref(),
                    price,
                    quantity: u.shares(),
                    side,
                }));
                book_changed = true;
            }
            Itch::Trade(p) => emit!(Body::Trade(Trade {
                order_id: p.order_ref(),
                match_number: p.match_number(),
                price: Price::from_p4(p.price()),
                quantity: p.shares(),
                side: p.side(),
            })),
            Itch::CrossTrade(q) => emit!(Body::CrossTrade(CrossTrade {
                match_number: q.match_number(),
                quantity: q.shares(),
                price: Price::from_p4(q.cross_price()),
                cross_type: q.cross_type(),
            })),
            Itch::BrokenTrade(b) => emit!(Body::BrokenTrade(BrokenTrade {
                match_number: b.match_number(),
            })),
            Itch::Noii(i) => emit!(Body::Imbalance(Imbalance {
                paired_shares: i.paired_shares(),
                imbalance_shares: i.imbalance_shares(),
                direction: i.imbalance_direction(),
                cross_type: i.cross_type(),
                far_price: Price::from_p4(i.far_price()),
                near_price: Price::from_p4(i.near_price()),
                reference_price: Price::from_p4(i.current_ref_price()),
            })),
            // Decoded and counted; not part of schema v1.
            Itch::StockDirectory(_)
            | Itch::MarketParticipantPosition(_)
            | Itch::IpoQuotingPeriodUpdate(_)
            | Itch::LuldAuctionCollar(_)
            | Itch::RetailInterest(_)
            | Itch::DlcrPriceDiscovery(_) => {}
        }
        if book_changed {
            if let Some(top) = books.top_change(instrument) {
                emit!(Body::TopOfBook(top));
            }
        }
    }
}

#[inline]
fn push(stats: &mut DecodeStats, out: &mut impl FnMut(&Repr), r: Repr) {
    stats.by_kind[r.kind() as usize] += 1;
    out(&r);
}

/// Rests an order in the book (counting a reused ref) and returns its normalized add.
#[allow(clippy::too_many_arguments)]
fn add_order(
    books: &mut OrderBooks,
    stats: &mut DecodeStats,
    order_ref: u64,
    instrument: u32,
    side: u8,
    price_p4: u32,
    quantity: u32,
    attribution: [u8; 4],
) -> Body {
    let price = Price::from_p4(price_p4);
    if !books.add(
        order_ref,
        Order {
            instrument,
            price_p4,
            quantity,
            side,
        },
    ) {
        stats.duplicate_order += 1;
    }
    Body::OrderAdd(OrderAdd {
        order_id: order_ref,
        price,
        quantity,
        side,
        attribution,
    })
}
