//! JSON rendering of normalized messages, shared by `tickcast decode --json` and
//! `tickcast-tap --json` so both print the same field names (documented in docs/PROTOCOL.md).
//! Writes into any `fmt::Write`; the caller owns (and reuses) the buffer.

use crate::schema::{Body, Price, Repr, Symbol};
use core::fmt::{self, Write};

/// Renders a stream of messages as JSON lines, naming each instrument by the symbol its
/// definition announced. The symbol table grows with instrument ids and the line buffer is
/// reused, so rendering allocates nothing per message.
#[derive(Debug, Default, Clone)]
pub struct JsonLines {
    symbols: Vec<Symbol>,
    line: String,
}

impl JsonLines {
    pub fn new() -> JsonLines {
        JsonLines {
            symbols: Vec::new(),
            line: String::with_capacity(512),
        }
    }

    /// The symbol of `instrument`, "" until its definition was seen.
    pub fn symbol(&self, instrument: u32) -> &str {
        self.symbols
            .get(instrument as usize)
            .map_or("", |s| s.as_str())
    }

    /// Learns from definitions, then returns `m` as one JSON line ending in a newline.
    pub fn render(&mut self, m: &Repr, seq: Option<u64>) -> &str {
        if let Body::InstrumentDefinition(d) = &m.body {
            let i = m.instrument as usize;
            if i >= self.symbols.len() {
                self.symbols.resize(i + 1, Symbol::default());
            }
            self.symbols[i] = d.symbol;
        }
        self.line.clear();
        let sym = self
            .symbols
            .get(m.instrument as usize)
            .map_or("", |s| s.as_str());
        // Writing into a String cannot fail.
        let _ = write_message(&mut self.line, m, sym, seq);
        self.line.push('\n');
        &self.line
    }
}

/// Writes one JSON object (no newline). `seq` adds a `"seq"` field (the MoldUDP64 sequence).
pub fn write_message<W: Write>(w: &mut W, m: &Repr, symbol: &str, seq: Option<u64>) -> fmt::Result {
    w.write_char('{')?;
    if let Some(s) = seq {
        write!(w, "\"seq\":{s},")?;
    }
    write!(
        w,
        "\"kind\":\"{}\",\"instrument\":{},\"symbol\":",
        m.kind().name(),
        m.instrument
    )?;
    string(w, symbol.as_bytes())?;
    write!(
        w,
        ",\"event_ts_ns\":{},\"recv_ts_ns\":{}",
        m.event_ts_ns, m.recv_ts_ns
    )?;
    let mut f = Fields(w);
    match &m.body {
        Body::InstrumentDefinition(d) => {
            f.str("market_category", &[d.market_category])?;
            f.str("financial_status", &[d.financial_status])?;
            f.num("round_lot_size", d.round_lot_size)?;
            f.str("round_lots_only", &[d.round_lots_only])?;
            f.str("issue_classification", &[d.issue_classification])?;
            f.str("issue_sub_type", &d.issue_sub_type)?;
            f.str("authenticity", &[d.authenticity])?;
            f.str("short_sale_threshold", &[d.short_sale_threshold])?;
            f.str("ipo_flag", &[d.ipo_flag])?;
            f.str("luld_tier", &[d.luld_tier])?;
            f.str("etp_flag", &[d.etp_flag])?;
            f.num("etp_leverage_factor", d.etp_leverage_factor)?;
            f.str("inverse", &[d.inverse])?;
            f.str("source_type", &[d.source_type])
        }
        Body::OrderAdd(o) => {
            f.num("order_id", o.order_id)?;
            f.str("side", &[o.side])?;
            f.num("quantity", o.quantity)?;
            f.price("price", o.price)?;
            f.str("attribution", &o.attribution)
        }
        Body::OrderReplace(o) => {
            f.num("orig_order_id", o.orig_order_id)?;
            f.num("new_order_id", o.new_order_id)?;
            f.str("side", &[o.side])?;
            f.num("quantity", o.quantity)?;
            f.price("price", o.price)
        }
        Body::OrderCancel(o) => {
            f.num("order_id", o.order_id)?;
            f.str("side", &[o.side])?;
            f.num("cancelled_quantity", o.cancelled_quantity)?;
            f.num("remaining_quantity", o.remaining_quantity)
        }
        Body::OrderDelete(o) => {
            f.num("order_id", o.order_id)?;
            f.str("side", &[o.side])
        }
        Body::OrderExecuted(e) | Body::OrderExecutedWithPrice(e) => {
            f.num("order_id", e.order_id)?;
            f.num("match_number", e.match_number)?;
            f.str("side", &[e.side])?;
            f.num("quantity", e.quantity)?;
            f.price("price", e.price)?;
            f.str("printable", &[e.printable])
        }
        Body::Trade(t) => {
            f.num("order_id", t.order_id)?;
            f.num("match_number", t.match_number)?;
            f.str("side", &[t.side])?;
            f.num("quantity", t.quantity)?;
            f.price("price", t.price)
        }
        Body::CrossTrade(c) => {
            f.num("match_number", c.match_number)?;
            f.num("quantity", c.quantity)?;
            f.price("price", c.price)?;
            f.str("cross_type", &[c.cross_type])
        }
        Body::BrokenTrade(b) => f.num("match_number", b.match_number),
        Body::TradingStatus(s) => {
            f.str("status_type", &[s.status_type])?;
            f.str("state", &[s.state])?;
            f.str("reason", &s.reason)?;
            f.str("market_code", &[s.market_code])
        }
        Body::SystemEvent(s) => {
            f.str("source_type", &[s.source_type])?;
            f.str("event_code", &[s.event_code])?;
            f.price("level1", s.level1)?;
            f.price("level2", s.level2)?;
            f.price("level3", s.level3)
        }
        Body::Imbalance(i) => {
            f.num("paired_shares", i.paired_shares)?;
            f.num("imbalance_shares", i.imbalance_shares)?;
            f.str("direction", &[i.direction])?;
            f.str("cross_type", &[i.cross_type])?;
            f.price("far_price", i.far_price)?;
            f.price("near_price", i.near_price)?;
            f.price("reference_price", i.reference_price)
        }
        Body::TopOfBook(t) => {
            f.price("bid_price", t.bid_price)?;
            f.num("bid_quantity", t.bid_quantity)?;
            f.price("ask_price", t.ask_price)?;
            f.num("ask_quantity", t.ask_quantity)
        }
        Body::FeedStatus(s) => {
            f.str("status", &[s.status])?;
            f.num("first", s.first)?;
            f.num("last", s.last)
        }
    }?;
    w.write_char('}')
}

struct Fields<'a, W: Write>(&'a mut W);

impl<W: Write> Fields<'_, W> {
    fn num(&mut self, name: &str, v: impl fmt::Display) -> fmt::Result {
        write!(self.0, ",\"{name}\":{v}")
    }
    fn price(&mut self, name: &str, p: Price) -> fmt::Result {
        write!(self.0, ",\"{name}\":\"{p}\"")
    }
    fn str(&mut self, name: &str, v: &[u8]) -> fmt::Result {
        write!(self.0, ",\"{name}\":")?;
        string(self.0, trim(v))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    &v[..end]
}

/// A JSON string of bytes: printable ASCII as is (escaped where JSON needs), others as \u00XX.
fn string<W: Write>(w: &mut W, v: &[u8]) -> fmt::Result {
    w.write_char('"')?;
    for &b in v {
        match b {
            b'"' => w.write_str("\\\"")?,
            b'\\' => w.write_str("\\\\")?,
            0x20..=0x7e => w.write_char(b as char)?,
            _ => write!(w, "\\u{b:04x}")?,
        }
    }
    w.write_char('"')
}
