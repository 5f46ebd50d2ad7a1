//! Real captures through `tickcast run --replay` to groups on loopback, checked by tshark on
//! `lo`: each group's sequence starts at 1 with no holes, per-group counts equal what routing
//! gives, feeds A and B carry the same packets, end of session is sent, tshark finds no errors;
//! a second run on the same journal continues the sequence.

use distributor::config::Config;
use distributor::routing::Router;
use feedhandler::source::{self, pcap::Filter};
use feedhandler::{FeedHandler, SessionClock};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tickcast_tests::*;

/// Messages each group should carry for `file`, from the library's own feed handler and router.
fn expected_counts(cfg: &Config, file: &Path) -> Vec<u64> {
    let mut src = source::open_file(file, None, Filter::default()).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let date = feedhandler::clock::date_from_name(&name)
        .unwrap_or(chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap());
    let is_pcap = name.ends_with(".pcap");
    let mut fh = FeedHandler::new(SessionClock::new(date), is_pcap);
    fh.accept_unsequenced = true;
    let mut router = Router::new(&cfg.groups);
    let mut counts = vec![0u64; cfg.groups.len()];
    feedhandler::replay::run(src.as_mut(), &mut fh, None, &|| false, &mut |m| {
        let mask = router.route(m);
        for (i, c) in counts.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *c += 1;
            }
        }
    })
    .unwrap();
    counts
}

#[test]
fn replays_reach_groups_in_sequence() {
    let base = ports(1);
    let dir = scratch("replay");
    let groups = vec![
        // Captured on lo and read datagram by datagram: GSO off (a GSO send is one large
        // packet on lo).
        TestGroup::new(1, 0, base, "symbol_ranges = [\"A-M\"]\ngso = \"off\""),
        TestGroup::new(1, 1, base, "symbol_ranges = [\"N-Z\"]\ngso = \"off\""),
        TestGroup::new(1, 2, base, "content = \"trades\"\ngso = \"off\""),
        TestGroup::new(1, 3, base, "content = \"top\"\ngso = \"off\""),
    ];
    let cfg_text = config("source = \"generator\"", &groups, &dir.join("journal"));
    let cfg_path = dir.join("tickcast.toml");
    std::fs::write(&cfg_path, &cfg_text).unwrap();
    let cfg = Config::parse(&cfg_text, "test").unwrap();

    let snippet = data("itch50/nasdaq-20191230-0930-snippet.itch50");
    let pcap = data("pcap/nasdaq/Nasdaq.Equities.TotalView.Itch.v5.0/Multiple.Packets.pcap");
    let want_snippet = expected_counts(&cfg, &snippet);
    let want_pcap = expected_counts(&cfg, &pcap);
    assert!(want_snippet.iter().all(|&n| n > 0), "{want_snippet:?}");

    let capture = Capture::start(
        &dir.join("out.pcapng"),
        &format!("udp portrange {}-{}", base, base + 9),
    );
    let mut summaries = Vec::new();
    for file in [&snippet, &pcap] {
        let v: Value = replay(&cfg_path, file);
        for k in ["messages_in", "sendmmsg_calls", "datagrams", "groups"] {
            assert!(v.get(k).is_some(), "summary lacks {k}: {v}");
        }
        summaries.push(v);
    }
    // The summaries agree with routing, and the second run continued each session.
    for (i, g) in groups.iter().enumerate() {
        let s1 = &summaries[0]["groups"][i];
        let s2 = &summaries[1]["groups"][i];
        assert_eq!(s1["name"], g.name.as_str());
        assert_eq!(s1["session"], g.session.as_str());
        assert_eq!(s1["messages"], want_snippet[i], "{}", g.name);
        assert_eq!(s1["last_seq"], want_snippet[i]);
        assert_eq!(s2["messages"], want_pcap[i]);
        assert_eq!(
            s2["last_seq"],
            want_snippet[i] + want_pcap[i],
            "sequence continues across runs"
        );
        assert!(s1["datagrams"].as_u64().unwrap() >= 1);
    }
    let calls = summaries[0]["sendmmsg_calls"].as_u64().unwrap();
    let datagrams = summaries[0]["datagrams"].as_u64().unwrap();
    assert!(
        calls < datagrams * 2,
        "several datagrams per sendmmsg: {calls} calls, {datagrams} datagrams"
    );

    let Some(capture) = capture else { return };
    let file = capture.stop();
    let ports: Vec<u16> = (base..base + 10).collect();
    let seen = tshark_packets(&file, &ports);
    for (i, g) in groups.iter().enumerate() {
        let total = want_snippet[i] + want_pcap[i];
        let mut by_feed: BTreeMap<String, Vec<(u64, u32)>> = BTreeMap::new();
        let mut eos = 0;
        for p in seen.iter().filter(|p| p.session == g.session) {
            if p.count == 0xFFFF {
                eos += 1;
                continue;
            }
            if p.count > 0 {
                by_feed
                    .entry(p.dst.clone())
                    .or_default()
                    .push((p.sequence, p.count));
            }
        }
        assert!(eos >= 2, "{}: end of session after each run", g.name);
        assert_eq!(
            by_feed.len(),
            2,
            "{}: feeds A and B: {:?}",
            g.name,
            by_feed.keys()
        );
        let feeds: Vec<&Vec<(u64, u32)>> = by_feed.values().collect();
        assert_eq!(
            feeds[0], feeds[1],
            "{}: A and B carry the same packets",
            g.name
        );
        let mut next = 1;
        for &(seq, count) in feeds[0] {
            assert_eq!(seq, next, "{}: hole or overlap at {seq}", g.name);
            next += u64::from(count);
        }
        assert_eq!(next - 1, total, "{}", g.name);
    }
    let problems: Vec<String> = ports
        .iter()
        .flat_map(|&p| tshark_problems(&file, p))
        .collect();
    assert!(problems.is_empty(), "tshark: {problems:?}");
}

#[test]
fn heartbeats_when_idle_and_end_of_session_on_sigterm() {
    let base = ports(2);
    let dir = scratch("heartbeat");
    let groups = vec![TestGroup::new(
        2,
        0,
        base,
        "heartbeat_ms = 200\ngso = \"off\"",
    )];
    // A live feed that never sends anything: the groups stay idle.
    let feed = format!(
        "source = \"multicast\"\ngroup = \"239.202.2.1:{}\"",
        base + 19
    );
    let cfg_path = dir.join("tickcast.toml");
    std::fs::write(&cfg_path, config(&feed, &groups, &dir.join("journal"))).unwrap();
    let capture = Capture::start(
        &dir.join("hb.pcapng"),
        &format!("udp portrange {}-{}", base, base + 9),
    );
    let child = std::process::Command::new(bin("tickcast"))
        .args(["run", "--quiet", "--config", cfg_path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let hb = v["groups"][0]["heartbeats"].as_u64().unwrap();
    assert!(
        (3..=10).contains(&hb),
        "heartbeats every 200 ms for 1.5 s: {hb}"
    );
    let Some(capture) = capture else { return };
    let seen = tshark_packets(&capture.stop(), &[base]);
    let a = groups[0].feed_a.as_str();
    let hbs = seen.iter().filter(|p| p.dst == a && p.count == 0).count();
    let eos: Vec<_> = seen
        .iter()
        .filter(|p| p.dst == a && p.count == 0xFFFF)
        .collect();
    assert!(hbs >= 4, "{seen:?}");
    assert!(!eos.is_empty());
    assert!(
        seen.iter().all(|p| p.sequence == 1),
        "nothing sent: next expected stays 1"
    );
}

#[test]
fn unicast_destinations_get_every_datagram() {
    let base = ports(13);
    let dir = scratch("unicast");
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let dest = sink.local_addr().unwrap();
    let groups = vec![TestGroup::new(
        13,
        0,
        base,
        &format!("destinations = [\"{dest}\"]"),
    )];
    let cfg = dir.join("t.toml");
    std::fs::write(
        &cfg,
        config("source = \"generator\"", &groups, &dir.join("j")),
    )
    .unwrap();
    let snippet = data("itch50/nasdaq-20191230-0930-snippet.itch50");
    let v: Value = replay(&cfg, &snippet);
    let (datagrams, last) = (
        v["groups"][0]["datagrams"].as_u64().unwrap(),
        v["groups"][0]["last_seq"].as_u64().unwrap(),
    );
    let mut buf = [0u8; 2048];
    let (mut data_packets, mut next, mut eos) = (0u64, 1u64, 0);
    while let Ok(n) = sink.recv(&mut buf) {
        let p = protocol::Packet::new_checked(&buf[..n]).unwrap();
        match p.kind() {
            protocol::PacketKind::Data => {
                assert_eq!(p.sequence(), next);
                next = p.next_sequence();
                data_packets += 1;
            }
            protocol::PacketKind::EndOfSession => eos += 1,
            protocol::PacketKind::Heartbeat => {}
        }
    }
    assert_eq!(
        data_packets, datagrams,
        "the unicast destination got every datagram"
    );
    assert_eq!(next - 1, last);
    assert!(eos >= 1);
}
