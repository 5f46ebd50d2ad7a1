//! File sources beyond the shared captures: gzip BinaryFILE, pcapng, 802.1Q VLAN tags and the
//! destination filter, all written here from real data and decoded by the feed handler.

use feedhandler::source::pcap::Filter;
use feedhandler::source::{self, FileFormat};
use feedhandler::{FeedHandler, SessionClock};
use protocol::moldudp64::{PacketBuilder, Session};
use std::io::Write;
use std::path::Path;
use tickcast_tests::{data, scratch};

fn decode(path: &Path, filter: Filter) -> feedhandler::DecodeStats {
    let mut src = source::open_file(path, None, filter).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2019, 12, 30).unwrap();
    let mut fh = FeedHandler::new(SessionClock::new(date), false);
    fh.accept_unsequenced = true;
    feedhandler::replay::run(src.as_mut(), &mut fh, None, &|| false, &mut |_| {}).unwrap();
    fh.normalizer.stats
}

/// The Nasdaq snippet's messages packed into MoldUDP64 datagrams.
fn snippet_datagrams() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(data("itch50/nasdaq-20191230-0930-snippet.itch50")).unwrap();
    let session = Session::new("000010059B").unwrap();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, 1).unwrap();
    while let Some((m, r)) = protocol::moldudp64::split_block(rest) {
        rest = r;
        if !b.fits(m.len()) {
            out.push(b.as_bytes().to_vec());
            let next = b.next_sequence();
            b.reset(next);
        }
        b.append(m).unwrap();
    }
    out.push(b.as_bytes().to_vec());
    out
}

#[test]
fn gzip_binaryfile_decodes_like_plain() {
    let plain = data("itch50/nasdaq-20191230-0930-snippet.itch50");
    let dir = scratch("gzip");
    let gz = dir.join("snippet.itch50.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    assert_eq!(FileFormat::sniff(&gz).unwrap(), FileFormat::BinaryFileGzip);
    let (a, b) = (
        decode(&plain, Filter::default()),
        decode(&gz, Filter::default()),
    );
    assert_eq!(b.messages, 1000);
    assert_eq!(a.by_source_type, b.by_source_type);
    assert_eq!(b.malformed, 0);
}

#[test]
fn pcapng_with_vlan_tags_and_a_destination_filter() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;
    let dir = scratch("pcapng");
    let path = dir.join("vlan.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 65535,
        options: vec![],
    })
    .unwrap();
    let datagrams = snippet_datagrams();
    for (i, d) in datagrams.iter().enumerate() {
        // The snippet to the right group on VLAN 100, and a decoy copy to another port.
        for port in [26477u16, 26478] {
            let b =
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [1, 0, 0x5e, 54, 12, 111])
                    .single_vlan(etherparse::VlanId::try_new(100).unwrap())
                    .ipv4([10, 0, 0, 1], [233, 54, 12, 111], 32)
                    .udp(5000, port);
            let mut frame = Vec::new();
            b.write(&mut frame, d).unwrap();
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::from_micros(1_577_716_200_000_000 + i as u64),
                original_len: frame.len() as u32,
                data: std::borrow::Cow::Borrowed(&frame),
                options: vec![],
            })
            .unwrap();
        }
    }
    drop(w);
    assert_eq!(FileFormat::sniff(&path).unwrap(), FileFormat::PcapNg);
    let filter = Filter {
        group: Some("233.54.12.111".parse().unwrap()),
        port: Some(26477),
    };
    let st = decode(&path, filter);
    assert_eq!(st.messages, 1000, "the decoy port is filtered out");
    assert_eq!(st.by_source_type[b'A' as usize], 367);
    assert_eq!((st.malformed, st.gaps, st.duplicates), (0, 0, 0));
    let both = decode(&path, Filter::default());
    assert_eq!(
        both.duplicates, 1000,
        "without the port filter the decoy repeats every sequence"
    );
}
