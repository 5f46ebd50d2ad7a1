//! Independent check of the framing: packets built by the protocol crate, written to a pcap, must
//! decode in tshark's own MoldUDP64 dissector with the same session, sequence, count and message
//! lengths, and with no malformed frames or expert warnings.

use protocol::moldudp64::{emit_end_of_session, emit_heartbeat, PacketBuilder, Session};
use protocol::schema::{Body, OrderDelete, Repr, RECORD_SIZE};
use std::net::Ipv4Addr;

const PORT: u16 = 31001;

#[test]
fn tshark_decodes_protocol_packets() {
    if !tickcast_tests::have_tshark() {
        panic!("tshark is required (CI installs it via .ci/run)");
    }
    let session = Session::new("TCTEST0001").unwrap();
    let mut datagrams = Vec::new();
    let mut expected = Vec::new(); // (sequence, count, msglens)
    let mut seq = 1u64;
    for n in [1usize, 5, 22, 3] {
        let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, seq).unwrap();
        for i in 0..n {
            let m = Repr {
                instrument: i as u32,
                event_ts_ns: 1,
                recv_ts_ns: 2,
                body: Body::OrderDelete(OrderDelete {
                    order_id: seq + i as u64,
                    side: b'S',
                }),
            };
            b.append_with(RECORD_SIZE, |d| m.emit(d).unwrap()).unwrap();
        }
        // a 22-message packet is exactly full at 1472 bytes
        assert_eq!(b.fits(RECORD_SIZE), n < 22);
        expected.push((seq, n as u16, vec![RECORD_SIZE; n]));
        datagrams.push(b.as_bytes().to_vec());
        seq += n as u64;
    }
    // a raw block of another size: tshark must report its real length
    let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, seq).unwrap();
    b.append(&[7u8; 9]).unwrap();
    expected.push((seq, 1, vec![9]));
    datagrams.push(b.as_bytes().to_vec());
    seq += 1;
    let mut hb = [0u8; 20];
    emit_heartbeat(&mut hb, &session, seq);
    datagrams.push(hb.to_vec());
    expected.push((seq, 0, vec![]));
    let mut eos = [0u8; 20];
    emit_end_of_session(&mut eos, &session, seq);
    datagrams.push(eos.to_vec());
    expected.push((seq, 0xFFFF, vec![]));

    let dir = tickcast_tests::scratch("tshark-framing");
    let file = dir.join("framing.pcap");
    tickcast_tests::write_pcap(&file, Ipv4Addr::new(239, 1, 1, 1), PORT, &datagrams);

    let lines = tickcast_tests::tshark_fields(
        &file,
        PORT,
        &[
            "moldudp64.session",
            "moldudp64.sequence",
            "moldudp64.count",
            "moldudp64.msglen",
        ],
        None,
    );
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, (seq, count, lens)) in lines.iter().zip(&expected) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[0].trim(), "TCTEST0001", "{line}");
        assert_eq!(f[1].parse::<u64>().unwrap(), *seq, "{line}");
        assert_eq!(f[2].parse::<u32>().unwrap(), u32::from(*count), "{line}");
        let got: Vec<usize> = f
            .get(3)
            .unwrap_or(&"")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(&got, lens, "{line}");
    }
    let problems = tickcast_tests::tshark_problems(&file, PORT);
    assert!(problems.is_empty(), "tshark reports problems: {problems:?}");
}
