//! The feed handler on real data: the spec's golden vectors field by field, the Nasdaq snippet's
//! per-type counts, every real Nasdaq/BX/PSX capture, and inputs that are not what they claim.

use feedhandler::itch::{self, Message};
use feedhandler::source::pcap::Filter;
use feedhandler::source::{self, FileFormat};
use feedhandler::{FeedHandler, SessionClock};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use tickcast_tests::{data, shared_dir};

fn s(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}
fn c(b: u8) -> Value {
    json!((b as char).to_string())
}
fn p4(v: u32) -> Value {
    json!(f64::from(v) / 10_000.0)
}

/// Every field of a decoded message under the spec's names.
fn fields(m: &Message<'_>) -> BTreeMap<&'static str, Value> {
    let mut f: BTreeMap<&'static str, Value> = BTreeMap::new();
    f.insert("type", c(m.type_byte()));
    f.insert("stock_locate", json!(m.stock_locate()));
    let t = m.timestamp();
    let secs = t / 1_000_000_000;
    f.insert(
        "timestamp",
        json!(format!(
            "{:02}:{:02}:{:02}.{:09}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            t % 1_000_000_000
        )),
    );
    if let Some(stock) = m.stock() {
        f.insert("stock", s(&stock.0));
    }
    match m {
        Message::SystemEvent(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("event_code", c(x.event_code()));
        }
        Message::AddOrder(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("side", c(x.side()));
            f.insert("shares", json!(x.shares()));
            f.insert("price", p4(x.price()));
        }
        Message::AddOrderMpid(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("side", c(x.side()));
            f.insert("shares", json!(x.shares()));
            f.insert("price", p4(x.price()));
            f.insert("attribution", s(&x.attribution()));
        }
        Message::OrderExecuted(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("executed_shares", json!(x.executed_shares()));
            f.insert("match_number", json!(x.match_number()));
        }
        Message::OrderExecutedWithPrice(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("executed_shares", json!(x.executed_shares()));
            f.insert("match_number", json!(x.match_number()));
            f.insert("printable", c(x.printable()));
            f.insert("execution_price", p4(x.execution_price()));
        }
        Message::OrderCancel(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("cancelled_shares", json!(x.cancelled_shares()));
        }
        Message::OrderDelete(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
        }
        Message::OrderReplace(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("orig_order_ref", json!(x.orig_order_ref()));
            f.insert("new_order_ref", json!(x.new_order_ref()));
            f.insert("shares", json!(x.shares()));
            f.insert("price", p4(x.price()));
        }
        Message::Trade(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("order_ref", json!(x.order_ref()));
            f.insert("side", c(x.side()));
            f.insert("shares", json!(x.shares()));
            f.insert("price", p4(x.price()));
            f.insert("match_number", json!(x.match_number()));
        }
        Message::CrossTrade(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("shares", json!(x.shares()));
            f.insert("cross_price", p4(x.cross_price()));
            f.insert("match_number", json!(x.match_number()));
            f.insert("cross_type", c(x.cross_type()));
        }
        Message::StockTradingAction(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("trading_state", c(x.trading_state()));
            f.insert("reserved", c(x.reserved()));
            f.insert("reason", s(&x.reason()));
        }
        Message::Noii(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("paired_shares", json!(x.paired_shares()));
            f.insert("imbalance_shares", json!(x.imbalance_shares()));
            f.insert("imbalance_direction", c(x.imbalance_direction()));
            f.insert("far_price", p4(x.far_price()));
            f.insert("near_price", p4(x.near_price()));
            f.insert("current_ref_price", p4(x.current_ref_price()));
            f.insert("cross_type", c(x.cross_type()));
            f.insert(
                "price_variation_indicator",
                c(x.price_variation_indicator()),
            );
        }
        Message::LuldAuctionCollar(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("auction_collar_ref_price", p4(x.auction_collar_ref_price()));
            f.insert(
                "upper_auction_collar_price",
                p4(x.upper_auction_collar_price()),
            );
            f.insert(
                "lower_auction_collar_price",
                p4(x.lower_auction_collar_price()),
            );
            f.insert(
                "auction_collar_extension",
                json!(x.auction_collar_extension()),
            );
        }
        Message::MarketParticipantPosition(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("mpid", s(&x.mpid()));
            f.insert("primary_market_maker", c(x.primary_market_maker()));
            f.insert("market_maker_mode", c(x.market_maker_mode()));
            f.insert("market_participant_state", c(x.market_participant_state()));
        }
        Message::RetailInterest(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("interest_flag", c(x.interest_flag()));
        }
        Message::RegShoRestriction(x) => {
            f.insert("tracking_number", json!(x.tracking_number()));
            f.insert("reg_sho_action", c(x.reg_sho_action()));
        }
        other => panic!(
            "no golden vector expected for {:?}",
            other.type_byte() as char
        ),
    }
    f
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn golden_vectors_decode_field_for_field() {
    let spec = std::fs::read_to_string(shared_dir().join("specs/itch50.md")).unwrap();
    let lines: Vec<&str> = spec.lines().collect();
    let mut checked = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(h) = l.strip_prefix("hex: ") else {
            continue;
        };
        let expected: Value = serde_json::from_str(&lines[i + 1].replace('\'', "\"")).unwrap();
        let bytes = unhex(h.trim());
        let m = itch::decode(&bytes).unwrap_or_else(|e| panic!("{h}: {e}"));
        let got = fields(&m);
        let want = expected.as_object().unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "field set of {:?}: {got:?}",
            m.type_byte() as char
        );
        for (k, v) in want {
            let g = got
                .get(k.as_str())
                .unwrap_or_else(|| panic!("missing field {k}"));
            if let (Some(a), Some(b)) = (g.as_f64(), v.as_f64()) {
                assert!((a - b).abs() < 1e-9, "{k}: {a} != {b}");
            } else {
                assert_eq!(g, v, "{k} of {:?}", m.type_byte() as char);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 16, "every golden vector in the spec");
}

fn decode_file(path: &Path) -> FeedHandler {
    let format = FileFormat::sniff(path).unwrap();
    let mut src = source::open_file(path, Some(format), Filter::default()).unwrap();
    let date = feedhandler::clock::date_from_name(&path.to_string_lossy())
        .unwrap_or(chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap());
    let mut fh = FeedHandler::new(SessionClock::new(date), format.is_pcap());
    fh.accept_unsequenced = true;
    let _ = feedhandler::replay::run(src.as_mut(), &mut fh, None, &|| false, &mut |_| {});
    fh
}

#[test]
fn snippet_counts_match_sources() {
    let fh = decode_file(&data("itch50/nasdaq-20191230-0930-snippet.itch50"));
    let st = &fh.normalizer.stats;
    let want = [
        (b'A', 367),
        (b'U', 225),
        (b'F', 193),
        (b'D', 167),
        (b'E', 28),
        (b'X', 6),
        (b'I', 4),
        (b'P', 4),
        (b'Q', 4),
        (b'C', 1),
        (b'S', 1),
    ];
    for (t, n) in want {
        assert_eq!(st.by_source_type[t as usize], n, "type {}", t as char);
    }
    assert_eq!(st.messages, 1000);
    assert_eq!((st.malformed, st.unknown_type), (0, 0));
    // Books built from the snippet's own orders stay consistent and uncrossed.
    let books = fh.normalizer.books();
    assert!(books.levels_match_orders());
    for i in books.instruments() {
        assert!(!books.is_crossed(i), "instrument {i} crossed");
    }
}

#[test]
fn every_real_nasdaq_capture_decodes_cleanly() {
    let root = data("pcap/nasdaq");
    let mut files = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if !name.contains("TotalView.Itch.v5.0") {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let fh = decode_file(&f);
            let st = &fh.normalizer.stats;
            assert!(st.messages > 0, "{}", f.display());
            assert_eq!(
                (st.malformed, st.unknown_type, st.bad_datagrams),
                (0, 0, 0),
                "{}",
                f.display()
            );
            assert!(st.verdict(FileFormat::Pcap).is_none());
            files += 1;
        }
    }
    assert!(files >= 40, "found {files} captures");
}

#[test]
fn pcap_frame_time_sets_the_session_date() {
    // The golden 'A': 09:29:59.999894278 EDT on 2023-08-22 = 13:29:59.999894278 UTC.
    let path = data("pcap/nasdaq/Nasdaq.Equities.TotalView.Itch.v5.0.20230822/AddOrderNoMPID.pcap");
    let mut src = source::open_file(&path, None, Filter::default()).unwrap();
    let far = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(far), true);
    fh.accept_unsequenced = true;
    let mut ts = Vec::new();
    feedhandler::replay::run(src.as_mut(), &mut fh, None, &|| false, &mut |m| {
        if m.kind() == protocol::Kind::OrderAdd {
            ts.push(m.event_ts_ns)
        }
    })
    .unwrap();
    assert_eq!(ts[0], 1_692_710_999_999_894_278);
}

#[test]
fn ritch_zero_length_prefixes_are_rejected_clearly() {
    let path = data("itch50/ritch-artificial-zero-length-prefixes.itch50");
    let fh = decode_file(&path);
    let st = &fh.normalizer.stats;
    assert!(st.zero_length > 0);
    let why = st.verdict(FileFormat::BinaryFile).unwrap();
    assert!(why.contains("zero length prefix"), "{why}");

    // Read by type-implied length instead, it holds what SOURCES.md lists, R samples included.
    let bytes = std::fs::read(&path).unwrap();
    let mut at = 0;
    let mut counts: BTreeMap<char, u64> = BTreeMap::new();
    let mut symbols = Vec::new();
    while at + 3 <= bytes.len() {
        let t = bytes[at + 2];
        let len = itch::message_len(t).expect("known type");
        let m = itch::decode(&bytes[at + 2..at + 2 + len]).unwrap();
        if let Message::StockDirectory(r) = m {
            symbols.push(r.stock().as_str().to_string());
            assert_eq!(r.round_lot_size(), 100);
        }
        *counts.entry(t as char).or_default() += 1;
        at += 2 + len;
    }
    let want: BTreeMap<char, u64> = [
        ('S', 6),
        ('R', 3),
        ('H', 3),
        ('A', 4997),
        ('F', 3),
        ('E', 198),
        ('D', 1745),
        ('P', 5000),
        ('U', 12),
        ('X', 45),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, want);
    assert_eq!(symbols.len(), 3);
}

#[test]
fn other_protocols_are_not_accepted_silently() {
    for dir in [
        "pcap/other-venues/Cme/Mdp3.Sbe.v1.9",
        "pcap/other-venues/Asx/Ntp.Itch.v1.05",
        "pcap/nasdaq/Ise.OrderComboFeed.v1.1",
        "pcap/other-venues/Jnx/JnxEquities.Pts.Itch.v1.6",
    ] {
        for f in std::fs::read_dir(data(dir)).unwrap() {
            let f = f.unwrap().path();
            let fh = decode_file(&f);
            let st = &fh.normalizer.stats;
            let v = st.verdict(FileFormat::Pcap);
            if f.file_name().unwrap() == "Heartbeat.pcap" {
                assert_eq!(st.heartbeats, 1, "{}", f.display());
                assert!(v.is_none());
            } else {
                assert!(
                    v.is_some(),
                    "{} was accepted as ITCH: {:?}",
                    f.display(),
                    st.to_json()
                );
            }
        }
    }
}
