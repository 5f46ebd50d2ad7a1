//! docs/PROTOCOL.md and the code agree: the worked example decodes to the documented values.

use protocol::moldudp64::Packet;
use protocol::schema::{Body, Price, Repr};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

fn example_bytes() -> Vec<u8> {
    let start = DOC.find("```hex\n").expect("hex block in PROTOCOL.md") + 7;
    let end = start + DOC[start..].find("```").unwrap();
    let hex: String = DOC[start..end]
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn worked_example_decodes() {
    let bytes = example_bytes();
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(p.session().as_str(), "GOLDEN");
    assert_eq!(p.sequence(), 2);
    assert_eq!(p.count(), 1);
    let msgs: Vec<_> = p.messages().collect();
    assert_eq!(msgs.len(), 1);
    let m = Repr::parse(msgs[0].unwrap()).unwrap();
    assert_eq!(m.instrument, 5528);
    assert_eq!(m.event_ts_ns, 1_692_711_000_000_001_000);
    assert_eq!(m.recv_ts_ns, 1_692_711_000_000_003_500);
    let Body::OrderAdd(a) = m.body else {
        panic!("not an order_add: {m:?}")
    };
    assert_eq!(a.order_id, 23_508_286);
    assert_eq!(a.price, Price::from_p4(873_900));
    assert_eq!(a.price.to_string(), "87.3900");
    assert_eq!(a.quantity, 1600);
    assert_eq!(a.side, b'B');
    assert_eq!(&a.attribution, b"    ");

    let mut json = String::new();
    protocol::json::write_message(&mut json, &m, "IVOO", None).unwrap();
    assert!(
        DOC.contains(&format!("As JSON: `{json}`")),
        "JSON in the doc differs: {json}"
    );
}
