//! Order books per instrument, maintained from adds, executions, cancels, deletes and replaces,
//! for the derived top-of-book quote.
//!
//! Price levels are sorted vectors with the best level at the end, so the busy end moves least;
//! after warm-up (capacity reached) no operation allocates.

use crate::order_table::OrderTable;
use protocol::schema::{Price, TopOfBook, SIDE_BUY};
use std::hash::Hasher;

/// Order refs are exchange-assigned integers: a multiplicative hash spreads them well and costs
/// a fraction of SipHash.
#[derive(Default, Clone, Copy)]
pub struct OrderRefHasher(u64);

impl Hasher for OrderRefHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub instrument: u32,
    /// ITCH price, 4 implied decimals: half the size of a `Price`, so the order table (the
    /// book's largest structure, touched on nearly every message) stays smaller in cache.
    pub price_p4: u32,
    pub quantity: u32,
    pub side: u8,
}

impl Order {
    #[inline]
    pub fn price(&self) -> Price {
        Price::from_p4(self.price_p4)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    price: Price,
    quantity: u64,
}

/// Levels reserved per side on a book's first order, so that a normal book never regrows.
const LEVELS_RESERVED: usize = 32;

#[derive(Debug, Default, Clone)]
struct Book {
    /// Ascending price: best bid last.
    bids: Vec<Level>,
    /// Descending price: best ask last.
    asks: Vec<Level>,
    last_top: TopOfBook,
}

impl Book {
    fn side(&mut self, side: u8) -> (&mut Vec<Level>, bool) {
        if side == SIDE_BUY {
            (&mut self.bids, true)
        } else {
            (&mut self.asks, false)
        }
    }

    fn find(levels: &[Level], price: Price, ascending: bool) -> Result<usize, usize> {
        if ascending {
            levels.binary_search_by(|l| l.price.cmp(&price))
        } else {
            levels.binary_search_by(|l| price.cmp(&l.price))
        }
    }

    fn add(&mut self, side: u8, price: Price, qty: u64) {
        let (levels, asc) = self.side(side);
        if levels.capacity() == 0 {
            levels.reserve(LEVELS_RESERVED);
        }
        match Self::find(levels, price, asc) {
            Ok(i) => levels[i].quantity += qty,
            Err(i) => levels.insert(
                i,
                Level {
                    price,
                    quantity: qty,
                },
            ),
        }
    }

    fn remove(&mut self, side: u8, price: Price, qty: u64) {
        let (levels, asc) = self.side(side);
        if let Ok(i) = Self::find(levels, price, asc) {
            levels[i].quantity = levels[i].quantity.saturating_sub(qty);
            if levels[i].quantity == 0 {
                levels.remove(i);
            }
        }
    }

    fn top(&self) -> TopOfBook {
        let (bp, bq) = self
            .bids
            .last()
            .map_or((Price(0), 0), |l| (l.price, l.quantity));
        let (ap, aq) = self
            .asks
            .last()
            .map_or((Price(0), 0), |l| (l.price, l.quantity));
        TopOfBook {
            bid_price: bp,
            bid_quantity: bq,
            ask_price: ap,
            ask_quantity: aq,
        }
    }
}

/// All live orders of a feed and a book per instrument.
#[derive(Default)]
pub struct OrderBooks {
    orders: OrderTable,
    books: Vec<Book>,
}

impl OrderBooks {
    /// Capacity for `orders` live orders before the order map grows.
    pub fn with_capacity(orders: usize) -> OrderBooks {
        OrderBooks {
            orders: OrderTable::with_capacity(orders),
            books: Vec::new(),
        }
    }

    /// Allocates the order table at its full size before traffic (see
    /// `OrderTable::reserve_full_window`).
    pub fn reserve_for_session(&mut self) {
        self.orders.reserve_full_window();
    }

    fn book(&mut self, instrument: u32) -> &mut Book {
        let i = instrument as usize;
        if i >= self.books.len() {
            self.books.resize_with(i + 1, Book::default);
        }
        &mut self.books[i]
    }

    /// Adds a resting order; `false` (and no change) if the ref is already live.
    pub fn add(&mut self, order_ref: u64, order: Order) -> bool {
        if !self.orders.insert_new(order_ref, order) {
            return false;
        }
        self.book(order.instrument)
            .add(order.side, order.price(), u64::from(order.quantity));
        true
    }

    /// Takes up to `qty` shares off an order (execution or partial cancel). Returns the order as
    /// it was before and the shares actually taken; removes it when nothing is left.
    pub fn reduce(&mut self, order_ref: u64, qty: u32) -> Option<(Order, u32)> {
        let o = self.orders.get_mut(order_ref)?;
        let before = *o;
        let taken = qty.min(before.quantity);
        o.quantity -= taken;
        if before.quantity == taken {
            self.orders.remove(order_ref);
        }
        self.book(before.instrument)
            .remove(before.side, before.price(), u64::from(taken));
        Some((before, taken))
    }

    /// Deletes an order; returns it.
    pub fn remove(&mut self, order_ref: u64) -> Option<Order> {
        let o = self.orders.remove(order_ref)?;
        self.book(o.instrument)
            .remove(o.side, o.price(), u64::from(o.quantity));
        Some(o)
    }

    /// Prefetches the slot of order `order_ref` (see `OrderTable::touch`).
    #[inline]
    pub fn touch(&self, order_ref: u64) {
        self.orders.touch(order_ref)
    }

    /// Starts loading every cache line of the price levels on the side of the book that
    /// acting on `order_ref` will search (a second pass: its order is in cache by then).
    #[inline]
    pub fn touch_levels(&self, order_ref: u64) {
        let Some(o) = self.orders.get(order_ref) else {
            return;
        };
        let Some(b) = self.books.get(o.instrument as usize) else {
            return;
        };
        net::prefetch::lines(if o.side == SIDE_BUY { &b.bids } else { &b.asks });
    }

    pub fn get(&self, order_ref: u64) -> Option<&Order> {
        self.orders.get(order_ref)
    }

    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    pub fn top(&self, instrument: u32) -> TopOfBook {
        self.books
            .get(instrument as usize)
            .map(Book::top)
            .unwrap_or_default()
    }

    /// The new top of book if its price or size changed since the last call for `instrument`.
    pub fn top_change(&mut self, instrument: u32) -> Option<TopOfBook> {
        let b = self.book(instrument);
        let t = b.top();
        if t != b.last_top {
            b.last_top = t;
            Some(t)
        } else {
            None
        }
    }

    /// Whether the best bid is at or above the best ask (never true on consistent input).
    pub fn is_crossed(&self, instrument: u32) -> bool {
        let t = self.top(instrument);
        t.bid_quantity > 0 && t.ask_quantity > 0 && t.bid_price >= t.ask_price
    }

    /// Instruments with a book.
    pub fn instruments(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.books.len() as u32).filter(|&i| {
            let b = &self.books[i as usize];
            !b.bids.is_empty() || !b.asks.is_empty()
        })
    }

    /// Sum of shares in all levels equals the sum over live orders (a consistency check).
    pub fn levels_match_orders(&self) -> bool {
        let mut per_book = vec![0u64; self.books.len()];
        for o in self.orders.values() {
            per_book[o.instrument as usize] += u64::from(o.quantity);
        }
        self.books.iter().zip(per_book).all(|(b, want)| {
            let got: u64 = b.bids.iter().chain(&b.asks).map(|l| l.quantity).sum();
            got == want && b.bids.iter().chain(&b.asks).all(|l| l.quantity > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::schema::SIDE_SELL;

    fn o(side: u8, p: u32, q: u32) -> Order {
        Order {
            instrument: 3,
            price_p4: p,
            quantity: q,
            side,
        }
    }

    #[test]
    fn top_follows_levels() {
        let mut b = OrderBooks::default();
        assert!(b.add(1, o(SIDE_BUY, 100, 10)));
        assert!(b.add(2, o(SIDE_BUY, 101, 5)));
        assert!(b.add(3, o(SIDE_SELL, 103, 7)));
        assert!(b.add(4, o(SIDE_SELL, 102, 1)));
        assert!(!b.add(4, o(SIDE_SELL, 102, 1)));
        let t = b.top_change(3).unwrap();
        assert_eq!(
            (t.bid_price, t.bid_quantity, t.ask_price, t.ask_quantity),
            (Price::from_p4(101), 5, Price::from_p4(102), 1)
        );
        assert_eq!(b.top_change(3), None);
        assert_eq!(b.reduce(4, 5), Some((o(SIDE_SELL, 102, 1), 1)));
        assert_eq!(b.top(3).ask_price, Price::from_p4(103));
        assert_eq!(b.remove(2).unwrap().quantity, 5);
        assert_eq!(b.top(3).bid_price, Price::from_p4(100));
        assert!(!b.is_crossed(3));
        assert!(b.levels_match_orders());
        assert_eq!(b.reduce(99, 1), None);
    }

    #[test]
    fn touching_changes_nothing_for_live_or_unknown_orders() {
        let mut b = OrderBooks::default();
        // Bids 100..=109, one order each of quantity 1..=10; the best (109) is last.
        for i in 0..10u32 {
            assert!(b.add(u64::from(i) + 1, o(SIDE_BUY, 100 + i, i + 1)));
        }
        let top = b.top(3);
        for r in [1, 10, 77, u64::MAX] {
            b.touch(r);
            b.touch_levels(r);
        }
        assert_eq!(b.top(3), top);
        assert_eq!(b.live_orders(), 10);
        assert!(b.levels_match_orders());
    }
}
