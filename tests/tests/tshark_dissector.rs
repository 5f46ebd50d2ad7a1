//! The Wireshark/tshark dissector for tickcast records (`tools/wireshark/tickcast.lua`): on the
//! golden packets (one per kind) and on a capture of `tickcast run`, every record tshark shows
//! has every field equal to what `tickcast decode --json` renders for it (protocol::json).

use protocol::json::JsonLines;
use protocol::moldudp64::Packet;
use protocol::schema::Repr;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tickcast_tests::*;

fn lua() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tools/wireshark/tickcast.lua")
}

/// The tickcast records tshark dissects in `file`, in order, as objects of `tickcast.*` fields.
fn tshark_records(
    file: &Path,
    port: u16,
    filter: Option<&str>,
) -> Vec<serde_json::Map<String, Value>> {
    let args = [
        "-X".to_string(),
        format!("lua_script:{}", lua().display()),
        "-T".to_string(),
        "json".to_string(),
        "--no-duplicate-keys".to_string(),
    ];
    let out = tshark_output(file, port, &args, filter);
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Array(vec![]));
    let mut records = Vec::new();
    for pkt in v.as_array().into_iter().flatten() {
        match &pkt["_source"]["layers"]["tickcast"] {
            Value::Object(o) => records.push(o.clone()),
            Value::Array(a) => records.extend(a.iter().filter_map(|o| o.as_object().cloned())),
            _ => {}
        }
    }
    records
}

/// Every field of the JSON line equals the dissector's field of the same name.
fn assert_same(json_line: &str, dissected: &serde_json::Map<String, Value>) {
    let want: Value = serde_json::from_str(json_line).unwrap();
    for (k, v) in want.as_object().unwrap() {
        let got = dissected
            .get(&format!("tickcast.{k}"))
            .unwrap_or_else(|| panic!("tickcast.{k} missing: {dissected:?}"));
        let want = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(got.as_str(), Some(want.as_str()), "{k} in {json_line}");
    }
}

fn records_of(datagrams: &[Vec<u8>]) -> Vec<(u64, Repr)> {
    let mut out = Vec::new();
    for d in datagrams {
        let Ok(p) = Packet::new_checked(&d[..]) else {
            continue;
        };
        for (seq, m) in (p.sequence()..).zip(p.messages()) {
            if let Ok(r) = Repr::parse(m.unwrap()) {
                out.push((seq, r));
            }
        }
    }
    out
}

#[test]
fn the_dissector_shows_every_field_of_the_golden_packets() {
    if !have_tshark() {
        assert!(!in_ci(), "tshark is required in CI");
        println!("SKIPPED: tshark is not installed");
        return;
    }
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("protocol/tests/golden/packets.txt"),
    )
    .unwrap();
    let datagrams: Vec<Vec<u8>> = golden
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(_, hex)| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    let file = scratch("dissector").join("golden.pcap");
    write_pcap(&file, Ipv4Addr::new(239, 1, 1, 1), 31001, &datagrams);
    let got = tshark_records(&file, 31001, None);
    let want = records_of(&datagrams);
    assert_eq!(got.len(), want.len());
    assert_eq!(
        want.len(),
        protocol::Kind::ALL.len(),
        "one record of every kind"
    );
    let mut lines = JsonLines::new();
    for ((seq, r), d) in want.iter().zip(&got) {
        assert_same(lines.render(r, Some(*seq)), d);
    }
    // The README's filter works.
    let prices = tshark_records(
        &file,
        31001,
        Some("tickcast.kind == \"order_add\" && tickcast.symbol == \"IVOO\""),
    );
    assert_eq!(prices.len(), 1);
    assert_eq!(prices[0]["tickcast.price"], "87.3900");
}

#[test]
fn the_dissector_agrees_with_decode_on_a_capture_of_tickcast_run() {
    if !have_tshark() {
        assert!(!in_ci(), "tshark is required in CI");
        println!("SKIPPED: tshark is not installed");
        return;
    }
    let base = ports(3);
    let dir = scratch("dissector-run");
    // Captured on lo: GSO off (a GSO send is one large packet there).
    let g = TestGroup::new(3, 9, base, "gso = \"off\"");
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        config(
            "source = \"generator\"",
            std::slice::from_ref(&g),
            &dir.join("j"),
        ),
    )
    .unwrap();
    let Some(capture) = Capture::start(&dir.join("run.pcapng"), &format!("udp port {}", base + 9))
    else {
        return; // not root: said so
    };
    let snippet = data("itch50/nasdaq-20191230-0930-snippet.itch50");
    replay(&cfg, &snippet);
    std::thread::sleep(Duration::from_millis(300));
    let file = capture.stop();
    // What the capture holds, decoded by the protocol crate (feed A only: B repeats it).
    let port = base + 9;
    let filter = feedhandler::source::pcap::Filter {
        group: Some(g.feed_a.split(':').next().unwrap().parse().unwrap()),
        port: Some(port),
    };
    let (mut src, _) = feedhandler::source::open(&file, None, filter).unwrap();
    let mut datagrams = Vec::new();
    while let Ok(Some(f)) = src.next_frame() {
        datagrams.push(f.bytes.to_vec());
    }
    let want = records_of(&datagrams);
    assert!(want.len() > 1000, "{} records captured", want.len());
    let feed_a = g.feed_a.split(':').next().unwrap();
    let got = tshark_records(&file, port, Some(&format!("ip.dst == {feed_a}")));
    assert_eq!(got.len(), want.len());
    let mut lines = JsonLines::new();
    for ((seq, r), d) in want.iter().zip(&got) {
        assert_same(lines.render(r, Some(*seq)), d);
    }
}
