//! A synthetic but realistic ITCH 5.0 feed: system events and the stock directory first, then
//! book-consistent order lifecycles (executions, cancels, replaces and deletes refer to live
//! orders; bids stay below and asks above each instrument's mid so books never cross), trades,
//! crosses, imbalances, trading actions, and the closing system events.

mod output;
pub use output::{write_file, GenFormat, GeneratorSource};

/// Longest ITCH 5.0 message (`I`, 50 bytes).
pub const MAX_MESSAGE: usize = 50;

const TICKERS: [&str; 24] = [
    "AAPL", "MSFT", "AMZN", "NVDA", "GOOGL", "META", "TSLA", "AVGO", "COST", "PEP", "ADBE", "CSCO",
    "NFLX", "AMD", "INTC", "QCOM", "TXN", "AMGN", "HON", "SBUX", "INTU", "BKNG", "GILD", "MDLZ",
];

/// xorshift64*: small, fast and reproducible from a seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[derive(Debug, Clone, Copy)]
struct LiveOrder {
    order_ref: u64,
    locate: u16,
    side: u8,
    price: u32,
    shares: u32,
}

#[derive(Debug, Clone, Copy)]
struct Instrument {
    symbol: [u8; 8],
    /// Mid price, P4.
    mid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    pub instruments: u16,
    pub seed: u64,
    /// ITCH time of the first message (ns since midnight Eastern).
    pub start_itch_ns: u64,
    /// Live orders kept at most; beyond it adds turn into deletes.
    pub max_live_orders: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            instruments: 100,
            seed: 1,
            start_itch_ns: 34_200_000_000_000, // 09:30:00
            max_live_orders: 50_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Opening(usize),
    Directory(u16),
    MarketOpen(usize),
    Trading,
}

/// Writes one ITCH message at a time into a caller's buffer.
pub struct Generator {
    rng: Rng,
    cfg: GeneratorConfig,
    instruments: Vec<Instrument>,
    live: Vec<LiveOrder>,
    phase: Phase,
    now: u64,
    next_ref: u64,
    next_match: u64,
}

/// Big-endian field writer over a message buffer.
struct W<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl W<'_> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.b[self.at] = v;
        self.at += 1;
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.b[self.at..self.at + v.len()].copy_from_slice(v);
        self.at += v.len();
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    fn ts(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes()[2..])
    }
}

impl Generator {
    pub fn new(cfg: GeneratorConfig) -> Generator {
        let mut rng = Rng::new(cfg.seed);
        let instruments = (0..cfg.instruments.max(1))
            .map(|i| {
                let mut symbol = [b' '; 8];
                let name = match TICKERS.get(i as usize) {
                    Some(t) => t.to_string(),
                    None => format!("TC{:04}", i),
                };
                symbol[..name.len()].copy_from_slice(name.as_bytes());
                let dollars = 5 + rng.below(495) as u32;
                Instrument {
                    symbol,
                    mid: dollars * 10_000 + 50,
                }
            })
            .collect();
        Generator {
            rng,
            cfg,
            instruments,
            live: Vec::with_capacity(cfg.max_live_orders + 1),
            phase: Phase::Opening(0),
            now: cfg.start_itch_ns,
            next_ref: 1,
            next_match: 1,
        }
    }

    /// Messages written so far have been stamped up to this ITCH time.
    pub fn itch_now(&self) -> u64 {
        self.now
    }

    /// Moves the ITCH clock (e.g. to wall time for a live feed); never backwards.
    pub fn set_itch_now(&mut self, ns: u64) {
        self.now = self.now.max(ns);
    }

    fn header(&mut self, b: &mut [u8], ty: u8, locate: u16) -> usize {
        self.now += 1 + self.rng.below(2000);
        let tracking = (self.rng.below(4)) as u16;
        let mut w = W { b, at: 0 };
        w.u8(ty).u16(locate).u16(tracking).ts(self.now);
        w.at
    }

    fn system_event(&mut self, b: &mut [u8], code: u8) -> usize {
        let at = self.header(b, b'S', 0);
        b[at] = code;
        12
    }

    /// The closing messages (end of market hours, end of system hours, end of messages).
    pub fn closing(&mut self, b: &mut [u8], i: usize) -> usize {
        self.system_event(b, [b'M', b'E', b'C'][i.min(2)])
    }

    /// Writes the next message into `b` (at least `MAX_MESSAGE` bytes); returns its length.
    pub fn next_message(&mut self, b: &mut [u8]) -> usize {
        match self.phase {
            Phase::Opening(i) => {
                self.phase = if i == 0 {
                    Phase::Opening(1)
                } else {
                    Phase::Directory(0)
                };
                self.system_event(b, [b'O', b'S'][i])
            }
            Phase::Directory(i) => {
                self.phase = if (i as usize) + 1 < self.instruments.len() {
                    Phase::Directory(i + 1)
                } else {
                    Phase::MarketOpen(0)
                };
                self.directory(b, i)
            }
            Phase::MarketOpen(i) => {
                let n = self.instruments.len();
                if i < n {
                    self.phase = Phase::MarketOpen(i + 1);
                    self.trading_action(b, i as u16 + 1, b'T')
                } else {
                    self.phase = Phase::Trading;
                    self.system_event(b, b'Q')
                }
            }
            Phase::Trading => self.trading(b),
        }
    }

    fn directory(&mut self, b: &mut [u8], i: u16) -> usize {
        let sym = self.instruments[i as usize].symbol;
        let at = self.header(b, b'R', i + 1);
        let etp = self.rng.chance(100);
        let mut w = W { b, at };
        w.bytes(&sym)
            .u8(b"QGS"[(i % 3) as usize])
            .u8(b'N')
            .u32(100)
            .u8(b'N')
            .u8(if etp { b'Q' } else { b'C' })
            .bytes(if etp { b"E " } else { b"C " })
            .u8(b'P')
            .u8(b'N')
            .u8(b'N')
            .u8(b'1' + (i % 2) as u8)
            .u8(if etp { b'Y' } else { b'N' })
            .u32(u32::from(etp))
            .u8(b'N');
        39
    }

    fn trading_action(&mut self, b: &mut [u8], locate: u16, state: u8) -> usize {
        let sym = self.instruments[locate as usize - 1].symbol;
        let at = self.header(b, b'H', locate);
        let reason: &[u8; 4] = if state == b'T' { b"    " } else { b"LUDP" };
        W { b, at }.bytes(&sym).u8(state).u8(b' ').bytes(reason);
        25
    }

    fn pick_instrument(&mut self) -> u16 {
        // A skewed choice: low locates (the big names) trade most, as in real feeds.
        let n = self.instruments.len() as u64;
        let r = self.rng.below(n);
        (self.rng.below(r + 1) + 1) as u16
    }

    fn add(&mut self, b: &mut [u8], mpid: bool) -> usize {
        let locate = self.pick_instrument();
        let inst = self.instruments[locate as usize - 1];
        let side = if self.rng.chance(500) { b'B' } else { b'S' };
        let ticks = 1 + self.rng.below(20) as u32;
        let price = if side == b'B' {
            inst.mid - ticks * 100 + 50
        } else {
            inst.mid + ticks * 100 - 50
        };
        let shares = 100 * (1 + self.rng.below(10) as u32);
        let order_ref = self.next_ref;
        self.next_ref += 1;
        self.live.push(LiveOrder {
            order_ref,
            locate,
            side,
            price,
            shares,
        });
        let at = self.header(b, if mpid { b'F' } else { b'A' }, locate);
        let mut w = W { b, at };
        w.u64(order_ref)
            .u8(side)
            .u32(shares)
            .bytes(&inst.symbol)
            .u32(price);
        if mpid {
            w.bytes(b"TCKR");
            40
        } else {
            36
        }
    }

    fn trading(&mut self, b: &mut [u8]) -> usize {
        if self.live.is_empty() {
            return self.add(b, false);
        }
        let roll = self.rng.below(1000);
        let full = self.live.len() >= self.cfg.max_live_orders;
        let i = self.rng.below(self.live.len() as u64) as usize;
        match roll {
            0..=349 if !full => self.add(b, false),
            350..=399 if !full => self.add(b, true),
            0..=399 => self.delete(b, i),
            400..=479 => {
                // E: execute part or all of a resting order.
                let o = self.live[i];
                let qty = (100 * (1 + self.rng.below(u64::from(o.shares / 100).max(1)) as u32))
                    .min(o.shares);
                let m = self.next_match;
                self.next_match += 1;
                let at = self.header(b, b'E', o.locate);
                W { b, at }.u64(o.order_ref).u32(qty).u64(m);
                self.take(i, qty);
                31
            }
            480..=499 => {
                let o = self.live[i];
                let qty = o.shares.min(100);
                let m = self.next_match;
                self.next_match += 1;
                let printable = if self.rng.chance(800) { b'Y' } else { b'N' };
                let at = self.header(b, b'C', o.locate);
                W { b, at }
                    .u64(o.order_ref)
                    .u32(qty)
                    .u64(m)
                    .u8(printable)
                    .u32(o.price);
                self.take(i, qty);
                36
            }
            500..=579 => {
                // X: partial cancel, leaving at least one share.
                let o = self.live[i];
                if o.shares < 2 {
                    return self.delete(b, i);
                }
                let qty = 1 + self.rng.below(u64::from(o.shares - 1)) as u32;
                let at = self.header(b, b'X', o.locate);
                W { b, at }.u64(o.order_ref).u32(qty);
                self.take(i, qty);
                23
            }
            580..=799 => self.delete(b, i),
            800..=919 => {
                // U: replace at a new price on the same side of the mid.
                let o = self.live[i];
                let mid = self.instruments[o.locate as usize - 1].mid;
                let ticks = 1 + self.rng.below(20) as u32;
                let price = if o.side == b'B' {
                    mid - ticks * 100 + 50
                } else {
                    mid + ticks * 100 - 50
                };
                let shares = 100 * (1 + self.rng.below(10) as u32);
                let new_ref = self.next_ref;
                self.next_ref += 1;
                let at = self.header(b, b'U', o.locate);
                W { b, at }
                    .u64(o.order_ref)
                    .u64(new_ref)
                    .u32(shares)
                    .u32(price);
                self.live[i] = LiveOrder {
                    order_ref: new_ref,
                    price,
                    shares,
                    ..o
                };
                35
            }
            920..=959 => {
                // P: a trade against a non-displayed order.
                let locate = self.pick_instrument();
                let inst = self.instruments[locate as usize - 1];
                let m = self.next_match;
                self.next_match += 1;
                let side = if self.rng.chance(500) { b'B' } else { b'S' };
                let at = self.header(b, b'P', locate);
                W { b, at }
                    .u64(0)
                    .u8(side)
                    .u32(100 * (1 + self.rng.below(5) as u32))
                    .bytes(&inst.symbol)
                    .u32(inst.mid)
                    .u64(m);
                44
            }
            960..=984 => {
                // I: an imbalance indicator.
                let locate = self.pick_instrument();
                let inst = self.instruments[locate as usize - 1];
                let at = self.header(b, b'I', locate);
                let dir = b"BSNO"[self.rng.below(4) as usize];
                W { b, at }
                    .u64(self.rng.below(100_000) * 100)
                    .u64(self.rng.below(1000) * 100)
                    .u8(dir)
                    .bytes(&inst.symbol)
                    .u32(inst.mid - 500)
                    .u32(inst.mid + 500)
                    .u32(inst.mid)
                    .u8(b'C')
                    .u8(b'L');
                50
            }
            985..=992 => {
                // Q: a cross.
                let locate = self.pick_instrument();
                let inst = self.instruments[locate as usize - 1];
                let m = self.next_match;
                self.next_match += 1;
                let at = self.header(b, b'Q', locate);
                W { b, at }
                    .u64(self.rng.below(50_000) * 100)
                    .bytes(&inst.symbol)
                    .u32(inst.mid)
                    .u64(m)
                    .u8(b'O');
                40
            }
            993..=995 => {
                let m = self
                    .next_match
                    .saturating_sub(1 + self.rng.below(10))
                    .max(1);
                let at = self.header(b, b'B', 0);
                W { b, at }.u64(m);
                19
            }
            996..=997 => {
                let locate = self.pick_instrument();
                let sym = self.instruments[locate as usize - 1].symbol;
                let at = self.header(b, b'Y', locate);
                W { b, at }.bytes(&sym).u8(b'0' + self.rng.below(3) as u8);
                20
            }
            _ => {
                let locate = self.pick_instrument();
                let state = if self.rng.chance(500) { b'P' } else { b'T' };
                self.trading_action(b, locate, state)
            }
        }
    }

    fn delete(&mut self, b: &mut [u8], i: usize) -> usize {
        let o = self.live.swap_remove(i);
        let at = self.header(b, b'D', o.locate);
        W { b, at }.u64(o.order_ref);
        19
    }

    fn take(&mut self, i: usize, qty: u32) {
        self.live[i].shares -= qty;
        if self.live[i].shares == 0 {
            self.live.swap_remove(i);
        }
    }
}
