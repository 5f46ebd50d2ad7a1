//! Golden bytes: one packet per message kind, plus a heartbeat and an end-of-session packet, kept
//! in `tests/golden/packets.txt`. Encoding must reproduce them byte for byte and decoding them must
//! give the samples back. `TICKCAST_BLESS=1` rewrites the file after a deliberate schema change.

mod common;

use protocol::moldudp64::{emit_end_of_session, emit_heartbeat, Packet, PacketBuilder, Session};
use protocol::schema::{Repr, RECORD_SIZE};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/packets.txt");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn build_all() -> Vec<(String, Vec<u8>)> {
    let session = Session::new("GOLDEN").unwrap();
    let mut out = Vec::new();
    for (i, m) in common::samples().iter().enumerate() {
        let mut b = PacketBuilder::new(vec![0u8; 1472], 1472, &session, i as u64 + 1).unwrap();
        b.append_with(RECORD_SIZE, |d| m.emit(d).unwrap()).unwrap();
        out.push((m.kind().name().to_string(), b.as_bytes().to_vec()));
    }
    let mut buf = [0u8; 20];
    let n = emit_heartbeat(&mut buf, &session, 15);
    out.push(("heartbeat".into(), buf[..n].to_vec()));
    let n = emit_end_of_session(&mut buf, &session, 15);
    out.push(("end_of_session".into(), buf[..n].to_vec()));
    out
}

#[test]
fn golden_packets_match() {
    let built = build_all();
    if std::env::var_os("TICKCAST_BLESS").is_some() {
        let text: String = built
            .iter()
            .map(|(k, b)| format!("{k} {}\n", hex(b)))
            .collect();
        std::fs::write(FILE, text).unwrap();
    }
    let text = std::fs::read_to_string(FILE).unwrap();
    let golden: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    assert_eq!(
        golden.len(),
        built.len(),
        "one golden packet per kind plus heartbeat and EOS"
    );
    let samples = common::samples();
    for (i, ((gk, gh), (k, b))) in golden.iter().zip(&built).enumerate() {
        assert_eq!(gk, k);
        assert_eq!(*gh, hex(b), "encoding of {k} changed");
        let bytes = unhex(gh);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.session().as_str(), "GOLDEN");
        if let Some(sample) = samples.get(i) {
            assert_eq!(p.sequence(), i as u64 + 1);
            let msgs: Vec<_> = p
                .messages()
                .map(|m| Repr::parse(m.unwrap()).unwrap())
                .collect();
            assert_eq!(msgs, vec![*sample]);
        } else {
            assert_eq!(p.next_sequence(), 15);
            assert_eq!(p.messages().count(), 0);
        }
    }
}
