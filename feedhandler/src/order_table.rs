//! Live orders by order reference. Exchanges hand out references in rising order through the
//! day, so nearly every live order sits in a window of recent references: those are kept in a
//! ring indexed by the reference itself (one memory access, no hashing); the rest — orders far
//! older than the window (good-till-cancel) or references far ahead of it — in a hash map. The
//! window slides forward with the references, moving what falls out of it to the map.

use crate::book::{Order, OrderRefHasher};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Slots in the ring at first, and once references outgrow that (16 bytes each: 64 KiB, then
/// 16 MiB, allocated once): a small feed (or a test) stays small, a real one pays once.
const FIRST_WINDOW: u64 = 1 << 12;
const MAX_WINDOW: u64 = 1 << 20;
/// A free slot (no instrument has this number: instruments are 16-bit locate codes).
const EMPTY: Order = Order {
    instrument: u32::MAX,
    price_p4: 0,
    quantity: 0,
    side: 0,
};

pub struct OrderTable {
    /// Lowest reference the ring covers; it covers `base..base + window`.
    base: u64,
    window: u64,
    ring: Vec<Order>,
    in_ring: usize,
    others: HashMap<u64, Order, BuildHasherDefault<OrderRefHasher>>,
}

impl Default for OrderTable {
    fn default() -> Self {
        OrderTable::with_capacity(0)
    }
}

impl OrderTable {
    pub fn with_capacity(others: usize) -> OrderTable {
        OrderTable {
            base: 0,
            window: FIRST_WINDOW,
            ring: vec![EMPTY; FIRST_WINDOW as usize],
            in_ring: 0,
            others: HashMap::with_capacity_and_hasher(others, Default::default()),
        }
    }

    #[inline]
    fn slot(&self, r: u64) -> usize {
        (r & (self.window - 1)) as usize
    }

    #[inline]
    fn in_window(&self, r: u64) -> bool {
        r >= self.base && r - self.base < self.window
    }

    /// Allocates the full-size ring now, while no message waits: growing it during traffic
    /// writes 16 MiB on the feed thread in one go (measured 6.2–6.7 ms, once, about 9 000
    /// messages into a session).
    pub fn reserve_full_window(&mut self) {
        if self.window < MAX_WINDOW {
            self.grow();
        }
    }

    /// Grows the ring to `MAX_WINDOW` slots, keeping every order at its reference.
    fn grow(&mut self) {
        let old = std::mem::replace(&mut self.ring, vec![EMPTY; MAX_WINDOW as usize]);
        let old_window = self.window;
        self.window = MAX_WINDOW;
        for (i, o) in old.into_iter().enumerate() {
            if o.instrument != u32::MAX {
                let r = self.base + ((i as u64).wrapping_sub(self.base) & (old_window - 1));
                let s = self.slot(r);
                self.ring[s] = o;
            }
        }
    }

    /// Moves the window so that `r` is its newest reference, moving orders that fall out of it
    /// to the map. A jump of more than a window empties the ring once (bounded work).
    fn slide_to(&mut self, r: u64) {
        // The first time live orders would fall out: the full-size ring instead.
        if self.window < MAX_WINDOW && self.in_ring > 0 {
            self.grow();
            if r < self.base + self.window {
                return;
            }
        }
        let w = self.window;
        let new_base = r + 1 - w;
        if new_base - self.base >= w {
            for (i, o) in self.ring.iter_mut().enumerate() {
                if o.instrument != u32::MAX {
                    // The reference of slot i in the old window.
                    let off = (i as u64).wrapping_sub(self.base) & (w - 1);
                    self.others.insert(self.base + off, *o);
                    *o = EMPTY;
                }
            }
            self.in_ring = 0;
        } else {
            for old in self.base..new_base {
                let s = self.slot(old);
                if self.ring[s].instrument != u32::MAX {
                    self.others.insert(old, self.ring[s]);
                    self.ring[s] = EMPTY;
                    self.in_ring -= 1;
                }
            }
        }
        self.base = new_base;
    }

    /// Inserts unless `r` is live already; returns whether it was inserted.
    pub fn insert_new(&mut self, r: u64, o: Order) -> bool {
        if r >= self.base + self.window {
            self.slide_to(r);
        }
        if self.in_window(r) {
            let s = self.slot(r);
            if self.ring[s].instrument != u32::MAX {
                return false;
            }
            self.ring[s] = o;
            self.in_ring += 1;
            true
        } else {
            use std::collections::hash_map::Entry;
            match self.others.entry(r) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(o);
                    true
                }
            }
        }
    }

    #[inline]
    pub fn get(&self, r: u64) -> Option<&Order> {
        if self.in_window(r) {
            let o = &self.ring[self.slot(r)];
            (o.instrument != u32::MAX).then_some(o)
        } else {
            self.others.get(&r)
        }
    }

    #[inline]
    pub fn get_mut(&mut self, r: u64) -> Option<&mut Order> {
        if self.in_window(r) {
            let s = self.slot(r);
            let o = &mut self.ring[s];
            (o.instrument != u32::MAX).then_some(o)
        } else {
            self.others.get_mut(&r)
        }
    }

    #[inline]
    pub fn remove(&mut self, r: u64) -> Option<Order> {
        if self.in_window(r) {
            let s = self.slot(r);
            let o = self.ring[s];
            if o.instrument == u32::MAX {
                return None;
            }
            self.ring[s] = EMPTY;
            self.in_ring -= 1;
            Some(o)
        } else {
            self.others.remove(&r)
        }
    }

    /// Starts loading the ring slot of `r` into cache (a read-ahead pass): a datagram's
    /// orders prefetched back to back overlap their cache misses, where the message-by-message
    /// pass would wait for each in turn.
    #[inline]
    pub fn touch(&self, r: u64) {
        if self.in_window(r) {
            net::prefetch::line(&self.ring[self.slot(r)]);
        }
    }

    pub fn len(&self) -> usize {
        self.in_ring + self.others.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn values(&self) -> impl Iterator<Item = &Order> {
        self.ring
            .iter()
            .filter(|o| o.instrument != u32::MAX)
            .chain(self.others.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn order(i: u32) -> Order {
        Order {
            instrument: i,
            price_p4: i,
            quantity: i + 1,
            side: b'B',
        }
    }

    #[test]
    fn rising_references_grow_the_ring_and_keep_old_orders() {
        let mut t = OrderTable::with_capacity(16);
        let mut m: BTreeMap<u64, Order> = BTreeMap::new();
        // Rising refs; every 7th stays live for good (the rest are deleted a while later).
        for r in 1..=3_000_000u64 {
            let o = order((r % 1000) as u32);
            assert!(t.insert_new(r, o));
            m.insert(r, o);
            if r > 5000 && (r - 5000) % 7 != 0 {
                assert_eq!(t.remove(r - 5000), m.remove(&(r - 5000)));
            }
        }
        assert_eq!(t.window, MAX_WINDOW);
        assert_eq!(t.len(), m.len());
        for (r, o) in m.iter().step_by(97) {
            assert_eq!(t.get(*r), Some(o));
        }
        assert!(
            !t.others.is_empty(),
            "orders older than the window went to the map"
        );
    }

    #[test]
    fn a_reserved_window_never_reallocates_during_traffic() {
        let mut t = OrderTable::with_capacity(16);
        t.reserve_full_window();
        let ring = t.ring.as_ptr();
        for r in 1..=3 * MAX_WINDOW {
            assert!(t.insert_new(r, order(r as u32 % 1000)));
            if r > 100 {
                assert!(t.remove(r - 100).is_some());
            }
        }
        assert_eq!(
            t.ring.as_ptr(),
            ring,
            "the ring was replaced during traffic"
        );
        assert_eq!(t.len(), 100);
    }

    #[test]
    fn touch_changes_nothing_wherever_the_reference_is() {
        let mut t = OrderTable::with_capacity(16);
        assert!(t.insert_new(5, order(7)));
        t.touch(5);
        t.touch(6); // free slot
        t.touch(1 << 40); // outside the window
        t.touch(u64::MAX);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(5), Some(&order(7)));
        assert_eq!(t.get(1 << 40), None);
    }

    proptest! {
        /// The table behaves as a map whatever the references: rising, old, far ahead,
        /// repeated, removed.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec(
            (0u8..5, prop_oneof![0u64..2_000_000, 0u64..100, (1u64 << 40)..(1u64 << 40) + 10]),
            1..400,
        )) {
            let mut t = OrderTable::with_capacity(16);
            let mut m: BTreeMap<u64, Order> = BTreeMap::new();
            for (k, (op, r)) in ops.into_iter().enumerate() {
                let o = order(k as u32);
                match op {
                    0 | 1 => {
                        let fresh = !m.contains_key(&r);
                        prop_assert_eq!(t.insert_new(r, o), fresh);
                        m.entry(r).or_insert(o);
                    }
                    2 => prop_assert_eq!(t.remove(r), m.remove(&r)),
                    3 => {
                        if let Some(x) = t.get_mut(r) {
                            x.quantity = 7;
                        }
                        if let Some(x) = m.get_mut(&r) {
                            x.quantity = 7;
                        }
                    }
                    _ => t.reserve_full_window(),
                }
                prop_assert_eq!(t.get(r), m.get(&r));
                prop_assert_eq!(t.len(), m.len());
            }
            let mut all: Vec<Order> = t.values().copied().collect();
            let mut want: Vec<Order> = m.values().copied().collect();
            all.sort_by_key(|o| o.instrument);
            want.sort_by_key(|o| o.instrument);
            prop_assert_eq!(all, want);
        }
    }
}
