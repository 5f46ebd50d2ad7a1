//! Routing normalized messages to groups: each message goes to every group whose instrument
//! selection and content accept it; instrument definitions go to every group that carries the
//! instrument; market-wide messages (instrument 0) go to every group whose content takes them.

use crate::config::{parse_partition, parse_range, Content, Group};
use protocol::schema::{Body, Kind, Repr};

/// Bit `i` set = group `i` (config order).
pub type GroupMask = u64;

#[derive(Debug, Clone)]
struct Selection {
    symbols: Vec<String>,
    ranges: Vec<(String, String)>,
    partition: Option<(u32, u32)>,
}

impl Selection {
    fn needs_symbol(&self) -> bool {
        !self.symbols.is_empty() || !self.ranges.is_empty()
    }

    fn matches(&self, instrument: u32, symbol: Option<&str>) -> bool {
        if let Some((k, n)) = self.partition {
            // A fixed multiplicative hash: stable across runs and machines.
            let h = instrument.wrapping_mul(0x9e37_79b9) >> 7;
            if h % n != k {
                return false;
            }
        }
        if !self.needs_symbol() {
            return true;
        }
        let Some(sym) = symbol else { return false };
        self.symbols.iter().any(|s| s == sym)
            || self.ranges.iter().any(|(a, b)| {
                // Inclusive on prefixes: "A-M" takes "AAPL" and "MSFT" but not "NVDA".
                let (sym, a, b) = (sym.as_bytes(), a.as_bytes(), b.as_bytes());
                sym >= a && &sym[..sym.len().min(b.len())] <= b
            })
    }
}

fn kinds_for(content: Content) -> u32 {
    let bit = |k: Kind| 1u32 << (k as u8);
    // Feed status (upstream loss) is market-wide news every group must see.
    let common = bit(Kind::InstrumentDefinition)
        | bit(Kind::TradingStatus)
        | bit(Kind::SystemEvent)
        | bit(Kind::FeedStatus);
    let trades = bit(Kind::OrderExecuted)
        | bit(Kind::OrderExecutedWithPrice)
        | bit(Kind::Trade)
        | bit(Kind::CrossTrade)
        | bit(Kind::BrokenTrade);
    match content {
        Content::All => Kind::ALL
            .iter()
            .filter(|k| **k != Kind::TopOfBook)
            .fold(0, |m, k| m | bit(*k)),
        Content::Trades => common | trades,
        Content::Top => common | bit(Kind::TopOfBook),
    }
}

/// Per-instrument group masks, learned as instrument definitions arrive.
pub struct Router {
    selections: Vec<Selection>,
    /// Groups that take each kind, by kind byte.
    by_kind: [GroupMask; 16],
    /// By instrument id; `None` until first seen.
    by_instrument: Vec<Option<GroupMask>>,
    all: GroupMask,
}

impl Router {
    pub fn new(groups: &[Group]) -> Router {
        let selections: Vec<Selection> = groups
            .iter()
            .map(|g| Selection {
                symbols: g.symbols.clone(),
                ranges: g
                    .symbol_ranges
                    .iter()
                    .filter_map(|r| parse_range(r).ok())
                    .collect(),
                partition: g.partition.as_deref().and_then(|p| parse_partition(p).ok()),
            })
            .collect();
        let mut by_kind = [0u64; 16];
        for (i, g) in groups.iter().enumerate() {
            let kinds = kinds_for(g.content);
            for (k, m) in by_kind.iter_mut().enumerate() {
                if kinds & (1 << k) != 0 {
                    *m |= 1 << i;
                }
            }
        }
        let all = if groups.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << groups.len()) - 1
        };
        Router {
            selections,
            by_kind,
            by_instrument: vec![None; 1 << 16],
            all,
        }
    }

    fn selection_mask(&self, instrument: u32, symbol: Option<&str>) -> GroupMask {
        self.selections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matches(instrument, symbol))
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// The groups `m` goes to.
    #[inline]
    pub fn route(&mut self, m: &Repr) -> GroupMask {
        let kinds = self.by_kind[m.kind() as usize];
        if m.instrument == 0 {
            return kinds & self.all;
        }
        let i = m.instrument as usize;
        if i >= self.by_instrument.len() {
            self.by_instrument.resize(i + 1, None);
        }
        if let Body::InstrumentDefinition(d) = &m.body {
            let mask = self.selection_mask(m.instrument, Some(d.symbol.as_str()));
            self.by_instrument[i] = Some(mask);
            return mask & kinds;
        }
        let sel = match self.by_instrument[i] {
            Some(mask) => mask,
            None => {
                // Symbol still unknown: only groups that need no symbol take it. Cached like a
                // definition's mask (the definition, when it comes, replaces it), so the
                // groups are not scanned again for every message of the instrument.
                let mask = self.selection_mask(m.instrument, None);
                self.by_instrument[i] = Some(mask);
                mask
            }
        };
        sel & kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use protocol::schema::*;

    fn repr(instrument: u32, body: Body) -> Repr {
        Repr {
            instrument,
            event_ts_ns: 0,
            recv_ts_ns: 0,
            body,
        }
    }

    fn def(sym: &str) -> Body {
        Body::InstrumentDefinition(InstrumentDefinition {
            symbol: Symbol::new(sym),
            ..Default::default()
        })
    }

    #[test]
    fn ranges_content_and_market_wide() {
        let mut cfg = Config::load(None).unwrap();
        let mut trades = cfg.groups[0].clone();
        trades.name = "trades".into();
        trades.session = "T".into();
        trades.symbol_ranges.clear();
        trades.content = Content::Trades;
        cfg.groups.push(trades);
        let mut r = Router::new(&cfg.groups);
        assert_eq!(r.route(&repr(1, def("AAPL"))), 0b101);
        assert_eq!(r.route(&repr(2, def("NVDA"))), 0b110);
        assert_eq!(r.route(&repr(3, def("MSFT"))), 0b101);
        let add = Body::OrderAdd(OrderAdd::default());
        assert_eq!(r.route(&repr(1, add)), 0b001);
        assert_eq!(r.route(&repr(2, add)), 0b010);
        let exec = Body::OrderExecuted(Execution::default());
        assert_eq!(r.route(&repr(2, exec)), 0b110);
        // Undefined instrument: only the group without symbol selection.
        assert_eq!(r.route(&repr(9, exec)), 0b100);
        assert_eq!(r.route(&repr(9, add)), 0);
        let sys = Body::SystemEvent(SystemEvent::default());
        assert_eq!(r.route(&repr(0, sys)), 0b111);
        let tob = Body::TopOfBook(TopOfBook::default());
        assert_eq!(r.route(&repr(1, tob)), 0);
    }

    #[test]
    fn partitions_split_instruments() {
        let mut cfg = Config::load(None).unwrap();
        for (i, g) in cfg.groups.iter_mut().enumerate() {
            g.symbol_ranges.clear();
            g.partition = Some(format!("{i}/2"));
        }
        let mut r = Router::new(&cfg.groups);
        let add = Body::OrderAdd(OrderAdd::default());
        for inst in 1..1000 {
            let m = r.route(&repr(inst, add));
            assert!(m == 0b01 || m == 0b10, "{inst}: {m:b}");
        }
    }
}
