//! `tickcast decode` and `tickcast gen` as a user runs them: output fields, exit codes, and one
//! clear stderr line for input that is not what it claims.

use serde_json::Value;
use std::process::Command;
use tickcast_tests::{bin, data, scratch};

fn decode(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("tickcast"))
        .arg("decode")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn snippet_stats_and_json() {
    let f = data("itch50/nasdaq-20191230-0930-snippet.itch50");
    let (code, out, err) = decode(&["--stats", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    for k in [
        "messages",
        "by_source_type",
        "by_kind",
        "malformed",
        "unknown_type",
        "gaps",
        "instruments",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["messages"], 1000);
    assert_eq!(v["by_source_type"]["A"], 367);
    assert_eq!(v["malformed"], 0);

    let (code, out, _) = decode(&["--json", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 1000);
    for l in &lines {
        for k in ["kind", "instrument", "symbol", "event_ts_ns"] {
            assert!(l.get(k).is_some(), "{l}");
        }
    }
    // An add order with a decimal-string price, at 2019-12-30 09:30 EST = 14:30 UTC.
    let add = lines.iter().find(|l| l["kind"] == "order_add").unwrap();
    assert!(add["price"].as_str().unwrap().contains('.'));
    let ts = add["event_ts_ns"].as_u64().unwrap();
    assert!(
        (1_577_716_200_000_000_000..1_577_716_260_000_000_000).contains(&ts),
        "{ts}"
    );
    assert!(!add["symbol"].as_str().unwrap().is_empty());
}

#[test]
fn bad_inputs_exit_non_zero_with_one_line() {
    let ritch = data("itch50/ritch-artificial-zero-length-prefixes.itch50");
    let cme = data("pcap/other-venues/Cme/Mdp3.Sbe.v1.9/MdIncrementalRefreshBook.pcap");
    for (f, fmt, needle) in [
        (&ritch, "auto", "zero length prefix"),
        (&ritch, "binaryfile", "zero length prefix"),
        (&cme, "pcap", "not ITCH 5.0 over MoldUDP64"),
    ] {
        let (code, out, err) = decode(&["--stats", "--format", fmt, f.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {err}", f.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{err}");
        // What could be counted still is.
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert!(v["malformed"].as_u64().unwrap() > 0);
    }
}

#[test]
fn gen_writes_decodable_binaryfile_and_pcap() {
    let dir = scratch("gen");
    let bf = dir.join("gen.itch50");
    let pcap = dir.join("gen.pcap");
    let gen = |out: &std::path::Path, fmt: &str| {
        let st = Command::new(bin("tickcast"))
            .args([
                "gen",
                "--messages",
                "50000",
                "--instruments",
                "20",
                "--seed",
                "9",
                "--format",
                fmt,
            ])
            .arg("--out")
            .arg(out)
            .status()
            .unwrap();
        assert!(st.success());
    };
    gen(&bf, "binaryfile");
    gen(&pcap, "pcap");
    for f in [&bf, &pcap] {
        let (code, out, err) = decode(&["--stats", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["messages"], 50000);
        assert_eq!(v["malformed"], 0);
        assert_eq!(v["unknown_order"], 0, "book-consistent lifecycles");
        assert_eq!(v["instruments"], 20);
        assert_eq!(v["gaps"], 0);
        assert_eq!(v["by_source_type"]["R"], 20, "directory first");
    }
    // Same seed, same bytes.
    let again = dir.join("again.itch50");
    gen(&again, "binaryfile");
    assert_eq!(std::fs::read(&bf).unwrap(), std::fs::read(&again).unwrap());
}
