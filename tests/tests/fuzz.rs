//! Fuzz targets, proptest-driven so that CI can run them on the stable toolchain: structure-aware
//! inputs (valid packets and messages, then mutated: overwritten bytes, truncation, random counts)
//! into the MoldUDP64 decoder, the ITCH decoder and feed handler, the normalized decoder, the
//! SDK's packet path, the config parser and the capture reader. The same targets (and longer
//! campaigns) run coverage-guided under `cargo +nightly fuzz` in `fuzz/`. None may panic, and each keeps its invariants. CI runs a bounded number of
//! cases; `TICKCAST_FUZZ_CASES=N cargo test --release --test fuzz` runs a longer campaign.

use feedhandler::generator::{Generator, GeneratorConfig, MAX_MESSAGE};
use feedhandler::source::{Frame, Framing};
use feedhandler::{FeedHandler, SessionClock};
use net::arbiter::{Arbiter, ArbiterConfig, Feed, Output};
use proptest::prelude::*;
use protocol::moldudp64::{Packet, PacketBuilder, Session};
use protocol::schema::{Repr, RECORD_SIZE};

fn cases() -> u32 {
    std::env::var("TICKCAST_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// A valid MoldUDP64 datagram of real-looking ITCH (or tickcast records), then mutated.
fn datagram(itch: bool) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u64>(),
        1u64..1_000_000,
        0usize..30,
        proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8),
        any::<Option<u16>>(),
        any::<Option<u16>>(),
    )
        .prop_map(move |(seed, seq, n, flips, cut, count)| {
            let mut g = Generator::new(GeneratorConfig {
                instruments: 20,
                seed,
                ..Default::default()
            });
            let session = Session::new("FUZZ000001").unwrap();
            let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, seq).unwrap();
            let mut m = [0u8; MAX_MESSAGE];
            for i in 0..n {
                if itch {
                    let len = g.next_message(&mut m);
                    if b.append(&m[..len]).is_err() {
                        break;
                    }
                } else {
                    let mut r = [0u8; RECORD_SIZE];
                    r[0] = 1;
                    r[1] = (i % 16) as u8;
                    r[8..16].copy_from_slice(&seed.to_le_bytes());
                    if b.append(&r).is_err() {
                        break;
                    }
                }
            }
            let mut d = b.as_bytes().to_vec();
            for (pos, byte) in flips {
                if !d.is_empty() {
                    let i = pos as usize % d.len();
                    d[i] = byte;
                }
            }
            if let Some(c) = count {
                if d.len() >= 20 {
                    d[18..20].copy_from_slice(&c.to_be_bytes());
                }
            }
            if let Some(c) = cut {
                d.truncate(c as usize % (d.len() + 1));
            }
            d
        })
}

#[derive(Default)]
struct Check {
    last: u64,
    delivered: u64,
}

impl Output for Check {
    fn deliver(&mut self, seq: u64, _rec: &[u8]) {
        assert!(seq > self.last, "out of order: {seq} after {}", self.last);
        self.last = seq;
        self.delivered += 1;
    }
    fn gap(&mut self, from: u64, to: u64) {
        assert!(from > self.last && to >= from);
        self.last = to;
    }
    fn request(&mut self, _: u64, _: u16) {}
    fn end_of_session(&mut self, _: u64) {}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn moldudp64_decoder(d in datagram(true)) {
        if let Ok(p) = Packet::new_checked(&d[..]) {
            let mut items = 0usize;
            let mut bytes = 0usize;
            for m in p.messages() {
                items += 1;
                if let Ok(m) = m {
                    bytes += m.len() + 2;
                }
            }
            prop_assert!(items <= usize::from(p.message_count()));
            prop_assert!(bytes <= d.len() - 20);
            let _ = (p.validate(), p.next_sequence(), p.session().as_str().len());
        } else {
            prop_assert!(d.len() < 20);
        }
    }

    #[test]
    fn itch_decoder_and_feed_handler(d in datagram(true), raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let mut fh = FeedHandler::new(SessionClock::new(date), false);
        let mut n = 0u64;
        fh.on_frame(&Frame { framing: Framing::MoldUdp64, bytes: &d, recv_ts_ns: 1, feed: net::Feed::A, from: None }, &mut |_| n += 1);
        // The same bytes read as BinaryFILE records, and a raw message.
        fh.on_frame(&Frame { framing: Framing::BinaryFile, bytes: &d, recv_ts_ns: 1, feed: net::Feed::A, from: None }, &mut |_| n += 1);
        let _ = fh.normalizer.on_raw(&raw, 1, &mut |_| n += 1);
        let st = &fh.normalizer.stats;
        prop_assert!(st.normalized() == n);
        prop_assert!(fh.normalizer.books().levels_match_orders());
    }

    #[test]
    fn normalized_decoder(mut rec in proptest::collection::vec(any::<u8>(), 0..80), kind in 0u8..20) {
        if rec.len() >= 2 {
            rec[0] = 1;
            rec[1] = kind;
        }
        if let Ok(r) = Repr::parse(&rec) {
            prop_assert_eq!(rec.len(), RECORD_SIZE);
            let mut s = String::new();
            protocol::json::write_message(&mut s, &r, "FUZZ", Some(1)).unwrap();
            prop_assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok(), "{}", s);
        }
    }

    #[test]
    fn sdk_packet_path(ds in proptest::collection::vec(datagram(false), 1..20)) {
        let mut arb = Arbiter::new(ArbiterConfig { buffer: 256, ..Default::default() });
        let mut check = Check::default();
        for (i, d) in ds.iter().enumerate() {
            let now = i as u64 * 1_000_000;
            let Ok(p) = Packet::new_checked(&d[..]) else { continue };
            if p.validate().is_err() {
                continue;
            }
            match p.kind() {
                protocol::PacketKind::Data => arb.on_data(now, Feed::A, p.sequence(), p.messages().map(|m| m.ok()), &mut check),
                protocol::PacketKind::Heartbeat => arb.on_heartbeat(now, p.sequence(), &mut check),
                protocol::PacketKind::EndOfSession => arb.on_end_of_session(now, p.sequence(), &mut check),
            }
            arb.tick(now, &mut check);
        }
        prop_assert_eq!(check.delivered, arb.stats.delivered);
    }

    #[test]
    fn config_parser(
        edits in proptest::collection::vec((any::<u16>(), "[ -~\n]{0,12}"), 0..6),
        cut in any::<Option<u16>>(),
    ) {
        // The default config with lines overwritten and cut: a config, or one error line.
        let mut lines: Vec<String> = distributor::config::DEFAULT_TOML.lines().map(String::from).collect();
        for (at, text) in edits {
            let i = at as usize % lines.len();
            lines[i] = text;
        }
        let mut text = lines.join("\n");
        if let Some(c) = cut {
            let mut c = c as usize % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            text.truncate(c);
        }
        match distributor::config::Config::parse(&text, "fuzz") {
            Ok(cfg) => {
                let again = distributor::config::Config::parse(&cfg.to_toml(), "printed");
                prop_assert_eq!(again.as_ref(), Ok(&cfg));
            }
            Err(e) => prop_assert!(!e.contains('\n'), "one line: {}", e),
        }
    }

    #[test]
    fn capture_reader(
        ds in proptest::collection::vec(datagram(true), 0..6),
        link in prop_oneof![Just(1u32), Just(113), Just(276), Just(101), Just(0), Just(108), Just(105)],
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
        cut in any::<Option<u16>>(),
    ) {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let header = PcapHeader { datalink: pcap_file::DataLink::from(link), ..Default::default() };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        for (i, d) in ds.iter().enumerate() {
            let b = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [239, 0, 0, 1], 8).udp(1, 2);
            let mut frame = vec![0u8; 20];
            b.write(&mut frame, d).unwrap();
            let ts = std::time::Duration::from_micros(1_692_711_000_000_000 + i as u64);
            w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame)).unwrap();
        }
        let mut bytes = w.into_writer();
        for (pos, b) in flips {
            if !bytes.is_empty() {
                let i = pos as usize % bytes.len();
                bytes[i] = b;
            }
        }
        if let Some(c) = cut {
            bytes.truncate(c as usize % (bytes.len() + 1));
        }
        let len = bytes.len();
        let input: feedhandler::source::Input = Box::new(std::io::Cursor::new(bytes));
        if let Ok((mut src, _)) = feedhandler::source::open_input(
            input,
            std::path::Path::new("fuzz.pcap"),
            len as u64,
            None,
            feedhandler::source::pcap::Filter::default(),
        ) {
            let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
            let mut fh = FeedHandler::new(SessionClock::new(date), true);
            let mut n = 0u64;
            for _ in 0..=len {
                match src.next_frame() {
                    Ok(Some(frame)) => fh.on_frame(&frame, &mut |_| n += 1),
                    Ok(None) | Err(_) => break,
                }
            }
            fh.finish(&mut |_| n += 1);
            prop_assert_eq!(fh.normalizer.stats.normalized(), n);
        }
    }
}
