//! Reliability on real hosts: a distributor host and two subscriber hosts in network namespaces
//! joined by veth pairs through a bridge, multicast routed to the subscribers, real packet loss
//! from nftables. Each test prints the figures docs/RELIABILITY.md records. Needs root: without
//! it each test says SKIPPED.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tickcast_tests::netns::TestNet;
use tickcast_tests::{bin, scratch, signal, terminate};

/// The namespace tests share the machine's two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const FEED_PORT: u16 = 30_700;
const RTX_PORT: u16 = 30_800;
const FEED_A: &str = "239.77.1.1:30700";
const FEED_B: &str = "239.77.2.1:30700";

fn write_config(dir: &Path, feed: &str, journal: &str) -> PathBuf {
    write_config_allowing(dir, feed, journal, "10.77.0.0/24")
}

/// A config whose re-request server answers `allow` only.
fn write_config_allowing(dir: &Path, feed: &str, journal: &str, allow: &str) -> PathBuf {
    write_config_with(dir, feed, journal, allow, "auto")
}

/// A config with `retransmit_allow = [allow]` and `gso = "{gso}"` (auto: on, veth takes it).
fn write_config_with(dir: &Path, feed: &str, journal: &str, allow: &str, gso: &str) -> PathBuf {
    let text = format!(
        r#"[feed]
{feed}

[[shard]]
core = 0
groups = ["g"]

[[group]]
name = "g"
session = "NETNS01"
feed_a = "{FEED_A}"
feed_b = "{FEED_B}"
interface = "10.77.0.1"
multicast_loop = false
heartbeat_ms = 100
retransmit = "10.77.0.1:{RTX_PORT}"
retransmit_allow = ["{allow}"]
gso = "{gso}"
retransmit_rate = 5000
retransmit_cap = 1000

[journal]
dir = "{journal}"
"#
    );
    let p = dir.join(format!("{}.toml", journal.replace('/', "_")));
    std::fs::write(&p, text).unwrap();
    p
}

/// A running tap whose output is read as it comes (a full pipe would stall it).
struct Tap {
    child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
}

fn tap(net: &TestNet, i: usize, extra: &[&str]) -> Tap {
    let iface = net.sub_ips[i].to_string();
    let rtx = format!("{}:{RTX_PORT}", net.dist_ip);
    let mut args = vec![
        "--group",
        FEED_A,
        "--group-b",
        FEED_B,
        "--interface",
        &iface,
        "--json",
        "--from-start",
        "--duration",
        "120",
    ];
    // The group's re-request server, unless the test names another.
    if !extra.contains(&"--retransmit") {
        args.extend_from_slice(&["--retransmit", &rtx]);
    }
    args.extend_from_slice(extra);
    let mut child = net.spawn(&net.subs[i], &bin("tickcast-tap"), &args);
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    Tap { child, out }
}

/// Starts both subscribers' taps and gives them time to join before any traffic.
fn start_taps(net: &TestNet, extra: [&[&str]; 2]) -> Vec<Tap> {
    let taps = vec![tap(net, 0, extra[0]), tap(net, 1, extra[1])];
    std::thread::sleep(Duration::from_millis(300));
    taps
}

/// `tickcast run` on the distributor host, lingering so that late re-requests are answered.
fn start_distributor(net: &TestNet, cfg: &Path) -> Child {
    let args = [
        "run",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--linger",
        "60",
    ];
    net.spawn(&net.dist, &bin("tickcast"), &args)
}

/// Waits for a tap to finish (it stops at end of session); returns its stats and all lines.
fn tap_result(t: Tap) -> (Value, Vec<Value>) {
    let err = t.child.wait_with_output().unwrap().stderr;
    let stdout = t.out.join().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stats = lines
        .last()
        .and_then(|l| l.get("stats"))
        .cloned()
        .unwrap_or_else(|| panic!("no stats: {}", String::from_utf8_lossy(&err)));
    (stats, lines)
}

fn wait_with_deadline(taps: Vec<Tap>, limit: Duration) -> Vec<Tap> {
    let deadline = Instant::now() + limit;
    let mut taps = taps;
    loop {
        if taps
            .iter_mut()
            .all(|t| t.child.try_wait().ok().flatten().is_some())
            || Instant::now() > deadline
        {
            return taps;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn loss_rules(pct: u32) -> String {
    let mut s = String::from("flush ruleset\n");
    if pct > 0 {
        s += &format!(
            "table inet tcloss {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  udp dport {FEED_PORT} numgen random mod 100 < {pct} drop\n }}\n}}\n"
        );
    }
    s
}

/// A test's two subscriber hosts and scratch directory, the tests serialized (they share
/// nftables and namespace names); `None` (said so) where namespaces cannot be made. The
/// hosts go before the lock does.
fn hosts(tag: &str, name: &str) -> Option<(MutexGuard<'static, ()>, TestNet, PathBuf)> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = TestNet::create(tag, 2)?;
    Some((serial, net, scratch(name)))
}

/// Asserts a subscriber got every message in order with nothing lost.
fn assert_complete(name: &str, s: &Value, last_seq: u64) {
    assert_eq!(s["last_seq"], last_seq, "{name}: {s}");
    assert_eq!(s["delivered"], last_seq, "{name}: every message: {s}");
    assert_eq!(s["gaps_lost"], 0, "{name}: {s}");
    assert_eq!(s["order_errors"], 0, "{name}: in order: {s}");
}

#[test]
fn packet_loss_is_recovered_by_retransmission() {
    let Some((_serial, net, dir)) = hosts("l", "netns-loss") else {
        return;
    };
    let messages = 200_000;
    let mut lossless_rate = 0.0;
    println!("| loss | messages | delivered (lossy) | requests | retransmitted | lost | throughput msgs/s | vs lossless | other subscriber delivered / requests |");
    // GSO on (auto: veth takes it; nftables then sees, and drops, whole GSO sends) and, once,
    // off: both must recover everything.
    for (pct, gso) in [
        (0u32, "auto"),
        (1, "auto"),
        (5, "auto"),
        (20, "auto"),
        (5, "off"),
    ] {
        net.nft(&net.subs[0], &loss_rules(pct));
        let journal = dir.join(format!("j{pct}{gso}"));
        let feed = format!(
            "source = \"generator\"\nrate = 100000\nmessages = {messages}\ninstruments = 50"
        );
        let cfg = write_config_with(&dir, &feed, journal.to_str().unwrap(), "10.77.0.0/24", gso);
        let taps = start_taps(&net, [&["--no-messages"], &["--no-messages"]]);
        let dist = start_distributor(&net, &cfg);
        let mut taps = wait_with_deadline(taps, Duration::from_secs(120));
        let summary = terminate(dist);
        let s2 = tap_result(taps.pop().unwrap()).0;
        let s1 = tap_result(taps.pop().unwrap()).0;
        let last = summary["groups"][0]["last_seq"].as_u64().unwrap();
        assert!(last >= messages, "{summary}");
        assert_complete(&format!("lossy subscriber at {pct}%"), &s1, last);
        assert_complete("other subscriber", &s2, last);
        assert_eq!(
            s2["requests"], 0,
            "the other subscriber is unaffected: {s2}"
        );
        if pct >= 5 {
            assert!(
                s1["requests"].as_u64().unwrap() > 0,
                "loss forced retransmission: {s1}"
            );
        }
        let rate =
            s1["delivered"].as_f64().unwrap() / s1["active_seconds"].as_f64().unwrap().max(1e-9);
        if pct == 0 {
            lossless_rate = rate;
        }
        println!(
            "| {pct}% (gso {gso}) | {last} | {} | {} | {} | {} | {rate:.0} | {:.2} | {} / {} |",
            s1["delivered"],
            s1["requests"],
            s1["recovered"],
            s1["messages_lost"],
            rate / lossless_rate,
            s2["delivered"],
            s2["requests"]
        );
    }
}

#[test]
fn ab_failover_without_a_gap() {
    let Some((_serial, net, dir)) = hosts("f", "netns-failover") else {
        return;
    };
    net.nft(&net.subs[0], "flush ruleset\ntable inet tcab {\n chain input {\n  type filter hook input priority 0; policy accept;\n }\n}\n");
    let feed = "source = \"generator\"\nrate = 20000\nmessages = 80000\ninstruments = 50";
    let cfg = write_config(&dir, feed, dir.join("j").to_str().unwrap());
    let taps = start_taps(&net, [&["--no-messages"], &["--no-messages"]]);
    let dist = start_distributor(&net, &cfg);
    std::thread::sleep(Duration::from_millis(1000));
    // Feed A dies at the subscriber...
    net.nft(
        &net.subs[0],
        "add rule inet tcab input ip daddr 239.77.1.1 drop\n",
    );
    std::thread::sleep(Duration::from_millis(1000));
    // ...comes back, then feed B dies.
    net.nft(
        &net.subs[0],
        "flush chain inet tcab input\nadd rule inet tcab input ip daddr 239.77.2.1 drop\n",
    );
    let mut taps = wait_with_deadline(taps, Duration::from_secs(60));
    let summary = terminate(dist);
    let s2 = tap_result(taps.pop().unwrap()).0;
    let (s1, lines) = tap_result(taps.pop().unwrap());
    let last = summary["groups"][0]["last_seq"].as_u64().unwrap();
    assert_complete("failing-over subscriber", &s1, last);
    assert_complete("other subscriber", &s2, last);
    assert!(lines.iter().all(|l| l.get("gap").is_none()), "no gap event");
    // Feed B (then A) covers the outage: at most the datagrams in flight at the instant a rule
    // switches are asked for again (with GSO a group's copies on A and on B leave as two runs
    // of up to 64 datagrams, so the instant can catch both copies of one run).
    let recovered = s1["recovered"].as_u64().unwrap();
    assert!(
        recovered <= 2 * 64 * 22,
        "feed B (then A) covered the outage: {s1}"
    );
    println!(
        "| A/B failover (gso auto) | {last} | {} | {} requests | 0 lost | duplicates {} |",
        s1["delivered"], s1["requests"], s1["duplicates"]
    );
}

#[test]
fn crash_and_restart_keep_the_sequence_promise() {
    let Some((_serial, net, dir)) = hosts("c", "netns-crash") else {
        return;
    };
    net.nft(&net.subs[0], &loss_rules(1));
    let journal = dir.join("j");
    let feed = "source = \"generator\"\nrate = 20000\nmessages = 60000\ninstruments = 50";
    let cfg = write_config(&dir, feed, journal.to_str().unwrap());
    let taps = start_taps(&net, [&["--no-messages"], &[]]);
    let mut first = start_distributor(&net, &cfg);
    std::thread::sleep(Duration::from_millis(1000));
    // The first subscriber hears nothing for the last half second before the crash: it can
    // only get those messages from the restarted distributor's journal.
    net.nft(&net.subs[0], &format!("flush ruleset\ntable inet tcblind {{\n chain input {{\n  type filter hook input priority 0;\n  udp dport {FEED_PORT} drop\n }}\n}}\n"));
    std::thread::sleep(Duration::from_millis(500));
    first.kill().unwrap(); // SIGKILL mid-stream
    let _ = first.wait();
    let journal_file = journal.join("NETNS01.journal");
    let before = distributor::journal::read_all(&journal_file).unwrap().len() as u64;
    let second = start_distributor(&net, &cfg);
    std::thread::sleep(Duration::from_millis(200));
    net.nft(&net.subs[0], &loss_rules(1));
    let mut taps = wait_with_deadline(taps, Duration::from_secs(90));
    let summary = terminate(second);
    let (s2, lines) = tap_result(taps.pop().unwrap());
    let s1 = tap_result(taps.pop().unwrap()).0;
    let last = summary["groups"][0]["last_seq"].as_u64().unwrap();
    assert!(
        before > 1000 && last > before,
        "crashed at {before}, ended at {last}"
    );
    assert_complete("subscriber blinded before the crash", &s1, last);
    assert!(
        s1["recovered"].as_u64().unwrap() >= 5000,
        "recovered from the journal: {s1}"
    );
    assert_complete("subscriber", &s2, last);
    // Same (session, seq), same bytes: every message the subscriber got, before and after the
    // crash, matches the journal record of that sequence.
    let records = distributor::journal::read_all(&journal_file).unwrap();
    let mut checked = 0;
    for l in lines.iter().filter(|l| l.get("seq").is_some()) {
        let seq = l["seq"].as_u64().unwrap();
        let r = &records[seq as usize - 1];
        let kind = protocol::Kind::from_u8(r[1]).unwrap();
        assert_eq!(l["kind"], kind.name(), "seq {seq}");
        assert_eq!(
            l["instrument"],
            u32::from_le_bytes(r[4..8].try_into().unwrap()),
            "seq {seq}"
        );
        assert_eq!(
            l["event_ts_ns"],
            u64::from_le_bytes(r[8..16].try_into().unwrap()),
            "seq {seq}"
        );
        assert_eq!(
            l["recv_ts_ns"],
            u64::from_le_bytes(r[16..24].try_into().unwrap()),
            "seq {seq}"
        );
        checked += 1;
    }
    assert_eq!(checked, last);
    println!(
        "| SIGKILL + restart | {last} | {} / {} | {} requests, {} recovered from the restarted journal | 0 lost | resumed after {before} journaled |",
        s1["delivered"], s2["delivered"], s1["requests"], s1["recovered"]
    );
}

#[test]
fn a_slow_subscriber_slows_nobody_and_recovers() {
    let Some((_serial, net, dir)) = hosts("s", "netns-slow") else {
        return;
    };
    let messages = 120_000;
    let feed =
        format!("source = \"generator\"\nrate = 20000\nmessages = {messages}\ninstruments = 50");
    let cfg = write_config(&dir, &feed, dir.join("j").to_str().unwrap());
    let mut taps = start_taps(
        &net,
        [&["--no-messages"], &["--no-messages", "--rcvbuf", "200000"]],
    );
    let started = Instant::now();
    let dist = start_distributor(&net, &cfg);
    let slow = taps.pop().unwrap();
    let fast = taps.pop().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(slow.child.id(), "STOP"); // stops reading for three seconds
    std::thread::sleep(Duration::from_secs(3));
    signal(slow.child.id(), "CONT");
    let mut taps = wait_with_deadline(vec![fast, slow], Duration::from_secs(90));
    let elapsed = started.elapsed().as_secs_f64();
    let summary = terminate(dist);
    let s_slow = tap_result(taps.pop().unwrap()).0;
    let s_fast = tap_result(taps.pop().unwrap()).0;
    let last = summary["groups"][0]["last_seq"].as_u64().unwrap();
    assert_complete("fast subscriber", &s_fast, last);
    assert_eq!(s_fast["requests"], 0);
    // The slow one overflowed its socket and then caught up: by retransmission, or with an
    // explicit gap for what could not be recovered; never silently.
    assert!(
        s_slow["kernel_drops"].as_u64().unwrap() > 0,
        "the stall overflowed the socket: {s_slow}"
    );
    assert_eq!(s_slow["last_seq"], last);
    assert_eq!(s_slow["order_errors"], 0);
    let accounted =
        s_slow["delivered"].as_u64().unwrap() + s_slow["messages_lost"].as_u64().unwrap();
    assert_eq!(accounted, last, "delivered or explicitly lost: {s_slow}");
    println!(
        "| slow subscriber (3 s SIGSTOP) | {last} | fast {} / slow {} | {} requests | {} lost | kernel drops {}, run {elapsed:.1} s for {messages} msgs at 20k/s |",
        s_fast["delivered"], s_slow["delivered"], s_slow["requests"], s_slow["messages_lost"], s_slow["kernel_drops"]
    );
}

/// Heavy loss on both feeds and no usable re-request server (one unreachable, one refusing the
/// subscribers' subnet): every sequence is delivered or reported lost, in order, within the
/// gap timeout (1 s) + 1 s of the end of the feed; the taps say why (`requests_unanswered`).
#[test]
fn heavy_loss_with_no_answers_is_accounted_for_within_the_gap_timeout() {
    let Some((_serial, net, dir)) = hosts("u", "netns-unanswered") else {
        return;
    };
    let (messages, rate) = (60_000u64, 20_000u64);
    // 20 % loss at both subscribers, on feeds A and B alike: about 4 % of datagrams miss both.
    for sub in &net.subs {
        net.nft(sub, &loss_rules(20));
    }
    let feed =
        format!("source = \"generator\"\nrate = {rate}\nmessages = {messages}\ninstruments = 50");
    // The server refuses the subscribers' subnet (it allows loopback only).
    let cfg = write_config_allowing(&dir, &feed, dir.join("j").to_str().unwrap(), "127.0.0.0/8");
    // Subscriber 1 asks the refusing server; subscriber 2 asks an address nobody serves.
    let unreachable = format!("{}:{}", net.dist_ip, RTX_PORT + 1);
    let taps = start_taps(
        &net,
        [
            &["--no-messages"],
            &["--no-messages", "--retransmit", &unreachable],
        ],
    );
    let t0 = Instant::now();
    let dist = start_distributor(&net, &cfg);
    let taps = wait_with_deadline(taps, Duration::from_secs(60));
    let taps_done = t0.elapsed().as_secs_f64();
    let summary = terminate(dist);
    let last = summary["groups"][0]["last_seq"].as_u64().unwrap();
    assert!(last >= messages, "{summary}");
    let feed_secs = messages as f64 / rate as f64;
    println!("| server | messages | delivered | lost (gaps) | requests | unanswered | taps done after feed end |");
    for (name, t) in ["refusing", "unreachable"].iter().zip(taps) {
        let (s, lines) = tap_result(t);
        let delivered = s["delivered"].as_u64().unwrap();
        let lost = s["messages_lost"].as_u64().unwrap();
        assert_eq!(
            delivered + lost,
            last,
            "{name}: every sequence accounted for: {s}"
        );
        assert_eq!(s["order_errors"], 0, "{name}: {s}");
        assert!(
            lost > 0,
            "{name}: both-feed loss with no answers is reported: {s}"
        );
        assert!(
            s["requests_unanswered"].as_u64().unwrap() > 0,
            "{name}: {s}"
        );
        let gaps = lines.iter().filter(|l| l.get("gap").is_some()).count() as u64;
        assert_eq!(gaps, s["gaps_lost"].as_u64().unwrap(), "{name}: {s}");
        println!(
            "| {name} | {last} | {delivered} | {lost} ({gaps}) | {} | {} | {:.2} s |",
            s["requests"],
            s["requests_unanswered"],
            taps_done - feed_secs
        );
    }
    // Startup (distributor start, first datagrams) is inside the 1 s of slack.
    assert!(
        taps_done <= feed_secs + 1.0 + 1.0 + 1.0,
        "every sequence accounted for within gap timeout + 1 s of the end: {taps_done:.2} s for a {feed_secs} s feed"
    );
}

/// docs/DEPLOYMENT.md's scale-out example: two appliance hosts each publish their partition of
/// the same feed (`partition = "0/2"`, `"1/2"`); a subscriber host taps both groups. Every
/// instrument arrives from exactly one appliance, together they cover the feed, and each group's
/// sequence is complete.
#[test]
fn two_appliances_partition_the_instruments() {
    let Some((_serial, net, dir)) = hosts("p", "netns-partition") else {
        return;
    };
    let mut appliances = Vec::new();
    let mut groups = Vec::new();
    for k in 0..2usize {
        let ip = net.sub_ips[k];
        let feed_a = format!("239.78.{k}.1:30711");
        let rtx = format!("{ip}:{}", RTX_PORT + k as u16);
        let text = format!(
            r#"[feed]
source = "generator"
rate = 20000
messages = 40000
instruments = 40
seed = 7

[[shard]]
core = 0
groups = ["eq-p{k}"]

[[group]]
name = "eq-p{k}"
session = "EQP{k}"
partition = "{k}/2"
feed_a = "{feed_a}"
interface = "{ip}"
multicast_loop = false
retransmit = "{rtx}"

[journal]
dir = "{}"
"#,
            dir.join(format!("j{k}")).display()
        );
        let cfg = dir.join(format!("p{k}.toml"));
        std::fs::write(&cfg, text).unwrap();
        groups.push((feed_a, rtx));
        appliances.push(cfg);
    }
    // The subscriber host (the bridge's host) taps each appliance's group.
    let iface = net.dist_ip.to_string();
    let taps: Vec<Tap> = groups
        .iter()
        .map(|(feed_a, rtx)| {
            let args = [
                "--group",
                feed_a,
                "--interface",
                &iface,
                "--retransmit",
                rtx,
                "--json",
                "--from-start",
                "--duration",
                "60",
            ];
            let mut child = net.spawn(&net.dist, &bin("tickcast-tap"), &args);
            let mut stdout = child.stdout.take().unwrap();
            let out = std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
                v
            });
            Tap { child, out }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let runs: Vec<Child> = appliances
        .iter()
        .enumerate()
        .map(|(k, cfg)| {
            let args = [
                "run",
                "--quiet",
                "--config",
                cfg.to_str().unwrap(),
                "--linger",
                "30",
            ];
            net.spawn(&net.subs[k], &bin("tickcast"), &args)
        })
        .collect();
    let taps = wait_with_deadline(taps, Duration::from_secs(60));
    let summaries: Vec<Value> = runs.into_iter().map(terminate).collect();
    let mut instruments: Vec<std::collections::BTreeSet<u64>> = Vec::new();
    for (k, t) in taps.into_iter().enumerate() {
        let (s, lines) = tap_result(t);
        let last = summaries[k]["groups"][0]["last_seq"].as_u64().unwrap();
        assert_complete(&format!("appliance {k}"), &s, last);
        instruments.push(
            lines
                .iter()
                .filter_map(|l| l.get("instrument").and_then(Value::as_u64))
                .filter(|&i| i != 0)
                .collect(),
        );
    }
    let both: Vec<_> = instruments[0].intersection(&instruments[1]).collect();
    assert!(both.is_empty(), "instruments on both appliances: {both:?}");
    let all: std::collections::BTreeSet<u64> =
        instruments[0].union(&instruments[1]).copied().collect();
    assert_eq!(
        all.len(),
        40,
        "together they carry every instrument: {all:?}"
    );
    assert!(!instruments[0].is_empty() && !instruments[1].is_empty());
    println!(
        "| two appliances, partition 0/2 and 1/2 | {} + {} instruments | {} + {} messages | disjoint, union = 40 |",
        instruments[0].len(),
        instruments[1].len(),
        summaries[0]["groups"][0]["last_seq"],
        summaries[1]["groups"][0]["last_seq"]
    );
}
