//! The subscriber SDK against a live distributor on loopback: in-order delivery of a replay,
//! a late join (from where it joins, and recovered from sequence 1), `tickcast-tap --json`, and
//! the C example compiled with `cc` against the static library.

use feedhandler::generator::{self, GenFormat, GeneratorConfig};
use serde_json::Value;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use subscriber_sdk::{ArbiterConfig, GroupSpec, PollMode, Subscriber};
use tickcast_tests::*;

fn subscriber(g: &TestGroup, from_start: bool) -> Subscriber {
    let spec = GroupSpec::new(&g.name, g.feed_a.parse().unwrap())
        .feed_b(g.feed_b.as_ref().unwrap().parse().unwrap())
        .retransmit(g.retransmit.parse().unwrap());
    Subscriber::builder()
        .group(spec)
        .rcvbuf(32 << 20)
        .poll_mode(PollMode::Blocking(Duration::from_millis(5)))
        .recovery(ArbiterConfig {
            request_from_start: from_start,
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn receive_until_end(sub: &mut Subscriber, c: &mut Collect, limit: Duration) {
    let deadline = Instant::now() + limit;
    while c.ended.is_none() && Instant::now() < deadline {
        sub.poll(c).unwrap();
    }
}

fn assert_in_order(seqs: &[u64], first: u64, last: u64) {
    assert_eq!(seqs.first(), Some(&first));
    assert_eq!(seqs.last(), Some(&last));
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no duplicates, no holes"
    );
}

/// A generated replay file and a one-group config; returns (config path, group, file).
fn setup(
    test: u8,
    name: &str,
    messages: u64,
) -> (std::path::PathBuf, TestGroup, std::path::PathBuf) {
    let base = ports(u16::from(test));
    let dir = scratch(name);
    let file = dir.join("feed.itch50");
    let cfg = GeneratorConfig {
        instruments: 30,
        seed: u64::from(test),
        ..Default::default()
    };
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 22).unwrap();
    let group: SocketAddrV4 = "233.54.12.111:26477".parse().unwrap();
    generator::write_file(&file, cfg, messages, GenFormat::BinaryFile, group, date).unwrap();
    let g = TestGroup::new(test, 0, base, "");
    let cfg_path = dir.join("tickcast.toml");
    std::fs::write(
        &cfg_path,
        config(
            "source = \"generator\"",
            std::slice::from_ref(&g),
            &dir.join("journal"),
        ),
    )
    .unwrap();
    (cfg_path, g, file)
}

#[test]
fn replay_is_delivered_in_order() {
    let (cfg, g, file) = setup(6, "sdk-replay", 30_000);
    let mut sub = subscriber(&g, false);
    let child = replay_lingering(&cfg, &file);
    let mut c = Collect::default();
    receive_until_end(&mut sub, &mut c, Duration::from_secs(60));
    let v = terminate(child);
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    assert_in_order(&c.seqs, 1, last);
    assert!(c.gaps.is_empty());
    assert_eq!(c.ended, Some(last + 1));
    let a = sub.stats.arbiter;
    assert_eq!(a.delivered, last);
    assert!(a.duplicates > 0, "feed B's copies were arbitrated away");
    assert!(!sub.stats.latency.is_empty());
}

#[test]
fn late_join_from_where_it_joins_and_from_the_start() {
    let base = ports(7);
    let dir = scratch("sdk-late");
    let g = TestGroup::new(7, 0, base, "");
    let cfg = dir.join("tickcast.toml");
    let feed = "source = \"generator\"\nrate = 20000\ninstruments = 20";
    std::fs::write(
        &cfg,
        config(feed, std::slice::from_ref(&g), &dir.join("journal")),
    )
    .unwrap();
    let child = run_lingering(&cfg);
    std::thread::sleep(Duration::from_millis(1000));
    let mut late = subscriber(&g, false);
    let mut recover = subscriber(&g, true);
    let (mut cl, mut cr) = (Collect::default(), Collect::default());
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        late.poll(&mut cl).unwrap();
        recover.poll(&mut cr).unwrap();
    }
    signal(child.id(), "TERM"); // ends the feed; end of session follows
    let deadline = Instant::now() + Duration::from_secs(30);
    while (cl.ended.is_none() || cr.ended.is_none()) && Instant::now() < deadline {
        late.poll(&mut cl).unwrap();
        recover.poll(&mut cr).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    // Joined late: starts where it joined, then in order to the end.
    let first = cl.seqs[0];
    assert!(first > 1000, "joined after a second of traffic: {first}");
    assert_in_order(&cl.seqs, first, last);
    // Asked for everything: recovered the history from 1.
    assert_in_order(&cr.seqs, 1, last);
    assert!(cr.gaps.is_empty());
    assert!(recover.stats.arbiter.recovered >= first - 1);
}

#[test]
fn tap_shows_the_stream_as_json() {
    let (cfg, g, file) = setup(8, "sdk-tap", 5_000);
    let tap = spawn_tap(&g, &["--json", "--from-start", "--duration", "30"]);
    let plain = spawn_tap(
        &g,
        &["--json", "--no-messages", "--no-gro", "--duration", "30"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let child = replay_lingering(&cfg, &file);
    let out = tap.wait_with_output().unwrap(); // the tap stops at end of session
    let plain = plain.wait_with_output().unwrap();
    let v = terminate(child);
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let msgs: Vec<&Value> = lines.iter().filter(|l| l.get("seq").is_some()).collect();
    assert_eq!(msgs.len() as u64, last);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m["seq"], i as u64 + 1);
        for k in ["kind", "instrument", "symbol", "event_ts_ns"] {
            assert!(m.get(k).is_some(), "{m}");
        }
    }
    let stats = &lines.last().unwrap()["stats"];
    for k in [
        "delivered",
        "duplicates",
        "gaps_filled",
        "gaps_lost",
        "requests",
    ] {
        assert!(stats.get(k).is_some(), "stats lack {k}");
    }
    assert_eq!(stats["delivered"], last);
    assert_eq!(stats["gaps_lost"], 0);
    // Both taps get every message: the default one takes the shard's GSO runs whole when
    // there are any (UDP_GRO; how many depends on how far the shard falls behind the replay,
    // 12–16 buffers for ~460 datagrams here; `subscriber-sdk/tests/gro.rs` checks the mode
    // itself), the `--no-gro` one never.
    let plain: Value = serde_json::from_str(
        String::from_utf8_lossy(&plain.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let plain = &plain["stats"];
    assert!(stats["gro_buffers"].is_u64(), "{stats}");
    assert_eq!(plain["gro_buffers"], 0, "{plain}");
    assert_eq!(plain["delivered"], last, "{plain}");
    assert_eq!(
        (stats["truncated"].as_u64(), stats["ctrunc"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn c_example_receives_from_a_live_distributor() {
    let (cfg, g, file) = setup(9, "sdk-c", 20_000);
    let out_exe = build_c_example("subscriber");
    let c = Command::new(&out_exe)
        .args([&g.feed_a, g.feed_b.as_ref().unwrap(), &g.retransmit, "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let child = replay_lingering(&cfg, &file);
    let out = c.wait_with_output().unwrap();
    let v = terminate(child);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let last = v["groups"][0]["last_seq"].as_u64().unwrap();
    assert!(text.contains(&format!("messages {last} ")), "{text}");
    assert!(text.contains("out_of_order 0 gaps 0"), "{text}");
    assert!(text.contains(&format!("stats delivered {last} ")), "{text}");
    assert!(text.contains(" add "), "{text}");
}
